use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Recorder;

use lcm_core::crd::ProvisioningRequest;
use operator_kit::apply::Applier;
use operator_kit::fresh::StatusWrites;
use operator_kit::metrics::Metrics;

use crate::config::Config;
use crate::index::Index;
use crate::metrics::O2imsMetrics;

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
    /// The statuses written that the request watch may not have brought yet.
    pub status_writes: StatusWrites<ProvisioningRequest>,
}

impl Context {
    /// The operator's own metrics, registered by the first call.
    pub fn o2ims_metrics(&self) -> Arc<O2imsMetrics> {
        O2imsMetrics::of(&self.metrics, &self.config, &self.index)
    }

    /// Recounts the requests per phase (as the O2ims REST API reports it, `pending` until
    /// validated) for the `o2ims_objects` gauge. The operator's own metrics are registered by
    /// the first call; the host pool and the stages' waits are counted when scraped, so they
    /// need no refresh.
    pub fn refresh_state_metrics(&self) {
        self.o2ims_metrics();
        use lcm_core::rest::provisioning::{Phase, phase};
        let requests = self.index.requests.state();
        let phases = [
            ("pending", Phase::Pending),
            ("progressing", Phase::Progressing),
            ("fulfilled", Phase::Fulfilled),
            ("failed", Phase::Failed),
            ("deleting", Phase::Deleting),
        ];
        self.metrics
            .set_objects(phases.map(|(label, _)| label), |label| {
                let wanted = phases.iter().find(|(l, _)| *l == label).map(|(_, p)| *p);
                requests.iter().filter(|r| Some(phase(r)) == wanted).count()
            });
    }
}
