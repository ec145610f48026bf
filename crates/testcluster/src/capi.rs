//! Writes Cluster API and BYOH objects and status the way their controllers and the host
//! agents would, so tests can drive an operator through every stage without them.

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use lcm_core::capi::Kind;
use serde_json::{Value, json};

pub const HOSTS_NAMESPACE: &str = "byoh-hosts";

pub fn api(client: &Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

pub async fn get(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(api(client, kind, namespace)
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).unwrap_or_default()))
}

/// The API server's current resourceVersion for `kind` in `namespace`: a watch from it sees
/// every later change.
pub async fn resource_version(
    client: &Client,
    kind: Kind,
    namespace: &str,
) -> anyhow::Result<String> {
    let list = api(client, kind, namespace)
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await?;
    Ok(list.metadata.resource_version.unwrap_or_default())
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

pub fn condition(type_: &str, status: &str, reason: &str) -> Value {
    let mut c = json!({"type": type_, "status": status, "lastTransitionTime": now()});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
        c["severity"] = json!("Info");
    }
    c
}

/// Merges `status` into the object's status subresource.
pub async fn patch_status(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    status: Value,
) -> anyhow::Result<()> {
    api(client, kind, namespace)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    Ok(())
}

pub async fn patch(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    patch: Value,
) -> anyhow::Result<()> {
    api(client, kind, namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// What Cluster API does once a Cluster exists: the Cluster becomes the controller owner of its
/// infrastructure cluster and control plane, beside the owners they already have.
pub async fn adopt(client: &Client, namespace: &str, cluster: &str) -> anyhow::Result<()> {
    let owner = get(client, Kind::Cluster, namespace, cluster)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no Cluster {namespace}/{cluster}"))?;
    let reference = json!({
        "apiVersion": owner["apiVersion"], "kind": "Cluster", "name": cluster,
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    });
    for (kind, name) in [
        (Kind::ByoCluster, cluster.to_string()),
        (
            Kind::KubeadmControlPlane,
            format!("{cluster}-control-plane"),
        ),
    ] {
        let object = get(client, kind, namespace, &name)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no {kind:?} {namespace}/{name}"))?;
        let mut owners = object["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        owners.push(reference.clone());
        patch(
            client,
            kind,
            namespace,
            &name,
            json!({"metadata": {"ownerReferences": owners}}),
        )
        .await?;
    }
    Ok(())
}

/// What BYOH does with a BootstrapKubeconfig: issues a kubeconfig for the API server and CA
/// it names. Waits for the one labelled `selector` in `namespace`; returns it as it was asked for.
pub async fn issue_bootstrap_kubeconfig(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> anyhow::Result<Value> {
    let api = api(client, Kind::BootstrapKubeconfig, namespace);
    let asked = crate::wait_for(
        "a BootstrapKubeconfig",
        std::time::Duration::from_secs(30),
        || async {
            let list = api
                .list(&kube::api::ListParams::default().labels(selector))
                .await?;
            Ok(list.items.into_iter().next())
        },
    )
    .await?;
    let spec = &asked.data["spec"];
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: {}, certificate-authority-data: {}}}\n",
        spec["apiserver"], spec["certificate-authority-data"]
    );
    let name = asked.metadata.name.clone().unwrap_or_default();
    patch_status(
        client,
        Kind::BootstrapKubeconfig,
        namespace,
        &name,
        json!({"bootstrapKubeconfigData": kubeconfig}),
    )
    .await?;
    Ok(serde_json::to_value(asked)?)
}

/// What a BYOH host agent does at registration; returns the ByoHost's UID.
pub async fn register_host(
    client: &Client,
    hostname: &str,
    host_id: &str,
) -> anyhow::Result<String> {
    let host = json!({
        "apiVersion": lcm_core::capi::INFRASTRUCTURE_API, "kind": "ByoHost",
        "metadata": {"name": hostname, "namespace": HOSTS_NAMESPACE, "labels": {lcm_core::HOST_ID_LABEL: host_id}},
        "spec": {},
    });
    let created = api(client, Kind::ByoHost, HOSTS_NAMESPACE)
        .create(&PostParams::default(), &serde_json::from_value(host)?)
        .await;
    let created = match created {
        Ok(c) => c,
        Err(kube::Error::Api(s)) if s.is_already_exists() => {
            api(client, Kind::ByoHost, HOSTS_NAMESPACE)
                .get(hostname)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    patch_status(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({
        "hostinfo": {"osname": "linux", "osimage": "Ubuntu 22.04.4 LTS", "architecture": "amd64"},
        "conditions": [condition("K8sNodeBootstrapSucceeded", "False", "WaitingForMachineRefToBeAssigned")],
    }))
    .await?;
    Ok(created.metadata.uid.unwrap_or_default())
}

pub async fn ensure_hosts_namespace(client: &Client) -> anyhow::Result<()> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": HOSTS_NAMESPACE}}))?;
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A control-plane (or worker) Machine with its ByoMachine, claiming and bootstrapping
/// `hostname` as BYOH does.
pub async fn machine_on_host(
    client: &Client,
    namespace: &str,
    cluster: &str,
    machine: &str,
    hostname: &str,
    control_plane: bool,
) -> anyhow::Result<()> {
    let mut labels = json!({lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: cluster});
    if control_plane {
        labels[lcm_core::capi::CONTROL_PLANE_LABEL] = json!("");
    }
    let machine_object = json!({
        "apiVersion": lcm_core::capi::CLUSTER_API, "kind": "Machine",
        "metadata": {"name": machine, "namespace": namespace, "labels": labels},
        "spec": {"clusterName": cluster, "bootstrap": {"dataSecretName": machine},
                 "infrastructureRef": {"apiVersion": lcm_core::capi::INFRASTRUCTURE_API, "kind": "ByoMachine", "name": machine}},
    });
    let created = api(client, Kind::Machine, namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(machine_object)?,
        )
        .await?;
    let byo_machine = json!({
        "apiVersion": lcm_core::capi::INFRASTRUCTURE_API, "kind": "ByoMachine",
        "metadata": {"name": machine, "namespace": namespace, "labels": labels, "ownerReferences": [{
            "apiVersion": lcm_core::capi::CLUSTER_API, "kind": "Machine", "name": machine,
            "uid": created.metadata.uid, "controller": true,
        }]},
        "spec": {},
    });
    api(client, Kind::ByoMachine, namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(byo_machine)?,
        )
        .await?;
    patch(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({"metadata": {"labels": {
        lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: cluster,
        "byoh.infrastructure.cluster.x-k8s.io/byomachine-name": format!("{namespace}.{machine}"),
    }}}))
    .await?;
    patch_status(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({
        "machineRef": {"apiVersion": lcm_core::capi::INFRASTRUCTURE_API, "kind": "ByoMachine", "namespace": namespace, "name": machine},
        "conditions": [condition("K8sNodeBootstrapSucceeded", "True", "")],
    }))
    .await?;
    patch_status(
        client,
        Kind::Machine,
        namespace,
        machine,
        json!({"phase": "Running", "bootstrapReady": true, "infrastructureReady": true}),
    )
    .await
}

/// The host ids a ByoMachineTemplate's selector names (`host-id In [...]`).
pub fn selected_hosts(template: &Value) -> Vec<String> {
    template["spec"]["template"]["spec"]["selector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|expression| expression["values"].as_array().into_iter().flatten())
        .filter_map(|host| host.as_str().map(String::from))
        .collect()
}

/// Releases the ByoHosts `cluster` claimed, as BYOH does once their ByoMachines are deleted
/// (`machineRef` and the claim labels removed).
pub async fn release_hosts(client: &Client, cluster: &str) -> anyhow::Result<()> {
    let selector = format!("{}={cluster}", lcm_core::capi::CAPI_CLUSTER_NAME_LABEL);
    let hosts = api(client, Kind::ByoHost, HOSTS_NAMESPACE)
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?;
    for host in hosts {
        let name = host.metadata.name.unwrap_or_default();
        patch_status(
            client,
            Kind::ByoHost,
            HOSTS_NAMESPACE,
            &name,
            json!({"machineRef": null}),
        )
        .await?;
        patch(
            client,
            Kind::ByoHost,
            HOSTS_NAMESPACE,
            &name,
            json!({"metadata": {"labels": {
                lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: null,
                "byoh.infrastructure.cluster.x-k8s.io/byomachine-name": null,
            }}}),
        )
        .await?;
    }
    Ok(())
}

/// The Cluster as Cluster API reports it once BYOH's infrastructure is ready: phase
/// Provisioned, but no node up yet.
pub async fn infrastructure_ready(
    client: &Client,
    namespace: &str,
    cluster: &str,
) -> anyhow::Result<()> {
    patch_status(client, Kind::Cluster, namespace, cluster, json!({
        "phase": "Provisioned", "infrastructureReady": true, "controlPlaneReady": false,
        "conditions": [condition("Ready", "False", "WaitingForControlPlane"), condition("InfrastructureReady", "True", "")],
    }))
    .await
}

/// Every node Ready at `version`: Cluster, KubeadmControlPlane and MachineDeployment status, and
/// every Machine's `nodeInfo`.
pub async fn all_ready(
    client: &Client,
    namespace: &str,
    cluster: &str,
    control_plane: i64,
    workers: i64,
    version: &str,
) -> anyhow::Result<()> {
    patch_status(client, Kind::KubeadmControlPlane, namespace, &format!("{cluster}-control-plane"), json!({
        "replicas": control_plane, "readyReplicas": control_plane, "updatedReplicas": control_plane,
        "unavailableReplicas": 0, "initialized": true, "ready": true, "version": version,
    }))
    .await?;
    patch_status(client, Kind::MachineDeployment, namespace, &format!("{cluster}-md-0"), json!({
        "replicas": workers, "readyReplicas": workers, "updatedReplicas": workers, "availableReplicas": workers,
        "unavailableReplicas": 0, "phase": "Running",
    }))
    .await?;
    // Every Node runs the version: Cluster API copies each Node's nodeInfo to its Machine.
    let machines = api(client, Kind::Machine, namespace)
        .list(&kube::api::ListParams::default().labels(&format!(
            "{}={cluster}",
            lcm_core::capi::CAPI_CLUSTER_NAME_LABEL
        )))
        .await?;
    for machine in machines.items {
        let name = machine.metadata.name.unwrap_or_default();
        let node_info = json!({
            "architecture": "amd64", "bootID": name, "containerRuntimeVersion": "containerd://1.7.28",
            "kernelVersion": "6.8.0", "kubeProxyVersion": version, "kubeletVersion": version,
            "machineID": name, "operatingSystem": "linux", "osImage": "Ubuntu 22.04.4 LTS", "systemUUID": name,
        });
        patch_status(
            client,
            Kind::Machine,
            namespace,
            &name,
            json!({"nodeInfo": node_info}),
        )
        .await?;
    }
    patch_status(client, Kind::Cluster, namespace, cluster, json!({
        "phase": "Provisioned", "infrastructureReady": true, "controlPlaneReady": true,
        "conditions": [condition("Ready", "True", ""), condition("ControlPlaneReady", "True", ""), condition("InfrastructureReady", "True", "")],
    }))
    .await
}
