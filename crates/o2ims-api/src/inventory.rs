//! `/o2ims-infrastructureInventory/v2`: the O-Cloud, its resource type, resource pools (one
//! per site), resources (hosts: inventory, ByoHost, ledger) and deployment managers (each
//! fulfilled cluster: its API endpoint, never its credentials).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use kube::ResourceExt;
use serde_json::Value;

use lcm_core::rest::inventory::{
    self, ClusterView, DeploymentManager, HostView, LocationInfo, OCloudInfo, OCloudSiteInfo,
    Resource, ResourcePool, ResourceType,
};
use lcm_core::rest::provisioning::{Phase, phase};
use lcm_core::rest::{ApiVersions, INVENTORY_PREFIX, INVENTORY_VERSION};
use lcm_core::template::ClusterParameters;

use crate::lists;
use crate::problem::Problem;
use crate::shared::Shared;

pub async fn all_versions() -> Json<ApiVersions> {
    Json(ApiVersions::of(INVENTORY_PREFIX, INVENTORY_VERSION))
}

pub async fn cloud(State(shared): State<Shared>) -> Json<OCloudInfo> {
    Json(inventory::ocloud(&shared.cloud))
}

pub async fn resource_types(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, inventory::resource_types(&shared.cloud))
}

pub async fn resource_type(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ResourceType>, Problem> {
    inventory::resource_types(&shared.cloud)
        .into_iter()
        .find(|t| t.resource_type_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("resource type", &id))
}

pub async fn resource_pools(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, pools(&shared))
}

pub async fn resource_pool(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ResourcePool>, Problem> {
    pools(&shared)
        .into_iter()
        .find(|p| p.resource_pool_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("resource pool", &id))
}

pub async fn resources(
    State(shared): State<Shared>,
    Path(pool): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    let in_pool = resources_of(&shared, &pool)?;
    Ok(lists::respond(&shared, &uri, in_pool))
}

pub async fn resource(
    State(shared): State<Shared>,
    Path((pool, id)): Path<(String, String)>,
) -> Result<Json<Resource>, Problem> {
    resources_of(&shared, &pool)?
        .into_iter()
        .find(|r| r.resource_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("resource", &id))
}

pub async fn deployment_managers(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, managers(&shared))
}

pub async fn deployment_manager(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    managers(&shared)
        .into_iter()
        .find(|m| m.deployment_manager_id == id)
        .map(|m| Json(m).into_response())
        .ok_or_else(|| Problem::not_found("deployment manager", &id))
}

pub async fn locations(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, all_locations(&shared))
}

pub async fn location(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<LocationInfo>, Problem> {
    all_locations(&shared)
        .into_iter()
        .find(|l| l.global_location_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("location", &id))
}

pub async fn sites(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, all_sites(&shared))
}

pub async fn site(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<OCloudSiteInfo>, Problem> {
    all_sites(&shared)
        .into_iter()
        .find(|s| s.o_cloud_site_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("O-Cloud site", &id))
}

fn all_sites(shared: &Shared) -> Vec<OCloudSiteInfo> {
    let described = shared
        .stores
        .inventory()
        .map(|i| i.sites)
        .unwrap_or_default();
    inventory::sites(&shared.cloud, &shared.stores.hosts(), &described)
}

fn all_locations(shared: &Shared) -> Vec<LocationInfo> {
    let (sites, locations) = shared
        .stores
        .inventory()
        .map(|i| (i.sites, i.locations))
        .unwrap_or_default();
    inventory::locations(&shared.cloud, &shared.stores.hosts(), &sites, &locations)
}

/// Every pool, resource and deployment manager by its URL path: what inventory subscribers
/// are told.
pub fn objects(shared: &Shared) -> BTreeMap<String, Value> {
    let hosts = shared.stores.hosts();
    let cloud = &shared.cloud;
    let mut objects = BTreeMap::new();
    let mut add = |path: String, value: Option<Value>| {
        if let Some(value) = value {
            objects.insert(path, value);
        }
    };
    for pool in inventory::resource_pools(cloud, &hosts) {
        add(
            format!("{INVENTORY_PREFIX}/resourcePools/{}", pool.resource_pool_id),
            serde_json::to_value(pool).ok(),
        );
    }
    for host in &hosts {
        let resource = inventory::resource(cloud, host);
        let path = format!(
            "{INVENTORY_PREFIX}/resourcePools/{}/resources/{}",
            resource.resource_pool_id, resource.resource_id
        );
        add(path, serde_json::to_value(resource).ok());
    }
    for manager in managers(shared) {
        add(
            format!(
                "{INVENTORY_PREFIX}/deploymentManagers/{}",
                manager.deployment_manager_id
            ),
            serde_json::to_value(manager).ok(),
        );
    }
    objects
}

fn pools(shared: &Shared) -> Vec<ResourcePool> {
    inventory::resource_pools(&shared.cloud, &shared.stores.hosts())
}

fn resources_of(shared: &Shared, pool: &str) -> Result<Vec<Resource>, Problem> {
    let hosts = shared.stores.hosts();
    if !pools(shared).iter().any(|p| p.resource_pool_id == pool) {
        return Err(Problem::not_found("resource pool", pool));
    }
    Ok(hosts
        .iter()
        .filter(|h| inventory::pool_id(&shared.cloud, h.pool()) == pool)
        .map(|h| inventory::resource(&shared.cloud, h))
        .collect())
}

/// One deployment manager per fulfilled cluster, sorted by name.
fn managers(shared: &Shared) -> Vec<DeploymentManager> {
    let hosts = shared.stores.hosts();
    let sites = shared
        .stores
        .inventory()
        .map(|i| i.sites)
        .unwrap_or_default();
    let mut clusters: Vec<ClusterView> = shared
        .stores
        .requests
        .state()
        .iter()
        .filter(|r| phase(r) == Phase::Fulfilled)
        .filter_map(|r| cluster_view(r, &hosts, &sites))
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    clusters
        .iter()
        .map(|c| inventory::deployment_manager(&shared.cloud, c))
        .collect()
}

fn cluster_view(
    request: &lcm_core::crd::ProvisioningRequest,
    hosts: &[HostView],
    sites: &[lcm_core::inventory::Site],
) -> Option<ClusterView> {
    let params: ClusterParameters =
        serde_json::from_value(request.spec.template_parameters.clone()).ok()?;
    let status = request.status.as_ref()?;
    let cluster_uid = status
        .provisioned_resource_set
        .as_ref()?
        .o_cloud_node_cluster_id
        .clone()?;
    let mut pools: Vec<String> = params
        .all_hosts()
        .filter_map(|id| hosts.iter().find(|h| &h.id == id))
        .map(|h| h.pool().to_string())
        .collect();
    pools.sort();
    pools.dedup();
    let mut locations: Vec<String> = pools
        .iter()
        .map(|p| inventory::location_of(p, sites).to_string())
        .collect();
    locations.sort();
    locations.dedup();
    let endpoint = &params.control_plane_endpoint;
    Some(ClusterView {
        cluster_uid,
        name: params.cluster_name.clone(),
        description: request
            .spec
            .description
            .clone()
            .unwrap_or_else(|| format!("cluster {}", params.cluster_name)),
        request: request.name_any(),
        server: format!("https://{}:{}", endpoint.host, endpoint.port),
        kubernetes_version: params.kubernetes_version.clone(),
        control_plane_nodes: params.hosts.control_plane.len(),
        worker_nodes: params.hosts.workers.len(),
        pools,
        locations,
    })
}
