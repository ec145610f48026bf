//! `testcluster up` stops everything it started, and removes its temp dir, both on SIGTERM and
//! when its stdin closes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use testcluster::harness_binary;
use testcluster::processes::{descendants, wait_gone};

#[tokio::test]
async fn sigterm_and_closed_stdin_leave_nothing_behind() -> anyhow::Result<()> {
    for stop in ["SIGTERM", "closed stdin"] {
        let mut child = Command::new(harness_binary())
            .arg("up")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
        let kubeconfig = PathBuf::from(
            line.split_whitespace()
                .nth(1)
                .ok_or_else(|| anyhow::anyhow!("{stop}: no READY line: {line:?}"))?,
        );
        let dir = kubeconfig.parent().expect("temp dir").to_path_buf();
        assert!(dir.is_dir(), "{stop}: {}", dir.display());
        let started = descendants(child.id());
        assert!(
            started.len() >= 2,
            "{stop}: kube-apiserver and kube-controller-manager run as children (etcd runs inside): {started:?}"
        );

        match stop {
            "SIGTERM" => {
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()?;
                assert!(status.success());
            }
            _ => drop(child.stdin.take()),
        }
        let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
        assert!(exit.success(), "{stop}: exit {exit}");
        wait_gone(
            &format!("every child to be gone after {stop}"),
            &started,
            Duration::from_secs(10),
        )
        .await?;
        assert!(!dir.exists(), "{stop}: {} is left behind", dir.display());
    }
    Ok(())
}
