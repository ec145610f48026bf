//! The Ansible inventory for host preparation: rendered as YAML, parsed back, values checked.

use lcm_core::ansible::{DEFAULT_BYOH_NAMESPACE, GROUP, inventory, inventory_from_file};
use lcm_core::inventory::Inventory;
use lcm_core::template::HostAccess;
use serde_json::Value;

const SHIPPED: &str = include_str!("../../../input.json");

/// Renders `value` as YAML and parses it back, as Ansible would read the file.
fn round_trip(value: &Value) -> Value {
    let yaml = lcm_core::ansible::render(value);
    lcm_core::yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn group(parsed: &Value) -> &Value {
    &parsed["all"]["children"][GROUP]
}

fn shipped() -> Inventory {
    Inventory::parse("input.json", SHIPPED).expect("input.json is valid")
}

fn access(id: &str, hostname: Option<&str>, address: &str, user: &str) -> HostAccess {
    HostAccess {
        id: id.into(),
        hostname: hostname.map(Into::into),
        address: address.into(),
        ssh_user: user.into(),
        ssh_host_keys: vec![],
    }
}

#[test]
fn one_cluster_has_host_vars_and_group_vars() {
    let hosts = [
        access("host-1", Some("edge-node-1"), "172.20.10.11", "ubuntu"),
        access("host-2", None, "node2.example.org", "admin"),
    ];
    let parsed = round_trip(&inventory(&hosts, "v1.32.9", "cluster-core"));
    let group = group(&parsed);
    assert_eq!(group["vars"]["kubernetes_version"], "1.32.9");
    assert_eq!(group["vars"]["byoh_namespace"], "cluster-core");
    let h1 = &group["hosts"]["host-1"];
    assert_eq!(h1["ansible_host"], "172.20.10.11");
    assert_eq!(h1["ansible_user"], "ubuntu");
    assert_eq!(h1["byoh_host_id"], "host-1");
    assert_eq!(h1["byoh_hostname"], "edge-node-1");
    let h2 = &group["hosts"]["host-2"];
    assert_eq!(h2["ansible_host"], "node2.example.org");
    assert_eq!(h2["ansible_user"], "admin");
    assert!(h2.get("byoh_hostname").is_none(), "no hostname given: {h2}");
    assert_eq!(group["hosts"].as_object().map(|m| m.len()), Some(2));
}

#[test]
fn version_without_v_is_kept_and_numeric_looking_strings_stay_strings() {
    let hosts = [access("1", Some("1.0"), "10.0.0.1", "yes")];
    let value = inventory(&hosts, "1.33.5", "default");
    // PyYAML (YAML 1.1) would read these unquoted as an int, a float and a boolean.
    let yaml = lcm_core::ansible::render(&value);
    for quoted in [
        r#""1":"#,
        r#""byoh_hostname": !unsafe "1.0""#,
        r#""ansible_user": !unsafe "yes""#,
    ] {
        assert!(yaml.contains(quoted), "{quoted} in\n{yaml}");
    }
    let parsed = round_trip(&value);
    let group = group(&parsed);
    assert_eq!(group["vars"]["kubernetes_version"], "1.33.5");
    assert_eq!(group["hosts"]["1"]["byoh_host_id"], "1");
    assert_eq!(group["hosts"]["1"]["byoh_hostname"], "1.0");
    assert_eq!(group["hosts"]["1"]["ansible_user"], "yes");
}

#[test]
fn the_operator_inventory_from_cluster_parameters() {
    let inventory_file = shipped();
    let params = inventory_file.parameters(inventory_file.cluster("edge").expect("edge"));
    let access: Vec<_> = params
        .all_hosts()
        .filter_map(|id| inventory_file.host_access(id))
        .collect();
    let parsed = round_trip(&inventory(
        &access,
        &params.kubernetes_version,
        &params.namespace(),
    ));
    let group = group(&parsed);
    let ids: Vec<&String> = group["hosts"].as_object().expect("hosts").keys().collect();
    assert_eq!(ids, ["host-3", "host-4"]);
    assert_eq!(group["hosts"]["host-4"]["ansible_host"], "172.20.10.14");
    assert_eq!(group["vars"]["byoh_namespace"], "cluster-edge");
}

#[test]
fn whole_file_lists_every_host_with_its_clusters_version() {
    let parsed = round_trip(&inventory_from_file(&shipped(), None).expect("valid"));
    let group = group(&parsed);
    // The version is per host (clusters may differ); the namespace is shared.
    let vars = group["vars"].as_object().expect("group vars");
    assert_eq!(vars.len(), 1, "{vars:?}");
    assert_eq!(vars["byoh_namespace"], DEFAULT_BYOH_NAMESPACE);
    assert_eq!(DEFAULT_BYOH_NAMESPACE, "byoh-hosts");
    let hosts = group["hosts"].as_object().expect("hosts");
    assert_eq!(hosts.len(), 4);
    for (id, address, hostname) in [
        ("host-1", "172.20.10.11", "edge-node-1"),
        ("host-2", "172.20.10.12", "edge-node-2"),
        ("host-3", "172.20.10.13", "edge-node-3"),
        ("host-4", "172.20.10.14", "edge-node-4"),
    ] {
        let host = &hosts[id];
        assert_eq!(host["ansible_host"], address, "{id}");
        assert_eq!(host["ansible_user"], "ubuntu", "{id}");
        assert_eq!(host["byoh_host_id"], id);
        assert_eq!(host["byoh_hostname"], hostname, "{id}");
        assert_eq!(host["kubernetes_version"], "1.33.5", "{id}");
        assert!(host.get("byoh_namespace").is_none(), "{id}: {host}");
    }
}

#[test]
fn selected_clusters_only_and_their_own_overrides() {
    let mut file = shipped();
    let edge = file
        .clusters
        .iter_mut()
        .find(|c| c.name == "edge")
        .expect("edge");
    edge.kubernetes_version = Some("v1.33.5".into());
    file.hosts[3].ssh_user = Some("root".into());
    let parsed = round_trip(&inventory_from_file(&file, Some(&["edge".into()])).expect("valid"));
    let hosts = group(&parsed)["hosts"].as_object().expect("hosts").clone();
    let ids: Vec<&String> = hosts.keys().collect();
    assert_eq!(ids, ["host-3", "host-4"]);
    assert_eq!(hosts["host-3"]["kubernetes_version"], "1.33.5");
    assert_eq!(hosts["host-3"]["ansible_user"], "ubuntu");
    assert_eq!(hosts["host-4"]["ansible_user"], "root");
}

#[test]
fn unknown_cluster_is_an_error() {
    let e = inventory_from_file(&shipped(), Some(&["nope".into()])).expect_err("unknown");
    assert!(e.contains("no cluster `nope`"), "{e}");
}

#[test]
fn unknown_host_is_an_error() {
    let mut file = shipped();
    file.clusters[0].worker_hosts.push("host-9".into());
    let e = inventory_from_file(&file, None).expect_err("unknown host");
    assert!(
        e.contains("cluster `core`") && e.contains("host `host-9`"),
        "{e}"
    );
}

#[test]
fn a_host_shared_by_two_selected_clusters_is_an_error() {
    let mut file = shipped();
    file.clusters[1].worker_hosts.push("host-2".into());
    let e = inventory_from_file(&file, None).expect_err("shared host");
    assert!(
        e.contains("host `host-2`") && e.contains("`core`") && e.contains("`edge`"),
        "{e}"
    );
    // Selecting one of the two is fine.
    inventory_from_file(&file, Some(&["edge".into()])).expect("one cluster");
}

#[test]
fn invalid_version_is_an_error() {
    let mut file = shipped();
    file.clusters[0].kubernetes_version = Some("1.26".into());
    let e = inventory_from_file(&file, None).expect_err("bad version");
    assert!(
        e.contains("cluster `core`") && e.contains("kubernetesVersion"),
        "{e}"
    );
}
