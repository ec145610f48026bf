//! The BYOH host agents of the simulated hosts, as BYOH v0.5.0's agent run with
//! `--skip-installation` (agent/main.go): each registers its host's ByoHost
//! ([`registration`]), then watches only that ByoHost (a field selector on its name) and
//! reconciles it ([`host_reconciler`]). Each acts as its host's identity, `byoh:host:<hostname>`
//! in group `byoh:hosts`, which BYOH's ByoHost webhook and RBAC expect of an agent (here by
//! impersonation, where a real agent has a client certificate from its bootstrap kubeconfig).

mod events;
mod host_reconciler;
mod registration;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;

use crate::cloud_init;
use crate::config::SimHost;
use crate::context::Context;
use crate::error::{Error, Result};

/// controller-runtime's default per-object back-off after a failed reconcile: 5 ms doubling
/// up to 1000 s (workqueue.DefaultControllerRateLimiter).
const FIRST_RETRY: Duration = Duration::from_millis(5);
const LAST_RETRY: Duration = Duration::from_secs(1000);

/// The user and group a host's agent acts as (its client certificate's CN and O).
pub fn identity(hostname: &str) -> (String, &'static str) {
    (format!("byoh:host:{hostname}"), "byoh:hosts")
}

/// One host's agent: its identity's clients and the host it runs on.
struct Agent {
    host: SimHost,
    namespace: String,
    /// As the agent: its ByoHost, Secrets and Events.
    client: Client,
    sim: Arc<Context>,
    node: tokio::sync::Mutex<cloud_init::Host>,
    /// Failed reconciles since the last one that succeeded (the back-off's exponent).
    failures: Mutex<u32>,
}

impl Agent {
    fn byo_hosts(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &Kind::ByoHost.api_resource(),
        )
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, u32> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Registers the hosts configured to be there from the start.
pub async fn register_at_start(ctx: &Arc<Context>) -> Result<()> {
    for host in ctx.config.registered_at_start() {
        register(ctx, host, &ctx.config.byoh_namespace).await?;
    }
    Ok(())
}

/// Starts `host`'s agent with `--namespace namespace` unless it runs: it registers the host's
/// ByoHost, then reconciles it.
pub async fn register(ctx: &Arc<Context>, host: &SimHost, namespace: &str) -> Result<()> {
    if host.named_in(&ctx.config.faults.never_register) {
        tracing::warn!(host = %host.id, "fault: this host's agent never registers");
        return Ok(());
    }
    if !ctx.agents.start(namespace, &host.hostname) {
        return Ok(());
    }
    let agent = match start(ctx, host, namespace).await {
        Ok(agent) => agent,
        Err(e) => {
            ctx.agents.forget(namespace, &host.hostname);
            return Err(e);
        }
    };
    ctx.agents
        .spawn
        .unbounded_send(Box::pin(run(Arc::new(agent))))
        .map_err(|_| Error::Invalid("the simulator stopped".into()))
}

async fn start(ctx: &Arc<Context>, host: &SimHost, namespace: &str) -> Result<Agent> {
    let (user, group) = identity(&host.hostname);
    let mut config = ctx.admin_config.clone();
    config.auth_info.impersonate = Some(user);
    config.auth_info.impersonate_groups = Some(vec![group.into()]);
    let agent = Agent {
        host: host.clone(),
        namespace: namespace.into(),
        client: Client::try_from(config)?,
        sim: ctx.clone(),
        node: tokio::sync::Mutex::default(),
        failures: Mutex::new(0),
    };
    registration::register(&agent).await?;
    Ok(agent)
}

/// The agent's controller: its own ByoHost only, each change reconciled, failures retried
/// with controller-runtime's back-off.
async fn run(agent: Arc<Agent>) {
    let own = watcher::Config::default().fields(&format!("metadata.name={}", agent.host.hostname));
    Controller::new_with(agent.byo_hosts(), own, Kind::ByoHost.api_resource())
        .run(reconcile, retry, agent)
        .for_each(|_| async {})
        .await;
}

async fn reconcile(object: Arc<DynamicObject>, agent: Arc<Agent>) -> Result<Action> {
    let result = host_reconciler::reconcile(&agent, &object.name_any()).await;
    if result.is_ok() {
        *agent.failures() = 0;
    }
    result.map(|()| Action::await_change())
}

fn retry(object: Arc<DynamicObject>, error: &Error, agent: Arc<Agent>) -> Action {
    let mut failures = agent.failures();
    *failures += 1;
    let after = retry_after(*failures);
    tracing::warn!(byo_host = %object.name_any(), %error, ?after, "reconcile failed; retrying");
    Action::requeue(after)
}

fn retry_after(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(2_u32.saturating_pow(failures.saturating_sub(1)))
        .min(LAST_RETRY)
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
}
