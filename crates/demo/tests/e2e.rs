//! End to end: a real control plane with the real Cluster API and BYOH managers, both operators
//! as processes, and the simulated hosts and workload clusters. Each test has its own world.

use std::time::Duration;

use anyhow::Context as _;
use demo::{O2IMS_NAMESPACE, Operator, World, WorldOptions};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest, ProvisioningRequest, ProvisioningState};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
const NS: &str = "focom-system";

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../input.json"))
        .expect("input.json")
}

async fn wait_phase(
    client: &Client,
    name: &str,
    phase: FocomPhase,
) -> anyhow::Result<FocomProvisioningRequest> {
    wait_phase_within(client, name, phase, TIMEOUT).await
}

async fn wait_phase_within(
    client: &Client,
    name: &str,
    phase: FocomPhase,
    timeout: Duration,
) -> anyhow::Result<FocomProvisioningRequest> {
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS);
    let found = testcluster::wait_for(&format!("{name} to be {phase}"), timeout, || async {
        Ok(api
            .get_opt(name)
            .await?
            .filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(phase)))
    })
    .await;
    match found {
        Ok(r) => Ok(r),
        Err(e) => {
            let last = api
                .get_opt(name)
                .await?
                .and_then(|r| r.status)
                .map(|s| format!("{:?}: {:?}", s.phase, s.message));
            // What the O-Cloud's requests say, to tell which stage a stall is in; a failed
            // listing must not hide the timeout.
            let stages = match Api::<ProvisioningRequest>::all(client.clone())
                .list(&ListParams::default())
                .await
            {
                Ok(requests) => Value::Array(
                    requests
                        .iter()
                        .map(|r| json!({"name": r.name_any(), "status": r.status}))
                        .collect(),
                ),
                Err(error) => json!(format!("not listed: {error}")),
            };
            Err(e.context(format!(
                "last seen: {last:?}; ProvisioningRequests: {stages}"
            )))
        }
    }
}

fn message(request: &FocomProvisioningRequest) -> String {
    request
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

fn request(name: &str, spec: Value) -> String {
    json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": name, "namespace": NS}, "spec": spec})
    .to_string()
}

async fn list(client: &Client, kind: Kind) -> anyhow::Result<Vec<DynamicObject>> {
    Ok(
        Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource())
            .list(&ListParams::default())
            .await?
            .items,
    )
}

/// Host ids claimed by `cluster`, sorted.
async fn hosts_of(client: &Client, cluster: &str) -> anyhow::Result<Vec<String>> {
    let mut ids: Vec<String> = list(client, Kind::ByoHost)
        .await?
        .iter()
        .filter(|h| {
            h.labels()
                .get(lcm_core::capi::CAPI_CLUSTER_NAME_LABEL)
                .map(String::as_str)
                == Some(cluster)
        })
        .filter_map(|h| h.labels().get(lcm_core::HOST_ID_LABEL).cloned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// How many host-preparation Jobs, inventory ConfigMaps, bootstrap kubeconfig Secrets and
/// BootstrapKubeconfigs exist (in the O2IMS operator's namespace, with the request label).
async fn host_preparation_objects(client: &Client) -> anyhow::Result<[usize; 4]> {
    let labelled = ListParams::default().labels(lcm_core::PROVISIONING_REQUEST_LABEL);
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), O2IMS_NAMESPACE)
        .list_metadata(&labelled)
        .await?;
    let config_maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), O2IMS_NAMESPACE)
            .list_metadata(&labelled)
            .await?;
    let secrets =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), O2IMS_NAMESPACE)
            .list_metadata(&labelled)
            .await?;
    let bootstrap = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        O2IMS_NAMESPACE,
        &Kind::BootstrapKubeconfig.api_resource(),
    )
    .list_metadata(&labelled)
    .await?;
    Ok([
        jobs.items.len(),
        config_maps.items.len(),
        secrets.items.len(),
        bootstrap.items.len(),
    ])
}

/// Every host is back in the pool and nothing of any cluster is left.
async fn assert_all_released(client: &Client) -> anyhow::Result<()> {
    testcluster::wait_for(
        "every host to be free and every object gone",
        TIMEOUT,
        || async {
            let claimed = list(client, Kind::ByoHost)
                .await?
                .iter()
                .filter(|h| {
                    h.labels()
                        .contains_key(lcm_core::capi::CAPI_CLUSTER_NAME_LABEL)
                })
                .count();
            let clusters =
                list(client, Kind::Cluster).await?.len() + list(client, Kind::Machine).await?.len();
            let requests = Api::<ProvisioningRequest>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
                .len();
            let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .filter(|n| n.name_any().starts_with("cluster-"))
                .count();
            let preparation: usize = host_preparation_objects(client).await?.iter().sum();
            Ok((claimed + clusters + requests + namespaces + preparation == 0).then_some(()))
        },
    )
    .await
}

#[tokio::test]
async fn every_selection_mode_reaches_synced_and_deletion_returns_the_hosts() -> anyhow::Result<()>
{
    // The fully described cluster says how its hosts are reached, which the admin allows here
    // (both operators; the O-Cloud's inventory still wins for the hosts it has).
    let mut options = WorldOptions::from_inventory(&shipped())?;
    options.focom_args = vec!["--allow-request-host-access".into()];
    options.o2ims_args = vec!["--allow-request-host-access".into()];
    let world = World::start(options).await?;
    let client = world.client()?;

    world
        .apply_manifest(&std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/focom-all-clusters.yaml"
        ))?)
        .await?;
    wait_phase(&client, "all-clusters", FocomPhase::Synced).await?;
    assert_eq!(hosts_of(&client, "core").await?, ["host-1", "host-2"]);
    assert_eq!(hosts_of(&client, "edge").await?, ["host-3", "host-4"]);
    // Delete through the operation.
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS);
    api.patch(
        "all-clusters",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"operation": "delete"}})),
    )
    .await?;
    wait_phase(&client, "all-clusters", FocomPhase::Deleted).await?;
    assert_all_released(&client).await?;
    api.delete("all-clusters", &DeleteParams::default()).await?;

    // By name, then deleting the request itself.
    world
        .apply_manifest(&request("by-name", json!({"clusterNames": ["edge"]})))
        .await?;
    wait_phase(&client, "by-name", FocomPhase::Synced).await?;
    assert_eq!(hosts_of(&client, "edge").await?, ["host-3", "host-4"]);
    api.delete("by-name", &DeleteParams::default()).await?;
    assert_all_released(&client).await?;

    // A Nephio-style request describing its cluster in full.
    let parameters = json!({
        "clusterName": "lab", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "172.20.10.120"},
        "hosts": {"controlPlane": ["host-2"], "workers": ["host-1"]}, "hostPreparation": "auto",
        "hostAccess": [{"id": "host-2", "hostname": "edge-node-2", "address": "172.20.10.12", "sshUser": "ubuntu", "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]},
                       {"id": "host-1", "hostname": "edge-node-1", "address": "172.20.10.11", "sshUser": "ubuntu", "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]}],
    });
    world
        .apply_manifest(&request("lab", json!({"templateParameters": parameters})))
        .await?;
    wait_phase(&client, "lab", FocomPhase::Synced).await?;
    assert_eq!(hosts_of(&client, "lab").await?, ["host-1", "host-2"]);
    api.delete("lab", &DeleteParams::default()).await?;
    assert_all_released(&client).await
}

#[tokio::test]
async fn failed_host_preparation_and_hosts_that_never_register_fail_with_their_cause()
-> anyhow::Result<()> {
    let mut options = WorldOptions::from_inventory(&shipped())?;
    options
        .simulator
        .faults
        .fail_job_for
        .insert("host-1".into());
    options
        .simulator
        .faults
        .never_register
        .insert("host-4".into());
    options.o2ims_args = vec!["--host-preparation-timeout-seconds".into(), "6".into()];
    let world = World::start(options).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("faulty", json!({"allClusters": true})))
        .await?;
    let failed = testcluster::wait_for("both clusters to fail", TIMEOUT, || async {
        let fpr = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS)
            .get_opt("faulty")
            .await?;
        Ok(fpr.filter(|r| message(r).contains("core:") && message(r).contains("edge:")))
    })
    .await?;
    let text = message(&failed);
    assert_eq!(
        failed.status.as_ref().and_then(|s| s.phase),
        Some(FocomPhase::Failed),
        "{text}"
    );
    assert!(
        text.contains("preparing host-1, host-2 failed: BackoffLimitExceeded"),
        "the Job's reason: {text}"
    );
    assert!(
        text.contains("HostsPrepared is still False after") && text.contains("host-4"),
        "the timeout and the host: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_host_failing_to_bootstrap_is_named_while_retried_and_fails_its_cluster_at_the_timeout()
-> anyhow::Result<()> {
    let mut options = WorldOptions::from_inventory(&shipped())?;
    // host-2 is core's worker; BYOH retries it, the workers stage's timeout decides.
    options
        .simulator
        .faults
        .fail_bootstrap
        .insert("host-2".into());
    options.o2ims_args = vec!["--workers-timeout-seconds".into(), "40".into()];
    let world = World::start(options).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("boot", json!({"clusterNames": ["core"]})))
        .await?;
    let requests = Api::<ProvisioningRequest>::all(client.clone());
    let retrying = testcluster::wait_for(
        "core's request to name the failing host",
        TIMEOUT,
        || async {
            let listed = requests.list(&ListParams::default()).await?.items;
            Ok(listed.into_iter().find(|r| {
                r.status
                    .as_ref()
                    .and_then(|s| s.provisioning_status.as_ref())
                    .is_some_and(|s| {
                        s.provisioning_state == ProvisioningState::Progressing
                            && s.provisioning_message
                                .contains("bootstrapping the node failed on host-2")
                    })
            }))
        },
    )
    .await?;
    let machines = list(&client, Kind::Machine).await?;
    assert!(
        machines
            .iter()
            .all(|m| m.data["status"]["failureReason"].is_null()),
        "BYOH sets no failure on a Machine"
    );
    let failed = wait_phase(&client, "boot", FocomPhase::Failed).await?;
    let text = message(&failed);
    assert!(
        text.contains("WorkersReady is still False after")
            && text.contains("bootstrapping the node failed on host-2"),
        "the timeout and its cause: {text}"
    );
    let request = requests.get(&retrying.name_any()).await?;
    let state = request
        .status
        .and_then(|s| s.provisioning_status)
        .map(|s| s.provisioning_state);
    assert_eq!(state, Some(ProvisioningState::Failed));
    Ok(())
}

fn with_spare_hosts(text: &str) -> anyhow::Result<Value> {
    let mut inventory: Value = serde_json::from_str(text)?;
    let hosts = inventory["hosts"].as_array_mut().expect("hosts");
    for i in 5..=7 {
        hosts.push(json!({"id": format!("host-{i}"), "hostname": format!("edge-node-{i}"), "address": format!("172.20.10.{}", 10 + i), "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]}));
    }
    Ok(inventory)
}

#[tokio::test]
async fn operation_scale_moves_workers_out_and_in() -> anyhow::Result<()> {
    let inventory = with_spare_hosts(&shipped())?;
    let world = World::start(WorldOptions::from_inventory(&inventory.to_string())?).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("grow", json!({"clusterNames": ["core"]})))
        .await?;
    wait_phase(&client, "grow", FocomPhase::Synced).await?;

    for (workers, expected) in [
        (
            json!(["host-2", "host-5"]),
            vec!["host-1", "host-2", "host-5"],
        ),
        (json!(["host-5"]), vec!["host-1", "host-5"]),
    ] {
        let mut edited = inventory.clone();
        edited["clusters"][0]["workerHosts"] = workers;
        world.apply_manifest(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "lcm-inventory", "namespace": NS}, "data": {"input.json": edited.to_string()}}).to_string()).await?;
        world
            .apply_manifest(&request(
                "grow",
                json!({"clusterNames": ["core"], "operation": "scale"}),
            ))
            .await?;
        testcluster::wait_for("core to run on the new hosts", TIMEOUT, || async {
            let hosts = hosts_of(&client, "core").await?;
            let synced = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS)
                .get("grow")
                .await?
                .status
                .and_then(|s| s.phase)
                == Some(FocomPhase::Synced);
            Ok((synced && hosts == expected).then_some(()))
        })
        .await?;
    }
    let host2: Vec<_> = list(&client, Kind::ByoHost)
        .await?
        .into_iter()
        .filter(|h| h.name_any() == "edge-node-2")
        .collect();
    assert!(
        !host2[0]
            .labels()
            .contains_key(lcm_core::capi::CAPI_CLUSTER_NAME_LABEL),
        "the removed host is released"
    );
    Ok(())
}

/// How long the O2IMS operator lets Cluster API drain a node in
/// [`a_drain_a_pod_disruption_budget_blocks_ends_at_the_generated_timeout`]: longer than Cluster
/// API's 20 s between two drains of a node (`drainRetryInterval`), so the Machine outlives a
/// refused retry and goes because the timeout passed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Scale-in of a worker whose node runs a pod a PodDisruptionBudget protects (`--pdb-blocks-drain`):
/// the workload cluster refuses Cluster API's evictions as kube-apiserver does (429), so the
/// Machine stays, draining, until the `nodeDrainTimeout` the O2IMS operator generated has passed
/// since the drain started (`isNodeDrainAllowed`); then it goes, its host is released and the
/// request is fulfilled on the hosts left.
#[tokio::test]
async fn a_drain_a_pod_disruption_budget_blocks_ends_at_the_generated_timeout() -> anyhow::Result<()>
{
    let mut inventory = with_spare_hosts(&shipped())?;
    inventory["clusters"][0]["workerHosts"] = json!(["host-2", "host-5"]);
    let mut options = WorldOptions::from_inventory(&inventory.to_string())?;
    options
        .simulator
        .faults
        .pdb_blocks_drain
        .insert("host-2".into());
    options.o2ims_args = vec![
        "--node-drain-timeout-seconds".into(),
        DRAIN_TIMEOUT.as_secs().to_string(),
    ];
    let world = World::start(options).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("drain", json!({"clusterNames": ["core"]})))
        .await?;
    wait_phase(&client, "drain", FocomPhase::Synced).await?;
    let machine = list(&client, Kind::Machine)
        .await?
        .into_iter()
        .find(|m| m.data["status"]["nodeRef"]["name"] == "edge-node-2")
        .context("the Machine of host-2's node")?;
    assert_eq!(
        machine.data["spec"]["nodeDrainTimeout"],
        format!("{}s", DRAIN_TIMEOUT.as_secs()),
        "the generated nodeDrainTimeout"
    );
    let machines = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &machine.namespace().unwrap_or_default(),
        &Kind::Machine.api_resource(),
    );

    inventory["clusters"][0]["workerHosts"] = json!(["host-5"]);
    world.apply_manifest(&json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "lcm-inventory", "namespace": NS}, "data": {"input.json": inventory.to_string()}}).to_string()).await?;
    world
        .apply_manifest(&request(
            "drain",
            json!({"clusterNames": ["core"], "operation": "scale"}),
        ))
        .await?;
    let refused = "cannot evict pod as it would violate the pod's disruption budget.";
    let draining = testcluster::wait_for(
        "the drain of edge-node-2 to be refused by the budget",
        TIMEOUT,
        || async {
            let Some(m) = machines.get_opt(&machine.name_any()).await? else {
                anyhow::bail!(
                    "the Machine went without a refused eviction: the budget was not honoured"
                );
            };
            let drain = condition(&m.data["status"]["conditions"], "DrainingSucceeded");
            let blocked = drain["status"] == "False"
                && drain["reason"] == "Draining"
                && drain["message"].as_str().is_some_and(|t| {
                    t.contains(refused) && t.contains("default/guarded-edge-node-2")
                });
            Ok(blocked.then_some(m))
        },
    )
    .await?;
    let deleting = condition(
        &draining.data["status"]["v1beta2"]["conditions"],
        "Deleting",
    );
    assert_eq!(
        (&deleting["status"], &deleting["reason"]),
        (&json!("True"), &json!("DrainingNode")),
        "v1beta2 Deleting: {deleting}"
    );
    let started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time =
        serde_json::from_value(draining.data["status"]["deletion"]["nodeDrainStartTime"].clone())
            .context("status.deletion.nodeDrainStartTime")?;

    testcluster::wait_for("the drained Machine to go", TIMEOUT, || async {
        Ok(machines
            .get_opt(&machine.name_any())
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    let drained_for = k8s_openapi::jiff::Timestamp::now().duration_since(started.0);
    assert!(
        drained_for >= k8s_openapi::jiff::SignedDuration::try_from(DRAIN_TIMEOUT)?,
        "the Machine went {drained_for:?} after its drain started, before the nodeDrainTimeout"
    );
    testcluster::wait_for(
        "host-2 to be released and the request fulfilled on host-1 and host-5",
        TIMEOUT,
        || async {
            let hosts = hosts_of(&client, "core").await?;
            let synced = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS)
                .get("drain")
                .await?
                .status
                .and_then(|s| s.phase)
                == Some(FocomPhase::Synced);
            let fulfilled = Api::<ProvisioningRequest>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .all(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.provisioning_status.as_ref())
                        .is_some_and(|s| s.provisioning_state == ProvisioningState::Fulfilled)
                });
            Ok((synced && fulfilled && hosts == ["host-1", "host-5"]).then_some(()))
        },
    )
    .await
}

/// The condition of `type_` in a list of conditions (`Null` when absent).
fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn an_upgrade_rolls_through_every_machine() -> anyhow::Result<()> {
    let mut inventory = with_spare_hosts(&shipped())?;
    inventory["clusters"] = json!([{"name": "ha", "controlPlaneEndpoint": "172.20.10.130",
        "controlPlaneHosts": ["host-1", "host-2", "host-3"], "workerHosts": ["host-4"]}]);
    let world = World::start(WorldOptions::from_inventory(&inventory.to_string())?).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("ha", json!({"allClusters": true})))
        .await?;
    let synced = wait_phase(&client, "ha", FocomPhase::Synced).await?;
    let pr = synced
        .status
        .and_then(|s| s.remote_name)
        .expect("one ProvisioningRequest");
    let prs = Api::<ProvisioningRequest>::all(client.clone());
    prs.patch(
        &pr,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"templateParameters": {"kubernetesVersion": "v1.33.5"}}})),
    )
    .await?;
    testcluster::wait_for(
        "every machine to run v1.33.5 and the request to be fulfilled again",
        TIMEOUT,
        || async {
            let machines = list(&client, Kind::Machine).await?;
            let upgraded = machines.len() == 4
                && machines
                    .iter()
                    .all(|m| m.data["spec"]["version"] == "v1.33.5");
            let state = prs
                .get(&pr)
                .await?
                .status
                .and_then(|s| s.provisioning_status)
                .map(|s| s.provisioning_state);
            Ok(
                (upgraded && state == Some(lcm_core::crd::ProvisioningState::Fulfilled))
                    .then_some(()),
            )
        },
    )
    .await?;
    assert_eq!(
        hosts_of(&client, "ha").await?,
        ["host-1", "host-2", "host-3", "host-4"],
        "no spare host was needed"
    );
    Ok(())
}

#[tokio::test]
async fn an_operator_killed_mid_provisioning_finishes_without_duplicates() -> anyhow::Result<()> {
    let mut world = World::start(WorldOptions::from_inventory(&shipped())?).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("crash", json!({"allClusters": true})))
        .await?;
    let prs = Api::<ProvisioningRequest>::all(client.clone());
    testcluster::wait_for(
        "the first ProvisioningRequest to exist",
        TIMEOUT,
        || async { Ok((!prs.list(&ListParams::default()).await?.items.is_empty()).then_some(())) },
    )
    .await?;
    world.restart(Operator::Focom).await?;
    testcluster::wait_for("the first Cluster to exist", TIMEOUT, || async {
        Ok((!list(&client, Kind::Cluster).await?.is_empty()).then_some(()))
    })
    .await?;
    world.restart(Operator::O2ims).await?;
    wait_phase(&client, "crash", FocomPhase::Synced).await?;
    assert_one_of_each_per_cluster(&client, 2).await
}

/// The Cluster API objects the operators make per cluster of one control-plane host and one
/// worker, and the Machines Cluster API makes of them (one per host).
const PER_CLUSTER: [(Kind, usize); 7] = [
    (Kind::Cluster, 1),
    (Kind::ByoCluster, 1),
    (Kind::KubeadmControlPlane, 1),
    (Kind::MachineDeployment, 1),
    (Kind::KubeadmConfigTemplate, 1),
    (Kind::ByoMachineTemplate, 2),
    (Kind::Machine, 2),
];

/// `clusters` clusters of one control-plane host and one worker each, and not one object more:
/// a request, a host-preparation Job with its inventory, Secret and BootstrapKubeconfig, and the
/// Cluster API objects (templates per role, machines and ByoMachines per host).
async fn assert_one_of_each_per_cluster(client: &Client, clusters: usize) -> anyhow::Result<()> {
    assert_eq!(
        list(client, Kind::ByoMachine).await?.len(),
        clusters * 2,
        "ByoMachine: 2 per cluster"
    );
    assert_operators_made_one_of_each(client, clusters).await
}

/// As [`assert_one_of_each_per_cluster`], but for ByoMachines: Cluster API's MachineSet
/// creates a Machine's ByoMachine first (owned by the MachineSet) and deletes it when the Machine
/// cannot be created (internal/controllers/machineset/machineset_controller.go, `syncReplicas`),
/// so an API server that goes away between the two, and for the delete, leaves a ByoMachine no
/// Machine owns, and the MachineSet makes another for the Machine it retries.
async fn assert_operators_made_one_of_each(client: &Client, clusters: usize) -> anyhow::Result<()> {
    for (kind, per_cluster) in PER_CLUSTER {
        assert_eq!(
            list(client, kind).await?.len(),
            clusters * per_cluster,
            "{kind:?}: {per_cluster} per cluster"
        );
    }
    let requests = Api::<ProvisioningRequest>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    assert_eq!(
        requests.items.len(),
        clusters,
        "one ProvisioningRequest per cluster"
    );
    assert_eq!(
        host_preparation_objects(client).await?,
        [clusters; 4],
        "one host-preparation Job (inventory, Secret, BootstrapKubeconfig) per cluster"
    );
    Ok(())
}

/// The API server goes away mid-provisioning and comes back on the same etcd data: every watch
/// of both operators, the managers and the simulated hosts breaks. The request in flight still finishes without a
/// duplicate, and a request made afterwards is seen and served, so every watch was re-established.
#[tokio::test]
async fn an_api_server_restart_mid_provisioning_loses_no_watch() -> anyhow::Result<()> {
    let world = World::start(WorldOptions::from_inventory(&shipped())?).await?;
    let client = world.client()?;
    world
        .apply_manifest(&request("before", json!({"clusterNames": ["core"]})))
        .await?;
    testcluster::wait_for("the first Cluster to exist", TIMEOUT, || async {
        Ok((!list(&client, Kind::Cluster).await?.is_empty()).then_some(()))
    })
    .await?;
    world.cluster.restart_apiserver().await?;
    // Each watch retried with a back-off growing to about 30 s while the API server was away.
    let after_backoff = TIMEOUT + Duration::from_secs(60);
    wait_phase_within(&client, "before", FocomPhase::Synced, after_backoff).await?;
    world
        .apply_manifest(&request("after", json!({"clusterNames": ["edge"]})))
        .await?;
    wait_phase(&client, "after", FocomPhase::Synced).await?;
    assert_operators_made_one_of_each(&client, 2).await
}

/// Twenty requests for twelve hosts, each wanting two that others want too, created at once:
/// ten FocomProvisioningRequests each describing its cluster, and ten ProvisioningRequests made
/// directly on the O-Cloud, with two O2IMS operators that both act. No host is selected by two
/// clusters' ByoMachineTemplates, every winner runs on the hosts it asked for, and every loser
/// failed naming a host it wanted and the cluster that got it.
#[tokio::test]
async fn focom_and_direct_requests_racing_for_hosts_with_two_o2ims_operators_never_share_one()
-> anyhow::Result<()> {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";
    let hosts: Vec<Value> = (1..=12)
        .map(|i| json!({"id": format!("r{i}"), "hostname": format!("race-node-{i}"), "address": format!("10.9.0.{i}"), "sshHostKeys": [key]}))
        .collect();
    let inventory = json!({"defaults": {"hostPreparation": "skip", "cni": "none"}, "hosts": hosts, "clusters": []});
    let mut options = WorldOptions::from_inventory(&inventory.to_string())?;
    options.simulator.register_inventory_hosts = true;
    // `cni: none`: the clusters' owner brings the CNI.
    options.simulator.cni_by_cluster_owner = true;
    let world = World::start(options).await?;
    let _second = Operator::O2ims
        .start(&world.cluster, world.options())
        .await?;
    let client = world.client()?;
    let wanted = |k: usize| {
        [
            format!("r{}", k % 12 + 1),
            format!("r{}", (k * 5 + 3) % 12 + 1),
        ]
    };
    // Requests 0..10 go through FOCOM, 10..20 straight to the O-Cloud.
    let through_focom = |k: usize| k < 10;
    let cluster_name = |k: usize| format!("race{k}");
    let manifests: Vec<String> = (0..20)
        .map(|k| {
            let [control_plane, worker] = wanted(k);
            let parameters = json!({
                "clusterName": cluster_name(k), "kubernetesVersion": "v1.32.9",
                // In the local routes of the stack's network namespace, where the workload
                // clusters are served.
                "controlPlaneEndpoint": {"host": format!("172.21.1.{k}")},
                "hosts": {"controlPlane": [control_plane], "workers": [worker]},
                "hostPreparation": "skip", "cni": "none",
            });
            if through_focom(k) {
                return request(&cluster_name(k), json!({"templateParameters": parameters}));
            }
            json!({"apiVersion": "o2ims.provisioning.oran.org/v1alpha1", "kind": "ProvisioningRequest",
                "metadata": {"name": cluster_name(k)},
                "spec": {"templateName": "byoh-workload-cluster", "templateVersion": "v1", "templateParameters": parameters}})
            .to_string()
        })
        .collect();
    futures::future::try_join_all(manifests.iter().map(|m| world.apply_manifest(m))).await?;

    // Each request's outcome once settled: whether it won, and its message.
    let focom = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS);
    let direct = Api::<ProvisioningRequest>::all(client.clone());
    let outcome = |k: usize| {
        let (focom, direct) = (focom.clone(), direct.clone());
        async move {
            if through_focom(k) {
                let request = focom.get(&cluster_name(k)).await?;
                return anyhow::Ok(match request.status.as_ref().and_then(|s| s.phase) {
                    Some(FocomPhase::Synced) => Some((true, message(&request))),
                    Some(FocomPhase::Failed) => Some((false, message(&request))),
                    _ => None,
                });
            }
            let status = direct.get(&cluster_name(k)).await?.status;
            let status = status.and_then(|s| s.provisioning_status);
            Ok(status.and_then(|s| match s.provisioning_state {
                ProvisioningState::Fulfilled => Some((true, s.provisioning_message)),
                ProvisioningState::Failed => Some((false, s.provisioning_message)),
                _ => None,
            }))
        }
    };
    let settled = testcluster::wait_for("every racing request to settle", TIMEOUT, || async {
        let all = futures::future::try_join_all((0..20).map(outcome)).await?;
        Ok(all.into_iter().collect::<Option<Vec<_>>>())
    })
    .await?;
    let mut selected_by: std::collections::BTreeMap<String, String> = Default::default();
    for template in list(&client, Kind::ByoMachineTemplate).await? {
        let namespace = template.namespace().unwrap_or_default();
        let cluster = namespace.trim_start_matches("cluster-").to_string();
        for host in testcluster::capi::selected_hosts(&template.data) {
            if let Some(other) = selected_by.insert(host.clone(), cluster.clone()) {
                assert_eq!(
                    other, cluster,
                    "{host} is selected by {other} and {cluster}"
                );
            }
        }
    }
    let mut winners = 0;
    for (k, (won, text)) in settled.iter().enumerate() {
        let name = cluster_name(k);
        let [control_plane, worker] = wanted(k);
        if *won {
            winners += 1;
            let mut expected = vec![control_plane, worker];
            expected.sort();
            assert_eq!(hosts_of(&client, &name).await?, expected, "hosts of {name}");
            continue;
        }
        let names_host_and_winner = [control_plane, worker].iter().any(|host| {
            selected_by.get(host).is_some_and(|winner| {
                text.contains(&format!("host `{host}`"))
                    && text.contains(&format!("cluster `{winner}`"))
            })
        });
        assert!(
            names_host_and_winner,
            "{name} failed without naming a host it wanted and the cluster that got it: {text}"
        );
        assert!(
            !selected_by.values().any(|c| *c == name),
            "{name} failed but its cluster selects hosts"
        );
    }
    assert!(winners >= 3, "only {winners} clusters won");
    Ok(())
}
