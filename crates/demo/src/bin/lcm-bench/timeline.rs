//! When each cluster's status reached each level, as watches see it: the Cluster Ready, its
//! ProvisioningRequest fulfilled, its row of the FocomProvisioningRequest fulfilled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{FocomProvisioningRequest, ProvisioningRequest, ProvisioningState};

/// First sightings, by cluster name.
#[derive(Default)]
pub struct Timeline {
    pub cluster_ready: HashMap<String, Instant>,
    pub request_fulfilled: HashMap<String, Instant>,
    pub focom_fulfilled: HashMap<String, Instant>,
    /// Kinds of Cluster API object seen per cluster: Cluster, control plane, MachineDeployment.
    pub objects: HashMap<String, u8>,
    pub all_objects_at: Option<Instant>,
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
            let fulfilled = request
                .status
                .as_ref()
                .and_then(|s| s.provisioning_status.as_ref())
                .is_some_and(|s| s.provisioning_state == ProvisioningState::Fulfilled);
            if let (true, Some(cluster)) = (
                fulfilled,
                request.spec.template_parameters["clusterName"].as_str(),
            ) {
                first(
                    &mut t.lock().expect("timeline").request_fulfilled,
                    cluster.into(),
                );
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
                if row.state.as_deref() == Some("fulfilled") {
                    first(&mut t.focom_fulfilled, row.name.clone());
                }
            }
        }
    });
    timeline
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
