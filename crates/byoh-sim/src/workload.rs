//! The workload clusters, as kubeadm on a host reaches them: the control API of the
//! workload-cluster simulator (`tools/workload-clusters`), which serves every workload cluster
//! of the stack and makes it look as it would after `kubeadm init`, `join` or `reset` on a host.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// What the workload clusters count as a running CNI, for a cluster's ClusterResourceSet to
/// apply in place of the Calico manifest: only its `calico-node` DaemonSet (nodes turn Ready once
/// it exists), and only kinds the workload clusters serve (a real calico.yaml's
/// ServiceAccounts, CRDs and PodDisruptionBudget would fail to apply there).
pub const CALICO_STAND_IN: &str = "\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: calico-node
  namespace: kube-system
  labels: {k8s-app: calico-node}
spec:
  selector: {matchLabels: {k8s-app: calico-node}}
  template:
    metadata: {labels: {k8s-app: calico-node}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers: [{name: calico-node, image: docker.io/calico/node:v3.29.0}]
";

/// How long one call may take: the simulator answers at once unless it is gone.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A workload cluster: its Cluster API Cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterKey {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What `kubeadm init` or `kubeadm join` did on a host (the control API's PUT body).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRequest {
    pub endpoint: String,
    pub control_plane: bool,
    pub init: bool,
    pub kubelet_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Files of /etc/kubernetes/pki by their path below it (`ca.crt`, `etcd/ca.key`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pki: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_configuration: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `None`: kubeadm's default taints.
    pub taints: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_ip: Option<String>,
    pub cni_preinstalled: bool,
    pub skip_phases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<String>,
}

/// Where kubeadm's work on a host shows: the workload clusters.
pub trait WorkloadClusters: Sync {
    /// `kubeadm init`/`join` on host `node` succeeded for `cluster` as `request` says, or
    /// failed with the error kubeadm would print.
    fn start(
        &self,
        cluster: &ClusterKey,
        node: &str,
        request: &NodeRequest,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// `kubeadm reset` on host `node`, which ran for `cluster`.
    fn reset(
        &self,
        cluster: &ClusterKey,
        node: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The control API at its base URL (`http://<address>:<port>`).
#[derive(Clone, Debug)]
pub struct ControlApi {
    http: reqwest::Client,
    base: String,
}

impl ControlApi {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                // The simulator's address is on a link of this machine: never through a proxy.
                .no_proxy()
                .build()?,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    fn node_url(&self, cluster: &ClusterKey, node: &str) -> String {
        format!(
            "{}/v1/clusters/{}/{}/nodes/{node}",
            self.base, cluster.namespace, cluster.name
        )
    }
}

/// The control API's answer as kubeadm's error: what failed and why.
async fn outcome(what: &str, response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    let response = response.map_err(|e| format!("{what}: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: Value = response.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or_default();
    Err(format!("{what}: {status}: {message}"))
}

impl WorkloadClusters for ControlApi {
    async fn start(
        &self,
        cluster: &ClusterKey,
        node: &str,
        request: &NodeRequest,
    ) -> Result<(), String> {
        let what = match request.init {
            true => "kubeadm init",
            false => "kubeadm join",
        };
        let response = self
            .http
            .put(self.node_url(cluster, node))
            .json(request)
            .send()
            .await;
        outcome(what, response).await
    }

    async fn reset(&self, cluster: &ClusterKey, node: &str) -> Result<(), String> {
        let response = self.http.delete(self.node_url(cluster, node)).send().await;
        outcome("kubeadm reset", response).await
    }
}
