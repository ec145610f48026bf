use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Parameters of the `byoh-workload-cluster` template: one workload cluster on
/// named bare-metal hosts.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterParameters {
    /// Name of the workload cluster (a DNS label of at most 40 characters).
    pub cluster_name: String,
    /// Kubernetes version with the `v` prefix, for example `v1.33.5`.
    pub kubernetes_version: String,
    /// The free virtual IP (and port) the control plane is reached on; kube-vip serves it.
    pub control_plane_endpoint: Endpoint,
    /// Host ids (the ByoHosts' `host-id` label) in each role.
    pub hosts: HostRoles,
    /// Pod and service networks of the cluster.
    #[serde(default)]
    pub network: Network,
    /// CNI installed into the cluster.
    #[serde(default)]
    pub cni: Cni,
    /// Whether hosts without a registered ByoHost are prepared by the Ansible playbook first.
    #[serde(default)]
    pub host_preparation: HostPreparation,
    /// How to reach each host over SSH, for host preparation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_access: Vec<HostAccess>,
    /// Labels of the cluster (its `site`, `role`, ...), copied onto where it is handed to once
    /// fulfilled (ArgoCD's cluster Secret): what GitOps tools route workloads by. They may
    /// change at any time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// What the cluster is handed to once fulfilled, where the O-Cloud's admin enabled it.
    #[serde(default, skip_serializing_if = "Handoff::is_default")]
    pub handoff: Handoff,
}

/// A cluster's choices among the hand-offs the admin enabled (each may change at any time).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Handoff {
    /// Register the cluster in ArgoCD (`false` opts it out).
    #[serde(default = "yes")]
    pub argocd: bool,
    /// Let Rancher Turtles import the cluster (`false` opts it out).
    #[serde(default = "yes")]
    pub rancher: bool,
    /// Directory of this cluster's configuration in the Config Sync repository, relative to
    /// its root (default: `gitops/<site>-config` with a `site` label, else
    /// `gitops/<clusterName>-config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::RELATIVE_PATH))]
    pub config_sync_directory: Option<String>,
}

impl Default for Handoff {
    fn default() -> Self {
        Self {
            argocd: true,
            rancher: true,
            config_sync_directory: None,
        }
    }
}

impl Handoff {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn yes() -> bool {
    true
}

/// Control-plane endpoint.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// IP address of the endpoint.
    pub host: String,
    /// TCP port of the endpoint.
    #[serde(default = "default_port")]
    pub port: i32,
}

fn default_port() -> i32 {
    6443
}

/// Hosts per role.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostRoles {
    /// Control-plane host ids; an odd number (stacked etcd needs a majority).
    pub control_plane: Vec<String>,
    /// Worker host ids.
    #[serde(default)]
    pub workers: Vec<String>,
}

/// Cluster networks.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Pod network CIDRs.
    #[serde(rename = "podCIDRs", default = "default_pod_cidrs")]
    pub pod_cidrs: Vec<String>,
    /// Service network CIDRs.
    #[serde(rename = "serviceCIDRs", default = "default_service_cidrs")]
    pub service_cidrs: Vec<String>,
    /// DNS domain of services.
    #[serde(default = "default_service_domain")]
    pub service_domain: String,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            pod_cidrs: default_pod_cidrs(),
            service_cidrs: default_service_cidrs(),
            service_domain: default_service_domain(),
        }
    }
}

fn default_pod_cidrs() -> Vec<String> {
    vec!["192.168.0.0/16".into()]
}

fn default_service_cidrs() -> Vec<String> {
    vec!["10.128.0.0/12".into()]
}

fn default_service_domain() -> String {
    "cluster.local".into()
}

/// The CNI of the workload cluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    /// Calico, applied by a ClusterResourceSet.
    #[default]
    Calico,
    /// No CNI: nodes stay NotReady until one is installed by other means.
    None,
}

/// Host preparation policy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HostPreparation {
    /// Prepare hosts that have no registered ByoHost with the Ansible playbook.
    Auto,
    /// Hosts are prepared and registered already.
    #[default]
    Skip,
}

// The schema's patterns let a TemplateInfo refuse what `validate` refuses (the address only by
// its characters: exact IP syntax is left to the validation).
/// SSH access to one host.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostAccess {
    /// Host id (the value of the ByoHost's `host-id` label).
    #[schemars(regex(pattern = patterns::LABEL_VALUE))]
    pub id: String,
    /// Hostname the host registers its ByoHost under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::DNS_LABEL))]
    pub hostname: Option<String>,
    /// IP address or DNS name Ansible connects to.
    #[schemars(regex(pattern = patterns::ADDRESS))]
    pub address: String,
    /// SSH user Ansible connects as.
    #[schemars(regex(pattern = patterns::USER_NAME))]
    pub ssh_user: String,
    /// The host's SSH public host keys (`<type> <base64>`): SSH verifies the host against them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = patterns::PUBLIC_KEY)))]
    pub ssh_host_keys: Vec<String>,
}

/// JSON Schema patterns of the typed [`HostAccess`] fields.
mod patterns {
    pub const LABEL_VALUE: &str = "^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$";
    pub const DNS_LABEL: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
    pub const ADDRESS: &str = "^[A-Za-z0-9.:-]{1,253}$";
    pub const USER_NAME: &str = "^[a-z_][a-z0-9_-]{0,31}$";
    pub const RELATIVE_PATH: &str = "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$";
    pub const PUBLIC_KEY: &str =
        "^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]{16,}$";
}

impl ClusterParameters {
    /// Every host of the cluster, control plane first.
    pub fn all_hosts(&self) -> impl Iterator<Item = &String> {
        self.hosts.control_plane.iter().chain(&self.hosts.workers)
    }

    /// Namespace of the management cluster holding this cluster's Cluster API objects.
    pub fn namespace(&self) -> String {
        cluster_namespace(&self.cluster_name)
    }
}

/// Namespace of the management cluster holding the Cluster API objects of cluster `name`.
pub fn cluster_namespace(name: &str) -> String {
    format!("cluster-{name}")
}
