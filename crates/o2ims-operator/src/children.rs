//! Writes the objects a request owns (its namespace, Cluster API objects, host-preparation Jobs,
//! hand-offs) with server-side apply under one field manager, writing only what changed. The
//! applier compares each object with the index's copy at the moment of the write: that saves the
//! write, it decides nothing.
//!
//! Ownership: Cluster API makes the Cluster the *controller* of its ByoCluster and
//! KubeadmControlPlane (and adds itself to the templates), so the request is the controller
//! owner of the Namespace and the Cluster only, and a plain owner of the rest. Either way
//! the garbage collector removes everything once the request is gone, and every object
//! carries the request's label, which is how the controller maps their events back.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use lcm_core::capi;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::template::ClusterParameters;
use operator_kit::apply::{Applied, Live};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::snapshot::controlled_by;

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
        // The namespace is claimed (created) before the rest: not absent even then.
        None if new && object["kind"] != "Namespace" => Live::Absent,
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
    let namespace: Namespace =
        serde_json::from_value(object.clone()).map_err(kube::Error::SerdeError)?;
    let existing = match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => {
            // As the pass applies it next: that apply has nothing to write.
            ctx.applier.created(&object);
            return Ok(None);
        }
        Err(kube::Error::Api(s)) if s.is_already_exists() => api.get(&name).await?,
        Err(e) => return Err(e.into()),
    };
    if controlled_by(&existing, request) {
        return Ok(None);
    }
    if existing.metadata.deletion_timestamp.is_some() {
        return Err(Error::NamespaceTerminating(name));
    }
    Ok(Some(format!(
        "namespace {name} already exists and was not created for this request: choose another clusterName, or delete the namespace"
    )))
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
