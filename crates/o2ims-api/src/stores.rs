//! What the server reads, from watches (never a LIST per request): the ProvisioningRequests,
//! the host ledger, the ByoHosts, the host inventory ConfigMap, the subscriptions and the
//! alarms; and, for the alarms it raises, the host-preparation Jobs and Cluster API's Clusters
//! and Machines.

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
    pub fn hosts(&self) -> Vec<HostView> {
        let inventory = self.inventory();
        let registered: Vec<(String, String, String)> = self
            .byo_hosts
            .state()
            .iter()
            .filter_map(|h| {
                let id = h.labels().get(lcm_core::HOST_ID_LABEL)?.clone();
                Some((id, h.name_any(), h.uid().unwrap_or_default()))
            })
            .collect();
        let claims = self.claims.state();
        let view = |id: &str, hostname: Option<String>, labels| HostView {
            id: id.to_string(),
            hostname,
            labels,
            byo_host: registered
                .iter()
                .find(|(host, _, _)| host == id)
                .map(|(_, name, uid)| (name.clone(), uid.clone())),
            claim: claims.iter().find(|c| c.spec.host_id == id).map(|c| {
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
        for (id, _, _) in &registered {
            if !hosts.iter().any(|h| &h.id == id) {
                hosts.push(view(id, None, Default::default()));
            }
        }
        hosts
    }
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
