//! Prometheus metrics of a controller (no object names in labels: bounded cardinality).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// The metrics one controller publishes, prefixed by its name.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    /// Objects per state (ProvisioningRequest states, FocomProvisioningRequest phases).
    pub objects: Family<StateLabels, Gauge>,
    /// 1 while this replica holds the Lease (or runs without leader election).
    pub leader: Gauge,
}

impl Metrics {
    pub fn new(prefix: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix(prefix);
        let reconciles = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let objects = Family::<StateLabels, Gauge>::default();
        let leader = Gauge::default();
        registry.register("reconcile_runs", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations",
            duration.clone(),
        );
        registry.register("objects", "Reconciled objects per state", objects.clone());
        registry.register(
            "leader",
            "Whether this replica is the acting leader",
            leader.clone(),
        );
        Arc::new(Self {
            registry,
            reconciles,
            failures,
            duration,
            objects,
            leader,
        })
    }

    /// Starts timing a reconciliation; the duration is recorded when the guard drops.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            histogram: &self.duration,
            start: Instant::now(),
        }
    }

    pub fn reconcile_failed(&self, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.to_string(),
            })
            .inc();
    }

    /// Replaces the per-state object counts.
    pub fn set_objects<'a>(
        &self,
        states: impl IntoIterator<Item = &'a str>,
        counts: impl Fn(&str) -> usize,
    ) {
        for state in states {
            let count = i64::try_from(counts(state)).unwrap_or(i64::MAX);
            self.objects
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(count);
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            Ok(()) => text,
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

/// Records a reconciliation's duration when dropped.
pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}
