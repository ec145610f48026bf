//! Objects the real Cluster API v1.10.10 and BYOH v0.5.0 managers wrote in a benchmark run
//! (managed fields left out, as the watch drops them), and what is kept of them.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::*;
use crate::capi::observe::{
    ByoHostView, ByoMachineView, ClusterView, ControlPlaneView, MachineView, WorkersView,
};

fn fixture(text: &str) -> DynamicObject {
    serde_json::from_str(text).expect("a fixture")
}

/// `object` as a watch keeps it, and both as JSON.
fn keep(kind: Kind, object: DynamicObject) -> (Value, Value) {
    let full = serde_json::to_value(&object).expect("json");
    let mut kept = object;
    keep_read(kind, &mut kept);
    (full, serde_json::to_value(&kept).expect("json"))
}

/// The fixture `text`, of `kind`, and what is kept of it, as JSON.
fn kept_of(kind: Kind, text: &str) -> (Value, Value) {
    keep(kind, fixture(text))
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
    let (full, kept) = keep(Kind::Machine, marked);
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
    let (full, kept) = keep(Kind::Machine, failing);
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
    let (full, kept_machine) = keep(Kind::ByoMachine, fixture(include_str!("byomachine.json")));
    assert_eq!(
        ByoMachineView::from_object(&kept_machine),
        ByoMachineView::from_object(&full)
    );
    assert_eq!(
        kept_machine["metadata"]["ownerReferences"], full["metadata"]["ownerReferences"],
        "the Machine owning it is read"
    );
    let (full, kept_host) = keep(Kind::ByoHost, fixture(include_str!("byohost.json")));
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
fn a_control_plane_and_workers_keep_their_specs_and_no_condition() {
    let (full, kept) = keep(
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
    assert_eq!(
        kept["status"]["conditions"],
        json!([]),
        "its view reads none"
    );
    assert_eq!(kept["status"]["v1beta2"]["conditions"], json!([]));
    assert_eq!(
        kept["status"]["readyReplicas"],
        full["status"]["readyReplicas"]
    );

    let (full, kept) = kept_of(
        Kind::MachineDeployment,
        include_str!("machinedeployment.json"),
    );
    assert_eq!(kept["spec"], full["spec"]);
    assert_eq!(
        WorkersView::from_object(&kept),
        WorkersView::from_object(&full)
    );
}

#[test]
fn a_cluster_keeps_the_conditions_its_view_reads_without_their_times() {
    let (full, kept) = kept_of(Kind::Cluster, include_str!("cluster.json"));
    assert_eq!(kept["spec"], full["spec"]);
    assert_eq!(
        ClusterView::from_object(&kept),
        ClusterView::from_object(&full)
    );
    let types = |conditions: &Value| -> Vec<String> {
        let conditions = conditions.as_array().into_iter().flatten();
        conditions
            .map(|c| c["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        types(&kept["status"]["v1beta2"]["conditions"]),
        ["ControlPlaneInitialized", "ControlPlaneAvailable"]
    );
    assert!(types(&kept["status"]["conditions"]).contains(&"Ready".to_string()));
    let conditions = kept["status"]["conditions"].as_array().expect("conditions");
    assert!(
        conditions
            .iter()
            .all(|c| c.get("lastTransitionTime").is_none())
    );

    // A cluster whose control plane is not available yet: the view still reads the same.
    let mut starting: DynamicObject = fixture(include_str!("cluster.json"));
    for condition in starting.data["status"]["v1beta2"]["conditions"]
        .as_array_mut()
        .expect("conditions")
    {
        if condition["type"] == "ControlPlaneAvailable" {
            condition["status"] = json!("False");
            condition["message"] =
                json!("* KubeadmControlPlane: no control-plane machine is ready");
        }
    }
    let (full, starting) = keep(Kind::Cluster, starting);
    let view = ClusterView::from_object(&starting);
    assert_eq!(view, ClusterView::from_object(&full));
    assert_eq!(
        view.control_plane_available.map(|c| c.status).as_deref(),
        Some("False")
    );
}
