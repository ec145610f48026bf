use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::template;

/// The SMO's request for one or more clusters, wire-compatible with Nephio's
/// `focom.nephio.org/v1alpha1` FocomProvisioningRequest and extended with
/// inventory-based selection (`allClusters`, `clusterNames`) and operations.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "focom.nephio.org",
    version = "v1alpha1",
    kind = "FocomProvisioningRequest",
    namespaced,
    shortname = "fpr",
    category = "oran",
    status = "FocomProvisioningRequestStatus",
    doc = "The SMO's request for clusters of the inventory, or for one fully described cluster.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.clustersReady"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.message"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "[has(self.allClusters) && self.allClusters, has(self.clusterNames), has(self.templateParameters)].filter(x, x).size() == 1"
).message(ONE_SELECTOR))]
// The O-Cloud is fixed at creation: moving a request would orphan its ProvisioningRequests on
// the first O-Cloud and duplicate them on the second. Absent stays absent.
#[x_kube(validation = Rule::new(
    "has(self.oCloudId) == has(oldSelf.oCloudId) && (!has(self.oCloudId) || self.oCloudId == oldSelf.oCloudId)"
).message(O_CLOUD_ID_IMMUTABLE).field_path(".oCloudId"))]
#[x_kube(validation = Rule::new(
    "has(self.oCloudNamespace) == has(oldSelf.oCloudNamespace) && (!has(self.oCloudNamespace) || self.oCloudNamespace == oldSelf.oCloudNamespace)"
).message(O_CLOUD_NAMESPACE_IMMUTABLE).field_path(".oCloudNamespace"))]
#[serde(rename_all = "camelCase")]
pub struct FocomProvisioningRequestSpec {
    /// Name of the OCloud on which to provision; absent means this cluster. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o_cloud_id: Option<String>,
    /// Namespace of the OCloud object (Nephio compatibility; defaults to the request's namespace;
    /// another namespace only if the admin allows it). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o_cloud_namespace: Option<String>,
    /// Human-readable name of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cluster template to instantiate.
    #[serde(default = "default_template_name")]
    pub template_name: String,
    /// Version of the cluster template.
    #[serde(default = "default_template_version")]
    pub template_version: String,
    /// Parameters of one fully described cluster (Nephio-style request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub template_parameters: Option<serde_json::Value>,
    /// Select every cluster of the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_clusters: Option<bool>,
    /// Select these clusters of the inventory by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.size() > 0").message(SOME_CLUSTER_NAMES))]
    pub cluster_names: Option<Vec<String>>,
    /// What to do with the selected clusters.
    #[serde(default)]
    pub operation: Operation,
}

/// The CRD's selection rules, which `kubectl apply` enforces and `render` repeats.
pub const ONE_SELECTOR: &str =
    "exactly one of allClusters: true, clusterNames or templateParameters must select the clusters";
pub const SOME_CLUSTER_NAMES: &str = "clusterNames must name at least one cluster";
pub const O_CLOUD_ID_IMMUTABLE: &str = "oCloudId cannot be set, changed or removed after creation: create a new request for another O-Cloud";
pub const O_CLOUD_NAMESPACE_IMMUTABLE: &str = "oCloudNamespace cannot be set, changed or removed after creation: create a new request for another O-Cloud";

impl FocomProvisioningRequestSpec {
    /// The CRD rule this spec breaks, if any (for specs that did not come through the API server).
    pub fn selection_error(&self) -> Option<&'static str> {
        let selectors = [
            self.all_clusters == Some(true),
            self.cluster_names.is_some(),
            self.template_parameters.is_some(),
        ];
        if selectors.iter().filter(|s| **s).count() != 1 {
            Some(ONE_SELECTOR)
        } else if self.cluster_names.as_ref().is_some_and(Vec::is_empty) {
            Some(SOME_CLUSTER_NAMES)
        } else {
            None
        }
    }
}

fn default_template_name() -> String {
    template::NAME.to_string()
}

fn default_template_version() -> String {
    template::VERSION.to_string()
}

/// What a FocomProvisioningRequest does with its clusters.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Ensure a ProvisioningRequest exists for every selected cluster.
    #[default]
    Create,
    /// Re-read the worker hosts of the selected clusters from the inventory.
    Scale,
    /// Delete the selected clusters.
    Delete,
}

/// Observed state of a FocomProvisioningRequest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FocomProvisioningRequestStatus {
    /// Aggregate phase: Pending, Creating, Synced, Failed, Deleting or Deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<FocomPhase>,
    /// Human-readable summary; names the failed clusters and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the phase or message last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Time>,
    /// Name of the ProvisioningRequest, for single-cluster requests (Nephio compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    /// Fulfilled clusters out of selected ones, for example `1/2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters_ready: Option<String>,
    /// One row per selected cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterStatus>,
    /// Validated, Feasible, Ready and related conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Aggregate phase of a FocomProvisioningRequest.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FocomPhase {
    #[default]
    Pending,
    Creating,
    Synced,
    Failed,
    Deleting,
    Deleted,
}

impl std::fmt::Display for FocomPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Status of one selected cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Cluster name.
    pub name: String,
    /// Name of the ProvisioningRequest provisioning it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_request: Option<String>,
    /// provisioningState of that ProvisioningRequest (or deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// provisioningMessage of that ProvisioningRequest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// UID of the provisioned Cluster API Cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cluster_id: Option<String>,
}

/// An O-Cloud: where ProvisioningRequests are created.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "focom.nephio.org",
    version = "v1alpha1",
    kind = "OCloud",
    namespaced,
    category = "oran",
    doc = "An O-Cloud reachable through a kubeconfig Secret or its O2ims REST API; with neither, the cluster the FOCOM operator runs in."
)]
#[x_kube(validation = Rule::new("!(has(self.o2imsSecret) && has(self.o2imsApi))").message(ONE_WAY_IN))]
#[serde(rename_all = "camelCase")]
pub struct OCloudSpec {
    /// Credentials of the O-Cloud's O2ims (Kubernetes) API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o2ims_secret: Option<O2imsSecret>,
    /// The O-Cloud's O2ims REST API, which FOCOM then provisions through (no kubeconfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o2ims_api: Option<O2imsApi>,
}

pub const ONE_WAY_IN: &str =
    "an OCloud is reached through o2imsSecret (a kubeconfig) or o2imsApi (its REST API), not both";
pub const HTTPS_ONLY: &str = "o2imsApi.url must be https://<host>[:<port>][/<path>], without query or fragment: the bearer token travels with every request";

/// The O-Cloud's O2ims REST API (the o2ims-api server) and the credentials to call it with.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("self.url.matches('^https://[^/?#]+(/[^?#]*)?$')").message(HTTPS_ONLY))]
#[serde(rename_all = "camelCase")]
pub struct O2imsApi {
    /// The API's URL (its `serviceUri`), e.g. `https://o2ims.example.org:8443`.
    pub url: String,
    /// The Secret, in the OCloud's namespace, whose `token` key is the bearer token (of an
    /// account bound to the provisioner role) and whose optional `ca.crt` key is the CA the
    /// API's certificate is checked against (else the system's roots).
    pub secret_ref: crate::crd::SecretReference,
}

/// Where the O-Cloud's kubeconfig is stored.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct O2imsSecret {
    /// The Secret whose `kubeconfig` key reaches the O-Cloud's API server.
    pub secret_ref: crate::crd::SecretReference,
}
