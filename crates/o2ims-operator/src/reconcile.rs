//! A ProvisioningRequest's reconcile: its finalizer goes on first; then it is provisioned
//! (`provision`: validate, hold hosts, prepare hosts, apply, observe, hand off, report) until
//! it is deleted, when its cluster is torn down in order (`cleanup`).

use std::sync::Arc;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use lcm_core::crd::ProvisioningRequest;

use crate::cleanup;
use crate::context::Context;
use crate::error::Result;
use crate::provision::provision;

pub const FINALIZER: &str = "o2ims.provisioning.oran.org/finalizer";

pub async fn reconcile(request: Arc<ProvisioningRequest>, ctx: Arc<Context>) -> Result<Action> {
    ctx.index.ready.wait().await;
    let _timer = ctx.metrics.reconcile_started();
    // A reconcile woken before the watch brought this operator's last status write decides
    // from that status, not from the older cached one.
    let request = ctx.status_writes.fresh(&request);
    let has_finalizer = request.finalizers().iter().any(|f| f == FINALIZER);
    if request.metadata.deletion_timestamp.is_some() {
        if has_finalizer && cleanup::run(&request, &ctx).await? {
            set_finalizer(&ctx, &request, false).await?;
            ctx.status_writes.forget(&request.uid().unwrap_or_default());
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        // The finalizer goes on before anything exists that would need cleaning up; the same
        // pass goes on (its first status says what it found, in one write).
        set_finalizer(&ctx, &request, true).await?;
    }
    provision(&request, &ctx).await
}

async fn set_finalizer(ctx: &Context, request: &ProvisioningRequest, present: bool) -> Result<()> {
    let api: Api<ProvisioningRequest> = Api::all(ctx.client.clone());
    Ok(operator_kit::runtime::set_finalizer(&api, request, FINALIZER, present).await?)
}
