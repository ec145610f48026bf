//! `/o2ims-infrastructureProvisioning/v1`: ProvisioningRequests over REST. The custom resource
//! is the request: POST creates it (named by its id), PUT replaces its spec, DELETE deletes it;
//! the O2IMS operator does the rest. Validation and change rules are the operator's own.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use lcm_core::capi::{self, Kind};
use lcm_core::crd::ProvisioningRequest;
use lcm_core::rest::provisioning::{Phase, ProvisioningRequestData, data, info, phase, spec};
use lcm_core::rest::{ApiVersions, PROVISIONING_PREFIX, PROVISIONING_VERSION, is_object_uuid};
use lcm_core::template::{self, ClusterParameters};
use operator_kit::fresh;

use crate::lists;
use crate::problem::Problem;
use crate::shared::{Shared, parse_body};

pub async fn all_versions() -> Json<ApiVersions> {
    Json(ApiVersions::of(PROVISIONING_PREFIX, PROVISIONING_VERSION))
}

pub async fn list(State(shared): State<Shared>, uri: Uri) -> Response {
    let mut requests = shared.stores.requests.state();
    requests.sort_by_key(|r| r.name_any());
    lists::respond(&shared, &uri, requests.iter().map(|r| info(r)))
}

pub async fn get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let request = shared
        .stores
        .requests
        .get(&ObjectRef::new(&id))
        .ok_or_else(|| Problem::not_found("provisioning request", &id))?;
    Ok(with_etag(&request, Json(info(&request)).into_response()))
}

pub async fn create(State(shared): State<Shared>, body: Bytes) -> Result<Response, Problem> {
    let body: ProvisioningRequestData = parse_body(&body)?;
    if !is_object_uuid(&body.provisioning_request_id) {
        return Err(Problem::bad_request(format!(
            "provisioningRequestId: `{}` is not a lower-case UUID (it names the ProvisioningRequest)",
            body.provisioning_request_id
        )));
    }
    validate(&shared, &body, None)?;
    let request = ProvisioningRequest::new(&body.provisioning_request_id, spec(&body));
    let created = api(&shared)
        .create(&PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.is_already_exists() => Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "a provisioning request `{}` exists: PUT it to change it",
                    body.provisioning_request_id
                ),
            ),
            other => refused_or_internal(other),
        })?;
    fresh::written(&shared.stores.changed, &shared.stores.requests, &created).await;
    let mut response = (StatusCode::CREATED, Json(info(&created))).into_response();
    set_location(&mut response, &body.provisioning_request_id);
    Ok(with_etag(&created, response))
}

pub async fn replace(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    known_id(&id)?;
    let body: ProvisioningRequestData = parse_body(&body)?;
    if body.provisioning_request_id != id {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "provisioningRequestId: the body's `{}` differs from the path's `{id}`; an id never changes",
                body.provisioning_request_id
            ),
        ));
    }
    let api = api(&shared);
    let mut request = api
        .get_opt(&id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found("provisioning request", &id))?;
    if let Some(expected) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && expected.trim_matches('"') != request.resource_version().unwrap_or_default()
    {
        return Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            format!("If-Match {expected}: the provisioning request changed since; GET it again"),
        ));
    }
    if request.metadata.deletion_timestamp.is_some() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("provisioning request `{id}` is being deleted"),
        ));
    }
    let applied = applied_parameters(&shared, &request).await?;
    let desired = validate(&shared, &body, applied.as_ref())?;
    if let Some(applied) = &applied {
        check_change(&request, applied, &desired)?;
    }
    if data(&request) == body {
        return Ok(with_etag(&request, Json(info(&request)).into_response()));
    }
    request.spec = spec(&body);
    let replaced = api
        .replace(&id, &PostParams::default(), &request)
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "the provisioning request changed while it was replaced; GET it and PUT again",
            ),
            other => refused_or_internal(other),
        })?;
    fresh::written(&shared.stores.changed, &shared.stores.requests, &replaced).await;
    Ok(with_etag(&replaced, Json(info(&replaced)).into_response()))
}

pub async fn delete(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    known_id(&id)?;
    let stores = &shared.stores;
    let key = ObjectRef::new(&id);
    let uid = stores.requests.get(&key).and_then(|r| r.uid());
    match api(&shared).delete(&id, &DeleteParams::background()).await {
        Ok(deleted) => {
            // The operator's finalizer keeps the request until its cluster is gone: then the
            // answer waits for the deletion mark, else for the request to go.
            match deleted.left() {
                Some(marked) => fresh::written(&stores.changed, &stores.requests, &marked).await,
                None => {
                    fresh::deleted(&stores.changed, &stores.requests, &key, uid.as_deref()).await
                }
            }
            let mut response = StatusCode::ACCEPTED.into_response();
            set_location(&mut response, &id);
            Ok(response)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(Problem::not_found("provisioning request", &id))
        }
        Err(other) => Err(Problem::internal(other)),
    }
}

/// Every request as the API shows it, by its URL path: what provisioning subscribers are told.
pub fn objects(shared: &Shared) -> BTreeMap<String, Value> {
    shared
        .stores
        .requests
        .state()
        .iter()
        .filter_map(|r| {
            Some((
                request_path(&r.name_any()),
                serde_json::to_value(info(r)).ok()?,
            ))
        })
        .collect()
}

/// A request's id names its object: anything but a lower-case UUID names none (and never
/// reaches the API server's URL).
fn known_id(id: &str) -> Result<(), Problem> {
    if is_object_uuid(id) {
        Ok(())
    } else {
        Err(Problem::not_found("provisioning request", id))
    }
}

fn request_path(id: &str) -> String {
    format!("{PROVISIONING_PREFIX}/provisioningRequests/{id}")
}

fn api(shared: &Shared) -> Api<ProvisioningRequest> {
    Api::all(shared.client.clone())
}

/// The operator's validation: template, parameters and who says how hosts are reached.
fn validate(
    shared: &Shared,
    body: &ProvisioningRequestData,
    applied: Option<&ClusterParameters>,
) -> Result<ClusterParameters, Problem> {
    let validation = template::validate_request(
        &body.template_name,
        &body.template_version,
        &body.template_parameters,
    );
    template::refuse_request_host_access(
        shared.config.allow_request_host_access,
        &format!("ConfigMap {}", shared.config.host_inventory_configmap),
        applied,
        &body.template_parameters,
        validation,
    )
    .map_err(|errors| Problem::bad_request(errors.to_string()))
}

/// The operator's change rules for a running cluster: only workers and (one minor up) the
/// version change in place, and only once the cluster is fulfilled.
fn check_change(
    request: &ProvisioningRequest,
    applied: &ClusterParameters,
    desired: &ClusterParameters,
) -> Result<(), Problem> {
    let unprocessable = |why: String| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, why);
    let change = template::classify(applied, desired).map_err(unprocessable)?;
    if !change.is_empty() && phase(request) != Phase::Fulfilled {
        return Err(unprocessable(format!(
            "the cluster is {}; change it once it is FULFILLED",
            phase(request).as_str()
        )));
    }
    Ok(())
}

/// The parameters the request's running cluster was built from (its Cluster's annotation).
async fn applied_parameters(
    shared: &Shared,
    request: &ProvisioningRequest,
) -> Result<Option<ClusterParameters>, Problem> {
    let Some(name) = request.spec.template_parameters["clusterName"].as_str() else {
        return Ok(None);
    };
    let namespace = format!("cluster-{name}");
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        shared.client.clone(),
        &namespace,
        &Kind::Cluster.api_resource(),
    );
    let Some(cluster) = clusters.get_opt(name).await.map_err(Problem::internal)? else {
        return Ok(None);
    };
    let ours = cluster.labels().get(lcm_core::PROVISIONING_REQUEST_LABEL)
        == Some(&lcm_core::names::label_value(&request.name_any()));
    let value = serde_json::to_value(&cluster).map_err(Problem::internal)?;
    Ok(ours.then(|| capi::applied_parameters(&value)).flatten())
}

/// An admission refusal (a policy or webhook of the O-Cloud) is the client's problem.
fn refused_or_internal(error: kube::Error) -> Problem {
    match error {
        kube::Error::Api(s) if [400, 422].contains(&s.code) => Problem::bad_request(format!(
            "the O-Cloud's API server refused the request: {}",
            s.message
        )),
        other => Problem::internal(other),
    }
}

fn set_location(response: &mut Response, id: &str) {
    if let Ok(value) = request_path(id).parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
}

fn with_etag(request: &ProvisioningRequest, mut response: Response) -> Response {
    if let Some(Ok(value)) = request
        .resource_version()
        .map(|v| format!("\"{v}\"").parse())
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
