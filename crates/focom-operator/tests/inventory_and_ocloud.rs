//! The FOCOM operator with its own control plane per test: allClusters and inventory edits,
//! scale, a remote O-Cloud (a second control plane) reached through a kubeconfig or through its
//! O2ims REST API only, unreachable O-Clouds, and no writes on an unchanged world.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::crd::{
    FocomPhase, FocomProvisioningRequest, FocomProvisioningRequestSpec, HostClaim, O2imsApi,
    O2imsSecret, OCloud, OCloudSpec, Operation, ProvisioningRequest, SecretReference,
};
use serde_json::{Value, json};
use support::*;
use testcluster::api_server::{ApiServer, token_with_roles};
use testcluster::{OperatorProcess, TestCluster};

struct World {
    cluster: TestCluster,
    client: Client,
    namespace: String,
    operator: OperatorProcess,
}

async fn world(inventory_text: &str) -> anyhow::Result<World> {
    world_with(inventory_text, &[]).await
}

/// The operator run with `args`.
async fn world_with(inventory_text: &str, args: &[&str]) -> anyhow::Result<World> {
    let cluster = TestCluster::start_new().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("focom").await?.name().to_string();
    put_inventory(&client, &namespace, inventory_text).await?;
    let operator =
        OperatorProcess::start(BINARY, cluster.kubeconfig_path(), &namespace, args).await?;
    Ok(World {
        cluster,
        client,
        namespace,
        operator,
    })
}

fn all_clusters() -> FocomProvisioningRequestSpec {
    FocomProvisioningRequestSpec {
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        all_clusters: Some(true),
        ..Default::default()
    }
}

#[tokio::test]
async fn all_clusters_follow_inventory_edits_and_scale() -> anyhow::Result<()> {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../input.json"))?;
    let w = world(&shipped).await?;
    let ns = w.namespace.as_str();
    create(&w.client, ns, &request("all", all_clusters())).await?;
    let prs = wait_owned(&w.client, ns, "all", 2).await?;
    let clusters: Vec<_> = prs
        .iter()
        .map(|r| r.spec.template_parameters["clusterName"].clone())
        .collect();
    assert_eq!(clusters, [json!("core"), json!("edge")]);

    // A broken inventory is reported on the request, and nothing provisioned is touched.
    let before: Vec<_> = prs.iter().map(|r| r.resource_version()).collect();
    put_inventory(
        &w.client,
        ns,
        &shipped.replace(
            "\"workerHosts\": [\"host-2\"]",
            "\"workerHosts\": \"host-2\"",
        ),
    )
    .await?;
    let fpr = wait_request(
        &w.client,
        ns,
        "all",
        "the broken inventory to be reported",
        |r| condition(r, "InventoryValid").is_some_and(|c| c.0 == "False"),
    )
    .await?;
    let (_, reason, text) = condition(&fpr, "InventoryValid").expect("condition");
    assert_eq!(reason, "InvalidInventory");
    assert!(text.contains("at clusters[0].workerHosts:"), "{text}");
    let after: Vec<_> = owned(&w.client, ns, "all")
        .await?
        .iter()
        .map(|r| r.resource_version())
        .collect();
    assert_eq!(after, before, "nothing provisioned is touched");

    // The inventory is fixed with one more worker for core; `scale` applies it.
    let mut edited: serde_json::Value = serde_json::from_str(&shipped)?;
    edited["hosts"]
        .as_array_mut()
        .expect("hosts")
        .push(json!({"id": "host-5", "hostname": "edge-node-5", "address": "172.20.10.15"}));
    edited["clusters"][0]["workerHosts"] = json!(["host-2", "host-5"]);
    put_inventory(&w.client, ns, &edited.to_string()).await?;
    wait_request(
        &w.client,
        ns,
        "all",
        "the inventory to be valid again",
        |r| condition(r, "InventoryValid").is_some_and(|c| c.0 == "True"),
    )
    .await?;
    let core = &owned(&w.client, ns, "all").await?[0];
    assert_eq!(
        core.spec.template_parameters["hosts"]["workers"],
        json!(["host-2"]),
        "create does not rescale"
    );
    let api = Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns);
    api.patch(
        "all",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"operation": Operation::Scale}})),
    )
    .await?;
    testcluster::wait_for(
        "core's workers to follow the inventory",
        TIMEOUT,
        || async {
            let core = owned(&w.client, ns, "all").await?.remove(0);
            Ok(
                (core.spec.template_parameters["hosts"]["workers"] == json!(["host-2", "host-5"]))
                    .then_some(()),
            )
        },
    )
    .await?;
    // How hosts are reached stays with the O-Cloud's own inventory.
    let core = owned(&w.client, ns, "all").await?.remove(0);
    assert_eq!(
        core.spec.template_parameters.get("hostAccess"),
        None,
        "{}",
        core.spec.template_parameters
    );
    Ok(())
}

/// A change of one cluster's ProvisioningRequest updates the request's row without checking
/// the request against the inventory and its template again: that is done once per version of
/// the spec, the inventory and the template, not once per pass.
#[tokio::test]
async fn a_cluster_changing_state_is_reported_without_validating_the_request_again()
-> anyhow::Result<()> {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../input.json"))?;
    let w = world(&shipped).await?;
    let ns = w.namespace.as_str();
    let validations = || w.operator.metric("focom_request_validations_total");
    create(&w.client, ns, &request("all", all_clusters())).await?;
    let prs = wait_owned(&w.client, ns, "all", 2).await?;
    wait_phase(&w.client, ns, "all", FocomPhase::Creating).await?;
    let (validated, passes) = (
        validations().await?,
        w.operator.metric("focom_reconcile_runs_total").await?,
    );
    for pr in &prs {
        set_state(&w.client, &pr.name_any(), "progressing", "building").await?;
        set_state(&w.client, &pr.name_any(), "fulfilled", "running").await?;
    }
    let synced = wait_phase(&w.client, ns, "all", FocomPhase::Synced).await?;
    let rows: Vec<_> = synced
        .status
        .as_ref()
        .map(|s| s.clusters.clone())
        .unwrap_or_default();
    assert!(
        rows.iter().all(|r| r.state.as_deref() == Some("fulfilled")),
        "{rows:?}"
    );
    assert!(w.operator.metric("focom_reconcile_runs_total").await? > passes);
    assert_eq!(validations().await?, validated, "no pass validated again");

    // A new version of the inventory is validated.
    put_inventory(
        &w.client,
        ns,
        &shipped.replace("\"rack\": \"r1\"", "\"rack\": \"r9\""),
    )
    .await?;
    testcluster::wait_for("the new inventory to be validated", TIMEOUT, || async {
        Ok((validations().await? > validated).then_some(()))
    })
    .await?;
    Ok(())
}

/// A kubeconfig Secret for the remote control plane.
async fn kubeconfig_secret(w: &World, remote: &TestCluster, name: &str) -> anyhow::Result<()> {
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig_path())?;
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": name}, "stringData": {"kubeconfig": kubeconfig}}),
    )?;
    Api::<Secret>::namespaced(w.client.clone(), &w.namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

async fn ocloud(w: &World, name: &str, secret: Option<&str>) -> anyhow::Result<()> {
    let spec = OCloudSpec {
        o2ims_secret: secret.map(|s| O2imsSecret {
            secret_ref: SecretReference {
                name: s.into(),
                namespace: w.namespace.clone(),
            },
        }),
        o2ims_api: None,
    };
    Api::<OCloud>::namespaced(w.client.clone(), &w.namespace)
        .create(&PostParams::default(), &OCloud::new(name, spec))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_remote_ocloud_gets_the_requests_and_its_status_flows_back() -> anyhow::Result<()> {
    let text = inventory(&[("far", &["far-h1"], &[], "10.2.0.1")]).to_string();
    let w = world(&text).await?;
    let ns = w.namespace.as_str();
    let mut spec = by_names(&["far"]);
    spec.o_cloud_id = Some("paris".into());
    create(&w.client, ns, &request("far", spec)).await?;

    // No OCloud yet: a clear condition, retried.
    let fpr = wait_request(
        &w.client,
        ns,
        "far",
        "the missing OCloud to be reported",
        |r| condition(r, "OCloudReachable").is_some_and(|c| c.1 == "OCloudNotFound"),
    )
    .await?;
    assert_eq!(phase(&fpr), Some(FocomPhase::Pending));

    let remote = TestCluster::start_new().await?;
    let remote_client = remote.admin_client()?;
    kubeconfig_secret(&w, &remote, "paris-kubeconfig").await?;
    ocloud(&w, "paris", Some("paris-kubeconfig")).await?;
    let created = testcluster::wait_for("the request on the remote O-Cloud", TIMEOUT, || async {
        let list = Api::<ProvisioningRequest>::all(remote_client.clone())
            .list(&Default::default())
            .await?
            .items;
        Ok(list.into_iter().next())
    })
    .await?;
    assert!(
        owned(&w.client, ns, "far").await?.is_empty(),
        "nothing is created locally"
    );
    assert!(
        created.owner_references().is_empty(),
        "no cross-cluster owner references"
    );
    assert_eq!(
        created.labels().get(lcm_core::FOCOM_REQUEST_LABEL),
        Some(&lcm_core::focom::owner_label(ns, "far"))
    );

    // The remote side is watched: its status reaches the request.
    set_state(&remote_client, &created.name_any(), "fulfilled", "done").await?;
    let fpr = wait_phase(&w.client, ns, "far", FocomPhase::Synced).await?;
    assert_eq!(
        fpr.status.and_then(|s| s.remote_name),
        Some(created.name_any())
    );

    // The OCloud deleted first waits for the requests that use it: else nobody could reach
    // the remote ProvisioningRequest to delete it.
    let oclouds = Api::<OCloud>::namespaced(w.client.clone(), ns);
    oclouds.delete("paris", &DeleteParams::default()).await?;
    let waiting = oclouds.get("paris").await?;
    assert!(
        waiting.metadata.deletion_timestamp.is_some()
            && waiting
                .finalizers()
                .contains(&"focom.nephio.org/in-use".to_string()),
        "{:?}",
        waiting.metadata
    );

    // Deleting the request deletes the remote ProvisioningRequest, then the OCloud goes.
    Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns)
        .delete("far", &DeleteParams::default())
        .await?;
    testcluster::wait_for(
        "the remote request, the local one and the OCloud to be gone",
        TIMEOUT,
        || async {
            let remote_gone = Api::<ProvisioningRequest>::all(remote_client.clone())
                .get_opt(&created.name_any())
                .await?
                .is_none();
            let local_gone = Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns)
                .get_opt("far")
                .await?
                .is_none();
            let ocloud_gone = oclouds.get_opt("paris").await?.is_none();
            Ok((remote_gone && local_gone && ocloud_gone).then_some(()))
        },
    )
    .await
}

/// An OCloud reached through the O2ims REST API at `url`, with `token` (and the API's CA) in
/// the Secret `name`.
async fn rest_ocloud(
    w: &World,
    name: &str,
    url: &str,
    token: &str,
    ca: &str,
) -> anyhow::Result<()> {
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": name}, "stringData": {"token": token, "ca.crt": ca}}),
    )?;
    Api::<Secret>::namespaced(w.client.clone(), &w.namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    let spec = OCloudSpec {
        o2ims_secret: None,
        o2ims_api: Some(O2imsApi {
            url: url.into(),
            secret_ref: SecretReference {
                name: name.into(),
                namespace: w.namespace.clone(),
            },
        }),
    };
    Api::<OCloud>::namespaced(w.client.clone(), &w.namespace)
        .create(&PostParams::default(), &OCloud::new(name, spec))
        .await?;
    Ok(())
}

/// FOCOM holds only the URL of the second control plane's O2ims REST API, its CA and a token
/// bound to the chart's provisioner role: it creates the request there (POST), reads its status
/// and the O-Cloud's host ledger by listing, scales it (PUT) and deletes it (DELETE).
#[tokio::test]
async fn a_remote_ocloud_is_provisioned_through_its_rest_api_only() -> anyhow::Result<()> {
    let text = inventory(&[
        ("far", &["far-h1"], &["far-h2"], "10.2.0.1"),
        ("taken", &["taken-h1"], &[], "10.2.0.2"),
    ])
    .to_string();
    let w = world_with(&text, &["--ocloud-poll-seconds", "1"]).await?;
    let ns = w.namespace.as_str();

    let remote = TestCluster::start_new().await?;
    let remote_client = remote.admin_client()?;
    let api_namespace = remote.namespace("o2ims").await?.name().to_string();
    // The O-Cloud's host ledger: `taken-h1` is in use by a request FOCOM knows nothing of.
    put_inventory(&remote_client, &api_namespace, &text).await?;
    Api::<HostClaim>::all(remote_client.clone())
        .create(&PostParams::default(), &{
            let mut claim = HostClaim::for_host("taken-h1", "someone-else", "uid", "theirs");
            claim.spec.in_use = true;
            claim
        })
        .await?;
    let api = ApiServer::start(
        &remote,
        &testcluster::workspace_binary("o2ims-api")?.to_string_lossy(),
        &api_namespace,
        &[],
    )
    .await?;
    let token = token_with_roles(
        &remote,
        &api_namespace,
        "focom",
        &["oran-lcm-o2ims-provisioner"],
    )
    .await?;
    let ca = std::fs::read_to_string(&api.ca_file)?;
    rest_ocloud(&w, "lyon", &api.base, &token, &ca).await?;

    let mut spec = by_names(&["far"]);
    spec.o_cloud_id = Some("lyon".into());
    create(&w.client, ns, &request("far", spec)).await?;
    let remote_requests = Api::<ProvisioningRequest>::all(remote_client.clone());
    let created = testcluster::wait_for("the request on the remote O-Cloud", TIMEOUT, || async {
        Ok(remote_requests
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .next())
    })
    .await?;
    // Created over REST, which carries no labels or annotations: FOCOM did not use Kubernetes.
    assert!(created.labels().is_empty() && created.annotations().is_empty());
    assert_eq!(
        created.name_any(),
        lcm_core::focom::request_name(ns, "far", "far")
    );
    assert_eq!(
        created.spec.template_parameters["hosts"]["workers"],
        json!(["far-h2"])
    );
    let fpr = wait_request(&w.client, ns, "far", "the request's row", |r| {
        r.status.as_ref().is_some_and(|s| {
            s.clusters
                .iter()
                .any(|c| c.state.as_deref() == Some("progressing"))
        })
    })
    .await?;
    assert_eq!(
        condition(&fpr, "OCloudReachable").map(|c| c.2),
        Some(format!("provisioning on OCloud {ns}/lyon"))
    );

    // Its status is read by listing.
    set_state(&remote_client, &created.name_any(), "fulfilled", "done").await?;
    let fpr = wait_phase(&w.client, ns, "far", FocomPhase::Synced).await?;
    let row = &fpr.status.as_ref().expect("status").clusters[0];
    assert_eq!(
        row.node_cluster_id,
        Some(format!("uid-of-{}", created.name_any()))
    );

    // Scale-in through REST: the worker leaves the cluster in the inventory.
    let scaled = inventory(&[
        ("far", &["far-h1"], &[], "10.2.0.1"),
        ("taken", &["taken-h1"], &[], "10.2.0.2"),
    ]);
    put_inventory(&w.client, ns, &scaled.to_string()).await?;
    Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns)
        .patch(
            "far",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operation": "scale"}})),
        )
        .await?;
    testcluster::wait_for("the worker to leave over REST", TIMEOUT, || async {
        let pr = remote_requests.get(&created.name_any()).await?;
        Ok((pr.spec.template_parameters["hosts"]["workers"] == json!([])).then_some(()))
    })
    .await?;

    // The host ledger is read over REST too: a host in use there makes a request infeasible.
    let mut spec = by_names(&["taken"]);
    spec.o_cloud_id = Some("lyon".into());
    create(&w.client, ns, &request("taken", spec)).await?;
    let infeasible = wait_phase(&w.client, ns, "taken", FocomPhase::Failed).await?;
    let feasible = condition(&infeasible, "Feasible").expect("Feasible");
    assert_eq!(feasible.1, "Infeasible");
    assert!(
        feasible
            .2
            .contains("host `taken-h1` is held by cluster `theirs`"),
        "{}",
        feasible.2
    );

    // A token the O-Cloud does not accept: unreachable, with the API's answer.
    rest_ocloud(&w, "lyon-stranger", &api.base, "not-a-token", &ca).await?;
    let mut spec = by_names(&["far"]);
    spec.o_cloud_id = Some("lyon-stranger".into());
    create(&w.client, ns, &request("stranger", spec)).await?;
    let refused = wait_request(&w.client, ns, "stranger", "the refused token", |r| {
        condition(r, "OCloudReachable").is_some_and(|c| c.1 == "Unreachable")
    })
    .await?;
    let message = condition(&refused, "OCloudReachable").expect("condition").2;
    assert!(message.contains("401"), "{message}");

    // Deleting the request deletes the remote request (DELETE).
    Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns)
        .delete("far", &DeleteParams::default())
        .await?;
    testcluster::wait_for(
        "the remote request and the local one to be gone",
        TIMEOUT,
        || async {
            let remote_gone = remote_requests
                .get_opt(&created.name_any())
                .await?
                .is_none();
            let local_gone = Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns)
                .get_opt("far")
                .await?
                .is_none();
            Ok((remote_gone && local_gone).then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn unreachable_oclouds_are_reported_and_unchanged_requests_cause_no_writes()
-> anyhow::Result<()> {
    let text = inventory(&[("near", &["near-h1"], &[], "10.3.0.1")]).to_string();
    let w = world(&text).await?;
    let ns = w.namespace.as_str();

    // Each way an OCloud's Secret can be unusable is reported, and noticed again without any
    // watched object changing: the Secret is not watched, the retry backoff finds the change.
    ocloud(&w, "dead", Some("dead")).await?;
    let mut spec = by_names(&["near"]);
    spec.o_cloud_id = Some("dead".into());
    create(&w.client, ns, &request("dead", spec)).await?;
    let reported = |reason: &'static str| {
        wait_request(&w.client, ns, "dead", reason, move |r| {
            condition(r, "OCloudReachable").is_some_and(|c| c.1 == reason)
        })
    };
    reported("SecretNotFound").await?;
    let secrets = Api::<Secret>::namespaced(w.client.clone(), ns);
    let secret = |data: Value| -> anyhow::Result<Secret> {
        Ok(serde_json::from_value(
            json!({"metadata": {"name": "dead"}, "stringData": data}),
        )?)
    };
    secrets
        .create(&PostParams::default(), &secret(json!({"config": "x"}))?)
        .await?;
    reported("KubeconfigMissing").await?;
    let replace = |data: Value| {
        let secrets = secrets.clone();
        async move {
            let mut new = secret(data)?;
            new.metadata.resource_version = secrets.get("dead").await?.resource_version();
            secrets
                .replace("dead", &PostParams::default(), &new)
                .await?;
            anyhow::Ok(())
        }
    };
    replace(json!({"kubeconfig": "not: [a kubeconfig"})).await?;
    reported("InvalidKubeconfig").await?;
    // An API server that does not answer.
    let local = std::fs::read_to_string(w.cluster.kubeconfig_path())?;
    let unreachable = local
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("server:") {
                "    server: https://127.0.0.1:9".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    replace(json!({"kubeconfig": unreachable})).await?;
    let fpr = reported("Unreachable").await?;
    assert_eq!(phase(&fpr), Some(FocomPhase::Pending));
    assert!(
        condition(&fpr, "OCloudReachable")
            .expect("c")
            .2
            .contains("OCloud"),
        "the O-Cloud is named"
    );
    // Deleting it waits, Deleting, for the O-Cloud to be reachable again, then finishes.
    let fprs = Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns);
    fprs.delete("dead", &DeleteParams::default()).await?;
    wait_phase(&w.client, ns, "dead", FocomPhase::Deleting).await?;
    replace(json!({"kubeconfig": local})).await?;
    testcluster::wait_for("the deleted request to go", TIMEOUT, || async {
        Ok(fprs.get_opt("dead").await?.is_none().then_some(()))
    })
    .await?;

    // A local OCloud (no Secret) provisions on this cluster; once settled, a reconcile writes nothing.
    ocloud(&w, "local", None).await?;
    let mut spec = by_names(&["near"]);
    spec.o_cloud_id = Some("local".into());
    create(&w.client, ns, &request("near", spec)).await?;
    let pr = wait_owned(&w.client, ns, "near", 1).await?.remove(0);
    set_state(&w.client, &pr.name_any(), "fulfilled", "done").await?;
    let settled = wait_phase(&w.client, ns, "near", FocomPhase::Synced).await?;
    let prs = Api::<ProvisioningRequest>::all(w.client.clone());
    let pr_before = prs.get(&pr.name_any()).await?.resource_version();
    let runs = w.operator.metric("focom_reconcile_runs_total").await?;
    let writes_before = testcluster::writes(&w.client).await?;
    let requests_before = testcluster::requests(&w.client).await?;
    let api = Api::<FocomProvisioningRequest>::namespaced(w.client.clone(), ns);
    let touched = api
        .patch(
            "near",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test/touch": "1"}}})),
        )
        .await?;
    testcluster::wait_for("the operator to reconcile and finish", TIMEOUT, || async {
        let started = w.operator.metric("focom_reconcile_runs_total").await?;
        let finished = w
            .operator
            .metric("focom_reconcile_duration_seconds_count")
            .await?;
        Ok((started > runs && finished == started).then_some(()))
    })
    .await?;
    let writes_after = testcluster::writes(&w.client).await?;
    // What a reconcile reads (the O-Cloud's ProvisioningRequests and host ledger, the
    // inventory, the catalogue, the OCloud) comes from watch-fed caches.
    let read = [
        "provisioningrequests/",
        "hostclaims/",
        "configmaps/",
        "templateinfoes/",
        "oclouds/",
    ];
    let reads =
        testcluster::reads_since(&w.client, &requests_before, |r| read.contains(&r)).await?;
    assert_eq!(
        reads,
        [],
        "a reconcile of an unchanged world reads nothing from the API server"
    );
    let changed: Vec<(&String, f64)> = writes_after
        .iter()
        .map(|(k, v)| (k, v - writes_before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d != 0.0)
        .collect();
    assert_eq!(
        changed,
        [(&"PATCH focomprovisioningrequests/".to_string(), 1.0)],
        "only the test's own touch is a write"
    );
    let after = api.get("near").await?;
    assert_eq!(
        after.resource_version(),
        touched.resource_version(),
        "the status is not rewritten"
    );
    assert_eq!(after.status, settled.status);
    assert_eq!(
        prs.get(&pr.name_any()).await?.resource_version(),
        pr_before,
        "the ProvisioningRequest is not rewritten"
    );
    assert_eq!(owned(&w.client, ns, "near").await?.len(), 1, "no duplicate");
    assert_eq!(
        w.operator.metric("focom_objects{state=\"Synced\"}").await?,
        1.0
    );
    Ok(())
}
