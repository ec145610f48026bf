//! Objects the real Cluster API v1.10.10 and BYOH v0.5.0 managers wrote in a benchmark run
//! (managed fields left out, as the watch drops them), and what is kept of them.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::capi::observe::{ByoHostView, ByoMachineView, ControlPlaneView, MachineView};

fn fixture(text: &str) -> DynamicObject {
    serde_json::from_str(text).expect("a fixture")
}

/// `object` as a watch keeps it, and both as JSON.
fn kept(kind: Kind, object: DynamicObject) -> (Value, Value) {
    let full = serde_json::to_value(&object).expect("json");
    let mut kept = object;
    keep_read(kind, &mut kept);
    (full, serde_json::to_value(&kept).expect("json"))
}

fn size(value: &Value) -> usize {
    value.to_string().len()
}

fn machine() -> DynamicObject {
    fixture(include_str!("machine.json"))
}

#[test]
fn a_machine_keeps_what_its_view_reads_and_little_else() {
    let mut marked = machine();
    let annotations = marked.metadata.annotations.get_or_insert_default();
    annotations.insert(DELETE_MACHINE_ANNOTATION.into(), "true".into());
    let (full, kept) = kept(Kind::Machine, marked);
    assert_eq!(
        MachineView::from_object(&kept),
        MachineView::from_object(&full)
    );
    assert!(MachineView::from_object(&kept).node_ready.is_some());
    assert_eq!(kept["spec"], Value::Null, "a Machine's spec is not read");
    assert_eq!(
        kept["metadata"]["annotations"],
        json!({DELETE_MACHINE_ANNOTATION: "true"}),
        "of its annotations only the deletion mark is read"
    );
    assert_eq!(
        kept["metadata"]["ownerReferences"],
        full["metadata"]["ownerReferences"]
    );
    assert!(
        size(&kept) * 2 < size(&full),
        "{} of {}",
        size(&kept),
        size(&full)
    );
}

#[test]
fn a_failing_machine_keeps_its_failure_and_phase() {
    let mut failing = machine();
    let status = &mut failing.data["status"];
    status["phase"] = json!("Failed");
    status["failureReason"] = json!("CreateError");
    status["failureMessage"] = json!("the host could not be bootstrapped");
    status.as_object_mut().expect("status").remove("nodeRef");
    let (full, kept) = kept(Kind::Machine, failing);
    let view = MachineView::from_object(&kept);
    assert_eq!(view, MachineView::from_object(&full));
    assert_eq!(
        view.failure.describe().as_deref(),
        Some("CreateError: the host could not be bootstrapped")
    );
    assert_eq!(view.node, None);
}

#[test]
fn a_byo_machine_and_its_host_keep_what_finds_the_machine_on_a_host() {
    let (full, kept_machine) = kept(Kind::ByoMachine, fixture(include_str!("byomachine.json")));
    assert_eq!(
        ByoMachineView::from_object(&kept_machine),
        ByoMachineView::from_object(&full)
    );
    assert_eq!(
        kept_machine["metadata"]["ownerReferences"], full["metadata"]["ownerReferences"],
        "the Machine owning it is read"
    );
    let (full, kept_host) = kept(Kind::ByoHost, fixture(include_str!("byohost.json")));
    assert_eq!(
        ByoHostView::from_object(&kept_host),
        ByoHostView::from_object(&full)
    );
    assert_eq!(
        kept_host["status"]["machineRef"],
        full["status"]["machineRef"]
    );
    assert_eq!(
        kept_host["status"]["machineRef"]["name"],
        kept_machine["metadata"]["name"]
    );
    assert_eq!(kept_host["metadata"]["labels"], full["metadata"]["labels"]);
}

#[test]
fn a_kind_the_operator_writes_keeps_its_spec_and_loses_only_condition_times() {
    let (full, kept) = kept(
        Kind::KubeadmControlPlane,
        fixture(include_str!("kubeadmcontrolplane.json")),
    );
    assert_eq!(
        kept["spec"], full["spec"],
        "compared with what an apply writes"
    );
    assert_eq!(kept["metadata"], full["metadata"]);
    assert_eq!(
        ControlPlaneView::from_object(&kept),
        ControlPlaneView::from_object(&full)
    );
    let conditions = kept["status"]["v1beta2"]["conditions"]
        .as_array()
        .expect("conditions");
    assert!(!conditions.is_empty());
    assert!(
        conditions
            .iter()
            .all(|c| c.get("lastTransitionTime").is_none())
    );
    assert_eq!(
        kept["status"]["readyReplicas"], full["status"]["readyReplicas"],
        "status fields besides the conditions stay"
    );
}
