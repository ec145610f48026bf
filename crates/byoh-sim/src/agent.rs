//! The BYOH host agents of the simulated hosts, as BYOH v0.5.0's agent run with
//! `--skip-installation` (agent/reconciler/host_reconciler.go). An agent registers its host's
//! ByoHost (named after the hostname, labelled `host-id`, host info and network in the status);
//! when a machine claims the host it runs the bootstrap data on the host ([`cloud_init`]),
//! which takes `bootstrap_delay`. A failed run: Warning Event, `kubeadm reset`,
//! `K8sNodeBootstrapSucceeded=False` (`CloudInitExecutionFailed`, no message), and another
//! try with controller-runtime's back-off. On release it gives the host back **without**
//! `kubeadm reset` (it resets only hosts it installed Kubernetes on), so what ran there keeps
//! running.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Secret};
use kube::api::{Api, DynamicObject, ObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use lcm_core::HOST_ID_LABEL;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Map, Value, json};

use crate::claiming::{
    BYOMACHINE_NAME_LABEL, CLAIM_ANNOTATIONS, CLEANUP_ANNOTATION, K8S_VERSION_ANNOTATION,
};
use crate::cloud_init::{self, AGENT_CLEANED_DIRECTORIES};
use crate::conditions::{self, Condition, Severity};
use crate::config::SimHost;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, name, namespace, to_json};
use crate::runner;

pub const BOOTSTRAPPED: &str = "K8sNodeBootstrapSucceeded";
pub const CLOUD_INIT_FAILED: &str = "CloudInitExecutionFailed";
const WAITING_FOR_MACHINE_REF: &str = "WaitingForMachineRefToBeAssigned";
const BOOTSTRAP_SECRET_UNAVAILABLE: &str = "BootstrapDataSecretUnavailable";
const NODE_ABSENT: &str = "K8sNodeAbsent";
/// controller-runtime's default per-object back-off: 5 ms doubling up to 1000 s.
const FIRST_RETRY: Duration = Duration::from_millis(5);
const LAST_RETRY: Duration = Duration::from_secs(1000);

/// A simulated host and what runs on it.
struct Agent {
    host: SimHost,
    node: cloud_init::Host,
    /// Failed bootstraps since the last success or release.
    failures: u32,
}

/// The hosts whose agents run in this simulator, by ByoHost namespace and name.
#[derive(Default)]
pub struct Registry(Mutex<BTreeMap<(String, String), Agent>>);

impl Registry {
    /// Adds `host` unless it is there (a host registering again keeps what runs on it).
    fn add(&self, namespace: &str, host: &SimHost) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((namespace.into(), host.hostname.clone()))
            .or_insert_with(|| Agent {
                host: host.clone(),
                node: cloud_init::Host::default(),
                failures: 0,
            });
    }

    fn with_agent<R>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Agent) -> R,
    ) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&(namespace.to_string(), name.to_string()))
            .map(f)
    }

    fn agent_of(&self, namespace: &str, name: &str) -> Option<SimHost> {
        self.with_agent(namespace, name, |a| a.host.clone())
    }

    /// The kubelet version the host's Node reports, for hosts of this simulator.
    pub fn kubelet_version(&self, namespace: &str, name: &str) -> Option<String> {
        self.with_agent(namespace, name, |a| {
            a.node.kubelet_version().map(String::from)
        })
        .flatten()
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
        release(&ctx, &host).await?;
    } else if host["status"]["machineRef"].is_null() {
        report(&ctx, &host, waiting(WAITING_FOR_MACHINE_REF)).await?;
    } else if host["spec"]["bootstrapSecret"].is_null() {
        report(&ctx, &host, waiting(BOOTSTRAP_SECRET_UNAVAILABLE)).await?;
    } else if !bootstrapped(&host) {
        return bootstrap(&ctx, &agent, &host).await;
    }
    Ok(Action::await_change())
}

fn waiting(reason: &'static str) -> Condition {
    Condition::false_(BOOTSTRAPPED, reason, Severity::Info)
}

fn bootstrapped(host: &Value) -> bool {
    conditions::is_true(host, BOOTSTRAPPED)
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

/// Publishes an Event about the ByoHost as the agent does; a lost Event is only logged.
async fn event(ctx: &Context, host: &Value, warning: bool, reason: &str, note: &str) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.into()),
        action: reason.into(),
        secondary: None,
    };
    let reference = ObjectReference {
        api_version: Some(Kind::ByoHost.api_version().into()),
        kind: Some(Kind::ByoHost.name().into()),
        name: Some(name(host).into()),
        namespace: Some(namespace(host).into()),
        uid: host["metadata"]["uid"].as_str().map(String::from),
        ..ObjectReference::default()
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "publishing an Event failed");
    }
}

/// Runs the bootstrap data on the host, which takes the configured time; on failure resets
/// the host and tries again later.
async fn bootstrap(ctx: &Context, agent: &SimHost, host: &Value) -> Result<Action> {
    tokio::time::sleep(ctx.config.bootstrap_delay).await;
    let Some(current) = ctx.stores.get(Kind::ByoHost, namespace(host), name(host)) else {
        return Ok(Action::await_change());
    };
    // The machine may have let go of the host meanwhile.
    let same_machine =
        current["status"]["machineRef"]["uid"] == host["status"]["machineRef"]["uid"];
    if !same_machine || !current["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        return Ok(Action::await_change());
    }
    let secret = &current["spec"]["bootstrapSecret"];
    let (secret_ns, secret_name) = (
        secret["namespace"].as_str().unwrap_or(namespace(&current)),
        secret["name"].as_str().unwrap_or_default(),
    );
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), secret_ns);
    let Some(script) = api
        .get_opt(secret_name)
        .await?
        .and_then(|s| s.data?.remove("value"))
    else {
        let note = format!("bootstrap secret {secret_name} not found");
        event(ctx, &current, true, "ReadBootstrapSecretFailed", &note).await;
        return Err(Error::Invalid(note));
    };
    let script = String::from_utf8_lossy(&script.0).into_owned();
    let injected = agent.named_in(&ctx.config.faults.fail_bootstrap);
    // The version the playbook prepared the host for: that of the machine claiming it.
    let prepared_for = current["metadata"]["annotations"][K8S_VERSION_ANNOTATION]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let outcome = ctx
        .registry
        .with_agent(namespace(&current), name(&current), |a| {
            a.node.remove_under(&AGENT_CLEANED_DIRECTORIES);
            let outcome = match injected {
                true => Err("kubeadm exited with status 1 (injected fault)".to_string()),
                false => a.node.run(&script, &prepared_for),
            };
            match &outcome {
                Ok(()) => a.failures = 0,
                Err(_) => {
                    a.node.reset();
                    a.failures += 1;
                }
            }
            (outcome, a.failures)
        });
    match outcome {
        Some((Ok(()), _)) => {
            tracing::info!(host = %agent.id, "node bootstrapped");
            event(
                ctx,
                &current,
                false,
                "BootstrapK8sNodeSucceeded",
                "k8s Node Bootstraped",
            )
            .await;
            report(ctx, &current, Condition::true_(BOOTSTRAPPED)).await?;
            Ok(Action::await_change())
        }
        Some((Err(error), failures)) => {
            tracing::warn!(host = %agent.id, %error, "error in bootstrapping k8s node");
            event(
                ctx,
                &current,
                true,
                "BootstrapK8sNodeFailed",
                "k8s Node Bootstrap failed",
            )
            .await;
            event(
                ctx,
                &current,
                false,
                "ResetK8sNodeSucceeded",
                "k8s Node Reset completed",
            )
            .await;
            let failed = Condition::false_(BOOTSTRAPPED, CLOUD_INIT_FAILED, Severity::Error);
            report(ctx, &current, failed).await?;
            Ok(Action::requeue(retry_after(failures)))
        }
        None => Ok(Action::await_change()),
    }
}

fn retry_after(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2_u32.saturating_pow(failures.saturating_sub(1)))
        .min(LAST_RETRY)
}

/// Gives the host back: no machine, no claim labels or annotations, and no `kubeadm reset`.
async fn release(ctx: &Context, host: &Value) -> Result<()> {
    let api = ctx.api(Kind::ByoHost, namespace(host));
    // The status first: a host is claimable again once its labels go, and a new claim must not
    // lose its machineRef to this release. (The status write's own event may bring the host
    // back here before the labels went.)
    let machine = &host["status"]["machineRef"];
    if !machine.is_null() {
        let conditions = conditions::render(&[waiting(NODE_ABSENT)], &host["status"]["conditions"]);
        objects::merge_status(
            &api,
            name(host),
            json!({"status": {"machineRef": null, "conditions": conditions}}),
        )
        .await?;
        ctx.registry
            .with_agent(namespace(host), name(host), |a| a.failures = 0);
        tracing::info!(byo_host = name(host), machine = %machine["name"], "host released");
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
    fn retries_back_off_like_controller_runtime() {
        assert_eq!(retry_after(1), Duration::from_millis(5));
        assert_eq!(retry_after(3), Duration::from_millis(20));
        assert_eq!(retry_after(40), LAST_RETRY);
    }

    #[test]
    fn mac_addresses_are_stable_and_distinct() {
        assert_eq!(mac_address("host-1"), mac_address("host-1"));
        assert_ne!(mac_address("host-1"), mac_address("host-2"));
        assert!(mac_address("host-1").starts_with("52:54:00:"));
    }
}
