//! byoh-sim: a simulator of the world the operators act on but do not own, for laptops and CI
//! where there are no bare-metal hosts and no Cluster API controllers. Against a real Kubernetes
//! API server it plays:
//!
//! - the BYOH host agents of the configured hosts ([`SimConfig::hosts`]): ByoHost
//!   registration, node bootstrap on claim, reset on release;
//! - the Job controller (and kubelet's wait for mounted Secrets and ConfigMaps) and Ansible for
//!   host-preparation Jobs, and BYOH's issuing of bootstrap kubeconfigs;
//! - the Cluster API (Cluster, KubeadmControlPlane, MachineDeployment, Machine, kubeadm
//!   bootstrap) and BYOH (ByoCluster, ByoMachine) controllers;
//! - faults on demand ([`Faults`]).
//!
//! It only writes what those components write, through the same API, so the operators cannot
//! tell it from the real thing; every reaction is driven by watches.

mod agent;
mod bootstrap;
mod claiming;
mod cloud_init;
mod cluster;
mod cni;
mod conditions;
mod config;
mod context;
mod control_plane;
mod error;
mod jobs;
mod kubeadm_bootstrap;
mod machine_deployment;
mod machines;
mod objects;
mod replicas;
mod rollout;
mod runner;
mod stores;
mod teardown;

use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt;
use futures::future;
use kube::Client;
use tokio::task::JoinHandle;

pub use config::{Faults, SimConfig, SimHost, parse_duration};

use context::Context;
use stores::Stores;

/// Runs the simulator until the returned future is dropped (or its task aborted). Fails only
/// when the hosts present from the start cannot register.
pub async fn run(client: Client, config: SimConfig) -> anyhow::Result<()> {
    let (stores, watches) = Stores::new(&client, config.namespace.as_deref());
    let ctx = Arc::new(Context::new(client, config, stores));
    agent::register_at_start(&ctx)
        .await
        .context("registering the hosts present at start")?;
    // Each subscribes to the watches it needs here, before they run.
    let controllers = future::join_all([
        agent::run(ctx.clone()).boxed(),
        bootstrap::run(ctx.clone()).boxed(),
        jobs::run(ctx.clone()).boxed(),
        machines::run(ctx.clone()).boxed(),
        control_plane::run(ctx.clone()).boxed(),
        machine_deployment::run(ctx.clone()).boxed(),
        cluster::run(ctx.clone()).boxed(),
    ]);
    tracing::info!(namespace = ?ctx.config.namespace, "byoh-sim running");
    futures::join!(watches, async {
        // Not before every store holds its first listing: a reconcile reading an empty store
        // would create what exists (machines) or miss what it needs (hosts). The stores are
        // ready unless their watches stopped.
        if ctx.stores.wait_until_ready().await.is_ok() {
            controllers.await;
        }
    });
    Ok(())
}

/// A simulator running in the background; dropping the handle stops it.
pub struct Handle(JoinHandle<anyhow::Result<()>>);

impl Handle {
    /// Whether it stopped (it only stops by itself when the start-up registration failed).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the simulator in a task of the current runtime.
pub fn spawn(client: Client, config: SimConfig) -> Handle {
    Handle(tokio::spawn(async move {
        let result = run(client, config).await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "byoh-sim stopped");
        }
        result
    }))
}
