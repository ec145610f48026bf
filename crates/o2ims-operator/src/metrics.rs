//! The O2IMS operator's own metrics, beside operator-kit's (`o2ims_reconcile_*`, `o2ims_objects`,
//! `o2ims_leader`): how long requests take to reach each stage, each timed stage's timeout and
//! the longest wait in it, and the host pool. Labels are stages and states, never object names.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use kube::ResourceExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use lcm_core::conditions;
use lcm_core::crd::{ProvisioningRequest, ProvisioningRequestStatus};
use lcm_core::inventory::Inventory;
use operator_kit::metrics::StateLabels;

use lcm_core::status::provisioning::{
    CLUSTER_PROVISIONED, CONTROL_PLANE_READY, HOSTS_PREPARED, TIMED_STAGES, WORKERS_READY,
    running_stage_clocks,
};
use operator_kit::metrics::Metrics;

use crate::config::{Config, HOST_INVENTORY_KEY};
use crate::error::Error;
use crate::index::Index;

/// Each stage's label and the condition that turns True when a request reaches it.
const STAGES: [(&str, &str); 4] = [
    ("hosts_prepared", HOSTS_PREPARED),
    ("control_plane_ready", CONTROL_PLANE_READY),
    ("workers_ready", WORKERS_READY),
    ("fulfilled", CLUSTER_PROVISIONED),
];

/// Provisioning takes minutes: 5 s to 2 h (the default stage timeouts are 30 min each).
const STAGE_BUCKETS: [f64; 14] = [
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0,
    7200.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// The label of the stage whose condition is `condition_type`.
fn stage_label(condition_type: &str) -> &'static str {
    STAGES
        .iter()
        .find(|(_, type_)| *type_ == condition_type)
        .map_or("unknown", |(label, _)| label)
}

type StageHistograms = Family<StageLabels, Histogram, fn() -> Histogram>;

/// What this operator adds to operator-kit's registry.
pub struct O2imsMetrics {
    stage_durations: StageHistograms,
}

impl O2imsMetrics {
    /// The metrics of `metrics`' registry, registered on first use (a status write or a state
    /// refresh, whichever comes first).
    pub fn of(metrics: &Metrics, config: &Config, index: &Index) -> Arc<Self> {
        metrics.extension(|registry| {
            metrics.declare_failures(&Error::METRIC_LABELS);
            Self::register(registry, config, index)
        })
    }

    fn register(registry: &mut Registry, config: &Config, index: &Index) -> Self {
        let stage_durations =
            StageHistograms::new_with_constructor(|| Histogram::new(STAGE_BUCKETS));
        // Every stage's series exists from the start, so rates and quantiles see the first one.
        for (stage, _) in STAGES {
            drop(stage_durations.get_or_create(&StageLabels { stage }));
        }
        registry.register(
            "stage_duration_seconds",
            "Seconds from a ProvisioningRequest's creation until it reached a stage, on its first provisioning",
            stage_durations.clone(),
        );
        let timeouts = Family::<StageLabels, Gauge>::default();
        for (condition_type, seconds) in config.stage_timeouts() {
            let stage = stage_label(condition_type);
            let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
            timeouts.get_or_create(&StageLabels { stage }).set(seconds);
        }
        registry.register(
            "stage_timeout_seconds",
            "Seconds a stage may take before its request fails (the operator's flags)",
            timeouts,
        );
        registry.register_collector(Box::new(Scraped {
            index: index.clone(),
            namespace: config.namespace().to_string(),
            inventory_configmap: config.host_inventory_configmap.clone(),
            inventory_source: config.host_inventory(),
        }));
        Self { stage_durations }
    }

    /// Observes each stage that the `written` status of `request` reaches.
    pub fn stages_reached(
        &self,
        request: &ProvisioningRequest,
        written: &ProvisioningRequestStatus,
    ) {
        for (stage, seconds) in reached(request, written) {
            self.stage_durations
                .get_or_create(&StageLabels { stage })
                .observe(seconds);
        }
    }
}

/// The stages whose condition `written` turns True (the request's status had it otherwise),
/// each with the seconds from the request's creation to that transition. Only on a first
/// provisioning (generation 1): after a spec change (an upgrade, a scale) the stages run again,
/// and their time since creation would measure the cluster's age.
fn reached(
    request: &ProvisioningRequest,
    written: &ProvisioningRequestStatus,
) -> Vec<(&'static str, f64)> {
    let Some(created) = &request.metadata.creation_timestamp else {
        return Vec::new();
    };
    if request.metadata.generation.unwrap_or(1) != 1 {
        return Vec::new();
    }
    let before = request
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let is_true = |c: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition| {
        c.status == conditions::TRUE
    };
    STAGES
        .into_iter()
        .filter_map(|(stage, type_)| {
            let now = conditions::find(&written.conditions, type_).filter(is_true)?;
            if conditions::find(before, type_).filter(is_true).is_some() {
                return None;
            }
            let took = now.last_transition_time.0.duration_since(created.0);
            Some((stage, took.as_secs_f64().max(0.0)))
        })
        .collect()
}

/// What is counted when Prometheus scrapes, from the watch stores: a host registering or a
/// request deleted changes it without a reconcile, and a request stuck in a stage is not
/// reconciled again before its timeout, so gauges set by reconciles would be stale.
struct Scraped {
    index: Index,
    namespace: String,
    inventory_configmap: String,
    /// The inventory's name in messages of a parse error.
    inventory_source: String,
}

impl fmt::Debug for Scraped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scraped")
            .field("inventory_configmap", &self.inventory_configmap)
            .finish_non_exhaustive()
    }
}

impl Collector for Scraped {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        // Before every store has listed, an empty store would report an empty host pool.
        if !self.index.ready.now() {
            return Ok(());
        }
        self.snapshot(jiff::Timestamp::now()).encode(encoder)
    }
}

impl Scraped {
    fn snapshot(&self, now: jiff::Timestamp) -> Snapshot {
        let inventory: Vec<String> = self
            .index
            .config_map(&self.namespace, &self.inventory_configmap)
            .and_then(|cm| cm.data.as_ref()?.get(HOST_INVENTORY_KEY).cloned())
            .and_then(|text| Inventory::parse(&self.inventory_source, &text).ok())
            .map(|i| i.hosts.into_iter().map(|h| h.id).collect())
            .unwrap_or_default();
        let registered: Vec<String> = self
            .index
            .byo_hosts
            .store()
            .state()
            .iter()
            .filter_map(|h| h.labels().get(lcm_core::HOST_ID_LABEL).cloned())
            .collect();
        let claimed: BTreeSet<String> = self
            .index
            .claims
            .state()
            .iter()
            .map(|c| c.spec.host_id.clone())
            .collect();
        let statuses: Vec<ProvisioningRequestStatus> = self
            .index
            .requests
            .state()
            .iter()
            .filter_map(|r| r.status.clone())
            .collect();
        Snapshot {
            pool: HostPool::of(inventory, registered, &claimed),
            longest_waits: longest_waits(&statuses, now),
        }
    }
}

/// The O-Cloud's hosts, as the O2ims API lists them: those of the host inventory, the
/// registered ByoHosts (`host-id` label) and any a claim names; a host is claimed while a
/// HostClaim holds it.
#[derive(Debug, Default, PartialEq)]
struct HostPool {
    free: usize,
    claimed: usize,
}

impl HostPool {
    fn of(
        inventory: impl IntoIterator<Item = String>,
        registered: impl IntoIterator<Item = String>,
        claimed: &BTreeSet<String>,
    ) -> Self {
        let mut hosts: BTreeSet<String> = inventory.into_iter().chain(registered).collect();
        hosts.extend(claimed.iter().cloned());
        Self {
            free: hosts.iter().filter(|h| !claimed.contains(*h)).count(),
            claimed: claimed.len(),
        }
    }
}

/// The longest a progressing request has waited in each timed stage, in seconds, by the clock
/// its timeout runs on (0 while none waits there).
fn longest_waits(
    statuses: &[ProvisioningRequestStatus],
    now: jiff::Timestamp,
) -> Vec<(&'static str, f64)> {
    TIMED_STAGES
        .into_iter()
        .map(|stage| {
            let longest = statuses
                .iter()
                .flat_map(running_stage_clocks)
                .filter(|(running, _)| *running == stage)
                .map(|(_, since)| now.duration_since(since).as_secs_f64().max(0.0))
                .fold(0.0, f64::max);
            (stage_label(stage), longest)
        })
        .collect()
}

/// The scrape-time gauges.
struct Snapshot {
    pool: HostPool,
    longest_waits: Vec<(&'static str, f64)>,
}

impl Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let hosts = Family::<StateLabels, Gauge>::default();
        for (state, count) in [("free", self.pool.free), ("claimed", self.pool.claimed)] {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            hosts
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(count);
        }
        encode_as(
            &mut encoder,
            "hosts",
            "Hosts of the O-Cloud (host inventory, registered ByoHosts), free or claimed in the host ledger",
            &hosts,
        )?;
        let waits = Family::<StageLabels, Gauge<f64, AtomicU64>>::default();
        for (stage, seconds) in &self.longest_waits {
            waits.get_or_create(&StageLabels { stage }).set(*seconds);
        }
        encode_as(
            &mut encoder,
            "stage_longest_wait_seconds",
            "The longest a progressing request has waited in a timed stage, by its timeout's clock",
            &waits,
        )
    }
}

fn encode_as(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> fmt::Result {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use lcm_core::conditions::Desired;
    use lcm_core::crd::{ProvisioningRequestSpec, ProvisioningState};

    use crate::report::{Report, next_status};

    fn time(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    fn created_at(s: &str) -> ProvisioningRequest {
        let mut pr = ProvisioningRequest::new("r", ProvisioningRequestSpec::default());
        pr.metadata.creation_timestamp = Some(time(s));
        pr.metadata.generation = Some(1);
        pr
    }

    fn report(conditions: Vec<Desired>) -> Report {
        Report::new(ProvisioningState::Progressing, "", conditions)
    }

    #[test]
    fn a_stage_is_observed_once_when_it_turns_true() {
        let mut pr = created_at("2026-01-01T00:00:00Z");
        let waiting = report(vec![Desired::false_(
            CONTROL_PLANE_READY,
            "Initializing",
            "kubeadm init",
        )]);
        let first = next_status(&pr, &waiting, &time("2026-01-01T00:01:00Z"));
        assert_eq!(reached(&pr, &first), [], "False is not reached");
        pr.status = Some(first);
        let up = report(vec![
            Desired::true_(HOSTS_PREPARED, "HostsRegistered", "all"),
            Desired::true_(CONTROL_PLANE_READY, "Ready", "1/1"),
        ]);
        let ready = next_status(&pr, &up, &time("2026-01-01T00:10:00Z"));
        assert_eq!(
            reached(&pr, &ready),
            [("hosts_prepared", 600.0), ("control_plane_ready", 600.0)]
        );
        pr.status = Some(ready.clone());
        let again = next_status(&pr, &up, &time("2026-01-01T00:20:00Z"));
        assert_eq!(reached(&pr, &again), [], "already True: not again");
        pr.metadata.generation = Some(2);
        pr.status = Some(first_status_of(&pr));
        assert_eq!(
            reached(&pr, &ready),
            [],
            "a stage after a spec change is not timed from creation"
        );
    }

    fn first_status_of(pr: &ProvisioningRequest) -> ProvisioningRequestStatus {
        next_status(pr, &report(vec![]), &time("2026-01-01T00:00:00Z"))
    }

    #[test]
    fn the_pool_is_the_inventory_the_registered_and_the_claimed_hosts() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let claimed: BTreeSet<String> = ids(&["h1", "outside"]).into_iter().collect();
        let pool = HostPool::of(ids(&["h1", "h2", "h3"]), ids(&["h3", "h4"]), &claimed);
        assert_eq!(
            pool,
            HostPool {
                free: 3,
                claimed: 2
            }
        );
        let all: BTreeSet<String> = ids(&["h1"]).into_iter().collect();
        assert_eq!(HostPool::of(ids(&["h1"]), [], &all).free, 0, "exhausted");
    }

    #[test]
    fn the_longest_wait_follows_the_timeout_clock() {
        let pr = created_at("2026-01-01T00:00:00Z");
        let status = |conditions, at| next_status(&pr, &report(conditions), &time(at));
        let statuses = [
            status(
                vec![Desired::false_(CONTROL_PLANE_READY, "Initializing", "")],
                "2026-01-01T00:00:00Z",
            ),
            status(
                vec![Desired::false_(CONTROL_PLANE_READY, "WaitingForNodes", "")],
                "2026-01-01T00:05:00Z",
            ),
            // Skip mode waits for hosts without a timeout; the workers' clock waits for the
            // control plane.
            status(
                vec![
                    Desired::false_(HOSTS_PREPARED, "WaitingForHosts", ""),
                    Desired::false_(WORKERS_READY, "NotCreated", ""),
                ],
                "2026-01-01T00:00:00Z",
            ),
        ];
        let now = "2026-01-01T00:10:00Z".parse().expect("now");
        assert_eq!(
            longest_waits(&statuses, now),
            [
                ("hosts_prepared", 0.0),
                ("control_plane_ready", 600.0),
                ("workers_ready", 0.0)
            ]
        );
        let mut failed = statuses[0].clone();
        if let Some(s) = failed.provisioning_status.as_mut() {
            s.provisioning_state = ProvisioningState::Failed;
        }
        assert_eq!(
            longest_waits(&[failed], now)[1],
            ("control_plane_ready", 0.0),
            "a failed request waits no more"
        );
    }

    /// A fixed snapshot, to read what a scrape shows.
    #[derive(Debug)]
    struct Fixed(Vec<(&'static str, f64)>);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            Snapshot {
                pool: HostPool {
                    free: 0,
                    claimed: 4,
                },
                longest_waits: self.0.clone(),
            }
            .encode(encoder)
        }
    }

    #[test]
    fn a_scrape_shows_the_pool_and_the_waits_under_the_prefix() {
        let mut registry = Registry::with_prefix("o2ims");
        registry.register_collector(Box::new(Fixed(vec![("control_plane_ready", 90.5)])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "# TYPE o2ims_hosts gauge",
            "o2ims_hosts{state=\"free\"} 0",
            "o2ims_hosts{state=\"claimed\"} 4",
            "# TYPE o2ims_stage_longest_wait_seconds gauge",
            "o2ims_stage_longest_wait_seconds{stage=\"control_plane_ready\"} 90.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
