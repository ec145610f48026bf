//! What a FocomProvisioningRequest asks for: which clusters, whether that is
//! feasible, and the ProvisioningRequest each cluster becomes.

use std::collections::{BTreeMap, HashMap};

use kube::api::ObjectMeta;

use crate::crd::{
    FocomProvisioningRequest, HostClaim, ProvisioningRequest, ProvisioningRequestSpec,
};
use crate::inventory::Inventory;
use crate::template::{self, ClusterParameters};
use crate::{CLUSTER_NAME_LABEL, FOCOM_REQUEST_ANNOTATION, FOCOM_REQUEST_LABEL, names};

/// Namespace of the UUIDv5 names of generated ProvisioningRequests.
const NAME_NAMESPACE: uuid::Uuid = uuid::uuid!("0b6f3c2a-5d1e-4e8f-9a7b-3c2d1e0f4a5b");

/// One cluster a request selects, with the template parameters it is provisioned from.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    pub name: String,
    pub parameters: ClusterParameters,
}

/// A problem with a request, naming where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The clusters `request` selects, with their parameters. Inventory-based selection needs the
/// inventory, and every host it names must be in it; a template request (`templateParameters`)
/// describes its cluster in full.
pub fn select(
    request: &FocomProvisioningRequest,
    inventory: Option<&Inventory>,
) -> Result<Vec<Selected>, Vec<Problem>> {
    let spec = &request.spec;
    if let Some(rule) = spec.selection_error() {
        return Err(vec![Problem::new("spec", rule)]);
    }
    if let Some(parameters) = &spec.template_parameters {
        let parameters = template::validate(parameters).map_err(|e| {
            e.0.into_iter()
                .map(|f| Problem::new(format!("spec.{}", f.path), f.message))
                .collect::<Vec<_>>()
        })?;
        return Ok(vec![Selected {
            name: parameters.cluster_name.clone(),
            parameters,
        }]);
    }
    let inventory = inventory.ok_or_else(|| {
        vec![Problem::new(
            "spec",
            "selecting clusters by name needs the inventory",
        )]
    })?;
    let clusters: Vec<_> = if spec.all_clusters == Some(true) {
        inventory.clusters.iter().collect()
    } else {
        let names = spec.cluster_names.as_deref().unwrap_or_default();
        let unknown: Vec<Problem> = names
            .iter()
            .enumerate()
            .filter(|(_, name)| inventory.cluster(name).is_none())
            .map(|(i, name)| {
                Problem::new(
                    format!("spec.clusterNames[{i}]"),
                    format!("no cluster `{name}` in the inventory"),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        names
            .iter()
            .filter_map(|name| inventory.cluster(name))
            .collect()
    };
    let mut problems = Vec::new();
    let mut selected = Vec::new();
    for cluster in clusters {
        let path = format!("cluster `{}`", cluster.name);
        let unknown: Vec<Problem> = cluster
            .control_plane_hosts
            .iter()
            .chain(&cluster.worker_hosts)
            .filter(|host| inventory.host(host).is_none())
            .map(|host| Problem::new(&path, format!("host `{host}` is not in the inventory")))
            .collect();
        if !unknown.is_empty() {
            problems.extend(unknown);
            continue;
        }
        let parameters = inventory.parameters(cluster);
        // Parameters from the inventory are checked like any other request's.
        match serde_json::to_value(&parameters).map(|v| template::validate(&v)) {
            Ok(Ok(parameters)) => selected.push(Selected {
                name: cluster.name.clone(),
                parameters,
            }),
            Ok(Err(errors)) => problems.extend(
                errors
                    .0
                    .into_iter()
                    .map(|f| Problem::new(&path, f.to_string())),
            ),
            Err(e) => problems.push(Problem::new(&path, e.to_string())),
        }
    }
    if problems.is_empty() {
        Ok(selected)
    } else {
        Err(problems)
    }
}

/// Hosts and endpoint an existing ProvisioningRequest holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// Name of the ProvisioningRequest.
    pub request: String,
    /// When it was created: of two requests for a host, the older holds it (as the O2IMS
    /// operator decides).
    pub created: Option<jiff::Timestamp>,
    pub cluster: String,
    pub hosts: Vec<String>,
    pub endpoint: String,
}

impl Claim {
    /// The claim of an existing ProvisioningRequest, if its parameters are readable and it
    /// holds resources (one that failed validation holds nothing).
    pub fn of(request: &ProvisioningRequest) -> Option<Self> {
        if !crate::status::provisioning::holds_resources(request) {
            return None;
        }
        let params: ClusterParameters =
            serde_json::from_value(request.spec.template_parameters.clone()).ok()?;
        Some(Self {
            request: request.metadata.name.clone().unwrap_or_default(),
            created: request.metadata.creation_timestamp.as_ref().map(|t| t.0),
            cluster: params.cluster_name.clone(),
            hosts: params.all_hosts().cloned().collect(),
            endpoint: params.control_plane_endpoint.host.clone(),
        })
    }

    fn older_than(&self, other: &Claim) -> bool {
        (self.created, &self.request) < (other.created, &other.request)
    }
}

/// What stands between the selected clusters and their creation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Feasibility {
    /// What makes the request impossible as it is.
    pub conflicts: Vec<Problem>,
    /// Hosts other requests want but do not use yet: they may still give them up, so the
    /// request waits for them to decide instead of failing on a holder that may lose.
    pub waiting: Vec<Problem>,
}

/// Whether the selected clusters can be provisioned together, next to the existing requests
/// (`existing`). `own` are this request's existing ProvisioningRequests: they do not conflict,
/// and a cluster that already has one was decided when it was created, so only requests older
/// than it can conflict with it (a newer request for its hosts is the one refused). Every
/// conflict is reported. `held` is the O-Cloud's host ledger: a host another request uses
/// there is taken, whatever its request's spec says now; one only claimed or wanted by another
/// request is waited for, as the O2IMS operator waits for it (a cluster already created leaves
/// that to the O2IMS operator).
pub fn feasibility(
    selected: &[Selected],
    own: &[Claim],
    existing: &[Claim],
    held: &[HostClaim],
) -> Feasibility {
    let mut problems = Vec::new();
    let mut waiting = Vec::new();
    let own_names: Vec<&str> = own.iter().map(|c| c.request.as_str()).collect();
    let all_others: Vec<&Claim> = existing
        .iter()
        .filter(|c| !own_names.contains(&c.request.as_str()))
        .collect();
    let mut host_users: HashMap<&str, &str> = HashMap::new();
    let mut endpoint_users: HashMap<&str, &str> = HashMap::new();
    for cluster in selected {
        let path = format!("cluster `{}`", cluster.name);
        let mine = own.iter().find(|c| c.cluster == cluster.name);
        let others: Vec<&Claim> = all_others
            .iter()
            .copied()
            .filter(|other| mine.is_none_or(|mine| other.older_than(mine)))
            .collect();
        for host in cluster.parameters.all_hosts() {
            if let Some(first) = host_users.insert(host, &cluster.name) {
                problems.push(Problem::new(
                    &path,
                    format!("host `{host}` is also selected for cluster `{first}`"),
                ));
            }
            if let Some(claim) = held.iter().find(|c| {
                c.spec.host_id == *host && !own_names.contains(&c.spec.request_name.as_str())
            }) {
                let (cluster, request) = (&claim.spec.cluster_name, &claim.spec.request_name);
                if claim.spec.in_use {
                    problems.push(Problem::new(
                        &path,
                        format!("host `{host}` is held by cluster `{cluster}` (ProvisioningRequest {request})"),
                    ));
                } else if mine.is_none() {
                    waiting.push(Problem::new(
                        &path,
                        format!("host `{host}` is claimed by cluster `{cluster}` (ProvisioningRequest {request}), which has not started using it"),
                    ));
                }
            } else if let Some(claim) = others
                .iter()
                .find(|c| mine.is_none() && c.hosts.contains(host))
            {
                waiting.push(Problem::new(
                    &path,
                    format!(
                        "host `{host}` is wanted by cluster `{}` (ProvisioningRequest {}), which holds nothing yet",
                        claim.cluster, claim.request
                    ),
                ));
            }
        }
        let endpoint = cluster.parameters.control_plane_endpoint.host.as_str();
        if let Some(first) = endpoint_users.insert(endpoint, &cluster.name) {
            problems.push(Problem::new(
                &path,
                format!("endpoint {endpoint} is also the endpoint of cluster `{first}`"),
            ));
        }
        if let Some(claim) = others.iter().find(|c| c.endpoint == endpoint) {
            problems.push(Problem::new(
                &path,
                format!(
                    "endpoint {endpoint} is already used by cluster `{}` (ProvisioningRequest {})",
                    claim.cluster, claim.request
                ),
            ));
        }
        if let Some(claim) = others.iter().find(|c| c.cluster == cluster.name) {
            problems.push(Problem::new(
                &path,
                format!(
                    "a cluster of this name is already provisioned by ProvisioningRequest {}",
                    claim.request
                ),
            ));
        }
    }
    Feasibility {
        conflicts: problems,
        waiting,
    }
}

/// Deterministic name of the ProvisioningRequest for `cluster` of the request `namespace/name`.
pub fn request_name(namespace: &str, name: &str, cluster: &str) -> String {
    uuid::Uuid::new_v5(
        &NAME_NAMESPACE,
        format!("{namespace}/{name}/{cluster}").as_bytes(),
    )
    .to_string()
}

/// Value of [`FOCOM_REQUEST_LABEL`] for a FocomProvisioningRequest: an index to list by, a hash
/// when `<namespace>.<name>` is longer than a label value.
pub fn owner_label(namespace: &str, name: &str) -> String {
    names::label_value(&format!("{namespace}.{name}"))
}

/// Which FocomProvisioningRequest (`(namespace, name)`) a ProvisioningRequest was created for:
/// from [`FOCOM_REQUEST_ANNOTATION`], or, on objects created before it existed, from the label
/// (`<namespace>.<name>` in full then; namespaces have no dots).
pub fn owner_of(request: &ProvisioningRequest) -> Option<(String, String)> {
    let meta = &request.metadata;
    let (namespace, name) = match meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(FOCOM_REQUEST_ANNOTATION))
    {
        Some(owner) => owner.split_once('/')?,
        None => meta
            .labels
            .as_ref()?
            .get(FOCOM_REQUEST_LABEL)?
            .split_once('.')?,
    };
    Some((namespace.to_string(), name.to_string()))
}

/// Whether `request` is the ProvisioningRequest of the FocomProvisioningRequest
/// `namespace/name`: by its owner annotation or label; one without them (created over REST,
/// which carries neither) by its name, the UUID derived from the owner and its `clusterName`.
pub fn is_owned_by(request: &ProvisioningRequest, namespace: &str, name: &str) -> bool {
    match owner_of(request) {
        Some((owner_namespace, owner_name)) => owner_namespace == namespace && owner_name == name,
        None => request.spec.template_parameters["clusterName"]
            .as_str()
            .is_some_and(|cluster| {
                request.metadata.name.as_deref() == Some(&request_name(namespace, name, cluster))
            }),
    }
}

/// The ProvisioningRequest provisioning `cluster` for `request`.
pub fn provisioning_request(
    request: &FocomProvisioningRequest,
    cluster: &Selected,
) -> ProvisioningRequest {
    let namespace = request.metadata.namespace.clone().unwrap_or_default();
    let name = request.metadata.name.clone().unwrap_or_default();
    let labels = BTreeMap::from([
        (
            FOCOM_REQUEST_LABEL.to_string(),
            owner_label(&namespace, &name),
        ),
        (CLUSTER_NAME_LABEL.to_string(), cluster.name.clone()),
    ]);
    let annotations = BTreeMap::from([(
        FOCOM_REQUEST_ANNOTATION.to_string(),
        format!("{namespace}/{name}"),
    )]);
    let spec = &request.spec;
    ProvisioningRequest {
        metadata: ObjectMeta {
            name: Some(request_name(&namespace, &name, &cluster.name)),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        spec: ProvisioningRequestSpec {
            name: Some(spec.name.clone().map_or_else(
                || cluster.name.clone(),
                |n| format!("{n}: {}", cluster.name),
            )),
            description: spec.description.clone(),
            template_name: spec.template_name.clone(),
            template_version: spec.template_version.clone(),
            template_parameters: serde_json::to_value(&cluster.parameters).unwrap_or_default(),
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ProvisioningRequest {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let mut request = ProvisioningRequest::new("pr", ProvisioningRequestSpec::default());
        request.metadata.labels = map(labels);
        request.metadata.annotations = map(annotations);
        request
    }

    #[test]
    fn a_request_without_owner_marks_is_owned_by_the_request_its_name_derives_from() {
        let named = |name: &str, cluster: &str| {
            let mut request = labelled(&[], &[]);
            request.metadata.name = Some(name.into());
            request.spec.template_parameters = serde_json::json!({"clusterName": cluster});
            request
        };
        let own = named(&request_name("tenant", "fleet", "edge"), "edge");
        assert!(is_owned_by(&own, "tenant", "fleet"));
        assert!(!is_owned_by(&own, "tenant", "other"));
        assert!(!is_owned_by(&own, "other", "fleet"));
        // The name of another cluster's request: not this cluster's.
        let moved = named(&request_name("tenant", "fleet", "core"), "edge");
        assert!(!is_owned_by(&moved, "tenant", "fleet"));
        // An owner annotation decides, whatever the name.
        let mut annotated = own.clone();
        annotated.metadata.annotations = Some(
            [(
                FOCOM_REQUEST_ANNOTATION.to_string(),
                "tenant/other".to_string(),
            )]
            .into(),
        );
        assert!(!is_owned_by(&annotated, "tenant", "fleet"));
        assert!(is_owned_by(&annotated, "tenant", "other"));
    }

    #[test]
    fn a_253_character_owner_is_found_back_from_the_annotation() {
        let name = format!("{}.example.org", "n".repeat(241));
        assert_eq!(name.len(), 253);
        let label = owner_label("smo", &name);
        assert!(label.len() <= 63, "{label}");
        let annotation = format!("smo/{name}");
        let request = labelled(
            &[(FOCOM_REQUEST_LABEL, &label)],
            &[(FOCOM_REQUEST_ANNOTATION, &annotation)],
        );
        assert_eq!(owner_of(&request), Some(("smo".into(), name)));
    }

    #[test]
    fn objects_from_before_the_annotation_are_read_from_the_label() {
        let request = labelled(&[(FOCOM_REQUEST_LABEL, "smo.req.v2")], &[]);
        assert_eq!(owner_of(&request), Some(("smo".into(), "req.v2".into())));
        assert_eq!(owner_of(&labelled(&[], &[])), None);
    }
}
