//! The FOCOM operator against the real control plane: one operator for all tests here, one
//! inventory in which each test has its own clusters and hosts.

mod support;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::crd::{
    FocomPhase, FocomProvisioningRequest, FocomProvisioningRequestSpec, HostClaim, Operation,
    ProvisioningRequest,
};
use serde_json::json;
use support::*;
use testcluster::OperatorProcess;
use tokio::sync::OnceCell;

struct Fixture {
    namespace: String,
    _operator: OperatorProcess,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

fn test_inventory() -> String {
    let mut inventory = inventory(&[
        ("agg-a", &["agg-h1"], &["agg-h2"], "10.1.0.1"),
        ("agg-b", &["agg-h3"], &[], "10.1.0.2"),
        ("taken", &["taken-h1"], &[], "10.1.0.3"),
        ("same-vip-a", &["vip-h1"], &[], "10.1.0.4"),
        ("same-vip-b", &["vip-h2"], &[], "10.1.0.4"),
        ("race-a", &["race-h1"], &[], "10.1.0.5"),
        ("race-b", &["race-h1"], &[], "10.1.0.6"),
        ("ops", &["ops-h1"], &[], "10.1.0.7"),
        ("gone", &["gone-h1"], &[], "10.1.0.8"),
        ("fast", &["fast-h1"], &[], "10.1.0.9"),
        ("dup-a", &["dup-h1"], &[], "10.1.0.10"),
        ("dup-b", &["dup-h1"], &[], "10.1.0.11"),
        ("vip-held", &["vip-held-h1"], &[], "10.9.9.9"),
        ("legacy", &["legacy-h1"], &[], "10.1.0.12"),
        ("even", &["even-h1", "even-h2"], &[], "10.1.0.13"),
        ("ghost", &["ghost-h1"], &[], "10.1.0.14"),
        ("kept", &["kept-h1"], &[], "10.1.0.15"),
        ("freed", &["freed-h1"], &[], "10.1.0.16"),
        ("waits", &["waits-h1"], &[], "10.1.0.17"),
    ]);
    // `ghost` names a host the inventory does not have.
    if let Some(hosts) = inventory["hosts"].as_array_mut() {
        hosts.retain(|h| h["id"] != "ghost-h1");
    }
    inventory.to_string()
}

async fn setup() -> anyhow::Result<(Client, &'static str)> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("focom").await?.name().to_string();
            put_inventory(&client, &namespace, &test_inventory()).await?;
            other_requests_on_the_ocloud(&client).await?;
            let operator =
                OperatorProcess::start(BINARY, cluster.kubeconfig_path(), &namespace, &[]).await?;
            anyhow::Ok(Fixture {
                namespace,
                _operator: operator,
            })
        })
        .await?;
    Ok((client, fixture.namespace.as_str()))
}

/// What others have made on the O-Cloud, made before the operator starts so that its first
/// listing holds them: a request made just before a FocomProvisioningRequest may reach the
/// operator's watch after it (the O-Cloud's ledger settles that race, not FOCOM).
async fn other_requests_on_the_ocloud(client: &Client) -> anyhow::Result<()> {
    // Uses taken-h1, at the endpoint 10.9.9.9, as cluster `legacy`.
    let legacy = ("legacy", "taken-h1", "10.9.9.9");
    foreign_request(client, "someone-elses", legacy, json!([])).await?;
    hold_in_ledger(client, "taken-h1", "someone-elses", "legacy").await?;
    // Wants waits-h1 but does not use it yet.
    let wanter = ("wanter", "waits-h1", "10.2.0.3");
    foreign_request(client, "wants-waits-h1", wanter, json!([])).await
}

#[tokio::test]
async fn cluster_names_fan_out_and_status_aggregates() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    create(&client, ns, &request("agg", by_names(&["agg-a", "agg-b"]))).await?;
    let prs = wait_owned(&client, ns, "agg", 2).await?;
    let names: Vec<String> = prs.iter().map(|r| r.name_any()).collect();
    assert_eq!(
        names,
        [
            lcm_core::focom::request_name(ns, "agg", "agg-a"),
            lcm_core::focom::request_name(ns, "agg", "agg-b")
        ]
    );
    assert_eq!(
        prs[0].spec.template_parameters["hosts"]["workers"],
        json!(["agg-h2"]),
        "parameters come from the inventory"
    );
    let fpr = wait_phase(&client, ns, "agg", FocomPhase::Creating).await?;
    assert_eq!(
        fpr.status
            .as_ref()
            .and_then(|s| s.clusters_ready.clone())
            .as_deref(),
        Some("0/2")
    );
    assert_eq!(
        fpr.status.as_ref().and_then(|s| s.remote_name.clone()),
        None,
        "two clusters have no single remote name"
    );

    // agg-b first: once agg-a's change shows (1/2 ready), agg-b's has been seen too.
    set_state(
        &client,
        &names[1],
        "progressing",
        "control plane: 0/1 ready",
    )
    .await?;
    set_state(&client, &names[0], "fulfilled", "done").await?;
    let fpr = wait_request(&client, ns, "agg", "1/2 ready", |r| {
        r.status.as_ref().and_then(|s| s.clusters_ready.as_deref()) == Some("1/2")
    })
    .await?;
    assert_eq!(phase(&fpr), Some(FocomPhase::Creating));
    assert!(
        message(&fpr).contains("agg-b is progressing"),
        "{}",
        message(&fpr)
    );
    let row = &fpr.status.as_ref().expect("status").clusters[0];
    assert_eq!(
        (row.state.as_deref(), row.node_cluster_id.clone()),
        (Some("fulfilled"), Some(format!("uid-of-{}", names[0])))
    );

    set_state(
        &client,
        &names[1],
        "failed",
        "Machine agg-b-m1 failed: BootstrapFailed",
    )
    .await?;
    let fpr = wait_phase(&client, ns, "agg", FocomPhase::Failed).await?;
    assert!(
        message(&fpr).contains("failed clusters: agg-b: Machine agg-b-m1 failed: BootstrapFailed"),
        "{}",
        message(&fpr)
    );

    set_state(&client, &names[1], "fulfilled", "done").await?;
    let fpr = wait_phase(&client, ns, "agg", FocomPhase::Synced).await?;
    assert_eq!(condition(&fpr, "Ready").map(|c| c.0), Some("True".into()));
    assert_eq!(owned(&client, ns, "agg").await?.len(), 2, "no duplicates");
    Ok(())
}

#[tokio::test]
async fn a_template_request_creates_one_named_request() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    let spec = FocomProvisioningRequestSpec {
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        template_parameters: Some(json!({
            "clusterName": "lab", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.9.0.1"},
            "hosts": {"controlPlane": ["lab-h1"]},
        })),
        ..Default::default()
    };
    create(&client, ns, &request("lab", spec)).await?;
    let prs = wait_owned(&client, ns, "lab", 1).await?;
    let fpr = wait_request(&client, ns, "lab", "the remote name", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.remote_name.clone())
            .is_some()
    })
    .await?;
    assert_eq!(
        fpr.status.and_then(|s| s.remote_name),
        Some(prs[0].name_any())
    );
    Ok(())
}

#[tokio::test]
async fn template_info_schemas_validate_parameters_with_paths() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    // Found by its spec fields; its schema requires a `site`.
    template_info(&client, ns, "strict-catalogue", "strict", "v9", json!({
        "type": "object", "required": ["site"],
        "properties": {"site": {"type": "string"}, "hosts": {"type": "object", "properties": {"controlPlane": {"type": "array", "maxItems": 1}}}},
    }))
    .await?;
    let params = json!({"clusterName": "st", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.9.0.2"},
        "hosts": {"controlPlane": ["st-1", "st-2", "st-3"]}});
    let spec = |template: &str, version: &str| FocomProvisioningRequestSpec {
        template_name: template.into(),
        template_version: version.into(),
        template_parameters: Some(params.clone()),
        ..Default::default()
    };
    create(&client, ns, &request("strict", spec("strict", "v9"))).await?;
    let fpr = wait_phase(&client, ns, "strict", FocomPhase::Failed).await?;
    let (_, reason, text) = condition(&fpr, "Validated").expect("condition");
    assert_eq!(reason, "InvalidRequest");
    assert!(
        text.contains("spec.templateParameters: \"site\" is a required property"),
        "{text}"
    );
    assert!(
        text.contains("spec.templateParameters.hosts.controlPlane"),
        "every violation is named: {text}"
    );
    assert!(
        owned(&client, ns, "strict").await?.is_empty(),
        "nothing is created"
    );

    // Found under Nephio's `<templateName>-<templateVersion>` name, whatever its spec says.
    template_info(
        &client,
        ns,
        "named-v2",
        "other",
        "v0",
        json!({"type": "object", "required": ["zone"]}),
    )
    .await?;
    create(&client, ns, &request("named", spec("named", "v2"))).await?;
    let fpr = wait_phase(&client, ns, "named", FocomPhase::Failed).await?;
    assert!(
        condition(&fpr, "Validated")
            .expect("c")
            .2
            .contains("\"zone\" is a required property")
    );

    // No TemplateInfo and not the built-in template.
    create(&client, ns, &request("unknown", spec("metal3", "v1"))).await?;
    let fpr = wait_phase(&client, ns, "unknown", FocomPhase::Failed).await?;
    assert_eq!(
        condition(&fpr, "Validated").map(|c| c.1),
        Some("UnknownTemplate".into())
    );
    Ok(())
}

#[tokio::test]
async fn infeasible_requests_name_the_conflict_and_create_nothing() -> anyhow::Result<()> {
    // `someone-elses` (cluster `legacy`) uses taken-h1: see `other_requests_on_the_ocloud`.
    let (client, ns) = setup().await?;
    let cases = [
        (
            "held",
            vec!["taken"],
            "Feasible",
            "cluster `taken`: host `taken-h1` is held by cluster `legacy` (ProvisioningRequest someone-elses)",
        ),
        (
            "vips",
            vec!["same-vip-a", "same-vip-b"],
            "Feasible",
            "cluster `same-vip-b`: endpoint 10.1.0.4 is also the endpoint of cluster `same-vip-a`",
        ),
        (
            "nope",
            vec!["agg-a", "nowhere"],
            "Validated",
            "spec.clusterNames[1]: no cluster `nowhere` in the inventory",
        ),
        (
            "twice",
            vec!["dup-a", "dup-b"],
            "Feasible",
            "cluster `dup-b`: host `dup-h1` is also selected for cluster `dup-a`",
        ),
        (
            "vip-held",
            vec!["vip-held"],
            "Feasible",
            "cluster `vip-held`: endpoint 10.9.9.9 is already used by cluster `legacy` (ProvisioningRequest someone-elses)",
        ),
        (
            "name-held",
            vec!["legacy"],
            "Feasible",
            "cluster `legacy`: a cluster of this name is already provisioned by ProvisioningRequest someone-elses",
        ),
        (
            "even",
            vec!["even"],
            "Validated",
            "cluster `even`: templateParameters.hosts.controlPlane: needs an odd number of hosts",
        ),
        (
            "ghost",
            vec!["ghost"],
            "Validated",
            "cluster `ghost`: host `ghost-h1` is not in the inventory",
        ),
    ];
    for (name, clusters, type_, expected) in cases {
        create(&client, ns, &request(name, by_names(&clusters))).await?;
        let fpr = wait_phase(&client, ns, name, FocomPhase::Failed).await?;
        let (status, _, text) = condition(&fpr, type_).unwrap_or_default();
        assert_eq!(status, "False", "{name}");
        assert!(text.contains(expected), "{name}: {text}");
        assert!(
            message(&fpr).contains(expected),
            "{name}: {}",
            message(&fpr)
        );
        assert!(
            owned(&client, ns, name).await?.is_empty(),
            "{name}: nothing is created"
        );
    }
    Ok(())
}

/// Another request that wants a host but does not use it yet may still give it up: the
/// cluster waits, creating nothing, and fails naming that request once the ledger says it uses
/// the host (the ledger's change alone wakes it).
#[tokio::test]
async fn a_host_another_request_only_wants_is_waited_for_until_it_is_used() -> anyhow::Result<()> {
    // `wants-waits-h1` (cluster `wanter`) wants waits-h1: see `other_requests_on_the_ocloud`.
    let (client, ns) = setup().await?;
    create(&client, ns, &request("waits", by_names(&["waits"]))).await?;
    let waiting = wait_request(&client, ns, "waits", "waits to wait for waits-h1", |r| {
        condition(r, "Feasible").is_some_and(|(_, reason, _)| reason == "WaitingForHosts")
    })
    .await?;
    let (status, _, text) = condition(&waiting, "Feasible").unwrap_or_default();
    assert_eq!(status, "Unknown");
    assert!(
        text.contains(
            "host `waits-h1` is wanted by cluster `wanter` (ProvisioningRequest wants-waits-h1)"
        ),
        "{text}"
    );
    assert_eq!(phase(&waiting), Some(FocomPhase::Pending));
    assert!(
        owned(&client, ns, "waits").await?.is_empty(),
        "nothing is created while waiting"
    );

    hold_in_ledger(&client, "waits-h1", "wants-waits-h1", "wanter").await?;
    let failed = wait_phase(&client, ns, "waits", FocomPhase::Failed).await?;
    let (_, reason, text) = condition(&failed, "Feasible").unwrap_or_default();
    assert_eq!(reason, "Infeasible");
    assert!(
        text.contains(
            "host `waits-h1` is held by cluster `wanter` (ProvisioningRequest wants-waits-h1)"
        ),
        "{text}"
    );
    assert!(owned(&client, ns, "waits").await?.is_empty());
    Ok(())
}

/// `host` in use by `request` (of `cluster`) in the O-Cloud's ledger, as the O2IMS operator
/// records it once a Job or Cluster API object names the host.
async fn hold_in_ledger(
    client: &Client,
    host: &str,
    request: &str,
    cluster: &str,
) -> anyhow::Result<()> {
    let mut claim = HostClaim::for_host(host, request, "uid-of-someone-else", cluster);
    claim.spec.in_use = true;
    Api::<HostClaim>::all(client.clone())
        .create(&PostParams::default(), &claim)
        .await?;
    Ok(())
}

/// A direct ProvisioningRequest `name` for `(cluster, host, endpoint)`, made by someone else,
/// with `conditions` as the O2IMS operator wrote them.
async fn foreign_request(
    client: &Client,
    name: &str,
    (cluster, host, endpoint): (&str, &str, &str),
    conditions: serde_json::Value,
) -> anyhow::Result<()> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let mut other = ProvisioningRequest::new(
        name,
        lcm_core::crd::ProvisioningRequestSpec {
            template_name: "byoh-workload-cluster".into(),
            template_version: "v1".into(),
            template_parameters: json!({"clusterName": cluster, "kubernetesVersion": "v1.32.9",
                "controlPlaneEndpoint": {"host": endpoint}, "hosts": {"controlPlane": [host]}}),
            ..Default::default()
        },
    );
    other.metadata.labels = None;
    api.create(&PostParams::default(), &other).await?;
    let status = json!({"status": {"conditions": conditions}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    Ok(())
}

/// Feasibility is decided when a cluster's ProvisioningRequest is created: a newer request
/// naming its host later (which the O2IMS operator refuses) does not turn it Failed; and a
/// request that failed validation holds no host.
#[tokio::test]
async fn only_older_requests_that_hold_a_host_make_a_cluster_infeasible() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    create(&client, ns, &request("kept", by_names(&["kept"]))).await?;
    let pr = wait_owned(&client, ns, "kept", 1)
        .await?
        .remove(0)
        .name_any();
    set_state(&client, &pr, "fulfilled", "running").await?;
    wait_phase(&client, ns, "kept", FocomPhase::Synced).await?;
    let newer = ("newer", "kept-h1", "10.2.0.1");
    foreign_request(&client, "newer-for-kept-h1", newer, json!([])).await?;
    // A status change of its own request makes the operator look again.
    set_state(&client, &pr, "progressing", "scaling").await?;
    let kept = wait_request(&client, ns, "kept", "kept to show progressing", |r| {
        phase(r) != Some(FocomPhase::Synced)
    })
    .await?;
    assert_eq!(
        phase(&kept),
        Some(FocomPhase::Creating),
        "{}",
        message(&kept)
    );

    let failed = json!([{"type": "ProvisioningRequestValidated", "status": "False",
        "reason": "InvalidParameters", "message": "bad", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    let failing = ("failing", "freed-h1", "10.2.0.2");
    foreign_request(&client, "failed-for-freed-h1", failing, failed).await?;
    create(&client, ns, &request("freed", by_names(&["freed"]))).await?;
    assert_eq!(
        wait_owned(&client, ns, "freed", 1).await?.len(),
        1,
        "freed-h1 is free"
    );
    Ok(())
}

#[tokio::test]
async fn operation_delete_then_deleting_the_request_cleans_up() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    create(&client, ns, &request("ops", by_names(&["ops"]))).await?;
    let prs = wait_owned(&client, ns, "ops", 1).await?;
    let prs_api = Api::<ProvisioningRequest>::all(client.clone());
    // Held as the O2IMS operator holds it while its cluster is torn down.
    let hold = |finalizers: serde_json::Value| {
        let prs_api = prs_api.clone();
        let name = prs[0].name_any();
        async move {
            prs_api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": finalizers}})),
                )
                .await?;
            anyhow::Ok(())
        }
    };
    hold(json!(["test/hold"])).await?;
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), ns);
    api.patch(
        "ops",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"operation": Operation::Delete}})),
    )
    .await?;
    let deleting = wait_phase(&client, ns, "ops", FocomPhase::Deleting).await?;
    assert!(
        message(&deleting).contains("deleting ops"),
        "{}",
        message(&deleting)
    );
    hold(json!(null)).await?;
    wait_phase(&client, ns, "ops", FocomPhase::Deleted).await?;
    assert!(prs_api.get_opt(&prs[0].name_any()).await?.is_none());

    // Deleting the request itself waits for its ProvisioningRequests, which the O2IMS
    // operator holds with a finalizer until their cluster is torn down.
    create(&client, ns, &request("gone", by_names(&["gone"]))).await?;
    let pr = wait_owned(&client, ns, "gone", 1).await?.remove(0);
    prs_api
        .patch(
            &pr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})),
        )
        .await?;
    api.delete("gone", &DeleteParams::default()).await?;
    wait_phase(&client, ns, "gone", FocomPhase::Deleting).await?;
    let held = prs_api.get(&pr.name_any()).await?;
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "its ProvisioningRequest is being deleted"
    );
    assert!(
        api.get_opt("gone").await?.is_some(),
        "the request waits for it"
    );
    prs_api
        .patch(
            &pr.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    testcluster::wait_for("the request to be gone", TIMEOUT, || async {
        Ok(api.get_opt("gone").await?.is_none().then_some(()))
    })
    .await
}

#[tokio::test]
async fn provisioning_request_changes_reach_the_request_within_a_second() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    create(&client, ns, &request("fast", by_names(&["fast"]))).await?;
    let pr = wait_owned(&client, ns, "fast", 1)
        .await?
        .remove(0)
        .name_any();
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), ns);
    let change = |round: usize| {
        if round.is_multiple_of(2) {
            ("fulfilled", FocomPhase::Synced)
        } else {
            ("progressing", FocomPhase::Creating)
        }
    };
    let latencies = testcluster::time_changes(
        &api,
        "fast",
        10,
        |round| {
            let (client, pr) = (client.clone(), pr.clone());
            async move {
                let started = std::time::Instant::now();
                set_state(&client, &pr, change(round).0, &format!("round {round}")).await?;
                Ok(started)
            }
        },
        move |round, r: Option<&FocomProvisioningRequest>| {
            r.and_then(support::phase) == Some(change(round).1)
        },
        TIMEOUT,
    )
    .await?;
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "status propagation: median {median:?}, slowest {:?}",
        latencies[latencies.len() - 1]
    );
    assert!(
        median < std::time::Duration::from_secs(1),
        "median {median:?} of {latencies:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_253_character_name_provisions_and_deletes() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    // A valid DNS subdomain (labels of up to 63 characters) of the longest length Kubernetes accepts.
    let name = ["a", "b", "c"].map(|c| c.repeat(63)).join(".") + "." + &"d".repeat(61);
    assert_eq!(name.len(), 253);
    create(
        &client,
        ns,
        &request(&name, one_cluster("long", "10.1.0.20")),
    )
    .await?;
    let pr = wait_owned(&client, ns, &name, 1).await?.remove(0);
    assert_eq!(
        pr.annotations().get(lcm_core::FOCOM_REQUEST_ANNOTATION),
        Some(&format!("{ns}/{name}")),
        "the full name is kept beside the hashed label"
    );
    set_state(&client, &pr.name_any(), "fulfilled", "done").await?;
    wait_phase(&client, ns, &name, FocomPhase::Synced).await?;
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), ns);
    api.delete(&name, &DeleteParams::default()).await?;
    testcluster::wait_for(
        "the long-named request and its ProvisioningRequest to go",
        TIMEOUT,
        || async {
            let gone = api.get_opt(&name).await?.is_none()
                && Api::<ProvisioningRequest>::all(client.clone())
                    .get_opt(&pr.name_any())
                    .await?
                    .is_none();
            Ok(gone.then_some(()))
        },
    )
    .await
}

/// The O2IMS operator makes a ProvisioningRequest whose change it refuses `failed`: the request
/// then shows the cluster failed with that message, not Synced.
#[tokio::test]
async fn a_refused_change_fails_the_request() -> anyhow::Result<()> {
    let (client, ns) = setup().await?;
    create(
        &client,
        ns,
        &request("refused", one_cluster("refused", "10.1.0.21")),
    )
    .await?;
    let pr = wait_owned(&client, ns, "refused", 1)
        .await?
        .remove(0)
        .name_any();
    set_state(&client, &pr, "fulfilled", "done").await?;
    wait_phase(&client, ns, "refused", FocomPhase::Synced).await?;
    let refusal = "ChangeRefused: spec.templateParameters.controlPlaneEndpoint cannot change; the cluster keeps running as it was";
    set_state(&client, &pr, "failed", refusal).await?;
    let fpr = wait_phase(&client, ns, "refused", FocomPhase::Failed).await?;
    assert!(
        message(&fpr).contains(&format!("refused: {refusal}")),
        "{}",
        message(&fpr)
    );
    let row = &fpr.status.as_ref().expect("status").clusters[0];
    assert_eq!(
        (row.state.as_deref(), row.message.as_deref()),
        (Some("failed"), Some(refusal))
    );
    assert_eq!(condition(&fpr, "Ready").map(|c| c.0), Some("False".into()));
    Ok(())
}
