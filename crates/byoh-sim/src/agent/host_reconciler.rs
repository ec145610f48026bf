//! What an agent does with its ByoHost, as agent/reconciler/host_reconciler.go does it with
//! `--skip-installation`. It reads the ByoHost afresh each time (upstream's reconciler uses a
//! client without cache), then:
//! - the host-cleanup annotation (its ByoMachine was deleted): gives the host back **without**
//!   `kubeadm reset`, which upstream runs only when it installed Kubernetes itself
//!   (`hostCleanUp`), so what kubeadm started keeps running;
//! - no `status.machineRef` or no `spec.bootstrapSecret` yet: says so in
//!   `K8sNodeBootstrapSucceeded`;
//! - claimed and not bootstrapped: reads the bootstrap Secret, empties the directories upstream
//!   cleans, runs the cloud-config on the host ([`crate::cloud_init`]), which reaches the
//!   workload cluster, and reports `K8sNodeBootstrapSucceeded` (on a host of the
//!   `pdb_blocks_drain` fault, once the guarded pod runs on its node). A failed run: Warning Event,
//!   `kubeadm reset`, the condition False (`CloudInitExecutionFailed`, no message), and an error,
//!   so the controller retries with back-off (`reconcileNormal`).

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use lcm_core::capi::CAPI_CLUSTER_NAME_LABEL;
use serde_json::{Value, json};

use super::Agent;
use super::events::{self, EventType::Normal, EventType::Warning};
use crate::cloud_init::{AGENT_CLEANED_DIRECTORIES, Bootstrap};
use crate::conditions::{self, Condition, Severity};
use crate::error::{Error, Result};
use crate::objects::{self, name, namespace};
use crate::workload::ClusterKey;

pub const BOOTSTRAPPED: &str = "K8sNodeBootstrapSucceeded";
const CLOUD_INIT_FAILED: &str = "CloudInitExecutionFailed";
const WAITING_FOR_MACHINE_REF: &str = "WaitingForMachineRefToBeAssigned";
const BOOTSTRAP_SECRET_UNAVAILABLE: &str = "BootstrapDataSecretUnavailable";
const NODE_ABSENT: &str = "K8sNodeAbsent";
/// Label naming the ByoMachine (`<namespace>.<name>`) a host is attached to.
const BYOMACHINE_NAME_LABEL: &str = "byoh.infrastructure.cluster.x-k8s.io/byomachine-name";
/// Annotation BYOH's ByoMachine controller puts on a host whose ByoMachine is deleted.
const CLEANUP_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/unregistering";
/// The Kubernetes version of the machine that claimed the host.
const K8S_VERSION_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/k8sversion";
/// Annotations a claim puts on a host, removed by the agent on release.
const CLAIM_ANNOTATIONS: [&str; 4] = [
    CLEANUP_ANNOTATION,
    K8S_VERSION_ANNOTATION,
    "byoh.infrastructure.cluster.x-k8s.io/endpointip",
    "byoh.infrastructure.cluster.x-k8s.io/bundle-registry",
];

pub async fn reconcile(agent: &Agent, name: &str) -> Result<()> {
    let Some(host) = agent.byo_hosts().get_opt(name).await? else {
        return Ok(());
    };
    let host = serde_json::to_value(host)?;
    if !host["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        return clean_up(agent, &host).await;
    }
    if !host["metadata"]["deletionTimestamp"].is_null() {
        return Ok(());
    }
    if host["status"]["machineRef"].is_null() {
        return report(agent, &host, waiting(WAITING_FOR_MACHINE_REF)).await;
    }
    if host["spec"]["bootstrapSecret"].is_null() {
        return report(agent, &host, waiting(BOOTSTRAP_SECRET_UNAVAILABLE)).await;
    }
    if conditions::is_true(&host, BOOTSTRAPPED) {
        return Ok(());
    }
    bootstrap(agent, &host).await
}

fn waiting(reason: &'static str) -> Condition {
    Condition::false_(BOOTSTRAPPED, reason, Severity::Info)
}

/// Runs the bootstrap data on the host, which takes the configured time.
async fn bootstrap(agent: &Agent, claimed: &Value) -> Result<()> {
    tokio::time::sleep(agent.sim.config.bootstrap_delay).await;
    // Released or claimed by another machine meanwhile: that change reconciles again.
    let Some(host) = agent.byo_hosts().get_opt(name(claimed)).await? else {
        return Ok(());
    };
    let host = serde_json::to_value(host)?;
    let same_claim = host["status"]["machineRef"]["uid"] == claimed["status"]["machineRef"]["uid"]
        && host["spec"]["bootstrapSecret"] == claimed["spec"]["bootstrapSecret"];
    if !same_claim || !host["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        return Ok(());
    }
    let reference = &host["spec"]["bootstrapSecret"];
    let secret_name = reference["name"].as_str().unwrap_or_default();
    let secret_namespace = reference["namespace"].as_str().unwrap_or(namespace(&host));
    let script = match bootstrap_script(agent, secret_namespace, secret_name).await {
        Ok(script) => script,
        Err(e) => {
            let note = format!("bootstrap secret {secret_name} not found");
            events::record(agent, &host, Warning, "ReadBootstrapSecretFailed", &note).await;
            return Err(e);
        }
    };
    let cluster = ClusterKey {
        namespace: secret_namespace.into(),
        name: host["metadata"]["labels"][CAPI_CLUSTER_NAME_LABEL]
            .as_str()
            .ok_or_else(|| Error::Invalid(format!("{} names no cluster", name(&host))))?
            .into(),
    };
    let on = Bootstrap {
        node: &agent.host.hostname,
        address: agent.host.address.as_deref(),
        cluster: &cluster,
        // The version the playbook prepared the host for: that of the machine claiming it.
        prepared_for: host["metadata"]["annotations"][K8S_VERSION_ANNOTATION]
            .as_str()
            .unwrap_or_default(),
        cni_preinstalled: agent.sim.config.cni_by_cluster_owner,
    };
    run(agent, &host, &script, &on).await
}

/// Runs `script` on the host after cleaning what upstream cleans, and reports the outcome; a
/// failed run resets the host.
async fn run(agent: &Agent, host: &Value, script: &str, on: &Bootstrap<'_>) -> Result<()> {
    let clusters = &agent.sim.clusters;
    let mut node = agent.node.lock().await;
    node.remove_under(&AGENT_CLEANED_DIRECTORIES);
    let faults = &agent.sim.config.faults;
    let outcome = match agent.host.named_in(&faults.fail_bootstrap) {
        true => Err("kubeadm exited with status 1 (injected fault)".to_string()),
        false => node.run(script, on, clusters).await,
    };
    // The injected workload runs as soon as the node does; failing to start it fails the
    // bootstrap, so that it is retried with it.
    let outcome = match outcome {
        Ok(()) if agent.host.named_in(&faults.pdb_blocks_drain) => {
            clusters.run_guarded_pod(on.cluster, on.node).await
        }
        outcome => outcome,
    };
    let cluster = on.cluster;
    let Err(error) = outcome else {
        tracing::info!(host = %agent.host.id, %cluster, "node bootstrapped");
        let (reason, message) = ("BootstrapK8sNodeSucceeded", "k8s Node Bootstraped");
        events::record(agent, host, Normal, reason, message).await;
        return report(agent, host, Condition::true_(BOOTSTRAPPED)).await;
    };
    tracing::warn!(host = %agent.host.id, %cluster, %error, "error in bootstrapping k8s node");
    let (reason, message) = ("BootstrapK8sNodeFailed", "k8s Node Bootstrap failed");
    events::record(agent, host, Warning, reason, message).await;
    match node.reset(clusters).await {
        Ok(()) => {
            let (reason, message) = ("ResetK8sNodeSucceeded", "k8s Node Reset completed");
            events::record(agent, host, Normal, reason, message).await;
        }
        Err(e) => {
            tracing::warn!(host = %agent.host.id, error = %e, "kubeadm reset failed");
            let (reason, message) = ("ResetK8sNodeFailed", "k8s Node Reset failed");
            events::record(agent, host, Warning, reason, message).await;
        }
    }
    let failed = Condition::false_(BOOTSTRAPPED, CLOUD_INIT_FAILED, Severity::Error);
    report(agent, host, failed).await?;
    Err(Error::Invalid(format!(
        "bootstrapping the node failed: {error}"
    )))
}

/// The cloud-config of the bootstrap Secret (key `value`), read as the agent.
async fn bootstrap_script(agent: &Agent, namespace: &str, name: &str) -> Result<String> {
    let api: Api<Secret> = Api::namespaced(agent.client.clone(), namespace);
    let value = api
        .get(name)
        .await?
        .data
        .and_then(|mut data| data.remove("value"))
        .ok_or_else(|| {
            Error::Invalid(format!("bootstrap secret {namespace}/{name} has no value"))
        })?;
    Ok(String::from_utf8_lossy(&value.0).into_owned())
}

/// Gives the host back: no machine, no claim labels, annotations or secrets, no reset. The
/// status first: the host is claimable again once its labels go, and a new claim must not
/// lose its machineRef to this release.
async fn clean_up(agent: &Agent, host: &Value) -> Result<()> {
    let api = agent.byo_hosts();
    let conditions = conditions::render(&[waiting(NODE_ABSENT)], &host["status"]["conditions"]);
    objects::merge_status(
        &api,
        name(host),
        json!({"status": {"machineRef": null, "conditions": conditions}}),
    )
    .await?;
    let annotations: serde_json::Map<String, Value> = CLAIM_ANNOTATIONS
        .iter()
        .map(|a| (a.to_string(), Value::Null))
        .collect();
    let release = json!({
        "metadata": {
            "labels": {CAPI_CLUSTER_NAME_LABEL: null, BYOMACHINE_NAME_LABEL: null},
            "annotations": annotations,
        },
        "spec": {"bootstrapSecret": null, "installationSecret": null, "uninstallationScript": null},
    });
    objects::merge(&api, name(host), release).await?;
    tracing::info!(byo_host = name(host), machine = %host["status"]["machineRef"]["name"], "host released");
    Ok(())
}

/// Writes the agent's only condition unless it already reads so.
async fn report(agent: &Agent, host: &Value, condition: Condition) -> Result<()> {
    let previous = &host["status"]["conditions"];
    let rendered = conditions::render(&[condition], previous);
    if rendered == *previous {
        return Ok(());
    }
    objects::merge_status(
        &agent.byo_hosts(),
        name(host),
        json!({"status": {"conditions": rendered}}),
    )
    .await
}
