//! Hold hosts: take the build's hosts in the host ledger and, for a new cluster, its
//! namespace, then mark the claims in use. A new request that cannot have them gives back what
//! it took; a change that needs a host another holds is refused, and the cluster keeps the hosts
//! it runs on.

use std::time::Duration;

use kube::ResourceExt;

use lcm_core::conditions::{Desired, UNKNOWN};
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};

use super::step::{Step, Stop, Then};
use super::validate::{Build, Plan, not_held, refused};
use crate::context::Context;
use crate::report::{Report, VALIDATED};
use crate::snapshot::Snapshot;
use crate::{children, ledger};

/// How often a request waiting for a host that a request coming first wants looks again.
const WAIT_FOR_HOST: Duration = Duration::from_secs(2);

/// Holds the hosts of `plan`; goes on with the build to apply.
pub async fn hold_hosts(
    ctx: &Context,
    request: &ProvisioningRequest,
    plan: Plan,
    world: &Snapshot,
) -> Step<Build> {
    let build = match plan {
        Ok(build) => build,
        Err(condition) => {
            ledger::withdraw(ctx, request, world, &[]).await?;
            return unheld(condition);
        }
    };
    let taken = ledger::take(ctx, request, &build.params, world).await?;
    let (build, claims) = match taken.conflict {
        None => (build, taken.claims),
        Some(conflict) => {
            // What was taken goes back while waiting too: two requests each holding a host the
            // other waits for would wait forever.
            ledger::withdraw(ctx, request, world, &taken.claims).await?;
            let Some(applied) = build.applied else {
                return unheld(not_held(conflict));
            };
            let running = ledger::take(ctx, request, &applied, world).await?;
            if let Some(lost) = running.conflict {
                let lost = lost.into_message();
                tracing::warn!(request = %request.name_any(), "a running cluster's host is held by another request: {lost}");
            }
            (refused(&applied, conflict.into_message()), running.claims)
        }
    };
    if build.applied.is_none()
        && let Some(conflict) = children::claim_namespace(ctx, request, &build.params).await?
    {
        ledger::withdraw(ctx, request, world, &claims).await?;
        return Stop::failed(Desired::false_(VALIDATED, "NamespaceConflict", conflict));
    }
    // From here on Jobs and Cluster API objects name the hosts.
    ledger::mark_in_use(ctx, &claims).await?;
    Ok(build)
}

/// The end of a pass that holds no host: waiting for one that may be given up, or failed.
fn unheld<T>(condition: Desired) -> Step<T> {
    if condition.status == UNKNOWN {
        let message = condition.message.clone();
        let report = Report::new(ProvisioningState::Progressing, message, vec![condition]);
        return Stop::exit(report, Then::RetryAfter(WAIT_FOR_HOST));
    }
    Stop::failed(condition)
}
