//! byoh-sim: what cannot run on laptops and in CI, for the demo and the tests, against a real
//! Kubernetes API server where the real Cluster API and BYOH managers run:
//!
//! - the BYOH host agents of the configured hosts ([`SimConfig::hosts`]), as BYOH v0.5.0's agent
//!   run with `--skip-installation`: ByoHost registration, node bootstrap on a claim (the
//!   bootstrap data run on a model of the host, whose kubeadm reaches the workload clusters
//!   through the control API of `tools/workload-clusters`), release without reset;
//! - the Job controller (and kubelet's wait for mounted Secrets and ConfigMaps) and Ansible for
//!   host-preparation Jobs;
//! - faults on demand ([`Faults`]).
//!
//! It writes only what those components write, through the same API, so the operators and the
//! managers cannot tell it from the real thing; every reaction is driven by watches.
//!
//! Its modules in layers, each using only the layers below it (`layers_hold` checks it):
//!
//! 1. `config`, `error`, `workload` (the workload clusters' control API);
//! 2. `objects` (writing objects as the simulated components do), `kubeadm` (what kubeadm on
//!    a host does);
//! 3. `cloud_init` (the bootstrap data run on a host), `conditions` (Cluster API conditions),
//!    `stores` (what the Job controller and kubelet read);
//! 4. `context` (what the agents and the Job controller share, the running agents among it);
//! 5. `agent` (the host agents), `runner` (how the simulated controllers retry);
//! 6. `jobs` (the Job controller and the Ansible run).

mod agent;
mod cloud_init;
mod conditions;
mod config;
mod context;
mod error;
mod jobs;
mod kubeadm;
mod objects;
mod runner;
mod stores;
mod workload;

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube::Client;
use tokio::task::JoinHandle;

pub use config::{Faults, SimConfig, SimHost, parse_duration};
pub use workload::CALICO_STAND_IN;

use context::{Agents, Context};
use stores::Stores;
use workload::ControlApi;

/// Runs the simulator until the returned future is dropped (or its task aborted), acting as
/// the administrator `admin` describes, with the workload clusters' control API at
/// `workload_clusters` (`http://<address>:<port>`). Fails only when the hosts present from the
/// start cannot register.
pub async fn run(
    admin: kube::Config,
    workload_clusters: &str,
    config: SimConfig,
) -> anyhow::Result<()> {
    let (_, running) = prepare(admin, workload_clusters, config)?;
    running.await
}

/// What the agents and the Job controller share, and the future that runs them.
fn prepare(
    admin: kube::Config,
    workload_clusters: &str,
    config: SimConfig,
) -> anyhow::Result<(
    Arc<Context>,
    impl Future<Output = anyhow::Result<()>> + Send + use<>,
)> {
    let client = Client::try_from(admin.clone())?;
    let (stores, watches) = Stores::new(&client, config.namespace.as_deref());
    let (agents, running_agents) = Agents::new();
    let ctx = Arc::new(Context {
        client,
        admin_config: admin,
        config,
        agents,
        clusters: ControlApi::new(workload_clusters)?,
        stores,
    });
    let shared = ctx.clone();
    let running = async move {
        let ctx = shared;
        // Each agent runs here, for as long as the simulator does.
        let agents = running_agents.for_each_concurrent(None, |agent| agent);
        let started = async {
            agent::register_at_start(&ctx)
                .await
                .context("registering the hosts present at start")?;
            tracing::info!(namespace = ?ctx.config.namespace, "byoh-sim running");
            // Not before the stores hold their first listing: a Job would look for what it
            // mounts in an empty store.
            if ctx.stores.wait_until_ready().await.is_ok() {
                jobs::run(ctx.clone()).await;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            result = started => result,
            () = watches => Ok(()),
            () = agents => Ok(()),
        }
    };
    Ok((ctx, running))
}

/// A simulator running in the background; dropping the handle stops it, its agents with it.
pub struct Handle {
    task: JoinHandle<anyhow::Result<()>>,
    ctx: Arc<Context>,
}

impl Handle {
    /// Whether it stopped (it only stops by itself when the start-up registration failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Starts `host`'s agent now, in the configured namespace, as on a host whose owner
    /// installed the agent by hand, and returns once it registered its ByoHost (at once when it
    /// runs already; never for a host that never registers, see [`Faults`]).
    pub async fn register(&self, host: &SimHost) -> anyhow::Result<()> {
        agent::register(&self.ctx, host, &self.ctx.config.byoh_namespace)
            .await
            .with_context(|| format!("registering host {}", host.id))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the simulator in a task of the current runtime.
pub fn spawn(
    admin: kube::Config,
    workload_clusters: &str,
    config: SimConfig,
) -> anyhow::Result<Handle> {
    let (ctx, running) = prepare(admin, workload_clusters, config)?;
    let task = tokio::spawn(async move {
        let result = running.await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "byoh-sim stopped");
        }
        result
    });
    Ok(Handle { task, ctx })
}

#[cfg(test)]
mod tests {
    /// The layers of the crate's doc, lowest first.
    const LAYERS: &[&[&str]] = &[
        &["config", "error", "workload"],
        &["objects", "kubeadm"],
        &["cloud_init", "conditions", "stores"],
        &["context"],
        &["agent", "runner"],
        &["jobs"],
    ];

    #[test]
    fn layers_hold() -> anyhow::Result<()> {
        testcluster::check_layers(env!("CARGO_MANIFEST_DIR").as_ref(), LAYERS)
    }
}
