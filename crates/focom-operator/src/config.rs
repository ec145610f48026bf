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
}

/// Key of the inventory in its ConfigMap.
pub const INVENTORY_KEY: &str = "input.json";
