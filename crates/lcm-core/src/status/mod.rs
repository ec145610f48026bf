//! Status mapping: Cluster API -> ProvisioningRequest -> FocomProvisioningRequest.

pub mod focom;
pub mod provisioning;
