//! Host preparation: a Kubernetes Job running the project's Ansible playbook against exactly
//! the hosts that have no registered ByoHost yet, with a bootstrap kubeconfig BYOH issues for
//! it (a `BootstrapKubeconfig`: a bootstrap token valid for 30 minutes, so one per Job). Pure
//! builders and status reading.

use jiff::Timestamp;
use k8s_openapi::ByteString;
use serde_json::{Value, json};

use lcm_core::PROVISIONING_REQUEST_LABEL;
use lcm_core::capi::{Kind, MANAGED_BY};
use lcm_core::names::label_value;
use lcm_core::template::{ClusterParameters, HostAccess};

use crate::config::{Config, HostPreparationSettings};

/// How long an issued bootstrap kubeconfig may be handed to a new Job: BYOH's bootstrap tokens
/// expire after 30 minutes, and the hosts need time to register with it.
const BOOTSTRAP_FRESH_SECONDS: i64 = 20 * 60;

/// The name of everything preparing `hosts` of a cluster (Job, inventory, bootstrap kubeconfig);
/// named by the host set, so a later scale-out prepares its new hosts with a new Job.
pub fn name(params: &ClusterParameters, hosts: &[String]) -> String {
    format!(
        "hostprep-{}-{:08x}",
        params.cluster_name,
        fnv1a(&hosts.join(","))
    )
}

fn metadata(
    config: &Config,
    request_name: &str,
    owner: &Value,
    name: &str,
    hosts: &[String],
) -> Value {
    json!({
        "name": name,
        "namespace": config.namespace(),
        "labels": {PROVISIONING_REQUEST_LABEL: label_value(request_name), "app.kubernetes.io/managed-by": MANAGED_BY},
        "annotations": {HOSTS_ANNOTATION: hosts.join(",")},
        "ownerReferences": [owner],
    })
}

/// Asks BYOH for a bootstrap kubeconfig with which the agents of `hosts` register at `apiserver`
/// (whose certificate `ca_pem` signed).
pub fn bootstrap_request(
    config: &Config,
    request_name: &str,
    owner: &Value,
    name: &str,
    hosts: &[String],
    apiserver: &str,
    ca_pem: &[u8],
) -> Value {
    json!({"apiVersion": Kind::BootstrapKubeconfig.api_version(), "kind": Kind::BootstrapKubeconfig.name(),
        "metadata": metadata(config, request_name, owner, name, hosts),
        "spec": {"apiserver": apiserver, "certificate-authority-data": base64(ca_pem)}})
}

/// The kubeconfig BYOH issued for a BootstrapKubeconfig, if it has.
pub fn issued(bootstrap: &Value) -> Option<&str> {
    bootstrap["status"]["bootstrapKubeconfigData"]
        .as_str()
        .filter(|data| !data.is_empty())
}

/// Whether a BootstrapKubeconfig is too old for a new Job (its token may expire before the hosts register).
pub fn is_stale(bootstrap: &Value, now: Timestamp) -> bool {
    bootstrap["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|created| now.as_second() - created.as_second() > BOOTSTRAP_FRESH_SECONDS)
}

fn base64(bytes: &[u8]) -> Value {
    // ByteString serializes as Kubernetes' base64 data fields do.
    serde_json::to_value(ByteString(bytes.to_vec())).unwrap_or_default()
}

/// How a host-preparation Job ended, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Running,
    Succeeded,
    Failed(String),
}

pub use lcm_core::capi::{HOSTS_ANNOTATION, prepared_hosts};

/// The user of the ansible-runner image the chart pins; its group reads the mounted SSH key.
const RUNNER_UID: i64 = 1000;

/// Where the Job mounts what it needs.
const INVENTORY_DIR: &str = "/etc/lcm/inventory";
const PLAYBOOK_DIR: &str = "/etc/lcm/playbook";
const SSH_DIR: &str = "/etc/lcm/ssh";
const BOOTSTRAP_DIR: &str = "/etc/lcm/bootstrap";
const BOOTSTRAP_KUBECONFIG_KEY: &str = "bootstrap-kubeconfig";

/// Rebuilds the playbook tree from the ConfigMap (whose keys cannot hold `/`) and runs it.
const SCRIPT: &str = r#"set -eu
mkdir -p /tmp/ansible && cd /tmp/ansible
for f in /etc/lcm/playbook/*; do
  path=$(basename "$f" | sed 's|__|/|g'); mkdir -p "$(dirname "$path")"; cp "$f" "$path"
done
exec ansible-playbook -i /etc/lcm/inventory/inventory.yaml site.yaml \
  -e byoh_bootstrap_kubeconfig_file=/etc/lcm/bootstrap/bootstrap-kubeconfig"#;

/// The bootstrap kubeconfig's Secret, the inventory ConfigMap and the Job preparing `hosts`.
pub struct HostPreparation {
    pub secret: Value,
    pub objects: Vec<Value>,
}

/// `access`: how to reach each host to prepare (from the O-Cloud's host inventory).
pub fn build(
    config: &Config,
    request_name: &str,
    owner: &Value,
    params: &ClusterParameters,
    access: &[HostAccess],
    settings: &HostPreparationSettings<'_>,
    bootstrap_kubeconfig: &str,
) -> HostPreparation {
    let hosts: Vec<String> = access.iter().map(|a| a.id.clone()).collect();
    let job_name = name(params, &hosts);
    let mut inventory =
        lcm_core::ansible::inventory(access, &params.kubernetes_version, &config.byoh_namespace);
    // The playbook installs only the agent binary with this checksum, unless the admin allowed none.
    let agent = match settings.agent_checksum {
        Some(checksum) => ("byoh_agent_checksum", json!(checksum)),
        None => ("byoh_agent_allow_unverified", json!(true)),
    };
    lcm_core::ansible::set_group_var(&mut inventory, agent.0, agent.1);
    let metadata = metadata(config, request_name, owner, &job_name, &hosts);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque",
        "data": {BOOTSTRAP_KUBECONFIG_KEY: base64(bootstrap_kubeconfig.as_bytes())}});
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
        "data": {"inventory.yaml": lcm_core::ansible::render(&inventory),
                 "known_hosts": lcm_core::ansible::known_hosts(access)}});
    let secret_volume = |name: &str, secret: &str| json!({"name": name, "secret": {"secretName": secret, "defaultMode": 0o440}});
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": {
        "backoffLimit": 1,
        "activeDeadlineSeconds": config.timeouts.host_preparation_timeout_seconds,
        "template": {
            "metadata": {"labels": {PROVISIONING_REQUEST_LABEL: label_value(request_name)}},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                // The pod holds the fleet's SSH key: it runs as the image's unprivileged user
                // (whose group may read the key), with nothing it does not need.
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID, "fsGroup": RUNNER_UID,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": "ansible",
                    "image": settings.image,
                    "command": ["sh", "-c", SCRIPT],
                    "securityContext": {
                        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    // Hosts are verified against the keys the inventory pins, never trusted on first use.
                    "env": [
                        {"name": "ANSIBLE_HOST_KEY_CHECKING", "value": "True"},
                        {"name": "ANSIBLE_SSH_ARGS", "value": format!("-o StrictHostKeyChecking=yes -o UserKnownHostsFile={INVENTORY_DIR}/known_hosts")},
                        {"name": "ANSIBLE_PRIVATE_KEY_FILE", "value": format!("{SSH_DIR}/ssh-privatekey")},
                        // The root filesystem is read-only: Ansible's home and temp files go to /tmp.
                        {"name": "HOME", "value": "/tmp"},
                    ],
                    "volumeMounts": [
                        {"name": "inventory", "mountPath": INVENTORY_DIR, "readOnly": true},
                        {"name": "playbook", "mountPath": PLAYBOOK_DIR, "readOnly": true},
                        {"name": "ssh", "mountPath": SSH_DIR, "readOnly": true},
                        {"name": "bootstrap", "mountPath": BOOTSTRAP_DIR, "readOnly": true},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }],
                "volumes": [
                    {"name": "inventory", "configMap": {"name": job_name}},
                    {"name": "playbook", "configMap": {"name": config.playbook_configmap}},
                    secret_volume("ssh", &config.ssh_key_secret),
                    secret_volume("bootstrap", &job_name),
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }});
    HostPreparation {
        secret,
        objects: vec![config_map, job],
    }
}

/// Reads a Job's conditions.
pub fn outcome(job: &Value) -> JobOutcome {
    let conditions = job["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let holds = |type_: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == type_ && c["status"] == "True")
    };
    if holds("Complete").is_some() {
        return JobOutcome::Succeeded;
    }
    match holds("Failed") {
        Some(c) => JobOutcome::Failed(format!(
            "{}: {}",
            c["reason"].as_str().unwrap_or("Failed"),
            c["message"]
                .as_str()
                .unwrap_or("the host-preparation Job failed")
        )),
        None => JobOutcome::Running,
    }
}

/// FNV-1a: a stable short hash for names (std's hasher may change between Rust releases).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_outcome_follows_its_conditions() {
        assert_eq!(
            outcome(&json!({"status": {"active": 1}})),
            JobOutcome::Running
        );
        assert_eq!(
            outcome(&json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})),
            JobOutcome::Succeeded
        );
        let failed = json!({"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}
        ]}});
        assert_eq!(
            outcome(&failed),
            JobOutcome::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
    }

    #[test]
    fn bootstrap_kubeconfigs_are_used_while_fresh() {
        let created = |t: &str| json!({"metadata": {"creationTimestamp": t}});
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().expect("time");
        assert!(!is_stale(&created("2026-01-01T00:45:00Z"), now));
        assert!(is_stale(&created("2026-01-01T00:30:00Z"), now));
        assert_eq!(
            issued(&json!({"status": {"bootstrapKubeconfigData": ""}})),
            None
        );
        assert_eq!(
            issued(&json!({"status": {"bootstrapKubeconfigData": "apiVersion: v1"}})),
            Some("apiVersion: v1")
        );
    }

    fn params() -> ClusterParameters {
        lcm_core::template::validate(&json!({
            "clusterName": "c", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.1.0.1"},
            "hosts": {"controlPlane": ["h1"]}, "hostPreparation": "auto",
            "hostAccess": [{"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu",
                "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]}],
        }))
        .expect("valid")
    }

    const IMAGE: &str = "registry.example.org/runner@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const AGENT: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn build_with(params: &ClusterParameters, agent_checksum: Option<&str>) -> HostPreparation {
        let settings = HostPreparationSettings {
            apiserver: "https://192.0.2.1:6443",
            image: IMAGE,
            agent_checksum,
        };
        let config = Config::parse(&[]);
        build(
            &config,
            "req",
            &json!({}),
            params,
            &params.host_access,
            &settings,
            "kubeconfig",
        )
    }

    fn inventory(built: &HostPreparation) -> &str {
        built.objects[0]["data"]["inventory.yaml"]
            .as_str()
            .expect("inventory")
    }

    #[test]
    fn the_agent_is_installed_only_with_its_checksum_unless_allowed_unverified() {
        let params = params();
        let built = build_with(&params, Some(AGENT));
        let verified = inventory(&built);
        let checksum = format!(r#""byoh_agent_checksum": !unsafe "{AGENT}""#);
        assert!(verified.contains(&checksum), "{verified}");
        assert!(
            !verified.contains("byoh_agent_allow_unverified"),
            "{verified}"
        );
        let built = build_with(&params, None);
        let unverified = inventory(&built);
        assert!(!unverified.contains("byoh_agent_checksum"), "{unverified}");
        assert!(
            unverified.contains(r#""byoh_agent_allow_unverified": true"#),
            "{unverified}"
        );
    }

    #[test]
    fn the_job_verifies_host_keys_and_runs_unprivileged() {
        let params = params();
        let built = build_with(&params, Some(AGENT));
        let (config_map, job) = (&built.objects[0], &built.objects[1]);
        assert_eq!(
            job["spec"]["template"]["spec"]["containers"][0]["image"],
            IMAGE
        );
        assert_eq!(
            config_map["data"]["known_hosts"],
            "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB\n"
        );
        let inventory = config_map["data"]["inventory.yaml"]
            .as_str()
            .expect("inventory");
        assert!(
            inventory.contains(r#""ansible_host": !unsafe "10.0.0.1""#),
            "{inventory}"
        );
        let pod = &job["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let env = |name: &str| {
            container["env"]
                .as_array()
                .expect("env")
                .iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].clone())
        };
        assert_eq!(env("ANSIBLE_HOST_KEY_CHECKING"), Some(json!("True")));
        let ssh = env("ANSIBLE_SSH_ARGS").expect("ssh args");
        assert!(
            ssh.as_str()
                .is_some_and(|a| a.contains("StrictHostKeyChecking=yes")
                    && a.contains("/etc/lcm/inventory/known_hosts")),
            "{ssh}"
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        // The ansible-runner image's user and group; fsGroup makes the key readable by it.
        for id in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert_eq!(pod["securityContext"][id], 1000, "{id}");
        }
        // A read-only root filesystem: Ansible writes only under HOME=/tmp, an emptyDir.
        assert_eq!(env("HOME"), Some(json!("/tmp")));
        assert!(
            container["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.contains(&json!({"name": "tmp", "mountPath": "/tmp"}))),
            "{container}"
        );
        assert!(
            pod["volumes"]
                .as_array()
                .is_some_and(|v| v.contains(&json!({"name": "tmp", "emptyDir": {}}))),
            "{pod}"
        );
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(
            container["resources"],
            json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
        );
        let ssh_volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == "ssh")
            .expect("ssh");
        assert_eq!(
            ssh_volume["secret"]["defaultMode"], 0o440,
            "the pod's group reads the key"
        );
    }

    #[test]
    fn names_are_stable_and_depend_on_the_hosts() {
        assert_eq!(fnv1a("host-1,host-2"), fnv1a("host-1,host-2"));
        assert_ne!(fnv1a("host-1,host-2"), fnv1a("host-1"));
    }
}
