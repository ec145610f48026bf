//! The inventory (`input.json`): the hosts an O-Cloud has and the clusters the
//! SMO wants on them. The FOCOM operator turns each cluster into
//! `byoh-workload-cluster` template parameters.

use std::collections::{BTreeMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::handoff::SITE_LABEL;
use crate::template::validate::{host_access_problems, is_user_name, label_problems};
use crate::template::{
    ClusterParameters, Cni, Endpoint, Handoff, HostAccess, HostPreparation, HostRoles, Network,
};

/// The whole inventory file.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inventory {
    /// Values a cluster or host takes when it does not set its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The bare-metal hosts.
    pub hosts: Vec<Host>,
    /// The clusters to build on them.
    pub clusters: Vec<Cluster>,
    /// The O-Cloud's sites (a host's `site` label names its site), optional: what the O2ims
    /// inventory tells of each site beyond its name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<Site>,
    /// Where the sites are, optional: a site without a location is a location of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
}

/// A site of the O-Cloud (an O2ims O-Cloud Site; its hosts are its resource pool).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    /// The value of its hosts' `site` label.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The location it is at (`locations[].globalLocationId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_location_id: Option<String>,
}

/// A location where sites are, as the SMO names it (an O2ims Location).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    /// The SMO's id of the location.
    pub global_location_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A human-readable address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `[longitude, latitude]` or `[longitude, latitude, altitude]` (RFC 7946).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Vec<f64>>,
}

/// Inventory-wide defaults.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    #[serde(default = "default_ssh_user")]
    pub ssh_user: String,
    #[serde(default = "default_port")]
    pub control_plane_port: i32,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub cni: Cni,
    #[serde(default = "default_host_preparation")]
    pub host_preparation: HostPreparation,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            kubernetes_version: default_kubernetes_version(),
            ssh_user: default_ssh_user(),
            control_plane_port: default_port(),
            network: Network::default(),
            cni: Cni::default(),
            host_preparation: default_host_preparation(),
        }
    }
}

fn default_kubernetes_version() -> String {
    "v1.33.5".into()
}
fn default_ssh_user() -> String {
    "ubuntu".into()
}
fn default_port() -> i32 {
    6443
}
fn default_host_preparation() -> HostPreparation {
    HostPreparation::Auto
}

/// One bare-metal host.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    /// Host id: the value of the ByoHost's `host-id` label.
    pub id: String,
    /// Hostname (the ByoHost's name).
    pub hostname: String,
    /// Address Ansible connects to.
    pub address: String,
    /// SSH user; defaults to `defaults.sshUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_user: Option<String>,
    /// SSH public host keys (`<type> <base64>`, as `ssh-keyscan` prints them): host preparation
    /// connects only to a host that proves it holds one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_keys: Vec<String>,
    /// Free-form labels describing the host (rack, site, hardware).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One cluster definition.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// A free IP on the hosts' network for the control-plane VIP.
    pub control_plane_endpoint: String,
    pub control_plane_hosts: Vec<String>,
    #[serde(default)]
    pub worker_hosts: Vec<String>,
    #[serde(rename = "podCIDRs", default, skip_serializing_if = "Option::is_none")]
    pub pod_cidrs: Option<Vec<String>>,
    #[serde(
        rename = "serviceCIDRs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidrs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<Cni>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_preparation: Option<HostPreparation>,
    /// Labels of the cluster (`site`, `role`, ...) that GitOps tools route workloads by; `site`
    /// defaults to the `site` label all its hosts share.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Opt-outs of the hand-offs the O-Cloud's admin enabled, and its Config Sync directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
}

/// Why an inventory cannot be used; names the source, the JSON path and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: at {path}: {message}")]
pub struct InventoryError {
    pub source_name: String,
    /// JSON path of the offending value, as in `clusters[1].workerHosts[0]`.
    pub path: String,
    pub message: String,
}

impl Inventory {
    /// Parses `text` (the content of `source_name`) and checks that ids and names are unique.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, InventoryError> {
        let error = |path: String, message: String| InventoryError {
            source_name: source_name.into(),
            path,
            message,
        };
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let inventory: Inventory = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // The root (and a position serde could not attribute) is `$`.
            let path = match e.path().to_string() {
                p if p == "." || p == "?" => "$".to_string(),
                p => p,
            };
            let inner = e.into_inner();
            error(path, format!("{inner}"))
        })?;
        if !is_user_name(&inventory.defaults.ssh_user) {
            return Err(error(
                "defaults.sshUser".into(),
                format!("`{}` is not a user name", inventory.defaults.ssh_user),
            ));
        }
        let (mut ids, mut hostnames) = (HashSet::new(), HashSet::new());
        for (i, host) in inventory.hosts.iter().enumerate() {
            if !ids.insert(&host.id) {
                return Err(error(
                    format!("hosts[{i}].id"),
                    format!("host id `{}` appears twice", host.id),
                ));
            }
            if !hostnames.insert(&host.hostname) {
                return Err(error(
                    format!("hosts[{i}].hostname"),
                    format!("hostname `{}` appears twice", host.hostname),
                ));
            }
            if let Some((field, problem)) = host_access_problems(&inventory.access(host))
                .into_iter()
                .next()
            {
                return Err(error(format!("hosts[{i}].{field}"), problem));
            }
        }
        let locations: HashSet<&String> = inventory
            .locations
            .iter()
            .map(|l| &l.global_location_id)
            .collect();
        if locations.len() != inventory.locations.len() {
            return Err(error(
                "locations".into(),
                "a globalLocationId appears twice".into(),
            ));
        }
        for (i, location) in inventory.locations.iter().enumerate() {
            if let Some(c) = &location.coordinates
                && !(2..=3).contains(&c.len())
            {
                return Err(error(
                    format!("locations[{i}].coordinates"),
                    "give [longitude, latitude] or [longitude, latitude, altitude]".into(),
                ));
            }
        }
        let mut sites = HashSet::new();
        for (i, site) in inventory.sites.iter().enumerate() {
            if !sites.insert(&site.name) {
                return Err(error(
                    format!("sites[{i}].name"),
                    format!("site `{}` appears twice", site.name),
                ));
            }
            if let Some(location) = &site.global_location_id
                && !locations.contains(location)
            {
                return Err(error(
                    format!("sites[{i}].globalLocationId"),
                    format!("no location `{location}` in locations"),
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, cluster) in inventory.clusters.iter().enumerate() {
            if !names.insert(&cluster.name) {
                return Err(error(
                    format!("clusters[{i}].name"),
                    format!("cluster `{}` appears twice", cluster.name),
                ));
            }
            let at = format!("clusters[{i}].labels");
            if let Some((path, problem)) = label_problems(&cluster.labels, &at).into_iter().next() {
                return Err(error(path, problem));
            }
        }
        Ok(inventory)
    }

    pub fn host(&self, id: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.id == id)
    }

    /// How host preparation reaches `host`.
    pub fn access(&self, host: &Host) -> HostAccess {
        HostAccess {
            id: host.id.clone(),
            hostname: Some(host.hostname.clone()),
            address: host.address.clone(),
            ssh_user: host
                .ssh_user
                .clone()
                .unwrap_or_else(|| self.defaults.ssh_user.clone()),
            ssh_host_keys: host.ssh_host_keys.clone(),
        }
    }

    /// How host preparation reaches the host `id`, if the inventory has it.
    pub fn host_access(&self, id: &str) -> Option<HostAccess> {
        self.host(id).map(|host| self.access(host))
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// Template parameters for `cluster`, defaults filled in. Hosts unknown to the inventory
    /// are kept (the feasibility check reports them). They carry no host access: the O-Cloud
    /// reads that from its own inventory ([`Self::host_access`]), never from a request.
    pub fn parameters(&self, cluster: &Cluster) -> ClusterParameters {
        let defaults = &self.defaults;
        let roles = HostRoles {
            control_plane: cluster.control_plane_hosts.clone(),
            workers: cluster.worker_hosts.clone(),
        };
        ClusterParameters {
            cluster_name: cluster.name.clone(),
            kubernetes_version: cluster
                .kubernetes_version
                .clone()
                .unwrap_or_else(|| defaults.kubernetes_version.clone()),
            control_plane_endpoint: Endpoint {
                host: cluster.control_plane_endpoint.clone(),
                port: defaults.control_plane_port,
            },
            hosts: roles,
            network: Network {
                pod_cidrs: cluster
                    .pod_cidrs
                    .clone()
                    .unwrap_or_else(|| defaults.network.pod_cidrs.clone()),
                service_cidrs: cluster
                    .service_cidrs
                    .clone()
                    .unwrap_or_else(|| defaults.network.service_cidrs.clone()),
                service_domain: cluster
                    .service_domain
                    .clone()
                    .unwrap_or_else(|| defaults.network.service_domain.clone()),
            },
            cni: cluster.cni.unwrap_or(defaults.cni),
            host_preparation: cluster
                .host_preparation
                .unwrap_or(defaults.host_preparation),
            host_access: Vec::new(),
            labels: self.cluster_labels(cluster),
            handoff: cluster.handoff.clone().unwrap_or_default(),
        }
    }

    /// The cluster's labels, with the `site` its hosts share when it names none.
    fn cluster_labels(&self, cluster: &Cluster) -> BTreeMap<String, String> {
        let mut labels = cluster.labels.clone();
        if !labels.contains_key(SITE_LABEL) {
            let sites: Option<HashSet<&String>> = cluster
                .control_plane_hosts
                .iter()
                .chain(&cluster.worker_hosts)
                .map(|id| self.host(id)?.labels.get(SITE_LABEL))
                .collect();
            if let Some(sites) = sites.filter(|s| s.len() == 1) {
                labels.extend(sites.into_iter().map(|s| (SITE_LABEL.into(), s.clone())));
            }
        }
        labels
    }
}
