//! FocomProvisioningRequest selection, feasibility and naming.

mod common;

use lcm_core::crd::{FocomProvisioningRequest, FocomProvisioningRequestSpec, ProvisioningRequest};
use lcm_core::focom::{Claim, feasibility, provisioning_request, request_name, select};
use lcm_core::inventory::Inventory;
use lcm_core::{CLUSTER_NAME_LABEL, FOCOM_REQUEST_LABEL};
use serde_json::json;

fn inventory() -> Inventory {
    Inventory::parse("input.json", include_str!("../../../input.json")).expect("valid")
}

fn request(spec: FocomProvisioningRequestSpec) -> FocomProvisioningRequest {
    let mut request = FocomProvisioningRequest::new("req", spec);
    request.metadata.namespace = Some("smo".into());
    request
}

fn by_names(names: &[&str]) -> FocomProvisioningRequest {
    request(FocomProvisioningRequestSpec {
        cluster_names: Some(names.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    })
}

#[test]
fn all_clusters_selects_the_whole_inventory() {
    let all = request(FocomProvisioningRequestSpec {
        all_clusters: Some(true),
        ..Default::default()
    });
    let selected = select(&all, Some(&inventory())).expect("valid");
    let names: Vec<&str> = selected.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["core", "edge"]);
    assert!(feasibility(&selected, &[], &[]).is_empty());
}

#[test]
fn exactly_one_selector_as_the_crd_requires() {
    let specs = [
        FocomProvisioningRequestSpec::default(),
        FocomProvisioningRequestSpec {
            all_clusters: Some(false),
            ..Default::default()
        },
        FocomProvisioningRequestSpec {
            all_clusters: Some(true),
            cluster_names: Some(vec!["core".into()]),
            ..Default::default()
        },
        FocomProvisioningRequestSpec {
            cluster_names: Some(vec!["core".into()]),
            template_parameters: Some(common::parameters()),
            ..Default::default()
        },
    ];
    for spec in specs {
        let problems = select(&request(spec.clone()), Some(&inventory())).expect_err("refused");
        assert_eq!(problems.len(), 1, "{spec:?}");
        assert_eq!(problems[0].path, "spec");
        assert!(
            problems[0].message.starts_with("exactly one of"),
            "{spec:?}"
        );
    }
    let problems = select(&by_names(&[]), Some(&inventory())).expect_err("no names");
    assert!(problems[0].message.contains("at least one cluster"));
}

#[test]
fn unknown_cluster_names_are_named() {
    let problems =
        select(&by_names(&["core", "metro"]), Some(&inventory())).expect_err("metro is unknown");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "spec.clusterNames[1]");
    assert!(problems[0].message.contains("`metro`"));
}

#[test]
fn template_requests_are_validated_with_their_paths() {
    let params = common::with("/hosts/controlPlane", json!(["h1", "h2"]));
    let bad = request(FocomProvisioningRequestSpec {
        template_parameters: Some(params),
        ..Default::default()
    });
    let problems = select(&bad, None).expect_err("even control plane");
    assert_eq!(
        problems[0].path,
        "spec.templateParameters.hosts.controlPlane"
    );
}

#[test]
fn conflicts_name_cluster_and_host() {
    let mut inventory = inventory();
    inventory.clusters[1].worker_hosts.push("host-2".into());
    inventory.clusters[1].control_plane_endpoint = "172.20.10.100".into();
    inventory.clusters[0]
        .control_plane_hosts
        .push("host-9".into());
    inventory.clusters[0]
        .control_plane_hosts
        .push("host-8".into());
    let unknown = select(&by_names(&["core", "edge"]), Some(&inventory))
        .expect_err("host-9 and host-8 are unknown");
    let unknown: Vec<String> = unknown.iter().map(ToString::to_string).collect();
    assert_eq!(
        unknown,
        [
            "cluster `core`: host `host-9` is not in the inventory",
            "cluster `core`: host `host-8` is not in the inventory"
        ]
    );
    inventory.clusters[0].control_plane_hosts.truncate(1);
    let selected = select(&by_names(&["core", "edge"]), Some(&inventory)).expect("selectable");
    let problems: Vec<String> = feasibility(&selected, &[], &[])
        .iter()
        .map(ToString::to_string)
        .collect();
    for expected in [
        "cluster `edge`: host `host-2` is also selected for cluster `core`",
        "cluster `edge`: endpoint 172.20.10.100 is also the endpoint of cluster `core`",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "missing {expected:?} in {problems:?}"
        );
    }
}

#[test]
fn hosts_held_by_other_requests_conflict_but_own_requests_do_not() {
    let selected = select(&by_names(&["core"]), Some(&inventory())).expect("valid");
    let claim = Claim {
        request: "other-pr".into(),
        cluster: "legacy".into(),
        hosts: vec!["host-2".into()],
        endpoint: "10.9.9.9".into(),
    };
    let problems = feasibility(&selected, &[], std::slice::from_ref(&claim));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains(
        "host `host-2` is already used by cluster `legacy` (ProvisioningRequest other-pr)"
    ));
    assert!(feasibility(&selected, &["other-pr".into()], &[claim]).is_empty());
}

#[test]
fn provisioning_requests_are_named_deterministically_and_labelled() {
    let fpr = by_names(&["core"]);
    let selected = select(&fpr, Some(&inventory())).expect("valid");
    let pr = provisioning_request(&fpr, &selected[0]);
    let name = pr.metadata.name.clone().expect("named");
    assert_eq!(name, request_name("smo", "req", "core"));
    assert_ne!(name, request_name("smo", "req", "edge"));
    assert_ne!(name, request_name("other", "req", "core"));
    uuid::Uuid::parse_str(&name).expect("a UUID");
    let labels = pr.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[FOCOM_REQUEST_LABEL], "smo.req");
    assert_eq!(labels[CLUSTER_NAME_LABEL], "core");
    let claim = Claim::of(&pr).expect("readable");
    assert_eq!(claim.hosts, ["host-1", "host-2"]);
    // The generated request is itself a valid request for the O2IMS side.
    let round_trip: ProvisioningRequest =
        serde_json::from_value(serde_json::to_value(&pr).expect("json")).expect("parses");
    lcm_core::template::validate(&round_trip.spec.template_parameters).expect("valid parameters");
}
