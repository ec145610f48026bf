//! Host-preparation Jobs (labelled with the ProvisioningRequest they serve): this plays the Job
//! controller and the Ansible run. A Job runs for `job_delay`, then succeeds, and the agents of
//! the hosts in its inventory register their ByoHosts; a Job preparing a host configured to fail
//! fails as one whose backoff limit is exhausted.
//!
//! Kubernetes 1.36 validates Job status updates, so the status is written in the Job
//! controller's own steps: `startTime` (required on every finished Job) with `active: 1`; then
//! `SuccessCriteriaMet` (without which `Complete` is refused) with `succeeded`, then `Complete`
//! with `completionTime` (required with `Complete`, refused without it); or `FailureTarget`
//! (without which `Failed` is refused) with `failed`, then `Failed`. `active` must be 0 once
//! the Job finished.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use lcm_core::PROVISIONING_REQUEST_LABEL;
use serde_json::{Value, json};

use crate::agent;
use crate::config::{SimConfig, SimHost};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{merge_params, now, typed_api};
use crate::runner;

/// How often a Job's pod looks again for a Secret or ConfigMap it mounts.
const VOLUME_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The ConfigMap key holding the Ansible inventory.
const INVENTORY_KEY: &str = "inventory.yaml";

/// A host a Job prepares, and the namespace its agent registers in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PreparedHost {
    host: SimHost,
    namespace: String,
}

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let api: Api<Job> = typed_api(&ctx.client, ctx.config.namespace.as_deref());
    let selector = ctx.config.job_selector.as_deref();
    let jobs = watcher::Config::default().labels(selector.unwrap_or(PROVISIONING_REQUEST_LABEL));
    let controller = Controller::new(api, jobs);
    runner::drive("jobs", controller.run(reconcile, runner::retry, ctx))
}

fn holds(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let status = job.status.clone().unwrap_or_default();
    let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    if suspended || holds(&status, "Failed") {
        return Ok(Action::await_change());
    }
    let namespace = job.namespace().unwrap_or_default();
    let complete = holds(&status, "Complete");
    if !complete && let Some(missing) = missing_volume(&ctx, &namespace, &job) {
        // As kubelet: the pod waits in ContainerCreating until it appears (the inventory too,
        // which it mounts).
        tracing::info!(job = %job.name_any(), %missing, "the Job's pod waits for what it mounts");
        return Ok(Action::requeue(VOLUME_RECHECK));
    }
    let (hosts, agent_verifiable) = match inventory(&ctx, &namespace, &job.name_any())? {
        Some(inventory) => (
            prepared_hosts(&inventory, &ctx.config),
            agent_verifiable(&inventory),
        ),
        // Cleaned up after the Job did its work.
        None if complete => return Ok(Action::await_change()),
        // Without it the Job's pod cannot start; the operator creates it first.
        None => {
            return Err(Error::Invalid(format!(
                "no ConfigMap {namespace}/{} with {INVENTORY_KEY}",
                job.name_any()
            )));
        }
    };
    if !complete {
        let failing: Vec<&str> = hosts
            .iter()
            .filter(|p| p.host.named_in(&ctx.config.faults.fail_job_for))
            .map(|p| p.host.id.as_str())
            .collect();
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
        run_job(&ctx, &api, &job, &status).await?;
        if !agent_verifiable {
            tracing::warn!(job = %job.name_any(), "the playbook refuses an agent without a checksum");
            return fail(&api, &job).await.map(|()| Action::await_change());
        }
        if !failing.is_empty() {
            tracing::warn!(job = %job.name_any(), hosts = ?failing, "fault: host preparation fails");
            return fail(&api, &job).await.map(|()| Action::await_change());
        }
        succeed(&api, &job).await?;
        tracing::info!(job = %job.name_any(), hosts = hosts.len(), "host preparation succeeded");
    }
    // Also after a restart of the simulator: the prepared hosts' agents run again.
    for prepared in &hosts {
        agent::register(&ctx, &prepared.host, &prepared.namespace).await?;
    }
    Ok(Action::await_change())
}

/// The first Secret or ConfigMap the Job's pod mounts that does not exist.
fn missing_volume(ctx: &Context, namespace: &str, job: &Job) -> Option<String> {
    let volumes = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.volumes.clone())
        .unwrap_or_default();
    for volume in volumes {
        if let Some(name) = volume.secret.and_then(|s| s.secret_name)
            && !ctx.stores.secret_exists(namespace, &name)
        {
            return Some(format!("Secret {namespace}/{name}"));
        }
        if let Some(name) = volume.config_map.map(|c| c.name)
            && ctx.stores.config_map(namespace, &name).is_none()
        {
            return Some(format!("ConfigMap {namespace}/{name}"));
        }
    }
    None
}

/// The Ansible inventory in the ConfigMap named like the Job.
fn inventory(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Value>> {
    let config_map = ctx.stores.config_map(namespace, name);
    let Some(text) = config_map
        .as_ref()
        .and_then(|cm| cm.data.as_ref()?.get(INVENTORY_KEY))
    else {
        return Ok(None);
    };
    lcm_core::yaml::from_str(text)
        .map(Some)
        .map_err(|e| Error::Invalid(format!("{namespace}/{name} {INVENTORY_KEY}: {e}")))
}

/// Whether the playbook's `byoh_agent` role gets past its first task, which asserts that the
/// agent binary comes with a checksum or is explicitly allowed unverified.
fn agent_verifiable(inventory: &Value) -> bool {
    let vars = &inventory["all"]["children"][lcm_core::ansible::GROUP]["vars"];
    vars["byoh_agent_checksum"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
        || vars["byoh_agent_allow_unverified"] == true
}

/// The hosts of an inventory as `lcm_core::ansible` writes it; what it does not say (hostname,
/// address) comes from the configured hosts.
fn prepared_hosts(inventory: &Value, config: &SimConfig) -> Vec<PreparedHost> {
    let group = &inventory["all"]["children"][lcm_core::ansible::GROUP];
    let group_namespace = group["vars"]["byoh_namespace"].as_str();
    group["hosts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, vars)| {
            let id = vars["byoh_host_id"].as_str().unwrap_or(key);
            let known = config.host(id);
            let hostname = vars["byoh_hostname"]
                .as_str()
                .map(String::from)
                .or_else(|| known.map(|h| h.hostname.clone()))
                .unwrap_or_else(|| id.to_string());
            let address = vars["ansible_host"]
                .as_str()
                .map(String::from)
                .or_else(|| known.and_then(|h| h.address.clone()));
            let namespace = vars["byoh_namespace"]
                .as_str()
                .or(group_namespace)
                .unwrap_or(&config.byoh_namespace);
            PreparedHost {
                host: SimHost {
                    id: id.into(),
                    hostname,
                    address,
                },
                namespace: namespace.into(),
            }
        })
        .collect()
}

async fn write(api: &Api<Job>, job: &Job, status: Value) -> Result<()> {
    api.patch_status(
        &job.name_any(),
        &merge_params(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

fn condition(type_: &str, reason: &str, message: &str) -> Value {
    let now = now();
    json!({"type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now})
}

/// Starts the Job's pod (unless it started before a restart) and lets it run `job_delay`.
async fn run_job(ctx: &Context, api: &Api<Job>, job: &Job, status: &JobStatus) -> Result<()> {
    let started = match &status.start_time {
        Some(time) => time.0,
        None => {
            write(
                api,
                job,
                json!({"startTime": now(), "active": 1, "ready": 0}),
            )
            .await?;
            Timestamp::now()
        }
    };
    let elapsed = Timestamp::now().duration_since(started).unsigned_abs();
    tokio::time::sleep(ctx.config.job_delay.saturating_sub(elapsed)).await;
    Ok(())
}

async fn succeed(api: &Api<Job>, job: &Job) -> Result<()> {
    const REASON: &str = "CompletionsReached";
    const MESSAGE: &str = "Reached expected number of succeeded pods";
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(1);
    let met = condition("SuccessCriteriaMet", REASON, MESSAGE);
    write(
        api,
        job,
        json!({"active": 0, "ready": 0, "succeeded": completions, "conditions": [met]}),
    )
    .await?;
    let complete = condition("Complete", REASON, MESSAGE);
    write(
        api,
        job,
        json!({"completionTime": now(), "conditions": [met, complete]}),
    )
    .await
}

async fn fail(api: &Api<Job>, job: &Job) -> Result<()> {
    const REASON: &str = "BackoffLimitExceeded";
    const MESSAGE: &str = "Job has reached the specified backoff limit";
    let backoff_limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6);
    let target = condition("FailureTarget", REASON, MESSAGE);
    write(
        api,
        job,
        json!({"active": 0, "ready": 0, "failed": backoff_limit + 1, "conditions": [target]}),
    )
    .await?;
    let failed = condition("Failed", REASON, MESSAGE);
    write(api, job, json!({"conditions": [target, failed]})).await
}

#[cfg(test)]
mod tests {
    use lcm_core::template::HostAccess;

    use super::*;

    #[test]
    fn reads_the_hosts_of_an_operator_inventory() {
        let access = |id: &str, hostname: Option<&str>| HostAccess {
            id: id.into(),
            hostname: hostname.map(String::from),
            address: format!("10.0.0.{}", id.len()),
            ssh_user: "ubuntu".into(),
            ssh_host_keys: vec![],
        };
        let inventory = lcm_core::ansible::inventory(
            &[access("h1", Some("node-1")), access("h22", None)],
            "v1.32.9",
            "pool",
        );
        let config = SimConfig {
            hosts: vec![SimHost {
                id: "h22".into(),
                hostname: "node-22".into(),
                address: None,
            }],
            ..SimConfig::default()
        };
        let hosts = prepared_hosts(&inventory, &config);
        assert_eq!(
            hosts,
            [
                PreparedHost {
                    host: SimHost {
                        id: "h1".into(),
                        hostname: "node-1".into(),
                        address: Some("10.0.0.2".into())
                    },
                    namespace: "pool".into(),
                },
                PreparedHost {
                    host: SimHost {
                        id: "h22".into(),
                        hostname: "node-22".into(),
                        address: Some("10.0.0.3".into())
                    },
                    namespace: "pool".into(),
                },
            ]
        );
    }

    #[test]
    fn the_playbook_refuses_an_agent_without_a_checksum_unless_allowed() {
        let base = || lcm_core::ansible::inventory(&[], "v1.32.9", "pool");
        assert!(!agent_verifiable(&base()));
        for (name, value, verifiable) in [
            ("byoh_agent_checksum", json!("sha256:00"), true),
            ("byoh_agent_checksum", json!(""), false),
            ("byoh_agent_allow_unverified", json!(true), true),
            ("byoh_agent_allow_unverified", json!(false), false),
        ] {
            let mut inventory = base();
            lcm_core::ansible::set_group_var(&mut inventory, name, value.clone());
            assert_eq!(agent_verifiable(&inventory), verifiable, "{name}: {value}");
        }
    }
}
