use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};

use k8s_openapi::api::core::v1::ConfigMap;
use lcm_core::crd::{FocomProvisioningRequest, OCloud, TemplateInfo};
use operator_kit::fresh::StatusWrites;
use operator_kit::metrics::Metrics;

use crate::cache::OCloudCache;
use crate::config::Config;
use crate::validation::Validations;

/// The local objects a reconcile reads, from watch-fed stores.
pub struct Inputs {
    /// The inventory's ConfigMap (the only one watched).
    pub inventory: Store<ConfigMap>,
    /// The admin's TemplateInfos.
    pub templates: Store<TemplateInfo>,
    pub oclouds: Store<OCloud>,
    /// Whether every store has listed: reconcile waits for it, as an empty store would read as
    /// a missing inventory or OCloud.
    pub ready: operator_kit::watch::Listed,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    pub requests: Store<FocomProvisioningRequest>,
    pub inputs: Inputs,
    /// This cluster's ProvisioningRequests and host ledger.
    pub local: Arc<OCloudCache>,
    /// Remote O-Clouds, by `<secret namespace>/<secret name>@<resourceVersion>` of the Secret
    /// holding their kubeconfig, each with watches feeding `triggers`.
    pub remotes: tokio::sync::Mutex<HashMap<String, Arc<OCloudCache>>>,
    /// Reconciles requested by the watches of remote O-Clouds.
    pub triggers: UnboundedSender<ObjectRef<FocomProvisioningRequest>>,
    /// The statuses written that the request watch may not have brought yet.
    pub status_writes: StatusWrites<FocomProvisioningRequest>,
    /// Each request's last validation, reused while what it read is unchanged.
    pub validations: Arc<Validations>,
}

impl Context {
    /// Recounts the requests per phase for the `focom_objects` gauge.
    pub fn refresh_phase_metrics(&self) {
        let requests = self.requests.state();
        let phases = [
            "Pending", "Creating", "Synced", "Failed", "Deleting", "Deleted",
        ];
        self.metrics.set_objects(phases, |phase| {
            requests
                .iter()
                .filter(|r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.phase)
                        .map(|p| p.to_string())
                        .as_deref()
                        .unwrap_or("Pending")
                        == phase
                })
                .count()
        });
    }
}
