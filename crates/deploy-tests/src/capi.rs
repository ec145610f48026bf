//! Cluster API and BYOH as their controllers and host agents would write them, so a test can
//! take a cluster to Ready without them (adapted from the O2IMS operator's test support).

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use lcm_core::capi::{
    CAPI_CLUSTER_NAME_LABEL, CLUSTER_API, CONTROL_PLANE_LABEL, INFRASTRUCTURE_API, Kind,
};
use serde_json::{Value, json};

pub const HOSTS_NAMESPACE: &str = "byoh-hosts";

pub fn api(client: &Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

fn condition(type_: &str, status: &str, reason: &str) -> Value {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let mut c = json!({"type": type_, "status": status, "lastTransitionTime": now.to_string()});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
        c["severity"] = json!("Info");
    }
    c
}

async fn patch(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
    patch: Value,
) -> anyhow::Result<()> {
    api(client, kind, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

async fn patch_status(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
    status: Value,
) -> anyhow::Result<()> {
    api(client, kind, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    Ok(())
}

async fn create(
    client: &Client,
    kind: Kind,
    ns: &str,
    object: Value,
) -> anyhow::Result<DynamicObject> {
    Ok(api(client, kind, ns)
        .create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?)
}

pub async fn ensure_hosts_namespace(client: &Client) -> anyhow::Result<()> {
    let namespace = serde_json::from_value(json!({"metadata": {"name": HOSTS_NAMESPACE}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What a BYOH host agent does when it registers `hostname` with label `host-id: <host_id>`.
pub async fn register_host(client: &Client, hostname: &str, host_id: &str) -> anyhow::Result<()> {
    create(
        client,
        Kind::ByoHost,
        HOSTS_NAMESPACE,
        json!({
            "apiVersion": INFRASTRUCTURE_API, "kind": "ByoHost",
            "metadata": {"name": hostname, "labels": {lcm_core::HOST_ID_LABEL: host_id}},
            "spec": {},
        }),
    )
    .await?;
    patch_status(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({
        "conditions": [condition("K8sNodeBootstrapSucceeded", "False", "WaitingForMachineRefToBeAssigned")],
    }))
    .await
}

/// A Machine and its ByoMachine claiming `hostname`, bootstrapped, as Cluster API and BYOH do.
pub async fn machine_on_host(
    client: &Client,
    namespace: &str,
    cluster: &str,
    machine: &str,
    hostname: &str,
    control_plane: bool,
) -> anyhow::Result<()> {
    let mut labels = json!({CAPI_CLUSTER_NAME_LABEL: cluster});
    if control_plane {
        labels[CONTROL_PLANE_LABEL] = json!("");
    }
    let created = create(client, Kind::Machine, namespace, json!({
        "apiVersion": CLUSTER_API, "kind": "Machine",
        "metadata": {"name": machine, "labels": labels},
        "spec": {"clusterName": cluster, "bootstrap": {"dataSecretName": machine},
                 "infrastructureRef": {"apiVersion": INFRASTRUCTURE_API, "kind": "ByoMachine", "name": machine}},
    }))
    .await?;
    create(
        client,
        Kind::ByoMachine,
        namespace,
        json!({
            "apiVersion": INFRASTRUCTURE_API, "kind": "ByoMachine",
            "metadata": {"name": machine, "labels": labels, "ownerReferences": [{
                "apiVersion": CLUSTER_API, "kind": "Machine", "name": machine,
                "uid": created.metadata.uid, "controller": true,
            }]},
            "spec": {},
        }),
    )
    .await?;
    patch(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({"metadata": {"labels": {
        CAPI_CLUSTER_NAME_LABEL: cluster,
        "byoh.infrastructure.cluster.x-k8s.io/byomachine-name": format!("{namespace}.{machine}"),
    }}}))
    .await?;
    patch_status(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname, json!({
        "machineRef": {"apiVersion": INFRASTRUCTURE_API, "kind": "ByoMachine", "namespace": namespace, "name": machine},
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

/// Every node Ready at `version`: the KubeadmControlPlane, MachineDeployment and Cluster status.
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
    patch_status(client, Kind::Cluster, namespace, cluster, json!({
        "phase": "Provisioned", "infrastructureReady": true, "controlPlaneReady": true,
        "conditions": [condition("Ready", "True", ""), condition("ControlPlaneReady", "True", ""),
                       condition("InfrastructureReady", "True", "")],
    }))
    .await
}
