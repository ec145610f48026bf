//! The operator's configuration (flags, each also an environment variable).

use operator_kit::RuntimeOptions;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeOptions,
    /// ConfigMap holding the inventory (key `input.json`).
    #[arg(long, env = "INVENTORY_CONFIGMAP", default_value = "lcm-inventory")]
    pub inventory_configmap: String,
    /// Namespace of the inventory ConfigMap (default: the operator's namespace).
    #[arg(long, env = "INVENTORY_NAMESPACE")]
    pub inventory_namespace: Option<String>,
    /// Namespaces, besides its own, whose OClouds a FocomProvisioningRequest may use
    /// (`spec.oCloudNamespace`), comma-separated.
    #[arg(long, env = "ALLOWED_OCLOUD_NAMESPACES", value_delimiter = ',')]
    pub allowed_ocloud_namespaces: Vec<String>,
    /// The only namespace TemplateInfos are read from (default: the operator's namespace).
    #[arg(long, env = "TEMPLATE_NAMESPACE")]
    pub template_namespace: Option<String>,
    /// Let a request describing its cluster in full say how its hosts are reached
    /// (`templateParameters.hostAccess`). Off: host access comes only from the admin's inventory.
    #[arg(long, env = "ALLOW_REQUEST_HOST_ACCESS")]
    pub allow_request_host_access: bool,
    /// Seconds between two listings of an O-Cloud reached over its O2ims REST API (which has
    /// no watch): how late FOCOM sees its changes.
    #[arg(long, env = "OCLOUD_POLL_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ocloud_poll_seconds: u64,
}

impl Config {
    pub fn namespace(&self) -> &str {
        &self.runtime.pod_namespace
    }

    pub fn inventory_namespace(&self) -> &str {
        self.inventory_namespace
            .as_deref()
            .unwrap_or(self.namespace())
    }

    pub fn template_namespace(&self) -> &str {
        self.template_namespace
            .as_deref()
            .unwrap_or(self.namespace())
    }

    /// Whether a request in `request_namespace` may use the OClouds of `ocloud_namespace`.
    pub fn ocloud_allowed(&self, request_namespace: &str, ocloud_namespace: &str) -> bool {
        ocloud_namespace == request_namespace
            || self
                .allowed_ocloud_namespaces
                .iter()
                .any(|n| n == ocloud_namespace)
    }
}

/// Key of the inventory in its ConfigMap.
pub const INVENTORY_KEY: &str = "input.json";
