//! The BYOH host agents of the simulated hosts. An agent registers its host's ByoHost (named
//! after the hostname, labelled `host-id`, host info and network in the status); when a machine
//! claims the host it bootstraps Kubernetes, which takes `bootstrap_delay` (or fails, as
//! configured); when the machine goes it resets the host, giving it back to the pool.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ObjectMeta};
use kube::runtime::controller::Action;
use lcm_core::HOST_ID_LABEL;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Map, Value, json};

use crate::claiming::{BYOMACHINE_NAME_LABEL, CLAIM_ANNOTATIONS, CLEANUP_ANNOTATION};
use crate::conditions::{self, Condition, Severity};
use crate::config::SimHost;
use crate::context::Context;
use crate::error::Result;
use crate::objects::{self, name, namespace, to_json};
use crate::runner;

pub const BOOTSTRAPPED: &str = "K8sNodeBootstrapSucceeded";
pub const CLOUD_INIT_FAILED: &str = "CloudInitExecutionFailed";
const WAITING_FOR_MACHINE_REF: &str = "WaitingForMachineRefToBeAssigned";

/// The hosts whose agents run in this simulator, by ByoHost namespace and name.
#[derive(Default)]
pub struct Registry(Mutex<BTreeMap<(String, String), SimHost>>);

impl Registry {
    fn add(&self, namespace: &str, host: &SimHost) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((namespace.into(), host.hostname.clone()), host.clone());
    }

    fn agent_of(&self, namespace: &str, name: &str) -> Option<SimHost> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Registers the hosts configured to be there from the start.
pub async fn register_at_start(ctx: &Context) -> Result<()> {
    for host in ctx.config.registered_at_start() {
        register(ctx, host, &ctx.config.byoh_namespace).await?;
    }
    Ok(())
}

/// Starts `host`'s agent: it creates its ByoHost in `namespace` unless it exists (labels are
/// only set then, as the real agent's `--label`) and reports the host's info and network.
pub async fn register(ctx: &Context, host: &SimHost, namespace: &str) -> Result<()> {
    if host.named_in(&ctx.config.faults.never_register) {
        tracing::warn!(host = %host.id, "fault: this host's agent never registers");
        return Ok(());
    }
    ensure_namespace(ctx, namespace).await?;
    ctx.registry.add(namespace, host);
    let api = ctx.api(Kind::ByoHost, namespace);
    let byo_host = json!({
        "apiVersion": Kind::ByoHost.api_version(), "kind": Kind::ByoHost.name(),
        "metadata": {"name": host.hostname, "namespace": namespace, "labels": {HOST_ID_LABEL: host.id}},
        "spec": {},
    });
    if objects::create_if_missing(&api, &serde_json::from_value(byo_host)?).await? {
        tracing::info!(host = %host.id, byo_host = %host.hostname, %namespace, "host registered");
    }
    let status = json!({"status": {
        "hostinfo": {"osname": "linux", "osimage": "Ubuntu 22.04.4 LTS", "architecture": "amd64"},
        "network": network(host),
    }});
    objects::merge_status(&api, &host.hostname, status).await
}

/// The namespace exists on a real management cluster (mgmt.sh creates it); here nobody else
/// creates it.
async fn ensure_namespace(ctx: &Context, namespace: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    objects::create_if_missing(&api, &object).await.map(|_| ())
}

fn network(host: &SimHost) -> Value {
    let prefix = |address: &String| if address.contains(':') { 64 } else { 24 };
    let addresses: Vec<String> = host
        .address
        .iter()
        .map(|a| format!("{a}/{}", prefix(a)))
        .collect();
    json!([{
        "connected": true, "isDefault": true, "networkInterfaceName": "ens3",
        "ipAddrs": addresses, "macAddr": mac_address(&host.id),
    }])
}

/// A stable, locally administered MAC address per host (FNV-1a of its id).
fn mac_address(id: &str) -> String {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let [_, a, b, c] = hash.to_be_bytes();
    format!("52:54:00:{a:02x}:{b:02x}:{c:02x}")
}

/// Runs the agents: reacts to changes of their ByoHosts.
pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let controller = ctx.stores.controller(Kind::ByoHost);
    runner::drive("agent", controller.run(reconcile, runner::retry, ctx))
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let host = to_json(&object);
    let Some(agent) = ctx.registry.agent_of(namespace(&host), name(&host)) else {
        // Not a host of this simulator: no agent runs there.
        return Ok(Action::await_change());
    };
    if !host["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        reset(&ctx, &host).await?;
    } else if host["status"]["machineRef"].is_null() {
        report(&ctx, &host, waiting_for_machine()).await?;
    } else if !host["spec"]["bootstrapSecret"].is_null() && !bootstrap_attempted(&host) {
        bootstrap(&ctx, &agent, &host).await?;
    }
    Ok(Action::await_change())
}

fn waiting_for_machine() -> Condition {
    Condition::false_(BOOTSTRAPPED, WAITING_FOR_MACHINE_REF, Severity::Info)
}

fn bootstrap_attempted(host: &Value) -> bool {
    conditions::find(host, BOOTSTRAPPED)
        .is_some_and(|c| c["status"] == "True" || c["reason"] == CLOUD_INIT_FAILED)
}

/// Writes the agent's only condition unless it already reads so.
async fn report(ctx: &Context, host: &Value, condition: Condition) -> Result<()> {
    let previous = &host["status"]["conditions"];
    let rendered = conditions::render(&[condition], previous);
    if rendered == *previous {
        return Ok(());
    }
    let api = ctx.api(Kind::ByoHost, namespace(host));
    objects::merge_status(
        &api,
        name(host),
        json!({"status": {"conditions": rendered}}),
    )
    .await
}

/// Runs the bootstrap data (kubeadm init/join), which takes the configured time.
async fn bootstrap(ctx: &Context, agent: &SimHost, host: &Value) -> Result<()> {
    tokio::time::sleep(ctx.config.bootstrap_delay).await;
    let Some(current) = ctx.stores.get(Kind::ByoHost, namespace(host), name(host)) else {
        return Ok(());
    };
    // The machine may have let go of the host meanwhile.
    let same_machine =
        current["status"]["machineRef"]["uid"] == host["status"]["machineRef"]["uid"];
    if !same_machine || !current["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        return Ok(());
    }
    let outcome = if agent.named_in(&ctx.config.faults.fail_bootstrap) {
        tracing::warn!(host = %agent.id, "fault: bootstrapping Kubernetes fails on this host");
        Condition::false_(BOOTSTRAPPED, CLOUD_INIT_FAILED, Severity::Error).with_message(
            "cloud-init execution failed: kubeadm exited with status 1 (injected fault)",
        )
    } else {
        tracing::info!(host = %agent.id, "node bootstrapped");
        Condition::true_(BOOTSTRAPPED)
    };
    report(ctx, &current, outcome).await
}

/// `kubeadm reset`, then gives the host back: no machine, no claim labels or annotations.
async fn reset(ctx: &Context, host: &Value) -> Result<()> {
    let api = ctx.api(Kind::ByoHost, namespace(host));
    // The status first: a host is claimable again once its labels go, and a new claim must not
    // lose its machineRef to this reset. (The status write's own event may bring the host back
    // here before the labels went.)
    let machine = &host["status"]["machineRef"];
    if !machine.is_null() {
        let conditions =
            conditions::render(&[waiting_for_machine()], &host["status"]["conditions"]);
        objects::merge_status(
            &api,
            name(host),
            json!({"status": {"machineRef": null, "conditions": conditions}}),
        )
        .await?;
        tracing::info!(byo_host = name(host), machine = %machine["name"], "host reset");
    }
    let mut annotations: Map<String, Value> = CLAIM_ANNOTATIONS
        .iter()
        .map(|a| (a.to_string(), Value::Null))
        .collect();
    annotations.insert(CLEANUP_ANNOTATION.into(), Value::Null);
    let release = json!({
        "metadata": {
            "labels": {CAPI_CLUSTER_NAME_LABEL: null, BYOMACHINE_NAME_LABEL: null},
            "annotations": annotations,
        },
        "spec": {"bootstrapSecret": null, "installationSecret": null},
    });
    objects::merge(&api, name(host), release).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_stable_and_distinct() {
        assert_eq!(mac_address("host-1"), mac_address("host-1"));
        assert_ne!(mac_address("host-1"), mac_address("host-2"));
        assert!(mac_address("host-1").starts_with("52:54:00:"));
    }
}
