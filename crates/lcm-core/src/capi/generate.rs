//! How a ProvisioningRequest becomes Cluster API objects for the BYOH provider.
//!
//! One namespace per cluster holds:
//! - `Cluster` and `ByoCluster`: networks and the control-plane endpoint (a VIP served by kube-vip);
//! - `KubeadmControlPlane` + `ByoMachineTemplate` `<name>-control-plane`, pinned to the control-plane hosts;
//! - `MachineDeployment` + `KubeadmConfigTemplate` + `ByoMachineTemplate` `<name>-md-0`, pinned to the workers;
//! - with `cni: calico`, a `ClusterResourceSet` applying the Calico manifest from a ConfigMap.
//!
//! Pinning: BYOH gives a machine the first free ByoHost its template's selector matches, so each
//! template selects exactly its role's hosts by their `host-id` label. Rollouts replace a machine
//! before creating its successor (`maxSurge: 0`), since there is no spare host to surge onto.

use serde_json::{Value, json};

use super::{
    BOOTSTRAP_API, CAPI_CLUSTER_NAME_LABEL, CLUSTER_API, CONTROL_PLANE_API, INFRASTRUCTURE_API,
    kube_vip, packages, reset,
};
use crate::template::{ClusterParameters, Cni};
use crate::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};

/// Annotation on the Cluster holding the parameters it was last applied from (JSON).
const APPLIED_PARAMETERS_ANNOTATION: &str = "o2ims.provisioning.oran.org/applied-parameters";
/// Field manager and `app.kubernetes.io/managed-by` value of everything generated.
pub const MANAGED_BY: &str = "o2ims-operator";
/// containerd's socket on hosts prepared by the project's playbook.
const CRI_SOCKET: &str = "/var/run/containerd/containerd.sock";
/// kubeadm preflight checks that fail on BYOH hosts: kube-vip's static pod is installed into
/// the manifests directory before kubeadm runs, and swap is the host owner's choice.
const IGNORED_PREFLIGHT_ERRORS: [&str; 3] = [
    "Swap",
    "DirAvailable--etc-kubernetes-manifests",
    "FileAvailable--etc-kubernetes-kubelet.conf",
];

/// Everything the operator applies for one cluster, in creation order.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub namespace: String,
    pub objects: Vec<Value>,
}

/// Names of a cluster's objects.
struct Names {
    cluster: String,
    control_plane: String,
    workers: String,
    cni: String,
}

impl Names {
    fn of(params: &ClusterParameters) -> Self {
        let cluster = params.cluster_name.clone();
        Self {
            control_plane: format!("{cluster}-control-plane"),
            workers: format!("{cluster}-md-0"),
            cni: format!("{cluster}-calico"),
            cluster,
        }
    }
}

/// The objects for validated `params`, requested by the ProvisioningRequest `request_name`.
/// `calico_manifest` is the CNI manifest the ClusterResourceSet applies (with `cni: calico`).
pub fn generate(
    request_name: &str,
    params: &ClusterParameters,
    calico_manifest: Option<&str>,
) -> Generated {
    let namespace = params.namespace();
    let names = Names::of(params);
    let meta = |name: &str| object_metadata(name, &namespace, request_name, &names.cluster);
    let mut objects = vec![
        namespace_object(request_name, params),
        cluster(meta(&names.cluster), params, &names),
        json!({"apiVersion": INFRASTRUCTURE_API, "kind": "ByoCluster", "metadata": meta(&names.cluster),
            "spec": {"controlPlaneEndpoint": endpoint(params)}}),
        byo_machine_template(meta(&names.control_plane), &params.hosts.control_plane),
        kubeadm_control_plane(meta(&names.control_plane), params, &names, &namespace),
        byo_machine_template(meta(&names.workers), &params.hosts.workers),
        kubeadm_config_template(meta(&names.workers), &params.kubernetes_version),
        machine_deployment(meta(&names.workers), params, &names),
    ];
    if params.cni == Cni::Calico {
        objects.extend(calico(|name| meta(name), &names, calico_manifest));
    }
    Generated { namespace, objects }
}

/// The namespace of the cluster's objects.
pub fn namespace_object(request_name: &str, params: &ClusterParameters) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": params.namespace(),
        "labels": common_labels(request_name, &params.cluster_name),
    }})
}

fn common_labels(request_name: &str, cluster: &str) -> Value {
    json!({
        PROVISIONING_REQUEST_LABEL: crate::names::label_value(request_name),
        CAPI_CLUSTER_NAME_LABEL: cluster,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    })
}

pub(crate) fn object_metadata(
    name: &str,
    namespace: &str,
    request_name: &str,
    cluster: &str,
) -> Value {
    json!({"name": name, "namespace": namespace, "labels": common_labels(request_name, cluster)})
}

fn endpoint(params: &ClusterParameters) -> Value {
    json!({"host": params.control_plane_endpoint.host, "port": params.control_plane_endpoint.port})
}

fn reference(api_version: &str, kind: &str, name: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name})
}

fn cluster(mut metadata: Value, params: &ClusterParameters, names: &Names) -> Value {
    // What the cluster was built from, so a later spec change can be classified against it.
    metadata["annotations"] =
        json!({APPLIED_PARAMETERS_ANNOTATION: serde_json::to_string(params).unwrap_or_default()});
    if params.cni == Cni::Calico {
        // Selected by the ClusterResourceSet that installs the CNI.
        metadata["labels"]["cni"] = json!("calico");
    }
    json!({"apiVersion": CLUSTER_API, "kind": "Cluster", "metadata": metadata, "spec": {
        "clusterNetwork": {
            "pods": {"cidrBlocks": params.network.pod_cidrs},
            "services": {"cidrBlocks": params.network.service_cidrs},
            "serviceDomain": params.network.service_domain,
        },
        "controlPlaneEndpoint": endpoint(params),
        "controlPlaneRef": reference(CONTROL_PLANE_API, "KubeadmControlPlane", &names.control_plane),
        "infrastructureRef": reference(INFRASTRUCTURE_API, "ByoCluster", &names.cluster),
    }})
}

/// A template whose machines may only claim the named hosts. No `installerRef`: hosts come
/// prepared (the agent runs with `--skip-installation`).
fn byo_machine_template(metadata: Value, hosts: &[String]) -> Value {
    json!({"apiVersion": INFRASTRUCTURE_API, "kind": "ByoMachineTemplate", "metadata": metadata, "spec": {
        "template": {"spec": {"selector": {"matchExpressions": [
            {"key": HOST_ID_LABEL, "operator": "In", "values": hosts}
        ]}}}
    }})
}

fn node_registration() -> Value {
    json!({"criSocket": CRI_SOCKET, "ignorePreflightErrors": IGNORED_PREFLIGHT_ERRORS})
}

fn kubeadm_control_plane(
    metadata: Value,
    params: &ClusterParameters,
    names: &Names,
    namespace: &str,
) -> Value {
    let replicas = params.hosts.control_plane.len();
    // KCP allows scale-down-first rollouts only from three replicas; a single control plane
    // surges, which needs a free host in its selector.
    let max_surge = if replicas >= 3 { 0 } else { 1 };
    let version = &params.kubernetes_version;
    json!({"apiVersion": CONTROL_PLANE_API, "kind": "KubeadmControlPlane", "metadata": metadata, "spec": {
        "replicas": replicas,
        "version": version,
        "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge}},
        "machineTemplate": {"infrastructureRef": {
            "apiVersion": INFRASTRUCTURE_API, "kind": "ByoMachineTemplate",
            "name": names.control_plane, "namespace": namespace,
        }},
        "kubeadmConfigSpec": {
            "clusterConfiguration": {"apiServer": {"certSANs": [
                "localhost", "127.0.0.1", params.control_plane_endpoint.host,
            ]}},
            "files": kube_vip::files(&params.control_plane_endpoint, version)
                .into_iter()
                .chain([packages::script_file(version)])
                .collect::<Vec<_>>(),
            "preKubeadmCommands": pre_kubeadm_commands(reset::control_plane(), kube_vip::pre_kubeadm_commands(version)),
            "postKubeadmCommands": kube_vip::post_kubeadm_commands(version),
            "initConfiguration": {"nodeRegistration": node_registration()},
            "joinConfiguration": {"nodeRegistration": node_registration()},
        },
    }})
}

/// First `reset` (see [`reset`]), then the node's Kubernetes packages, then `then`.
fn pre_kubeadm_commands(reset: Vec<String>, then: Vec<String>) -> Vec<String> {
    reset
        .into_iter()
        .chain([packages::command()])
        .chain(then)
        .collect()
}

fn kubeadm_config_template(metadata: Value, version: &str) -> Value {
    json!({"apiVersion": BOOTSTRAP_API, "kind": "KubeadmConfigTemplate", "metadata": metadata, "spec": {
        "template": {"spec": {
            "files": [packages::script_file(version)],
            "preKubeadmCommands": pre_kubeadm_commands(reset::worker(), Vec::new()),
            "joinConfiguration": {"nodeRegistration": node_registration()},
        }}
    }})
}

fn machine_deployment(metadata: Value, params: &ClusterParameters, names: &Names) -> Value {
    let selector = json!({
        CAPI_CLUSTER_NAME_LABEL: names.cluster,
        "cluster.x-k8s.io/deployment-name": names.workers,
    });
    json!({"apiVersion": CLUSTER_API, "kind": "MachineDeployment", "metadata": metadata, "spec": {
        "clusterName": names.cluster,
        "replicas": params.hosts.workers.len(),
        // Free a host before claiming it again: workers have no spare host either.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {"labels": selector},
            "spec": {
                "clusterName": names.cluster,
                "version": params.kubernetes_version,
                "bootstrap": {"configRef": reference(BOOTSTRAP_API, "KubeadmConfigTemplate", &names.workers)},
                "infrastructureRef": reference(INFRASTRUCTURE_API, "ByoMachineTemplate", &names.workers),
            },
        },
    }})
}

/// The ClusterResourceSet that applies Calico once the workload API server answers, and the
/// ConfigMap it applies (only when the manifest is known).
fn calico(meta: impl Fn(&str) -> Value, names: &Names, manifest: Option<&str>) -> Vec<Value> {
    let mut objects = Vec::new();
    if let Some(manifest) = manifest {
        objects.push(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&names.cni),
            "data": {"calico.yaml": manifest}}),
        );
    }
    objects.push(json!({"apiVersion": super::ADDONS_API, "kind": "ClusterResourceSet", "metadata": meta(&names.cni),
        "spec": {
            "strategy": "ApplyOnce",
            "clusterSelector": {"matchLabels": {"cni": "calico"}},
            "resources": [{"kind": "ConfigMap", "name": names.cni}],
        }}));
    objects
}

/// Keeps the workers at `version` while the control plane upgrades: Cluster API would
/// otherwise roll both at once, and workers must not run ahead of the control plane. A worker
/// created meanwhile installs that version's packages too.
pub fn hold_worker_version(generated: &mut Generated, version: &str) {
    for object in generated.objects.iter_mut() {
        if object["kind"] == "MachineDeployment" {
            object["spec"]["template"]["spec"]["version"] = json!(version);
        } else if object["kind"] == "KubeadmConfigTemplate" {
            object["spec"]["template"]["spec"]["files"] = json!([packages::script_file(version)]);
        }
    }
}

/// Bounds how long Cluster API drains a node before deleting its machine (control plane and
/// workers): without it a PodDisruptionBudget no eviction can satisfy blocks a scale-in, a
/// rollout or the cluster's deletion forever. Cluster API changes it on running machines in
/// place (no rollout).
pub fn drain_within(generated: &mut Generated, timeout: std::time::Duration) {
    let timeout = json!(go_duration(timeout));
    for object in generated.objects.iter_mut() {
        if object["kind"] == "KubeadmControlPlane" {
            object["spec"]["machineTemplate"]["nodeDrainTimeout"] = timeout.clone();
        } else if object["kind"] == "MachineDeployment" {
            object["spec"]["template"]["spec"]["nodeDrainTimeout"] = timeout.clone();
        }
    }
}

/// A duration of whole seconds as Go's `time.Duration` writes it (`45s`, `10m0s`, `1h0m0s`):
/// Cluster API's webhooks rewrite every `metav1.Duration` so, and an applied object must hold
/// what the API server keeps, or every pass would find it changed and apply it again.
fn go_duration(duration: std::time::Duration) -> String {
    let seconds = duration.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// Keeps the control plane's bootstrap as `live` (a KubeadmControlPlane) has it. Any change of
/// `kubeadmConfigSpec` rolls every control-plane machine, so a newer operator generating it
/// differently must not roll running clusters: the new spec reaches a cluster with its next
/// Kubernetes upgrade, which rolls it anyway.
pub fn keep_control_plane_bootstrap(generated: &mut Generated, live: &Value) {
    let kept = &live["spec"]["kubeadmConfigSpec"];
    if !kept.is_object() {
        return;
    }
    for object in generated
        .objects
        .iter_mut()
        .filter(|o| o["kind"] == "KubeadmControlPlane")
    {
        object["spec"]["kubeadmConfigSpec"] = kept.clone();
    }
}

/// The parameters a live Cluster was applied from.
pub fn applied_parameters(cluster: &Value) -> Option<ClusterParameters> {
    let text = cluster["metadata"]["annotations"][APPLIED_PARAMETERS_ANNOTATION].as_str()?;
    serde_json::from_str(text).ok()
}
