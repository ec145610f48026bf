//! The inventory model: the shipped input.json, defaults and error paths.

use lcm_core::inventory::Inventory;
use lcm_core::template::{HostPreparation, validate};

const SHIPPED: &str = include_str!("../../../input.json");

#[test]
fn shipped_inventory_describes_core_and_edge_on_four_hosts() {
    let inventory = Inventory::parse("input.json", SHIPPED).expect("input.json is valid");
    assert_eq!(inventory.hosts.len(), 4);
    let names: Vec<&str> = inventory.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["core", "edge"]);
}

#[test]
fn every_shipped_cluster_yields_valid_parameters() {
    let inventory = Inventory::parse("input.json", SHIPPED).expect("valid");
    for cluster in &inventory.clusters {
        let params = inventory.parameters(cluster);
        let value = serde_json::to_value(&params).expect("serializes");
        let validated = validate(&value).unwrap_or_else(|e| panic!("{}: {e}", cluster.name));
        assert_eq!(validated, params);
    }
}

#[test]
fn defaults_and_overrides_reach_the_parameters() {
    let inventory = Inventory::parse("input.json", SHIPPED).expect("valid");
    let core = inventory.parameters(inventory.cluster("core").expect("core"));
    let edge = inventory.parameters(inventory.cluster("edge").expect("edge"));
    assert_eq!(core.network.pod_cidrs, ["192.168.0.0/16"], "from defaults");
    assert_eq!(
        edge.network.pod_cidrs,
        ["10.244.0.0/16"],
        "the cluster's own"
    );
    assert_eq!(core.host_preparation, HostPreparation::Auto);
    // Host access stays with the O-Cloud's inventory: requests never carry it.
    assert!(core.host_access.is_empty(), "{:?}", core.host_access);
    let access = inventory.host_access("host-1").expect("host-1");
    assert_eq!(access.id, "host-1");
    assert_eq!(access.hostname.as_deref(), Some("edge-node-1"));
    assert_eq!(access.address, "172.20.10.11");
    assert_eq!(access.ssh_user, "ubuntu", "from defaults");
    assert!(!access.ssh_host_keys.is_empty());
    assert_eq!(inventory.host_access("host-9"), None);
}

#[test]
fn errors_name_the_file_and_json_path() {
    let cases = [
        (
            r#"{"hosts": [], "clusters": [{"name": "a", "controlPlaneEndpoint": "10.0.0.1", "controlPlaneHosts": "h1"}]}"#,
            "clusters[0].controlPlaneHosts",
        ),
        (
            r#"{"hosts": [{"id": "h1", "hostname": "n", "address": "a", "colour": "red"}], "clusters": []}"#,
            "hosts[0].colour",
        ),
        (
            r#"{"hosts": [{"id": "h1", "hostname": "n", "address": "a"}, {"id": "h1", "hostname": "m", "address": "b"}], "clusters": []}"#,
            "hosts[1].id",
        ),
        (
            r#"{"hosts": [], "clusters": [{"name": "a", "controlPlaneEndpoint": "x", "controlPlaneHosts": []}, {"name": "a", "controlPlaneEndpoint": "y", "controlPlaneHosts": []}]}"#,
            "clusters[1].name",
        ),
        (r#"{"hosts": [], "clusters": []"#, "$"),
        (r#"{"clusters": []}"#, "$"),
    ];
    for (text, path) in cases {
        let error = Inventory::parse("inv.json", text).expect_err(text);
        assert_eq!(error.source_name, "inv.json");
        assert_eq!(error.path, path, "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("inv.json: at {path}: ")),
            "{error}"
        );
    }
}

/// Every host field reaches SSH or Ansible: each ill-typed one is refused at its JSON path.
#[test]
fn ill_typed_host_fields_are_refused_at_their_path() {
    let hostile = "{{ lookup('pipe', 'id') }}";
    let cases = [
        ("/hosts/2/id", serde_json::json!("host 3"), "hosts[2].id"),
        (
            "/hosts/2/hostname",
            serde_json::json!("Edge_Node"),
            "hosts[2].hostname",
        ),
        (
            "/hosts/2/hostname",
            serde_json::json!("edge-node-1"),
            "hosts[2].hostname",
        ),
        (
            "/hosts/2/address",
            serde_json::json!(hostile),
            "hosts[2].address",
        ),
        (
            "/hosts/2/address",
            serde_json::json!("-oProxyCommand=id"),
            "hosts[2].address",
        ),
        (
            "/hosts/2/sshUser",
            serde_json::json!("root; id"),
            "hosts[2].sshUser",
        ),
        (
            "/defaults/sshUser",
            serde_json::json!("Ubuntu"),
            "defaults.sshUser",
        ),
        (
            "/hosts/2/sshHostKeys/0",
            serde_json::json!("ssh-dss AAAAB3NzaC1kc3MAAACBAP"),
            "hosts[2].sshHostKeys[0]",
        ),
        (
            "/hosts/2/sshHostKeys/0",
            serde_json::json!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC host"),
            "hosts[2].sshHostKeys[0]",
        ),
    ];
    for (pointer, value, path) in cases {
        let mut inventory: serde_json::Value = serde_json::from_str(SHIPPED).expect("input.json");
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        match inventory.pointer_mut(parent).expect(parent) {
            serde_json::Value::Object(map) => {
                map.insert(key.into(), value.clone());
            }
            item => item[key.parse::<usize>().expect("an index")] = value.clone(),
        }
        let error = Inventory::parse("input.json", &inventory.to_string())
            .expect_err(&format!("{pointer} = {value}"));
        assert_eq!(error.path, path, "{pointer} = {value}: {error}");
    }
}

#[test]
fn a_cluster_takes_the_site_its_hosts_share_and_keeps_its_own_labels() {
    let inventory = Inventory::parse("input.json", SHIPPED).expect("valid");
    let core = inventory.parameters(inventory.cluster("core").expect("core"));
    let edge = inventory.parameters(inventory.cluster("edge").expect("edge"));
    assert_eq!(core.labels["site"], "edge1");
    assert_eq!(core.labels["role"], "cu");
    assert_eq!(edge.labels["site"], "edge2");
    assert!(core.handoff.argocd, "registered unless opted out");
    let text = r#"{"hosts": [
        {"id": "a", "hostname": "a", "address": "192.0.2.1", "labels": {"site": "s1"}},
        {"id": "b", "hostname": "b", "address": "192.0.2.2", "labels": {"site": "s2"}}],
      "clusters": [
        {"name": "split", "controlPlaneEndpoint": "192.0.2.10", "controlPlaneHosts": ["a"], "workerHosts": ["b"]},
        {"name": "named", "controlPlaneEndpoint": "192.0.2.11", "controlPlaneHosts": ["a"],
         "labels": {"site": "far"}, "handoff": {"argocd": false}}]}"#;
    let inventory = Inventory::parse("t", text).expect("valid");
    let split = inventory.parameters(inventory.cluster("split").expect("split"));
    assert!(
        !split.labels.contains_key("site"),
        "hosts at two sites: no site"
    );
    let named = inventory.parameters(inventory.cluster("named").expect("named"));
    assert_eq!(named.labels["site"], "far");
    assert!(!named.handoff.argocd);
}

#[test]
fn a_cluster_label_that_is_invalid_or_reserved_is_named() {
    for (labels, fragment) in [
        (r#"{"bad key": "x"}"#, "not a Kubernetes label key"),
        (r#"{"argocd.argoproj.io/secret-type": "x"}"#, "reserved"),
    ] {
        let text = format!(
            r#"{{"hosts": [], "clusters": [{{"name": "c", "controlPlaneEndpoint": "192.0.2.10", "controlPlaneHosts": ["a"], "labels": {labels}}}]}}"#
        );
        let error = Inventory::parse("t", &text).expect_err("refused");
        assert!(error.path.starts_with("clusters[0].labels."), "{error}");
        assert!(error.message.contains(fragment), "{error}");
    }
}
