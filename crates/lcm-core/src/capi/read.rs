//! What the O2IMS operator reads of the Cluster API and BYOH objects it watches, so that a
//! watch keeps only that and a fleet's objects fit in memory. Of every kind: its conditions'
//! type, status, reason and message (their times and generations are most of a status and
//! decide nothing). Of the kinds it never writes (Machines, ByoMachines, ByoHosts), besides:
//! the status fields their views read (`observe`) and the ByoHost's machine reference, the
//! metadata but for annotations other than the Machine deletion mark; their specs go. The kinds
//! it writes keep their specs whole, as each apply compares them with what it would write.

use kube::api::DynamicObject;
use serde_json::{Map, Value};

use super::{DELETE_MACHINE_ANNOTATION, Kind};

/// The status fields read of each kind the operator never writes.
fn read_status(kind: Kind) -> Option<&'static [&'static str]> {
    Some(match kind {
        Kind::Machine => &[
            "phase",
            "failureReason",
            "failureMessage",
            "nodeRef",
            "nodeInfo",
            "conditions",
            "v1beta2",
        ],
        Kind::ByoMachine => &["conditions"],
        Kind::ByoHost => &["machineRef", "conditions"],
        _ => return None,
    })
}

/// Keeps of `object`, a `kind` object, what is read of it.
pub fn keep_read(kind: Kind, object: &mut DynamicObject) {
    if let Some(status) = object.data.get_mut("status") {
        keep_conditions(status.get_mut("conditions"));
        let v1beta2 = status.get_mut("v1beta2");
        keep_conditions(v1beta2.and_then(|v| v.get_mut("conditions")));
    }
    let Some(fields) = read_status(kind) else {
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

/// A condition's type, status, reason and message.
fn keep_conditions(conditions: Option<&mut Value>) {
    let conditions = conditions.and_then(Value::as_array_mut);
    for condition in conditions.into_iter().flatten() {
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
