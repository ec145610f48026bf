//! The API server's audit log, to count requests by client: each request is one event at its
//! end (level Metadata: who, what, no bodies), and clients are told apart by their User-Agent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

const POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
";

/// The verbs of the audit log's requests that write.
pub const AUDIT_WRITE_VERBS: [&str; 5] =
    ["create", "update", "patch", "delete", "deletecollection"];

/// Whether `request` (`"<verb> <resource>/<subresource>"`, as the log's requests are named)
/// wrote.
pub fn is_write(request: &str) -> bool {
    AUDIT_WRITE_VERBS.contains(&request.split(' ').next().unwrap_or_default())
}

/// Where the API server writes its audit log.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// Writes the policy into `dir`; returns the log and the kube-apiserver flags that enable it
    /// (written synchronously, so a count read after a request includes it).
    pub(crate) fn prepare(dir: &Path) -> anyhow::Result<(Self, Vec<String>)> {
        std::fs::create_dir_all(dir)?;
        let policy = dir.join("audit-policy.yaml");
        std::fs::write(&policy, POLICY)?;
        let path = dir.join("audit.log");
        let flags = vec![
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", path.display()),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
            "--audit-log-maxsize=0".into(),
        ];
        Ok((Self { path }, flags))
    }

    /// Where the log is read from next: its current end.
    pub fn end(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(&self.path).map_or(0, |m| m.len()))
    }

    /// Requests logged from byte `from` on, by `(client, "<verb> <resource>/<subresource>")`,
    /// the client being the User-Agent up to its first `/` (`""` when it sent none).
    pub fn requests_since(&self, from: u64) -> anyhow::Result<BTreeMap<(String, String), u64>> {
        let mut counts = BTreeMap::new();
        for logged in self.logged_since(from)? {
            *counts.entry((logged.client, logged.request)).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Every request logged from byte `from` on, with the object it was made on.
    pub fn logged_since(&self, from: u64) -> anyhow::Result<Vec<Logged>> {
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("open {}", self.path.display()))?;
        file.seek(SeekFrom::Start(from))?;
        let mut logged = Vec::new();
        for line in BufReader::new(file).lines() {
            match serde_json::from_str::<serde_json::Value>(&line?) {
                Ok(event) => logged.push(Logged::of(&event)),
                // A line being written as we read.
                Err(_) => continue,
            }
        }
        Ok(logged)
    }
}

/// One request of the audit log: who made it, what it was, on which object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The User-Agent up to its first `/` (`""` when it sent none).
    pub client: String,
    /// `"<verb> <resource>/<subresource>"`.
    pub request: String,
    /// The object's namespace and name (`""` where the request named none, as a LIST).
    pub namespace: String,
    pub name: String,
}

impl Logged {
    fn of(event: &serde_json::Value) -> Self {
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_string();
        let agent = event["userAgent"].as_str().unwrap_or_default();
        let object = &event["objectRef"];
        Self {
            client: agent.split('/').next().unwrap_or_default().to_string(),
            request: format!(
                "{} {}/{}",
                text(&event["verb"]),
                text(&object["resource"]),
                text(&object["subresource"])
            ),
            namespace: text(&object["namespace"]),
            name: text(&object["name"]),
        }
    }

    /// Whether the request wrote.
    pub fn is_write(&self) -> bool {
        is_write(&self.request)
    }
}
