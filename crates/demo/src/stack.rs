//! What runs under the demo, real and simulated, as `testcluster up --managers` reports it in
//! managers.json: each manager's Go module and version, and the workload-cluster simulator.

use std::collections::BTreeMap;

use anyhow::Context as _;
use kube::Client;
use serde_json::Value;
use testcluster::TestCluster;

/// The upstream projects by Go module path, as people name them.
const PROJECTS: [(&str, &str); 2] = [
    ("sigs.k8s.io/cluster-api", "Cluster API"),
    (
        "github.com/vmware-tanzu/cluster-api-provider-bringyourownhost",
        "BYOH",
    ),
];

/// The network namespace of the controllers and the workload clusters (a path for
/// `nsenter --net=`): the workload clusters' endpoints answer only there.
pub fn network_namespace(cluster: &TestCluster) -> anyhow::Result<String> {
    let state = managers_state(cluster)?;
    Ok(state["netns"]["path"]
        .as_str()
        .context("managers.json names no netns.path")?
        .to_string())
}

fn managers_state(cluster: &TestCluster) -> anyhow::Result<Value> {
    cluster
        .managers_state()?
        .context("the control plane runs without the managers")
}

/// One line for what is real (the control plane and the controllers: project, version and
/// managers, e.g. `Cluster API v1.10.10 controllers (cluster-api, bootstrap-kubeadm,
/// controlplane-kubeadm) and BYOH v0.5.0 controllers (byoh)`), one for what is simulated.
pub async fn describe(cluster: &TestCluster, client: &Client) -> anyhow::Result<Vec<String>> {
    let kubernetes = client.apiserver_version().await?.git_version;
    let state = managers_state(cluster)?;
    // By project and version, the managers built from it, in start order.
    let mut projects: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for manager in state["managers"].as_array().into_iter().flatten() {
        let module = manager["module"].as_str().context("a manager's module")?;
        let (path, version) = module.split_once('@').unwrap_or((module, "unknown"));
        let (rank, project) = PROJECTS
            .iter()
            .enumerate()
            .find(|(_, (known, _))| *known == path)
            .map_or((PROJECTS.len(), path), |(rank, (_, name))| (rank, *name));
        let name = manager["name"].as_str().unwrap_or_default().to_string();
        projects
            .entry((rank, format!("{project} {version}")))
            .or_default()
            .push(name);
    }
    let real: Vec<String> = projects
        .into_iter()
        .map(|((_, project), managers)| format!("{project} controllers ({})", managers.join(", ")))
        .collect();
    Ok(vec![
        format!(
            "real: Kubernetes {kubernetes} control plane (etcd, kube-apiserver, kube-controller-manager); {}",
            real.join(" and ")
        ),
        "simulated: the hosts (BYOH host agents, kubeadm, host-preparation Jobs) and the workload \
         clusters (API servers and etcd, tools/workload-clusters)"
            .to_string(),
    ])
}
