//! What the O2IMS operator reads of the Cluster API and BYOH objects it watches, so that a
//! watch keeps only that and a fleet's objects fit in memory. Of every kind: the conditions its
//! view reads (`observe`), each by type, status, reason and message (the other conditions, and
//! every condition's times and generation, are most of a status and decide nothing). Of the
//! kinds it never writes (Machines, ByoMachines, ByoHosts), besides: the status fields their
//! views read and the ByoHost's machine reference, the metadata but for annotations other than
//! the Machine deletion mark; their specs go. The kinds it writes keep their specs whole, as
//! each apply compares them with what it would write (and a KubeadmControlPlane's bootstrap is
//! carried over from the live one).

use kube::api::DynamicObject;
use serde_json::{Map, Value};

use super::{DELETE_MACHINE_ANNOTATION, Kind};

/// What is read of a kind's status.
struct Read {
    /// Its fields; `None`: every field (but the conditions not read).
    fields: Option<&'static [&'static str]>,
    /// The types of `status.conditions` (v1beta1) and of `status.v1beta2.conditions` read.
    conditions: &'static [&'static str],
    v1beta2_conditions: &'static [&'static str],
}

fn read(kind: Kind) -> Read {
    let (fields, conditions, v1beta2_conditions): (Option<&[&str]>, &[&str], &[&str]) = match kind {
        Kind::Cluster => (
            None,
            &["Ready", "ControlPlaneInitialized", "ControlPlaneReady"],
            &["ControlPlaneInitialized", "ControlPlaneAvailable"],
        ),
        Kind::Machine => (
            Some(&[
                "phase",
                "failureReason",
                "failureMessage",
                "nodeRef",
                "nodeInfo",
                "conditions",
                "v1beta2",
            ]),
            &["NodeHealthy"],
            &["NodeReady"],
        ),
        Kind::ByoMachine => (Some(&["conditions"]), &["BYOHostReady"], &[]),
        Kind::ByoHost => (
            Some(&["machineRef", "conditions"]),
            &["K8sNodeBootstrapSucceeded"],
            &[],
        ),
        // KubeadmControlPlanes and MachineDeployments: their views read no condition.
        _ => (None, &[], &[]),
    };
    Read {
        fields,
        conditions,
        v1beta2_conditions,
    }
}

/// Keeps of `object`, a `kind` object, what is read of it.
pub fn keep_read(kind: Kind, object: &mut DynamicObject) {
    let read = read(kind);
    if let Some(status) = object.data.get_mut("status") {
        keep_conditions(status.get_mut("conditions"), read.conditions);
        let v1beta2 = status.get_mut("v1beta2");
        keep_conditions(
            v1beta2.and_then(|v| v.get_mut("conditions")),
            read.v1beta2_conditions,
        );
    }
    let Some(fields) = read.fields else {
        return;
    };
    let mut status = match object.data.get_mut("status").map(Value::take) {
        Some(Value::Object(status)) => status,
        _ => Map::new(),
    };
    status.retain(|field, _| fields.contains(&field.as_str()));
    if let Some(node) = status.get_mut("nodeRef") {
        keep_keys(node, &["name"]);
    }
    if let Some(info) = status.get_mut("nodeInfo") {
        keep_keys(info, &["kubeletVersion"]);
    }
    if let Some(v1beta2) = status.get_mut("v1beta2") {
        keep_keys(v1beta2, &["conditions"]);
    }
    object.data = serde_json::json!({"status": status});
    if let Some(annotations) = object.metadata.annotations.as_mut() {
        annotations.retain(|key, _| key == DELETE_MACHINE_ANNOTATION);
    }
}

/// Of `conditions`, those of `types`, each by type, status, reason and message.
fn keep_conditions(conditions: Option<&mut Value>, types: &[&str]) {
    let Some(conditions) = conditions.and_then(Value::as_array_mut) else {
        return;
    };
    conditions.retain(|c| c["type"].as_str().is_some_and(|t| types.contains(&t)));
    for condition in conditions {
        keep_keys(condition, &["type", "status", "reason", "message"]);
    }
}

fn keep_keys(value: &mut Value, keys: &[&str]) {
    if let Some(map) = value.as_object_mut() {
        map.retain(|key, _| keys.contains(&key.as_str()));
    }
}

#[cfg(test)]
mod tests;
