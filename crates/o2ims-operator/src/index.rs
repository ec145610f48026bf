//! What the operator knows of the world: reflector stores fed by the same watches that trigger
//! reconciles (the controller-rs / linkerd policy-controller shape). Reconcile reads them; a
//! reconcile of an unchanged world makes no request to the API server for them.

use futures::Stream;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use lcm_core::capi::Kind;
use lcm_core::crd::{HostClaim, ProvisioningRequest};

/// The watched objects, each kind in its own store.
#[derive(Clone)]
pub struct Index {
    pub requests: Store<ProvisioningRequest>,
    pub claims: Store<HostClaim>,
    pub clusters: Store<DynamicObject>,
    pub control_planes: Store<DynamicObject>,
    pub machine_deployments: Store<DynamicObject>,
    pub machines: Store<DynamicObject>,
    pub byo_machines: Store<DynamicObject>,
    pub byo_hosts: Store<DynamicObject>,
}

impl Index {
    /// Waits until every store holds its first complete listing: a reconcile that read an
    /// empty store would take a running cluster for a new one.
    pub async fn ready(&self) {
        let waits = [
            self.clusters.wait_until_ready(),
            self.control_planes.wait_until_ready(),
            self.machine_deployments.wait_until_ready(),
            self.machines.wait_until_ready(),
            self.byo_machines.wait_until_ready(),
            self.byo_hosts.wait_until_ready(),
        ];
        for wait in waits {
            // Dropped writers mean the operator is shutting down; reconciles stop anyway.
            let _ = wait.await;
        }
        let _ = self.claims.wait_until_ready().await;
    }

    /// The `kind` object `name` in `namespace`.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<DynamicObject> {
        let store = self.store(kind)?;
        let key = ObjectRef::new_with(name, kind.api_resource()).within(namespace);
        store.get(&key).map(|o| o.as_ref().clone())
    }

    /// The `kind` objects of `namespace` that `keep` selects.
    pub fn list(
        &self,
        kind: Kind,
        namespace: &str,
        keep: impl Fn(&DynamicObject) -> bool,
    ) -> Vec<DynamicObject> {
        self.store(kind)
            .map(|store| {
                store
                    .state()
                    .iter()
                    .filter(|o| o.namespace().as_deref() == Some(namespace) && keep(o))
                    .map(|o| o.as_ref().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn store(&self, kind: Kind) -> Option<&Store<DynamicObject>> {
        Some(match kind {
            Kind::Cluster => &self.clusters,
            Kind::KubeadmControlPlane => &self.control_planes,
            Kind::MachineDeployment => &self.machine_deployments,
            Kind::Machine => &self.machines,
            Kind::ByoMachine => &self.byo_machines,
            Kind::ByoHost => &self.byo_hosts,
            _ => return None,
        })
    }
}

/// A watch of the `kind` objects carrying `label`, into a new store; the stream yields each
/// changed object for the controller. Only what is read is kept: managed fields are dropped.
pub fn watch(
    client: &Client,
    kind: Kind,
    label: &str,
) -> (
    Store<DynamicObject>,
    impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
) {
    let resource = kind.api_resource();
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let events = watcher(api, watcher::Config::default().labels(label))
        .modify(|object| object.managed_fields_mut().clear());
    let stream = reflector(writer, events)
        .default_backoff()
        .touched_objects();
    (store, stream)
}

/// A watch of a typed kind into a new store, as [`watch`] does.
pub fn watch_typed<K>(
    api: Api<K>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let events = watcher(api, watcher::Config::default())
        .modify(|object| object.managed_fields_mut().clear());
    let stream = reflector(writer, events)
        .default_backoff()
        .touched_objects();
    (store, stream)
}
