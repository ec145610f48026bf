//! What the API server served, from its own counter (`testcluster::requests`) and, by client,
//! from its audit log.

use std::collections::BTreeMap;

use kube::Client;
use serde_json::{Value, json};

/// The clients told apart (by User-Agent up to its first `/`): the operators, the upstream
/// managers, the simulated hosts, the benchmark itself, and the control plane's own (`testcluster`:
/// kube-controller-manager and kube-apiserver's loopback client run from the harness's binary);
/// the rest are counted as `other`.
pub const CLIENTS: [&str; 9] = [
    "o2ims-operator",
    "focom-operator",
    "cluster-api",
    "bootstrap-kubeadm",
    "controlplane-kubeadm",
    "byoh",
    "byoh-sim",
    "lcm-demo",
    "testcluster",
];

/// The project's own clients: the operators, and the simulated hosts' agents.
pub const PRODUCT: [&str; 3] = ["o2ims-operator", "focom-operator", "byoh-sim"];

/// Audit-logged writes of the product's clients.
pub fn product_writes(logged: &BTreeMap<(String, String), u64>) -> f64 {
    product_writes_by_request(logged)
        .values()
        .fold(0.0, |sum, n| sum + n)
}

/// [`product_writes`] by `<client> <verb> <resource>`: which writes they were.
pub fn product_writes_by_request(
    logged: &BTreeMap<(String, String), u64>,
) -> BTreeMap<String, f64> {
    logged
        .iter()
        .filter(|((agent, request), _)| {
            PRODUCT.contains(&agent.as_str()) && testcluster::is_audit_write(request)
        })
        .map(|((agent, request), n)| (format!("{agent} {request}"), *n as f64))
        .collect()
}

/// Audit-logged requests per cluster of each client: all, LIST, writes, and by request.
pub fn by_client(logged: &BTreeMap<(String, String), u64>, clusters: usize) -> Value {
    let n = clusters as f64;
    let mut clients = serde_json::Map::new();
    for ((agent, request), count) in logged {
        let client = match CLIENTS.iter().find(|c| *c == agent) {
            Some(client) => client.to_string(),
            None => "other".to_string(),
        };
        let entry = clients
            .entry(client)
            .or_insert_with(|| json!({"all": 0.0, "list": 0.0, "writes": 0.0, "by_request": {}}));
        let per_cluster = *count as f64 / n;
        let verb = request.split(' ').next().unwrap_or_default();
        let add = |value: &mut Value| *value = json!(value.as_f64().unwrap_or(0.0) + per_cluster);
        add(&mut entry["all"]);
        if verb == "list" {
            add(&mut entry["list"]);
        }
        if testcluster::is_audit_write(request) {
            add(&mut entry["writes"]);
        }
        add(&mut entry["by_request"][request]);
    }
    Value::Object(clients)
}

/// Requests served so far, by `"<VERB> <resource>/<subresource>"`.
#[derive(Clone, Debug, Default)]
pub struct Requests(pub BTreeMap<String, f64>);

impl Requests {
    pub async fn read(client: &Client) -> anyhow::Result<Self> {
        Ok(Self(testcluster::requests(client).await?))
    }

    /// What was served between `earlier` and `self`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .map(|(key, n)| (key.clone(), n - earlier.0.get(key).copied().unwrap_or(0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        )
    }

    // Sums start at 0.0: an empty f64 sum is -0.0, which prints as "-0".
    /// Requests of `verb`, every resource.
    pub fn verb(&self, verb: &str) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| key.split(' ').next() == Some(verb))
            .fold(0.0, |sum, (_, n)| sum + n)
    }

    /// Every write, the control plane's own lease renewals included.
    pub fn writes(&self) -> f64 {
        testcluster::WRITE_VERBS
            .iter()
            .fold(0.0, |sum, verb| sum + self.verb(verb))
    }

    pub fn total(&self) -> f64 {
        self.0.values().fold(0.0, |sum, n| sum + n)
    }
}
