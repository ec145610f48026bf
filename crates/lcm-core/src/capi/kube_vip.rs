//! The kube-vip static pod that serves the control-plane VIP on BYOH hosts (BYOH provisions
//! no load balancer), and how a control-plane bootstrap puts it in place.
//!
//! The manifests are written outside `/etc/kubernetes/manifests` and installed there by
//! `preKubeadmCommands`, after the bootstrap's `kubeadm reset` (which empties that directory).
//! From Kubernetes 1.29 `admin.conf` has no rights until `kubeadm init` has bound them, so the
//! first control-plane node runs kube-vip with `super-admin.conf` during init and switches back
//! afterwards (kube-vip issue 684); joining nodes always use `admin.conf`.

use serde_json::{Value, json};

use crate::template::{Endpoint, KubernetesVersion};

const IMAGE: &str = "ghcr.io/kube-vip/kube-vip:v0.5.0";
/// Rendered by the BYOH host agent (Go text/template) to the interface of the default route.
const INTERFACE_PLACEHOLDER: &str = "{{ .DefaultNetworkInterfaceName }}";
/// Where kubelet runs it from.
pub const MANIFEST: &str = "/etc/kubernetes/manifests/kube-vip.yaml";
/// The manifest every control-plane node runs, with `admin.conf`.
pub const STAGED: &str = "/etc/kube-vip/kube-vip.yaml";
/// The manifest of the `kubeadm init` node from 1.29, with `super-admin.conf`.
pub const STAGED_INIT: &str = "/etc/kube-vip/kube-vip-init.yaml";
/// The file the kubeadm bootstrap provider writes only on the `kubeadm init` node.
const INIT_CONFIG: &str = "/run/kubeadm/kubeadm.yaml";
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
pub const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";
/// First release whose `kubeadm init` creates `super-admin.conf`.
const SUPER_ADMIN_SINCE: KubernetesVersion = KubernetesVersion::new(1, 29, 0);

fn needs_super_admin(version: &str) -> bool {
    version
        .parse::<KubernetesVersion>()
        .is_ok_and(|v| v >= SUPER_ADMIN_SINCE)
}

fn install(from: &str) -> String {
    format!("install -m 0644 {from} {MANIFEST}")
}

/// The `files` of a control-plane kubeadm config for `version`.
pub fn files(endpoint: &Endpoint, version: &str) -> Vec<Value> {
    let file = |path: &str, kubeconfig: &str| {
        json!({"path": path, "owner": "root:root", "permissions": "0644",
            "content": static_pod(endpoint, kubeconfig)})
    };
    let mut files = vec![file(STAGED, ADMIN_CONF)];
    if needs_super_admin(version) {
        files.push(file(STAGED_INIT, SUPER_ADMIN_CONF));
    }
    files
}

/// Commands that put the manifest in place; they run after the reset, before kubeadm.
pub fn pre_kubeadm_commands(version: &str) -> Vec<String> {
    let mut commands = vec![install(STAGED)];
    if needs_super_admin(version) {
        commands.push(format!(
            "if [ -f {INIT_CONFIG} ]; then {}; fi",
            install(STAGED_INIT)
        ));
    }
    commands
}

/// Commands after kubeadm: back to `admin.conf`, which now has its rights.
pub fn post_kubeadm_commands(version: &str) -> Vec<String> {
    if needs_super_admin(version) {
        vec![install(STAGED)]
    } else {
        Vec::new()
    }
}

/// The static pod manifest (YAML) announcing `endpoint` by ARP with leader election, talking to
/// the API server with `kubeconfig`.
fn static_pod(endpoint: &Endpoint, kubeconfig: &str) -> String {
    let env = [
        ("vip_arp", "true".to_string()),
        ("port", endpoint.port.to_string()),
        ("vip_interface", INTERFACE_PLACEHOLDER.to_string()),
        ("vip_cidr", "32".to_string()),
        ("cp_enable", "true".to_string()),
        ("cp_namespace", "kube-system".to_string()),
        ("vip_leaderelection", "true".to_string()),
        ("vip_leaseduration", "15".to_string()),
        ("vip_renewdeadline", "10".to_string()),
        ("vip_retryperiod", "2".to_string()),
        ("vip_address", endpoint.host.clone()),
    ];
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": true,
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["kubernetes"]}],
            "containers": [{
                "name": "kube-vip",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "args": ["manager"],
                "env": env.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "volumeMounts": [{"name": "kubeconfig", "mountPath": ADMIN_CONF}],
            }],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig, "type": "FileOrCreate"}}],
        },
    });
    crate::yaml::to_string(&pod).expect("a JSON value always serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            host: "10.0.0.100".into(),
            port: 6443,
        }
    }

    fn pod(content: &Value) -> Value {
        crate::yaml::from_str(content.as_str().expect("text")).expect("valid YAML")
    }

    #[test]
    fn announces_the_vip_on_the_agent_rendered_interface() {
        let manifest = static_pod(&endpoint(), ADMIN_CONF);
        let pod: Value = crate::yaml::from_str(&manifest).expect("valid YAML");
        let env = pod["spec"]["containers"][0]["env"].as_array().expect("env");
        let value = |name: &str| {
            env.iter()
                .find(|e| e["name"] == name)
                .map(|e| e["value"].clone())
        };
        assert_eq!(value("vip_address"), Some(json!("10.0.0.100")));
        assert_eq!(value("vip_interface"), Some(json!(INTERFACE_PLACEHOLDER)));
        // The agent renders every written file as a Go template: only the one placeholder may appear.
        assert_eq!(manifest.matches("{{").count(), 1);
    }

    #[test]
    fn before_1_29_every_node_runs_kube_vip_with_admin_conf() {
        let files = files(&endpoint(), "v1.28.15");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0]["path"], STAGED);
        assert_eq!(
            pod(&files[0]["content"])["spec"]["volumes"][0]["hostPath"]["path"],
            ADMIN_CONF
        );
        assert_eq!(
            pre_kubeadm_commands("v1.28.15"),
            [format!("install -m 0644 {STAGED} {MANIFEST}")]
        );
        assert!(post_kubeadm_commands("v1.28.15").is_empty());
    }

    #[test]
    fn from_1_29_the_init_node_runs_kube_vip_with_super_admin_conf_until_init_is_done() {
        let files = files(&endpoint(), "v1.29.0");
        let init = files
            .iter()
            .find(|f| f["path"] == STAGED_INIT)
            .expect("init manifest");
        let volume = &pod(&init["content"])["spec"]["volumes"][0]["hostPath"]["path"];
        assert_eq!(volume, SUPER_ADMIN_CONF);
        let pre = pre_kubeadm_commands("v1.33.5");
        assert_eq!(
            pre[1],
            format!(
                "if [ -f /run/kubeadm/kubeadm.yaml ]; then install -m 0644 {STAGED_INIT} {MANIFEST}; fi"
            )
        );
        assert_eq!(post_kubeadm_commands("v1.33.5"), [pre[0].clone()]);
    }
}
