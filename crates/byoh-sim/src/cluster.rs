//! Cluster and ByoCluster, as Cluster API's Cluster controller and BYOH's ByoCluster controller
//! take them: a finalizer; adoption of the infrastructure and control plane (owner reference and
//! `cluster.x-k8s.io/cluster-name` label); the ByoCluster ready at once (BYOH has nothing to
//! provision); the Cluster's status following its control plane. A deleted Cluster is torn down.

use std::sync::Arc;

use kube::api::DynamicObject;
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Value, json};

use crate::conditions::{self, Condition, Severity};
use crate::context::Context;
use crate::error::Result;
use crate::objects::{self, deleting, label, name, namespace, to_json};
use crate::{runner, teardown};

pub const CLUSTER_FINALIZER: &str = "cluster.cluster.x-k8s.io";

/// The Cluster an object was adopted by (its owner reference), or else the one its
/// `cluster.x-k8s.io/cluster-name` label names.
pub fn owner_cluster(object: &Value) -> Option<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            r["kind"] == Kind::Cluster.name() && r["apiVersion"] == Kind::Cluster.api_version()
        })
        .and_then(|r| r["name"].as_str())
        .or_else(|| label(object, CAPI_CLUSTER_NAME_LABEL))
        .map(String::from)
}

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let resource = Kind::Cluster.api_resource();
    let controller = ctx.stores.controller(Kind::Cluster);
    let (control_planes, infrastructures) = (controller.store(), controller.store());
    let (for_control_plane, for_infrastructure, for_machine) =
        (resource.clone(), resource.clone(), resource);
    let controller = controller
        .watches_stream_with(
            ctx.stores.changes(Kind::KubeadmControlPlane),
            move |kcp| referring(&control_planes, "controlPlaneRef", &kcp, &for_control_plane),
            Kind::KubeadmControlPlane.api_resource(),
        )
        .watches_stream_with(
            ctx.stores.changes(Kind::ByoCluster),
            move |byo| {
                referring(
                    &infrastructures,
                    "infrastructureRef",
                    &byo,
                    &for_infrastructure,
                )
            },
            Kind::ByoCluster.api_resource(),
        )
        // Machines going away let a deleted Cluster finish its teardown.
        .watches_stream_with(
            ctx.stores.changes(Kind::Machine),
            move |machine| {
                let cluster = machine.data["spec"]["clusterName"].as_str()?;
                let ns = machine.metadata.namespace.as_deref()?;
                Some(ObjectRef::new_with(cluster, for_machine.clone()).within(ns))
            },
            Kind::Machine.api_resource(),
        );
    runner::drive("cluster", controller.run(reconcile, runner::retry, ctx))
}

/// The Clusters whose `field` reference names `object`.
fn referring(
    clusters: &Store<DynamicObject>,
    field: &str,
    object: &DynamicObject,
    resource: &ApiResource,
) -> Vec<ObjectRef<DynamicObject>> {
    let kind = object.types.as_ref().map(|t| t.kind.as_str());
    clusters
        .state()
        .iter()
        .filter(|c| {
            let reference = &c.data["spec"][field];
            c.metadata.namespace == object.metadata.namespace
                && reference["name"].as_str() == object.metadata.name.as_deref()
                && reference["kind"].as_str() == kind
        })
        .map(|c| ObjectRef::from_obj_with(c.as_ref(), resource.clone()))
        .collect()
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let cluster = to_json(&object);
    if deleting(&cluster) {
        teardown::run(&ctx, &cluster).await?;
        return Ok(Action::await_change());
    }
    let api = ctx.api(Kind::Cluster, namespace(&cluster));
    objects::add_finalizer(&api, &cluster, CLUSTER_FINALIZER).await?;
    let infrastructure = adopt(&ctx, &cluster, "infrastructureRef", Kind::ByoCluster).await?;
    if let Some(byo_cluster) = &infrastructure {
        let byo_api = ctx.api(Kind::ByoCluster, namespace(byo_cluster));
        objects::apply_status(
            &byo_api,
            Kind::ByoCluster,
            byo_cluster,
            json!({"ready": true}),
        )
        .await?;
    }
    let control_plane = adopt(&ctx, &cluster, "controlPlaneRef", Kind::KubeadmControlPlane).await?;
    write_status(
        &ctx,
        &cluster,
        infrastructure.is_some(),
        control_plane.as_ref(),
    )
    .await?;
    Ok(Action::await_change())
}

/// The object `cluster.spec.<field>` refers to, made the Cluster's (owner reference and label).
async fn adopt(ctx: &Context, cluster: &Value, field: &str, kind: Kind) -> Result<Option<Value>> {
    let reference = &cluster["spec"][field];
    let Some(referred) = reference["name"].as_str() else {
        return Ok(None);
    };
    let ns = reference["namespace"]
        .as_str()
        .unwrap_or(namespace(cluster));
    let Some(object) = ctx.stores.get(kind, ns, referred) else {
        return Ok(None);
    };
    let labelled = label(&object, CAPI_CLUSTER_NAME_LABEL) == Some(name(cluster));
    if !objects::owned_by(&object, cluster) || !labelled {
        let mut owners = object["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !objects::owned_by(&object, cluster) {
            owners.push(json!({
                "apiVersion": cluster["apiVersion"], "kind": cluster["kind"],
                "name": name(cluster), "uid": cluster["metadata"]["uid"],
            }));
        }
        let patch = json!({"metadata": {
            "labels": {CAPI_CLUSTER_NAME_LABEL: name(cluster)},
            "ownerReferences": owners,
        }});
        objects::merge_guarded(&ctx.api(kind, ns), &object, patch).await?;
    }
    Ok(Some(object))
}

async fn write_status(
    ctx: &Context,
    cluster: &Value,
    infrastructure_ready: bool,
    control_plane: Option<&Value>,
) -> Result<()> {
    let endpoint = &cluster["spec"]["controlPlaneEndpoint"];
    let endpoint_valid = endpoint["host"].as_str().is_some_and(|h| !h.is_empty())
        && endpoint["port"].as_i64().is_some_and(|p| p != 0);
    let phase = if infrastructure_ready && endpoint_valid {
        "Provisioned"
    } else if cluster["spec"]["infrastructureRef"].is_object() {
        "Provisioning"
    } else {
        "Pending"
    };
    let control_plane_status = control_plane.map(|cp| &cp["status"]);
    let initialized = control_plane_status.is_some_and(|s| s["initialized"] == true);
    let infrastructure = if infrastructure_ready {
        Condition::true_("InfrastructureReady")
    } else {
        Condition::false_(
            "InfrastructureReady",
            "WaitingForInfrastructure",
            Severity::Info,
        )
    };
    let control_plane_ready = Condition::mirror(
        "ControlPlaneReady",
        control_plane.and_then(|cp| conditions::find(cp, "Ready")),
        "WaitingForControlPlane",
    );
    let control_plane_initialized = if initialized {
        Condition::true_("ControlPlaneInitialized")
    } else {
        Condition::false_(
            "ControlPlaneInitialized",
            "WaitingForControlPlaneProviderInitialized",
            Severity::Info,
        )
    };
    let ready = Condition::summary("Ready", &[&control_plane_ready, &infrastructure]);
    let status = json!({
        "phase": phase,
        "infrastructureReady": infrastructure_ready,
        "controlPlaneReady": control_plane_status.is_some_and(|s| s["ready"] == true),
        "observedGeneration": cluster["metadata"]["generation"],
        "conditions": conditions::render(
            &[ready, control_plane_initialized, control_plane_ready, infrastructure],
            &cluster["status"]["conditions"],
        ),
    });
    let api = ctx.api(Kind::Cluster, namespace(cluster));
    objects::apply_status(&api, Kind::Cluster, cluster, status).await
}
