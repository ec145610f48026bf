//! The `byoh-workload-cluster` template (version `v1`): its parameters, their
//! validation, and the JSON Schema a TemplateInfo publishes for them.

mod changes;
mod host_access;
mod parameters;
pub mod schema;
pub(crate) mod validate;
mod version;

pub use changes::{Change, classify};
pub use host_access::refuse_request_host_access;
pub use parameters::*;
pub use validate::{FieldError, ParameterErrors, validate, validate_request};
pub use version::KubernetesVersion;

/// Name of the built-in template.
pub const NAME: &str = "byoh-workload-cluster";
/// Version of the built-in template.
pub const VERSION: &str = "v1";

/// Oldest Kubernetes minor Cluster API v1.10 supports for workload clusters.
pub const MIN_KUBERNETES: KubernetesVersion = KubernetesVersion::new(1, 27, 0);
/// First Kubernetes minor Cluster API v1.10 no longer supports for workload clusters.
pub const UNSUPPORTED_KUBERNETES: KubernetesVersion = KubernetesVersion::new(1, 34, 0);

/// JSON Schema of the template's parameters, as published in its TemplateInfo.
pub fn parameter_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ClusterParameters)).unwrap_or_default()
}
