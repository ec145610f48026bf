//! The kube-vip static pod that serves the control-plane VIP on BYOH hosts
//! (BYOH provisions no load balancer).

use serde_json::json;

use crate::template::Endpoint;

const IMAGE: &str = "ghcr.io/kube-vip/kube-vip:v0.5.0";
/// Rendered by the BYOH host agent (Go text/template) to the interface of the default route.
const INTERFACE_PLACEHOLDER: &str = "{{ .DefaultNetworkInterfaceName }}";

/// The static pod manifest (YAML) announcing `endpoint` by ARP with leader election.
pub fn static_pod(endpoint: &Endpoint) -> String {
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
                "volumeMounts": [{"name": "kubeconfig", "mountPath": "/etc/kubernetes/admin.conf"}],
            }],
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": "/etc/kubernetes/admin.conf", "type": "FileOrCreate"}}],
        },
    });
    crate::yaml::to_string(&pod).expect("a JSON value always serializes to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_the_vip_on_the_agent_rendered_interface() {
        let manifest = static_pod(&Endpoint {
            host: "10.0.0.100".into(),
            port: 6443,
        });
        let pod: serde_json::Value = crate::yaml::from_str(&manifest).expect("valid YAML");
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
}
