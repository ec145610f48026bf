//! Where the harness binary and the CRDs live, relative to this repository.

use std::path::PathBuf;

use anyhow::Context;

/// The repository root, two levels above this crate's manifest.
pub fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Material shared by every checkout (`<repo>/../shared`), overridable with `LCM_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("LCM_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared"))
}

/// The Go harness, overridable with `TESTCLUSTER_BIN`.
pub fn harness_binary() -> PathBuf {
    std::env::var_os("TESTCLUSTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools/testcluster/bin/testcluster"))
}

/// An existing cluster to reuse, from `TEST_KUBECONFIG` (ignored when the file does not exist).
pub(crate) fn reuse_kubeconfig() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("TEST_KUBECONFIG")?);
    if path.is_file() {
        Some(path)
    } else {
        crate::notice(format_args!(
            "TEST_KUBECONFIG={} does not exist, starting a control plane",
            path.display()
        ));
        None
    }
}

/// A binary of this workspace, built next to the running executable (a test binary in
/// `target/<profile>/deps/`, or a program in `target/<profile>/`): build it first with
/// `cargo build --workspace --bins`.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("{name} is not built: run `cargo build --workspace --bins` first"))
}
