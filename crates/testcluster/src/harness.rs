//! Runs `testcluster up` as a child process, waits for its `READY` line and sends it commands.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};

/// A running harness. Its stdin is the lifeline: when this value is dropped, or the test process
/// exits and the kernel closes the pipe, the harness stops the control plane and cleans up.
/// While it runs, the same pipe carries commands, one per line, answered on its stdout.
pub(crate) struct Harness {
    child: Option<Child>,
    // One command at a time: a command and its answer must not interleave with another's.
    pipes: Mutex<Pipes>,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) startup: Duration,
}

impl Harness {
    /// Starts the harness with the given CRD directories (and extra kube-apiserver flags, and
    /// further flags of `testcluster up` such as `--managers`) and blocks until it is ready.
    /// Blocking: call it via `spawn_blocking`.
    pub(crate) fn start(
        binary: &Path,
        crd_dirs: &[PathBuf],
        apiserver_flags: &[String],
        up_flags: &[String],
    ) -> anyhow::Result<Harness> {
        if !binary.is_file() {
            bail!(
                "{} does not exist: build it with tools/testcluster/build.sh (or set TESTCLUSTER_BIN)",
                binary.display()
            );
        }
        let mut command = Command::new(binary);
        command.arg("up");
        for dir in crd_dirs {
            command.arg("--crds").arg(dir);
        }
        for flag in apiserver_flags {
            command.arg(format!("--apiserver-arg={flag}"));
        }
        command.args(up_flags);
        // stderr is inherited so a failed start explains itself in the test output.
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        let lifeline = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().context("harness stdout")?);

        let mut line = String::new();
        stdout.read_line(&mut line).context("read harness stdout")?;
        let Some((kubeconfig, startup)) = parse_ready_line(&line) else {
            let status = child.wait().ok();
            bail!("testcluster up did not become ready (exit status {status:?}, stdout {line:?})");
        };
        Ok(Harness {
            child: Some(child),
            pipes: Mutex::new(Pipes { lifeline, stdout }),
            kubeconfig,
            startup,
        })
    }

    /// Restarts kube-apiserver on the same port while etcd keeps its data, and returns how long
    /// the API server was away. Blocking: call it via `spawn_blocking`.
    pub(crate) fn restart_apiserver(&self) -> anyhow::Result<Duration> {
        let mut pipes = self
            .pipes
            .lock()
            .map_err(|_| anyhow::anyhow!("an earlier harness command panicked"))?;
        let Pipes { lifeline, stdout } = &mut *pipes;
        let lifeline = lifeline.as_mut().context("harness stdin is closed")?;
        writeln!(lifeline, "restart-apiserver").context("write to harness stdin")?;
        lifeline.flush().context("flush harness stdin")?;
        let mut line = String::new();
        stdout.read_line(&mut line).context("read harness stdout")?;
        parse_restarted_line(&line).with_context(|| {
            format!("testcluster up did not restart kube-apiserver (stdout {line:?})")
        })
    }
}

struct Pipes {
    lifeline: Option<ChildStdin>,
    // Also held so the harness never writes into a closed pipe.
    stdout: BufReader<ChildStdout>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // EOF on the harness's stdin: it shuts down by itself.
        match self.pipes.get_mut() {
            Ok(pipes) => drop(pipes.lifeline.take()),
            Err(poisoned) => drop(poisoned.into_inner().lifeline.take()),
        }
        if let Some(mut child) = self.child.take() {
            // Reap in the background so dropping never blocks a test on the shutdown.
            std::thread::spawn(move || child.wait());
        }
    }
}

/// Parses `READY <kubeconfig-path> <seconds-to-start>`.
fn parse_ready_line(line: &str) -> Option<(PathBuf, Duration)> {
    let (path, seconds) = line.trim_end().strip_prefix("READY ")?.rsplit_once(' ')?;
    let seconds: f64 = seconds.parse().ok()?;
    Some((
        PathBuf::from(path),
        Duration::try_from_secs_f64(seconds).ok()?,
    ))
}

/// Parses `RESTARTED <seconds-to-restart>`.
fn parse_restarted_line(line: &str) -> Option<Duration> {
    let seconds: f64 = line.trim_end().strip_prefix("RESTARTED ")?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ready_line() {
        assert_eq!(
            parse_ready_line("READY /tmp/x/kubeconfig 4.25\n"),
            Some((
                PathBuf::from("/tmp/x/kubeconfig"),
                Duration::from_millis(4250)
            ))
        );
        assert_eq!(parse_ready_line("READY /tmp/x/kubeconfig"), None);
        assert_eq!(parse_ready_line("error: boom"), None);
        assert_eq!(parse_ready_line(""), None);
    }

    #[test]
    fn parses_restarted_line() {
        assert_eq!(
            parse_restarted_line("RESTARTED 3.62\n"),
            Some(Duration::from_millis(3620))
        );
        assert_eq!(parse_restarted_line("RESTARTED soon"), None);
        assert_eq!(parse_restarted_line("RESTARTED -1"), None);
        assert_eq!(parse_restarted_line(""), None);
    }
}
