use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A cluster template known to the O-Cloud, with the JSON Schema of its parameters
/// (Nephio's `provisioning.oran.org/v1alpha1` TemplateInfo).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "provisioning.oran.org",
    version = "v1alpha1",
    kind = "TemplateInfo",
    plural = "templateinfoes",
    namespaced,
    category = "oran",
    doc = "A cluster template and the JSON Schema its templateParameters must satisfy.",
    printcolumn(name = "Template", type_ = "string", json_path = ".spec.templateName"),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".spec.templateVersion"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfoSpec {
    /// Template name, as used in `templateName`.
    pub template_name: String,
    /// Template version, as used in `templateVersion`.
    pub template_version: String,
    /// JSON Schema of `templateParameters`, as a JSON or YAML string.
    pub template_parameter_schema: String,
}
