//! When each cluster's status reached each level, as watches see it: the Cluster Ready, its
//! Cluster API objects complete (the first moment the status mapping the O2IMS operator uses
//! says fulfilled of what the watches show), its ProvisioningRequest fulfilled, its row of the
//! FocomProvisioningRequest fulfilled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::capi::observe::{
    ByoMachineView, ClusterView, ControlPlaneView, MachineView, WorkersView,
};
use lcm_core::crd::{FocomProvisioningRequest, ProvisioningRequest, ProvisioningState};
use lcm_core::status::provisioning::{Observed, cluster_progress};

/// First sightings, by cluster name.
#[derive(Default)]
pub struct Timeline {
    pub cluster_ready: HashMap<String, Instant>,
    /// When the watch event came that made the cluster's objects say fulfilled: what an
    /// operator reacting at once would report then.
    pub objects_fulfilled: HashMap<String, Instant>,
    pub request_fulfilled: HashMap<String, Instant>,
    pub focom_fulfilled: HashMap<String, Instant>,
    /// Kinds of Cluster API object seen per cluster: Cluster, control plane, MachineDeployment.
    pub objects: HashMap<String, u8>,
    pub all_objects_at: Option<Instant>,
    /// Each cluster's Cluster API objects as the status mapping reads them (hosts left out: a
    /// host failing to bootstrap keeps a cluster from being fulfilled later, never earlier).
    observed: HashMap<String, Observed>,
    /// Workers a scaled cluster is fulfilled with: until then, what it reports is its old state.
    scaled_to: HashMap<String, usize>,
}

impl Timeline {
    /// Records `object` of `kind` of `cluster`, and whether its objects now say fulfilled.
    fn observe(&mut self, kind: Kind, cluster: &str, object: &serde_json::Value) {
        let observed = self.observed.entry(cluster.to_string()).or_default();
        match kind {
            Kind::Cluster => observed.cluster = Some(ClusterView::from_object(object)),
            Kind::KubeadmControlPlane => {
                observed.control_plane = Some(ControlPlaneView::from_object(object));
            }
            Kind::MachineDeployment => observed.workers = Some(WorkersView::from_object(object)),
            Kind::Machine => {
                let view = MachineView::from_object(object);
                observed.machines.retain(|m| m.name != view.name);
                observed.machines.push(view);
            }
            Kind::ByoMachine => {
                let view = ByoMachineView::from_object(object);
                observed.byo_machines.retain(|m| m.name != view.name);
                observed.byo_machines.push(view);
            }
            _ => return,
        }
        let workers = observed.workers.as_ref().map_or(0, |w| w.desired_replicas);
        if cluster_progress(observed).state == ProvisioningState::Fulfilled
            && workers >= self.scaled_to.get(cluster).map_or(0, |n| *n as i64)
        {
            first(&mut self.objects_fulfilled, cluster.to_string());
        }
    }

    /// `cluster` is scaled to `workers`: its sightings start again.
    pub fn scale(&mut self, cluster: &str, workers: usize) {
        self.scaled_to.insert(cluster.to_string(), workers);
        self.objects_fulfilled.remove(cluster);
        self.request_fulfilled.remove(cluster);
        self.focom_fulfilled.remove(cluster);
    }

    /// Whether `request` says fulfilled of its current spec, with the workers its cluster is
    /// scaled to.
    fn fulfilled(&self, request: &ProvisioningRequest, cluster: &str) -> bool {
        let Some(status) = request.status.as_ref() else {
            return false;
        };
        let workers = request.spec.template_parameters["hosts"]["workers"]
            .as_array()
            .map_or(0, Vec::len);
        status
            .provisioning_status
            .as_ref()
            .is_some_and(|s| s.provisioning_state == ProvisioningState::Fulfilled)
            && status.observed_generation == request.metadata.generation
            && workers >= self.scaled_to.get(cluster).copied().unwrap_or(0)
    }
}

pub type Shared = Arc<Mutex<Timeline>>;

fn first(map: &mut HashMap<String, Instant>, key: String) {
    map.entry(key).or_insert_with(Instant::now);
}

/// Starts the watches; `clusters` is how many clusters the run provisions.
pub fn watch(client: &Client, clusters: usize) -> Shared {
    let timeline = Shared::default();
    for (kind, bit) in [
        (Kind::Cluster, 1u8),
        (Kind::KubeadmControlPlane, 2),
        (Kind::MachineDeployment, 4),
        (Kind::Machine, 0),
        (Kind::ByoMachine, 0),
    ] {
        let api = Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource());
        let timeline = timeline.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(object)) = events.next().await {
                let Some(cluster) = object
                    .labels()
                    .get(lcm_core::capi::CAPI_CLUSTER_NAME_LABEL)
                    .cloned()
                    .or_else(|| (kind == Kind::Cluster).then(|| object.name_any()))
                else {
                    continue;
                };
                let mut t = timeline.lock().expect("timeline");
                t.observe(
                    kind,
                    &cluster,
                    &serde_json::to_value(&object).unwrap_or_default(),
                );
                if bit == 0 {
                    continue;
                }
                let seen = t.objects.entry(cluster.clone()).or_default();
                *seen |= bit;
                if t.all_objects_at.is_none()
                    && t.objects.len() >= clusters
                    && t.objects.values().all(|b| *b == 7)
                {
                    t.all_objects_at = Some(Instant::now());
                }
                let ready = object.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if kind == Kind::Cluster && ready {
                    first(&mut t.cluster_ready, cluster);
                }
            }
        });
    }
    let requests = Api::<ProvisioningRequest>::all(client.clone());
    let t = timeline.clone();
    tokio::spawn(async move {
        let mut events = watcher(requests, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(request)) = events.next().await {
            let Some(cluster) = request.spec.template_parameters["clusterName"].as_str() else {
                continue;
            };
            let mut t = t.lock().expect("timeline");
            if t.fulfilled(&request, cluster) {
                first(&mut t.request_fulfilled, cluster.into());
            }
        }
    });
    let focom = Api::<FocomProvisioningRequest>::all(client.clone());
    let t = timeline.clone();
    tokio::spawn(async move {
        let mut events = watcher(focom, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(request)) = events.next().await {
            let mut t = t.lock().expect("timeline");
            for row in request.status.iter().flat_map(|s| &s.clusters) {
                // After its request: a scaled cluster's row says fulfilled of its old state until
                // FOCOM sees the change.
                let current = !t.scaled_to.contains_key(&row.name)
                    || t.request_fulfilled.contains_key(&row.name);
                if row.state.as_deref() == Some("fulfilled") && current {
                    first(&mut t.focom_fulfilled, row.name.clone());
                }
            }
        }
    });
    timeline
}

/// Every minute until aborted, says on stderr how many of `clusters` are fulfilled: a run at
/// a thousand clusters takes long.
pub fn report_progress(timeline: Shared, clusters: usize) -> tokio::task::JoinHandle<()> {
    let started = Instant::now();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let fulfilled = timeline.lock().expect("timeline").request_fulfilled.len();
            let minutes = started.elapsed().as_secs() / 60;
            eprintln!(
                "lcm-bench: {fulfilled} of {clusters} requests fulfilled after {minutes} min"
            );
        }
    })
}

/// The delays from `from` to `to` per cluster, in seconds, sorted.
pub fn delays(from: &HashMap<String, Instant>, to: &HashMap<String, Instant>) -> Vec<f64> {
    let mut delays: Vec<f64> = from
        .iter()
        .filter_map(|(cluster, start)| {
            let end = to.get(cluster)?;
            Some(end.saturating_duration_since(*start).as_secs_f64())
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    delays
}

/// The `q` quantile of sorted `values` (0 when empty).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index]
}
