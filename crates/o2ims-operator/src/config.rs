//! The operator's configuration (flags, each also an environment variable).

use std::time::Duration;

use operator_kit::RuntimeOptions;

/// The key of the host inventory ConfigMap holding the inventory (`input.json`'s format).
pub const HOST_INVENTORY_KEY: &str = "input.json";

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeOptions,
    /// Image of host-preparation Jobs, pinned by digest (`<name>@sha256:<hex>`): it must provide
    /// `sh`, `ansible-playbook` and `ssh`, and it holds the fleet's SSH key. Needed for
    /// `hostPreparation: auto`.
    #[arg(long, env = "HOST_PREPARATION_IMAGE")]
    pub host_preparation_image: Option<String>,
    /// Accept a host-preparation image named by tag, whose content may change under it (a lab only).
    #[arg(long, env = "ALLOW_UNPINNED_HOST_PREPARATION_IMAGE")]
    pub allow_unpinned_host_preparation_image: bool,
    /// `sha256:<hex>` of the BYOH host agent binary the playbook downloads: it installs only that
    /// binary. Needed for `hostPreparation: auto`.
    #[arg(long, env = "BYOH_AGENT_CHECKSUM", value_parser = parse_sha256)]
    pub byoh_agent_checksum: Option<String>,
    /// Install the BYOH host agent without verifying its checksum (a lab only).
    #[arg(long, env = "ALLOW_UNVERIFIED_BYOH_AGENT")]
    pub allow_unverified_byoh_agent: bool,
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
    #[command(flatten)]
    pub timeouts: lcm_core::status::provisioning::StageTimeouts,
    /// Seconds Cluster API may spend draining a node before deleting its machine
    /// (`nodeDrainTimeout` of control plane and workers).
    #[arg(long, env = "NODE_DRAIN_TIMEOUT_SECONDS", default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub node_drain_timeout_seconds: u64,
    #[command(flatten)]
    pub handoff: HandoffConfig,
}

/// Day 2: what each cluster is handed to, as the admin enables it (each cluster may opt out).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct HandoffConfig {
    /// ArgoCD's namespace: each fulfilled cluster is registered there by a declarative cluster
    /// Secret (the operator then reads Cluster API's kubeconfig Secrets). Unset: no ArgoCD.
    #[arg(long, env = "ARGOCD_NAMESPACE", value_parser = parse_dns_label)]
    pub argocd_namespace: Option<String>,
    /// Label each Cluster for Rancher Turtles' auto-import.
    #[arg(long, env = "RANCHER_AUTO_IMPORT")]
    pub rancher_auto_import: bool,
    /// The Config Sync repository (an https URL): each cluster gets a RootSync of its
    /// directory there, through a ClusterResourceSet. Unset: no Config Sync.
    #[arg(long, env = "CONFIG_SYNC_REPO", value_parser = parse_https_url)]
    pub config_sync_repo: Option<String>,
    /// The branch Config Sync follows.
    #[arg(long, env = "CONFIG_SYNC_BRANCH", default_value = "main")]
    pub config_sync_branch: String,
    /// Secret (in the operator's namespace, keys `username` and `token`) of the Config Sync
    /// repository's credentials, copied to each cluster. Unset: a public repository.
    #[arg(long, env = "CONFIG_SYNC_SECRET", value_parser = parse_dns_label)]
    pub config_sync_secret: Option<String>,
}

/// What host preparation is run with, once the operator has all it needs.
pub struct HostPreparationSettings<'a> {
    /// The API server the prepared hosts register at.
    pub apiserver: &'a str,
    pub image: &'a str,
    /// The agent binary's checksum; `None` installs it unverified (allowed by the admin).
    pub agent_checksum: Option<&'a str>,
}

impl Config {
    /// The settings of host preparation, or what the operator lacks for it (each flag and why).
    pub fn host_preparation(&self) -> Result<HostPreparationSettings<'_>, String> {
        let mut missing = Vec::new();
        if self.bootstrap_apiserver.is_none() {
            missing.push("--bootstrap-apiserver (BOOTSTRAP_APISERVER): the address at which hosts reach this cluster's API server");
        }
        if self.host_preparation_image.is_none() {
            missing.push("--host-preparation-image (HOST_PREPARATION_IMAGE): the image of the host-preparation Jobs, pinned by digest");
        }
        if self.byoh_agent_checksum.is_none() && !self.allow_unverified_byoh_agent {
            missing.push("--byoh-agent-checksum (BYOH_AGENT_CHECKSUM): the sha256 of the BYOH host agent binary the hosts install");
        }
        match (&self.bootstrap_apiserver, &self.host_preparation_image) {
            (Some(apiserver), Some(image)) if missing.is_empty() => Ok(HostPreparationSettings {
                apiserver,
                image,
                agent_checksum: self.byoh_agent_checksum.as_deref(),
            }),
            _ => Err(format!("the operator has no {}", missing.join("; no "))),
        }
    }

    /// Refuses, at start, settings that would run host preparation with what nobody checked.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(image) = &self.host_preparation_image
            && !self.allow_unpinned_host_preparation_image
            && !is_pinned(image)
        {
            anyhow::bail!(
                "--host-preparation-image (HOST_PREPARATION_IMAGE) {image:?} is not pinned by digest: \
                 name it as <name>@sha256:<64 hex digits> (the Jobs running it hold the fleet's SSH key), \
                 or pass --allow-unpinned-host-preparation-image"
            );
        }
        Ok(())
    }

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

    /// Each timed stage (its condition type) with its timeout in seconds.
    pub fn stage_timeouts(&self) -> [(&'static str, u64); 3] {
        self.timeouts.by_stage()
    }

    pub fn timeout(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }
}

/// Whether an image reference names its content: `<name>@sha256:<64 lowercase hex digits>`.
fn is_pinned(image: &str) -> bool {
    image
        .split_once('@')
        .is_some_and(|(name, digest)| !name.is_empty() && parse_sha256(digest).is_ok())
}

fn parse_dns_label(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    valid
        .then(|| text.to_string())
        .ok_or_else(|| "expected a DNS label (lower-case letters, digits and '-')".into())
}

fn parse_https_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .ok_or("expected an https:// URL")?;
    let host = rest.split('/').next().unwrap_or_default();
    let clean = !host.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    clean
        .then(|| text.to_string())
        .ok_or_else(|| "expected an https:// URL with a host and no spaces".into())
}

fn parse_sha256(text: &str) -> Result<String, String> {
    match text.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(text.to_string())
        }
        _ => Err("expected sha256:<64 lowercase hex digits>".into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_images_pinned_by_digest_are_accepted_unless_allowed() {
        let pinned = format!("registry.example.org/runner@{DIGEST}");
        assert!(
            Config::parse(&["--host-preparation-image", &pinned])
                .check()
                .is_ok()
        );
        for unpinned in [
            "quay.io/ansible/ansible-runner:latest",
            "quay.io/ansible/ansible-runner",
            "runner@sha256:0123",
            &format!("@{DIGEST}"),
            &format!("runner@{}", DIGEST.to_uppercase()),
        ] {
            let error = Config::parse(&["--host-preparation-image", unpinned]).check();
            let message = error.expect_err(unpinned).to_string();
            assert!(message.contains("not pinned by digest"), "{message}");
        }
        let allowed = [
            "--host-preparation-image",
            "runner:latest",
            "--allow-unpinned-host-preparation-image",
        ];
        assert!(Config::parse(&allowed).check().is_ok());
    }

    #[test]
    fn host_preparation_names_every_missing_setting() {
        let missing = Config::parse(&[])
            .host_preparation()
            .err()
            .expect("missing");
        for flag in [
            "--bootstrap-apiserver",
            "--host-preparation-image",
            "--byoh-agent-checksum",
        ] {
            assert!(missing.contains(flag), "{missing}");
        }
        let image = format!("runner@{DIGEST}");
        let base = [
            "--bootstrap-apiserver",
            "https://192.0.2.1:6443",
            "--host-preparation-image",
            &image,
        ];
        let unverified = Config::parse(&[&base[..], &["--allow-unverified-byoh-agent"]].concat());
        let settings = unverified.host_preparation().expect("complete");
        assert_eq!(
            (settings.apiserver, settings.image, settings.agent_checksum),
            ("https://192.0.2.1:6443", image.as_str(), None)
        );
        let verified = Config::parse(&[&base[..], &["--byoh-agent-checksum", DIGEST]].concat());
        let settings = verified.host_preparation().expect("complete");
        assert_eq!(settings.agent_checksum, Some(DIGEST));
        let missing = Config::parse(&base)
            .host_preparation()
            .err()
            .expect("no checksum");
        assert!(
            missing.contains("--byoh-agent-checksum")
                && !missing.contains("--host-preparation-image"),
            "{missing}"
        );
    }

    #[test]
    fn an_agent_checksum_is_a_sha256() {
        assert!(parse_sha256(DIGEST).is_ok());
        for bad in [
            "",
            "sha256:",
            "md5:0123",
            &DIGEST[..70],
            &format!("{DIGEST}0"),
            &DIGEST.replace('a', "g"),
        ] {
            assert!(parse_sha256(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn handoff_settings_are_typed_at_start() {
        let config = Config::parse(&[
            "--argocd-namespace",
            "argocd",
            "--config-sync-repo",
            "https://git.example.org/fleet.git",
        ]);
        assert_eq!(config.handoff.argocd_namespace.as_deref(), Some("argocd"));
        assert_eq!(config.handoff.config_sync_branch, "main");
        assert!(!config.handoff.rancher_auto_import);
        for bad in [
            "http://git.example.org/x",
            "https://",
            "git@example.org:x",
            "https://a b",
        ] {
            assert!(parse_https_url(bad).is_err(), "{bad}");
        }
        for bad in ["", "Argo", "-a", "a/b"] {
            assert!(parse_dns_label(bad).is_err(), "{bad}");
        }
    }
}
