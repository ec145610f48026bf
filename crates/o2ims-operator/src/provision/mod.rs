//! The life of a ProvisioningRequest that is not being deleted, as its steps: validate -> hold
//! hosts -> prepare hosts -> apply -> observe -> hand off -> report. Each step decides from one
//! snapshot of the index, taken once, and either goes on with what it produced or ends the pass
//! with the report to write and when to look again ([`step`]). Scale and upgrade are spec
//! changes the same steps judge and apply.

mod apply;
mod conclude;
mod hold;
mod host_access;
mod observe;
mod prepare;
mod step;
mod validate;

use kube::runtime::controller::Action;

use lcm_core::crd::{ProvisioningRequest, ProvisioningState};

use self::apply::apply;
use self::conclude::conclude;
use self::hold::hold_hosts;
use self::observe::observe;
use self::prepare::prepare_hosts;
use self::step::{Exit, Step, Stop, Then};
use self::validate::validate;
use crate::context::Context;
use crate::error::Result;
use crate::snapshot::Snapshot;
use crate::{handoff, ledger};

/// One pass over `request`: its steps, then the report they end with.
pub async fn provision(request: &ProvisioningRequest, ctx: &Context) -> Result<Action> {
    let world = Snapshot::take(&ctx.index, &ctx.config, request);
    let stop = match steps(ctx, request, &world).await {
        Ok(stop) => stop,
        Err(Exit::Stop(stop)) => *stop,
        Err(Exit::Error(error)) => return Err(error),
    };
    conclude(ctx, request, stop).await
}

async fn steps(ctx: &Context, request: &ProvisioningRequest, world: &Snapshot) -> Step<Stop> {
    let plan = validate(&ctx.config, request, world);
    let build = hold_hosts(ctx, request, plan, world).await?;
    let prepared = prepare_hosts(ctx, request, &build, world).await?;
    let written = apply(ctx, request, &build, &prepared, world).await?;
    let mut report = observe(&build, prepared, &written, world);
    let fulfilled = report.state == ProvisioningState::Fulfilled;
    let handed_off = handoff::keep(ctx, request, &build.params, fulfilled, world).await?;
    report.conditions.extend(handed_off);
    let keep: Vec<&String> = build.params.all_hosts().collect();
    ledger::release(ctx, request, world, &keep).await?;
    Ok(Stop {
        report,
        then: Then::TimeStages(build.params.host_preparation),
    })
}
