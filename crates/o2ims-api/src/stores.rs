//! What the server reads, from watches (never a LIST per request): the ProvisioningRequests,
//! the host ledger, the ByoHosts, the host inventory ConfigMap, the subscriptions and the
//! alarms; and, for the alarms it raises, the host-preparation Jobs and Cluster API's Clusters
//! and Machines.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use lcm_core::capi::Kind;
use lcm_core::crd::{HostClaim, O2imsAlarm, O2imsSubscription, ProvisioningRequest};
use lcm_core::inventory::Inventory;
use lcm_core::rest::inventory::HostView;
use operator_kit::fresh::Changes;
use operator_kit::watch::{self, Listed};

/// The least time between the starts of two passes over every object (see
/// [`next_pass`]).
pub const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// The key of the host inventory ConfigMap (as the O2IMS operator reads it).
const INVENTORY_KEY: &str = "input.json";

#[derive(Clone)]
pub struct Stores {
    pub requests: Store<ProvisioningRequest>,
    pub claims: Store<HostClaim>,
    pub byo_hosts: Store<DynamicObject>,
    pub inventory: Store<ConfigMap>,
    pub subscriptions: Store<O2imsSubscription>,
    pub alarms: Store<O2imsAlarm>,
    /// The O2IMS operator's host-preparation Jobs (in the server's namespace, the operator's).
    pub jobs: Store<Job>,
    /// The Cluster API Clusters of ProvisioningRequests, and every Machine.
    pub clusters: Store<DynamicObject>,
    pub machines: Store<DynamicObject>,
    pub listed: Listed,
    /// Counts every change the stores took in: wakes the notifier, and lets a write wait
    /// until the stores hold it.
    pub changed: Changes,
}

impl Stores {
    /// Starts the watches; they run until the process ends.
    pub fn start(client: &Client, namespace: &str, inventory_configmap: &str) -> Self {
        let (requests, requests_events) = watch::store(
            Api::<ProvisioningRequest>::all(client.clone()),
            watcher::Config::default(),
        );
        let (claims, claims_events) = watch::store(
            Api::<HostClaim>::all(client.clone()),
            watcher::Config::default(),
        );
        let (byo_hosts, byo_events) = watch::dynamic_store(
            client,
            &Kind::ByoHost.api_resource(),
            watcher::Config::default().labels(lcm_core::HOST_ID_LABEL),
        );
        let (inventory, inventory_events) = watch::store(
            Api::<ConfigMap>::namespaced(client.clone(), namespace),
            watcher::Config::default().fields(&format!("metadata.name={inventory_configmap}")),
        );
        let (subscriptions, subscription_events) = watch::store(
            Api::<O2imsSubscription>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        );
        let (alarms, alarm_events) = watch::store(
            Api::<O2imsAlarm>::namespaced(client.clone(), namespace),
            watcher::Config::default(),
        );
        let (jobs, job_events) = watch::store(
            Api::<Job>::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(lcm_core::PROVISIONING_REQUEST_LABEL),
        );
        let (clusters, cluster_events) = watch::dynamic_store(
            client,
            &Kind::Cluster.api_resource(),
            watcher::Config::default().labels(lcm_core::PROVISIONING_REQUEST_LABEL),
        );
        let (machines, machine_events) = watch::dynamic_store(
            client,
            &Kind::Machine.api_resource(),
            watcher::Config::default(),
        );
        let changed = Changes::default();
        drain(alarm_events, &changed);
        drain(job_events, &changed);
        drain(cluster_events, &changed);
        drain(machine_events, &changed);
        drain(requests_events, &changed);
        drain(claims_events, &changed);
        drain(byo_events, &changed);
        drain(inventory_events, &changed);
        drain(subscription_events, &changed);
        let listed = watch::readiness(vec![
            watch::listed(&requests),
            watch::listed(&claims),
            watch::listed(&byo_hosts),
            watch::listed(&inventory),
            watch::listed(&subscriptions),
            watch::listed(&alarms),
            watch::listed(&jobs),
            watch::listed(&clusters),
            watch::listed(&machines),
        ]);
        Self {
            requests,
            claims,
            byo_hosts,
            inventory,
            subscriptions,
            alarms,
            jobs,
            clusters,
            machines,
            listed,
            changed,
        }
    }

    /// The host inventory, when its ConfigMap holds a valid one.
    pub fn inventory(&self) -> Option<Inventory> {
        self.inventory
            .state()
            .first()
            .and_then(|cm| cm.data.as_ref()?.get(INVENTORY_KEY).cloned())
            .and_then(|text| Inventory::parse(INVENTORY_KEY, &text).ok())
    }

    /// Every host the O-Cloud knows: those of the inventory, then registered ones it lacks.
    /// Each host's ByoHost and claim are found by id, not by a search per host.
    pub fn hosts(&self) -> Vec<HostView> {
        let inventory = self.inventory();
        let mut registered: BTreeMap<String, (String, String)> = BTreeMap::new();
        for host in self.byo_hosts.state() {
            if let Some(id) = host.labels().get(lcm_core::HOST_ID_LABEL) {
                // The first, as a search would find it: a second ByoHost of an id is an alarm.
                registered
                    .entry(id.clone())
                    .or_insert_with(|| (host.name_any(), host.uid().unwrap_or_default()));
            }
        }
        let mut claims = HashMap::new();
        for claim in self.claims.state() {
            claims.entry(claim.spec.host_id.clone()).or_insert(claim);
        }
        let view = |id: &str, hostname: Option<String>, labels| HostView {
            id: id.to_string(),
            hostname,
            labels,
            byo_host: registered.get(id).cloned(),
            claim: claims.get(id).map(|c| {
                (
                    c.spec.request_name.clone(),
                    c.spec.cluster_name.clone(),
                    c.spec.in_use,
                )
            }),
        };
        let mut hosts: Vec<HostView> = inventory
            .iter()
            .flat_map(|i| i.hosts.iter())
            .map(|h| view(&h.id, Some(h.hostname.clone()), h.labels.clone()))
            .collect();
        let listed: HashSet<String> = hosts.iter().map(|h| h.id.clone()).collect();
        for id in registered.keys().filter(|id| !listed.contains(*id)) {
            hosts.push(view(id, None, Default::default()));
        }
        hosts
    }
}

/// Waits for a change the stores took in since `changes` was last read, or for `timeout`;
/// then, if needed, until [`PASS_INTERVAL`] after `started`, the start of the pass that
/// read them last. A pass over every object (the alarms raised, the notifications due)
/// thus runs at most once per interval while the fleet changes, taking all the changes
/// that came meanwhile together, instead of once per change.
pub async fn next_pass(
    changes: &mut tokio::sync::watch::Receiver<u64>,
    started: Instant,
    timeout: Duration,
) {
    tokio::select! {
        _ = changes.changed() => {}
        () = tokio::time::sleep(timeout) => {}
    }
    tokio::time::sleep_until((started + PASS_INTERVAL).into()).await;
}

/// The objects of a store as JSON, for lcm-core's views.
pub fn values<K>(store: &Store<K>) -> Vec<serde_json::Value>
where
    K: kube::Resource + serde::Serialize + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .iter()
        .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
        .collect()
}

/// Runs a store's watch, counting each change once the store holds it; its errors are logged
/// (the watch retries with back-off).
fn drain<K>(
    events: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    changed: &Changes,
) {
    let changed = changed.clone();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(_) => changed.bump(),
                Err(error) => tracing::warn!(%error, "watch failed; retrying"),
            }
        }
    });
}
