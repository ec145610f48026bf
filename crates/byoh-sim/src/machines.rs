//! Each Machine and its ByoMachine through their lives, as Cluster API's Machine controller, the
//! kubeadm bootstrap provider ([`kubeadm_bootstrap`]) and BYOH's ByoMachine controller take
//! them: bootstrap data; a host claimed once the cluster's infrastructure is ready; Running
//! once the host's agent bootstrapped the node. A host that fails to bootstrap leaves the
//! Machine Provisioning: BYOH reports it only on the ByoHost (its condition and Events) and
//! sets no failure on the Machine. A deleted ByoMachine marks its host for cleanup and goes at
//! once (controllers/infrastructure/byomachine_controller.go `reconcileDelete`): a Machine
//! that is gone does not mean a host that is free.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, Kind};
use serde_json::{Value, json};

use crate::agent::BOOTSTRAPPED;
use crate::claiming::{self, ClaimFor};
use crate::cni;
use crate::conditions::{self, Condition, Severity};
use crate::context::Context;
use crate::error::Result;
use crate::kubeadm_bootstrap;
use crate::objects::{self, deleting, name, namespace, to_json};
use crate::runner;

const MACHINE_FINALIZER: &str = "machine.cluster.x-k8s.io";
const BYO_MACHINE_FINALIZER: &str = "byomachine.infrastructure.cluster.x-k8s.io";
const HOST_READY: &str = "BYOHostReady";
const WAITING_FOR_CLUSTER_INFRASTRUCTURE: &str = "WaitingForClusterInfrastructure";
const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapDataSecret";
const HOSTS_UNAVAILABLE: &str = "BYOHostsUnavailable";
/// Reason of `NodeHealthy=False` for a Node whose Ready condition is False (no CNI yet).
const NODE_CONDITIONS_FAILED: &str = "NodeConditionsFailed";
/// How often a blocked drain is tried again.
const DRAIN_RETRY: Duration = Duration::from_secs(5);

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let resource = Kind::Machine.api_resource();
    let controller = ctx.stores.controller(Kind::Machine);
    let (for_hosts, for_clusters) = (controller.store(), controller.store());
    let (for_resource_sets, for_config_maps) = (controller.store(), controller.store());
    let (same_name, host_resource, cluster_resource) =
        (resource.clone(), resource.clone(), resource.clone());
    let (set_resource, config_map_resource) = (resource.clone(), resource);
    let controller = controller
        // A ByoMachine has the name of its Machine.
        .watches_stream_with(
            ctx.stores.changes(Kind::ByoMachine),
            move |byo_machine| {
                let ns = byo_machine.metadata.namespace.clone().unwrap_or_default();
                let name = byo_machine.metadata.name.clone().unwrap_or_default();
                Some(ObjectRef::new_with(&name, same_name.clone()).within(&ns))
            },
            Kind::ByoMachine.api_resource(),
        )
        .watches_stream_with(
            ctx.stores.changes(Kind::ByoHost),
            move |host| affected_by_host(&for_hosts, &host, &host_resource),
            Kind::ByoHost.api_resource(),
        )
        // A Cluster's infrastructure becoming ready lets its machines claim hosts.
        .watches_stream_with(
            ctx.stores.changes(Kind::Cluster),
            move |cluster| machines_of(&for_clusters, &cluster, &cluster_resource),
            Kind::Cluster.api_resource(),
        )
        // A ClusterResourceSet, or a resource it lists, may bring the CNI that makes nodes Ready.
        .watches_stream_with(
            ctx.stores.changes(Kind::ClusterResourceSet),
            move |set| in_namespace(&for_resource_sets, set.metadata.namespace, &set_resource),
            Kind::ClusterResourceSet.api_resource(),
        )
        .watches_stream(ctx.stores.config_map_changes(), move |config_map| {
            in_namespace(
                &for_config_maps,
                config_map.metadata.namespace,
                &config_map_resource,
            )
        });
    runner::drive("machines", controller.run(reconcile, runner::retry, ctx))
}

/// The machine a host is attached to, and every machine that waits for a host or for its own
/// host's release.
fn affected_by_host(
    store: &Store<DynamicObject>,
    host: &DynamicObject,
    resource: &ApiResource,
) -> Vec<ObjectRef<DynamicObject>> {
    let attached = &host.data["status"]["machineRef"];
    store
        .state()
        .iter()
        .filter(|m| {
            let settled = matches!(
                m.data["status"]["phase"].as_str(),
                Some("Running" | "Failed")
            );
            let is_attached = attached["name"].as_str() == m.metadata.name.as_deref()
                && attached["namespace"].as_str() == m.metadata.namespace.as_deref();
            !settled || m.metadata.deletion_timestamp.is_some() || is_attached
        })
        .map(|m| ObjectRef::from_obj_with(m.as_ref(), resource.clone()))
        .collect()
}

fn machines_of(
    store: &Store<DynamicObject>,
    cluster: &DynamicObject,
    resource: &ApiResource,
) -> Vec<ObjectRef<DynamicObject>> {
    store
        .state()
        .iter()
        .filter(|m| {
            m.metadata.namespace == cluster.metadata.namespace
                && m.data["spec"]["clusterName"].as_str() == cluster.metadata.name.as_deref()
        })
        .map(|m| ObjectRef::from_obj_with(m.as_ref(), resource.clone()))
        .collect()
}

fn in_namespace(
    store: &Store<DynamicObject>,
    namespace: Option<String>,
    resource: &ApiResource,
) -> Vec<ObjectRef<DynamicObject>> {
    store
        .state()
        .iter()
        .filter(|m| m.metadata.namespace == namespace)
        .map(|m| ObjectRef::from_obj_with(m.as_ref(), resource.clone()))
        .collect()
}

/// Where a machine's infrastructure (ByoMachine and host) stands.
enum Infrastructure {
    /// No host yet; BYOHostReady is False for this reason.
    Waiting(&'static str),
    /// A host is attached and bootstrapping the node (or retrying).
    Bootstrapping,
    /// The node is up on this host, known by this provider ID; Ready once a CNI runs.
    Ready {
        host: Value,
        provider_id: String,
        node_ready: bool,
    },
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let machine = to_json(&object);
    let ns = namespace(&machine);
    let byo_api = ctx.api(Kind::ByoMachine, ns);
    let byo_name = machine["spec"]["infrastructureRef"]["name"]
        .as_str()
        .unwrap_or(name(&machine));
    let byo_machine = ctx.stores.get(Kind::ByoMachine, ns, byo_name);
    if deleting(&machine) {
        let draining = delete(&ctx, &machine, byo_machine.as_ref()).await?;
        return Ok(draining.map_or_else(Action::await_change, Action::requeue));
    }
    objects::add_finalizer(&ctx.api(Kind::Machine, ns), &machine, MACHINE_FINALIZER).await?;
    let bootstrap_ready = ensure_bootstrap_data(&ctx, &machine).await?;
    let infrastructure = match &byo_machine {
        // Created right before the Machine; no host can be claimed without it.
        None => Infrastructure::Waiting(WAITING_FOR_CLUSTER_INFRASTRUCTURE),
        Some(byo_machine) if deleting(byo_machine) => {
            release(&ctx, byo_machine).await?;
            return Ok(Action::await_change());
        }
        Some(byo_machine) => {
            objects::add_finalizer(&byo_api, byo_machine, BYO_MACHINE_FINALIZER).await?;
            let infrastructure =
                infrastructure(&ctx, &machine, byo_machine, bootstrap_ready).await?;
            write_byo_machine(&ctx, byo_machine, &infrastructure).await?;
            infrastructure
        }
    };
    write_machine(&ctx, &machine, bootstrap_ready, &infrastructure).await?;
    Ok(Action::await_change())
}

/// The attached host's state, or a claim of a free host once the machine may have one.
async fn infrastructure(
    ctx: &Context,
    machine: &Value,
    byo_machine: &Value,
    bootstrap_ready: bool,
) -> Result<Infrastructure> {
    if let Some(host) = claiming::attached_host(ctx, byo_machine) {
        let bootstrapped = conditions::find(&host, BOOTSTRAPPED);
        return Ok(match bootstrapped {
            Some(c) if c["status"] == "True" => Infrastructure::Ready {
                provider_id: provider_id(&host, byo_machine),
                node_ready: ctx
                    .stores
                    .get(Kind::Cluster, namespace(machine), cluster_name(machine))
                    .is_some_and(|cluster| cni::installed(ctx, &cluster)),
                host,
            },
            _ => Infrastructure::Bootstrapping,
        });
    }
    let ns = namespace(machine);
    let cluster_name = cluster_name(machine);
    let cluster = ctx.stores.get(Kind::Cluster, ns, cluster_name);
    let Some(cluster) = cluster.filter(|c| c["status"]["infrastructureReady"] == true) else {
        return Ok(Infrastructure::Waiting(WAITING_FOR_CLUSTER_INFRASTRUCTURE));
    };
    if !bootstrap_ready {
        return Ok(Infrastructure::Waiting(WAITING_FOR_BOOTSTRAP_DATA));
    }
    let byo_cluster_name = cluster["spec"]["infrastructureRef"]["name"]
        .as_str()
        .unwrap_or(cluster_name);
    let byo_cluster = ctx.stores.get(Kind::ByoCluster, ns, byo_cluster_name);
    let by = ClaimFor {
        machine,
        cluster: &cluster,
        byo_cluster: byo_cluster.as_ref(),
    };
    Ok(match claiming::claim(ctx, byo_machine, by).await? {
        Some(_) => Infrastructure::Bootstrapping,
        None => Infrastructure::Waiting(HOSTS_UNAVAILABLE),
    })
}

fn cluster_name(machine: &Value) -> &str {
    machine["spec"]["clusterName"].as_str().unwrap_or_default()
}

/// The kubeadm bootstrap provider's output: the Secret `bootstrap.dataSecretName` names,
/// rendered from the Machine's KubeadmConfig once it may init or join. Returns whether the
/// bootstrap data is there.
async fn ensure_bootstrap_data(ctx: &Context, machine: &Value) -> Result<bool> {
    let Some(secret_name) = machine["spec"]["bootstrap"]["dataSecretName"].as_str() else {
        return Ok(false);
    };
    let ns = namespace(machine);
    if ctx.stores.secret_exists(ns, secret_name) {
        return Ok(true);
    }
    let config_name = machine["spec"]["bootstrap"]["configRef"]["name"]
        .as_str()
        .unwrap_or(secret_name);
    let Some(config) = ctx.stores.get(Kind::KubeadmConfig, ns, config_name) else {
        return Ok(false);
    };
    let cluster_name = cluster_name(machine);
    let initialized = ctx
        .stores
        .get(Kind::Cluster, ns, cluster_name)
        .is_some_and(|c| conditions::is_true(&c, "ControlPlaneInitialized"));
    let control_plane = !machine["metadata"]["labels"][CONTROL_PLANE_LABEL].is_null();
    let Some(role) = kubeadm_bootstrap::role(&config["spec"], control_plane, initialized) else {
        return Ok(false);
    };
    let version = machine["spec"]["version"].as_str().unwrap_or_default();
    let cloud_config = kubeadm_bootstrap::cloud_config(&config["spec"], role, version);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": secret_name, "namespace": ns,
            "labels": {CAPI_CLUSTER_NAME_LABEL: cluster_name},
            "ownerReferences": [objects::controller_reference(&config)],
        },
        "type": "cluster.x-k8s.io/secret",
        "stringData": {"value": cloud_config, "format": "cloud-config"},
    }))?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    objects::create_if_missing(&api, &secret).await?;
    Ok(true)
}

async fn write_byo_machine(
    ctx: &Context,
    byo_machine: &Value,
    infrastructure: &Infrastructure,
) -> Result<()> {
    let api = ctx.api(Kind::ByoMachine, namespace(byo_machine));
    let previous = &byo_machine["status"]["conditions"];
    let status = match infrastructure {
        Infrastructure::Ready {
            host, provider_id, ..
        } => {
            if byo_machine["spec"]["providerID"] != *provider_id {
                let patch = json!({"spec": {"providerID": provider_id}});
                objects::merge(&api, name(byo_machine), patch).await?;
            }
            json!({
                "ready": true,
                "hostinfo": host["status"]["hostinfo"],
                "conditions": conditions::render(&[Condition::true_(HOST_READY)], previous),
            })
        }
        Infrastructure::Waiting(reason) => json!({
            "ready": false,
            "conditions": conditions::render(&[Condition::false_(HOST_READY, *reason, Severity::Info)], previous),
        }),
        // BYOH reports nothing new until the node is there.
        Infrastructure::Bootstrapping => json!({"ready": false, "conditions": []}),
    };
    objects::apply_status(&api, Kind::ByoMachine, byo_machine, status).await
}

/// `byoh://<hostname>/<6 characters>`; BYOH picks the characters at random, here they come
/// from the ByoMachine's uid so they stay the same.
fn provider_id(host: &Value, byo_machine: &Value) -> String {
    if let Some(set) = byo_machine["spec"]["providerID"].as_str() {
        return set.to_string();
    }
    let suffix: String = byo_machine["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    format!("byoh://{}/{suffix}", name(host))
}

async fn write_machine(
    ctx: &Context,
    machine: &Value,
    bootstrap_ready: bool,
    infrastructure: &Infrastructure,
) -> Result<()> {
    let api = ctx.api(Kind::Machine, namespace(machine));
    let bootstrap = if bootstrap_ready {
        Condition::true_("BootstrapReady")
    } else {
        Condition::false_("BootstrapReady", "WaitingForDataSecret", Severity::Info)
    };
    let waiting_for_infrastructure = Condition::false_(
        "InfrastructureReady",
        "WaitingForInfrastructure",
        Severity::Info,
    );
    let waiting_for_node = Condition::false_("NodeHealthy", "WaitingForNodeRef", Severity::Info);
    let mut status = json!({"bootstrapReady": bootstrap_ready, "infrastructureReady": false,
        "observedGeneration": machine["metadata"]["generation"]});
    let (phase, ready, others) = match infrastructure {
        Infrastructure::Ready {
            host,
            provider_id,
            node_ready,
        } => {
            // Cluster API copies it from the infrastructure machine.
            if machine["spec"]["providerID"] != *provider_id {
                let patch = json!({"spec": {"providerID": provider_id}});
                objects::merge(&api, name(machine), patch).await?;
            }
            status["infrastructureReady"] = json!(true);
            status["nodeRef"] = json!({"apiVersion": "v1", "kind": "Node", "name": name(host)});
            if let Some(kubelet) = ctx.registry.kubelet_version(namespace(host), name(host)) {
                status["nodeInfo"] = node_info(host, &kubelet);
            }
            // Running once the Node exists; Ready (and so counted ready) once the Node is.
            let (node, ready) = if *node_ready {
                (Condition::true_("NodeHealthy"), Condition::true_("Ready"))
            } else {
                let not_ready =
                    |type_| Condition::false_(type_, NODE_CONDITIONS_FAILED, Severity::Warning);
                (not_ready("NodeHealthy"), not_ready("Ready"))
            };
            (
                "Running",
                ready,
                [Condition::true_("InfrastructureReady"), node],
            )
        }
        Infrastructure::Waiting(_) | Infrastructure::Bootstrapping => {
            let phase = if bootstrap_ready {
                "Provisioning"
            } else {
                "Pending"
            };
            let ready = if bootstrap_ready {
                Condition::false_("Ready", "WaitingForInfrastructure", Severity::Info)
            } else {
                Condition::false_("Ready", "WaitingForDataSecret", Severity::Info)
            };
            (phase, ready, [waiting_for_infrastructure, waiting_for_node])
        }
    };
    status["phase"] = json!(phase);
    let [infrastructure_ready, node_healthy] = others;
    status["conditions"] = conditions::render(
        &[ready, bootstrap, infrastructure_ready, node_healthy],
        &machine["status"]["conditions"],
    );
    objects::apply_status(&api, Kind::Machine, machine, status).await
}

/// The Node's `status.nodeInfo`, which Cluster API copies to the Machine
/// (internal/controllers/machine/machine_controller_noderef.go).
fn node_info(host: &Value, kubelet: &str) -> Value {
    let info = &host["status"]["hostinfo"];
    let uid = host["metadata"]["uid"].as_str().unwrap_or_default();
    json!({
        "architecture": info["architecture"], "operatingSystem": info["osname"],
        "osImage": info["osimage"], "kernelVersion": "6.8.0-sim",
        "containerRuntimeVersion": "containerd://1.7.28", "kubeletVersion": kubelet,
        "kubeProxyVersion": kubelet, "machineID": uid, "systemUUID": uid, "bootID": uid,
    })
}

/// Drains the node, then deletes the ByoMachine, which releases its host; the Machine goes once
/// the ByoMachine is gone. Returns when to look again while the drain goes on.
async fn delete(
    ctx: &Context,
    machine: &Value,
    byo_machine: Option<&Value>,
) -> Result<Option<Duration>> {
    let api = ctx.api(Kind::Machine, namespace(machine));
    let mut status = machine["status"].clone();
    status["phase"] = json!("Deleting");
    let draining = drain(ctx, machine, &mut status);
    if status != machine["status"] {
        objects::apply_status(&api, Kind::Machine, machine, status).await?;
    }
    if draining.is_some() {
        return Ok(draining);
    }
    match byo_machine {
        Some(byo_machine) if deleting(byo_machine) => release(ctx, byo_machine).await,
        Some(byo_machine) => {
            let byo_api = ctx.api(Kind::ByoMachine, namespace(byo_machine));
            objects::delete(&byo_api, name(byo_machine)).await
        }
        None => objects::remove_finalizer(&api, machine, MACHINE_FINALIZER).await,
    }
    .map(|()| None)
}

/// The drain of a deleted Machine's node, as Cluster API's Machine controller does it
/// (internal/controllers/machine/machine_controller.go `reconcileDelete`, `isNodeDrainAllowed`):
/// evictions a PodDisruptionBudget refuses are retried until `spec.nodeDrainTimeout` (none:
/// forever) has passed since `status.deletion.nodeDrainStartTime`. Writes the drain into
/// `status`; returns when to look again while it goes on.
fn drain(ctx: &Context, machine: &Value, status: &mut Value) -> Option<Duration> {
    let node = machine["status"]["nodeRef"]["name"].as_str()?;
    let blocked = ctx
        .config
        .hosts
        .iter()
        .any(|h| h.hostname == node && h.named_in(&ctx.config.faults.pdb_blocks_drain));
    if !blocked {
        return None;
    }
    let now = jiff::Timestamp::now();
    let started = status["deletion"]["nodeDrainStartTime"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .unwrap_or(now);
    let timeout = machine["spec"]["nodeDrainTimeout"]
        .as_str()
        .and_then(|t| crate::config::parse_duration(t).ok())
        .filter(|t| !t.is_zero());
    let left = match timeout {
        None => DRAIN_RETRY,
        Some(timeout) => {
            let elapsed = now.duration_since(started).unsigned_abs();
            match timeout.checked_sub(elapsed) {
                Some(left) if !left.is_zero() => left.min(DRAIN_RETRY),
                _ => return None,
            }
        }
    };
    status["deletion"] = json!({"nodeDrainStartTime": started.to_string()});
    let previous = &machine["status"]["conditions"];
    let draining = Condition::false_("DrainingSucceeded", "Draining", Severity::Info);
    let mut kept: Vec<Value> = previous
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] != "DrainingSucceeded")
        .cloned()
        .collect();
    kept.extend(
        conditions::render(&[draining], previous)
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    status["conditions"] = json!(kept);
    Some(left)
}

/// A deleted ByoMachine marks its host for cleanup by the host's agent and goes without
/// waiting for it.
async fn release(ctx: &Context, byo_machine: &Value) -> Result<()> {
    if let Some(host) = claiming::attached_host(ctx, byo_machine) {
        claiming::mark_for_cleanup(ctx, &host).await?;
    }
    let api = ctx.api(Kind::ByoMachine, namespace(byo_machine));
    objects::remove_finalizer(&api, byo_machine, BYO_MACHINE_FINALIZER).await
}
