//! Which changes a provisioned cluster accepts.

mod common;

use lcm_core::template::{classify, validate};
use serde_json::json;

fn params(pointer: &str, value: serde_json::Value) -> lcm_core::template::ClusterParameters {
    validate(&common::with(pointer, value)).expect("valid")
}

#[test]
fn worker_changes_are_scales() {
    let applied = validate(&common::parameters()).expect("valid");
    let change = classify(
        &applied,
        &params("/hosts/workers", json!(["h5", "h6", "h7"])),
    )
    .expect("accepted");
    assert_eq!(change.added_workers, ["h6", "h7"]);
    assert_eq!(change.removed_workers, ["h4"]);
    assert_eq!(change.upgrade_to, None);
    assert!(classify(&applied, &applied).expect("no change").is_empty());
}

#[test]
fn upgrades_go_one_minor_up_at_a_time() {
    let applied = validate(&common::parameters()).expect("valid");
    let up = classify(&applied, &params("/kubernetesVersion", json!("v1.33.5"))).expect("upgrade");
    assert_eq!(up.upgrade_to.as_deref(), Some("v1.33.5"));
    let patch = classify(&applied, &params("/kubernetesVersion", json!("v1.32.10")))
        .expect("patch upgrade");
    assert_eq!(patch.upgrade_to.as_deref(), Some("v1.32.10"));
    let down = classify(&applied, &params("/kubernetesVersion", json!("v1.31.13")))
        .expect_err("downgrade");
    assert!(
        down.contains("downgrade from v1.32.9 to v1.31.13"),
        "{down}"
    );
    let older = validate(&common::with("/kubernetesVersion", json!("v1.31.13"))).expect("valid");
    let skip =
        classify(&older, &params("/kubernetesVersion", json!("v1.33.5"))).expect_err("skips 1.32");
    assert!(skip.contains("skips a minor version"), "{skip}");
}

#[test]
fn a_single_control_plane_is_not_upgraded_in_place() {
    let single = validate(&common::with("/hosts/controlPlane", json!(["h1"]))).expect("valid");
    let mut upgraded = single.clone();
    upgraded.kubernetes_version = "v1.33.5".into();
    let refused = classify(&single, &upgraded).expect_err("no spare host");
    assert!(
        refused.contains("a control plane of 1 host(s) cannot be upgraded in place"),
        "{refused}"
    );
    let mut scaled = single.clone();
    scaled.hosts.workers.push("h9".into());
    assert!(classify(&single, &scaled).is_ok(), "workers still scale");
}

#[test]
fn control_plane_and_identity_changes_are_refused_by_name() {
    let applied = validate(&common::parameters()).expect("valid");
    let cases = [
        (
            "/hosts/controlPlane",
            json!(["h1", "h2", "h9"]),
            "hosts.controlPlane cannot change",
        ),
        (
            "/controlPlaneEndpoint/host",
            json!("10.0.0.101"),
            "controlPlaneEndpoint cannot change",
        ),
        (
            "/network/podCIDRs",
            json!(["172.16.0.0/16"]),
            "network cannot change",
        ),
        ("/cni", json!("none"), "cni cannot change"),
    ];
    for (pointer, value, expected) in cases {
        let error = classify(&applied, &params(pointer, value)).expect_err(pointer);
        assert!(error.contains(expected), "{pointer}: {error}");
    }
}
