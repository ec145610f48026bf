//! The benchmark's fleet: N clusters of two hosts, requested by ten FocomProvisioningRequests
//! of a tenth each (as an SMO rolls out by region), and what the churn adds to the inventory
//! from the start: the clusters created during the churn and a spare worker for each cluster
//! it scales.

use kube::Api;
use kube::Client;
use kube::api::DynamicObject;
use lcm_core::capi::Kind;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};
use serde_json::{Value, json};

pub const NAMESPACE: &str = "focom-system";
const BATCHES: usize = 10;

pub struct Fleet {
    /// The clusters provisioned first.
    pub clusters: usize,
}

impl Fleet {
    /// Clusters per FocomProvisioningRequest; as many are deleted, scaled and created by the churn.
    pub fn batch_size(&self) -> usize {
        self.clusters.div_ceil(BATCHES)
    }

    /// The FocomProvisioningRequests of the first provisioning, with their clusters.
    pub fn batches(&self) -> Vec<(String, Vec<String>)> {
        let names: Vec<String> = (1..=self.clusters).map(cluster).collect();
        names
            .chunks(self.batch_size())
            .enumerate()
            .map(|(b, chunk)| (format!("fleet-{b}"), chunk.to_vec()))
            .collect()
    }

    /// The clusters the churn creates, in a request of their own.
    pub fn new_clusters(&self) -> (String, Vec<String>) {
        let first = self.clusters + 1;
        let names = (first..first + self.batch_size()).map(cluster).collect();
        ("fleet-new".to_string(), names)
    }

    /// How many hosts the inventory has, for the first provisioning and the churn alike.
    pub fn hosts(&self) -> usize {
        2 * (self.clusters + self.batch_size()) + self.batch_size()
    }

    /// The inventory; with `scaled`, the clusters of `fleet-1` have their spare worker too.
    pub fn inventory(&self, scaled: bool) -> String {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";
        let all = self.clusters + self.batch_size();
        let address =
            |i: usize| format!("10.{}.{}.{}", 20 + i / 40000, (i / 200) % 200, i % 200 + 1);
        let host = |id: String, i: usize| json!({"id": id, "hostname": hostname(i), "address": address(i), "sshHostKeys": [key]});
        let mut hosts: Vec<Value> = (1..=2 * all).map(|i| host(host_id(i), i)).collect();
        let spares = (1..=self.batch_size()).map(|s| host(format!("spare{s}"), 2 * all + s));
        hosts.extend(spares);
        let batches = self.batches();
        let scaled_clusters = batches.get(1).map_or(&[][..], |(_, clusters)| clusters);
        // Endpoints in 172.16.0.0/12, which the stack's network namespace serves locally: the
        // simulated workload clusters answer there.
        let definitions: Vec<Value> = (1..=all)
            .map(|c| {
                let [control_plane, worker] = cluster_hosts(c).map(host_id);
                let mut workers = vec![worker];
                let spare = scaled_clusters.iter().position(|s| *s == cluster(c));
                if let (true, Some(s)) = (scaled, spare) {
                    workers.push(format!("spare{}", s + 1));
                }
                json!({"name": cluster(c), "controlPlaneEndpoint": format!("172.{}.{}.{}", 24 + c / 40000, (c / 200) % 200, c % 200 + 1),
                    "controlPlaneHosts": [control_plane], "workerHosts": workers})
            })
            .collect();
        json!({"defaults": {"hostPreparation": "skip", "cni": "none"}, "hosts": hosts, "clusters": definitions}).to_string()
    }
}

fn cluster(c: usize) -> String {
    format!("c{c}")
}

/// The numbers of the hosts of cluster number `c`: its control-plane host, its worker.
fn cluster_hosts(c: usize) -> [usize; 2] {
    [2 * c - 1, 2 * c]
}

fn host_id(i: usize) -> String {
    format!("h{i}")
}

fn hostname(i: usize) -> String {
    format!("node{i}")
}

/// The id and hostname of each host the inventory gives `cluster` first.
pub fn hosts_of(cluster: &str) -> [(String, String); 2] {
    let c: usize = cluster.trim_start_matches('c').parse().unwrap_or_default();
    cluster_hosts(c).map(|i| (host_id(i), hostname(i)))
}

/// A FocomProvisioningRequest of `clusters` doing `operation`.
pub fn request(name: &str, clusters: &[String], operation: &str) -> String {
    json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"clusterNames": clusters, "operation": operation}})
    .to_string()
}

/// Whether the FocomProvisioningRequest `name` is in `phase` for its current spec; an error
/// when it failed.
pub async fn reached(client: &Client, name: &str, phase: FocomPhase) -> anyhow::Result<bool> {
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NAMESPACE);
    let request = api.get(name).await?;
    let status = request.status.unwrap_or_default();
    anyhow::ensure!(
        status.phase != Some(FocomPhase::Failed),
        "{name} failed: {}",
        status.message.unwrap_or_default()
    );
    Ok(status.phase == Some(phase) && status.observed_generation == request.metadata.generation)
}

/// ByoHosts a machine holds.
pub async fn claimed_hosts(client: &Client) -> anyhow::Result<usize> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &Kind::ByoHost.api_resource());
    let hosts = api.list(&Default::default()).await?;
    Ok(hosts
        .iter()
        .filter(|h| h.data["status"]["machineRef"].is_object())
        .count())
}
