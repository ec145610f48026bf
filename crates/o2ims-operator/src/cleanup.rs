//! Ordered deletion: the cluster's registration in ArgoCD first (nothing deploys to it any
//! more), then the Cluster (Cluster API tears the machines down and releases the hosts), then
//! everything else of the request, then the finalizer goes.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Resource, ResourceExt};

use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use lcm_core::provisioning_request_selector;

use crate::context::Context;
use crate::error::Result;
use crate::report::Report;
use crate::snapshot::{Snapshot, controlled_by};
use crate::{handoff, ledger, status};

/// One step of the deletion; true once nothing of the request is left.
pub async fn run(request: &ProvisioningRequest, ctx: &Context) -> Result<bool> {
    let name = request.name_any();
    let selector = ListParams::default().labels(&provisioning_request_selector(&name));
    let world = Snapshot::take(&ctx.index, &ctx.config, request);
    if let Some(cluster) = &world.cluster {
        let namespace = cluster["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cluster_name = cluster["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !handoff::withdraw(ctx, &cluster_name, &world).await? {
            let message = format!(
                "removing the registration of cluster {cluster_name} in ArgoCD before tearing it down"
            );
            let report = Report::new(ProvisioningState::Deleting, message, vec![]);
            status::write(ctx, request, &report).await?;
            return Ok(false);
        }
        if cluster["metadata"]["deletionTimestamp"].is_null() {
            let api: Api<DynamicObject> = Api::namespaced_with(
                ctx.client.clone(),
                &namespace,
                &Kind::Cluster.api_resource(),
            );
            api.delete(&cluster_name, &DeleteParams::background())
                .await?;
        }
        let message = format!(
            "waiting for Cluster API to tear down Cluster {namespace}/{cluster_name} and release its hosts"
        );
        status::write(
            ctx,
            request,
            &Report::new(ProvisioningState::Deleting, message, vec![]),
        )
        .await?;
        return Ok(false);
    }
    let operator_namespace = ctx.config.namespace();
    delete_all(
        Api::<Job>::namespaced(ctx.client.clone(), operator_namespace),
        &selector,
        request,
    )
    .await?;
    delete_all(
        Api::<ConfigMap>::namespaced(ctx.client.clone(), operator_namespace),
        &selector,
        request,
    )
    .await?;
    let namespaces = delete_all(
        Api::<Namespace>::all(ctx.client.clone()),
        &selector,
        request,
    )
    .await?;
    // The Cluster is gone; its hosts go back to the ledger as BYOH releases them.
    let held = ledger::release(ctx, request, &world, &[]).await?;
    if namespaces.is_empty() && held.is_empty() {
        return Ok(true);
    }
    let message = if held.is_empty() {
        format!(
            "Cluster deleted; waiting for namespace {} to be removed",
            namespaces.join(", ")
        )
    } else {
        format!(
            "Cluster deleted; waiting for BYOH to release hosts {}",
            held.join(", ")
        )
    };
    status::write(
        ctx,
        request,
        &Report::new(ProvisioningState::Deleting, message, vec![]),
    )
    .await?;
    Ok(false)
}

/// Deletes every object `selector` matches that `request` controls (a namespace that was there
/// before, or anything merely labelled, is never deleted), those not already going; returns the
/// names still present.
async fn delete_all<K>(
    api: Api<K>,
    selector: &ListParams,
    request: &ProvisioningRequest,
) -> Result<Vec<String>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut present = Vec::new();
    for object in api
        .list(selector)
        .await?
        .into_iter()
        .filter(|o| controlled_by(o, request))
    {
        if object.meta().deletion_timestamp.is_none() {
            api.delete(&object.name_any(), &DeleteParams::background())
                .await?;
        }
        present.push(object.name_any());
    }
    Ok(present)
}
