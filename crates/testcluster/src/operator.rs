//! An operator under test, as a real process with its own kubeconfig.
//!
//! It runs under a small `sh` lifeline: when the test process ends (even without running
//! destructors, as with a shared operator in a `static`), the shell's stdin closes and it
//! kills the operator, so no process outlives the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const LIFELINE: &str = r#"log=$1; shift
"$@" >"$log" 2>&1 &
pid=$!
echo "$pid"
cat >/dev/null
kill -KILL "$pid" 2>/dev/null"#;

pub struct OperatorProcess {
    shell: Child,
    pid: u32,
    pub metrics_addr: SocketAddr,
    pub log: PathBuf,
    // Its log's tail is in every failed wait's error while it runs.
    _reported: Option<crate::diagnostics::Reported>,
}

/// Operators this test process started: with its pid, each log file's name is its own (a name
/// of a port, free again once its operator stopped, mixed two operators' logs in one file).
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl OperatorProcess {
    /// Starts `binary run --pod-namespace <namespace> <args>` and waits for `/healthz`.
    pub async fn start(
        binary: &str,
        kubeconfig: &Path,
        namespace: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let name = Path::new(binary)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("operator");
        let log = std::env::temp_dir().join(format!(
            "{name}-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let mut shell = Command::new("sh")
            .args(["-c", LIFELINE, "sh"])
            .arg(&log)
            .arg(binary)
            .args([
                "run",
                "--metrics-addr",
                &metrics_addr.to_string(),
                "--pod-namespace",
                namespace,
            ])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            // Readable logs for test failures; a test passes `--log-format json` to check those.
            .env("LOG_FORMAT", "text")
            .env(
                "RUST_LOG",
                std::env::var("OPERATOR_RUST_LOG").unwrap_or("info,kube=warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let stdout = shell.stdout.take().context("lifeline stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let pid = line.trim().parse().context("operator pid")?;
        let mut process = Self {
            shell,
            pid,
            metrics_addr,
            log,
            _reported: None,
        };
        crate::wait_for(
            "the operator's /healthz",
            Duration::from_secs(20),
            || async {
                Ok(process
                    .get("/healthz")
                    .await
                    .ok()
                    .filter(|(status, _)| *status == 200)
                    .map(|_| ()))
            },
        )
        .await
        .with_context(|| process.log_tail())?;
        process._reported = Some(crate::diagnostics::operator(&process.log));
        Ok(process)
    }

    /// A plain HTTP GET against the operator's server: (status code, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect(self.metrics_addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// The value of a metric series: `name` or `name{labels}` exactly as exposed.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("metric {series} not found"))
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .stderr(Stdio::null())
            .status()?;
        Ok(())
    }

    /// What the operator used so far (memory, CPU).
    pub fn usage(&self) -> anyhow::Result<crate::processes::Usage> {
        crate::processes::usage(self.pid)
    }

    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .unwrap_or_default()
                .contains(") Z ")
    }

    /// Kills the operator at once (SIGKILL), as a crash would.
    pub async fn kill(&self) -> anyhow::Result<()> {
        self.signal("-KILL")?;
        self.wait_exit().await
    }

    /// Asks the operator to stop (SIGTERM) and waits until it has.
    pub async fn terminate(&self) -> anyhow::Result<()> {
        self.signal("-TERM")?;
        self.wait_exit().await
    }

    async fn wait_exit(&self) -> anyhow::Result<()> {
        crate::wait_for("the operator to exit", Duration::from_secs(20), || async {
            Ok((!self.is_running()).then_some(()))
        })
        .await
    }

    pub fn log_tail(&self) -> String {
        crate::diagnostics::tail("operator", &self.log, crate::diagnostics::OPERATOR_LINES)
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.signal("-KILL");
        if let Some(shell) = self.shell.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{shell}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}
