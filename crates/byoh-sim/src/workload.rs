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
/// ServiceAccounts and CRDs would fail to apply there).
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

    /// Runs a cluster user's pod on `node` that a PodDisruptionBudget keeps from eviction: the
    /// budget needs the pod's one replica (`minAvailable: 1`), so a drain of the node ends
    /// only when the Machine's `nodeDrainTimeout` passes.
    pub async fn run_guarded_pod(&self, cluster: &ClusterKey, node: &str) -> Result<(), String> {
        let response = self
            .http
            .put(format!(
                "{}/pods/{}",
                self.node_url(cluster, node),
                guarded_pod(node)
            ))
            .json(&guarded_pod_request(node))
            .send()
            .await;
        outcome("running the guarded workload", response).await
    }
}

/// The guarded pod of `node`, in `default`; its budget has its name.
pub fn guarded_pod(node: &str) -> String {
    format!("guarded-{node}")
}

/// The control API's body for the guarded pod: labels that select it alone (a pod two budgets
/// select cannot be evicted at all), and its budget.
fn guarded_pod_request(node: &str) -> Value {
    serde_json::json!({
        "namespace": "default",
        "labels": {"app": "guarded", "guarded-node": node},
        "disruptionBudget": {"minAvailable": 1},
    })
}

/// The control API's answer as kubeadm's error: what failed and why.
async fn outcome(what: &str, response: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    // `{:#}`: with its causes, since reqwest's own message names only the request.
    let response = response.map_err(|e| format!("{what}: {:#}", anyhow::Error::new(e)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_guarded_pod_has_a_budget_selecting_it_alone() {
        let [a, b] = ["edge-node-1", "edge-node-2"].map(guarded_pod_request);
        assert_eq!(
            a["disruptionBudget"],
            serde_json::json!({"minAvailable": 1})
        );
        assert_ne!(
            a["labels"], b["labels"],
            "one budget per pod: a pod two budgets select cannot be evicted at all"
        );
        assert_eq!(guarded_pod("edge-node-1"), "guarded-edge-node-1");
    }
}
