//! Operational behaviour, each test on its own control plane with the real Cluster API and
//! BYOH managers and its own operators: no writes on an unchanged world, metrics/health/Events,
//! stage timeouts, leader election and restarts.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use serde_json::json;
use support::capi;
use support::*;
use testcluster::{AuditLog, OperatorProcess, TestCluster};

const BINARY: &str = env!("CARGO_BIN_EXE_o2ims-operator");
/// The User-Agent of the tests' own client, as the audit log names it.
const TEST_CLIENT: &str = "operational-test";

struct World {
    cluster: TestCluster,
    client: Client,
    namespace: String,
    site: Site,
}

async fn world() -> anyhow::Result<World> {
    World::on(TestCluster::start_with_managers(&[]).await?).await
}

/// A world whose API server writes an audit log, to tell the clients' requests apart.
async fn audited_world(dir: &std::path::Path) -> anyhow::Result<(World, AuditLog)> {
    let (cluster, audit) = TestCluster::start_with_managers_audited(dir, &[]).await?;
    Ok((World::on(cluster).await?, audit))
}

impl World {
    async fn on(cluster: TestCluster) -> anyhow::Result<World> {
        let client = cluster.admin_client_as(TEST_CLIENT)?;
        let namespace = cluster.namespace("o2ims-system").await?.name().to_string();
        let site = Site::new(&cluster, &namespace)?;
        Ok(World {
            cluster,
            client,
            namespace,
            site,
        })
    }

    async fn operator(&self, args: &[&str]) -> anyhow::Result<OperatorProcess> {
        OperatorProcess::start(
            BINARY,
            self.cluster.kubeconfig_path(),
            &self.namespace,
            args,
        )
        .await
    }

    /// A one-node cluster on its host 1, which registers.
    async fn request(&self, s: &Scenario) -> anyhow::Result<()> {
        s.register(&[1]).await?;
        create(&self.client, &request(&s.request, s.parameters(&[1], &[]))).await?;
        Ok(())
    }
}

/// Waits until the operator has run more than `runs` reconciles and none is in flight.
async fn wait_idle(operator: &OperatorProcess, runs: f64) -> anyhow::Result<()> {
    testcluster::wait_for("the operator to reconcile and finish", TIMEOUT, || async {
        let started = operator.metric("o2ims_reconcile_runs_total").await?;
        let finished = operator
            .metric("o2ims_reconcile_duration_seconds_count")
            .await?;
        Ok((started > runs && finished == started).then_some(()))
    })
    .await
}

fn assert_median_under_a_second(latencies: &[std::time::Duration]) {
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "status propagation: median {median:?}, slowest {:?}",
        latencies[latencies.len() - 1]
    );
    assert!(
        median < std::time::Duration::from_secs(1),
        "median {median:?} of {latencies:?}"
    );
}

/// What the operator wrote of each object: its spec's generation and the operator's entry in
/// its managed fields (the managers write their objects' status on their own).
fn as_applied(
    objects: &[(Kind, String, String)],
    values: &[Option<serde_json::Value>],
) -> Vec<String> {
    objects
        .iter()
        .zip(values)
        .map(|((kind, _, name), v)| {
            let v = v.clone().unwrap_or_default();
            let applied = v["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["manager"] == "o2ims-operator")
                .cloned()
                .unwrap_or_default();
            format!(
                "{kind:?}/{name} generation {} applied {applied}",
                v["metadata"]["generation"]
            )
        })
        .collect()
}

#[tokio::test]
async fn an_unchanged_request_causes_no_writes_and_the_operator_reports_itself()
-> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("operational-audit-{}", std::process::id()));
    let (w, audit) = audited_world(&dir).await?;
    let operator = w.operator(&["--log-format", "json"]).await?;
    let s = w.site.scenario("quiet");
    w.request(&s).await?;
    wait_state(&w.client, &s.request, ProvisioningState::Fulfilled).await?;
    let settled = wait_hosts_provisioned(&w.client, &s.request).await?;
    wait_idle(&operator, 0.0).await?;
    // Provisioning wrote the namespace once (its claim) and at most one Event per status write.
    let provisioning = audit.requests_since(0)?;
    let written = |request: &str| {
        let key = ("o2ims-operator".to_string(), request.to_string());
        provisioning.get(&key).copied().unwrap_or(0)
    };
    assert_eq!(
        (written("create namespaces/"), written("patch namespaces/")),
        (1, 0),
        "the namespace is written once"
    );
    let (events, statuses) = (
        written("create events/"),
        written("patch provisioningrequests/status"),
    );
    assert!(
        events <= statuses,
        "{events} Events for {statuses} status writes"
    );

    let ns = s.namespace();
    let objects: Vec<(Kind, String, String)> = [
        (Kind::Cluster, s.name.clone()),
        (Kind::ByoCluster, s.name.clone()),
        (
            Kind::KubeadmControlPlane,
            format!("{}-control-plane", s.name),
        ),
        (
            Kind::ByoMachineTemplate,
            format!("{}-control-plane", s.name),
        ),
        (Kind::MachineDeployment, format!("{}-md-0", s.name)),
        (Kind::ByoMachineTemplate, format!("{}-md-0", s.name)),
        (Kind::KubeadmConfigTemplate, format!("{}-md-0", s.name)),
    ]
    .into_iter()
    .map(|(k, n)| (k, ns.clone(), n))
    .collect();
    let read_all = || async {
        let mut values = Vec::new();
        for (kind, ns, name) in &objects {
            values.push(capi::get(&w.client, *kind, ns, name).await?);
        }
        anyhow::Ok(values)
    };
    let before = read_all().await?;
    let runs = operator.metric("o2ims_reconcile_runs_total").await?;
    let since = audit.end()?;

    // Touch the request: a reconcile runs on an unchanged world.
    let api = Api::<ProvisioningRequest>::all(w.client.clone());
    let touched = api
        .patch(
            &s.request,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test/touch": "1"}}})),
        )
        .await?;
    wait_idle(&operator, runs).await?;
    let served = audit.requests_since(since)?;
    // It reads the request's objects, hosts, claims and the admin's ConfigMaps from its index,
    // and the generated objects it applied before are neither read nor written again.
    let reads: Vec<&String> = served
        .keys()
        .filter(|(client, request)| {
            let (verb, resource) = request.split_once(' ').unwrap_or_default();
            client == "o2ims-operator"
                && ["get", "list"].contains(&verb)
                && !["/", "leases/"].contains(&resource)
        })
        .map(|(_, request)| request)
        .collect();
    assert_eq!(
        reads,
        Vec::<&String>::new(),
        "a reconcile of an unchanged world reads nothing from the API server"
    );
    // Nobody writes but the test's touch: not the operator, nor the hosts' agents. (The
    // managers' own reconciles go on as they will, e.g. Cluster API rewriting a Machine's
    // conditions: they are not counted.)
    // The managers name themselves in the audit log as in managers.json.
    let managers: Vec<String> = w
        .cluster
        .stack_processes()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let writes: Vec<(&(String, String), &u64)> = served
        .iter()
        .filter(|((client, request), _)| {
            let (verb, resource) = request.split_once(' ').unwrap_or_default();
            testcluster::AUDIT_WRITE_VERBS.contains(&verb)
                && !resource.starts_with("leases/")
                && !managers.contains(client)
        })
        .collect();
    let touch = (
        TEST_CLIENT.to_string(),
        "patch provisioningrequests/".to_string(),
    );
    assert_eq!(
        writes,
        [(&touch, &1)],
        "only the test's own touch is a write"
    );
    let after = api.get(&s.request).await?;
    assert_eq!(after.status, settled.status, "status is not rewritten");
    assert_eq!(
        after.resource_version(),
        touched.resource_version(),
        "status is not rewritten"
    );
    assert_eq!(
        as_applied(&objects, &read_all().await?),
        as_applied(&objects, &before),
        "no child is rewritten"
    );

    // The operator reports itself.
    assert_eq!(operator.get("/readyz").await?.0, 200);
    assert_eq!(
        operator
            .metric("o2ims_objects{state=\"fulfilled\"}")
            .await?,
        1.0
    );
    assert_eq!(operator.metric("o2ims_leader").await?, 1.0);
    // Each stage was reached once (the touch reached none again), and the one host is held.
    for stage in [
        "hosts_prepared",
        "control_plane_ready",
        "workers_ready",
        "fulfilled",
    ] {
        let count = format!("o2ims_stage_duration_seconds_count{{stage=\"{stage}\"}}");
        assert_eq!(operator.metric(&count).await?, 1.0, "{count}");
    }
    assert_eq!(
        operator.metric("o2ims_hosts{state=\"claimed\"}").await?,
        1.0
    );
    assert_eq!(operator.metric("o2ims_hosts{state=\"free\"}").await?, 0.0);
    assert_eq!(
        operator
            .metric("o2ims_stage_longest_wait_seconds{stage=\"control_plane_ready\"}")
            .await?,
        0.0,
        "a fulfilled request waits in no stage"
    );
    let events = Api::<Event>::all(w.client.clone())
        .list(&ListParams::default())
        .await?;
    let reasons: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&*s.request))
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains(&"Progressing".to_string()) && reasons.contains(&"Fulfilled".to_string()),
        "{reasons:?}"
    );
    // The first status already says what the first pass found: the request validated.
    let progressing = events.items.iter().find(|e| {
        e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&*s.request)
            && e.reason.as_deref() == Some("Progressing")
    });
    let note = progressing.and_then(|e| e.note.clone()).unwrap_or_default();
    assert!(
        note.contains("ProvisioningRequestValidated True"),
        "the first status write names the validation: {note}"
    );

    // Its log is structured: one JSON object per line, with time, level and message.
    let log = std::fs::read_to_string(&operator.log)?;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{e}: {l}")))
        .collect::<anyhow::Result<_>>()?;
    assert!(!lines.is_empty(), "the operator logged nothing");
    for line in &lines {
        for key in ["timestamp", "level", "message"] {
            assert!(line[key].is_string(), "{key} missing in {line}");
        }
    }
    std::fs::remove_dir_all(&dir)?; // kept when the test fails
    Ok(())
}

/// Tells the workload cluster that the kubelet on `s`'s host 1 (its control plane) runs
/// `version`, as after someone installed another kubelet package there.
async fn run_kubelet(stack: &TestCluster, s: &Scenario, version: &str) -> anyhow::Result<()> {
    let url = stack
        .workload_clusters_url()?
        .ok_or_else(|| anyhow::anyhow!("the stack runs no workload clusters"))?;
    let node = format!(
        "{url}/v1/clusters/{}/{}/nodes/{}",
        s.namespace(),
        s.name,
        s.hostname(1)
    );
    let started = json!({"endpoint": format!("{}:6443", s.vip), "controlPlane": true,
        "kubeletVersion": version, "kubernetesVersion": "v1.32.9"});
    reqwest::Client::builder()
        .no_proxy()
        .build()?
        .put(node)
        .json(&started)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

#[tokio::test]
async fn cluster_api_status_changes_reach_the_request_within_a_second() -> anyhow::Result<()> {
    let w = world().await?;
    let _operator = w.operator(&[]).await?;
    let s = w.site.scenario("fast");
    w.request(&s).await?;
    wait_state(&w.client, &s.request, ProvisioningState::Fulfilled).await?;
    let machine = capi::machine_on(&w.client, &s.hostname(1)).await?;
    let machines = capi::api(&w.client, Kind::Machine, &s.namespace());
    let api = Api::<ProvisioningRequest>::all(w.client.clone());
    // The control plane's kubelet changes version and back, five times: Cluster API copies the
    // Node's version to its Machine, and the request follows from then on.
    let kubelet = |round: usize| {
        if round.is_multiple_of(2) {
            "v1.32.8"
        } else {
            "v1.32.9"
        }
    };
    let expected = |round: usize| {
        if round.is_multiple_of(2) {
            ProvisioningState::Progressing
        } else {
            ProvisioningState::Fulfilled
        }
    };
    let latencies = testcluster::time_changes(
        &api,
        &s.request,
        10,
        |round| {
            let (machines, machine, s, stack) = (machines.clone(), machine.clone(), &s, &w.cluster);
            async move {
                run_kubelet(stack, s, kubelet(round)).await?;
                let reported = move |m: Option<&DynamicObject>| {
                    m.is_some_and(|m| {
                        m.data["status"]["nodeInfo"]["kubeletVersion"] == kubelet(round)
                    })
                };
                testcluster::wait_until(machines, &machine, reported, TIMEOUT).await?;
                Ok(Instant::now())
            }
        },
        move |round, r: Option<&ProvisioningRequest>| r.and_then(state) == Some(expected(round)),
        TIMEOUT,
    )
    .await?;
    assert_median_under_a_second(&latencies);
    Ok(())
}

#[tokio::test]
async fn a_stage_timeout_or_missing_configuration_fails_the_request_with_its_cause()
-> anyhow::Result<()> {
    let w = world().await?;
    let operator = w
        .operator(&["--control-plane-timeout-seconds", "6"])
        .await?;
    // Its host takes 15 s to bootstrap, and its cluster's owner brings no CNI: the node is not
    // Ready once kubeadm init is done.
    let s = w.site.scenario("slow").with(|sim| {
        sim.bootstrap_delay = Duration::from_secs(15);
        sim.cni_by_cluster_owner = false;
    });
    w.request(&s).await?;
    // While the stage waits, /metrics shows its wait against its timeout (the alert's terms).
    let wait = "o2ims_stage_longest_wait_seconds{stage=\"control_plane_ready\"}";
    testcluster::wait_for("the control plane's wait to show", TIMEOUT, || async {
        Ok((operator.metric(wait).await.unwrap_or(0.0) >= 1.0).then_some(()))
    })
    .await?;
    assert_eq!(
        operator
            .metric("o2ims_stage_timeout_seconds{stage=\"control_plane_ready\"}")
            .await?,
        6.0
    );
    let pr = wait_state(&w.client, &s.request, ProvisioningState::Failed).await?;
    // The operator's store follows its own write a moment after the API server has it.
    testcluster::wait_for("a failed request to wait no more", TIMEOUT, || async {
        Ok((operator.metric(wait).await? == 0.0).then_some(()))
    })
    .await?;
    let (_, reason, text) = condition(&pr, "ClusterProvisioned").expect("condition");
    assert_eq!(reason, "TimedOut");
    assert!(
        text.contains("ControlPlaneReady is still False after") && text.contains("(timeout 6s)"),
        "{text}"
    );
    assert!(
        text.contains("waiting for kubeadm init"),
        "the cause is named: {text}"
    );

    // The stage recovers (kubeadm init done, the node not Ready yet): its clock starts again,
    // so the request progresses instead of staying failed.
    let pr = wait_state(&w.client, &s.request, ProvisioningState::Progressing).await?;
    assert_eq!(
        condition(&pr, "ControlPlaneReady").map(|c| c.1),
        Some("WaitingForNodes".to_string())
    );

    // Host preparation with an operator not told where hosts register fails, naming the flag.
    let unprepared = w.site.scenario("unprepared");
    add_to_host_inventory(&w.client, &w.namespace, &[unprepared.inventory_host(1)]).await?;
    let mut parameters = unprepared.parameters(&[1], &[]);
    parameters["hostPreparation"] = json!("auto");
    create(&w.client, &request(&unprepared.request, parameters)).await?;
    let pr = wait_state(&w.client, &unprepared.request, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&pr, "HostsPrepared").expect("condition");
    assert_eq!(reason, "HostPreparationFailed");
    assert!(text.contains("--bootstrap-apiserver"), "{text}");
    Ok(())
}

/// With --allow-request-host-access a request may say how to reach the hosts the host inventory
/// lacks; for the hosts it has, the inventory still decides.
#[tokio::test]
async fn allowed_request_host_access_only_fills_in_what_the_inventory_lacks() -> anyhow::Result<()>
{
    let w = world().await?;
    let mut args = w.cluster.host_preparation_args();
    args.push("--allow-request-host-access".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _operator = w.operator(&args).await?;
    let s = w.site.scenario("filled-in");
    add_to_host_inventory(&w.client, &w.namespace, &[s.inventory_host(1)]).await?;
    let mut parameters = s.parameters(&[1], &[2]);
    parameters["hostPreparation"] = json!("auto");
    parameters["hostAccess"] = json!([
        {"id": s.host(1), "address": "198.51.100.66", "sshUser": "other", "sshHostKeys": [HOST_KEY]},
        {"id": s.host(2), "hostname": s.hostname(2), "address": "198.51.100.2", "sshUser": "ubuntu", "sshHostKeys": [HOST_KEY]},
    ]);
    create(&w.client, &request(&s.request, parameters)).await?;
    let selector = format!("{}={}", lcm_core::PROVISIONING_REQUEST_LABEL, s.request);
    issued_bootstrap_kubeconfig(&w.client, &w.namespace, &s.request).await?;
    wait_request(&w.client, &s.request, "host preparation to start", |r| {
        condition(r, "HostsPrepared").is_some_and(|c| c.1 == "Preparing")
    })
    .await?;
    let config_maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(w.client.clone(), &w.namespace);
    let mut data = config_maps
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .remove(0)
        .data
        .unwrap_or_default();
    let inventory: serde_json::Value =
        lcm_core::yaml::from_str(&data.remove("inventory.yaml").unwrap_or_default())?;
    let hosts = &inventory["all"]["children"][lcm_core::ansible::GROUP]["hosts"];
    assert_eq!(
        hosts[s.host(1)]["ansible_host"],
        "192.0.2.1",
        "the inventory's: {hosts}"
    );
    assert_eq!(
        hosts[s.host(1)]["ansible_user"],
        "ubuntu",
        "the inventory's: {hosts}"
    );
    assert_eq!(
        hosts[s.host(2)]["ansible_host"],
        "198.51.100.2",
        "the request's: {hosts}"
    );
    assert_eq!(
        data.remove("known_hosts").as_deref(),
        Some(format!("192.0.2.1 {HOST_KEY}\n198.51.100.2 {HOST_KEY}\n").as_str())
    );
    Ok(())
}

#[tokio::test]
async fn two_replicas_never_both_act() -> anyhow::Result<()> {
    let w = world().await?;
    let args = |name: &'static str| {
        [
            "--leader-elect",
            "--lease-name",
            "o2ims-test",
            "--pod-name",
            name,
        ]
    };
    let first = w.operator(&args("replica-a")).await?;
    let leases = Api::<Lease>::namespaced(w.client.clone(), &w.namespace);
    testcluster::wait_for("replica-a to hold the Lease", TIMEOUT, || async {
        let lease = leases.get_opt("o2ims-test").await?;
        Ok(lease
            .and_then(|l| l.spec?.holder_identity)
            .filter(|h| h == "replica-a"))
    })
    .await?;
    let second = w.operator(&args("replica-b")).await?;
    assert_eq!(second.get("/readyz").await?.0, 200, "a standby is Ready");

    let s = w.site.scenario("led");
    w.request(&s).await?;
    wait_state(&w.client, &s.request, ProvisioningState::Progressing).await?;
    assert!(first.metric("o2ims_reconcile_runs_total").await? > 0.0);
    assert_eq!(second.metric("o2ims_leader").await?, 0.0);
    assert_eq!(
        second.metric("o2ims_reconcile_runs_total").await?,
        0.0,
        "the standby has not reconciled anything"
    );

    // The leader stops gracefully and hands over at once.
    first.terminate().await?;
    testcluster::wait_for("replica-b to take over", TIMEOUT, || async {
        Ok((second.metric("o2ims_leader").await? == 1.0).then_some(()))
    })
    .await?;
    wait_state(&w.client, &s.request, ProvisioningState::Fulfilled).await?;
    let holder = leases
        .get("o2ims-test")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("replica-b"));

    // A leader that crashes holds the Lease until it expires; then a standby takes over.
    let third = w.operator(&args("replica-c")).await?;
    second.kill().await?;
    testcluster::wait_for("replica-c to take over after expiry", TIMEOUT, || async {
        Ok((third.metric("o2ims_leader").await? == 1.0).then_some(()))
    })
    .await?;

    // A leader whose Lease is taken stops acting: it exits rather than reconcile beside another.
    let mut lease = leases.get("o2ims-test").await?;
    let spec = lease.spec.as_mut().expect("spec");
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    leases
        .replace("o2ims-test", &Default::default(), &lease)
        .await?;
    testcluster::wait_for("replica-c to stop", TIMEOUT, || async {
        Ok((!third.is_running()).then_some(()))
    })
    .await?;
    let log = std::fs::read_to_string(&third.log)?;
    assert!(log.contains("lost the Lease"), "{}", third.log_tail());
    Ok(())
}

#[tokio::test]
async fn a_restarted_operator_resumes_without_duplicates() -> anyhow::Result<()> {
    let w = world().await?;
    let operator = w.operator(&[]).await?;
    let s = w.site.scenario("restart");
    w.request(&s).await?;
    wait_request(&w.client, &s.request, "its Cluster API objects", |r| {
        condition(r, "ClusterResourcesCreated").is_some_and(|c| c.0 == "True")
    })
    .await?;
    operator.kill().await?;

    // The world moves on while no operator runs: Cluster API provisions the cluster.
    testcluster::wait_for(
        "Cluster API to report the cluster ready",
        TIMEOUT,
        || async {
            let cluster = capi::get(&w.client, Kind::Cluster, &s.namespace(), &s.name).await?;
            Ok(cluster.filter(|c| c["status"]["controlPlaneReady"] == true))
        },
    )
    .await?;
    let _restarted = w.operator(&[]).await?;
    wait_state(&w.client, &s.request, ProvisioningState::Fulfilled).await?;
    for kind in [
        Kind::Cluster,
        Kind::ByoCluster,
        Kind::KubeadmControlPlane,
        Kind::MachineDeployment,
        Kind::ByoMachineTemplate,
    ] {
        let items = capi::api(&w.client, kind, &s.namespace())
            .list(&ListParams::default())
            .await?
            .items;
        let expected = if kind == Kind::ByoMachineTemplate {
            2
        } else {
            1
        };
        assert_eq!(items.len(), expected, "{kind:?}");
        for item in items {
            assert_eq!(
                item.owner_references()
                    .iter()
                    .filter(|o| o.kind == "ProvisioningRequest")
                    .count(),
                1
            );
        }
    }
    Ok(())
}
