//! What both operators do around their controller: logging, the HTTP server, leader election,
//! and stopping on SIGTERM or when the Lease is lost.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::process::ExitCode;
use std::sync::Arc;

use futures::{StreamExt, TryFuture};
use kube::Client;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::server::{self, Readiness};
use crate::{RuntimeOptions, leader, telemetry};

/// An operator process, ready to run its controller.
pub struct Runtime {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// Who this replica is (the pod's name), in the Lease and in Events.
    pub identity: String,
    name: String,
    concurrency: u16,
    leadership: Option<leader::Leadership>,
}

/// Starts logging and the HTTP server, then (with `--leader-elect`) waits to hold the Lease.
pub async fn start(
    name: &str,
    metric_prefix: &str,
    options: &RuntimeOptions,
) -> anyhow::Result<Runtime> {
    telemetry::init(options.log_format);
    let mut config = kube::Config::infer().await?;
    // Names this operator in the API server's audit log.
    let agent = format!("{name}/{}", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_str(&agent)?,
    ));
    let client = Client::try_from(config)?;
    let metrics = Metrics::new(metric_prefix);
    let readiness = Readiness::default();
    let address = server::serve(options.metrics_addr, metrics.clone(), readiness.clone()).await?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    let identity = options
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("{name}-{}", std::process::id()));
    let leadership = if options.leader_elect {
        readiness.set(true); // a standby is healthy and Ready
        let lease = options
            .lease_name
            .clone()
            .unwrap_or_else(|| name.to_string());
        tracing::info!(%identity, %lease, "waiting to become leader");
        let held =
            leader::acquire(client.clone(), &options.pod_namespace, &lease, &identity).await?;
        tracing::info!(%identity, "became leader");
        Some(held)
    } else {
        None
    };
    metrics.leader.set(1);
    Ok(Runtime {
        client,
        metrics,
        readiness,
        identity,
        name: name.to_string(),
        concurrency: options.concurrency,
        leadership,
    })
}

/// Why the controller stopped.
const LOST_LEASE: &str = "lost the Lease";

/// Ends the run once the controller has stopped: releases the Lease, reports why.
struct Stopping {
    metrics: Arc<Metrics>,
    reason: oneshot::Receiver<&'static str>,
    supervisor: tokio::task::JoinHandle<Option<leader::Leadership>>,
}

impl Runtime {
    /// The Event recorder of this replica (reporting controller: the operator's name).
    pub fn recorder(&self) -> Recorder {
        Recorder::new(
            self.client.clone(),
            Reporter {
                controller: self.name.clone(),
                instance: Some(self.identity.clone()),
            },
        )
    }

    /// Runs `controller` until SIGTERM/SIGINT or the loss of the Lease; `/readyz` turns ready
    /// once its cache has synced.
    pub async fn run<K, ReconcilerFut, Ctx>(
        self,
        controller: Controller<K>,
        reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> ReconcilerFut,
        error_policy: impl Fn(Arc<K>, &ReconcilerFut::Error, Arc<Ctx>) -> Action,
        ctx: Arc<Ctx>,
    ) -> anyhow::Result<()>
    where
        K: Clone + kube::Resource + DeserializeOwned + Debug + Send + Sync + 'static,
        K::DynamicType: Eq + Hash + Clone + Debug + Unpin,
        ReconcilerFut: TryFuture<Ok = Action> + Send + 'static,
        ReconcilerFut::Error: std::error::Error + Send + 'static,
    {
        tokio::spawn(server::ready_when_synced(
            controller.store(),
            self.readiness.clone(),
        ));
        let config = controller::Config::default().concurrency(self.concurrency);
        let (stop_signal, stopping) = self.stop_signal();
        controller
            .with_config(config)
            .graceful_shutdown_on(stop_signal)
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile failed");
                }
            })
            .await;
        stopping.finish().await
    }

    /// The future to hand to `Controller::graceful_shutdown_on`: it resolves on SIGTERM/SIGINT or
    /// when the Lease is lost; and what finishes the run after the controller stopped.
    fn stop_signal(self) -> (impl Future<Output = ()> + Send + Sync + 'static, Stopping) {
        let (stop, stopped) = oneshot::channel::<&'static str>();
        let (reason_tx, reason) = oneshot::channel();
        let mut leadership = self.leadership;
        let supervisor = tokio::spawn(async move {
            let why = tokio::select! {
                _ = shutdown_signal() => "shutdown signal",
                _ = lost(&mut leadership) => LOST_LEASE,
            };
            let _ = stop.send(why);
            leadership
        });
        let trigger = async move {
            let _ = reason_tx.send(stopped.await.unwrap_or("supervisor gone"));
        };
        (
            trigger,
            Stopping {
                metrics: self.metrics,
                reason,
                supervisor,
            },
        )
    }
}

impl Stopping {
    /// Releases the Lease (a standby takes over at once) and fails when the Lease was lost,
    /// so the pod restarts as a standby.
    async fn finish(self) -> anyhow::Result<()> {
        self.metrics.leader.set(0);
        let why = self.reason.await.unwrap_or("controller ended");
        tracing::info!(reason = why, "stopped");
        if let Ok(Some(leadership)) = self.supervisor.await {
            leadership.release().await;
        }
        anyhow::ensure!(
            why != LOST_LEASE,
            "lost the Lease: another replica acts now"
        );
        Ok(())
    }
}

async fn lost(leadership: &mut Option<leader::Leadership>) {
    match leadership {
        Some(held) => held.lost().await,
        None => std::future::pending().await,
    }
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}

/// What both operators do when a reconcile fails: log it, count it by `label`, retry soon.
pub fn retry_after_error(
    metrics: &Metrics,
    object: &str,
    error: &dyn std::fmt::Display,
    label: &str,
) -> Action {
    tracing::warn!(object, error = %error, "reconcile failed; retrying");
    metrics.reconcile_failed(label);
    Action::requeue(std::time::Duration::from_secs(15))
}

/// The process exit code of a command's result, printing the error chain.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Adds or removes `finalizer` on `object`, guarded by the resourceVersion it was read at. An
/// object already gone when its finalizer is removed is what the removal leads to: a reconcile
/// working from a cached copy that predates an earlier removal finds it so.
pub async fn set_finalizer<K>(
    api: &kube::Api<K>,
    object: &K,
    finalizer: &str,
    present: bool,
) -> kube::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use kube::ResourceExt;
    let mut finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect();
    if present {
        finalizers.push(finalizer.to_string());
    }
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers, "resourceVersion": object.resource_version()}});
    let patched = api
        .patch(
            &object.name_any(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await;
    match patched {
        Err(kube::Error::Api(status)) if !present && status.is_not_found() => Ok(()),
        other => other.map(drop),
    }
}
