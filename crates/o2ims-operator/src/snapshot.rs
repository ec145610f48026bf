//! One read of the index for a request, taken once at the start of its reconcile: every step
//! decides from this snapshot, so a pass sees one world while the watches move on, and copies
//! out only the request's own objects and hosts (plus the requests and the host ledger, which
//! decide who comes first for a host).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use lcm_core::capi::observe::{
    ByoHostView, ByoMachineView, ClusterView, ControlPlaneView, MachineView, WorkersView,
};
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use lcm_core::crd::{HostClaim, ProvisioningRequest, host_claim_name};
use lcm_core::handoff::argocd;
use lcm_core::status::provisioning::Observed;
use lcm_core::template::{ClusterParameters, cluster_namespace};
use lcm_core::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};

use crate::config::{Config, HOST_INVENTORY_KEY};
use crate::index::Index;

/// Registered hosts by host id: what the status mapping reads of each ByoHost, and the object.
pub type Hosts = BTreeMap<String, (ByoHostView, Value)>;

/// Host id -> the ByoHosts (`namespace/name`) registered under it, where there are several.
pub type Ambiguous = BTreeMap<String, Vec<String>>;

/// What the index showed of one request's world.
#[derive(Default)]
pub struct Snapshot {
    /// The Cluster made for the request, and the parameters it was last applied from.
    pub cluster: Option<Value>,
    pub applied: Option<ClusterParameters>,
    /// The registered hosts the request may read: named in its spec, applied or held.
    pub hosts: Hosts,
    /// Host ids among those that several ByoHosts claim (left out of `hosts`).
    pub ambiguous: Ambiguous,
    /// The cluster's Cluster API objects, as the status mapping reads them.
    pub observed: Observed,
    /// The live KubeadmControlPlane, whose bootstrap a pass keeps.
    pub control_plane: Option<Value>,
    /// The Machine (namespace, name) that runs on each of `hosts`, where one does.
    pub machines: BTreeMap<String, (String, String)>,
    /// Every ProvisioningRequest, and the host ledger by claim name.
    pub requests: Vec<Arc<ProvisioningRequest>>,
    pub claims: BTreeMap<String, Arc<HostClaim>>,
    /// The admin's ConfigMaps of the Calico manifest and of the host inventory (shared with
    /// the index, not copied: at a thousand clusters the inventory is hundreds of KiB).
    pub calico: Option<Arc<ConfigMap>>,
    pub inventory: Option<Arc<ConfigMap>>,
    pub handoff: HandoffSecrets,
}

/// What the hand-offs read: metadata only, no credentials but the Config Sync repository's.
#[derive(Default)]
pub struct HandoffSecrets {
    /// The cluster's registration in ArgoCD, and Cluster API's kubeconfig Secret of it.
    pub registration: Option<Arc<PartialObjectMeta<Secret>>>,
    pub kubeconfig: Option<Arc<PartialObjectMeta<Secret>>>,
    /// The Config Sync repository's credentials.
    pub git_credentials: Option<Arc<Secret>>,
}

impl Snapshot {
    /// The Calico manifest of the admin's ConfigMap.
    pub fn calico_manifest(&self) -> Option<&str> {
        data(self.calico.as_deref()?, "calico.yaml")
    }

    /// The host inventory's text; `None` when its ConfigMap does not exist.
    pub fn host_inventory(&self) -> Option<&str> {
        Some(data(self.inventory.as_deref()?, HOST_INVENTORY_KEY).unwrap_or_default())
    }

    /// Reads what `index` holds of `request`'s world.
    pub fn take(index: &Index, config: &Config, request: &ProvisioningRequest) -> Self {
        let cluster = request_cluster(index, request);
        let applied = cluster
            .as_ref()
            .and_then(lcm_core::capi::applied_parameters);
        let claims: BTreeMap<String, Arc<HostClaim>> = index
            .claims
            .state()
            .into_iter()
            .map(|c| (c.name_any(), c))
            .collect();
        let uid = request.uid().unwrap_or_default();
        let held = claims.values().filter(|c| c.held_by(&uid));
        let held = held.map(|c| c.spec.host_id.clone());
        let wanted = hosts_of_request(request, applied.as_ref(), held);
        let (hosts, ambiguous) = byo_hosts(index, &wanted);
        let (namespace, name) = location(cluster.as_ref(), request);
        Self {
            observed: cluster_objects(index, &namespace, &name, &hosts),
            control_plane: index
                .get(
                    Kind::KubeadmControlPlane,
                    &namespace,
                    &format!("{name}-control-plane"),
                )
                .map(json),
            machines: hosts
                .iter()
                .filter_map(|(id, (_, host))| Some((id.clone(), machine_on_host(index, host)?)))
                .collect(),
            calico: index.config_map(config.namespace(), &config.calico_manifest_configmap),
            inventory: index.config_map(config.namespace(), &config.host_inventory_configmap),
            handoff: handoff_secrets(index, config, &namespace, &name),
            requests: index.requests.state(),
            cluster,
            applied,
            hosts,
            ambiguous,
            claims,
        }
    }

    /// The claims `request` holds.
    pub fn claims_of<'a>(
        &'a self,
        request: &ProvisioningRequest,
    ) -> impl Iterator<Item = &'a Arc<HostClaim>> + 'a {
        let uid = request.uid().unwrap_or_default();
        self.claims.values().filter(move |c| c.held_by(&uid))
    }

    /// Whether `host` has a HostClaim: then the ledger, not the cache, says who holds it.
    pub fn in_ledger(&self, host: &str) -> bool {
        self.claims.contains_key(&host_claim_name(host))
    }
}

/// Whether `request` is the controller owner of `object`.
pub fn controlled_by(object: &impl Resource, request: &ProvisioningRequest) -> bool {
    let uid = request.uid();
    object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

fn json(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

/// The Cluster created for `request`, wherever it is: labelled for it and controlled by it (a
/// label alone anyone could set).
fn request_cluster(index: &Index, request: &ProvisioningRequest) -> Option<Value> {
    let label = lcm_core::names::label_value(&request.name_any());
    index
        .clusters
        .with_key(&label)
        .iter()
        .find(|cluster| {
            cluster.labels().get(PROVISIONING_REQUEST_LABEL) == Some(&label)
                && controlled_by(cluster.as_ref(), request)
        })
        .map(|cluster| json(cluster.as_ref().clone()))
}

/// The namespace and name of the request's cluster: its Cluster's, or, before there is one,
/// those its spec asks for.
fn location(cluster: Option<&Value>, request: &ProvisioningRequest) -> (String, String) {
    let field = |name: &str| cluster.and_then(|c| c["metadata"][name].as_str());
    match (field("namespace"), field("name")) {
        (Some(namespace), Some(name)) => (namespace.to_string(), name.to_string()),
        _ => {
            let spec = request.spec.template_parameters["clusterName"].as_str();
            let name = spec.unwrap_or_default();
            (cluster_namespace(name), name.to_string())
        }
    }
}

/// Everything the status mapping reads of the cluster `name` in `namespace`, with those of
/// `hosts` it claimed.
fn cluster_objects(index: &Index, namespace: &str, name: &str, hosts: &Hosts) -> Observed {
    let get = |kind, name: &str| index.get(kind, namespace, name).map(json);
    let of_cluster = |kind| {
        index
            .in_namespace(kind, namespace, |o| {
                o.labels().get(CAPI_CLUSTER_NAME_LABEL).map(String::as_str) == Some(name)
            })
            .into_iter()
            .map(json)
            .collect::<Vec<_>>()
    };
    Observed {
        cluster: get(Kind::Cluster, name)
            .as_ref()
            .map(ClusterView::from_object),
        control_plane: get(Kind::KubeadmControlPlane, &format!("{name}-control-plane"))
            .as_ref()
            .map(ControlPlaneView::from_object),
        workers: get(Kind::MachineDeployment, &format!("{name}-md-0"))
            .as_ref()
            .map(WorkersView::from_object),
        machines: of_cluster(Kind::Machine)
            .iter()
            .map(MachineView::from_object)
            .collect(),
        byo_machines: of_cluster(Kind::ByoMachine)
            .iter()
            .map(ByoMachineView::from_object)
            .collect(),
        hosts: hosts
            .values()
            .map(|(view, _)| view)
            .filter(|view| view.claimed_by_cluster(namespace, name))
            .cloned()
            .collect(),
    }
}

/// The registered hosts among `wanted`, by host id, and those of them more than one ByoHost
/// claims. Only the wanted hosts are copied out of the index: a reconcile costs its own hosts,
/// not the fleet's.
fn byo_hosts(index: &Index, wanted: &BTreeSet<String>) -> (Hosts, Ambiguous) {
    let of_wanted = wanted.iter().flat_map(|id| {
        let found = index.byo_hosts.with_key(id);
        found
            .into_iter()
            .filter(move |h| h.labels().get(HOST_ID_LABEL) == Some(id))
    });
    index_hosts(of_wanted.map(|h| json(h.as_ref().clone())))
}

/// The host ids a request may read: those its spec names (even if it does not validate), those
/// its running cluster was applied with, and those it holds in the ledger.
fn hosts_of_request(
    request: &ProvisioningRequest,
    applied: Option<&ClusterParameters>,
    held: impl Iterator<Item = String>,
) -> BTreeSet<String> {
    let named = &request.spec.template_parameters["hosts"];
    let in_spec = ["controlPlane", "workers"]
        .iter()
        .flat_map(|role| named[role].as_array().into_iter().flatten())
        .filter_map(|h| h.as_str().map(String::from));
    in_spec
        .chain(applied.into_iter().flat_map(|a| a.all_hosts().cloned()))
        .chain(held)
        .collect()
}

/// ByoHosts by host id. The `host-id` label is the host's own claim: a host id two ByoHosts
/// claim is left out of the index (never pinned, never counted as registered) and reported.
fn index_hosts(objects: impl Iterator<Item = Value>) -> (Hosts, Ambiguous) {
    let mut by_id: BTreeMap<String, Vec<(ByoHostView, Value)>> = BTreeMap::new();
    for object in objects {
        let view = ByoHostView::from_object(&object);
        if let Some(id) = view.host_id.clone() {
            by_id.entry(id).or_default().push((view, object));
        }
    }
    let mut hosts = Hosts::new();
    let mut ambiguous = Ambiguous::new();
    for (id, mut claims) in by_id {
        if claims.len() == 1 {
            hosts.insert(id, claims.remove(0));
        } else {
            let names = claims
                .iter()
                .map(|(_, o)| {
                    format!(
                        "{}/{}",
                        o["metadata"]["namespace"].as_str().unwrap_or_default(),
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            ambiguous.insert(id, names);
        }
    }
    (hosts, ambiguous)
}

/// The Machine that holds the ByoHost `host` (ByoHost -> ByoMachine -> owning Machine).
fn machine_on_host(index: &Index, host: &Value) -> Option<(String, String)> {
    let reference = &host["status"]["machineRef"];
    let (namespace, name) = (
        reference["namespace"].as_str()?,
        reference["name"].as_str()?,
    );
    let byo_machine = index.get(Kind::ByoMachine, namespace, name)?;
    let machine = byo_machine
        .owner_references()
        .iter()
        .find(|o| o.kind == "Machine")
        .map(|o| o.name.clone())?;
    Some((namespace.to_string(), machine))
}

fn handoff_secrets(index: &Index, config: &Config, namespace: &str, name: &str) -> HandoffSecrets {
    let handoff = &config.handoff;
    HandoffSecrets {
        registration: handoff.argocd_namespace.as_ref().and_then(|argocd| {
            Index::secret_meta(&index.registrations, argocd, &argocd::secret_name(name))
        }),
        kubeconfig: Index::secret_meta(
            &index.cluster_secrets,
            namespace,
            &argocd::kubeconfig_secret_name(name),
        ),
        git_credentials: handoff.config_sync_secret.as_ref().and_then(|secret| {
            let key = ObjectRef::new(secret).within(config.namespace());
            index.git_credentials.get(&key)
        }),
    }
}

fn data<'a>(config_map: &'a ConfigMap, key: &str) -> Option<&'a str> {
    config_map.data.as_ref()?.get(key).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(name: &str, id: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "byoh-hosts", "labels": {"host-id": id}}})
    }

    #[test]
    fn a_host_id_two_byohosts_claim_is_ambiguous_and_not_indexed() {
        let (hosts, ambiguous) =
            index_hosts([host("a", "h1"), host("b", "h2"), host("c", "h2")].into_iter());
        assert_eq!(hosts.keys().collect::<Vec<_>>(), ["h1"]);
        assert_eq!(
            ambiguous,
            Ambiguous::from([(
                "h2".into(),
                vec!["byoh-hosts/b".into(), "byoh-hosts/c".into()]
            )])
        );
    }

    #[test]
    fn a_request_reads_the_hosts_its_spec_names_even_invalid_its_cluster_runs_and_it_holds() {
        let mut request = ProvisioningRequest::new("r", Default::default());
        request.spec.template_parameters =
            json!({"hosts": {"controlPlane": ["h1", 7], "workers": ["h2"]}});
        let applied = lcm_core::template::validate(&json!({
            "clusterName": "c", "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": "10.0.0.1"},
            "hosts": {"controlPlane": ["h1"], "workers": ["h3"]},
        }))
        .expect("valid");
        let read = hosts_of_request(&request, Some(&applied), ["h4".to_string()].into_iter());
        assert_eq!(
            read.into_iter().collect::<Vec<_>>(),
            ["h1", "h2", "h3", "h4"]
        );
    }

    #[test]
    fn before_its_cluster_exists_a_request_is_located_by_its_spec() {
        let mut request = ProvisioningRequest::new("r", Default::default());
        request.spec.template_parameters = json!({"clusterName": "edge"});
        assert_eq!(
            location(None, &request),
            ("cluster-edge".to_string(), "edge".to_string())
        );
        let cluster = json!({"metadata": {"namespace": "cluster-core", "name": "core"}});
        assert_eq!(
            location(Some(&cluster), &request),
            ("cluster-core".to_string(), "core".to_string())
        );
    }
}
