//! Config Sync on a workload cluster: a RootSync pointing at the cluster's directory of the
//! O-Cloud's GitOps repository, applied to the cluster by a ClusterResourceSet (Cluster API
//! applies its resources once the cluster's API server answers, and again when they change),
//! with the repository's credentials when it needs them. Config Sync itself must be installed
//! on the cluster (its RootSync CRD and the `config-management-system` namespace).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::capi::{ADDONS_API, CAPI_CLUSTER_NAME_LABEL, object_metadata};
use crate::template::ClusterParameters;

/// Where Config Sync runs on the workload cluster, and the names of what is applied there.
pub const NAMESPACE: &str = "config-management-system";
pub const ROOT_SYNC: &str = "root-sync";
pub const CREDENTIALS_SECRET: &str = "git-creds";
/// Config Sync's RootSync API.
pub const ROOT_SYNC_API: &str = "configsync.gke.io/v1beta1";

/// The O-Cloud's GitOps repository, as the admin configures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub repo: String,
    pub branch: String,
    /// The repository's credentials (`username` and `token`, base64 as a Secret's `data`
    /// holds them), or none for a public repository.
    pub credentials: Option<Credentials>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub token: String,
}

/// The cluster's directory in the repository: its own choice, else its site's, else its name's.
pub fn directory(params: &ClusterParameters) -> String {
    match (&params.handoff.config_sync_directory, super::site(params)) {
        (Some(directory), _) => directory.clone(),
        (None, Some(site)) => format!("gitops/{site}-config"),
        (None, None) => format!("gitops/{}-config", params.cluster_name),
    }
}

/// The name of the ClusterResourceSet (and of the ConfigMap and Secret it applies).
pub fn resource_set_name(cluster_name: &str) -> String {
    format!("{cluster_name}-config-sync")
}

/// The RootSync of the cluster.
pub fn root_sync(params: &ClusterParameters, source: &Source) -> Value {
    let mut git = json!({
        "repo": source.repo,
        "branch": source.branch,
        "dir": directory(params),
        "auth": "none",
    });
    if source.credentials.is_some() {
        git["auth"] = json!("token");
        git["secretRef"] = json!({"name": CREDENTIALS_SECRET});
    }
    json!({"apiVersion": ROOT_SYNC_API, "kind": "RootSync",
        "metadata": {"name": ROOT_SYNC, "namespace": NAMESPACE},
        "spec": {"sourceFormat": "unstructured", "git": git}})
}

/// The objects in the cluster's namespace that bootstrap Config Sync on it: the ConfigMap
/// holding the RootSync, the Secret holding the credentials (when the repository needs them),
/// and the ClusterResourceSet applying both to this cluster only.
pub fn objects(request_name: &str, params: &ClusterParameters, source: &Source) -> Vec<Value> {
    let namespace = params.namespace();
    let name = resource_set_name(&params.cluster_name);
    let meta = || object_metadata(&name, &namespace, request_name, &params.cluster_name);
    let root_sync = serde_json::to_string(&root_sync(params, source)).unwrap_or_default();
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(),
        "data": {"root-sync.json": root_sync}}),
    ];
    let mut resources = vec![json!({"kind": "ConfigMap", "name": name})];
    if let Some(credentials) = &source.credentials {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": CREDENTIALS_SECRET, "namespace": NAMESPACE},
            "data": {"username": credentials.username, "token": credentials.token}});
        // A ClusterResourceSet applies a Secret's objects only from a Secret of its own type.
        let encoded = BASE64.encode(serde_json::to_string(&secret).unwrap_or_default());
        objects.push(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(),
            "type": "addons.cluster.x-k8s.io/resource-set",
            "data": {"git-creds.json": encoded}}),
        );
        resources.push(json!({"kind": "Secret", "name": name}));
    }
    objects.push(
        json!({"apiVersion": ADDONS_API, "kind": "ClusterResourceSet", "metadata": meta(),
        "spec": {
            "strategy": "Reconcile",
            "clusterSelector": {"matchLabels": {CAPI_CLUSTER_NAME_LABEL: params.cluster_name}},
            "resources": resources,
        }}),
    );
    objects
}
