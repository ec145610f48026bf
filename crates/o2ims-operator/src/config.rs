//! The operator's configuration (flags, each also an environment variable).

use std::time::Duration;

use operator_kit::RuntimeOptions;

/// The key of the host inventory ConfigMap holding the inventory (`input.json`'s format).
pub const HOST_INVENTORY_KEY: &str = "input.json";

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeOptions,
    /// Image of host-preparation Jobs: must provide `sh`, `ansible-playbook` and `ssh`.
    #[arg(
        long,
        env = "HOST_PREPARATION_IMAGE",
        default_value = "quay.io/ansible/ansible-runner:latest"
    )]
    pub host_preparation_image: String,
    /// ConfigMap (in the operator's namespace) holding the playbook; keys are paths with `/` written as `__`.
    #[arg(
        long,
        env = "PLAYBOOK_CONFIGMAP",
        default_value = "o2ims-host-preparation-playbook"
    )]
    pub playbook_configmap: String,
    /// Secret (in the operator's namespace) with the SSH private key (`ssh-privatekey`) for the hosts.
    #[arg(long, env = "SSH_KEY_SECRET", default_value = "o2ims-host-ssh-key")]
    pub ssh_key_secret: String,
    /// The management cluster's API server as the hosts reach it (`https://host:port`): the BYOH
    /// agents of prepared hosts register there, with a bootstrap kubeconfig the operator has BYOH
    /// issue for each host-preparation Job. Needed for `hostPreparation: auto`.
    #[arg(long, env = "BOOTSTRAP_APISERVER")]
    pub bootstrap_apiserver: Option<String>,
    /// PEM file of the CA that signed that API server's certificate (default: the cluster CA of
    /// the operator's ServiceAccount).
    #[arg(
        long,
        env = "BOOTSTRAP_CA_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    pub bootstrap_ca_file: std::path::PathBuf,
    /// ConfigMap (in the operator's namespace, key `input.json`, the inventory format) of the
    /// O-Cloud's hosts: how host preparation reaches each host (address, SSH user, hostname,
    /// pinned SSH host keys). The admin's, so a request cannot aim the fleet's SSH key elsewhere.
    #[arg(
        long,
        env = "HOST_INVENTORY_CONFIGMAP",
        default_value = "lcm-inventory"
    )]
    pub host_inventory_configmap: String,
    /// Accept `templateParameters.hostAccess` in requests, for hosts the host inventory lacks.
    /// Off, such a request is refused: it would say where the fleet's SSH key is used.
    #[arg(long, env = "ALLOW_REQUEST_HOST_ACCESS")]
    pub allow_request_host_access: bool,
    /// Namespace the host agents register their ByoHosts in.
    #[arg(long, env = "BYOH_NAMESPACE", default_value = "byoh-hosts")]
    pub byoh_namespace: String,
    /// ConfigMap (in the operator's namespace) with the Calico manifest (`calico.yaml`) for `cni: calico`.
    #[arg(
        long,
        env = "CALICO_MANIFEST_CONFIGMAP",
        default_value = "calico-manifest"
    )]
    pub calico_manifest_configmap: String,
    /// Seconds host preparation (Job and host registration) may take.
    #[arg(long, env = "HOST_PREPARATION_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub host_preparation_timeout_seconds: u64,
    /// Seconds the control plane may take to become Ready (also per upgrade).
    #[arg(long, env = "CONTROL_PLANE_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub control_plane_timeout_seconds: u64,
    /// Seconds the workers may take to become Ready (also per scale or upgrade).
    #[arg(long, env = "WORKERS_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub workers_timeout_seconds: u64,
}

impl Config {
    /// Namespace of the operator: host-preparation Jobs and their ConfigMaps live there.
    pub fn namespace(&self) -> &str {
        &self.runtime.pod_namespace
    }

    /// Where host access comes from, for messages: `ConfigMap <namespace>/<name> (input.json)`.
    pub fn host_inventory(&self) -> String {
        format!(
            "ConfigMap {}/{} ({HOST_INVENTORY_KEY})",
            self.namespace(),
            self.host_inventory_configmap
        )
    }

    pub fn timeout(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }
}

#[cfg(test)]
impl Config {
    /// The configuration of `o2ims-operator run --pod-namespace o2ims-system <args>`.
    pub fn parse(args: &[&str]) -> Self {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            config: Config,
        }
        let all = ["o2ims-operator", "--pod-namespace", "o2ims-system"];
        <Flags as clap::Parser>::try_parse_from(all.iter().chain(args))
            .expect("flags")
            .config
    }
}
