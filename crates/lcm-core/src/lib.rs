//! Shared core of the O-RAN lifecycle manager: CRD types, the inventory model,
//! the `byoh-workload-cluster` template, the Cluster API generator and the
//! status mapping. Everything here is pure: no I/O, no client.

pub mod ansible;
pub mod capi;
pub mod conditions;
pub mod crd;
pub mod focom;
pub mod handoff;
pub mod inventory;
pub mod names;
pub mod rest;
pub mod status;
pub mod template;
pub mod yaml;

/// Label every object created on behalf of a ProvisioningRequest carries, with the request's
/// name as value ([`names::label_value`] of it: names longer than a label value are hashed).
pub const PROVISIONING_REQUEST_LABEL: &str = "o2ims.provisioning.oran.org/provisioning-request";

/// The label selector of everything created on behalf of the ProvisioningRequest `name`.
pub fn provisioning_request_selector(name: &str) -> String {
    format!("{PROVISIONING_REQUEST_LABEL}={}", names::label_value(name))
}

/// Label naming the FocomProvisioningRequest a ProvisioningRequest was created for
/// ([`names::label_value`] of `<namespace>.<name>`).
pub const FOCOM_REQUEST_LABEL: &str = "focom.nephio.org/focom-provisioning-request";
/// Annotation holding `<namespace>/<name>` of that FocomProvisioningRequest in full (the label
/// may be a hash).
pub const FOCOM_REQUEST_ANNOTATION: &str = "focom.nephio.org/focom-provisioning-request";
/// Label naming the inventory cluster a ProvisioningRequest provisions.
pub const CLUSTER_NAME_LABEL: &str = "focom.nephio.org/cluster-name";
/// Label on every ByoHost whose value is the inventory host id; ByoMachineTemplate selectors pin on it.
pub const HOST_ID_LABEL: &str = "host-id";
