//! The O2ims REST interface (O-RAN O2ims, as the documents in `shared/o2ims-openapi` define it):
//! its models and their mapping from and to the custom resources, which stay the source of
//! truth. Pure: the server (`crates/o2ims-api`) and FOCOM's REST client do the I/O.

pub mod alarms;
pub mod inventory;
pub mod notifications;
pub mod paging;
pub mod provisioning;
pub mod selection;

use serde::{Deserialize, Serialize};

/// Path prefix of the provisioning API.
pub const PROVISIONING_PREFIX: &str = "/o2ims-infrastructureProvisioning/v1";
/// Path prefix of the inventory API.
pub const INVENTORY_PREFIX: &str = "/o2ims-infrastructureInventory/v2";
/// Version of the provisioning API served.
pub const PROVISIONING_VERSION: &str = "1.2.0";
/// Version of the inventory API served.
pub const INVENTORY_VERSION: &str = "2.0.0";
/// Media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error as RFC 7807 describes it (`ProblemDetails` of the common document).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The request path the problem occurred on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The versions one API serves (`APIVersions`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiVersions {
    pub uri_prefix: String,
    pub api_versions: Vec<ApiVersion>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApiVersion {
    pub version: String,
}

impl ApiVersions {
    pub fn of(uri_prefix: &str, version: &str) -> Self {
        Self {
            uri_prefix: uri_prefix.into(),
            api_versions: vec![ApiVersion {
                version: version.into(),
            }],
        }
    }
}

/// Whether `id` is a UUID in the lower-case hyphenated form: the ids the API assigns and
/// accepts name Kubernetes objects, whose names are lower case.
pub fn is_object_uuid(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// A stable UUID for an object of `kind` named `name` in the O-Cloud `ocloud_id` (pools, hosts
/// and resource types have names, the API wants UUIDs; the same name gives the same id).
pub fn derived_id(ocloud_id: &str, kind: &str, name: &str) -> String {
    let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, ocloud_id.as_bytes());
    uuid::Uuid::new_v5(&namespace, format!("{kind}/{name}").as_bytes())
        .hyphenated()
        .to_string()
}

/// An O-Cloud for unit tests.
#[cfg(test)]
pub(crate) fn example_cloud() -> inventory::Cloud {
    inventory::Cloud {
        ocloud_id: "262c8f17-52b5-4614-9e56-812ae21fa8a7".into(),
        global_cloud_id: "00000000-0000-0000-0000-000000000000".into(),
        name: "lab".into(),
        description: String::new(),
        service_uri: "https://o2ims.example".into(),
    }
}

/// The id of the alarm dictionary of an entity type (a resource type names its own).
pub fn alarm_dictionary_id(ocloud_id: &str, entity: crate::crd::AlarmEntity) -> String {
    derived_id(ocloud_id, "alarmDictionary", entity.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_uuids_are_lower_case_hyphenated() {
        assert!(is_object_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_object_uuid("123E4567-E89B-12D3-A456-426614174000"));
        assert!(!is_object_uuid("123e4567e89b12d3a456426614174000"));
        assert!(!is_object_uuid("core"));
    }

    #[test]
    fn derived_ids_are_stable_and_distinct_per_kind_and_cloud() {
        let a = derived_id("cloud", "resourcePool", "paris");
        assert_eq!(a, derived_id("cloud", "resourcePool", "paris"));
        assert!(is_object_uuid(&a));
        assert_ne!(a, derived_id("cloud", "resource", "paris"));
        assert_ne!(a, derived_id("other", "resourcePool", "paris"));
    }
}
