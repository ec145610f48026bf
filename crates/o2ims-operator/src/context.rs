use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Recorder;

use lcm_core::crd::ProvisioningRequest;
use operator_kit::apply::Applier;
use operator_kit::metrics::Metrics;

use crate::config::Config;
use crate::index::Index;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// What the watches see: requests, host claims, Cluster API objects and hosts.
    pub index: Index,
    /// Applies the generated objects, remembering what each holds.
    pub applier: Applier,
}

impl Context {
    /// Recounts the requests per state for the `o2ims_objects` gauge.
    pub fn refresh_state_metrics(&self) {
        let requests = self.index.requests.state();
        let state_of = |r: &ProvisioningRequest| {
            r.status
                .as_ref()
                .and_then(|s| s.provisioning_status.as_ref())
                .map(|s| s.provisioning_state.as_str())
        };
        let states = ["pending", "progressing", "fulfilled", "failed", "deleting"];
        self.metrics.set_objects(states, |state| {
            requests
                .iter()
                .filter(|r| state_of(r).unwrap_or("pending") == state)
                .count()
        });
    }
}
