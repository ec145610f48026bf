//! The operator's configuration (flags, each also an environment variable).

use std::time::Duration;

use operator_kit::RuntimeOptions;

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

    pub fn timeout(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }
}
