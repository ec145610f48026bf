//! The control plane handle: shared per test process, or started on its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::OnceCell;

use crate::audit::AuditLog;
use crate::clients;
use crate::crds::{crd_dirs, install_crds};
use crate::harness::Harness;
use crate::namespace::TestNamespace;
use crate::paths::{harness_binary, reuse_kubeconfig};

/// A running control plane (or one reused through `TEST_KUBECONFIG`).
/// The host-preparation image of [`TestCluster::host_preparation_args`], pinned by digest.
pub const HOST_PREPARATION_IMAGE: &str = "registry.example.org/ansible-runner@sha256:2f1ca5e3b1c9d0a7e6f4b8c2d5a9e3f7b1c4d8a2e6f0b3c7d1a5e9f2b6c0d4a8";
/// The agent checksum of [`TestCluster::host_preparation_args`].
pub const BYOH_AGENT_CHECKSUM: &str =
    "sha256:9d4e1b7a3c5f2e8d6b0a4c9e7f1d3b5a8c2e6f0d4b7a1c5e9f3d2b6a0c8e4f7d";

pub struct TestCluster {
    kubeconfig: PathBuf,
    config: Config,
    startup: Option<Duration>,
    // Dropping it stops a control plane this value started; None for a reused cluster.
    harness: Option<Arc<Harness>>,
    // The managers' logs are in every failed wait's error while a stack with them runs.
    _reported: Option<crate::diagnostics::Reported>,
}

static SHARED: OnceCell<TestCluster> = OnceCell::const_new();
static SHARED_WITH_MANAGERS: OnceCell<TestCluster> = OnceCell::const_new();

impl TestCluster {
    /// The control plane of this test process, started on first use (or `TEST_KUBECONFIG`'s).
    /// It lives until the process exits; then the harness sees its stdin close and cleans up.
    pub async fn shared() -> anyhow::Result<&'static TestCluster> {
        SHARED
            .get_or_try_init(|| async {
                match reuse_kubeconfig() {
                    Some(path) => Self::reuse(path).await,
                    None => Self::start_new().await,
                }
            })
            .await
    }

    /// The control plane of this test process with the managers and the workload-cluster
    /// simulator ([`TestCluster::start_with_managers`]), started on first use; it lives as
    /// [`TestCluster::shared`]'s does. Tests keep their hosts apart by selectors, since BYOH
    /// claims a matching host of any namespace, and their control-plane endpoints apart.
    pub async fn shared_with_managers() -> anyhow::Result<&'static TestCluster> {
        SHARED_WITH_MANAGERS
            .get_or_try_init(|| Self::start_with_managers(&[]))
            .await
    }

    /// Starts a separate control plane owned by the caller, e.g. to play a remote O-Cloud.
    /// It stops when the value is dropped.
    pub async fn start_new() -> anyhow::Result<TestCluster> {
        Self::start_with_flags(Vec::new(), Vec::new()).await
    }

    /// Starts a separate control plane, as [`TestCluster::start_new`] does, that also runs the
    /// real Cluster API v1.10.10 managers (core, kubeadm bootstrap, kubeadm control plane) and
    /// BYOH v0.5.0's, with their webhooks registered, in a network namespace of their own
    /// (`testcluster up --managers`; needs root), and beside them the workload-cluster
    /// simulator that serves each workload cluster on its control-plane endpoint
    /// ([`TestCluster::workload_clusters_url`]). The binaries come from
    /// `tools/capi-managers/build.sh` (or `CAPI_MANAGERS_BIN`) and
    /// `tools/workload-clusters/build.sh` (or `WORKLOAD_CLUSTERS_BIN`). `manager_args` are
    /// `<manager>=<flag>` pairs, e.g. `controlplane-kubeadm=--kubeadmcontrolplane-concurrency=50`.
    /// [`TestCluster::managers_file`] says how to reach the managers and join their namespace.
    pub async fn start_with_managers(manager_args: &[&str]) -> anyhow::Result<TestCluster> {
        Self::start_with_flags(Vec::new(), managers_flags(manager_args)?).await
    }

    /// Starts a control plane with the managers, as [`TestCluster::start_with_managers`] does,
    /// whose API server writes an audit log into `dir` (for counting requests by client).
    pub async fn start_with_managers_audited(
        dir: &Path,
        manager_args: &[&str],
    ) -> anyhow::Result<(TestCluster, AuditLog)> {
        let (log, flags) = AuditLog::prepare(dir)?;
        let cluster = Self::start_with_flags(flags, managers_flags(manager_args)?).await?;
        Ok((cluster, log))
    }

    async fn start_with_flags(
        apiserver_flags: Vec<String>,
        up_flags: Vec<String>,
    ) -> anyhow::Result<TestCluster> {
        let binary = harness_binary();
        let dirs = crd_dirs()?;
        let harness = tokio::task::spawn_blocking(move || {
            Harness::start(&binary, &dirs, &apiserver_flags, &up_flags)
        })
        .await
        .context("harness start task")??;
        crate::notice(format_args!(
            "control plane ready in {:.1}s ({})",
            harness.startup.as_secs_f64(),
            harness.kubeconfig.display()
        ));
        let config = load_kubeconfig(&harness.kubeconfig).await?;
        let mut cluster = TestCluster {
            kubeconfig: harness.kubeconfig.clone(),
            config,
            startup: Some(harness.startup),
            harness: Some(Arc::new(harness)),
            _reported: None,
        };
        if cluster.managers_file().is_file() {
            cluster._reported = Some(crate::diagnostics::stack(&cluster.managers_file()));
        }
        Ok(cluster)
    }

    /// Uses an already running cluster and installs the CRDs through the API. The garbage
    /// collector of such a cluster may need up to 30 s to notice new CRD types.
    async fn reuse(kubeconfig: PathBuf) -> anyhow::Result<TestCluster> {
        crate::notice(format_args!(
            "using TEST_KUBECONFIG={}",
            kubeconfig.display()
        ));
        let config = load_kubeconfig(&kubeconfig).await?;
        let client = Client::try_from(config.clone())?;
        for dir in crd_dirs()? {
            install_crds(&client, &dir).await?;
        }
        Ok(TestCluster {
            kubeconfig,
            config,
            startup: None,
            harness: None,
            _reported: None,
        })
    }

    /// Restarts this control plane's kube-apiserver on the same address while etcd keeps its
    /// data: every watch breaks and every client sees the server away for a few seconds.
    /// Returns how long the restart took. Only for a control plane this process started.
    pub async fn restart_apiserver(&self) -> anyhow::Result<Duration> {
        let harness = self.harness.clone().context(
            "cannot restart the API server of a reused TEST_KUBECONFIG cluster: run this test \
             without TEST_KUBECONFIG",
        )?;
        let took = tokio::task::spawn_blocking(move || harness.restart_apiserver())
            .await
            .context("harness restart task")??;
        crate::notice(format_args!(
            "kube-apiserver restarted in {:.1}s",
            took.as_secs_f64()
        ));
        Ok(took)
    }

    /// The admin kubeconfig (token of a `system:masters` user, CA embedded).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `managers.json` of a control plane started by [`TestCluster::start_with_managers`]: its
    /// network namespace (`netns`: holder `pid`, `path` for `nsenter --net=`, `hostIP`,
    /// `namespaceIP`, `localRoutes`), the API server's URL from inside it (`apiServer`), the
    /// webhook CA and each manager (`name`, `pid`, `module`, `args`, `log`, `kubeconfig`,
    /// `webhookURL`, `healthURL`, `metricsURL`) and the workload-cluster simulator
    /// (`workloadClusters`: `pid`, `binary`, `log`, `controlURL`, `listenPort`). Absent for other
    /// control planes.
    pub fn managers_file(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .unwrap_or(Path::new("."))
            .join("managers.json")
    }

    /// What `testcluster up --managers` wrote of the stack it runs (`managers.json`: the network
    /// namespace, each manager, the workload-cluster simulator); `None` without the managers.
    pub fn managers_state(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let path = self.managers_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let state =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        Ok(Some(state))
    }

    /// The processes `testcluster up --managers` started beside the control plane, by name
    /// (each manager, and `workload-clusters`); none without the managers.
    pub fn stack_processes(&self) -> anyhow::Result<Vec<(String, u32)>> {
        let Some(state) = self.managers_state()? else {
            return Ok(Vec::new());
        };
        let managers = state["managers"].as_array().into_iter().flatten();
        let named =
            managers.filter_map(|m| Some((m["name"].as_str()?.to_string(), m["pid"].as_u64()?)));
        let workload = state["workloadClusters"]["pid"]
            .as_u64()
            .map(|pid| ("workload-clusters".to_string(), pid));
        Ok(named
            .chain(workload)
            .map(|(name, pid)| (name, pid as u32))
            .collect())
    }

    /// The control API of the workload-cluster simulator (`http://<namespace IP>:<port>`, from
    /// `managers.json`), through which host agents say what kubeadm did on a host; `None` for a
    /// control plane without the managers.
    pub fn workload_clusters_url(&self) -> anyhow::Result<Option<String>> {
        let Some(state) = self.managers_state()? else {
            return Ok(None);
        };
        let url = state["workloadClusters"]["controlURL"]
            .as_str()
            .context("managers.json names no workloadClusters.controlURL")?;
        Ok(Some(url.to_string()))
    }

    /// The PEM of the CA that signed the API server's certificate, which `testcluster up`
    /// writes beside the kubeconfig (also for `make cluster`, which a reused cluster comes from).
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.kubeconfig
            .parent()
            .unwrap_or(Path::new("."))
            .join("pki/ca.crt")
    }

    /// The API server's URL, as `https://host:port`.
    pub fn api_server_url(&self) -> String {
        self.config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string()
    }

    /// The O2IMS operator's flags for host preparation here: where the hosts it prepares
    /// register (this API server and its CA; in a Pod: the chart's value and the
    /// ServiceAccount's CA), the Jobs' image [`HOST_PREPARATION_IMAGE`] (never pulled: no
    /// kubelet runs here) and the agent's checksum [`BYOH_AGENT_CHECKSUM`].
    pub fn host_preparation_args(&self) -> Vec<String> {
        vec![
            "--bootstrap-apiserver".into(),
            self.api_server_url(),
            "--bootstrap-ca-file".into(),
            self.ca_file().to_string_lossy().into_owned(),
            "--host-preparation-image".into(),
            HOST_PREPARATION_IMAGE.into(),
            "--byoh-agent-checksum".into(),
            BYOH_AGENT_CHECKSUM.into(),
        ]
    }

    /// How long the harness took to start, as it reported; `None` for a reused cluster.
    pub fn startup_time(&self) -> Option<Duration> {
        self.startup
    }

    /// The admin client configuration, e.g. to hand to the code under test.
    pub fn admin_config(&self) -> Config {
        self.config.clone()
    }

    /// A new admin client. Must be called inside the tokio runtime that will use it.
    pub fn admin_client(&self) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.config.clone())?)
    }

    /// A new admin client that names itself `agent` (its User-Agent), so the audit log tells
    /// its requests from others'.
    pub fn admin_client_as(&self, agent: &str) -> anyhow::Result<Client> {
        Ok(Client::try_from(self.admin_config_as(agent)?)?)
    }

    /// The admin client configuration of [`TestCluster::admin_client_as`], e.g. for code that
    /// makes clients of other identities from it by impersonation.
    pub fn admin_config_as(&self, agent: &str) -> anyhow::Result<Config> {
        let mut config = self.config.clone();
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_str(agent)?,
        ));
        Ok(config)
    }

    /// A fresh namespace named `<prefix>-<random>`; call `cleanup()` on it at the end.
    pub async fn namespace(&self, prefix: &str) -> anyhow::Result<TestNamespace> {
        TestNamespace::create(self.admin_client()?, prefix).await
    }

    /// A client authenticated as ServiceAccount `namespace/name` (created when missing) with a
    /// real token from the TokenRequest API, to test least-privilege RBAC.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<Client> {
        clients::service_account_client(self.admin_client()?, &self.config, namespace, name).await
    }

    /// A bearer token of ServiceAccount `namespace/name` (created when missing) from the
    /// TokenRequest API, as a client outside the cluster would send it.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        clients::service_account_token(self.admin_client()?, namespace, name).await
    }

    /// Writes to `path` a kubeconfig authenticated as ServiceAccount `namespace/name` (created
    /// when missing), for a process under test that must hold only that account's permissions.
    pub async fn write_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        clients::write_service_account_kubeconfig(
            self.admin_client()?,
            &self.kubeconfig,
            namespace,
            name,
            path,
        )
        .await
    }

    /// A client whose requests are authorized as `user` in `groups` (admin impersonation).
    pub fn impersonating_client(&self, user: &str, groups: &[&str]) -> anyhow::Result<Client> {
        clients::impersonating_client(&self.config, user, groups)
    }
}

/// The flags of `testcluster up` that run the managers and the workload-cluster simulator,
/// with `manager_args` (`<manager>=<flag>`).
fn managers_flags(manager_args: &[&str]) -> anyhow::Result<Vec<String>> {
    let dir = managers_dir();
    if !dir.join("cluster-api").is_file() {
        anyhow::bail!(
            "{} holds no managers: build them with tools/capi-managers/build.sh (or set CAPI_MANAGERS_BIN)",
            dir.display()
        );
    }
    let workload_clusters = workload_clusters_binary();
    if !workload_clusters.is_file() {
        anyhow::bail!(
            "{} does not exist: build it with tools/workload-clusters/build.sh (or set WORKLOAD_CLUSTERS_BIN)",
            workload_clusters.display()
        );
    }
    let mut flags = vec![
        "--managers".to_string(),
        dir.to_string_lossy().into_owned(),
        "--workload-clusters".to_string(),
        workload_clusters.to_string_lossy().into_owned(),
    ];
    flags.extend(manager_args.iter().map(|a| format!("--manager-arg={a}")));
    Ok(flags)
}

/// The manager binaries of `tools/capi-managers/build.sh`, overridable with `CAPI_MANAGERS_BIN`.
fn managers_dir() -> PathBuf {
    std::env::var_os("CAPI_MANAGERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("tools/capi-managers/bin"))
}

/// The workload-cluster simulator of `tools/workload-clusters/build.sh`, overridable with
/// `WORKLOAD_CLUSTERS_BIN`.
fn workload_clusters_binary() -> PathBuf {
    std::env::var_os("WORKLOAD_CLUSTERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("tools/workload-clusters/bin/workload-clusters"))
}

async fn load_kubeconfig(path: &Path) -> anyhow::Result<Config> {
    let kubeconfig =
        Kubeconfig::read_from(path).with_context(|| format!("read {}", path.display()))?;
    Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
}
