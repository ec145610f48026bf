//! An OCloud is how FOCOM reaches the ProvisioningRequests it created there: deleted before its
//! requests, it would leave them running with nobody to delete them. So an OCloud a request uses
//! carries a finalizer until no request uses it any more; `kubectl delete ocloud` then waits
//! for the requests to go.

use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use lcm_core::crd::{FocomProvisioningRequest, OCloud};

use crate::context::Context;
use crate::error::Result;

pub const IN_USE_FINALIZER: &str = "focom.nephio.org/in-use";

/// Whether `request` provisions on `ocloud`.
pub fn targets(request: &FocomProvisioningRequest, ocloud: &OCloud) -> bool {
    crate::ocloud::ocloud_of(request).is_some_and(|r| r == ObjectRef::from_obj(ocloud))
}

fn api(ctx: &Context, ocloud: &OCloud) -> Api<OCloud> {
    Api::namespaced(ctx.client.clone(), &ocloud.namespace().unwrap_or_default())
}

fn held(ocloud: &OCloud) -> bool {
    ocloud.finalizers().iter().any(|f| f == IN_USE_FINALIZER)
}

/// Puts the finalizer on the OCloud a request is about to use.
pub async fn hold(ctx: &Context, ocloud: &OCloud) -> Result<()> {
    if !held(ocloud) {
        operator_kit::runtime::set_finalizer(&api(ctx, ocloud), ocloud, IN_USE_FINALIZER, true)
            .await?;
    }
    Ok(())
}

/// Takes the finalizer off every OCloud no request uses any more, not counting `leaving` (a
/// request whose deletion just finished, still in the cache). Reads only the caches.
pub async fn release_unused(
    ctx: &Context,
    leaving: Option<&FocomProvisioningRequest>,
) -> Result<()> {
    let requests = ctx.requests.state();
    let in_use = |ocloud: &OCloud| {
        requests.iter().any(|r| {
            let is_leaving = leaving.is_some_and(|l| l.meta().uid == r.meta().uid);
            !is_leaving && targets(r, ocloud)
        })
    };
    for ocloud in ctx.inputs.oclouds.state() {
        if held(&ocloud) && !in_use(&ocloud) {
            operator_kit::runtime::set_finalizer(
                &api(ctx, &ocloud),
                &ocloud,
                IN_USE_FINALIZER,
                false,
            )
            .await?;
            tracing::info!(ocloud = %ocloud.name_any(), "no request uses the OCloud any more");
        }
    }
    Ok(())
}
