//! The kubeadm bootstrap provider: a Machine's KubeadmConfig becomes the cloud-config its host
//! runs, as Cluster API v1.10 renders it (bootstrap/kubeadm/internal/cloudinit/
//! controlplane_init.go, controlplane_join.go and node.go): the config's `files`, the kubeadm
//! configuration under /run/kubeadm, then `runcmd` = `preKubeadmCommands`, `kubeadm init` or
//! `kubeadm join` followed by the sentinel file, `postKubeadmCommands`.
//!
//! Which one (bootstrap/kubeadm/internal/controllers/kubeadmconfig_controller.go): before the
//! cluster's control plane is initialized only a control-plane config without
//! `joinConfiguration` gets data (it inits); every other waits, then joins.

use serde_json::{Value, json};

use lcm_core::template::KubernetesVersion;

pub const INIT_CONFIG: &str = "/run/kubeadm/kubeadm.yaml";
pub const JOIN_CONFIG: &str = "/run/kubeadm/kubeadm-join-config.yaml";
const SENTINEL: &str = "echo success > /run/cluster-api/bootstrap-success.complete";

/// How a machine bootstraps its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Init,
    Join,
}

/// The role a machine's config gives it now, or None while it waits for `kubeadm init`
/// elsewhere.
pub fn role(config_spec: &Value, control_plane: bool, initialized: bool) -> Option<Role> {
    match (
        initialized,
        control_plane && config_spec["joinConfiguration"].is_null(),
    ) {
        (false, true) => Some(Role::Init),
        (false, false) => None,
        (true, _) => Some(Role::Join),
    }
}

/// The `apiVersion` of the kubeadm configuration Cluster API writes for `version`
/// (v1beta4 from Kubernetes 1.31).
fn kubeadm_api(version: &str) -> &'static str {
    match version.parse::<KubernetesVersion>() {
        Ok(v) if v >= KubernetesVersion::new(1, 31, 0) => "kubeadm.k8s.io/v1beta4",
        _ => "kubeadm.k8s.io/v1beta3",
    }
}

fn document(kind: &str, version: &str, body: &Value) -> String {
    let mut object = match body {
        Value::Object(fields) => Value::Object(fields.clone()),
        _ => json!({}),
    };
    object["apiVersion"] = json!(kubeadm_api(version));
    object["kind"] = json!(kind);
    if kind == "ClusterConfiguration" {
        object["kubernetesVersion"] = json!(version);
    }
    format!(
        "---\n{}",
        lcm_core::yaml::to_string(&object).unwrap_or_default()
    )
}

fn strings(value: &Value) -> impl Iterator<Item = Value> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v.is_string())
        .cloned()
}

/// The cloud-config of a machine at `version` with `config_spec` (a KubeadmConfig's spec).
pub fn cloud_config(config_spec: &Value, role: Role, version: &str) -> String {
    let (path, content, command) = match role {
        Role::Init => (
            INIT_CONFIG,
            document(
                "ClusterConfiguration",
                version,
                &config_spec["clusterConfiguration"],
            ) + &document(
                "InitConfiguration",
                version,
                &config_spec["initConfiguration"],
            ),
            format!("kubeadm init --config {INIT_CONFIG} && {SENTINEL}"),
        ),
        Role::Join => (
            JOIN_CONFIG,
            document(
                "JoinConfiguration",
                version,
                &config_spec["joinConfiguration"],
            ),
            format!("kubeadm join --config {JOIN_CONFIG} && {SENTINEL}"),
        ),
    };
    let mut files: Vec<Value> = config_spec["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| json!({"path": f["path"], "owner": f["owner"], "permissions": f["permissions"], "content": f["content"]}))
        .collect();
    files.push(
        json!({"path": path, "owner": "root:root", "permissions": "0640", "content": content}),
    );
    let runcmd: Vec<Value> = strings(&config_spec["preKubeadmCommands"])
        .chain([json!(command)])
        .chain(strings(&config_spec["postKubeadmCommands"]))
        .collect();
    let body = json!({"write_files": files, "runcmd": runcmd});
    format!(
        "## template: jinja\n#cloud-config\n\n{}",
        lcm_core::yaml::to_string(&body).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Value {
        lcm_core::yaml::from_str(text).expect("valid YAML")
    }

    #[test]
    fn only_a_control_plane_config_without_join_configuration_inits() {
        let init = json!({"initConfiguration": {}});
        let join = json!({"joinConfiguration": {}});
        assert_eq!(role(&init, true, false), Some(Role::Init));
        assert_eq!(role(&join, true, false), None);
        assert_eq!(role(&join, false, false), None);
        assert_eq!(role(&join, false, true), Some(Role::Join));
        assert_eq!(role(&init, true, true), Some(Role::Join));
    }

    #[test]
    fn commands_run_around_kubeadm_in_order_and_files_come_first() {
        let spec = json!({
            "files": [{"path": "/etc/a", "content": "x"}],
            "preKubeadmCommands": ["one", "two"],
            "postKubeadmCommands": ["three"],
            "clusterConfiguration": {"apiServer": {}},
            "initConfiguration": {"nodeRegistration": {}},
        });
        let config = parsed(&cloud_config(&spec, Role::Init, "v1.33.5"));
        let runcmd: Vec<&str> = config["runcmd"]
            .as_array()
            .expect("runcmd")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(runcmd[..2], ["one", "two"]);
        assert!(runcmd[2].starts_with("kubeadm init --config /run/kubeadm/kubeadm.yaml"));
        assert_eq!(runcmd[3], "three");
        let files = config["write_files"].as_array().expect("files");
        assert_eq!(files[0]["path"], "/etc/a");
        let kubeadm = files[1]["content"].as_str().expect("content");
        assert!(kubeadm.contains("kubernetesVersion: v1.33.5"), "{kubeadm}");
        assert!(kubeadm.contains("kubeadm.k8s.io/v1beta4"), "{kubeadm}");
    }
}
