use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One O2ims alarm (an `AlarmEventRecord`), kept here so that alarms, and what happened to
/// them, survive restarts of the O2ims API, which alone writes them: it raises one per
/// (subject, probable cause) while the cause is observed, clears it when the cause is gone, and
/// deletes cleared ones past their retention. Named by its `alarmEventRecordId`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "o2ims.provisioning.oran.org",
    version = "v1alpha1",
    kind = "O2imsAlarm",
    namespaced,
    category = "oran",
    doc = "An O2ims alarm: a fault of a host, a cluster or the O-Cloud, raised and cleared by the O2ims API.",
    printcolumn(name = "Cause", type_ = "string", json_path = ".spec.probableCause"),
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject"),
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(name = "Cleared", type_ = "date", json_path = ".spec.clearedTime"),
    printcolumn(
        name = "Acknowledged",
        type_ = "boolean",
        json_path = ".spec.acknowledged"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.key == oldSelf.key && self.probableCause == oldSelf.probableCause && self.entity == oldSelf.entity && self.resourceId == oldSelf.resourceId && self.raisedTime == oldSelf.raisedTime"
).message("an alarm's cause, subject and raise time are fixed: a new occurrence is a new alarm"))]
#[x_kube(validation = Rule::new("!has(oldSelf.clearedTime) || has(self.clearedTime)").message("a cleared alarm stays cleared"))]
#[serde(rename_all = "camelCase")]
pub struct O2imsAlarmSpec {
    /// What the alarm is about, `<entity>/<subject>/<probable cause>`: at most one alarm with
    /// a key is active at a time.
    pub key: String,
    /// The name of its probable cause (`GET .../probableCauses`).
    pub probable_cause: String,
    /// What kind of thing is at fault.
    pub entity: AlarmEntity,
    /// The host id, the ProvisioningRequest or the alert the alarm is about, for people.
    pub subject: String,
    /// The O2ims id of what is at fault: a resource, a deployment manager or the O-Cloud.
    pub resource_id: String,
    pub severity: Severity,
    pub raised_time: Time,
    /// When anything of it last changed (raised, severity, cleared, acknowledged).
    pub changed_time: Time,
    /// When its cause was no longer observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_time: Option<Time>,
    #[serde(default)]
    pub acknowledged: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_time: Option<Time>,
    /// What was observed (`message`, and an alert's labels and annotations).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
}

/// What kind of thing an alarm is about; each has its alarm dictionary.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum AlarmEntity {
    /// A host (resource type `byoh-host`).
    Host,
    /// A cluster (deployment manager) or the ProvisioningRequest making it.
    Cluster,
    /// The O-Cloud itself: its management plane (alerts of its Prometheus).
    Ocloud,
}

impl AlarmEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Cluster => "cluster",
            Self::Ocloud => "ocloud",
        }
    }
}

/// The perceived severity of an active alarm (O2ims `PerceivedSeverity` but `CLEARED`, which a
/// cleared alarm shows).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
    Indeterminate,
}
