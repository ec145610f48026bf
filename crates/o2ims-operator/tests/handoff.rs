//! Day 2 against the real control plane with the real Cluster API and BYOH managers: a
//! fulfilled cluster registered in ArgoCD (content, labels, kubeconfig rotation, opt-out,
//! removal before the Cluster), Rancher Turtles' label, and Config Sync's ClusterResourceSet.
//! One operator with every hand-off enabled.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use serde_json::{Value, json};
use support::capi;
use support::*;
use testcluster::OperatorProcess;
use tokio::sync::OnceCell;

struct Fixture {
    _operator: OperatorProcess,
    namespace: String,
    argocd: String,
    site: Site,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();
const REPO: &str = "https://git.example.org/fleet.git";
const GIT_CREDENTIALS: &str = "fleet-git-credentials";

async fn setup() -> anyhow::Result<(Client, &'static Fixture)> {
    let cluster = testcluster::TestCluster::shared_with_managers().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("o2ims-system").await?.name().to_string();
            let argocd = cluster.namespace("argocd").await?.name().to_string();
            let args = [
                "--argocd-namespace",
                &argocd,
                "--rancher-auto-import",
                "--config-sync-repo",
                REPO,
                "--config-sync-branch",
                "release",
                "--config-sync-secret",
                GIT_CREDENTIALS,
            ];
            let operator = OperatorProcess::start(
                env!("CARGO_BIN_EXE_o2ims-operator"),
                cluster.kubeconfig_path(),
                &namespace,
                &args,
            )
            .await?;
            anyhow::Ok(Fixture {
                _operator: operator,
                site: Site::new(cluster, &namespace)?,
                namespace,
                argocd,
            })
        })
        .await?;
    Ok((client, fixture))
}

/// The cluster's kubeconfig Secret, as Cluster API's KubeadmControlPlane wrote it.
async fn kubeconfig(client: &Client, s: &Scenario) -> anyhow::Result<Secret> {
    let name = format!("{}-kubeconfig", s.name);
    testcluster::wait_for(&format!("Secret {name}"), TIMEOUT, || async {
        Ok(Api::<Secret>::namespaced(client.clone(), &s.namespace())
            .get_opt(&name)
            .await?)
    })
    .await
}

/// The TLS settings of ArgoCD's cluster Secret for a kubeconfig Secret: its cluster's CA, its
/// user's client certificate and key.
fn tls_of(kubeconfig: &Secret) -> anyhow::Result<Value> {
    let config: Value = lcm_core::yaml::from_str(&string_data(kubeconfig, "value"))?;
    Ok(json!({
        "caData": config["clusters"][0]["cluster"]["certificate-authority-data"],
        "certData": config["users"][0]["user"]["client-certificate-data"],
        "keyData": config["users"][0]["user"]["client-key-data"],
        "insecure": false,
    }))
}

/// Deletes the cluster's kubeconfig Secret; the KubeadmControlPlane writes a new one, with a new
/// client certificate, at its next reconcile (brought forward by an annotation instead of its
/// resync). Returns the old Secret.
async fn rotate_kubeconfig(client: &Client, s: &Scenario) -> anyhow::Result<Secret> {
    let old = kubeconfig(client, s).await?;
    Api::<Secret>::namespaced(client.clone(), &s.namespace())
        .delete(&format!("{}-kubeconfig", s.name), &DeleteParams::default())
        .await?;
    Ok(old)
}

/// Brings the KubeadmControlPlane's next reconcile forward: it acts on any change of its object.
async fn nudge_control_plane(client: &Client, s: &Scenario) -> anyhow::Result<()> {
    let touch =
        json!({"metadata": {"annotations": {"test/nudged": jiff::Timestamp::now().to_string()}}});
    capi::api(client, Kind::KubeadmControlPlane, &s.namespace())
        .patch(
            &format!("{}-control-plane", s.name),
            &PatchParams::default(),
            &Patch::Merge(touch),
        )
        .await?;
    Ok(())
}

/// A provisioned, fulfilled cluster of one control-plane host with `labels` and `handoff`.
async fn fulfilled(client: &Client, s: &Scenario, extra: Value) -> anyhow::Result<()> {
    s.register(&[1]).await?;
    let mut parameters = s.parameters(&[1], &[]);
    for (key, value) in extra.as_object().into_iter().flatten() {
        parameters[key] = value.clone();
    }
    create(client, &request(&s.request, parameters)).await?;
    wait_state(client, &s.request, ProvisioningState::Fulfilled).await?;
    Ok(())
}

fn string_data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .unwrap_or_default()
}

async fn registration(
    client: &Client,
    argocd: &str,
    s: &Scenario,
    what: &str,
    check: impl Fn(Option<&Secret>) -> bool,
) -> anyhow::Result<Option<Secret>> {
    let api = Api::<Secret>::namespaced(client.clone(), argocd);
    let name = format!("cluster-{}", s.name);
    testcluster::wait_for(what, TIMEOUT, || async {
        let secret = api.get_opt(&name).await?;
        Ok(check(secret.as_ref()).then_some(secret))
    })
    .await
}

fn tls(secret: &Secret) -> Value {
    let config: Value = serde_json::from_str(&string_data(secret, "config")).unwrap_or_default();
    config["tlsClientConfig"].clone()
}

/// Merges `value` into the template parameter `key`; returns the spec's new generation.
async fn set_parameter(
    client: &Client,
    s: &Scenario,
    key: &str,
    value: Value,
) -> anyhow::Result<i64> {
    let changed = Api::<ProvisioningRequest>::all(client.clone())
        .patch(
            &s.request,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"templateParameters": {key: value}}})),
        )
        .await?;
    Ok(changed.metadata.generation.unwrap_or_default())
}

/// The lifecycle's rule: a spec change Cluster API has nothing to do for (labels, hand-off
/// settings: only the operators act on them) keeps a fulfilled cluster fulfilled in every
/// status written for it; a change Cluster API rolls or scales for (workers) takes it to
/// progressing.
#[tokio::test]
async fn only_a_change_cluster_api_acts_on_takes_a_fulfilled_cluster_out_of_fulfilled()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("rule");
    fulfilled(&client, &s, json!({"labels": {"site": "edge1"}})).await?;
    let operators_only = [
        ("labels", json!({"site": "edge2", "role": "cu"})),
        ("handoff", json!({"argocd": false})),
        ("handoff", json!({"rancher": false})),
        ("handoff", json!({"argocd": true, "rancher": true})),
    ];
    for (key, value) in operators_only {
        let since = resource_version_now(&client).await?;
        let generation = set_parameter(&client, &s, key, value.clone()).await?;
        let states = states_until_observed(&client, &s.request, &since, generation).await?;
        assert_eq!(
            states,
            [ProvisioningState::Fulfilled],
            "{key}: {value}: every state written"
        );
    }

    s.register(&[2]).await?;
    let since = resource_version_now(&client).await?;
    let hosts = s.parameters(&[1], &[2])["hosts"].clone();
    set_parameter(&client, &s, "hosts", hosts).await?;
    let states = states_since(&client, &s.request, &since, ProvisioningState::Progressing).await?;
    assert_eq!(
        states.last(),
        Some(&ProvisioningState::Progressing),
        "{states:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_fulfilled_cluster_is_registered_in_argocd_and_follows_its_kubeconfig_labels_and_opt_out()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let argocd = f.argocd.as_str();
    let s = f.site.scenario("argo");
    fulfilled(
        &client,
        &s,
        json!({"labels": {"site": "edge1", "role": "du"}}),
    )
    .await?;
    // Cluster API wrote the cluster's kubeconfig Secret before the cluster was fulfilled.
    let written = kubeconfig(&client, &s).await?;
    let secret = registration(&client, argocd, &s, "the ArgoCD cluster Secret", |s| {
        s.is_some()
    })
    .await?
    .expect("registered");
    let labels = secret.labels();
    assert_eq!(labels["argocd.argoproj.io/secret-type"], "cluster");
    assert_eq!(labels["site"], "edge1");
    assert_eq!(labels["role"], "du");
    assert_eq!(string_data(&secret, "name"), s.name);
    assert_eq!(
        string_data(&secret, "server"),
        format!("https://{}:6443", s.vip)
    );
    assert_eq!(tls(&secret), tls_of(&written)?);
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ProvisioningRequest", s.request.as_str())
    );
    wait_request(&client, &s.request, "the condition to say so", |r| {
        condition(r, "ArgoCDRegistered")
            .is_some_and(|c| c.0 == "True" && c.2.contains(&format!("{argocd}/cluster-{}", s.name)))
    })
    .await?;

    // Cluster API rotates the client certificate: while its kubeconfig is away the cluster stays
    // fulfilled, waiting for it; then the registration follows.
    rotate_kubeconfig(&client, &s).await?;
    let waiting = wait_request(&client, &s.request, "waiting for the kubeconfig", |r| {
        condition(r, "ArgoCDRegistered").is_some_and(|c| c.1 == "WaitingForKubeconfig")
    })
    .await?;
    assert_eq!(state(&waiting), Some(ProvisioningState::Fulfilled));
    nudge_control_plane(&client, &s).await?;
    let rotated = tls_of(&kubeconfig(&client, &s).await?)?;
    assert_ne!(rotated["certData"], tls_of(&written)?["certData"]);
    registration(&client, argocd, &s, "the rotated certificate", |s| {
        s.is_some_and(|s| tls(s) == rotated)
    })
    .await?;
    // The inventory relabels the cluster: so is the registration, the old label gone.
    // A merge patch: `null` removes the role.
    set_parameter(
        &client,
        &s,
        "labels",
        json!({"site": "edge2", "role": null}),
    )
    .await?;
    let relabelled = registration(&client, argocd, &s, "the new labels", |s| {
        s.is_some_and(|s| s.labels().get("site").map(String::as_str) == Some("edge2"))
    })
    .await?
    .expect("registered");
    assert!(
        !relabelled.labels().contains_key("role"),
        "{:?}",
        relabelled.labels()
    );

    // Opting out removes the registration; opting in again brings it back.
    set_parameter(&client, &s, "handoff", json!({"argocd": false})).await?;
    registration(
        &client,
        argocd,
        &s,
        "the opted-out registration to go",
        |s| s.is_none(),
    )
    .await?;
    let opted_out = wait_request(&client, &s.request, "the opt-out condition", |r| {
        condition(r, "ArgoCDRegistered").is_some_and(|c| c.0 == "False" && c.1 == "OptedOut")
    })
    .await?;
    assert_eq!(state(&opted_out), Some(ProvisioningState::Fulfilled));
    set_parameter(&client, &s, "handoff", json!({"argocd": true})).await?;
    registration(&client, argocd, &s, "the registration back", |s| {
        s.is_some()
    })
    .await?;

    // A registration deleted by hand is made again.
    Api::<Secret>::namespaced(client.clone(), argocd)
        .delete(&format!("cluster-{}", s.name), &DeleteParams::default())
        .await?;
    registration(&client, argocd, &s, "the deleted registration back", |s| {
        s.is_some_and(|s| s.metadata.deletion_timestamp.is_none() && tls(s) == rotated)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_kubeconfig_argocd_cannot_use_is_reported_and_nothing_is_registered() -> anyhow::Result<()>
{
    let (client, f) = setup().await?;
    let s = f.site.scenario("badkc");
    // Opted out of ArgoCD while its kubeconfig Secret goes bad (no manager writes such a one:
    // it is overwritten here), then opted in.
    fulfilled(&client, &s, json!({"handoff": {"argocd": false}})).await?;
    kubeconfig(&client, &s).await?;
    let bad = json!({"stringData": {"value": "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"}});
    Api::<Secret>::namespaced(client.clone(), &s.namespace())
        .patch(
            &format!("{}-kubeconfig", s.name),
            &PatchParams::default(),
            &Patch::Merge(bad),
        )
        .await?;
    set_parameter(&client, &s, "handoff", json!({"argocd": true})).await?;
    let refused = wait_request(&client, &s.request, "the kubeconfig to be refused", |r| {
        condition(r, "ArgoCDRegistered").is_some_and(|c| c.1 == "InvalidKubeconfig")
    })
    .await?;
    let (_, _, why) = condition(&refused, "ArgoCDRegistered").expect("condition");
    assert!(why.contains("no context `nowhere`"), "{why}");
    assert_eq!(state(&refused), Some(ProvisioningState::Fulfilled));
    let none = Api::<Secret>::namespaced(client.clone(), &f.argocd)
        .get_opt(&format!("cluster-{}", s.name))
        .await?;
    assert!(none.is_none());
    Ok(())
}

#[tokio::test]
async fn the_registration_is_removed_before_the_cluster_is_torn_down() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("argodel");
    fulfilled(&client, &s, json!({})).await?;
    registration(&client, &f.argocd, &s, "the registration", |s| s.is_some()).await?;
    // Cluster API holds a finalizer on the Cluster until it has torn the machines down; paused,
    // it tears nothing down yet.
    let ns = s.namespace();
    pause(&client, &ns, &s.name, true).await?;
    Api::<ProvisioningRequest>::all(client.clone())
        .delete(&s.request, &DeleteParams::default())
        .await?;
    testcluster::wait_for("the Cluster to be deleted", TIMEOUT, || async {
        let cluster = capi::get(&client, Kind::Cluster, &ns, &s.name).await?;
        Ok(cluster.filter(|c| !c["metadata"]["deletionTimestamp"].is_null()))
    })
    .await?;
    let left = Api::<Secret>::namespaced(client.clone(), &f.argocd)
        .get_opt(&format!("cluster-{}", s.name))
        .await?;
    assert!(
        left.is_none(),
        "the registration outlived the Cluster's deletion"
    );
    pause(&client, &ns, &s.name, false).await
}

#[tokio::test]
async fn rancher_turtles_imports_every_cluster_but_one_that_opted_out() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let label = |cluster: Option<Value>| {
        cluster.and_then(|c| {
            c["metadata"]["labels"]["cluster-api.cattle.io/rancher-auto-import"]
                .as_str()
                .map(str::to_string)
        })
    };
    let imported = f.site.scenario("turtle");
    imported.register(&[1]).await?;
    create(
        &client,
        &request(&imported.request, imported.parameters(&[1], &[])),
    )
    .await?;
    wait_state(&client, &imported.request, ProvisioningState::Progressing).await?;
    let cluster = capi::get(
        &client,
        Kind::Cluster,
        &imported.namespace(),
        &imported.name,
    )
    .await?;
    assert_eq!(label(cluster).as_deref(), Some("true"));

    let private = f.site.scenario("noturtle");
    private.register(&[1]).await?;
    let mut parameters = private.parameters(&[1], &[]);
    parameters["handoff"] = json!({"rancher": false});
    create(&client, &request(&private.request, parameters)).await?;
    wait_state(&client, &private.request, ProvisioningState::Progressing).await?;
    let cluster = capi::get(&client, Kind::Cluster, &private.namespace(), &private.name).await?;
    assert!(cluster.is_some(), "the Cluster exists");
    assert_eq!(label(cluster), None);
    Ok(())
}

#[tokio::test]
async fn config_sync_is_bootstrapped_by_a_resource_set_once_its_credentials_exist()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("csync");
    s.register(&[1]).await?;
    let mut parameters = s.parameters(&[1], &[]);
    parameters["labels"] = json!({"site": "edge1"});
    create(&client, &request(&s.request, parameters)).await?;
    let missing = wait_request(&client, &s.request, "the credentials to be missed", |r| {
        condition(r, "ConfigSyncApplied").is_some_and(|c| c.1 == "CredentialsMissing")
    })
    .await?;
    let (_, _, why) = condition(&missing, "ConfigSyncApplied").expect("condition");
    assert!(why.contains(GIT_CREDENTIALS), "{why}");

    let credentials = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": GIT_CREDENTIALS, "namespace": f.namespace},
        "stringData": {"username": "fleet-bot", "token": "s3cret"}});
    Api::<Secret>::namespaced(client.clone(), &f.namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(credentials)?,
        )
        .await?;
    wait_request(&client, &s.request, "the resource set to be applied", |r| {
        condition(r, "ConfigSyncApplied").is_some_and(|c| c.0 == "True")
    })
    .await?;
    let name = format!("{}-config-sync", s.name);
    let crs = capi::get(&client, Kind::ClusterResourceSet, &s.namespace(), &name)
        .await?
        .expect("the ClusterResourceSet");
    assert_eq!(
        crs["spec"]["clusterSelector"],
        json!({"matchLabels": {"cluster.x-k8s.io/cluster-name": s.name}})
    );
    assert_eq!(
        crs["spec"]["resources"],
        json!([{"kind": "ConfigMap", "name": name}, {"kind": "Secret", "name": name}])
    );
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), &s.namespace())
        .get(&name)
        .await?;
    let root_sync: Value = serde_json::from_str(&config_map.data.expect("data")["root-sync.json"])?;
    assert_eq!(
        root_sync["spec"]["git"],
        json!({"repo": REPO, "branch": "release", "dir": "gitops/edge1-config", "auth": "token", "secretRef": {"name": "git-creds"}})
    );
    let bundle = Api::<Secret>::namespaced(client.clone(), &s.namespace())
        .get(&name)
        .await?;
    assert_eq!(
        bundle.type_.as_deref(),
        Some("addons.cluster.x-k8s.io/resource-set")
    );
    let inner: Secret = serde_json::from_str(&string_data(&bundle, "git-creds.json"))?;
    assert_eq!(string_data(&inner, "username"), "fleet-bot");
    assert_eq!(string_data(&inner, "token"), "s3cret");
    assert_eq!(
        inner.namespace().as_deref(),
        Some("config-management-system")
    );
    Ok(())
}
