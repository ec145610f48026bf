//! Reads what exists: the cluster's Cluster API objects and the ByoHosts (from the index), and
//! a request's Jobs and bootstrap kubeconfigs (from the API server).

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, Resource, ResourceExt};

use lcm_core::crd::ProvisioningRequest;
use serde_json::Value;

use lcm_core::capi::CAPI_CLUSTER_NAME_LABEL;
use lcm_core::capi::Kind;
use lcm_core::capi::observe::{
    ByoHostView, ByoMachineView, ClusterView, ControlPlaneView, MachineView, WorkersView,
};
use lcm_core::status::provisioning::Observed;
use lcm_core::{PROVISIONING_REQUEST_LABEL, provisioning_request_selector};

use crate::error::Result;
use crate::index::Index;
use crate::reconcile::Hosts;

fn namespaced(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

fn json(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

async fn get(client: &Client, namespace: &str, kind: Kind, name: &str) -> Result<Option<Value>> {
    Ok(namespaced(client, namespace, kind)
        .get_opt(name)
        .await?
        .map(json))
}

/// The Cluster created for `request`, wherever it is: labelled for it and controlled by it (a
/// label alone anyone could set).
pub fn request_cluster(index: &Index, request: &ProvisioningRequest) -> Option<Value> {
    let label = lcm_core::names::label_value(&request.name_any());
    index
        .clusters
        .state()
        .iter()
        .find(|cluster| {
            cluster.labels().get(PROVISIONING_REQUEST_LABEL) == Some(&label)
                && controlled_by(cluster.as_ref(), request)
        })
        .map(|cluster| json(cluster.as_ref().clone()))
}

/// Whether `request` is the controller owner of `object`.
pub fn controlled_by(object: &impl Resource, request: &ProvisioningRequest) -> bool {
    let uid = request.uid();
    object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
}

/// Everything the status mapping reads of the cluster `name` in `namespace`, with those of
/// `hosts` it claimed.
pub fn cluster_objects(index: &Index, namespace: &str, name: &str, hosts: &Hosts) -> Observed {
    let get = |kind, name: &str| index.get(kind, namespace, name).map(json);
    let of_cluster = |kind| {
        index
            .list(kind, namespace, |o| {
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
pub fn byo_hosts(index: &Index, wanted: &BTreeSet<String>) -> (Hosts, Ambiguous) {
    let state = index.byo_hosts.state();
    let of_wanted = state.iter().filter(|h| {
        h.labels()
            .get(lcm_core::HOST_ID_LABEL)
            .is_some_and(|id| wanted.contains(id))
    });
    index_hosts(of_wanted.map(|h| json(h.as_ref().clone())))
}

/// The host ids a request may read: those its spec names (even if it does not validate), those
/// its running cluster was applied with, and those it holds in the ledger.
pub fn hosts_of_request(
    request: &ProvisioningRequest,
    applied: Option<&lcm_core::template::ClusterParameters>,
    held: Vec<String>,
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

/// Host id -> the ByoHosts (`namespace/name`) registered under it, where there are several.
pub type Ambiguous = BTreeMap<String, Vec<String>>;

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
pub fn machine_on_host(index: &Index, host: &Value) -> Option<(String, String)> {
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

/// A BootstrapKubeconfig (of a host-preparation Job) in the operator's namespace.
pub async fn bootstrap_kubeconfig(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>> {
    get(client, namespace, Kind::BootstrapKubeconfig, name).await
}

pub async fn delete_bootstrap_kubeconfig(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<()> {
    match namespaced(client, namespace, Kind::BootstrapKubeconfig)
        .delete(name, &Default::default())
        .await
    {
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// The host-preparation Jobs of a request, in the operator's namespace.
pub async fn jobs(client: &Client, namespace: &str, request_name: &str) -> Result<Vec<Value>> {
    let api: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels(&provisioning_request_selector(request_name));
    let jobs = api.list(&selector).await?.items;
    Ok(jobs
        .into_iter()
        .map(|job| serde_json::to_value(job).unwrap_or_default())
        .collect())
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
}
