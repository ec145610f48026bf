use std::collections::HashMap;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};

use lcm_core::crd::FocomProvisioningRequest;
use operator_kit::metrics::Metrics;

use crate::config::Config;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    pub requests: Store<FocomProvisioningRequest>,
    /// Clients of remote O-Clouds, by `<secret namespace>/<secret name>@<resourceVersion>`,
    /// each with a watch of its ProvisioningRequests feeding `triggers`.
    pub remotes: tokio::sync::Mutex<HashMap<String, crate::ocloud::Remote>>,
    /// Reconciles requested by the watches of remote O-Clouds.
    pub triggers: UnboundedSender<ObjectRef<FocomProvisioningRequest>>,
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
