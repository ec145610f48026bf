//! Typed views of the status Cluster API, KCP, BYOH and their controllers write,
//! read from the objects as JSON. Only the fields the status mapping needs.

use serde::Deserialize;
use serde_json::Value;

use super::{CAPI_CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL};
use crate::HOST_ID_LABEL;

/// A Cluster API condition (v1beta1 shape: it also has a severity).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CapiCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

fn condition<'a>(conditions: &'a [CapiCondition], type_: &str) -> Option<&'a CapiCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// A condition of Cluster API's v1beta2 conditions (`status.v1beta2.conditions`, which v1.10
/// writes beside the v1beta1 ones), else of the v1beta1 ones under `fallback`'s type.
fn v1beta2_condition(object: &Value, type_: &str, fallback: &str) -> Option<CapiCondition> {
    let v1beta2: Vec<CapiCondition> = parse(&object["status"]["v1beta2"]["conditions"]);
    let v1beta1: Vec<CapiCondition> = parse(&object["status"]["conditions"]);
    condition(&v1beta2, type_)
        .or_else(|| condition(&v1beta1, fallback))
        .cloned()
}

fn condition_true(conditions: &[CapiCondition], type_: &str) -> bool {
    condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Failure fields every CAPI object of v1beta1 carries.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub failure_message: Option<String>,
}

impl Failure {
    /// `reason: message` when the object reports a failure.
    pub fn describe(&self) -> Option<String> {
        match (&self.failure_reason, &self.failure_message) {
            (None, None) => None,
            (reason, message) => Some(
                [reason.as_deref(), message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de> + Default>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn replicas(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

/// `Cluster` status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    pub uid: Option<String>,
    pub phase: Option<String>,
    pub infrastructure_ready: bool,
    pub control_plane_ready: bool,
    pub ready: bool,
    pub deleting: bool,
    pub failure: Failure,
    /// `ControlPlaneInitialized` (v1beta2, else v1beta1) is True: the control plane came up once.
    pub control_plane_initialized: bool,
    /// `ControlPlaneAvailable` (v1beta2; v1beta1: `ControlPlaneReady`).
    pub control_plane_available: Option<CapiCondition>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClusterStatusFields {
    #[serde(default)]
    phase: Option<String>,
    #[serde(default)]
    infrastructure_ready: bool,
    #[serde(default)]
    control_plane_ready: bool,
    #[serde(default)]
    conditions: Vec<CapiCondition>,
    #[serde(flatten)]
    failure: Failure,
}

impl ClusterView {
    pub fn from_object(object: &Value) -> Self {
        let status: ClusterStatusFields = parse(&object["status"]);
        Self {
            uid: object["metadata"]["uid"].as_str().map(String::from),
            phase: status.phase,
            infrastructure_ready: status.infrastructure_ready,
            control_plane_ready: status.control_plane_ready,
            ready: condition_true(&status.conditions, "Ready"),
            deleting: !object["metadata"]["deletionTimestamp"].is_null(),
            failure: status.failure,
            control_plane_initialized: v1beta2_condition(
                object,
                "ControlPlaneInitialized",
                "ControlPlaneInitialized",
            )
            .is_some_and(|c| c.status == "True"),
            control_plane_available: v1beta2_condition(
                object,
                "ControlPlaneAvailable",
                "ControlPlaneReady",
            ),
        }
    }
}

/// `KubeadmControlPlane` desired and observed state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControlPlaneView {
    pub desired_replicas: i64,
    pub desired_version: String,
    pub replicas: i64,
    pub ready_replicas: i64,
    pub updated_replicas: i64,
    pub initialized: bool,
    pub ready: bool,
    pub version: Option<String>,
    pub failure: Failure,
    /// The status describes an older spec (`status.observedGeneration < metadata.generation`).
    pub stale: bool,
}

/// Whether a controller has not yet reported on the object's current spec.
fn stale(object: &Value) -> bool {
    match (
        object["metadata"]["generation"].as_i64(),
        object["status"]["observedGeneration"].as_i64(),
    ) {
        (Some(generation), Some(observed)) => observed < generation,
        _ => false,
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ControlPlaneStatusFields {
    #[serde(default)]
    initialized: bool,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    version: Option<String>,
    #[serde(flatten)]
    failure: Failure,
}

impl ControlPlaneView {
    pub fn from_object(object: &Value) -> Self {
        let status = &object["status"];
        let fields: ControlPlaneStatusFields = parse(status);
        Self {
            desired_replicas: object["spec"]["replicas"].as_i64().unwrap_or(1),
            desired_version: object["spec"]["version"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            replicas: replicas(&status["replicas"]),
            ready_replicas: replicas(&status["readyReplicas"]),
            updated_replicas: replicas(&status["updatedReplicas"]),
            initialized: fields.initialized,
            ready: fields.ready,
            version: fields.version,
            failure: fields.failure,
            stale: stale(object),
        }
    }
}

/// `MachineDeployment` desired and observed state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkersView {
    pub desired_replicas: i64,
    /// The version machines are (being) rolled to.
    pub desired_version: Option<String>,
    pub replicas: i64,
    pub ready_replicas: i64,
    pub updated_replicas: i64,
    pub phase: Option<String>,
    /// The status describes an older spec.
    pub stale: bool,
}

impl WorkersView {
    pub fn from_object(object: &Value) -> Self {
        let status = &object["status"];
        Self {
            desired_replicas: object["spec"]["replicas"].as_i64().unwrap_or(1),
            desired_version: object["spec"]["template"]["spec"]["version"]
                .as_str()
                .map(String::from),
            replicas: replicas(&status["replicas"]),
            ready_replicas: replicas(&status["readyReplicas"]),
            updated_replicas: replicas(&status["updatedReplicas"]),
            phase: status["phase"].as_str().map(String::from),
            stale: stale(object),
        }
    }
}

/// A `Machine`: its failure, and the kubelet version its Node reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MachineView {
    pub name: String,
    pub phase: Option<String>,
    pub failure: Failure,
    /// Whether it belongs to the control plane (`cluster.x-k8s.io/control-plane` label).
    pub control_plane: bool,
    pub deleting: bool,
    /// `status.nodeInfo.kubeletVersion`, copied by Cluster API from the Node.
    pub kubelet_version: Option<String>,
    pub namespace: String,
    /// Its cluster (`cluster.x-k8s.io/cluster-name` label).
    pub cluster: Option<String>,
    /// Its Node (`status.nodeRef.name`), once it joined.
    pub node: Option<String>,
    /// Whether its Node reports Ready: `NodeReady` (v1beta2; v1beta1: `NodeHealthy`).
    pub node_ready: Option<CapiCondition>,
}

impl MachineView {
    pub fn from_object(object: &Value) -> Self {
        Self {
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            phase: object["status"]["phase"].as_str().map(String::from),
            failure: parse(&object["status"]),
            control_plane: !object["metadata"]["labels"][CONTROL_PLANE_LABEL].is_null(),
            deleting: !object["metadata"]["deletionTimestamp"].is_null(),
            kubelet_version: object["status"]["nodeInfo"]["kubeletVersion"]
                .as_str()
                .map(String::from),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            cluster: object["metadata"]["labels"][CAPI_CLUSTER_NAME_LABEL]
                .as_str()
                .map(String::from),
            node: object["status"]["nodeRef"]["name"]
                .as_str()
                .map(String::from),
            node_ready: v1beta2_condition(object, "NodeReady", "NodeHealthy"),
        }
    }
}

/// A `ByoMachine`: whether it found a host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ByoMachineView {
    pub name: String,
    /// Whether it belongs to the control plane (`cluster.x-k8s.io/control-plane` label).
    pub control_plane: bool,
    /// Reason of `BYOHostReady=False`, as in `BYOHostsUnavailable`.
    pub host_not_ready_reason: Option<String>,
}

impl ByoMachineView {
    pub fn from_object(object: &Value) -> Self {
        let conditions: Vec<CapiCondition> = parse(&object["status"]["conditions"]);
        Self {
            name: object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            control_plane: !object["metadata"]["labels"][CONTROL_PLANE_LABEL].is_null(),
            host_not_ready_reason: condition(&conditions, "BYOHostReady")
                .filter(|c| c.status == "False")
                .and_then(|c| c.reason.clone()),
        }
    }

    pub fn waits_for_host(&self) -> bool {
        self.host_not_ready_reason.as_deref() == Some("BYOHostsUnavailable")
    }
}

/// Reason of `K8sNodeBootstrapSucceeded=False` after a failed bootstrap.
pub const BOOTSTRAP_FAILED_REASON: &str = "CloudInitExecutionFailed";

/// A registered host (`ByoHost`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ByoHostView {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub host_id: Option<String>,
    /// The cluster that claimed it (`cluster.x-k8s.io/cluster-name` label).
    pub claimed_by: Option<String>,
    /// Namespace of the ByoMachine that claimed it.
    pub machine_namespace: Option<String>,
    /// Name of the ByoMachine (and so of the Machine) that claimed it.
    pub machine: Option<String>,
    /// `K8sNodeBootstrapSucceeded`: None while unknown.
    pub bootstrapped: Option<bool>,
    pub bootstrap_reason: Option<String>,
}

impl ByoHostView {
    pub fn from_object(object: &Value) -> Self {
        let metadata = &object["metadata"];
        let label = |key: &str| metadata["labels"][key].as_str().map(String::from);
        let conditions: Vec<CapiCondition> = parse(&object["status"]["conditions"]);
        let bootstrap = condition(&conditions, "K8sNodeBootstrapSucceeded");
        Self {
            name: metadata["name"].as_str().unwrap_or_default().to_string(),
            namespace: metadata["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            uid: metadata["uid"].as_str().map(String::from),
            host_id: label(HOST_ID_LABEL),
            claimed_by: label(CAPI_CLUSTER_NAME_LABEL),
            machine_namespace: object["status"]["machineRef"]["namespace"]
                .as_str()
                .map(String::from),
            machine: object["status"]["machineRef"]["name"]
                .as_str()
                .map(String::from),
            bootstrapped: bootstrap.map(|c| c.status == "True"),
            bootstrap_reason: bootstrap.and_then(|c| c.reason.clone()),
        }
    }

    /// Whether its agent's last bootstrap failed (BYOH reports it only this way, and retries).
    pub fn bootstrap_failed(&self) -> bool {
        self.bootstrapped == Some(false)
            && self.bootstrap_reason.as_deref() == Some(BOOTSTRAP_FAILED_REASON)
    }

    /// Whether the host is claimed by the cluster `cluster` in `namespace`.
    pub fn claimed_by_cluster(&self, namespace: &str, cluster: &str) -> bool {
        self.claimed_by.as_deref() == Some(cluster)
            && self
                .machine_namespace
                .as_deref()
                .is_none_or(|ns| ns == namespace)
    }
}
