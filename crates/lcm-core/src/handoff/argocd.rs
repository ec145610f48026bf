//! ArgoCD's declarative cluster Secret for a workload cluster, from the kubeconfig Cluster API
//! writes (`<cluster>-kubeconfig`, key `value`): ArgoCD reaches the cluster with the same
//! server, CA and client credentials, and routes workloads to it by its labels.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::capi::{CAPI_CLUSTER_NAME_LABEL, MANAGED_BY};
use crate::template::ClusterParameters;
use crate::{PROVISIONING_REQUEST_LABEL, names};

/// The label ArgoCD finds its cluster Secrets by.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// What a registration was made from (the kubeconfig Secret's resourceVersion and the labels):
/// the operator rebuilds it only when that changed (Cluster API rotating the client
/// certificate, the inventory relabelling the cluster), reading the kubeconfig only then.
pub const FINGERPRINT_ANNOTATION: &str = "o2ims.provisioning.oran.org/registered-from";

/// The name of the ArgoCD cluster Secret of cluster `cluster_name` (unique: so are clusters).
pub fn secret_name(cluster_name: &str) -> String {
    format!("cluster-{cluster_name}")
}

/// The name of the Secret Cluster API keeps the cluster's admin kubeconfig in.
pub fn kubeconfig_secret_name(cluster_name: &str) -> String {
    format!("{cluster_name}-kubeconfig")
}

/// The registration of `params`' cluster in ArgoCD's `namespace`, from the kubeconfig
/// `kubeconfig` (the Secret's `value`, at `resource_version`); an error says what the
/// kubeconfig lacks.
pub fn cluster_secret(
    request_name: &str,
    params: &ClusterParameters,
    namespace: &str,
    kubeconfig: &str,
    resource_version: &str,
) -> Result<Value, String> {
    let target = Target::of(kubeconfig)?;
    let mut tls = serde_json::Map::new();
    for (key, value) in [
        ("caData", target.ca_data),
        ("certData", target.cert_data),
        ("keyData", target.key_data),
    ] {
        if let Some(value) = value {
            tls.insert(key.into(), json!(value));
        }
    }
    tls.insert("insecure".into(), json!(target.insecure));
    let mut config = json!({"tlsClientConfig": tls});
    if let Some(token) = target.token {
        config["bearerToken"] = json!(token);
    }
    Ok(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": secret_name(&params.cluster_name),
            "namespace": namespace,
            "labels": labels(request_name, params),
            "annotations": {FINGERPRINT_ANNOTATION: fingerprint(request_name, params, resource_version)},
        },
        "type": "Opaque",
        "stringData": {
            "name": params.cluster_name,
            "server": target.server,
            "config": config.to_string(),
        },
    }))
}

/// The fingerprint of a registration made from the kubeconfig at `resource_version`.
pub fn fingerprint(
    request_name: &str,
    params: &ClusterParameters,
    resource_version: &str,
) -> String {
    let labels = serde_json::to_string(&labels(request_name, params)).unwrap_or_default();
    let hash = names::fnv1a64(format!("{resource_version} {labels}").as_bytes());
    format!("{resource_version}-{hash:016x}")
}

/// The registration's labels: the cluster's own (site, role, ...), then those ArgoCD and the
/// operator find it by, which a cluster's label cannot override (their prefixes are reserved).
fn labels(request_name: &str, params: &ClusterParameters) -> BTreeMap<String, String> {
    let mut labels = params.labels.clone();
    labels.extend([
        (SECRET_TYPE_LABEL.to_string(), "cluster".to_string()),
        (
            PROVISIONING_REQUEST_LABEL.to_string(),
            names::label_value(request_name),
        ),
        (
            CAPI_CLUSTER_NAME_LABEL.to_string(),
            params.cluster_name.clone(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
    ]);
    labels
}

/// The parts of a kubeconfig that name its current context's cluster and credentials.
#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    value: T,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    token: Option<String>,
}

/// How ArgoCD reaches the cluster: the current context's server and credentials, as the
/// kubeconfig holds them (base64 PEM, which is what ArgoCD's `*Data` fields hold too).
struct Target {
    server: String,
    ca_data: Option<String>,
    insecure: bool,
    cert_data: Option<String>,
    key_data: Option<String>,
    token: Option<String>,
}

impl Target {
    fn of(text: &str) -> Result<Self, String> {
        let kubeconfig: Kubeconfig =
            crate::yaml::from_str(text).map_err(|e| format!("the kubeconfig is not valid: {e}"))?;
        let missing = |what: &str, name: &str| format!("the kubeconfig has no {what} `{name}`");
        let current = &kubeconfig.current_context;
        let context =
            named(kubeconfig.contexts, current).ok_or_else(|| missing("context", current))?;
        let cluster = named(kubeconfig.clusters, &context.cluster)
            .ok_or_else(|| missing("cluster", &context.cluster))?;
        let user =
            named(kubeconfig.users, &context.user).ok_or_else(|| missing("user", &context.user))?;
        if user.token.is_none() && (user.cert_data.is_none() || user.key_data.is_none()) {
            return Err(format!(
                "the kubeconfig's user `{}` has neither a token nor client-certificate-data and client-key-data",
                context.user
            ));
        }
        Ok(Self {
            server: cluster.server,
            ca_data: cluster.ca_data,
            insecure: cluster.insecure,
            cert_data: user.cert_data,
            key_data: user.key_data,
            token: user.token,
        })
    }
}

fn named<T>(entries: Vec<Named<T>>, name: &str) -> Option<T> {
    entries
        .into_iter()
        .find(|e| e.name == name)
        .map(|e| e.value)
}
