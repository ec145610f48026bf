//! What a request must not be able to do to others, against the real control plane with the real
//! Cluster API and BYOH managers: a long name must not wedge it, a namespace that exists must not
//! be adopted or deleted, a host id two ByoHosts claim must not be pinned, and a refused change
//! must not read `fulfilled`.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use serde_json::json;
use support::capi;
use support::*;
use testcluster::OperatorProcess;
use tokio::sync::OnceCell;

struct Fixture {
    _operator: OperatorProcess,
    site: Site,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn setup() -> anyhow::Result<(Client, &'static Site)> {
    let cluster = testcluster::TestCluster::shared_with_managers().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("o2ims-system").await?.name().to_string();
            let operator = OperatorProcess::start(
                env!("CARGO_BIN_EXE_o2ims-operator"),
                cluster.kubeconfig_path(),
                &namespace,
                &[],
            )
            .await?;
            anyhow::Ok(Fixture {
                _operator: operator,
                site: Site::new(cluster, &namespace)?,
            })
        })
        .await?;
    Ok((client, &fixture.site))
}

/// A cluster of its own with two registered hosts: a control plane and a worker.
async fn cluster(site: &Site, prefix: &str) -> anyhow::Result<Scenario> {
    let s = site.scenario(prefix);
    s.register(&[1, 2]).await?;
    Ok(s)
}

/// Deletes `request`; Cluster API tears its cluster down and BYOH releases its hosts.
async fn delete_and_wait_gone(client: &Client, request: &str) -> anyhow::Result<()> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    api.delete(request, &DeleteParams::default()).await?;
    testcluster::wait_for(&format!("{request} to be gone"), TIMEOUT, || async {
        Ok(api.get_opt(request).await?.is_none().then_some(()))
    })
    .await
}

/// The longest name Kubernetes accepts (a DNS subdomain of 253 characters), as SMOs written for
/// Nephio send: validated, provisioned, found by its labels, deleted.
#[tokio::test]
async fn a_253_character_name_provisions_and_deletes() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let c = cluster(site, "long").await?;
    let label = |i: usize| format!("{}{}", c.name, "x".repeat(63 - c.name.len() - i));
    let name = format!("{}.{}.{}.{}", label(0), label(0), label(0), label(2));
    assert_eq!(name.len(), 253, "{name}");
    create(&client, &request(&name, c.parameters(&[1], &[2]))).await?;
    let fulfilled = wait_state(&client, &name, ProvisioningState::Fulfilled).await?;
    assert_eq!(
        fulfilled
            .status
            .as_ref()
            .and_then(|s| s.observed_generation),
        fulfilled.metadata.generation
    );
    let cluster = capi::get(&client, Kind::Cluster, &c.namespace(), &c.name)
        .await?
        .expect("the Cluster");
    let value = cluster["metadata"]["labels"][lcm_core::PROVISIONING_REQUEST_LABEL]
        .as_str()
        .expect("labelled");
    assert!(value.len() <= 63 && value.starts_with(&c.name), "{value}");
    delete_and_wait_gone(&client, &name).await
}

/// A name longer than a label value with invalid parameters fails (it is not pending for
/// ever) and can be deleted.
#[tokio::test]
async fn a_long_named_invalid_request_fails_and_can_be_deleted() -> anyhow::Result<()> {
    let (client, _) = setup().await?;
    let name = format!("{}.example.org", unique(&"n".repeat(50)));
    assert!(name.len() > 63, "{name}");
    let bad = parameters("Not_A_Label", &["h1"], &[], "172.30.1.1");
    create(&client, &request(&name, bad)).await?;
    let failed = wait_state(&client, &name, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&failed, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "InvalidParameters");
    assert!(text.contains("templateParameters.clusterName"), "{text}");
    delete_and_wait_gone(&client, &name).await
}

/// A `cluster-<name>` namespace the request did not create fails it, with nothing created in
/// it; deleting the request leaves the namespace and what it holds as they were.
#[tokio::test]
async fn an_existing_namespace_is_never_adopted_or_deleted() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let c = cluster(site, "squat").await?;
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": c.namespace()}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &c.namespace());
    let theirs: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "theirs"}, "data": {"k": "v"}}))?;
    config_maps.create(&PostParams::default(), &theirs).await?;
    let before = namespaces.get(&c.namespace()).await?.resource_version();

    let name = format!("{}-req", c.name);
    create(&client, &request(&name, c.parameters(&[1], &[2]))).await?;
    let failed = wait_state(&client, &name, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&failed, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "NamespaceConflict");
    assert!(text.contains(&c.namespace()), "{text}");
    assert!(
        capi::get(&client, Kind::Cluster, &c.namespace(), &c.name)
            .await?
            .is_none(),
        "nothing is created in it"
    );

    delete_and_wait_gone(&client, &name).await?;
    let after = namespaces.get(&c.namespace()).await?;
    assert!(
        after.metadata.deletion_timestamp.is_none(),
        "the namespace is not deleted"
    );
    assert_eq!(
        after.resource_version(),
        before,
        "the namespace is not touched"
    );
    assert!(config_maps.get_opt("theirs").await?.is_some());
    namespaces
        .delete(&c.namespace(), &DeleteParams::default())
        .await?;
    Ok(())
}

/// Two ByoHosts with one `host-id`: the host is unusable and the request names both.
#[tokio::test]
async fn a_host_id_two_byohosts_claim_is_refused() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let c = cluster(site, "twin").await?;
    // Another machine's agent, installed with the same host id.
    let impostor = byoh_sim::SimHost {
        hostname: format!("{}-impostor", c.name),
        ..c.sim_host(1)
    };
    c.register_host(&client, impostor).await?;
    let name = format!("{}-req", c.name);
    create(&client, &request(&name, c.parameters(&[1], &[2]))).await?;
    let failed = wait_state(&client, &name, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&failed, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "HostConflict");
    assert!(
        text.contains(&c.host(1)) && text.contains(&c.hostname(1)) && text.contains("impostor"),
        "{text}"
    );
    assert!(
        capi::get(&client, Kind::Cluster, &c.namespace(), &c.name)
            .await?
            .is_none(),
        "nothing is pinned to it"
    );
    delete_and_wait_gone(&client, &name).await
}

/// An older request that failed validation held nothing; fixed after a newer one created its
/// cluster on a host, it does not take that host: it fails naming the host and the newer request.
#[tokio::test]
async fn an_older_request_fixed_later_does_not_take_a_host_in_use() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let newer = cluster(site, "taker").await?;
    let older = site.scenario("fixed");
    let mut wanted = older.parameters(&[1], &[]);
    wanted["hosts"]["controlPlane"] = json!([newer.host(1)]);
    let mut invalid = wanted.clone();
    invalid["kubernetesVersion"] = json!("v9.9.9");
    create(&client, &request(&older.request, invalid)).await?;
    wait_state(&client, &older.request, ProvisioningState::Failed).await?;

    create(
        &client,
        &request(&newer.request, newer.parameters(&[1], &[2])),
    )
    .await?;
    wait_request(&client, &newer.request, "its cluster objects", |r| {
        condition(r, "ClusterResourcesCreated").is_some_and(|(status, _, _)| status == "True")
    })
    .await?;

    let fix = json!({"spec": {"templateParameters": wanted}});
    Api::<ProvisioningRequest>::all(client.clone())
        .patch(&older.request, &PatchParams::default(), &Patch::Merge(&fix))
        .await?;
    let refused = wait_request(
        &client,
        &older.request,
        "the fixed request to be judged",
        |r| {
            condition(r, "ProvisioningRequestValidated")
                .is_some_and(|(_, reason, _)| reason != "InvalidParameters")
        },
    )
    .await?;
    let (_, reason, text) = condition(&refused, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "HostConflict", "{text}");
    assert!(
        text.contains(&newer.host(1)) && text.contains(&newer.request),
        "{text}"
    );
    assert!(
        capi::get(&client, Kind::Cluster, &older.namespace(), &older.name)
            .await?
            .is_none(),
        "the older request created nothing"
    );
    delete_and_wait_gone(&client, &older.request).await?;
    delete_and_wait_gone(&client, &newer.request).await
}

/// A refused change fails the request while the cluster keeps running; reverting it brings
/// `fulfilled` back.
#[tokio::test]
async fn a_refused_change_fails_the_request_until_reverted() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let c = cluster(site, "refuse").await?;
    let name = format!("{}-req", c.name);
    create(&client, &request(&name, c.parameters(&[1], &[2]))).await?;
    wait_state(&client, &name, ProvisioningState::Fulfilled).await?;

    let mut moved = c.parameters(&[1], &[2]);
    moved["controlPlaneEndpoint"]["host"] = json!("172.30.2.2");
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let patch = |parameters: serde_json::Value| {
        Patch::Merge(json!({"spec": {"templateParameters": parameters}}))
    };
    api.patch(&name, &PatchParams::default(), &patch(moved))
        .await?;
    let failed = wait_state(&client, &name, ProvisioningState::Failed).await?;
    let (_, reason, _) = condition(&failed, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "ChangeRefused");
    let text = message(&failed);
    assert!(
        text.contains("controlPlaneEndpoint") && text.contains("keeps running as it was"),
        "{text}"
    );
    assert_eq!(
        condition(&failed, "ClusterProvisioned").map(|c| c.0),
        Some("True".into()),
        "the cluster itself still runs"
    );

    api.patch(
        &name,
        &PatchParams::default(),
        &patch(c.parameters(&[1], &[2])),
    )
    .await?;
    wait_state(&client, &name, ProvisioningState::Fulfilled).await?;
    Ok(())
}
