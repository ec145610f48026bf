//! The project's custom resources.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

mod alarm;
mod focom;
mod host_claim;
mod provisioning_request;
mod subscription;
mod template_info;

pub use alarm::*;
pub use focom::*;
pub use host_claim::*;
pub use provisioning_request::*;
pub use subscription::*;
pub use template_info::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD the project defines, as `crds/` holds them.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ProvisioningRequest::crd(),
        FocomProvisioningRequest::crd(),
        OCloud::crd(),
        TemplateInfo::crd(),
        HostClaim::crd(),
        O2imsSubscription::crd(),
        O2imsAlarm::crd(),
    ]
}

/// Schema of a free-form JSON object (`x-kubernetes-preserve-unknown-fields`).
pub(crate) fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
