//! What the agents and the simulated Job controller share.

use kube::core::NamespaceResourceScope;
use kube::{Api, Client, Resource};

use crate::agent::Agents;
use crate::config::SimConfig;
use crate::stores::Stores;
use crate::workload::ControlApi;

pub(crate) struct Context {
    /// The administrator: host-preparation Jobs (as the Job controller) and the hosts'
    /// namespace (as mgmt.sh).
    pub client: Client,
    /// The administrator's configuration, which impersonates each agent's identity.
    pub admin_config: kube::Config,
    pub config: SimConfig,
    pub agents: Agents,
    /// The workload clusters, as kubeadm on the hosts reaches them.
    pub clusters: ControlApi,
    /// What the Job controller and kubelet read: the Secrets and ConfigMaps Jobs mount.
    pub stores: Stores,
}

/// The objects of `K` in `namespace`, or in every namespace.
pub fn typed_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}
