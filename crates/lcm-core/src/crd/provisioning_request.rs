use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request to the O-Cloud for one Kubernetes cluster, wire-compatible with
/// Nephio's `o2ims.provisioning.oran.org/v1alpha1` ProvisioningRequest.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "o2ims.provisioning.oran.org",
    version = "v1alpha1",
    kind = "ProvisioningRequest",
    shortname = "provreq",
    category = "oran",
    status = "ProvisioningRequestStatus",
    doc = "A request for one Kubernetes cluster on bare-metal hosts of the O-Cloud (O2ims infrastructure provisioning).",
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.provisioningStatus.provisioningState"
    ),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.templateParameters.clusterName"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.provisioningStatus.provisioningMessage"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningRequestSpec {
    /// Human-readable name of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text description of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Name of the cluster template to instantiate (for example `byoh-workload-cluster`).
    pub template_name: String,
    /// Version of the cluster template (for example `v1`).
    pub template_version: String,
    /// Parameters of the template; their schema depends on the template.
    #[schemars(schema_with = "crate::crd::free_form_object")]
    pub template_parameters: serde_json::Value,
}

impl ProvisioningRequest {
    /// The conditions of its status (none before the operator wrote one).
    pub fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }
}

/// Observed state of a ProvisioningRequest.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningRequestStatus {
    /// Overall state, message and time of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_status: Option<ProvisioningStatus>,
    /// Identifiers of the resources provisioned for this request (real UIDs of the cluster and hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_resource_set: Option<ProvisionedResourceSet>,
    /// Provisioning phase of the node cluster (O2ims R005-v11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_cluster_provisioning_status: Option<ResourceProvisioningStatus>,
    /// Provisioning phase of each infrastructure resource (host) of the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infrastructure_resource_provisioning_status: Vec<ResourceProvisioningStatus>,
    /// Where the workload cluster's kubeconfig is stored, once it is provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret: Option<SecretReference>,
    /// Detailed conditions: ProvisioningRequestValidated, HostsPrepared, ClusterResourcesCreated,
    /// ControlPlaneReady, WorkersReady, ClusterProvisioned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// For each stage condition that is False: since when it has had its current reason. A
    /// stage's timeout counts from then, so a stage that recovers (a new host-preparation Job
    /// runs, a missing host registers) gets its full time again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_since: BTreeMap<String, Time>,
}

/// Overall provisioning state as Nephio and the O2ims model report it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningStatus {
    /// One of progressing, fulfilled, failed, deleting (Nephio's values). A request not yet
    /// validated is progressing, its `ProvisioningRequestValidated` condition Unknown.
    pub provisioning_state: ProvisioningState,
    /// What the request waits for, or why it failed.
    #[serde(default)]
    pub provisioning_message: String,
    /// When the state or message last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_update_time: Option<Time>,
}

/// Provisioning state of a request: only the values Nephio's ProvisioningRequest allows, so an
/// SMO written for Nephio understands every state (the O2ims REST API's `PENDING` is derived
/// from the conditions).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProvisioningState {
    #[default]
    Progressing,
    Fulfilled,
    Failed,
    Deleting,
}

impl ProvisioningState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progressing => "progressing",
            Self::Fulfilled => "fulfilled",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
        }
    }
}

impl std::fmt::Display for ProvisioningState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifiers of what was provisioned.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedResourceSet {
    /// UID of the Cluster API Cluster object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o_cloud_node_cluster_id: Option<String>,
    /// UIDs of the ByoHost objects the cluster runs on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub o_cloud_infrastructure_resource_ids: Vec<String>,
}

/// Provisioning status of one resource (O2ims R005-v11).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceProvisioningStatus {
    /// Name of the resource (cluster name or host id).
    pub resource_name: String,
    /// UID of the resource, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Phase of the resource.
    pub resource_provisioning_phase: ResourceProvisioningPhase,
}

/// Phase of one provisioned resource, as the O2ims model names it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceProvisioningPhase {
    #[default]
    Processing,
    Provisioned,
    AwaitingFreeResources,
    Failed,
}

/// Namespaced reference to a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret.
    pub namespace: String,
}
