//! The CAPI generator: structure, host pinning and cross references.

mod common;

use lcm_core::capi::generate;
use lcm_core::template::{ClusterParameters, validate};
use lcm_core::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};
use serde_json::{Value, json};

fn params(value: Value) -> ClusterParameters {
    validate(&value).expect("fixture is valid")
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is generated"))
}

fn selector_hosts(template: &Value) -> Vec<String> {
    let expressions = &template["spec"]["template"]["spec"]["selector"]["matchExpressions"];
    assert_eq!(
        expressions.as_array().map(Vec::len),
        Some(1),
        "exactly one selector expression"
    );
    assert_eq!(expressions[0]["key"], HOST_ID_LABEL);
    assert_eq!(expressions[0]["operator"], "In");
    serde_json::from_value(expressions[0]["values"].clone()).expect("values are strings")
}

#[test]
fn templates_pin_each_role_to_exactly_its_hosts() {
    let generated = generate("req-1", &params(common::parameters()), None);
    let cp = find(
        &generated.objects,
        "ByoMachineTemplate",
        "demo-control-plane",
    );
    let workers = find(&generated.objects, "ByoMachineTemplate", "demo-md-0");
    assert_eq!(selector_hosts(cp), ["h1", "h2", "h3"]);
    assert_eq!(selector_hosts(workers), ["h4", "h5"]);
}

#[test]
fn replicas_follow_the_host_counts() {
    let generated = generate("req-1", &params(common::parameters()), None);
    let kcp = find(
        &generated.objects,
        "KubeadmControlPlane",
        "demo-control-plane",
    );
    let md = find(&generated.objects, "MachineDeployment", "demo-md-0");
    assert_eq!(kcp["spec"]["replicas"], 3);
    assert_eq!(md["spec"]["replicas"], 2);
    assert_eq!(kcp["spec"]["version"], "v1.32.9");
    assert_eq!(md["spec"]["template"]["spec"]["version"], "v1.32.9");
}

#[test]
fn rollouts_need_no_spare_host() {
    let three = generate("r", &params(common::parameters()), None);
    let kcp = find(&three.objects, "KubeadmControlPlane", "demo-control-plane");
    assert_eq!(
        kcp["spec"]["rolloutStrategy"]["rollingUpdate"]["maxSurge"],
        0
    );
    let md = find(&three.objects, "MachineDeployment", "demo-md-0");
    assert_eq!(
        md["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 0, "maxUnavailable": 1})
    );

    // KCP refuses maxSurge 0 below three replicas.
    let one = generate(
        "r",
        &params(common::with("/hosts/controlPlane", json!(["h1"]))),
        None,
    );
    let kcp = find(&one.objects, "KubeadmControlPlane", "demo-control-plane");
    assert_eq!(
        kcp["spec"]["rolloutStrategy"]["rollingUpdate"]["maxSurge"],
        1
    );
}

#[test]
fn every_object_is_labelled_and_namespaced() {
    let generated = generate("req-1", &params(common::parameters()), Some("kind: List"));
    assert_eq!(generated.namespace, "cluster-demo");
    assert_eq!(generated.objects[0]["kind"], "Namespace");
    for object in &generated.objects {
        assert_eq!(
            object["metadata"]["labels"][PROVISIONING_REQUEST_LABEL], "req-1",
            "{object}"
        );
        if object["kind"] != "Namespace" {
            assert_eq!(object["metadata"]["namespace"], "cluster-demo", "{object}");
        }
    }
}

#[test]
fn references_point_at_generated_objects() {
    let generated = generate("req-1", &params(common::parameters()), None);
    let objects = &generated.objects;
    let cluster = find(objects, "Cluster", "demo");
    for reference in [
        &cluster["spec"]["controlPlaneRef"],
        &cluster["spec"]["infrastructureRef"],
    ] {
        let target = find(
            objects,
            reference["kind"].as_str().unwrap_or_default(),
            reference["name"].as_str().unwrap_or_default(),
        );
        assert_eq!(target["apiVersion"], reference["apiVersion"]);
    }
    let kcp = find(objects, "KubeadmControlPlane", "demo-control-plane");
    let infra = &kcp["spec"]["machineTemplate"]["infrastructureRef"];
    assert_eq!(
        infra["namespace"], "cluster-demo",
        "KCP requires the namespace on its template reference"
    );
    find(
        objects,
        infra["kind"].as_str().unwrap_or_default(),
        infra["name"].as_str().unwrap_or_default(),
    );

    let md = find(objects, "MachineDeployment", "demo-md-0");
    let template = &md["spec"]["template"];
    for (key, value) in md["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &template["metadata"]["labels"][key], value,
            "selector must match the template labels"
        );
    }
    for reference in [
        &template["spec"]["bootstrap"]["configRef"],
        &template["spec"]["infrastructureRef"],
    ] {
        find(
            objects,
            reference["kind"].as_str().unwrap_or_default(),
            reference["name"].as_str().unwrap_or_default(),
        );
    }
}

#[test]
fn endpoint_is_served_by_kube_vip_and_tolerated_by_kubeadm() {
    let generated = generate("r", &params(common::parameters()), None);
    let objects = &generated.objects;
    let endpoint = json!({"host": "10.0.0.100", "port": 6443});
    assert_eq!(
        find(objects, "Cluster", "demo")["spec"]["controlPlaneEndpoint"],
        endpoint
    );
    assert_eq!(
        find(objects, "ByoCluster", "demo")["spec"]["controlPlaneEndpoint"],
        endpoint
    );
    let spec =
        &find(objects, "KubeadmControlPlane", "demo-control-plane")["spec"]["kubeadmConfigSpec"];
    let file = &spec["files"][0];
    assert_eq!(file["path"], "/etc/kube-vip/kube-vip.yaml");
    assert!(
        file["content"]
            .as_str()
            .unwrap_or_default()
            .contains("10.0.0.100")
    );
    assert!(
        spec["preKubeadmCommands"]
            .as_array()
            .expect("commands")
            .contains(&json!(
                "install -m 0644 /etc/kube-vip/kube-vip.yaml /etc/kubernetes/manifests/kube-vip.yaml"
            ))
    );
    for phase in ["initConfiguration", "joinConfiguration"] {
        let ignored = &spec[phase]["nodeRegistration"]["ignorePreflightErrors"];
        assert!(
            ignored
                .as_array()
                .expect("list")
                .contains(&json!("DirAvailable--etc-kubernetes-manifests"))
        );
    }
}

#[test]
fn calico_is_wired_through_a_cluster_resource_set() {
    let generated = generate(
        "r",
        &params(common::parameters()),
        Some("apiVersion: v1\nkind: List\n"),
    );
    let objects = &generated.objects;
    let crs = find(objects, "ClusterResourceSet", "demo-calico");
    let cluster_labels = &find(objects, "Cluster", "demo")["metadata"]["labels"];
    for (key, value) in crs["spec"]["clusterSelector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &cluster_labels[key], value,
            "the CRS must select the Cluster"
        );
    }
    let resource = &crs["spec"]["resources"][0];
    let config_map = find(
        objects,
        resource["kind"].as_str().unwrap_or_default(),
        resource["name"].as_str().unwrap_or_default(),
    );
    assert!(config_map["data"]["calico.yaml"].is_string());

    let none = generate("r", &params(common::with("/cni", json!("none"))), None);
    assert!(
        none.objects
            .iter()
            .all(|o| o["kind"] != "ClusterResourceSet" && o["kind"] != "ConfigMap")
    );
    assert!(
        find(&none.objects, "Cluster", "demo")["metadata"]["labels"]
            .get("cni")
            .is_none()
    );
}

#[test]
fn generation_is_deterministic() {
    let p = params(common::parameters());
    assert_eq!(generate("r", &p, None), generate("r", &p, None));
}

#[test]
fn the_cluster_records_its_parameters_and_workers_can_be_held_back() {
    let p = params(common::parameters());
    let mut generated = generate("r", &p, None);
    let cluster = find(&generated.objects, "Cluster", "demo").clone();
    assert_eq!(lcm_core::capi::applied_parameters(&cluster), Some(p));
    lcm_core::capi::hold_worker_version(&mut generated, "v1.31.13");
    let md = find(&generated.objects, "MachineDeployment", "demo-md-0");
    assert_eq!(md["spec"]["template"]["spec"]["version"], "v1.31.13");
    let workers = find(&generated.objects, "KubeadmConfigTemplate", "demo-md-0");
    let script = workers["spec"]["template"]["spec"]["files"][0]["content"]
        .as_str()
        .expect("script");
    assert!(script.contains("kubernetes_version=v1.31.13"), "{script}");
    let kcp = find(
        &generated.objects,
        "KubeadmControlPlane",
        "demo-control-plane",
    );
    assert_eq!(kcp["spec"]["version"], "v1.32.9");
}

#[test]
fn every_bootstrap_resets_the_host_before_anything_is_installed() {
    let generated = generate("r", &params(common::parameters()), None);
    let objects = &generated.objects;
    let control_plane =
        &find(objects, "KubeadmControlPlane", "demo-control-plane")["spec"]["kubeadmConfigSpec"];
    let workers = &find(objects, "KubeadmConfigTemplate", "demo-md-0")["spec"]["template"]["spec"];
    for spec in [control_plane, workers] {
        let commands: Vec<&str> = spec["preKubeadmCommands"]
            .as_array()
            .expect("commands")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let reset = commands
            .iter()
            .position(|c| *c == "kubeadm reset --force")
            .expect("the reset");
        // Before it only what keeps the authorities the bootstrap provider wrote (on control
        // planes); then the packages of the machine's version, before kubeadm runs.
        assert!(
            commands[..reset]
                .iter()
                .all(|c| c.starts_with("install -D -m 0600 /etc/kubernetes/pki/")),
            "{commands:?}"
        );
        let packages = commands
            .iter()
            .position(|c| *c == "sh /etc/lcm/install-kubernetes.sh")
            .expect("the packages");
        assert!(reset < packages, "{commands:?}");
        let script = spec["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"] == "/etc/lcm/install-kubernetes.sh")
            .expect("the packages script");
        let content = script["content"].as_str().expect("content");
        assert!(content.contains("kubernetes_version=v1.32.9"), "{content}");
    }
    // Nothing is written where the reset empties: kube-vip goes in after it.
    for file in control_plane["files"].as_array().expect("files") {
        let path = file["path"].as_str().expect("path");
        assert!(!path.starts_with("/etc/kubernetes/"), "{path}");
    }
}

#[test]
fn a_running_control_plane_keeps_its_bootstrap_until_it_is_upgraded() {
    let mut generated = generate("r", &params(common::parameters()), None);
    let live =
        json!({"spec": {"kubeadmConfigSpec": {"files": [], "preKubeadmCommands": ["older"]}}});
    lcm_core::capi::keep_control_plane_bootstrap(&mut generated, &live);
    let kcp = find(
        &generated.objects,
        "KubeadmControlPlane",
        "demo-control-plane",
    );
    assert_eq!(
        kcp["spec"]["kubeadmConfigSpec"],
        live["spec"]["kubeadmConfigSpec"]
    );
    // A live object without one (not created yet) changes nothing.
    let mut fresh = generate("r", &params(common::parameters()), None);
    lcm_core::capi::keep_control_plane_bootstrap(&mut fresh, &json!({}));
    assert_eq!(fresh, generate("r", &params(common::parameters()), None));
}

#[test]
fn nodes_are_drained_within_the_given_time() {
    let mut generated = generate("r", &params(common::parameters()), None);
    lcm_core::capi::drain_within(&mut generated, std::time::Duration::from_secs(600));
    let kcp = find(
        &generated.objects,
        "KubeadmControlPlane",
        "demo-control-plane",
    );
    // As Cluster API's webhooks rewrite a metav1.Duration (Go's time.Duration.String), so the
    // live object holds what was applied.
    assert_eq!(kcp["spec"]["machineTemplate"]["nodeDrainTimeout"], "10m0s");
    let md = find(&generated.objects, "MachineDeployment", "demo-md-0");
    assert_eq!(md["spec"]["template"]["spec"]["nodeDrainTimeout"], "10m0s");
    for (seconds, written) in [
        (0, "0s"),
        (45, "45s"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (3725, "1h2m5s"),
    ] {
        let mut generated = generate("r", &params(common::parameters()), None);
        lcm_core::capi::drain_within(&mut generated, std::time::Duration::from_secs(seconds));
        let md = find(&generated.objects, "MachineDeployment", "demo-md-0");
        assert_eq!(
            md["spec"]["template"]["spec"]["nodeDrainTimeout"], written,
            "{seconds} s"
        );
    }
}
