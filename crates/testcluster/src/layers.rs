//! A crate's modules in layers: each module may use only modules of the layers below its own,
//! so they depend one way and no circle can form. [`check_layers`] reads every `crate::` and
//! `super::` path of a crate's sources (its `use` lines and paths written inline; comments are
//! not read) and names every use that goes sideways or up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Checks the sources under `<crate_dir>/src` against `layers`, lowest first; each entry is a
/// module path (`index`, `provision::hold`), and covers its submodules unless they are listed
/// themselves. The crate root (`main.rs`, `lib.rs`) may use anything. Fails naming each
/// module that no layer lists and each use of a module that is not below it.
pub fn check_layers(crate_dir: &Path, layers: &[&[&str]]) -> anyhow::Result<()> {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(layer, modules)| modules.iter().map(move |m| (*m, layer)))
        .collect();
    let mut problems = Vec::new();
    for file in sources(&crate_dir.join("src"))? {
        let module = module_of(&crate_dir.join("src"), &file);
        if module.is_empty() {
            continue;
        }
        let Some((owner, layer)) = listed(&layer_of, &module) else {
            problems.push(format!("module `{module}` is in no layer"));
            continue;
        };
        let text = std::fs::read_to_string(&file)?;
        for (line, used) in uses(&module, &text) {
            let Some((target, target_layer)) = listed(&layer_of, &used) else {
                continue;
            };
            if target != owner && target_layer >= layer {
                problems.push(format!(
                    "{}:{line}: `{owner}` (layer {}) uses `{target}` (layer {})",
                    file.strip_prefix(crate_dir).unwrap_or(&file).display(),
                    layer + 1,
                    target_layer + 1
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("modules out of their layers:\n  {}", problems.join("\n  "))
    }
}

/// The listed module that covers `module` (itself or its closest listed ancestor), and its layer.
fn listed<'a>(layer_of: &BTreeMap<&'a str, usize>, module: &str) -> Option<(&'a str, usize)> {
    let mut path = module;
    loop {
        if let Some((name, layer)) = layer_of.get_key_value(path) {
            return Some((name, *layer));
        }
        path = path.rsplit_once("::")?.0;
    }
}

fn sources(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(sources(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; the crate root is ``.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "main" || parts[0] == "lib") {
        parts.clear();
    }
    parts.join("::")
}

/// Every module path `text` (the source of `module`) uses through `crate::` or `super::`, with
/// its line. Inside an inline `mod … {` (tests), `super` is the file's own module.
fn uses(module: &str, text: &str) -> Vec<(usize, String)> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = Vec::new();
    let mut inline_module = false;
    for (index, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        if code.starts_with("mod ") && code.ends_with('{') {
            inline_module = true;
        }
        let super_is = if inline_module { module } else { parent };
        for (prefix, base) in [("crate::", ""), ("super::", super_is)] {
            for path in paths_after(code, prefix) {
                let joined = [base, path.as_str()]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("::");
                found.push((index + 1, joined));
            }
        }
    }
    found
}

/// The paths following each `prefix` in `code`: `a::b` of `crate::a::b::C`, and each item of a
/// group, `crate::{a, b::c}`.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let preceded = code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        if preceded {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or_default();
                paths.extend(group.split(',').map(path).filter(|p| !p.is_empty()));
            }
            None => paths.push(path(rest)),
        }
    }
    paths
}

/// The leading `a::b::c` of `text`.
fn path(text: &str) -> String {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    text[..end].trim_end_matches(':').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_are_read_from_use_lines_inline_paths_and_groups() {
        let text = "//! [`crate::ignored`]\nuse crate::a::B;\nuse crate::{b, c::D};\nuse super::e;\nfn f() { crate::g::h(); }\nmod tests {\n    use super::*;\n}\n";
        let found: Vec<String> = uses("x::y", text).into_iter().map(|(_, u)| u).collect();
        assert_eq!(found, ["a::B", "b", "c::D", "x::e", "g::h", "x::y"]);
    }

    #[test]
    fn a_use_sideways_or_up_and_an_unlisted_module_are_named() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src/top"))?;
        std::fs::write(dir.join("src/main.rs"), "mod low;\nmod top;\n")?;
        std::fs::write(dir.join("src/low.rs"), "use crate::top::T;\n")?;
        std::fs::write(dir.join("src/top/mod.rs"), "use crate::low;\nmod part;\n")?;
        std::fs::write(dir.join("src/top/part.rs"), "use super::T;\n")?;
        std::fs::write(dir.join("src/stray.rs"), "")?;
        let error = check_layers(&dir, &[&["low"], &["top"]])
            .expect_err("low uses top")
            .to_string();
        std::fs::remove_dir_all(&dir)?;
        assert!(
            error.contains("src/low.rs:1: `low` (layer 1) uses `top` (layer 2)")
                && error.contains("module `stray` is in no layer")
                && !error.contains("part.rs"),
            "{error}"
        );
        Ok(())
    }
}
