//! The O-Cloud's inventory as the O2ims inventory API shows it: the O-Cloud, its one resource
//! type (a bare-metal BYOH host), one resource pool per site, each host, and each fulfilled
//! cluster as a deployment manager. Built from the inventory, the ByoHosts, the host ledger
//! and the ProvisioningRequests; ids the API wants as UUIDs are derived from names.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::derived_id;
use crate::crd::HostClaim;
use crate::inventory::{Location, Site};

/// The pool of hosts without a `site` label.
pub const DEFAULT_POOL: &str = "default";
/// The host label naming its site, and so its resource pool.
pub const SITE_LABEL: &str = "site";
/// Name of the one resource type.
pub const HOST_TYPE: &str = "byoh-host";

/// How the O-Cloud describes itself (flags of the server).
#[derive(Clone, Debug)]
pub struct Cloud {
    pub ocloud_id: String,
    pub global_cloud_id: String,
    pub name: String,
    pub description: String,
    pub service_uri: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OCloudInfo {
    pub o_cloud_id: String,
    pub global_cloud_id: String,
    pub name: String,
    pub description: String,
    pub service_uri: String,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    pub resource_type_id: String,
    pub name: String,
    pub description: String,
    pub vendor: String,
    pub model: String,
    pub version: String,
    /// Its alarm dictionary (`.../resourceTypes/{id}/alarmDictionary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_dictionary_id: Option<String>,
    pub resource_kind: String,
    pub resource_class: String,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePool {
    pub resource_pool_id: String,
    pub name: String,
    pub o_cloud_site_id: String,
    pub description: String,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub resource_id: String,
    pub resource_pool_id: String,
    pub resource_type_id: String,
    pub global_asset_id: String,
    pub description: String,
    pub elements: Vec<Resource>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentManager {
    pub deployment_manager_id: String,
    pub name: String,
    pub description: String,
    pub o_cloud_id: String,
    pub service_uri: String,
    pub supported_locations: Vec<String>,
    pub capabilities: Map<String, Value>,
    pub capacity: Map<String, Value>,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OCloudSiteInfo {
    pub o_cloud_site_id: String,
    pub global_location_id: String,
    pub name: String,
    pub description: String,
    pub resource_pools: Vec<String>,
    pub extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocationInfo {
    pub global_location_id: String,
    pub name: String,
    pub description: String,
    pub o_cloud_site_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinate: Option<Point>,
    pub extensions: Map<String, Value>,
}

/// A GeoJSON point (RFC 7946).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
pub struct Point {
    /// `Point`.
    #[serde(rename = "type")]
    pub kind: String,
    pub coordinates: Vec<f64>,
}

macro_rules! listed {
    ($type:ty, $name:literal, [$($id:literal),+] $(, [$($excluded:literal),*])?) => {
        impl super::selection::Listed for $type {
            const NAME: &'static str = $name;
            const IDENTIFIERS: &'static [&'static str] = &[$($id),+];
            $(const DEFAULT_EXCLUDED: &'static [&'static str] = &[$($excluded),*];)?
        }
    };
}

listed!(OCloudInfo, "OCloudInfo", ["oCloudId"]);
listed!(ResourceType, "ResourceType", ["resourceTypeId"]);
listed!(ResourcePool, "ResourcePool", ["resourcePoolId"]);
listed!(
    Resource,
    "Resource",
    ["resourceId"],
    ["elements", "extensions"]
);
listed!(OCloudSiteInfo, "OCloudSiteInfo", ["oCloudSiteId"]);
listed!(LocationInfo, "LocationInfo", ["globalLocationId"]);
listed!(
    DeploymentManager,
    "DeploymentManager",
    ["deploymentManagerId"],
    ["capabilities", "capacity", "extensions"]
);

/// One host as the server sees it: from the inventory, its ByoHost and its HostClaim.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostView {
    pub id: String,
    /// From the inventory; a registered host it lacks has none.
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Name and UID of the ByoHost carrying its `host-id`, once the agent registered.
    pub byo_host: Option<(String, String)>,
    /// The request holding it (the ledger): its name, the cluster, whether it is in use.
    pub claim: Option<(String, String, bool)>,
}

impl HostView {
    pub fn pool(&self) -> &str {
        self.labels
            .get(SITE_LABEL)
            .map(String::as_str)
            .unwrap_or(DEFAULT_POOL)
    }
}

/// A fulfilled cluster, for its deployment manager.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    /// The Cluster API Cluster's UID.
    pub cluster_uid: String,
    pub name: String,
    pub description: String,
    pub request: String,
    /// `https://<control-plane endpoint>:<port>`.
    pub server: String,
    pub kubernetes_version: String,
    pub control_plane_nodes: usize,
    pub worker_nodes: usize,
    /// The pools (sites) of its hosts.
    pub pools: Vec<String>,
    /// The locations of those sites.
    pub locations: Vec<String>,
}

pub fn ocloud(cloud: &Cloud) -> OCloudInfo {
    OCloudInfo {
        o_cloud_id: cloud.ocloud_id.clone(),
        global_cloud_id: cloud.global_cloud_id.clone(),
        name: cloud.name.clone(),
        description: cloud.description.clone(),
        service_uri: cloud.service_uri.clone(),
        extensions: Map::new(),
    }
}

pub fn resource_type_id(cloud: &Cloud) -> String {
    derived_id(&cloud.ocloud_id, "resourceType", HOST_TYPE)
}

pub fn resource_types(cloud: &Cloud) -> Vec<ResourceType> {
    vec![ResourceType {
        resource_type_id: resource_type_id(cloud),
        name: HOST_TYPE.into(),
        description: "a bare-metal Linux host that Cluster API's BYOH provider turns into a node"
            .into(),
        vendor: String::new(),
        model: String::new(),
        version: String::new(),
        alarm_dictionary_id: Some(super::alarm_dictionary_id(
            &cloud.ocloud_id,
            crate::crd::AlarmEntity::Host,
        )),
        resource_kind: "PHYSICAL".into(),
        resource_class: "COMPUTE".into(),
        extensions: Map::new(),
    }]
}

pub fn pool_id(cloud: &Cloud, pool: &str) -> String {
    derived_id(&cloud.ocloud_id, "resourcePool", pool)
}

/// A site's id: a pool is its site's hosts, so a site and its pool share a name.
pub fn site_id(cloud: &Cloud, site: &str) -> String {
    derived_id(&cloud.ocloud_id, "site", site)
}

/// Where a site is: the location the inventory gives it, else a location of its own, named
/// after it.
pub fn location_of<'a>(site: &'a str, described: &'a [Site]) -> &'a str {
    described
        .iter()
        .find(|s| s.name == site)
        .and_then(|s| s.global_location_id.as_deref())
        .unwrap_or(site)
}

/// Every site: those the hosts name (a pool each) and those the inventory describes.
pub fn sites(cloud: &Cloud, hosts: &[HostView], described: &[Site]) -> Vec<OCloudSiteInfo> {
    let mut names: Vec<&str> = hosts.iter().map(HostView::pool).collect();
    names.extend(described.iter().map(|s| s.name.as_str()));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let description = described
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.description.clone())
                .filter(|d| !d.is_empty());
            let has_hosts = hosts.iter().any(|h| h.pool() == name);
            OCloudSiteInfo {
                o_cloud_site_id: site_id(cloud, name),
                global_location_id: location_of(name, described).to_string(),
                name: name.to_string(),
                description: description.unwrap_or_else(|| pool_description(name)),
                resource_pools: has_hosts
                    .then(|| pool_id(cloud, name))
                    .into_iter()
                    .collect(),
                extensions: Map::new(),
            }
        })
        .collect()
}

/// Every location: those the inventory gives and those of sites without one, each with its
/// sites.
pub fn locations(
    cloud: &Cloud,
    hosts: &[HostView],
    described: &[Site],
    given: &[Location],
) -> Vec<LocationInfo> {
    let sites = sites(cloud, hosts, described);
    let mut locations: Vec<LocationInfo> = given
        .iter()
        .map(|l| LocationInfo {
            global_location_id: l.global_location_id.clone(),
            name: l.name.clone(),
            description: l.description.clone(),
            o_cloud_site_ids: Vec::new(),
            address: l.address.clone(),
            coordinate: l.coordinates.clone().map(|coordinates| Point {
                kind: "Point".into(),
                coordinates,
            }),
            extensions: Map::new(),
        })
        .collect();
    for site in &sites {
        if !locations
            .iter()
            .any(|l| l.global_location_id == site.global_location_id)
        {
            locations.push(LocationInfo {
                global_location_id: site.global_location_id.clone(),
                name: site.name.clone(),
                description: format!(
                    "where site {} is (the inventory gives no location)",
                    site.name
                ),
                o_cloud_site_ids: Vec::new(),
                address: None,
                coordinate: None,
                extensions: Map::new(),
            });
        }
    }
    for location in &mut locations {
        location.o_cloud_site_ids = sites
            .iter()
            .filter(|s| s.global_location_id == location.global_location_id)
            .map(|s| s.o_cloud_site_id.clone())
            .collect();
    }
    locations.sort_by(|a, b| a.global_location_id.cmp(&b.global_location_id));
    locations
}

fn pool_description(name: &str) -> String {
    if name == DEFAULT_POOL {
        "hosts without a site label".into()
    } else {
        format!("hosts of site {name}")
    }
}

/// One pool per site the hosts name, sorted by name.
pub fn resource_pools(cloud: &Cloud, hosts: &[HostView]) -> Vec<ResourcePool> {
    let mut pools: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for host in hosts {
        let (all, free) = pools.entry(host.pool()).or_default();
        *all += 1;
        *free += usize::from(host.claim.is_none());
    }
    pools
        .into_iter()
        .map(|(name, (all, free))| ResourcePool {
            resource_pool_id: pool_id(cloud, name),
            name: name.into(),
            o_cloud_site_id: site_id(cloud, name),
            description: pool_description(name),
            extensions: object(json!({"hosts": all, "freeHosts": free})),
        })
        .collect()
}

pub fn resource(cloud: &Cloud, host: &HostView) -> Resource {
    let claim = host.claim.as_ref().map(|(request, cluster, in_use)| {
        json!({"provisioningRequestId": request, "clusterName": cluster, "inUse": in_use})
    });
    let mut extensions = object(json!({
        "hostId": host.id,
        "labels": host.labels,
        "registered": host.byo_host.is_some(),
        "claimed": claim.is_some(),
    }));
    let mut optional = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            extensions.insert(key.into(), value);
        }
    };
    optional("hostname", host.hostname.clone().map(Value::from));
    optional(
        "byoHostName",
        host.byo_host.as_ref().map(|(n, _)| n.clone().into()),
    );
    optional(
        "byoHostUid",
        host.byo_host.as_ref().map(|(_, u)| u.clone().into()),
    );
    optional("claimedBy", claim);
    Resource {
        resource_id: derived_id(&cloud.ocloud_id, "resource", &host.id),
        resource_pool_id: pool_id(cloud, host.pool()),
        resource_type_id: resource_type_id(cloud),
        global_asset_id: String::new(),
        description: host.hostname.clone().unwrap_or_else(|| host.id.clone()),
        elements: vec![],
        tags: host
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        groups: vec![host.pool().to_string()],
        extensions,
    }
}

/// The host ledger's entry for a resource as a REST client reads it (its `claimedBy`
/// extension): what FOCOM, reaching an O-Cloud over REST, checks feasibility against. The
/// requester's UID is not part of it.
pub fn claim_of(resource: &Resource) -> Option<HostClaim> {
    let host = resource.extensions.get("hostId")?.as_str()?;
    let claim = resource.extensions.get("claimedBy")?;
    let mut held = HostClaim::for_host(
        host,
        claim["provisioningRequestId"].as_str()?,
        "",
        claim["clusterName"].as_str()?,
    );
    held.spec.in_use = claim["inUse"].as_bool()?;
    Some(held)
}

pub fn deployment_manager(cloud: &Cloud, cluster: &ClusterView) -> DeploymentManager {
    DeploymentManager {
        deployment_manager_id: cluster.cluster_uid.clone(),
        name: cluster.name.clone(),
        description: cluster.description.clone(),
        o_cloud_id: cloud.ocloud_id.clone(),
        service_uri: cluster.server.clone(),
        supported_locations: cluster.locations.clone(),
        capabilities: object(json!({"kubernetesVersion": cluster.kubernetes_version})),
        capacity: object(json!({
            "controlPlaneNodes": cluster.control_plane_nodes,
            "workerNodes": cluster.worker_nodes,
        })),
        extensions: object(json!({
            "provisioningRequestId": cluster.request,
            "resourcePools": cluster.pools,
        })),
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::rest::example_cloud as cloud;

    fn host(id: &str, site: Option<&str>, claimed: bool) -> HostView {
        HostView {
            id: id.into(),
            hostname: Some(format!("{id}-name")),
            labels: site
                .map(|s| (SITE_LABEL.into(), s.into()))
                .into_iter()
                .collect(),
            byo_host: None,
            claim: claimed.then(|| ("pr".into(), "edge".into(), true)),
        }
    }

    #[test]
    fn one_pool_per_site_counts_its_free_hosts() {
        let hosts = [
            host("h1", Some("paris"), true),
            host("h2", Some("paris"), false),
            host("h3", None, false),
        ];
        let pools = resource_pools(&cloud(), &hosts);
        let summary: Vec<(String, Value)> = pools
            .iter()
            .map(|p| (p.name.clone(), Value::Object(p.extensions.clone())))
            .collect();
        assert_eq!(
            summary,
            [
                ("default".into(), json!({"hosts": 1, "freeHosts": 1})),
                ("paris".into(), json!({"hosts": 2, "freeHosts": 1})),
            ]
        );
        let resource = resource(&cloud(), &hosts[0]);
        assert_eq!(resource.resource_pool_id, pools[1].resource_pool_id);
        assert_eq!(resource.extensions["claimedBy"]["clusterName"], "edge");
        assert_eq!(resource.extensions["registered"], false);
    }

    #[test]
    fn a_claimed_resource_reads_back_as_its_ledger_entry() {
        let claimed = claim_of(&resource(&cloud(), &host("h1", None, true))).expect("claimed");
        assert_eq!(
            (
                claimed.spec.host_id.as_str(),
                claimed.spec.request_name.as_str(),
                claimed.spec.cluster_name.as_str(),
                claimed.spec.in_use
            ),
            ("h1", "pr", "edge", true)
        );
        assert!(claim_of(&resource(&cloud(), &host("h2", None, false))).is_none());
    }

    #[test]
    fn sites_are_those_hosts_name_and_those_described_each_at_a_location() {
        let hosts = [host("h1", Some("paris"), false), host("h2", None, false)];
        let described = [Site {
            name: "lyon".into(),
            description: "empty yet".into(),
            global_location_id: Some("fr-south".into()),
        }];
        let given = [Location {
            global_location_id: "fr-south".into(),
            name: "South".into(),
            description: String::new(),
            address: Some("1 rue X".into()),
            coordinates: Some(vec![4.8, 45.7]),
        }];
        let sites = sites(&cloud(), &hosts, &described);
        let summary: Vec<(&str, &str, usize)> = sites
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.global_location_id.as_str(),
                    s.resource_pools.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("default", "default", 1),
                ("lyon", "fr-south", 0),
                ("paris", "paris", 1)
            ]
        );
        let pools = resource_pools(&cloud(), &hosts);
        assert_eq!(sites[2].resource_pools, [pools[1].resource_pool_id.clone()]);
        assert_eq!(pools[1].o_cloud_site_id, sites[2].o_cloud_site_id);
        let locations = locations(&cloud(), &hosts, &described, &given);
        let ids: Vec<&str> = locations
            .iter()
            .map(|l| l.global_location_id.as_str())
            .collect();
        assert_eq!(ids, ["default", "fr-south", "paris"]);
        assert_eq!(
            locations[1].o_cloud_site_ids,
            [sites[1].o_cloud_site_id.clone()]
        );
        assert_eq!(
            locations[1].coordinate.as_ref().map(|c| c.kind.as_str()),
            Some("Point")
        );
    }

    #[test]
    fn a_host_keeps_its_id_when_it_registers() {
        let mut h = host("h1", None, false);
        let before = resource(&cloud(), &h).resource_id;
        h.byo_host = Some(("edge-node-1".into(), "uid-1".into()));
        let after = resource(&cloud(), &h);
        assert_eq!(after.resource_id, before);
        assert_eq!(after.extensions["byoHostUid"], "uid-1");
    }
}
