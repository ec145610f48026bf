//! What the operator knows of the world: reflector stores fed by the same watches that trigger
//! reconciles (the controller-rs / linkerd policy-controller shape). Each reconcile copies what
//! it needs of them once, into its `snapshot`, and decides from that; a reconcile of an
//! unchanged world makes no request to the API server for them.

use std::sync::Arc;

use futures::Stream;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use lcm_core::capi::Kind;
use lcm_core::capi::read::keep_read;
use lcm_core::crd::{HostClaim, ProvisioningRequest};
use lcm_core::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};
use operator_kit::keyed::{KeyOf, Keyed};

/// The Cluster API kinds the index holds.
const WATCHED: [Kind; 6] = [
    Kind::Cluster,
    Kind::KubeadmControlPlane,
    Kind::MachineDeployment,
    Kind::Machine,
    Kind::ByoMachine,
    Kind::ByoHost,
];

/// The watched objects, each kind in its own store. A reconcile reads its own cluster's
/// objects by key (see [`key_of`]), so what it costs does not grow with the fleet.
#[derive(Clone)]
pub struct Index {
    pub requests: Store<ProvisioningRequest>,
    pub claims: Store<HostClaim>,
    pub clusters: Keyed,
    pub control_planes: Keyed,
    pub machine_deployments: Keyed,
    pub machines: Keyed,
    pub byo_machines: Keyed,
    pub byo_hosts: Keyed,
    /// The ConfigMaps of the operator's namespace, among them the Calico manifest and the host
    /// inventory (read once per change of theirs, not per reconcile).
    pub config_maps: Store<ConfigMap>,
    /// With ArgoCD registration: the metadata of Cluster API's Secrets (which kubeconfig
    /// exists, at which resourceVersion) and of the ArgoCD cluster Secrets this operator made.
    /// Metadata only: no credentials are held in memory.
    pub cluster_secrets: Store<PartialObjectMeta<Secret>>,
    pub registrations: Store<PartialObjectMeta<Secret>>,
    /// With Config Sync of a private repository: its credentials Secret.
    pub git_credentials: Store<Secret>,
    /// Whether every store has listed: reconcile waits for it, as an empty store would show a
    /// running cluster as a new one.
    pub ready: operator_kit::watch::Listed,
}

impl Index {
    /// The `kind` object `name` in `namespace`.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<DynamicObject> {
        let store = self.store(kind)?;
        let key = ObjectRef::new_with(name, kind.api_resource()).within(namespace);
        store.get(&key).map(|o| o.as_ref().clone())
    }

    /// The `kind` objects of `namespace` that `keep` selects, for the kinds kept by namespace
    /// (Machines, ByoMachines; see [`key_of`]): none of any other kind.
    pub fn in_namespace(
        &self,
        kind: Kind,
        namespace: &str,
        keep: impl Fn(&DynamicObject) -> bool,
    ) -> Vec<DynamicObject> {
        if !BY_NAMESPACE.contains(&kind) {
            return Vec::new();
        }
        self.keyed(kind)
            .map(|keyed| {
                keyed
                    .with_key(namespace)
                    .iter()
                    .filter(|o| keep(o))
                    .map(|o| o.as_ref().clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `object` as the index has it, when its kind is watched.
    pub fn cached(&self, object: &serde_json::Value) -> Option<serde_json::Value> {
        let kind = WATCHED
            .into_iter()
            .find(|k| object["kind"] == k.name() && object["apiVersion"] == k.api_version())?;
        let metadata = &object["metadata"];
        let namespace = metadata["namespace"].as_str()?;
        let cached = self.get(kind, namespace, metadata["name"].as_str()?)?;
        serde_json::to_value(cached).ok()
    }

    /// The ConfigMap `name` of the operator's namespace.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Arc<ConfigMap>> {
        self.config_maps
            .get(&ObjectRef::new(name).within(namespace))
    }

    /// The metadata of the Secret `name` in `namespace` of `store` (a metadata store).
    pub fn secret_meta(
        store: &Store<PartialObjectMeta<Secret>>,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<PartialObjectMeta<Secret>>> {
        store.get(&ObjectRef::new(name).within(namespace))
    }

    fn store(&self, kind: Kind) -> Option<&Store<DynamicObject>> {
        self.keyed(kind).map(Keyed::store)
    }

    fn keyed(&self, kind: Kind) -> Option<&Keyed> {
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

/// The kinds found by namespace: a cluster's own namespace holds its machines.
const BY_NAMESPACE: [Kind; 2] = [Kind::Machine, Kind::ByoMachine];

/// What each kind's objects are found by, besides their name: Machines and ByoMachines by
/// namespace (a cluster's own), Clusters by the request they were made for, ByoHosts by host id.
fn key_of(kind: Kind) -> Option<KeyOf> {
    match kind {
        _ if BY_NAMESPACE.contains(&kind) => Some(by_namespace),
        Kind::Cluster => Some(|o| o.labels().get(PROVISIONING_REQUEST_LABEL).cloned()),
        Kind::ByoHost => Some(|o| o.labels().get(HOST_ID_LABEL).cloned()),
        _ => None,
    }
}

fn by_namespace(object: &DynamicObject) -> Option<String> {
    object.namespace()
}

/// A watch of the `kind` objects carrying `label`, into a new store kept by [`key_of`]; the
/// stream yields each object whose read fields changed, for the controller. Only what is read
/// is kept ([`lcm_core::capi::read`]).
pub fn watch(
    client: &Client,
    kind: Kind,
    label: &str,
) -> (
    Keyed,
    impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static,
) {
    operator_kit::keyed::store(
        client,
        &kind.api_resource(),
        watcher::Config::default().labels(label),
        key_of(kind).unwrap_or(|_| None),
        move |object| keep_read(kind, object),
    )
}

#[cfg(test)]
mod tests;
