//! Where things are, and running the tools.

use std::path::{Path, PathBuf};

use std::process::Command;
pub use testcluster::{repo_root, workspace_binary as operator_binary};

use anyhow::{Context, bail};

pub fn chart_dir() -> PathBuf {
    repo_root().join("deploy/helm/oran-lcm")
}

/// A tool `deploy/install-tools.sh` builds into `.cache/bin` (helm, kustomize), else the `PATH`'s.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let pinned = repo_root().join(".cache/bin").join(name);
    if pinned.is_file() {
        return Ok(pinned);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("{name} is not installed: run deploy/install-tools.sh (it builds it into .cache/bin through the Go module proxy)"))
}

/// The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs `deploy/install-tools.sh`
/// fetches (pinned, hash-checked): not in the shared CRDs, and needed to validate the chart's
/// monitoring objects.
pub fn prometheus_operator_crds() -> anyhow::Result<PathBuf> {
    let dir = repo_root().join(".cache/prometheus-operator-crds");
    if !dir
        .join("monitoring.coreos.com_prometheusrules.yaml")
        .is_file()
    {
        bail!(
            "{} has no Prometheus Operator CRDs: run deploy/install-tools.sh (make tools)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Helm: `$HELM`, or [`tool`]'s.
pub fn helm() -> anyhow::Result<PathBuf> {
    match std::env::var_os("HELM") {
        Some(helm) => Ok(PathBuf::from(helm)),
        None => tool("helm"),
    }
}

/// Runs `program args` in the repository root; its stdout, or an error with its stderr.
pub fn run(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        bail!(
            "`{} {}` failed ({}):\n{}{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
