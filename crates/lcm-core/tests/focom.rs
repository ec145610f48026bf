//! FocomProvisioningRequest selection, feasibility and naming.

mod common;

use lcm_core::crd::{
    FocomProvisioningRequest, FocomProvisioningRequestSpec, HostClaim, ProvisioningRequest,
};
use lcm_core::focom::{
    Claim, Feasibility, feasibility, provisioning_request, request_name, select,
};
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
    assert_eq!(
        feasibility(&selected, &[], &[], &[]),
        Feasibility::default()
    );
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
    let problems: Vec<String> = feasibility(&selected, &[], &[], &[])
        .conflicts
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

fn claim(request: &str, created: &str, cluster: &str, host: &str) -> Claim {
    Claim {
        request: request.into(),
        created: Some(created.parse().expect("timestamp")),
        cluster: cluster.into(),
        hosts: vec![host.into()],
        endpoint: format!("10.9.9.{}", request.len()),
    }
}

/// Another request that wants a host but holds nothing yet may still lose it: the cluster waits
/// (it does not fail naming a holder that may never hold the host); its own request is no one.
#[test]
fn hosts_wanted_by_other_requests_are_waited_for_but_own_requests_are_not() {
    let selected = select(&by_names(&["core"]), Some(&inventory())).expect("valid");
    let other = claim("other-pr", "2026-01-01T00:00:00Z", "legacy", "host-2");
    let found = feasibility(&selected, &[], std::slice::from_ref(&other), &[]);
    assert!(found.conflicts.is_empty(), "{found:?}");
    assert_eq!(found.waiting.len(), 1, "{found:?}");
    assert!(found.waiting[0].message.contains(
        "host `host-2` is wanted by cluster `legacy` (ProvisioningRequest other-pr), which holds nothing yet"
    ));
    let own = claim("other-pr", "2026-01-01T00:00:00Z", "core", "host-2");
    assert_eq!(
        feasibility(&selected, &[own], &[other], &[]),
        Feasibility::default()
    );
}

/// The host ledger says who holds a host, whatever that request's spec says now: a host another
/// request uses is a conflict, one it only claimed is waited for (it may still give it up); a
/// host the cluster's own request holds is neither.
#[test]
fn hosts_used_in_the_ledger_conflict_and_hosts_only_claimed_are_waited_for() {
    let selected = select(&by_names(&["core"]), Some(&inventory())).expect("valid");
    let claimed = HostClaim::for_host("host-2", "running-pr", "uid-1", "running");
    let found = feasibility(&selected, &[], &[], std::slice::from_ref(&claimed));
    assert!(found.conflicts.is_empty(), "{found:?}");
    assert!(
        found.waiting[0].message.contains(
            "host `host-2` is claimed by cluster `running` (ProvisioningRequest running-pr), which has not started using it"
        ),
        "{found:?}"
    );
    let mut used = claimed;
    used.spec.in_use = true;
    let found = feasibility(&selected, &[], &[], std::slice::from_ref(&used));
    assert_eq!(found.conflicts.len(), 1, "{found:?}");
    assert!(
        found.conflicts[0].message.contains(
            "host `host-2` is held by cluster `running` (ProvisioningRequest running-pr)"
        ),
        "{found:?}"
    );
    let own = claim("running-pr", "2026-01-01T00:00:00Z", "core", "host-2");
    assert_eq!(
        feasibility(&selected, &[own], &[], &[used]),
        Feasibility::default()
    );
}

/// A cluster whose ProvisioningRequest exists was decided when it was created: other requests
/// wanting its hosts are for the O2IMS operator to refuse, and a host another request uses in
/// the ledger is still a conflict.
#[test]
fn a_created_cluster_waits_for_nobody_but_still_conflicts_with_a_used_host() {
    let selected = select(&by_names(&["core"]), Some(&inventory())).expect("valid");
    let mine = claim("core-pr", "2026-06-01T00:00:00Z", "core", "host-1");
    let older = claim("older-pr", "2026-05-01T00:00:00Z", "early", "host-2");
    let own = std::slice::from_ref(&mine);
    assert_eq!(
        feasibility(&selected, own, &[mine.clone(), older], &[]),
        Feasibility::default()
    );
    let mut used = HostClaim::for_host("host-2", "older-pr", "uid-2", "early");
    used.spec.in_use = true;
    let found = feasibility(&selected, own, &[], &[used]);
    assert_eq!(found.conflicts.len(), 1, "{found:?}");
    assert!(found.waiting.is_empty(), "{found:?}");
}

/// A ProvisioningRequest that failed validation holds nothing; one whose change was refused
/// keeps its hosts.
#[test]
fn requests_that_failed_validation_hold_no_hosts() {
    let with_validated = |status: &str, reason: &str| {
        let mut pr = provisioning_request(
            &by_names(&["core"]),
            &select(&by_names(&["core"]), Some(&inventory())).expect("valid")[0],
        );
        pr.status = Some(
            serde_json::from_value(json!({"conditions": [{
            "type": "ProvisioningRequestValidated", "status": status, "reason": reason,
            "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}))
            .expect("status"),
        );
        pr
    };
    assert!(Claim::of(&with_validated("False", "InvalidParameters")).is_none());
    assert!(Claim::of(&with_validated("False", "HostConflict")).is_none());
    assert!(Claim::of(&with_validated("False", "ChangeRefused")).is_some());
    assert!(Claim::of(&with_validated("True", "Valid")).is_some());
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
