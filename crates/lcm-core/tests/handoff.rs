//! Day 2 hand-offs: ArgoCD's cluster Secret from the cluster's kubeconfig, Rancher Turtles'
//! label, Config Sync's RootSync and ClusterResourceSet.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lcm_core::handoff::{argocd, config_sync, rancher};
use lcm_core::template::{ClusterParameters, validate};
use serde_json::{Value, json};

fn params(labels: Value, handoff: Value) -> ClusterParameters {
    let mut value = common::parameters();
    value["labels"] = labels;
    value["handoff"] = handoff;
    validate(&value).expect("valid parameters")
}

/// A kubeconfig as Cluster API's KubeadmControlPlane writes it: the cluster CA and a client
/// certificate of the admin, both inline; a second context that is not the current one.
const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster:
    server: https://10.0.0.100:6443
    certificate-authority-data: Q0EgUEVN
- name: other
  cluster:
    server: https://192.0.2.9:6443
users:
- name: demo-admin
  user:
    client-certificate-data: Q0VSVCBQRU0=
    client-key-data: S0VZIFBFTQ==
contexts:
- name: other
  context: {cluster: other, user: demo-admin}
- name: demo-admin@demo
  context: {cluster: demo, user: demo-admin}
current-context: demo-admin@demo
";

fn config_of(secret: &Value) -> Value {
    serde_json::from_str(secret["stringData"]["config"].as_str().expect("config")).expect("json")
}

#[test]
fn the_argocd_secret_reaches_the_current_context_with_its_tls_data() {
    let p = params(json!({"site": "edge1", "role": "du"}), json!({}));
    let secret = argocd::cluster_secret("req-1", &p, "argocd", KUBECONFIG, "42").expect("built");
    assert_eq!(secret["metadata"]["namespace"], "argocd");
    assert_eq!(secret["metadata"]["name"], "cluster-demo");
    let labels = &secret["metadata"]["labels"];
    assert_eq!(labels["argocd.argoproj.io/secret-type"], "cluster");
    assert_eq!(labels["site"], "edge1");
    assert_eq!(labels["role"], "du");
    assert_eq!(
        secret["metadata"]["annotations"][argocd::FINGERPRINT_ANNOTATION],
        argocd::fingerprint("req-1", &p, "42").as_str()
    );
    assert_eq!(secret["stringData"]["name"], "demo");
    assert_eq!(secret["stringData"]["server"], "https://10.0.0.100:6443");
    let tls = &config_of(&secret)["tlsClientConfig"];
    assert_eq!(tls["caData"], "Q0EgUEVN");
    assert_eq!(tls["certData"], "Q0VSVCBQRU0=");
    assert_eq!(tls["keyData"], "S0VZIFBFTQ==");
    assert_eq!(tls["insecure"], false);
    assert!(config_of(&secret).get("bearerToken").is_none());
}

#[test]
fn a_token_kubeconfig_gives_a_bearer_token_and_a_tenant_label_cannot_hide_the_type() {
    let token = KUBECONFIG
        .replace(
            "    client-certificate-data: Q0VSVCBQRU0=\n    client-key-data: S0VZIFBFTQ==\n",
            "    token: abc\n",
        )
        .replace(
            "    certificate-authority-data: Q0EgUEVN\n",
            "    insecure-skip-tls-verify: true\n",
        );
    let p = params(json!({}), json!({}));
    let secret = argocd::cluster_secret("r", &p, "argocd", &token, "1").expect("built");
    let config = config_of(&secret);
    assert_eq!(config["bearerToken"], "abc");
    assert_eq!(config["tlsClientConfig"]["insecure"], true);
    assert!(config["tlsClientConfig"].get("caData").is_none());
}

#[test]
fn a_kubeconfig_without_what_argocd_needs_is_refused_with_the_reason() {
    let p = params(json!({}), json!({}));
    let cases = [
        (
            KUBECONFIG.replace("current-context: demo-admin@demo", "current-context: gone"),
            "no context `gone`",
        ),
        (
            KUBECONFIG.replace("context: {cluster: demo,", "context: {cluster: nowhere,"),
            "no cluster `nowhere`",
        ),
        (
            KUBECONFIG.replace("    client-key-data: S0VZIFBFTQ==\n", ""),
            "neither a token nor client-certificate-data and client-key-data",
        ),
        ("[not a kubeconfig".to_string(), "not valid"),
    ];
    for (kubeconfig, reason) in cases {
        let error =
            argocd::cluster_secret("r", &p, "argocd", &kubeconfig, "1").expect_err("refused");
        assert!(error.contains(reason), "{error} does not say {reason}");
    }
}

#[test]
fn rancher_turtles_imports_the_cluster_unless_it_opted_out() {
    let generated = |p: &ClusterParameters| {
        let mut generated = lcm_core::capi::generate("r", p, None);
        rancher::import(&mut generated, p);
        generated
    };
    let cluster = |g: &lcm_core::capi::Generated| {
        g.objects
            .iter()
            .find(|o| o["kind"] == "Cluster")
            .expect("a Cluster")
            .clone()
    };
    let imported = generated(&params(json!({}), json!({})));
    assert_eq!(
        cluster(&imported)["metadata"]["labels"][rancher::AUTO_IMPORT_LABEL],
        "true"
    );
    let others = imported.objects.iter().filter(|o| o["kind"] != "Cluster");
    assert!(others.into_iter().all(|o| {
        o["metadata"]["labels"]
            .get(rancher::AUTO_IMPORT_LABEL)
            .is_none()
    }));
    let opted_out = generated(&params(json!({}), json!({"rancher": false})));
    assert!(
        cluster(&opted_out)["metadata"]["labels"]
            .get(rancher::AUTO_IMPORT_LABEL)
            .is_none()
    );
}

fn source(credentials: bool) -> config_sync::Source {
    config_sync::Source {
        repo: "https://git.example.org/fleet.git".into(),
        branch: "main".into(),
        credentials: credentials.then(|| config_sync::Credentials {
            username: "Z2l0".into(),
            token: "c2VjcmV0".into(),
        }),
    }
}

#[test]
fn config_sync_follows_the_cluster_directory_then_its_site_then_its_name() {
    let own = params(
        json!({"site": "edge1"}),
        json!({"configSyncDirectory": "clusters/a"}),
    );
    assert_eq!(config_sync::directory(&own), "clusters/a");
    assert_eq!(
        config_sync::directory(&params(json!({"site": "edge1"}), json!({}))),
        "gitops/edge1-config"
    );
    assert_eq!(
        config_sync::directory(&params(json!({}), json!({}))),
        "gitops/demo-config"
    );
}

#[test]
fn a_public_repository_is_synced_by_a_resource_set_of_this_cluster_only() {
    let p = params(json!({"site": "edge2"}), json!({}));
    let objects = config_sync::objects("r", &p, &source(false));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "ClusterResourceSet"]);
    let crs = &objects[1];
    assert_eq!(crs["metadata"]["namespace"], "cluster-demo");
    assert_eq!(
        crs["spec"]["clusterSelector"]["matchLabels"]["cluster.x-k8s.io/cluster-name"],
        "demo"
    );
    assert_eq!(
        crs["spec"]["resources"],
        json!([{"kind": "ConfigMap", "name": "demo-config-sync"}])
    );
    let root_sync: Value = serde_json::from_str(
        objects[0]["data"]["root-sync.json"]
            .as_str()
            .expect("the RootSync"),
    )
    .expect("json");
    assert_eq!(root_sync["kind"], "RootSync");
    assert_eq!(
        root_sync["metadata"]["namespace"],
        "config-management-system"
    );
    assert_eq!(
        root_sync["spec"]["git"],
        json!({"repo": "https://git.example.org/fleet.git", "branch": "main", "dir": "gitops/edge2-config", "auth": "none"})
    );
}

#[test]
fn a_private_repository_brings_its_credentials_as_a_resource_set_secret() {
    let p = params(json!({}), json!({}));
    let objects = config_sync::objects("r", &p, &source(true));
    let secret = objects
        .iter()
        .find(|o| o["kind"] == "Secret")
        .expect("the credentials");
    assert_eq!(secret["type"], "addons.cluster.x-k8s.io/resource-set");
    let inner = STANDARD
        .decode(secret["data"]["git-creds.json"].as_str().expect("data"))
        .expect("base64");
    let inner: Value = serde_json::from_slice(&inner).expect("a Secret");
    assert_eq!(
        inner["metadata"],
        json!({"name": "git-creds", "namespace": "config-management-system"})
    );
    assert_eq!(
        inner["data"],
        json!({"username": "Z2l0", "token": "c2VjcmV0"})
    );
    let crs = objects
        .iter()
        .find(|o| o["kind"] == "ClusterResourceSet")
        .expect("crs");
    assert_eq!(
        crs["spec"]["resources"][1],
        json!({"kind": "Secret", "name": "demo-config-sync"})
    );
    let root_sync: Value =
        serde_json::from_str(objects[0]["data"]["root-sync.json"].as_str().expect("rs"))
            .expect("json");
    assert_eq!(root_sync["spec"]["git"]["auth"], "token");
    assert_eq!(
        root_sync["spec"]["git"]["secretRef"],
        json!({"name": "git-creds"})
    );
}

#[test]
fn the_fingerprint_changes_with_the_kubeconfig_and_with_the_labels() {
    let p = params(json!({"site": "edge1"}), json!({}));
    let base = argocd::fingerprint("r", &p, "42");
    assert_eq!(base, argocd::fingerprint("r", &p, "42"));
    assert_ne!(
        base,
        argocd::fingerprint("r", &p, "43"),
        "rotated kubeconfig"
    );
    let relabelled = params(json!({"site": "edge2"}), json!({}));
    assert_ne!(
        base,
        argocd::fingerprint("r", &relabelled, "42"),
        "new labels"
    );
}
