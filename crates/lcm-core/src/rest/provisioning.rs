//! How a ProvisioningRequest looks over REST (`ProvisioningRequestInfo`), and how a REST body
//! (`ProvisioningRequestData`) becomes one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::{self, find};
use crate::crd::{
    ProvisioningRequest, ProvisioningRequestSpec, ProvisioningState, ResourceProvisioningPhase,
    ResourceProvisioningStatus,
};
use crate::status::provisioning::VALIDATED;

/// The body of a POST or PUT: what the SMO asks for.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisioningRequestData {
    pub provisioning_request_id: String,
    pub name: String,
    pub description: String,
    pub template_name: String,
    pub template_version: String,
    pub template_parameters: serde_json::Value,
}

/// A ProvisioningRequest as the API returns it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningRequestInfo {
    /// The custom resource's UID.
    pub provisioning_request_reference: String,
    pub provisioning_request_data: ProvisioningRequestData,
    pub provisioned_resource_set: ProvisionedResourceSet,
    pub status: Status,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedResourceSet {
    /// The Cluster API Cluster's UID; empty until the Cluster exists.
    pub node_cluster_id: String,
    pub infrastructure_resource_ids: Vec<String>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub update_time: String,
    pub message: String,
    pub provisioning_phase: Phase,
    pub node_cluster_provisioning_status: ResourceStatus,
    pub infrastructure_resource_provisioning_status: Vec<ResourceStatus>,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub resource_name: String,
    /// The resource's UID; empty until it exists.
    pub resource_id: String,
    pub resource_provisioning_phase: ResourceProvisioningPhase,
}

impl super::selection::Listed for ProvisioningRequestInfo {
    const NAME: &'static str = "ProvisioningRequestInfo";
    const IDENTIFIERS: &'static [&'static str] = &[
        "provisioningRequestData/provisioningRequestId",
        "provisioningRequestReference",
    ];
    /// The complex attributes: what was asked for and what was provisioned.
    const DEFAULT_EXCLUDED: &'static [&'static str] = &[
        "provisioningRequestData/templateParameters",
        "provisionedResourceSet",
    ];
}

/// The provisioning phase the API reports.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Not yet validated: the custom resource says `progressing` (Nephio's SMOs know no other
    /// state) and its condition `ProvisioningRequestValidated` is not yet True or False.
    Pending,
    Progressing,
    Fulfilled,
    Failed,
    Deleting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Progressing => "PROGRESSING",
            Self::Fulfilled => "FULFILLED",
            Self::Failed => "FAILED",
            Self::Deleting => "DELETING",
        }
    }
}

/// The phase of a request: its state, with `progressing` split by whether it was validated.
pub fn phase(request: &ProvisioningRequest) -> Phase {
    let state = request
        .status
        .as_ref()
        .and_then(|s| s.provisioning_status.as_ref())
        .map(|s| s.provisioning_state);
    let judged =
        find(request.conditions(), VALIDATED).is_some_and(|c| c.status != conditions::UNKNOWN);
    match state {
        _ if request.metadata.deletion_timestamp.is_some() => Phase::Deleting,
        Some(ProvisioningState::Deleting) => Phase::Deleting,
        Some(ProvisioningState::Failed) => Phase::Failed,
        Some(ProvisioningState::Fulfilled) => Phase::Fulfilled,
        Some(ProvisioningState::Progressing) if judged => Phase::Progressing,
        Some(ProvisioningState::Progressing) | None => Phase::Pending,
    }
}

/// Message of a request no operator has looked at yet.
pub const NOT_YET_SEEN: &str = "accepted; waiting for the O2IMS operator to validate it";

/// The request as the API shows it. Ids the O2ims model requires before the resources exist
/// are empty strings, never invented.
pub fn info(request: &ProvisioningRequest) -> ProvisioningRequestInfo {
    let status = request.status.clone().unwrap_or_default();
    let provisioning = status.provisioning_status.clone();
    let set = status.provisioned_resource_set.clone().unwrap_or_default();
    let resource = |r: &ResourceProvisioningStatus| ResourceStatus {
        resource_name: r.resource_name.clone(),
        resource_id: r.resource_id.clone().unwrap_or_default(),
        resource_provisioning_phase: r.resource_provisioning_phase,
    };
    let cluster_name = request.spec.template_parameters["clusterName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let node_cluster = status
        .node_cluster_provisioning_status
        .as_ref()
        .map(resource)
        .unwrap_or(ResourceStatus {
            resource_name: cluster_name,
            resource_id: String::new(),
            resource_provisioning_phase: ResourceProvisioningPhase::Processing,
        });
    let update_time = provisioning
        .as_ref()
        .and_then(|p| p.provisioning_update_time.clone())
        .or_else(|| request.metadata.creation_timestamp.clone());
    ProvisioningRequestInfo {
        provisioning_request_reference: request.uid().unwrap_or_default(),
        provisioning_request_data: data(request),
        provisioned_resource_set: ProvisionedResourceSet {
            node_cluster_id: set.o_cloud_node_cluster_id.unwrap_or_default(),
            infrastructure_resource_ids: set.o_cloud_infrastructure_resource_ids,
        },
        status: Status {
            update_time: update_time.map(|Time(t)| t.to_string()).unwrap_or_default(),
            message: provisioning
                .map(|p| p.provisioning_message)
                .unwrap_or_else(|| NOT_YET_SEEN.into()),
            provisioning_phase: phase(request),
            node_cluster_provisioning_status: node_cluster,
            infrastructure_resource_provisioning_status: status
                .infrastructure_resource_provisioning_status
                .iter()
                .map(resource)
                .collect(),
        },
    }
}

/// What the SMO asked for, as a REST body. A request created with `kubectl` without a
/// `spec.name` shows its object name.
pub fn data(request: &ProvisioningRequest) -> ProvisioningRequestData {
    let spec = &request.spec;
    ProvisioningRequestData {
        provisioning_request_id: request.name_any(),
        name: spec.name.clone().unwrap_or_else(|| request.name_any()),
        description: spec.description.clone().unwrap_or_default(),
        template_name: spec.template_name.clone(),
        template_version: spec.template_version.clone(),
        template_parameters: spec.template_parameters.clone(),
    }
}

/// The custom resource's spec for a REST body.
pub fn spec(data: &ProvisioningRequestData) -> ProvisioningRequestSpec {
    ProvisioningRequestSpec {
        name: Some(data.name.clone()),
        description: Some(data.description.clone()),
        template_name: data.template_name.clone(),
        template_version: data.template_version.clone(),
        template_parameters: data.template_parameters.clone(),
    }
}

const EPOCH: Time = Time(jiff::Timestamp::UNIX_EPOCH);

/// A request as a REST client of the API sees it, as a custom resource: what FOCOM, reaching an
/// O-Cloud over REST, decides from. What REST does not carry stays empty: no owner annotation,
/// no creation time; the only condition is `ProvisioningRequestValidated`, Unknown while
/// `PENDING`, True once past it, absent for `FAILED` (REST does not say whether validation or
/// provisioning failed, so a failed request counts as holding its hosts). `DELETING` sets the
/// deletion time to the status's update time. A time REST does not give is the epoch.
pub fn request_of(info: &ProvisioningRequestInfo) -> ProvisioningRequest {
    let data = &info.provisioning_request_data;
    let mut request = ProvisioningRequest::new(&data.provisioning_request_id, spec(data));
    let updated = info
        .status
        .update_time
        .parse::<jiff::Timestamp>()
        .ok()
        .map(Time);
    let meta = &mut request.metadata;
    meta.uid = Some(info.provisioning_request_reference.clone()).filter(|u| !u.is_empty());
    if let Some(cluster) = data.template_parameters["clusterName"].as_str() {
        meta.labels = Some([(crate::CLUSTER_NAME_LABEL.to_string(), cluster.to_string())].into());
    }
    let state = match info.status.provisioning_phase {
        Phase::Pending | Phase::Progressing => ProvisioningState::Progressing,
        Phase::Fulfilled => ProvisioningState::Fulfilled,
        Phase::Failed => ProvisioningState::Failed,
        Phase::Deleting => {
            meta.deletion_timestamp = Some(updated.clone().unwrap_or(EPOCH));
            ProvisioningState::Deleting
        }
    };
    let validated = match info.status.provisioning_phase {
        Phase::Failed => None,
        Phase::Pending => Some(conditions::UNKNOWN),
        _ => Some(conditions::TRUE),
    };
    let resource = |r: &ResourceStatus| ResourceProvisioningStatus {
        resource_name: r.resource_name.clone(),
        resource_id: Some(r.resource_id.clone()).filter(|id| !id.is_empty()),
        resource_provisioning_phase: r.resource_provisioning_phase,
    };
    let set = &info.provisioned_resource_set;
    request.status = Some(crate::crd::ProvisioningRequestStatus {
        provisioning_status: Some(crate::crd::ProvisioningStatus {
            provisioning_state: state,
            provisioning_message: info.status.message.clone(),
            provisioning_update_time: updated.clone(),
        }),
        provisioned_resource_set: Some(crate::crd::ProvisionedResourceSet {
            o_cloud_node_cluster_id: Some(set.node_cluster_id.clone()).filter(|id| !id.is_empty()),
            o_cloud_infrastructure_resource_ids: set.infrastructure_resource_ids.clone(),
        }),
        node_cluster_provisioning_status: Some(resource(
            &info.status.node_cluster_provisioning_status,
        )),
        infrastructure_resource_provisioning_status: info
            .status
            .infrastructure_resource_provisioning_status
            .iter()
            .map(resource)
            .collect(),
        conditions: validated
            .map(
                |status| k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                    type_: VALIDATED.into(),
                    status: status.into(),
                    reason: info.status.provisioning_phase.as_str().into(),
                    message: String::new(),
                    last_transition_time: updated.unwrap_or(EPOCH),
                    observed_generation: None,
                },
            )
            .into_iter()
            .collect(),
        ..Default::default()
    });
    request
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;
    use crate::crd::{ProvisioningRequestStatus, ProvisioningStatus};

    fn request(state: Option<ProvisioningState>, validated: Option<&str>) -> ProvisioningRequest {
        let mut pr = ProvisioningRequest::new(
            "123e4567-e89b-12d3-a456-426614174000",
            ProvisioningRequestSpec {
                template_name: "byoh-workload-cluster".into(),
                template_version: "v1".into(),
                template_parameters: serde_json::json!({"clusterName": "edge"}),
                ..Default::default()
            },
        );
        pr.status = state.map(|provisioning_state| ProvisioningRequestStatus {
            provisioning_status: Some(ProvisioningStatus {
                provisioning_state,
                provisioning_message: "m".into(),
                provisioning_update_time: None,
            }),
            conditions: validated
                .map(|status| Condition {
                    type_: VALIDATED.into(),
                    status: status.into(),
                    reason: "R".into(),
                    message: String::new(),
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                    observed_generation: None,
                })
                .into_iter()
                .collect(),
            ..Default::default()
        });
        pr
    }

    #[test]
    fn a_request_read_back_over_rest_keeps_its_phase_spec_and_ids() {
        use ProvisioningState::*;
        for (state, validated) in [
            (None, None),
            (Some(Progressing), Some("Unknown")),
            (Some(Progressing), Some("True")),
            (Some(Fulfilled), Some("True")),
            (Some(Failed), Some("False")),
        ] {
            let mut original = request(state, validated);
            original.metadata.uid = Some("uid-1".into());
            let read = request_of(&info(&original));
            assert_eq!(phase(&read), phase(&original), "{state:?} {validated:?}");
            assert_eq!(read.name_any(), original.name_any());
            assert_eq!(read.uid().as_deref(), Some("uid-1"));
            assert_eq!(
                read.spec.template_parameters,
                original.spec.template_parameters
            );
            assert_eq!(
                read.labels()
                    .get(crate::CLUSTER_NAME_LABEL)
                    .map(String::as_str),
                Some("edge")
            );
        }
    }

    #[test]
    fn a_failed_request_read_over_rest_holds_its_hosts_and_a_deleted_one_is_deleting() {
        let failed = request_of(&info(&request(
            Some(ProvisioningState::Failed),
            Some("False"),
        )));
        assert!(crate::status::provisioning::holds_resources(&failed));
        let mut deleted = request(Some(ProvisioningState::Fulfilled), Some("True"));
        deleted.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let read = request_of(&info(&deleted));
        assert!(read.metadata.deletion_timestamp.is_some());
        assert_eq!(phase(&read), Phase::Deleting);
    }

    #[test]
    fn progressing_is_pending_until_the_request_is_judged() {
        use ProvisioningState::*;
        let cases = [
            (None, None, Phase::Pending),
            (Some(Progressing), None, Phase::Pending),
            (Some(Progressing), Some("Unknown"), Phase::Pending),
            (Some(Progressing), Some("True"), Phase::Progressing),
            (Some(Failed), Some("False"), Phase::Failed),
            (Some(Fulfilled), Some("True"), Phase::Fulfilled),
            (Some(Deleting), Some("True"), Phase::Deleting),
        ];
        for (state, validated, want) in cases {
            assert_eq!(
                phase(&request(state, validated)),
                want,
                "{state:?} {validated:?}"
            );
        }
    }

    #[test]
    fn a_request_being_deleted_is_deleting_whatever_its_status_says() {
        let mut pr = request(Some(ProvisioningState::Fulfilled), Some("True"));
        pr.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(phase(&pr), Phase::Deleting);
    }

    #[test]
    fn a_request_before_any_status_has_empty_ids_and_says_it_waits() {
        let info = info(&request(None, None));
        assert_eq!(info.provisioned_resource_set.node_cluster_id, "");
        assert_eq!(
            info.status.node_cluster_provisioning_status.resource_name,
            "edge"
        );
        assert_eq!(info.status.message, NOT_YET_SEEN);
        assert_eq!(
            info.provisioning_request_data.provisioning_request_id,
            "123e4567-e89b-12d3-a456-426614174000"
        );
        let json = serde_json::to_value(&info).expect("json");
        assert_eq!(json["status"]["provisioningPhase"], "PENDING");
    }

    #[test]
    fn a_body_round_trips_through_the_spec() {
        let body: ProvisioningRequestData = serde_json::from_value(serde_json::json!({
            "provisioningRequestId": "123e4567-e89b-12d3-a456-426614174000",
            "name": "n", "description": "d", "templateName": "t", "templateVersion": "v",
            "templateParameters": {"clusterName": "edge"}
        }))
        .expect("body");
        let mut pr = ProvisioningRequest::new(&body.provisioning_request_id, spec(&body));
        pr.metadata.uid = Some("u".into());
        assert_eq!(data(&pr), body);
    }

    #[test]
    fn unknown_body_fields_are_refused() {
        let body = serde_json::json!({
            "provisioningRequestId": "x", "name": "n", "description": "d", "templateName": "t",
            "templateVersion": "v", "templateParameters": {}, "extra": 1
        });
        assert!(serde_json::from_value::<ProvisioningRequestData>(body).is_err());
    }
}
