use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::names;

/// One host's exclusive use by one ProvisioningRequest. The O2IMS operator creates it before
/// any host-preparation Job or Cluster API object names the host; the API server refuses a
/// second object of the same name, so two requests, replicas or operators can never both hold
/// a host. Once marked in use it is deleted only after BYOH has released the host.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "o2ims.provisioning.oran.org",
    version = "v1alpha1",
    kind = "HostClaim",
    category = "oran",
    doc = "A host of the O-Cloud held by one ProvisioningRequest (the O2IMS operator's host ledger).",
    printcolumn(name = "Host", type_ = "string", json_path = ".spec.hostId"),
    printcolumn(name = "Request", type_ = "string", json_path = ".spec.requestName"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(name = "InUse", type_ = "boolean", json_path = ".spec.inUse"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
// A claim is never handed over: the holder releases it (deletes it) and another creates its own.
#[x_kube(validation = Rule::new(
    "self.hostId == oldSelf.hostId && self.requestName == oldSelf.requestName && self.requestUid == oldSelf.requestUid && self.clusterName == oldSelf.clusterName"
).message(HOST_CLAIM_NOT_TRANSFERRED))]
#[x_kube(validation = Rule::new("!oldSelf.inUse || self.inUse").message(IN_USE_UNTIL_RELEASED))]
#[serde(rename_all = "camelCase")]
pub struct HostClaimSpec {
    /// The host id (the ByoHost's `host-id` label) held.
    pub host_id: String,
    /// Name of the ProvisioningRequest holding the host.
    pub request_name: String,
    /// UID of that ProvisioningRequest: a request recreated under the same name holds nothing.
    pub request_uid: String,
    /// The cluster the host is for.
    pub cluster_name: String,
    /// Set (under the claim's resourceVersion) before anything names the host; a claim not in
    /// use may be withdrawn by its holder, one in use goes only once BYOH has released the host.
    pub in_use: bool,
}

const HOST_CLAIM_NOT_TRANSFERRED: &str =
    "a HostClaim is not transferred: its holder deletes it once BYOH has released the host";
const IN_USE_UNTIL_RELEASED: &str = "a HostClaim in use stays in use until it is deleted";

impl HostClaim {
    /// The claim of `host_id` for a request, under the one name every claimant uses.
    pub fn for_host(host_id: &str, request_name: &str, request_uid: &str, cluster: &str) -> Self {
        HostClaim::new(
            &host_claim_name(host_id),
            HostClaimSpec {
                host_id: host_id.into(),
                request_name: request_name.into(),
                request_uid: request_uid.into(),
                cluster_name: cluster.into(),
                in_use: false,
            },
        )
    }

    /// Whether the request with `uid` holds this claim.
    pub fn held_by(&self, uid: &str) -> bool {
        self.spec.request_uid == uid
    }
}

/// The name of `host_id`'s claim: the id itself when it is a valid object name, else a
/// lower-case form with a hash of the id (host ids are label values, which may hold upper
/// case and `_`; two ids differing only there still get different names).
pub fn host_claim_name(host_id: &str) -> String {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !host_id.is_empty()
        && host_id.chars().all(valid)
        && alphanumeric(host_id.chars().next())
        && alphanumeric(host_id.chars().last())
    {
        return host_id.to_string();
    }
    let lowered: String = host_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    let lowered = lowered.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = format!("{:016x}", names::fnv1a64(host_id.as_bytes()));
    if lowered.is_empty() {
        hash
    } else {
        format!("{lowered}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_id_that_is_a_valid_name_is_its_claims_name() {
        assert_eq!(host_claim_name("edge1-h1"), "edge1-h1");
        assert_eq!(host_claim_name("rack.2.node-7"), "rack.2.node-7");
    }

    #[test]
    fn other_host_ids_get_distinct_valid_names() {
        let names: Vec<String> = ["Edge1_H1", "edge1-h1-x", "edge1_h1", "EDGE1-H1", "_h_"]
            .iter()
            .map(|id| host_claim_name(id))
            .collect();
        for name in &names {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                    && name.len() <= 253
                    && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && name.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names[0].starts_with("edge1-h1-"), "{}", names[0]);
    }
}
