//! O2ims alarms (`/o2ims-infrastructureMonitoring/v1`): what the O-Cloud raises, for what,
//! how it looks over REST and in notifications, and the decisions that keep the stored alarms
//! (`O2imsAlarm`s) level with what is observed: raise what is observed and not active, clear
//! what is active and no longer observed, forget cleared ones past their retention.
//!
//! Alarms come from three places: hosts (a host the inventory names that never registered, a
//! failed host-preparation Job, a failed bootstrap, a Node that stopped reporting), clusters
//! (a failed request or one near a stage's timeout, a control plane not available, nodes not
//! Ready, failing machines) and the O-Cloud's Prometheus (an Alertmanager alert, by its
//! `alertname`). Each has a probable cause with a fixed severity; an alert's severity is its
//! `severity` label.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::derived_id;
use super::inventory::{self, Cloud, HostView};
use super::selection::Listed;
use crate::capi::observe::{ByoHostView, CapiCondition, ClusterView, MachineView};
use crate::capi::prepared_hosts;
use crate::crd::ProvisioningRequest;
use crate::crd::{AlarmEntity, O2imsAlarm, O2imsAlarmSpec, Severity};
use crate::status::provisioning::{StageTimeouts, running_stage_clocks};

/// Path prefix of the alarms API.
pub const ALARMS_PREFIX: &str = "/o2ims-infrastructureMonitoring/v1";
/// Version of the alarms API served.
pub const ALARMS_VERSION: &str = "1.0.0";
/// Version of this O-Cloud's alarm dictionaries.
pub const DICTIONARY_VERSION: &str = "1.0.0";
/// The `key` prefix of alarms raised from Alertmanager alerts.
pub const ALERT_KEY_PREFIX: &str = "ocloud/alert/";

/// A probable cause the O-Cloud raises alarms for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cause {
    pub name: &'static str,
    pub entity: AlarmEntity,
    pub severity: Severity,
    pub description: &'static str,
    pub repair: &'static str,
}

/// Every cause observed from hosts and clusters (alerts bring their own).
pub const CAUSES: [Cause; 9] = [
    Cause {
        name: "HostNotRegistered",
        entity: AlarmEntity::Host,
        severity: Severity::Warning,
        description: "A host of the O-Cloud's host inventory has no ByoHost: its BYOH agent never registered, so no cluster can use it.",
        repair: "Check that the host is up and its agent runs (hostPreparation: auto prepares it), or remove it from the inventory.",
    },
    Cause {
        name: "HostPreparationFailed",
        entity: AlarmEntity::Host,
        severity: Severity::Major,
        description: "The host-preparation Job (Ansible) for the host failed.",
        repair: "Read the Job's log in the O2IMS operator's namespace; fix SSH access or the host, then the operator retries with a new Job.",
    },
    Cause {
        name: "HostBootstrapFailed",
        entity: AlarmEntity::Host,
        severity: Severity::Major,
        description: "Bootstrapping the host as a node failed (ByoHost K8sNodeBootstrapSucceeded=False); its agent retries.",
        repair: "Read the ByoHost's Events and the agent's log on the host (cloud-init output).",
    },
    Cause {
        name: "HostNotReporting",
        entity: AlarmEntity::Host,
        severity: Severity::Major,
        description: "The host's Node stopped reporting (its Machine's NodeReady is Unknown): the host, its kubelet or its network is down.",
        repair: "Check the host's power, network and kubelet; Cluster API replaces nothing on its own here.",
    },
    Cause {
        name: "ProvisioningFailed",
        entity: AlarmEntity::Cluster,
        severity: Severity::Major,
        description: "A ProvisioningRequest failed; its cluster is not (or no longer) being provisioned.",
        repair: "Read the request's status (message and conditions); fix the cause and change or recreate the request.",
    },
    Cause {
        name: "ProvisioningStageNearTimeout",
        entity: AlarmEntity::Cluster,
        severity: Severity::Warning,
        description: "A ProvisioningRequest has waited most of a stage's timeout; it fails when the timeout passes.",
        repair: "Read what the request waits for in its status message; a host usually needs attention.",
    },
    Cause {
        name: "ControlPlaneUnavailable",
        entity: AlarmEntity::Cluster,
        severity: Severity::Critical,
        description: "The cluster's control plane is not available (Cluster ControlPlaneAvailable=False after it was initialized).",
        repair: "Check the control-plane hosts and their API server, etcd and kube-vip pods.",
    },
    Cause {
        name: "NodesNotReady",
        entity: AlarmEntity::Cluster,
        severity: Severity::Major,
        description: "Nodes of the cluster are not Ready (their Machines' NodeReady=False).",
        repair: "Check the named nodes (kubectl describe node) and their hosts.",
    },
    Cause {
        name: "MachinesFailed",
        entity: AlarmEntity::Cluster,
        severity: Severity::Major,
        description: "Machines of the cluster report a failure (failureReason, or phase Failed).",
        repair: "Read the named Machines' status; delete a failed Machine for Cluster API to replace it.",
    },
];

/// The cause named `name`, if observed from hosts and clusters.
pub fn cause(name: &str) -> Option<&'static Cause> {
    CAUSES.iter().find(|c| c.name == name)
}

/// An alarm that should be active.
#[derive(Clone, Debug, PartialEq)]
pub struct Raised {
    pub key: String,
    pub cause: String,
    pub entity: AlarmEntity,
    pub subject: String,
    pub resource_id: String,
    pub severity: Severity,
    pub extensions: BTreeMap<String, String>,
}

impl Raised {
    /// An alarm of a known cause about `subject`, saying `message`.
    pub fn of(cause: &Cause, subject: &str, resource_id: &str, message: String) -> Self {
        Self {
            key: format!("{}/{subject}/{}", entity_name(cause.entity), cause.name),
            cause: cause.name.to_string(),
            entity: cause.entity,
            subject: subject.to_string(),
            resource_id: resource_id.to_string(),
            severity: cause.severity,
            extensions: [("message".to_string(), message)].into(),
        }
    }

    /// The stored alarm raising this at `now`, named `id`.
    pub fn alarm(&self, id: &str, now: &Time) -> O2imsAlarm {
        O2imsAlarm::new(
            id,
            O2imsAlarmSpec {
                key: self.key.clone(),
                probable_cause: self.cause.clone(),
                entity: self.entity,
                subject: self.subject.clone(),
                resource_id: self.resource_id.clone(),
                severity: self.severity,
                raised_time: now.clone(),
                changed_time: now.clone(),
                cleared_time: None,
                acknowledged: false,
                acknowledged_time: None,
                extensions: self.extensions.clone(),
            },
        )
    }
}

fn entity_name(entity: AlarmEntity) -> &'static str {
    entity.as_str()
}

/// What the O-Cloud observes of hosts: the hosts (inventory and registered), the ByoHosts,
/// the host-preparation Jobs and the Machines, as JSON.
pub struct HostObservations<'a> {
    pub hosts: &'a [HostView],
    /// Ids of the hosts the inventory names.
    pub inventory: &'a [String],
    pub byo_hosts: &'a [Value],
    pub jobs: &'a [Value],
    pub machines: &'a [Value],
}

/// The alarms hosts call for.
pub fn host_alarms(cloud: &Cloud, observed: &HostObservations) -> Vec<Raised> {
    let byo: Vec<ByoHostView> = observed
        .byo_hosts
        .iter()
        .map(ByoHostView::from_object)
        .collect();
    let machines: Vec<(MachineView, &Value)> = observed
        .machines
        .iter()
        .map(|m| (MachineView::from_object(m), m))
        .collect();
    let mut raised = Vec::new();
    for host in observed.hosts {
        let resource_id = inventory::resource(cloud, host).resource_id;
        let raise = |name: &str, message: String| {
            cause(name).map(|c| Raised::of(c, &host.id, &resource_id, message))
        };
        let registered = byo
            .iter()
            .find(|b| b.host_id.as_deref() == Some(host.id.as_str()));
        if registered.is_none() && observed.inventory.contains(&host.id) {
            raised.extend(raise(
                "HostNotRegistered",
                format!(
                    "host {} has no ByoHost: its agent has not registered",
                    host.id
                ),
            ));
        }
        if let Some(job) = latest_job_of(observed.jobs, &host.id).filter(|j| job_failed(j)) {
            raised.extend(raise(
                "HostPreparationFailed",
                format!(
                    "host-preparation Job {} failed: {}",
                    job["metadata"]["name"].as_str().unwrap_or_default(),
                    failed_message(job)
                ),
            ));
        }
        let Some(byo_host) = registered else {
            continue;
        };
        if byo_host.bootstrap_failed() {
            let message = condition_message(
                observed.byo_hosts,
                &byo_host.name,
                "K8sNodeBootstrapSucceeded",
            );
            raised.extend(raise(
                "HostBootstrapFailed",
                format!("bootstrapping ByoHost {} failed: {message}", byo_host.name),
            ));
        }
        let machine = machines.iter().find(|(m, _)| {
            Some(m.name.as_str()) == byo_host.machine.as_deref()
                && byo_host
                    .machine_namespace
                    .as_deref()
                    .is_none_or(|ns| ns == m.namespace)
        });
        if let Some((machine, _)) = machine
            && machine.node.is_some()
            && let Some(ready) = machine
                .node_ready
                .as_ref()
                .filter(|c| c.status == "Unknown")
        {
            raised.extend(raise(
                "HostNotReporting",
                format!(
                    "node {} of Machine {}/{} stopped reporting: {}",
                    machine.node.as_deref().unwrap_or_default(),
                    machine.namespace,
                    machine.name,
                    describe(ready)
                ),
            ));
        }
    }
    raised
}

fn describe(condition: &CapiCondition) -> String {
    [condition.reason.as_deref(), condition.message.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

fn condition_message(objects: &[Value], name: &str, type_: &str) -> String {
    objects
        .iter()
        .find(|o| o["metadata"]["name"] == name)
        .and_then(|o| o["status"]["conditions"].as_array())
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The most recent host-preparation Job naming `host`.
fn latest_job_of<'a>(jobs: &'a [Value], host: &str) -> Option<&'a Value> {
    jobs.iter()
        .filter(|j| prepared_hosts(j).contains(&host))
        .max_by_key(|j| {
            j["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
}

fn job_failed(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Failed" && c["status"] == "True")
}

fn failed_message(job: &Value) -> String {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed")
        .map(|c| {
            [c["reason"].as_str(), c["message"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")
        })
        .unwrap_or_default()
}

/// What the O-Cloud observes of clusters: the requests, and the Cluster API Clusters and
/// Machines, as JSON.
pub struct ClusterObservations<'a> {
    pub requests: &'a [ProvisioningRequest],
    pub clusters: &'a [Value],
    pub machines: &'a [Value],
    pub timeouts: &'a StageTimeouts,
    /// The part of a stage's timeout after which its wait is an alarm.
    pub warning_fraction: f64,
    pub now: jiff::Timestamp,
}

/// The alarms clusters call for, each about its ProvisioningRequest (by name) and its
/// deployment manager (the Cluster's UID; the request's UID before a Cluster exists).
pub fn cluster_alarms(observed: &ClusterObservations) -> Vec<Raised> {
    // Each object read once, then found by its cluster: a pass costs the fleet once, not once
    // per request.
    let mut machines_of: HashMap<(String, String), Vec<MachineView>> = HashMap::new();
    for machine in observed.machines.iter().map(MachineView::from_object) {
        if let Some(cluster) = machine.cluster.clone() {
            let key = (machine.namespace.clone(), cluster);
            machines_of.entry(key).or_default().push(machine);
        }
    }
    let clusters: HashMap<(&str, &str), &Value> = observed
        .clusters
        .iter()
        .filter_map(|c| {
            let metadata = &c["metadata"];
            Some((
                (metadata["namespace"].as_str()?, metadata["name"].as_str()?),
                c,
            ))
        })
        .collect();
    let mut raised = Vec::new();
    for request in observed.requests {
        let name = request.name_any();
        let status = request.status.clone().unwrap_or_default();
        let resource_id = status
            .provisioned_resource_set
            .as_ref()
            .and_then(|s| s.o_cloud_node_cluster_id.clone())
            .or_else(|| request.uid())
            .unwrap_or_default();
        let raise = |cause_name: &str, message: String| {
            cause(cause_name).map(|c| Raised::of(c, &name, &resource_id, message))
        };
        if super::provisioning::phase(request) == super::provisioning::Phase::Failed {
            let message = status
                .provisioning_status
                .as_ref()
                .map(|s| s.provisioning_message.clone())
                .unwrap_or_default();
            raised.extend(raise("ProvisioningFailed", message));
        }
        for (stage, since) in running_stage_clocks(&status) {
            let Some(timeout) = observed.timeouts.of(stage) else {
                continue;
            };
            let waited = observed.now.duration_since(since).as_secs_f64();
            if waited >= observed.warning_fraction * timeout as f64 {
                let fails_at = since + jiff::SignedDuration::from_secs(timeout as i64);
                raised.extend(raise(
                    "ProvisioningStageNearTimeout",
                    format!("{stage} has waited since {since}; the request fails at {fails_at} (timeout {timeout}s)"),
                ));
            }
        }
        let cluster_name = request.spec.template_parameters["clusterName"]
            .as_str()
            .unwrap_or_default();
        let namespace = format!("cluster-{cluster_name}");
        let Some(cluster) = clusters.get(&(namespace.as_str(), cluster_name)) else {
            continue;
        };
        let view = ClusterView::from_object(cluster);
        let resource_id = view.uid.clone().unwrap_or(resource_id.clone());
        let raise = |cause_name: &str, message: String| {
            cause(cause_name).map(|c| Raised::of(c, &name, &resource_id, message))
        };
        if view.control_plane_initialized
            && let Some(available) = view
                .control_plane_available
                .as_ref()
                .filter(|c| c.status == "False")
        {
            raised.extend(raise(
                "ControlPlaneUnavailable",
                format!(
                    "the control plane of cluster {cluster_name} is not available: {}",
                    describe(available)
                ),
            ));
        }
        let machines = machines_of
            .get(&(namespace.clone(), cluster_name.to_string()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let not_ready: Vec<String> = machines
            .iter()
            .filter(|m| {
                m.node.is_some() && m.node_ready.as_ref().is_some_and(|c| c.status == "False")
            })
            .map(|m| m.node.clone().unwrap_or_default())
            .collect();
        if !not_ready.is_empty() {
            raised.extend(raise(
                "NodesNotReady",
                format!("nodes not Ready: {}", not_ready.join(", ")),
            ));
        }
        let failed: Vec<String> = machines
            .iter()
            .filter_map(|m| {
                let failure = m.failure.describe().or_else(|| {
                    (m.phase.as_deref() == Some("Failed")).then(|| "phase Failed".into())
                })?;
                Some(format!("{} ({failure})", m.name))
            })
            .collect();
        if !failed.is_empty() {
            raised.extend(raise(
                "MachinesFailed",
                format!("machines failing: {}", failed.join(", ")),
            ));
        }
    }
    raised
}

/// What to write so the stored alarms match what is observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Raise(Raised),
    /// The active alarm named so is no longer observed.
    Clear(String),
    /// The active alarm named so is observed with another severity or other facts.
    Change(String, Raised),
}

/// The actions making `stored` (every stored alarm) match `desired`, for the alarms whose key
/// `owned` says this observation decides (alerts are decided by their notifications).
pub fn plan(
    desired: &[Raised],
    stored: &[O2imsAlarm],
    owned: impl Fn(&str) -> bool,
) -> Vec<Action> {
    let active: Vec<&O2imsAlarm> = stored
        .iter()
        .filter(|a| a.spec.cleared_time.is_none() && owned(&a.spec.key))
        .collect();
    let mut actions: Vec<Action> = desired
        .iter()
        .filter_map(
            |raised| match active.iter().find(|a| a.spec.key == raised.key) {
                None => Some(Action::Raise(raised.clone())),
                Some(a)
                    if a.spec.severity != raised.severity
                        || a.spec.extensions != raised.extensions =>
                {
                    Some(Action::Change(a.name_any(), raised.clone()))
                }
                Some(_) => None,
            },
        )
        .collect();
    actions.extend(
        active
            .iter()
            .filter(|a| !desired.iter().any(|d| d.key == a.spec.key))
            .map(|a| Action::Clear(a.name_any())),
    );
    actions
}

/// The cleared alarms to delete at `now`: those cleared longer than `retention` ago, then the
/// oldest cleared ones while more than `cap` alarms are kept. Active alarms are never deleted.
pub fn expired(
    stored: &[O2imsAlarm],
    now: jiff::Timestamp,
    retention: Duration,
    cap: usize,
) -> Vec<String> {
    let mut cleared: Vec<(&O2imsAlarm, jiff::Timestamp)> = stored
        .iter()
        .filter_map(|a| Some((a, a.spec.cleared_time.as_ref()?.0)))
        .collect();
    cleared.sort_by_key(|(a, at)| (*at, a.name_any()));
    let too_many = stored.len().saturating_sub(cap);
    cleared
        .iter()
        .enumerate()
        .filter(|(i, (_, at))| *i < too_many || now.duration_since(*at).unsigned_abs() > retention)
        .map(|(_, (a, _))| a.name_any())
        .collect()
}

/// The alarm record as the API shows it (`AlarmEventRecord`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct AlarmEventRecord {
    #[serde(rename = "alarmEventRecordId")]
    pub alarm_event_record_id: String,
    #[serde(rename = "alarmDefinitionID")]
    pub alarm_definition_id: String,
    #[serde(rename = "probableCauseID")]
    pub probable_cause_id: String,
    #[serde(rename = "alarmRaisedTime")]
    pub alarm_raised_time: String,
    #[serde(rename = "alarmChangedTime")]
    pub alarm_changed_time: String,
    #[serde(
        rename = "alarmClearedTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub alarm_cleared_time: Option<String>,
    #[serde(
        rename = "alarmAcknowledgedTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub alarm_acknowledged_time: Option<String>,
    #[serde(rename = "alarmAcknowledged")]
    pub alarm_acknowledged: bool,
    #[serde(rename = "resourceTypeID")]
    pub resource_type_id: String,
    #[serde(rename = "resourceID")]
    pub resource_id: String,
    /// 0 CRITICAL, 1 MAJOR, 2 MINOR, 3 WARNING, 4 INDETERMINATE, 5 CLEARED.
    #[serde(rename = "perceivedSeverity")]
    pub perceived_severity: u8,
    pub extensions: Map<String, Value>,
}

impl Listed for AlarmEventRecord {
    const NAME: &'static str = "AlarmEventRecord";
    const IDENTIFIERS: &'static [&'static str] = &["alarmEventRecordId"];
}

/// `PerceivedSeverity`'s number.
pub fn perceived_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 0,
        Severity::Major => 1,
        Severity::Minor => 2,
        Severity::Warning => 3,
        Severity::Indeterminate => 4,
    }
}

/// `PerceivedSeverity` CLEARED.
pub const CLEARED: u8 = 5;

fn time(t: &Time) -> String {
    t.0.to_string()
}

/// The id of the resource type (or deployment manager type, or the O-Cloud's type) an
/// entity's alarms name.
pub fn resource_type_id(cloud: &Cloud, entity: AlarmEntity) -> String {
    match entity {
        AlarmEntity::Host => inventory::resource_type_id(cloud),
        AlarmEntity::Cluster => derived_id(&cloud.ocloud_id, "deploymentManagerType", CLUSTER_TYPE),
        AlarmEntity::Ocloud => derived_id(&cloud.ocloud_id, "oCloudType", OCLOUD_TYPE),
    }
}

/// The type of this O-Cloud's deployment managers.
pub const CLUSTER_TYPE: &str = "byoh-workload-cluster";
/// The O-Cloud's own type, for alarms of its management plane.
pub const OCLOUD_TYPE: &str = "o-cloud";

pub fn probable_cause_id(cloud: &Cloud, name: &str) -> String {
    derived_id(&cloud.ocloud_id, "probableCause", name)
}

pub fn alarm_definition_id(cloud: &Cloud, entity: AlarmEntity, cause: &str) -> String {
    derived_id(
        &cloud.ocloud_id,
        "alarmDefinition",
        &format!("{}/{cause}", entity_name(entity)),
    )
}

pub fn dictionary_id(cloud: &Cloud, entity: AlarmEntity) -> String {
    super::alarm_dictionary_id(&cloud.ocloud_id, entity)
}

pub fn record(cloud: &Cloud, alarm: &O2imsAlarm) -> AlarmEventRecord {
    let spec = &alarm.spec;
    let mut extensions: Map<String, Value> = spec
        .extensions
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    extensions.insert("probableCause".into(), spec.probable_cause.clone().into());
    extensions.insert("subject".into(), spec.subject.clone().into());
    AlarmEventRecord {
        alarm_event_record_id: alarm.name_any(),
        alarm_definition_id: alarm_definition_id(cloud, spec.entity, &spec.probable_cause),
        probable_cause_id: probable_cause_id(cloud, &spec.probable_cause),
        alarm_raised_time: time(&spec.raised_time),
        alarm_changed_time: time(&spec.changed_time),
        alarm_cleared_time: spec.cleared_time.as_ref().map(time),
        alarm_acknowledged_time: spec.acknowledged_time.as_ref().map(time),
        alarm_acknowledged: spec.acknowledged,
        resource_type_id: resource_type_id(cloud, spec.entity),
        resource_id: spec.resource_id.clone(),
        perceived_severity: match spec.cleared_time {
            Some(_) => CLEARED,
            None => perceived_severity(spec.severity),
        },
        extensions,
    }
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProbableCause {
    pub probable_cause_id: String,
    pub name: String,
    pub description: String,
}

impl Listed for ProbableCause {
    const NAME: &'static str = "ProbableCause";
    const IDENTIFIERS: &'static [&'static str] = &["probableCauseId"];
    const DEFAULT_EXCLUDED: &'static [&'static str] = &[];
}

/// An alarm definition: a known cause, or an alert seen (its name and summary).
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub entity: AlarmEntity,
    pub name: String,
    pub description: String,
    pub repair: String,
}

/// Every definition: the known causes, then those of alarms raised from alerts (any rule the
/// admin adds), by name.
pub fn definitions(stored: &[O2imsAlarm]) -> Vec<Definition> {
    let mut all: Vec<Definition> = CAUSES
        .iter()
        .map(|c| Definition {
            entity: c.entity,
            name: c.name.into(),
            description: c.description.into(),
            repair: c.repair.into(),
        })
        .collect();
    let mut alerts: BTreeMap<&str, &O2imsAlarm> = BTreeMap::new();
    for alarm in stored
        .iter()
        .filter(|a| a.spec.key.starts_with(ALERT_KEY_PREFIX))
    {
        alerts.entry(&alarm.spec.probable_cause).or_insert(alarm);
    }
    all.extend(
        alerts
            .into_iter()
            .filter(|(name, _)| cause(name).is_none())
            .map(|(name, alarm)| {
                let extension =
                    |key: &str| alarm.spec.extensions.get(key).cloned().unwrap_or_default();
                Definition {
                    entity: AlarmEntity::Ocloud,
                    name: name.to_string(),
                    description: match extension("annotation/summary") {
                        s if s.is_empty() => format!("Prometheus alert {name}"),
                        s => s,
                    },
                    repair: extension("annotation/description"),
                }
            }),
    );
    all
}

pub fn probable_causes(cloud: &Cloud, definitions: &[Definition]) -> Vec<ProbableCause> {
    let mut causes: Vec<ProbableCause> = definitions
        .iter()
        .map(|d| ProbableCause {
            probable_cause_id: probable_cause_id(cloud, &d.name),
            name: d.name.clone(),
            description: d.description.clone(),
        })
        .collect();
    causes.dedup_by(|a, b| a.name == b.name);
    causes
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDictionary {
    pub alarm_dictionary_id: String,
    pub alarm_dictionary_version: String,
    pub alarm_dictionary_schema_version: String,
    pub entity_type: String,
    pub vendor: String,
    pub management_interface_id: Vec<String>,
    pub pk_notification_field: Vec<String>,
    pub alarm_definition: Vec<AlarmDefinition>,
}

impl Listed for AlarmDictionary {
    const NAME: &'static str = "AlarmDictionary";
    const IDENTIFIERS: &'static [&'static str] = &["alarmDictionaryId"];
    const DEFAULT_EXCLUDED: &'static [&'static str] = &["alarmDefinition"];
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlarmDefinition {
    pub alarm_definition_id: String,
    pub alarm_name: String,
    pub alarm_last_change: String,
    pub alarm_change_type: String,
    pub alarm_description: String,
    pub proposed_repair_actions: String,
    pub clearing_type: String,
    pub management_interface_id: Vec<String>,
    pub pk_notification_field: Vec<String>,
    pub alarm_additional_fields: Map<String, Value>,
}

/// The entities with a dictionary, in order.
pub const ENTITIES: [AlarmEntity; 3] =
    [AlarmEntity::Host, AlarmEntity::Cluster, AlarmEntity::Ocloud];

/// One dictionary per entity type: the host resource type, the deployment manager type and the
/// O-Cloud.
pub fn dictionaries(cloud: &Cloud, definitions: &[Definition]) -> Vec<AlarmDictionary> {
    ENTITIES
        .iter()
        .map(|&entity| AlarmDictionary {
            alarm_dictionary_id: dictionary_id(cloud, entity),
            alarm_dictionary_version: DICTIONARY_VERSION.into(),
            alarm_dictionary_schema_version: "1.0".into(),
            entity_type: match entity {
                AlarmEntity::Host => inventory::HOST_TYPE,
                AlarmEntity::Cluster => CLUSTER_TYPE,
                AlarmEntity::Ocloud => OCLOUD_TYPE,
            }
            .into(),
            vendor: String::new(),
            management_interface_id: vec!["O2IMS".into()],
            pk_notification_field: vec!["alarmDefinitionID".into()],
            alarm_definition: definitions
                .iter()
                .filter(|d| d.entity == entity)
                .map(|d| AlarmDefinition {
                    alarm_definition_id: alarm_definition_id(cloud, entity, &d.name),
                    alarm_name: d.name.clone(),
                    alarm_last_change: DICTIONARY_VERSION.into(),
                    alarm_change_type: "ADDED".into(),
                    alarm_description: d.description.clone(),
                    proposed_repair_actions: d.repair.clone(),
                    clearing_type: "AUTOMATIC".into(),
                    management_interface_id: vec!["O2IMS".into()],
                    pk_notification_field: vec!["alarmDefinitionID".into()],
                    alarm_additional_fields: Map::new(),
                })
                .collect(),
        })
        .collect()
}

/// An alarm subscription as the API shows and takes it (`AlarmSubscriptionInfo`).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmSubscriptionInfo {
    /// Assigned by the server; ignored in a POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_subscription_id: Option<String>,
    /// The event type not notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<EventType>,
    pub callback: String,
}

impl Listed for AlarmSubscriptionInfo {
    const NAME: &'static str = "AlarmSubscriptionInfo";
    const IDENTIFIERS: &'static [&'static str] = &["alarmSubscriptionId"];
    const DEFAULT_EXCLUDED: &'static [&'static str] = &[];
}

/// `notificationEventType` of alarm notifications.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    New = 0,
    Change = 1,
    Clear = 2,
    Acknowledge = 3,
}

impl EventType {
    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(Value::from(name)).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Change => "CHANGE",
            Self::Clear => "CLEAR",
            Self::Acknowledge => "ACKNOWLEDGE",
        }
    }
}

/// The event a change of an alarm record is: new when not told before; else a clearing or an
/// acknowledgement when that is what changed since `prior` (the state told, when the sender
/// still holds it; after a restart the record alone decides), else a change.
pub fn event_type(record: &Value, prior: Option<&Value>, told_before: bool) -> EventType {
    let cleared = |r: &Value| r["perceivedSeverity"] == CLEARED;
    let acknowledged = |r: &Value| r["alarmAcknowledged"] == true;
    if !told_before {
        EventType::New
    } else if cleared(record) && !prior.is_some_and(cleared) {
        EventType::Clear
    } else if acknowledged(record) && !prior.is_some_and(acknowledged) {
        EventType::Acknowledge
    } else {
        EventType::Change
    }
}

/// The `AlarmEventNotification` of `record`.
pub fn notification(
    cloud: &Cloud,
    consumer_subscription_id: Option<&str>,
    event: EventType,
    record: &Value,
) -> Value {
    let mut body = json!({
        "globalCloudID": cloud.global_cloud_id,
        "notificationEventType": event as u8,
        "objectRef": format!("{}{ALARMS_PREFIX}/alarms/{}", cloud.service_uri, record["alarmEventRecordId"].as_str().unwrap_or_default()),
    });
    for key in [
        "alarmEventRecordId",
        "resourceTypeID",
        "resourceID",
        "alarmDefinitionID",
        "probableCauseID",
        "alarmRaisedTime",
        "alarmChangedTime",
        "alarmAcknowledged",
        "perceivedSeverity",
        "extensions",
    ] {
        body[key] = record[key].clone();
    }
    if let Some(at) = record.get("alarmAcknowledgedTime") {
        body["alarmAcknowledgeTime"] = at.clone();
    }
    if let Some(consumer) = consumer_subscription_id {
        body["consumerSubscriptionId"] = consumer.into();
    }
    body
}

/// The body of `PATCH .../alarms/{id}` (`AlarmEventRecordModifications`).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmModifications {
    #[serde(default)]
    pub alarm_acknowledged: Option<bool>,
    #[serde(default)]
    pub perceived_severity: Option<u8>,
}

/// `AlarmServiceConfiguration`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlarmServiceConfiguration {
    /// Days a cleared alarm is kept.
    pub retention_period: u64,
    pub extensions: Map<String, Value>,
}

/// An Alertmanager webhook notification (its `webhook_config` payload, version 4).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerNotification {
    pub version: String,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    pub alerts: Vec<Alert>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: jiff::Timestamp,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

impl Alert {
    pub fn firing(&self) -> bool {
        self.status == "firing"
    }

    /// Its name (`alertname`), the probable cause of its alarm.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map_or("UnnamedAlert", String::as_str)
    }

    /// Alertmanager's fingerprint (a hash of the labels), or one of ours when absent.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone().unwrap_or_else(|| {
            let labels = serde_json::to_string(&self.labels).unwrap_or_default();
            format!("{:016x}", crate::names::fnv1a64(labels.as_bytes()))
        })
    }

    /// The id of this occurrence's alarm: the same alert firing since the same time is the same
    /// alarm, whichever replica Alertmanager reaches and however often it repeats.
    pub fn alarm_id(&self, cloud: &Cloud) -> String {
        derived_id(
            &cloud.ocloud_id,
            "alert",
            &format!("{}/{}", self.fingerprint(), self.starts_at),
        )
    }

    /// The alarm this alert raises: about the O-Cloud, its severity from the `severity` label.
    pub fn raised(&self, cloud: &Cloud) -> Raised {
        let severity = match self
            .labels
            .get("severity")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            Some("critical") => Severity::Critical,
            Some("major" | "error") => Severity::Major,
            Some("minor") => Severity::Minor,
            Some("warning") => Severity::Warning,
            _ => Severity::Indeterminate,
        };
        let mut extensions: BTreeMap<String, String> = self
            .labels
            .iter()
            .map(|(k, v)| (format!("label/{k}"), v.clone()))
            .collect();
        extensions.extend(
            self.annotations
                .iter()
                .map(|(k, v)| (format!("annotation/{k}"), v.clone())),
        );
        if let Some(summary) = self.annotations.get("summary") {
            extensions.insert("message".into(), summary.clone());
        }
        Raised {
            key: format!("{ALERT_KEY_PREFIX}{}", self.fingerprint()),
            cause: self.name().to_string(),
            entity: AlarmEntity::Ocloud,
            subject: self.name().to_string(),
            resource_id: cloud.ocloud_id.clone(),
            severity,
            extensions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rest::example_cloud as cloud;

    fn at(text: &str) -> Time {
        Time(text.parse().expect("timestamp"))
    }

    fn host(id: &str) -> HostView {
        HostView {
            id: id.into(),
            hostname: Some(format!("{id}-name")),
            ..Default::default()
        }
    }

    fn causes(raised: &[Raised]) -> Vec<(String, String)> {
        raised
            .iter()
            .map(|r| (r.subject.clone(), r.cause.clone()))
            .collect()
    }

    #[test]
    fn hosts_raise_for_no_byohost_a_failed_job_a_failed_bootstrap_and_a_silent_node() {
        let hosts = [host("h1"), host("h2"), host("h3"), host("h4")];
        let inventory: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
        let byo = |name: &str, id: &str, bootstrap: Value, machine: Value| {
            json!({"metadata": {"name": name, "namespace": "byoh", "labels": {"host-id": id}},
                   "status": {"conditions": [bootstrap], "machineRef": machine}})
        };
        let byo_hosts = [
            byo(
                "h2-name",
                "h2",
                json!({"type": "K8sNodeBootstrapSucceeded", "status": "False", "reason": "CloudInitExecutionFailed", "message": "kubeadm join failed"}),
                Value::Null,
            ),
            byo(
                "h3-name",
                "h3",
                json!({"type": "K8sNodeBootstrapSucceeded", "status": "True"}),
                json!({"name": "m3", "namespace": "cluster-c"}),
            ),
            byo(
                "h4-name",
                "h4",
                json!({"type": "K8sNodeBootstrapSucceeded", "status": "True"}),
                json!({"name": "m4", "namespace": "cluster-c"}),
            ),
        ];
        let jobs = [
            json!({"metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z",
                   "annotations": {"o2ims.provisioning.oran.org/hosts": "h1,h4"}},
                   "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}),
            json!({"metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z",
                   "annotations": {"o2ims.provisioning.oran.org/hosts": "h4"}},
                   "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        ];
        let machine = |name: &str, ready: &str| {
            json!({"metadata": {"name": name, "namespace": "cluster-c", "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
                   "status": {"nodeRef": {"name": format!("{name}-node")},
                              "v1beta2": {"conditions": [{"type": "NodeReady", "status": ready, "reason": "NodeReadyUnknown", "message": "kubelet stopped posting"}]}}})
        };
        let machines = [machine("m3", "Unknown"), machine("m4", "True")];
        let raised = host_alarms(
            &cloud(),
            &HostObservations {
                hosts: &hosts,
                inventory: &inventory,
                byo_hosts: &byo_hosts,
                jobs: &jobs,
                machines: &machines,
            },
        );
        assert_eq!(
            causes(&raised),
            [
                ("h1".into(), "HostNotRegistered".into()),
                ("h1".into(), "HostPreparationFailed".into()),
                ("h2".into(), "HostBootstrapFailed".into()),
                ("h3".into(), "HostNotReporting".into()),
            ],
            "h4's latest Job succeeded and its node reports"
        );
        assert!(raised[2].extensions["message"].contains("kubeadm join failed"));
        assert_eq!(raised[0].key, "host/h1/HostNotRegistered");
        assert_eq!(
            raised[0].resource_id,
            inventory::resource(&cloud(), &hosts[0]).resource_id
        );
    }

    fn request(state: &str, conditions: Value) -> ProvisioningRequest {
        serde_json::from_value(json!({
            "apiVersion": "o2ims.provisioning.oran.org/v1alpha1", "kind": "ProvisioningRequest",
            "metadata": {"name": "pr-1", "uid": "uid-1"},
            "spec": {"templateName": "t", "templateVersion": "v1", "templateParameters": {"clusterName": "c"}},
            "status": {"provisioningStatus": {"provisioningState": state, "provisioningMessage": "it broke"},
                       "conditions": conditions}
        }))
        .expect("request")
    }

    fn clusters(
        requests: &[ProvisioningRequest],
        clusters: &[Value],
        machines: &[Value],
        now: &str,
    ) -> Vec<Raised> {
        let timeouts = StageTimeouts {
            host_preparation_timeout_seconds: 1000,
            control_plane_timeout_seconds: 1000,
            workers_timeout_seconds: 1000,
        };
        cluster_alarms(&ClusterObservations {
            requests,
            clusters,
            machines,
            timeouts: &timeouts,
            warning_fraction: 0.8,
            now: now.parse().expect("now"),
        })
    }

    #[test]
    fn requests_raise_when_failed_or_near_a_stage_timeout() {
        let failed = request("failed", json!([]));
        assert_eq!(
            causes(&clusters(&[failed], &[], &[], "2026-01-01T00:00:00Z")),
            [("pr-1".into(), "ProvisioningFailed".into())]
        );
        let waiting = request(
            "progressing",
            json!([{"type": "ProvisioningRequestValidated", "status": "True", "reason": "Valid", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                   {"type": "ControlPlaneReady", "status": "False", "reason": "WaitingForControlPlane", "message": "0/1", "lastTransitionTime": "2026-01-01T00:00:00Z"}]),
        );
        let requests = [waiting];
        assert!(
            clusters(&requests, &[], &[], "2026-01-01T00:13:19Z").is_empty(),
            "under 80% of 1000 s"
        );
        let near = clusters(&requests, &[], &[], "2026-01-01T00:13:20Z");
        assert_eq!(
            causes(&near),
            [("pr-1".into(), "ProvisioningStageNearTimeout".into())]
        );
        assert!(
            near[0].extensions["message"].contains("2026-01-01T00:16:40Z"),
            "{near:?}"
        );
        assert_eq!(
            near[0].resource_id, "uid-1",
            "no Cluster yet: the request's UID"
        );
    }

    #[test]
    fn clusters_raise_for_an_unavailable_control_plane_nodes_not_ready_and_failed_machines() {
        let requests = [request("fulfilled", json!([]))];
        let cluster = json!({"metadata": {"name": "c", "namespace": "cluster-c", "uid": "cluster-uid"},
            "status": {"v1beta2": {"conditions": [
                {"type": "ControlPlaneInitialized", "status": "True"},
                {"type": "ControlPlaneAvailable", "status": "False", "reason": "NotAvailable", "message": "etcd has no quorum"}]}}});
        let machine = |name: &str, ready: &str, failure: Value| {
            let mut m = json!({"metadata": {"name": name, "namespace": "cluster-c", "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
                   "status": {"nodeRef": {"name": format!("{name}-node")},
                              "v1beta2": {"conditions": [{"type": "NodeReady", "status": ready}]}}});
            if let (Some(status), Some(extra)) = (m["status"].as_object_mut(), failure.as_object())
            {
                status.extend(extra.clone());
            }
            m
        };
        let machines = [
            machine("m1", "False", json!({})),
            machine(
                "m2",
                "True",
                json!({"failureReason": "UpdateError", "failureMessage": "boom"}),
            ),
            machine("m3", "Unknown", json!({})),
        ];
        let raised = clusters(&requests, &[cluster], &machines, "2026-01-01T00:00:00Z");
        assert_eq!(
            causes(&raised),
            [
                ("pr-1".into(), "ControlPlaneUnavailable".into()),
                ("pr-1".into(), "NodesNotReady".into()),
                ("pr-1".into(), "MachinesFailed".into()),
            ]
        );
        assert!(raised.iter().all(|r| r.resource_id == "cluster-uid"));
        assert_eq!(raised[1].extensions["message"], "nodes not Ready: m1-node");
        assert!(raised[2].extensions["message"].contains("m2 (UpdateError: boom)"));
    }

    fn stored(name: &str, raised: &Raised, cleared: Option<&str>) -> O2imsAlarm {
        let mut alarm = raised.alarm(name, &at("2026-01-01T00:00:00Z"));
        alarm.spec.cleared_time = cleared.map(at);
        alarm
    }

    #[test]
    fn the_plan_raises_the_new_clears_the_gone_and_changes_the_different() {
        let c = cause("HostBootstrapFailed").expect("cause");
        let kept = Raised::of(c, "h1", "r1", "m".into());
        let gone = Raised::of(c, "h2", "r2", "m".into());
        let changed = Raised::of(c, "h3", "r3", "m".into());
        let new = Raised::of(c, "h4", "r4", "m".into());
        let again = Raised::of(c, "h5", "r5", "m".into());
        let mut now_changed = changed.clone();
        now_changed
            .extensions
            .insert("message".into(), "other".into());
        let alert = Alert {
            status: "firing".into(),
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: "2026-01-01T00:00:00Z".parse().expect("ts"),
            ends_at: None,
            fingerprint: Some("f".into()),
        }
        .raised(&cloud());
        let stored = [
            stored("a1", &kept, None),
            stored("a2", &gone, None),
            stored("a3", &changed, None),
            stored("a5", &again, Some("2026-01-01T00:01:00Z")),
            stored("a6", &alert, None),
        ];
        let desired = [kept, now_changed.clone(), new.clone(), again.clone()];
        let actions = plan(&desired, &stored, |key| !key.starts_with(ALERT_KEY_PREFIX));
        assert_eq!(
            actions,
            [
                Action::Change("a3".into(), now_changed),
                Action::Raise(new),
                Action::Raise(again),
                Action::Clear("a2".into()),
            ],
            "a cleared alarm is history: its cause, observed again, is a new alarm; alerts are not this plan's"
        );
    }

    #[test]
    fn retention_deletes_old_cleared_alarms_then_the_oldest_beyond_the_cap() {
        let c = cause("HostBootstrapFailed").expect("cause");
        let r = Raised::of(c, "h", "r", "m".into());
        let alarms = [
            stored("active", &r, None),
            stored("old", &r, Some("2026-01-01T00:00:00Z")),
            stored("mid", &r, Some("2026-01-05T00:00:00Z")),
            stored("new", &r, Some("2026-01-06T00:00:00Z")),
        ];
        let now = "2026-01-06T12:00:00Z".parse().expect("now");
        let day = Duration::from_secs(86_400);
        assert_eq!(expired(&alarms, now, 2 * day, 100), ["old"]);
        assert_eq!(expired(&alarms, now, 30 * day, 2), ["old", "mid"]);
        assert_eq!(
            expired(&alarms, now, 30 * day, 0),
            ["old", "mid", "new"],
            "never the active one"
        );
    }

    #[test]
    fn records_show_cleared_alarms_as_cleared_and_notifications_name_the_event() {
        let c = cause("NodesNotReady").expect("cause");
        let mut alarm =
            Raised::of(c, "pr", "uid", "m".into()).alarm("a", &at("2026-01-01T00:00:00Z"));
        let active = serde_json::to_value(record(&cloud(), &alarm)).expect("json");
        assert_eq!(active["perceivedSeverity"], 1);
        assert_eq!(
            active["resourceTypeID"],
            json!(resource_type_id(&cloud(), AlarmEntity::Cluster))
        );
        alarm.spec.cleared_time = Some(at("2026-01-01T00:05:00Z"));
        let cleared = serde_json::to_value(record(&cloud(), &alarm)).expect("json");
        assert_eq!(cleared["perceivedSeverity"], CLEARED);
        assert_eq!(event_type(&active, None, false), EventType::New);
        assert_eq!(event_type(&cleared, Some(&active), true), EventType::Clear);
        assert_eq!(
            event_type(&cleared, None, true),
            EventType::Clear,
            "after a restart"
        );
        let mut acknowledged = active.clone();
        acknowledged["alarmAcknowledged"] = json!(true);
        assert_eq!(
            event_type(&acknowledged, Some(&active), true),
            EventType::Acknowledge
        );
        let mut changed = active.clone();
        changed["extensions"]["message"] = json!("other");
        assert_eq!(event_type(&changed, Some(&active), true), EventType::Change);
        let body = notification(&cloud(), Some("c"), EventType::Clear, &cleared);
        assert_eq!(body["notificationEventType"], 2);
        assert_eq!(
            body["objectRef"],
            "https://o2ims.example/o2ims-infrastructureMonitoring/v1/alarms/a"
        );
    }

    #[test]
    fn an_alert_is_one_alarm_per_occurrence_with_its_severity() {
        let alert = |starts: &str, severity: &str| Alert {
            status: "firing".into(),
            labels: [
                ("alertname".to_string(), "O2imsNoLeader".to_string()),
                ("severity".to_string(), severity.to_string()),
            ]
            .into(),
            annotations: [("summary".to_string(), "no leader".to_string())].into(),
            starts_at: starts.parse().expect("ts"),
            ends_at: None,
            fingerprint: None,
        };
        let first = alert("2026-01-01T00:00:00Z", "critical");
        assert_eq!(
            first.alarm_id(&cloud()),
            alert("2026-01-01T00:00:00Z", "critical").alarm_id(&cloud())
        );
        assert_ne!(
            first.alarm_id(&cloud()),
            alert("2026-01-02T00:00:00Z", "critical").alarm_id(&cloud())
        );
        let raised = first.raised(&cloud());
        assert_eq!(
            (raised.cause.as_str(), raised.severity, raised.entity),
            ("O2imsNoLeader", Severity::Critical, AlarmEntity::Ocloud)
        );
        assert_eq!(raised.extensions["message"], "no leader");
        let stored = [raised.alarm("x", &at("2026-01-01T00:00:00Z"))];
        let names: Vec<String> = probable_causes(&cloud(), &definitions(&stored))
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(
            names.contains(&"O2imsNoLeader".to_string())
                && names.contains(&"HostBootstrapFailed".to_string())
        );
        let dictionaries = dictionaries(&cloud(), &definitions(&stored));
        assert_eq!(dictionaries.len(), 3);
        assert_eq!(dictionaries[2].alarm_definition.len(), 1);
    }
}
