//! Applies a request's Cluster API objects (and host-preparation Jobs) with server-side
//! apply under one field manager, writing only what changed.
//!
//! Ownership: Cluster API makes the Cluster the *controller* of its ByoCluster and
//! KubeadmControlPlane (and adds itself to the templates), so the request is the controller
//! owner of the Namespace and the Cluster only, and a plain owner of the rest. Either way
//! the garbage collector removes everything once the request is gone, and every object
//! carries the request's label, which is how the controller maps their events back.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use lcm_core::capi::observe::{ByoHostView, WorkersView};
use lcm_core::capi::{self, DELETE_MACHINE_ANNOTATION, Kind};
use lcm_core::crd::ProvisioningRequest;
use lcm_core::status::provisioning::Observed;
use lcm_core::template::{ClusterParameters, Cni};
use operator_kit::apply::{Applied, Live};

use crate::config::Config;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::observe;

/// The owner reference of `request`; `controller` marks it as the managing controller.
pub fn owner_reference(request: &ProvisioningRequest, controller: bool) -> Value {
    json!({
        "apiVersion": ProvisioningRequest::api_version(&()),
        "kind": ProvisioningRequest::kind(&()),
        "name": request.name_any(),
        "uid": request.uid().unwrap_or_default(),
        "controller": controller,
        "blockOwnerDeletion": true,
    })
}

/// The kinds that make Cluster API act on templates they name: applied after everything else,
/// so that a machine created for a change is cloned from its changed template.
const CONSUMERS: [&str; 3] = ["Cluster", "KubeadmControlPlane", "MachineDeployment"];

/// Applies `objects` owned by `request`, the templates and the rest at once, then their
/// consumers at once; returns the most any object's write changed. `new`: the cluster's
/// objects do not exist yet.
pub async fn apply_owned(
    ctx: &Context,
    request: &ProvisioningRequest,
    objects: Vec<Value>,
    new: bool,
) -> Result<Applied> {
    let (consumers, first): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|o| CONSUMERS.contains(&o["kind"].as_str().unwrap_or_default()));
    let mut most = Applied::Unchanged;
    for objects in [first, consumers] {
        let writes = objects
            .into_iter()
            .map(|object| apply_one(ctx, request, object, new));
        let applied = futures::future::try_join_all(writes).await?;
        most = applied.into_iter().fold(most, Applied::max);
    }
    Ok(most)
}

async fn apply_one(
    ctx: &Context,
    request: &ProvisioningRequest,
    mut object: Value,
    new: bool,
) -> Result<Applied> {
    let controller = matches!(
        object["kind"].as_str(),
        Some("Namespace" | "Cluster" | "Job" | "ConfigMap" | "BootstrapKubeconfig")
    );
    object["metadata"]["ownerReferences"] = json!([owner_reference(request, controller)]);
    let cached = ctx.index.cached(&object);
    let live = match &cached {
        Some(cached) => Live::Cached(cached),
        None if new => Live::Absent,
        None => Live::Unknown,
    };
    Ok(ctx.applier.apply(&object, live).await?)
}

/// Takes the cluster's namespace for `request`: created if absent (atomically: the API server
/// refuses a second create), never adopted. Returns why not when it exists and `request` does
/// not control it: applying over it would make the operator its controller, and the request's
/// deletion would delete it with whatever else lives there.
pub async fn claim_namespace(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
) -> Result<Option<String>> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let name = params.namespace();
    let mut object = capi::namespace_object(&request.name_any(), params);
    object["metadata"]["ownerReferences"] = json!([owner_reference(request, true)]);
    let namespace: Namespace = serde_json::from_value(object).map_err(kube::Error::SerdeError)?;
    let existing = match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => return Ok(None),
        Err(kube::Error::Api(s)) if s.is_already_exists() => api.get(&name).await?,
        Err(e) => return Err(e.into()),
    };
    if observe::controlled_by(&existing, request) {
        return Ok(None);
    }
    if existing.metadata.deletion_timestamp.is_some() {
        return Err(Error::NamespaceTerminating(name));
    }
    Ok(Some(format!(
        "namespace {name} already exists and was not created for this request: choose another clusterName, or delete the namespace"
    )))
}

/// Brings the cluster's objects to `params`. `applied` are the parameters the objects were
/// last applied from; `observed` is their current state. Returns what the user should know
/// (a missing CNI manifest), and what the writes changed.
pub async fn ensure(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    applied: Option<&ClusterParameters>,
    observed: &Observed,
    hosts: &BTreeMap<String, (ByoHostView, Value)>,
) -> Result<(Option<String>, Applied)> {
    let calico = match params.cni {
        Cni::Calico => calico_manifest(ctx),
        Cni::None => None,
    };
    let warning = (params.cni == Cni::Calico && calico.is_none()).then(|| {
        format!(
            "ConfigMap {}/{} with the Calico manifest (key calico.yaml) is missing: no CNI will be installed and nodes stay NotReady",
            ctx.config.namespace(),
            ctx.config.calico_manifest_configmap
        )
    });
    let mut generated = capi::generate(&request.name_any(), params, calico.as_deref());
    capi::drain_within(
        &mut generated,
        Config::timeout(ctx.config.node_drain_timeout_seconds),
    );
    if ctx.config.handoff.rancher_auto_import {
        lcm_core::handoff::rancher::import(&mut generated, params);
    }
    if let Some(held) = held_worker_version(params, observed) {
        capi::hold_worker_version(&mut generated, &held);
    }
    let same_version = applied.is_some_and(|a| a.kubernetes_version == params.kubernetes_version);
    let control_plane = format!("{}-control-plane", params.cluster_name);
    let live = ctx.index.get(
        Kind::KubeadmControlPlane,
        &params.namespace(),
        &control_plane,
    );
    if let Some(live) = live.filter(|_| same_version) {
        let live = serde_json::to_value(live).unwrap_or_default();
        capi::keep_control_plane_bootstrap(&mut generated, &live);
    }
    if let Some(applied) = applied {
        let removed: Vec<&String> = applied
            .hosts
            .workers
            .iter()
            .filter(|h| !params.hosts.workers.contains(h))
            .collect();
        mark_machines_for_deletion(ctx, &removed, hosts).await?;
    }
    let written = apply_owned(ctx, request, generated.objects, applied.is_none()).await?;
    Ok((warning, written))
}

/// The version workers stay at while the control plane is not yet fully at the target.
fn held_worker_version(params: &ClusterParameters, observed: &Observed) -> Option<String> {
    let (
        Some(cp),
        Some(WorkersView {
            desired_version: Some(current),
            ..
        }),
    ) = (&observed.control_plane, &observed.workers)
    else {
        return None;
    };
    let target = &params.kubernetes_version;
    let control_plane_done = cp.desired_version == *target
        && cp.version.as_deref() == Some(target.as_str())
        && cp.updated_replicas == cp.desired_replicas
        && cp.ready_replicas == cp.desired_replicas;
    (current != target && !control_plane_done).then(|| current.clone())
}

/// Scale-in removes exactly the hosts taken away: their Machines are marked so the
/// MachineSet deletes them first when the replicas drop.
async fn mark_machines_for_deletion(
    ctx: &Context,
    removed: &[&String],
    hosts: &BTreeMap<String, (ByoHostView, Value)>,
) -> Result<()> {
    for host in removed {
        // Not registered: nothing runs on it.
        let Some((_, object)) = hosts.get(*host) else {
            continue;
        };
        let found = observe::machine_on_host(&ctx.index, object);
        if found.is_none() && !object["status"]["machineRef"].is_null() {
            return Err(Error::MachineNotFound(format!(
                "host {host} is claimed, but its Machine is not found"
            )));
        }
        if let Some((namespace, machine)) = found {
            let mark = json!({
                "apiVersion": capi::CLUSTER_API, "kind": "Machine",
                "metadata": {"name": machine, "namespace": namespace, "annotations": {DELETE_MACHINE_ANNOTATION: "true"}},
            });
            let cached = ctx.index.cached(&mark);
            let live = cached.as_ref().map_or(Live::Unknown, Live::Cached);
            ctx.applier.apply(&mark, live).await?;
            tracing::info!(host = %host, machine = %machine, "marked the machine of a removed worker for deletion");
        }
    }
    Ok(())
}

/// Applies a Secret as it is (a new Job's bootstrap kubeconfig may replace an expired one),
/// without reading it first: the operator may write Secrets, not read them.
pub async fn apply_secret(ctx: &Context, secret: &Value) -> Result<()> {
    let name = secret["metadata"]["name"].as_str().unwrap_or_default();
    operator_kit::apply::api_for(&ctx.client, secret)?
        .patch(
            name,
            &PatchParams::apply(capi::MANAGED_BY).force(),
            &Patch::Apply(secret),
        )
        .await?;
    Ok(())
}

fn calico_manifest(ctx: &Context) -> Option<String> {
    let config_map = ctx.index.config_map(
        ctx.config.namespace(),
        &ctx.config.calico_manifest_configmap,
    )?;
    config_map.data.as_ref()?.get("calico.yaml").cloned()
}
