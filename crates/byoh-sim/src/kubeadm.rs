//! What kubeadm reads on a host when Cluster API's bootstrap runs it, and so what it does to
//! the workload cluster: the configuration the kubeadm bootstrap provider wrote
//! (bootstrap/kubeadm/internal/cloudinit/controlplane_init.go, controlplane_join.go, node.go:
//! `kubeadm init --config /run/kubeadm/kubeadm.yaml`, `kubeadm join --config
//! /run/kubeadm/kubeadm-join-config.yaml`) and the certificate authorities it wrote into
//! /etc/kubernetes/pki.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::workload::NodeRequest;

/// Written by the bootstrap provider only on the machine that runs `kubeadm init`.
pub const INIT_CONFIG: &str = "/run/kubeadm/kubeadm.yaml";
const PKI_DIRECTORY: &str = "/etc/kubernetes/pki/";
/// The certificate authorities kubeadm reads from the PKI directory.
const AUTHORITIES: [&str; 4] = ["ca.crt", "ca.key", "etcd/ca.crt", "etcd/ca.key"];

/// What the host itself adds to the configuration kubeadm runs with.
pub struct HostFacts<'a> {
    /// The installed kubelet and kubeadm (`vX.Y.Z`).
    pub kubelet_version: &'a str,
    /// The node's address.
    pub node_ip: Option<&'a str>,
    /// The cluster's owner brings the CNI (the cluster's nodes are Ready without one applied).
    pub cni_preinstalled: bool,
    /// The host's files, by path.
    pub files: &'a BTreeMap<String, String>,
}

/// `kubeadm init --config <config>`: the cluster the ClusterConfiguration describes, with this
/// host as its first control plane.
pub fn init(config: &str, host: &HostFacts) -> Result<NodeRequest, String> {
    let documents = documents(config)?;
    let cluster = find(&documents, "ClusterConfiguration")?;
    let init = find(&documents, "InitConfiguration")?;
    let endpoint = cluster["controlPlaneEndpoint"]
        .as_str()
        .ok_or("the ClusterConfiguration has no controlPlaneEndpoint")?;
    let version = cluster["kubernetesVersion"]
        .as_str()
        .ok_or("the ClusterConfiguration has no kubernetesVersion")?;
    let registration = &init["nodeRegistration"];
    // Without them kubeadm would make authorities of its own, which the Cluster API's copies
    // (the `<cluster>-ca` Secret, its kubeconfig) and other control planes do not match.
    require_authorities(host, "init")?;
    Ok(NodeRequest {
        endpoint: endpoint.into(),
        control_plane: true,
        init: true,
        kubernetes_version: Some(version.into()),
        cluster_configuration: Some(lcm_core::yaml::to_string(cluster).map_err(|e| e.to_string())?),
        skip_phases: strings(&init["skipPhases"]),
        ..node(registration, host)
    })
}

/// `kubeadm join --config <config>`: this host joins the cluster its discovery names, as a
/// control plane when the configuration has a `controlPlane` section.
pub fn join(config: &str, host: &HostFacts) -> Result<NodeRequest, String> {
    let documents = documents(config)?;
    let join = find(&documents, "JoinConfiguration")?;
    let discovery = &join["discovery"]["bootstrapToken"];
    let endpoint = discovery["apiServerEndpoint"]
        .as_str()
        .ok_or("the JoinConfiguration has no discovery.bootstrapToken.apiServerEndpoint")?;
    let control_plane = !join["controlPlane"].is_null();
    if control_plane {
        // A control plane signs its own certificates with the cluster's shared authorities.
        require_authorities(host, "join --control-plane")?;
    }
    Ok(NodeRequest {
        endpoint: endpoint.into(),
        control_plane,
        // A joining control plane runs the static pods of its kubeadm's version.
        kubernetes_version: control_plane.then(|| host.kubelet_version.to_string()),
        bootstrap_token: discovery["token"].as_str().map(String::from),
        ..node(&join["nodeRegistration"], host)
    })
}

/// Fails as kubeadm's certificate phase would without the authorities Cluster API's bootstrap
/// provider writes for control planes.
fn require_authorities(host: &HostFacts, command: &str) -> Result<(), String> {
    for file in AUTHORITIES {
        let path = format!("{PKI_DIRECTORY}{file}");
        if !host.files.contains_key(&path) {
            return Err(format!(
                "kubeadm {command}: {path} is missing: the cluster's certificate authorities \
                 Cluster API wrote are gone (a kubeadm reset after they were written?)"
            ));
        }
    }
    Ok(())
}

/// What every init and join says about the node.
fn node(registration: &Value, host: &HostFacts) -> NodeRequest {
    let pki = AUTHORITIES
        .iter()
        .filter_map(|file| {
            let content = host.files.get(&format!("{PKI_DIRECTORY}{file}"))?;
            Some((file.to_string(), content.clone()))
        })
        .collect();
    NodeRequest {
        kubelet_version: host.kubelet_version.into(),
        pki,
        labels: node_labels(&registration["kubeletExtraArgs"]),
        taints: registration.get("taints").cloned(),
        node_ip: host.node_ip.map(String::from),
        cni_preinstalled: host.cni_preinstalled,
        ..NodeRequest::default()
    }
}

fn documents(config: &str) -> Result<Vec<Value>, String> {
    lcm_core::yaml::from_multi_str(config)
        .map_err(|e| format!("the kubeadm configuration is not valid YAML: {e}"))
}

fn find<'a>(documents: &'a [Value], kind: &str) -> Result<&'a Value, String> {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .ok_or_else(|| format!("the kubeadm configuration has no {kind}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// The kubelet's `--node-labels` (`k=v,k2=v2`) from `kubeletExtraArgs`: a map in kubeadm's
/// v1beta3, a list of `{name, value}` in v1beta4.
fn node_labels(args: &Value) -> BTreeMap<String, String> {
    let text = match args {
        Value::Array(args) => args
            .iter()
            .find(|a| a["name"] == "node-labels")
            .and_then(|a| a["value"].as_str()),
        _ => args["node-labels"].as_str(),
    };
    text.into_iter()
        .flat_map(|t| t.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facts(files: &BTreeMap<String, String>) -> HostFacts<'_> {
        HostFacts {
            kubelet_version: "v1.33.5",
            node_ip: Some("10.0.0.11"),
            cni_preinstalled: false,
            files,
        }
    }

    /// The authorities Cluster API writes on a control-plane machine.
    fn authorities() -> BTreeMap<String, String> {
        AUTHORITIES
            .iter()
            .map(|file| (format!("{PKI_DIRECTORY}{file}"), format!("PEM of {file}")))
            .collect()
    }

    #[test]
    fn an_init_names_the_cluster_its_configuration_describes() {
        let mut files = authorities();
        files.insert("/etc/kubernetes/pki/sa.key".into(), "SA".into());
        let config = "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
            controlPlaneEndpoint: 172.20.10.100:6443\nkubernetesVersion: v1.33.5\n\
            ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
            nodeRegistration:\n  kubeletExtraArgs:\n  - name: node-labels\n    value: a=1,b=2\n";
        let request = init(config, &facts(&files)).expect("init");
        assert_eq!(request.endpoint, "172.20.10.100:6443");
        assert!(request.init && request.control_plane);
        assert_eq!(request.kubernetes_version.as_deref(), Some("v1.33.5"));
        assert_eq!(
            request.pki.keys().collect::<Vec<_>>(),
            ["ca.crt", "ca.key", "etcd/ca.crt", "etcd/ca.key"],
            "the authorities, nothing else"
        );
        files.remove("/etc/kubernetes/pki/etcd/ca.key");
        let error = init(config, &facts(&files)).expect_err("an authority is missing");
        assert!(
            error.contains("/etc/kubernetes/pki/etcd/ca.key is missing"),
            "{error}"
        );
        assert_eq!(request.labels["b"], "2");
        assert_eq!(request.taints, None, "kubeadm's default taints");
        let cluster: Value =
            lcm_core::yaml::from_str(request.cluster_configuration.as_deref().expect("config"))
                .expect("YAML");
        assert_eq!(cluster["kind"], "ClusterConfiguration");
    }

    #[test]
    fn a_join_names_its_endpoint_token_and_role() {
        let files = BTreeMap::new();
        let config = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n\
            discovery:\n  bootstrapToken:\n    apiServerEndpoint: 172.20.10.100:6443\n    token: abc.def\n\
            nodeRegistration:\n  kubeletExtraArgs: {node-labels: role=w}\n  taints:\n  - {key: t, effect: NoSchedule}\n";
        let request = join(config, &facts(&files)).expect("join");
        assert_eq!(request.endpoint, "172.20.10.100:6443");
        assert!(!request.control_plane && !request.init);
        assert_eq!(request.kubernetes_version, None);
        assert_eq!(request.bootstrap_token.as_deref(), Some("abc.def"));
        assert_eq!(request.labels["role"], "w");
        assert_eq!(
            request.taints,
            Some(json!([{"key": "t", "effect": "NoSchedule"}]))
        );
        let control_plane_config = format!("{config}controlPlane: {{}}\n");
        let error = join(&control_plane_config, &facts(&files)).expect_err("no authorities");
        assert!(
            error.contains("/etc/kubernetes/pki/ca.crt is missing"),
            "{error}"
        );
        let files = authorities();
        let control_plane =
            join(&control_plane_config, &facts(&files)).expect("control-plane join");
        assert!(control_plane.control_plane);
        assert_eq!(control_plane.kubernetes_version.as_deref(), Some("v1.33.5"));
    }
}
