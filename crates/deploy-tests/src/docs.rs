//! Checks the documentation's references: every relative markdown link points at a file or
//! directory that exists (and, for a `#anchor` into a markdown file, at one of its headings, as
//! GitHub names them), and every repository path a page names in backticks (`crates/...`,
//! `tools/...`, `input.json`, ...) exists. Fenced code blocks are not read: they hold commands
//! and output, not references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::Context;

/// The pages checked, relative to the repository root: the front door, the top-level guides,
/// every page of `docs/`, and the READMEs of the deployment files and the tools.
pub fn pages(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut pages: Vec<PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "CONTRIBUTING.md",
        "SECURITY.md",
        "deploy/README.md",
        "ansible/README.md",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    for dir in ["docs", "tools"] {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(root.join(dir)).with_context(|| format!("reading {dir}/"))? {
            let path = entry?.path();
            let relative = path.strip_prefix(root)?.to_path_buf();
            if dir == "docs" && path.extension().is_some_and(|e| e == "md") {
                found.push(relative);
            } else if dir == "tools" && path.join("README.md").is_file() {
                found.push(relative.join("README.md"));
            }
        }
        found.sort();
        pages.extend(found);
    }
    Ok(pages)
}

/// One broken reference: the page and line, what it names, and why it is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub page: PathBuf,
    pub line: usize,
    pub reference: String,
    pub problem: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.page.display(),
            self.line,
            self.reference,
            self.problem
        )
    }
}

/// Every broken link and path of `pages` (relative to `root`); `shared` is where `../shared/...`
/// paths point (the material beside the checkout).
pub fn check(root: &Path, shared: &Path, pages: &[PathBuf]) -> anyhow::Result<Vec<Broken>> {
    let mut anchors: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut broken = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(root.join(page))
            .with_context(|| format!("reading {}", page.display()))?;
        let parsed = Parsed::new(&text);
        let dir = page.parent().unwrap_or(Path::new(""));
        for (line, target) in &parsed.links {
            let problem = check_link(root, dir, page, target, &mut anchors)?;
            if let Some(problem) = problem {
                broken.push(Broken {
                    page: page.clone(),
                    line: *line,
                    reference: format!("link ({target})"),
                    problem,
                });
            }
        }
        for (line, path) in &parsed.code_spans {
            if let Some(problem) = check_named_path(root, shared, path) {
                broken.push(Broken {
                    page: page.clone(),
                    line: *line,
                    reference: format!("`{path}`"),
                    problem,
                });
            }
        }
    }
    Ok(broken)
}

fn check_link(
    root: &Path,
    dir: &Path,
    page: &Path,
    target: &str,
    anchors: &mut BTreeMap<PathBuf, BTreeSet<String>>,
) -> anyhow::Result<Option<String>> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(None);
    }
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let file = if file.is_empty() {
        page.to_path_buf()
    } else {
        match normalize(&dir.join(file)) {
            Some(path) => path,
            None => return Ok(Some("points outside the repository".into())),
        }
    };
    if !root.join(&file).exists() {
        return Ok(Some(format!("{} does not exist", file.display())));
    }
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    if file.extension().is_none_or(|e| e != "md") {
        return Ok(None);
    }
    if !anchors.contains_key(&file) {
        let text = std::fs::read_to_string(root.join(&file))
            .with_context(|| format!("reading {}", file.display()))?;
        anchors.insert(file.clone(), Parsed::new(&text).anchors);
    }
    Ok(match anchors.get(&file) {
        Some(known) if !known.contains(anchor) => {
            Some(format!("{} has no heading #{anchor}", file.display()))
        }
        _ => None,
    })
}

/// Top-level directories whose paths the docs name from the repository root.
const PATH_PREFIXES: [&str; 10] = [
    "crates/",
    "tools/",
    "deploy/",
    "examples/",
    "docs/",
    "ansible/",
    "tests/",
    "crds/",
    ".ci/",
    "../shared/",
];

/// Files of the repository root the docs name by their bare name.
const ROOT_FILES: [&str; 11] = [
    "input.json",
    "mgmt.sh",
    "Makefile",
    "Dockerfile",
    "Cargo.toml",
    "Cargo.lock",
    "README.md",
    "ARCHITECTURE.md",
    "CONTRIBUTING.md",
    "SECURITY.md",
    ".dockerignore",
];

/// Whether a code span names a repository path, and if so why it is broken. A span with a space
/// is a command or a message, one with `<...>`, `{...}` or an ellipsis a pattern; `tools/*/bin/` holds build
/// outputs, which a checkout does not have. A `tests/...` path is the root's or a crate's.
fn check_named_path(root: &Path, shared: &Path, span: &str) -> Option<String> {
    let is_path_like = !span.is_empty()
        && span
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/*".contains(c));
    if !is_path_like || span.contains("...") {
        return None;
    }
    let path = span.trim_end_matches('/');
    let named = ROOT_FILES.contains(&path) || PATH_PREFIXES.iter().any(|p| span.starts_with(p));
    if !named || is_build_output(path) {
        return None;
    }
    let (base, relative) = match path.strip_prefix("../shared/") {
        Some(rest) => (shared, rest),
        None => (root, path),
    };
    // `tests/x.rs` right after a crate's name is that crate's test (`crates/<crate>/tests/`).
    let in_a_crate =
        relative.starts_with("tests/") && glob_exists(root, &format!("crates/*/{relative}"));
    if glob_exists(base, relative) || in_a_crate {
        None
    } else {
        Some("no such file or directory".into())
    }
}

fn is_build_output(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.first() == Some(&"tools") && segments.get(2) == Some(&"bin")
}

/// Whether `pattern` (segments may hold `*`) matches something under `base`.
fn glob_exists(base: &Path, pattern: &str) -> bool {
    let mut candidates = vec![base.to_path_buf()];
    for segment in pattern.split('/') {
        let mut next = Vec::new();
        for dir in &candidates {
            if !segment.contains('*') {
                let path = dir.join(segment);
                if path.exists() {
                    next.push(path);
                }
                continue;
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if wildcard_match(segment, &name.to_string_lossy()) {
                    next.push(entry.path());
                }
            }
        }
        candidates = next;
    }
    !candidates.is_empty()
}

fn wildcard_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| wildcard_match(tail, &rest[i..]))
        }
    }
}

/// `a/b/../c` -> `a/c`; `None` when it climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// What a page references, and the anchors its headings make.
#[derive(Debug, Default)]
pub struct Parsed {
    /// (line, target) of every inline link `[text](target)` outside code.
    pub links: Vec<(usize, String)>,
    /// (line, content) of every code span outside fenced blocks.
    pub code_spans: Vec<(usize, String)>,
    /// GitHub's anchors of the page's headings.
    pub anchors: BTreeSet<String>,
}

impl Parsed {
    pub fn new(text: &str) -> Self {
        let mut parsed = Parsed::default();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        // Paragraphs (code spans may wrap lines, never paragraphs), each with its first line.
        let mut block: Vec<(usize, &str)> = Vec::new();
        let mut fence: Option<&str> = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let trimmed = line.trim_start();
            if let Some(marker) = fence {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                continue;
            }
            if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
                parsed.scan(&block);
                block.clear();
                fence = Some(marker);
                continue;
            }
            if trimmed.is_empty() {
                parsed.scan(&block);
                block.clear();
                continue;
            }
            if let Some(heading) = heading_text(trimmed) {
                let slug = slug(heading);
                let count = seen.entry(slug.clone()).or_insert(0);
                parsed.anchors.insert(if *count == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{count}")
                });
                *count += 1;
            }
            block.push((number, line));
        }
        parsed.scan(&block);
        parsed
    }

    /// Code spans and links of one paragraph.
    fn scan(&mut self, block: &[(usize, &str)]) {
        // The paragraph as one string, with each character's line.
        let mut chars: Vec<(usize, char)> = Vec::new();
        for (number, line) in block {
            chars.extend(line.chars().map(|c| (*number, c)));
            chars.push((*number, '\n'));
        }
        // Code spans (runs of backticks closed by a run of the same length), replaced by spaces
        // in what links are looked for in.
        let mut outside: Vec<(usize, char)> = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            if chars[i].1 != '`' {
                outside.push(chars[i]);
                i += 1;
                continue;
            }
            let run = chars[i..].iter().take_while(|(_, c)| *c == '`').count();
            let start = i + run;
            let close = (start..chars.len()).find(|&j| {
                chars[j..].iter().take_while(|(_, c)| *c == '`').count() == run
                    && (j == 0 || chars[j - 1].1 != '`')
            });
            match close {
                Some(end) => {
                    let content: String = chars[start..end].iter().map(|(_, c)| *c).collect();
                    let content = content.replace('\n', " ");
                    self.code_spans
                        .push((chars[i].0, content.trim().to_string()));
                    outside.extend(chars[i..end + run].iter().map(|(n, _)| (*n, ' ')));
                    i = end + run;
                }
                None => {
                    outside.extend(chars[i..start].iter().copied());
                    i = start;
                }
            }
        }
        // Inline links: `](target)`; the target ends at the first `)` or space (a title).
        for j in 0..outside.len().saturating_sub(1) {
            if outside[j].1 == ']' && outside[j + 1].1 == '(' {
                let target: String = outside[j + 2..]
                    .iter()
                    .map(|(_, c)| *c)
                    .take_while(|c| *c != ')' && !c.is_whitespace())
                    .collect();
                let target = target.trim_start_matches('<').trim_end_matches('>');
                if !target.is_empty() {
                    self.links.push((outside[j].0, target.to_string()));
                }
            }
        }
    }
}

/// The text of an ATX heading (`## Text`), without its markers.
fn heading_text(line: &str) -> Option<&str> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &line[level..];
    if !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

/// The anchor GitHub gives a heading: its text (inline code and emphasis marks dropped, a
/// link's text kept), lower case, every character that is not a letter, digit, `-`, `_` or
/// space removed, spaces made `-`.
pub fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // A link keeps its text only.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_githubs() {
        assert_eq!(
            slug("The O2ims REST API (`o2ims-api`)"),
            "the-o2ims-rest-api-o2ims-api"
        );
        assert_eq!(
            slug("Upgrading a management cluster from Cluster API v1.4"),
            "upgrading-a-management-cluster-from-cluster-api-v14"
        );
        assert_eq!(
            slug("Real Cluster API v1.10 / BYOH v0.5.0 vs the simulator"),
            "real-cluster-api-v110--byoh-v050-vs-the-simulator"
        );
        assert_eq!(
            slug("The inventory: `input.json`"),
            "the-inventory-inputjson"
        );
        assert_eq!(slug("See [the docs](docs/x.md) now"), "see-the-docs-now");
    }

    #[test]
    fn code_spans_links_and_anchors_are_read_outside_fences_only() {
        let parsed = Parsed::new(
            "# Title\n\nSee [a](b.md#c) and `crates/x`, wrapped `a\nb`.\n\n```\n[no](link.md) `crates/no`\n# no heading\n```\n\n## Title\n\nA `[x](y)` span.\n",
        );
        assert_eq!(parsed.links, vec![(3, "b.md#c".to_string())]);
        assert_eq!(
            parsed.code_spans,
            vec![
                (3, "crates/x".to_string()),
                (3, "a b".to_string()),
                (13, "[x](y)".to_string())
            ]
        );
        assert_eq!(
            parsed.anchors,
            ["title", "title-1"].map(String::from).into()
        );
    }

    #[test]
    fn wildcards_match_within_a_segment() {
        assert!(wildcard_match("*.sh", "check.sh"));
        assert!(wildcard_match("a*c*", "abcd"));
        assert!(!wildcard_match("*.sh", "check.rs"));
    }
}
