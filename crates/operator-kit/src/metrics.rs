//! Prometheus metrics of a controller (no object names in labels: bounded cardinality).

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    /// Locked to add an operator's own metrics after start (see [`Metrics::extension`]).
    registry: Mutex<Registry>,
    /// Those metrics, one value per type.
    extensions: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
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
            registry: Mutex::new(registry),
            extensions: Mutex::default(),
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

    /// Starts the failure counter of each of `errors` (every label the operator's errors give)
    /// at 0: the series exist before the first failure, and Prometheus sees that failure as an
    /// increase (a series born at 1 has none).
    pub fn declare_failures(&self, errors: &[&str]) {
        for error in errors {
            drop(self.failures.get_or_create(&ErrorLabels {
                error: error.to_string(),
            }));
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

    /// An operator's own metrics of type `T`, in this registry under its prefix: `register`
    /// adds them the first time they are asked for, later calls return the same value. An
    /// operator's reconcile reaches them through the `Metrics` it already holds, and the
    /// runtime that serves `/metrics` need not know them.
    pub fn extension<T: Send + Sync + 'static>(
        &self,
        register: impl FnOnce(&mut Registry) -> T,
    ) -> Arc<T> {
        let mut extensions = lock(&self.extensions);
        if let Some(found) = extensions
            .iter()
            .find_map(|e| Arc::clone(e).downcast::<T>().ok())
        {
            return found;
        }
        let added = Arc::new(register(&mut lock(&self.registry)));
        extensions.push(added.clone());
        added
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry)) {
            Ok(()) => text,
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

/// A panic while registering or encoding leaves nothing half-done that matters to a scrape.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Extra(Counter);

    #[test]
    fn an_extension_is_registered_once_under_the_prefix() {
        let metrics = Metrics::new("test");
        let mut registrations = 0;
        let mut register = |registry: &mut Registry| {
            registrations += 1;
            let counter = Counter::default();
            registry.register("extra", "An operator's own counter", counter.clone());
            Extra(counter)
        };
        metrics.extension(&mut register).0.inc();
        metrics.extension(&mut register).0.inc();
        assert_eq!(registrations, 1);
        let text = metrics.encode();
        assert!(text.contains("\ntest_extra_total 2\n"), "{text}");
        assert!(text.contains("\ntest_reconcile_runs_total 0\n"), "{text}");
    }

    #[test]
    fn declared_failures_are_exported_at_zero() {
        let metrics = Metrics::new("test");
        assert!(!metrics.encode().contains("test_reconcile_failures"));
        metrics.declare_failures(&["kube", "apply"]);
        metrics.reconcile_failed("kube");
        let text = metrics.encode();
        assert!(
            text.contains("test_reconcile_failures_total{error=\"kube\"} 1\n")
                && text.contains("test_reconcile_failures_total{error=\"apply\"} 0\n"),
            "{text}"
        );
    }
}
