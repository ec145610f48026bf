//! Writes a reconcile's `Report` as the ProvisioningRequest's status, only when it changed,
//! with an Event for the stages it reached or failed and a new state.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use lcm_core::crd::{ProvisioningRequest, ProvisioningRequestStatus};

use crate::context::Context;
use crate::error::Result;
use crate::report::{Report, event, next_status};

/// Writes the status `report` gives, unless it is already there; publishes an Event when
/// a stage is reached or failed, or the state changes. Returns the written (or current) status.
pub async fn write(
    ctx: &Context,
    request: &ProvisioningRequest,
    report: &Report,
) -> Result<ProvisioningRequestStatus> {
    let now = Time(jiff::Timestamp::now());
    let status = next_status(request, report, &now);
    if request.status.as_ref() == Some(&status) {
        return Ok(status);
    }
    let api: Api<ProvisioningRequest> = Api::all(ctx.client.clone());
    let patch = json!({
        "apiVersion": ProvisioningRequest::api_version(&()),
        "kind": ProvisioningRequest::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &request.name_any(),
            &PatchParams::apply(lcm_core::capi::MANAGED_BY).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    ctx.status_writes.record(&written);
    // Only a write that succeeded turns a stage True: a retry or a restart finds it True already.
    ctx.o2ims_metrics().stages_reached(request, &status);
    if let Some(event) = event(request.status.as_ref(), &status)
        && let Err(e) = ctx.recorder.publish(&event, &request.object_ref(&())).await
    {
        tracing::warn!(error = %e, "publishing an Event failed");
    }
    Ok(status)
}
