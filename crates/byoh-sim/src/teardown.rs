//! A deleted Cluster, torn down as Cluster API does it: its MachineDeployments and control plane
//! are deleted, then its Machines (each releasing its host); once every Machine is gone the
//! infrastructure goes and the finalizer comes off, so the Cluster disappears last.

use kube::core::Selector;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Value, json};

use crate::cluster::CLUSTER_FINALIZER;
use crate::context::Context;
use crate::error::Result;
use crate::objects::{self, deleting, name, namespace};
use crate::stores::labelled;

pub async fn run(ctx: &Context, cluster: &Value) -> Result<()> {
    let ns = namespace(cluster);
    let api = ctx.api(Kind::Cluster, ns);
    if cluster["status"]["phase"] != "Deleting" {
        let mut status = cluster["status"].clone();
        status["phase"] = json!("Deleting");
        objects::apply_status(&api, Kind::Cluster, cluster, status).await?;
    }
    // First what creates machines, so no machine comes back.
    let deployments = ctx.api(Kind::MachineDeployment, ns);
    let every = Selector::default();
    for deployment in ctx.stores.list(Kind::MachineDeployment, Some(ns), &every) {
        if deployment["spec"]["clusterName"] == name(cluster) && !deleting(&deployment) {
            objects::delete(&deployments, name(&deployment)).await?;
        }
    }
    if let Some(control_plane) = cluster["spec"]["controlPlaneRef"]["name"].as_str() {
        objects::delete(&ctx.api(Kind::KubeadmControlPlane, ns), control_plane).await?;
    }
    let machines_api = ctx.api(Kind::Machine, ns);
    let of_cluster = labelled(CAPI_CLUSTER_NAME_LABEL, name(cluster));
    let machines = ctx.stores.list(Kind::Machine, Some(ns), &of_cluster);
    for machine in machines.iter().filter(|m| !deleting(m)) {
        objects::delete(&machines_api, name(machine)).await?;
    }
    if !machines.is_empty() {
        tracing::info!(
            cluster = name(cluster),
            machines = machines.len(),
            "waiting for the machines to go"
        );
        return Ok(());
    }
    if let Some(infrastructure) = cluster["spec"]["infrastructureRef"]["name"].as_str() {
        objects::delete(&ctx.api(Kind::ByoCluster, ns), infrastructure).await?;
    }
    objects::remove_finalizer(&api, cluster, CLUSTER_FINALIZER).await?;
    tracing::info!(cluster = name(cluster), %ns, "cluster torn down");
    Ok(())
}
