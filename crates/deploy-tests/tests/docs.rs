//! The documentation's references: every relative link (and `#anchor`) of README.md,
//! ARCHITECTURE.md, CONTRIBUTING.md, SECURITY.md, docs/*.md and the READMEs of deploy/, ansible/
//! and tools/*/ points at something that exists, and so does every repository path they name in
//! backticks. The checker itself is `deploy_tests::docs`.

use std::path::{Path, PathBuf};

use deploy_tests::docs::{self, Broken};
use deploy_tests::repo_root;

fn shared_dir(root: &Path) -> PathBuf {
    std::env::var_os("LCM_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared"))
}

#[test]
fn every_relative_link_and_named_path_in_the_docs_exists() -> anyhow::Result<()> {
    let root = repo_root();
    let pages = docs::pages(&root)?;
    let broken = docs::check(&root, &shared_dir(&root), &pages)?;
    let list: Vec<String> = broken.iter().map(Broken::to_string).collect();
    assert!(
        broken.is_empty(),
        "{} broken reference(s) in {} pages:\n{}",
        broken.len(),
        pages.len(),
        list.join("\n")
    );
    Ok(())
}

/// The checker on a made-up repository: each kind of broken reference is reported, with its
/// line, and nothing else is.
#[test]
fn a_broken_link_a_missing_anchor_and_a_missing_path_are_each_reported() -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("docs-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::create_dir_all(root.join("crates/a/src"))?;
    std::fs::create_dir_all(root.join("crates/a/tests"))?;
    std::fs::write(root.join("crates/a/src/lib.rs"), "")?;
    std::fs::write(root.join("crates/a/tests/t.rs"), "")?;
    std::fs::write(root.join("input.json"), "{}")?;
    std::fs::write(
        root.join("docs/page.md"),
        "# A page\n\n## Its `second` part\n\nBack to [the front](../README.md#front).\n",
    )?;
    std::fs::write(
        root.join("README.md"),
        "# Front\n\n\
         [fine](docs/page.md#its-second-part), [fine too](#front),\n\
         [gone](docs/gone.md), [no such part](docs/page.md#third-part), [up](../outside.md)\n\n\
         `crates/a/src/lib.rs`, `input.json`, `crates/a/src/`, `tools/x/bin/x`, `tests/t.rs`,\n\
         `crates/...` and `crates/*/src` exist or are built; `crates/a/src/main.rs`, `examples/none.yaml`, `tests/none.rs` and `mgmt.sh`\n\
         do not.\n\n\
         ```sh\n\
         cat crates/in/a/fence.rs   # [not a link](nowhere.md) `crates/nope`\n\
         ```\n",
    )?;
    let pages = [PathBuf::from("README.md"), PathBuf::from("docs/page.md")];
    let broken = docs::check(&root, &root.join("shared"), &pages)?;
    let _ = std::fs::remove_dir_all(&root);
    let found: Vec<String> = broken.iter().map(Broken::to_string).collect();
    assert_eq!(
        found,
        [
            "README.md:4: link (docs/gone.md): docs/gone.md does not exist",
            "README.md:4: link (docs/page.md#third-part): docs/page.md has no heading #third-part",
            "README.md:4: link (../outside.md): points outside the repository",
            "README.md:7: `crates/a/src/main.rs`: no such file or directory",
            "README.md:7: `examples/none.yaml`: no such file or directory",
            "README.md:7: `tests/none.rs`: no such file or directory",
            "README.md:7: `mgmt.sh`: no such file or directory",
        ]
    );
    Ok(())
}
