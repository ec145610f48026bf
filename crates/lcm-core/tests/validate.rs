//! Validation of template parameters: each invalid input names its field.

mod common;

use lcm_core::template::validate;
use serde_json::{Value, json};

fn errors(value: Value) -> Vec<String> {
    match validate(&value) {
        Ok(_) => panic!("expected errors for {value}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn assert_error(value: Value, path: &str, fragment: &str) {
    let errors = errors(value);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(path) && e.contains(fragment)),
        "expected an error at {path} containing {fragment:?}, got {errors:?}"
    );
}

#[test]
fn the_fixture_is_valid() {
    let params = validate(&common::parameters()).expect("valid");
    assert_eq!(params.hosts.workers, ["h4", "h5"]);
}

#[test]
fn the_supported_range_includes_both_ends() {
    for version in ["v1.27.0", "v1.33.99"] {
        let params = common::with("/kubernetesVersion", json!(version));
        assert!(validate(&params).is_ok(), "{version} is supported");
    }
}

#[test]
fn defaults_fill_optional_fields() {
    let minimal = json!({
        "clusterName": "mini", "kubernetesVersion": "v1.31.13",
        "controlPlaneEndpoint": {"host": "10.0.0.5"}, "hosts": {"controlPlane": ["a"]}
    });
    let params = validate(&minimal).expect("valid");
    assert_eq!(params.control_plane_endpoint.port, 6443);
    assert!(params.hosts.workers.is_empty());
    assert_eq!(params.network.service_domain, "cluster.local");
}

#[test]
fn each_invalid_field_is_named() {
    let cases = [
        (
            common::with("/hosts/controlPlane", json!(["h1", "h2"])),
            "templateParameters.hosts.controlPlane",
            "odd number",
        ),
        (
            common::with("/hosts/controlPlane", json!([])),
            "templateParameters.hosts.controlPlane",
            "odd number",
        ),
        (
            common::with("/hosts/workers", json!(["h1"])),
            "templateParameters.hosts.workers[0]",
            "more than once",
        ),
        (
            common::with("/kubernetesVersion", json!("1.26.6")),
            "templateParameters.kubernetesVersion",
            "must start with `v`",
        ),
        (
            common::with("/kubernetesVersion", json!("v1.34.0")),
            "templateParameters.kubernetesVersion",
            "outside the range",
        ),
        (
            common::with("/kubernetesVersion", json!("v1.26.99")),
            "templateParameters.kubernetesVersion",
            "outside the range",
        ),
        (
            common::with("/controlPlaneEndpoint/host", json!("vip.example.org")),
            "templateParameters.controlPlaneEndpoint.host",
            "not an IP",
        ),
        (
            common::with("/controlPlaneEndpoint/port", json!(0)),
            "templateParameters.controlPlaneEndpoint.port",
            "not a TCP port",
        ),
        (
            common::with("/network/podCIDRs", json!(["10.0.0.0/33"])),
            "templateParameters.network.podCIDRs[0]",
            "not a CIDR",
        ),
        (
            common::with("/network/podCIDRs", json!(["10.1.2.3/16"])),
            "templateParameters.network.podCIDRs[0]",
            "host bits",
        ),
        (
            common::with("/network/serviceCIDRs", json!(["192.168.128.0/20"])),
            "templateParameters.network.serviceCIDRs[0]",
            "overlaps",
        ),
        (
            common::with("/network/podCIDRs", json!(["10.0.0.0/8"])),
            "templateParameters.controlPlaneEndpoint.host",
            "inside",
        ),
        (
            common::with("/clusterName", json!("Demo_1")),
            "templateParameters.clusterName",
            "DNS label",
        ),
        (
            common::with("/hosts/workers", json!(["bad host"])),
            "templateParameters.hosts.workers[0]",
            "not a valid host id",
        ),
        (
            common::with("/cni", json!("flannel")),
            "templateParameters.cni",
            "unknown variant",
        ),
    ];
    for (value, path, fragment) in cases {
        assert_error(value, path, fragment);
    }
}

#[test]
fn unknown_and_missing_fields_are_named() {
    let mut value = common::parameters();
    value["hosts"]["spare"] = json!(["h9"]);
    assert_error(value, "templateParameters.hosts", "unknown field `spare`");
    let mut value = common::parameters();
    value
        .as_object_mut()
        .expect("object")
        .remove("kubernetesVersion");
    assert_error(
        value,
        "templateParameters",
        "missing field `kubernetesVersion`",
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let mut value = common::with("/hosts/controlPlane", json!(["h1", "h2"]));
    value["controlPlaneEndpoint"]["host"] = json!("nope");
    assert_eq!(errors(value).len(), 2);
}

/// The published schema refuses the host access validation refuses, so a TemplateInfo built
/// from it stops a hostile value before the operator's own checks.
#[test]
fn the_parameter_schema_refuses_ill_typed_host_access() {
    let schema = lcm_core::template::parameter_schema().to_string();
    let hostile = "{{ lookup('pipe', 'id') }}";
    let good = json!({"id": "h1", "hostname": "node-1", "address": "10.0.0.1", "sshUser": "ubuntu",
                      "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"]});
    let check = |access: Value| {
        let mut parameters = common::parameters();
        parameters["hostAccess"] = json!([access]);
        lcm_core::template::schema::check(&schema, &parameters, "templateParameters")
    };
    assert_eq!(check(good.clone()), Ok(()));
    for (field, value) in [
        ("id", json!("-h1")),
        ("hostname", json!("Node_1")),
        ("address", json!(hostile)),
        ("sshUser", json!("root; id")),
        ("sshHostKeys", json!(["ssh-ed25519 AAAA\nx"])),
    ] {
        let mut access = good.clone();
        access[field] = value;
        let errors = check(access).expect_err(field);
        assert!(
            errors.iter().any(|e| e
                .path
                .starts_with(&format!("templateParameters.hostAccess[0].{field}"))),
            "{field}: {errors:?}"
        );
    }
}

fn with_field(field: &str, value: Value) -> Value {
    let mut params = common::parameters();
    params[field] = value;
    params
}

#[test]
fn labels_and_handoff_choices_are_accepted_and_default_to_every_handoff() {
    let params = validate(&common::parameters()).expect("valid");
    assert!(params.labels.is_empty());
    assert!(params.handoff.argocd && params.handoff.rancher);
    let labelled = with_field(
        "labels",
        json!({"site": "edge1", "role": "du", "example.org/tier": "gold", "empty": ""}),
    );
    let params = validate(&labelled).expect("valid labels");
    assert_eq!(params.labels["site"], "edge1");
    let opted_out = with_field(
        "handoff",
        json!({"argocd": false, "configSyncDirectory": "gitops/edge1-config"}),
    );
    let params = validate(&opted_out).expect("valid handoff");
    assert!(!params.handoff.argocd && params.handoff.rancher);
    assert_eq!(
        params.handoff.config_sync_directory.as_deref(),
        Some("gitops/edge1-config")
    );
}

#[test]
fn labels_that_are_invalid_or_steer_the_tools_are_refused() {
    let cases = [
        ("bad key!", "x", "not a Kubernetes label key"),
        ("site", "-edge", "not a label value"),
        ("site", &"a".repeat(64), "not a label value"),
        ("argocd.argoproj.io/secret-type", "cluster", "reserved"),
        (
            "cluster-api.cattle.io/rancher-auto-import",
            "true",
            "reserved",
        ),
        ("node.kubernetes.io/role", "x", "reserved"),
        (
            "o2ims.provisioning.oran.org/provisioning-request",
            "x",
            "reserved",
        ),
    ];
    for (key, value, fragment) in cases {
        assert_error(
            with_field("labels", json!({key: value})),
            &format!("templateParameters.labels.{key}"),
            fragment,
        );
    }
}

#[test]
fn a_config_sync_directory_must_stay_inside_the_repository() {
    for directory in ["/etc", "../other", "a/../../b", "a//b", "a b", ""] {
        assert_error(
            with_field("handoff", json!({"configSyncDirectory": directory})),
            "templateParameters.handoff.configSyncDirectory",
            "relative path",
        );
    }
    assert_error(
        with_field("handoff", json!({"argo": true})),
        "templateParameters.handoff",
        "unknown field",
    );
}
