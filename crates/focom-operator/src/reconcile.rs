//! The life of a FocomProvisioningRequest: reach the O-Cloud -> read the inventory -> select
//! and validate the clusters -> check feasibility -> create, scale or delete their
//! ProvisioningRequests -> aggregate their status.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;

use lcm_core::conditions::Desired;
use lcm_core::crd::{FocomProvisioningRequest, HostClaim, Operation, ProvisioningRequest};
use lcm_core::focom::{self, Claim, Selected};

use crate::context::Context;
use crate::error::Result;
use crate::o2ims::O2ims;
use crate::ocloud::{self, OCLOUD_NOT_ALLOWED, OCLOUD_REACHABLE, Target};
use crate::ocloud_in_use;
use crate::status::{self, FEASIBLE, Outcome};
use crate::validation::{INVENTORY_VALID, VALIDATED, Validation, selects_from_inventory};

pub const FINALIZER: &str = "focom.nephio.org/finalizer";

pub async fn reconcile(
    request: Arc<FocomProvisioningRequest>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    ctx.inputs.ready.wait().await;
    // A reconcile woken before the watch brought this operator's last status write decides
    // from that status, not from the older cached one.
    let request = ctx.status_writes.fresh(&request);
    let has_finalizer = request.finalizers().iter().any(|f| f == FINALIZER);
    if request.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return match delete_all(&request, &ctx).await? {
            Some(waiting) => Ok(waiting),
            None => {
                set_finalizer(&ctx, &request, false).await?;
                ctx.status_writes.forget(&request.uid().unwrap_or_default());
                ctx.validations.forget(&request);
                ocloud_in_use::release_unused(&ctx, Some(&request)).await?;
                Ok(Action::await_change())
            }
        };
    }
    if !has_finalizer {
        // On before anything is created that would need deleting; the same pass goes on.
        set_finalizer(&ctx, &request, true).await?;
    }
    let action = provision(&request, &ctx).await;
    ctx.refresh_phase_metrics();
    // The OCloud the request used before a change of its `oCloudId`.
    ocloud_in_use::release_unused(&ctx, None).await?;
    action
}

async fn set_finalizer(
    ctx: &Context,
    request: &FocomProvisioningRequest,
    present: bool,
) -> Result<()> {
    Ok(
        operator_kit::runtime::set_finalizer(&api(ctx, request), request, FINALIZER, present)
            .await?,
    )
}

fn api(ctx: &Context, request: &FocomProvisioningRequest) -> Api<FocomProvisioningRequest> {
    Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default())
}

async fn provision(request: &FocomProvisioningRequest, ctx: &Context) -> Result<Action> {
    let mut outcome = Outcome::new(request.spec.operation);
    let (target, owned) = match reach(ctx, request).await? {
        Ok(reached) => reached,
        // Not a matter of time: the request may never use that O-Cloud.
        Err(refused) if refused.reason == OCLOUD_NOT_ALLOWED => {
            return status::write(ctx, request, outcome.refused(refused)).await;
        }
        Err(unreachable) => {
            return status::write_retrying(ctx, request, outcome.blocked(unreachable)).await;
        }
    };
    outcome.conditions.push(Desired::true_(
        OCLOUD_REACHABLE,
        "Reachable",
        format!("provisioning on {}", target.description),
    ));
    outcome.owned = owned;

    let validation = validate(ctx, request);
    let selected = match validation.as_ref() {
        Validation::InventoryUnusable(unusable) => {
            // Nothing already provisioned is touched: the rows still show what exists.
            outcome.conditions.push(unusable.clone());
            return status::write(ctx, request, outcome.failed_or_current()).await;
        }
        Validation::Invalid(invalid) => {
            outcome.conditions.extend(inventory_valid(request));
            return status::write(ctx, request, outcome.invalid(invalid.clone())).await;
        }
        Validation::Selected(selected) => selected,
    };
    outcome.conditions.extend(inventory_valid(request));
    outcome.conditions.push(Desired::true_(
        VALIDATED,
        "Valid",
        format!("{} cluster(s) selected", selected.len()),
    ));
    outcome.selected = selected.iter().map(|s| s.name.clone()).collect();

    let written = match request.spec.operation {
        Operation::Create => create_missing(request, &target, selected, false).await?,
        Operation::Scale => create_missing(request, &target, selected, true).await?,
        Operation::Delete => {
            delete_selected(request, &target, selected).await?;
            Ok(Vec::new())
        }
    };
    match written {
        Ok(written) => {
            outcome.owned = with_written(std::mem::take(&mut outcome.owned), written);
            status::write(ctx, request, outcome).await
        }
        Err(Undecided::Infeasible(condition)) => {
            status::write(ctx, request, outcome.infeasible(condition)).await
        }
        Err(Undecided::Waiting(condition)) => {
            status::write(ctx, request, outcome.waiting(condition)).await
        }
    }
}

/// The request validated against the inventory and the admin's TemplateInfos, as their
/// stores hold them now (reused while none of them changed).
fn validate(ctx: &Context, request: &FocomProvisioningRequest) -> Arc<Validation> {
    let config = &ctx.config;
    let inventory = ctx
        .inputs
        .inventory
        .get(&ObjectRef::new(&config.inventory_configmap).within(config.inventory_namespace()));
    let templates = ctx.inputs.templates.state();
    ctx.validations
        .validate(request, inventory.as_deref(), &templates, config)
}

/// The InventoryValid condition of a valid inventory, for a request that selects from it.
fn inventory_valid(request: &FocomProvisioningRequest) -> Option<Desired> {
    selects_from_inventory(request)
        .then(|| Desired::true_(INVENTORY_VALID, "Valid", "the inventory is valid"))
}

/// The ProvisioningRequests `request` created on `target`, as its cache has them.
fn owned(target: &Target, request: &FocomProvisioningRequest) -> Vec<Arc<ProvisioningRequest>> {
    let (namespace, name) = (request.namespace().unwrap_or_default(), request.name_any());
    target
        .cache
        .requests
        .state()
        .into_iter()
        .filter(|r| focom::is_owned_by(r, &namespace, &name))
        .collect()
}

/// `owned` with what this pass wrote in place of what the cache had (it has not seen it yet),
/// by name.
fn with_written(
    owned: Vec<Arc<ProvisioningRequest>>,
    written: Vec<ProvisioningRequest>,
) -> Vec<Arc<ProvisioningRequest>> {
    let mut by_name: BTreeMap<String, Arc<ProvisioningRequest>> =
        owned.into_iter().map(|r| (r.name_any(), r)).collect();
    by_name.extend(written.into_iter().map(|r| (r.name_any(), Arc::new(r))));
    by_name.into_values().collect()
}

/// The request's O-Cloud and the ProvisioningRequests it created there, or the
/// OCloudReachable condition saying why the O-Cloud cannot be reached.
async fn reach(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<std::result::Result<(Target, Vec<Arc<ProvisioningRequest>>), Desired>> {
    let target = match ocloud::target(ctx, request).await? {
        Ok(target) => target,
        Err(unreachable) => return Ok(Err(unreachable)),
    };
    // Held until no request uses it (an OCloud a request never reached has nothing of it).
    if let Some(ocloud) = &target.ocloud {
        ocloud_in_use::hold(ctx, ocloud).await?;
    }
    target.cache.set_user(ObjectRef::from_obj(request), true);
    Ok(match target.cache.usable().await {
        Ok(()) => {
            let owned = owned(&target, request);
            Ok((target, owned))
        }
        Err(e) => Err(Desired::false_(
            OCLOUD_REACHABLE,
            "Unreachable",
            format!("{}: {e}", target.description),
        )),
    })
}

/// How many ProvisioningRequests one pass creates or updates at once: enough that a thousand
/// clusters are requested in seconds, few enough not to crowd out the O-Cloud's other clients.
const CONCURRENT_WRITES: usize = 16;

/// Why a pass created nothing: the Feasible condition to report.
enum Undecided {
    Infeasible(Desired),
    /// Hosts other requests want may still be given up: the request waits for them.
    Waiting(Desired),
}

/// Creates the ProvisioningRequests that do not exist yet (and, with `scale`, updates the
/// workers of those that do), after checking the whole request is feasible. Returns what it
/// wrote, or why it wrote nothing.
async fn create_missing(
    request: &FocomProvisioningRequest,
    target: &Target,
    selected: &[Selected],
    scale: bool,
) -> Result<std::result::Result<Vec<ProvisioningRequest>, Undecided>> {
    // Marked waiting before the stores are read, so a change arriving while this pass decides
    // wakes it again instead of being missed.
    let this = ObjectRef::from_obj(request);
    target.cache.set_waiting(this.clone(), true);
    let (namespace, name) = (request.namespace().unwrap_or_default(), request.name_any());
    let to_write: Vec<(&Selected, Option<Arc<ProvisioningRequest>>)> = selected
        .iter()
        .map(|cluster| {
            let pr_name = focom::request_name(&namespace, &name, &cluster.name);
            (
                cluster,
                target.cache.requests.get(&ObjectRef::new(&pr_name)),
            )
        })
        .filter(|(cluster, current)| match current {
            None => true,
            Some(current) => scale && workers_changed(current, cluster),
        })
        .collect();
    // Every cluster has its request as asked: nothing to decide (the common pass, woken by a
    // change of one of them), and no reading of the whole O-Cloud.
    if to_write.is_empty() {
        target.cache.set_waiting(this, false);
        return Ok(Ok(Vec::new()));
    }
    let undecided = undecided(request, target, selected);
    let waits = matches!(undecided, Some(Undecided::Waiting(_)));
    target.cache.set_waiting(this, waits);
    if let Some(undecided) = undecided {
        return Ok(Err(undecided));
    }
    let o2ims = target.cache.o2ims();
    let writes: Vec<_> = to_write
        .into_iter()
        .map(|(cluster, current)| match current {
            None => {
                let desired = focom::provisioning_request(request, cluster);
                create(o2ims, desired, &cluster.name).boxed()
            }
            Some(current) => update_workers(o2ims, current, cluster).boxed(),
        })
        .collect();
    let written: Vec<Option<ProvisioningRequest>> = futures::stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect()
        .await?;
    Ok(Ok(written.into_iter().flatten().collect()))
}

/// Why `selected` cannot be created now, checked against the O-Cloud's other requests and its
/// host ledger.
fn undecided(
    request: &FocomProvisioningRequest,
    target: &Target,
    selected: &[Selected],
) -> Option<Undecided> {
    // The O-Cloud's host ledger says who holds a host; two FOCOM passes deciding at once may
    // both find a host free, and then the O-Cloud gives it to one request and fails the other.
    let held: Vec<HostClaim> = target
        .cache
        .claims
        .state()
        .iter()
        .map(|c| c.as_ref().clone())
        .collect();
    let own: Vec<Claim> = owned(target, request)
        .iter()
        .filter_map(|r| Claim::of(r))
        .collect();
    let existing = target.cache.requests.state();
    let claims: Vec<Claim> = existing.iter().filter_map(|r| Claim::of(r)).collect();
    let feasibility = focom::feasibility(selected, &own, &claims, &held);
    let joined = |problems: &[focom::Problem]| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !feasibility.conflicts.is_empty() {
        let message = joined(&feasibility.conflicts);
        return Some(Undecided::Infeasible(Desired::false_(
            FEASIBLE,
            "Infeasible",
            message,
        )));
    }
    if !feasibility.waiting.is_empty() {
        let message = joined(&feasibility.waiting);
        return Some(Undecided::Waiting(Desired::unknown(
            FEASIBLE,
            "WaitingForHosts",
            message,
        )));
    }
    None
}

/// Creates `desired`; `None` when it exists already (the cache had not seen it yet).
async fn create(
    o2ims: &O2ims,
    desired: ProvisioningRequest,
    cluster: &str,
) -> Result<Option<ProvisioningRequest>> {
    let created = o2ims.create(&desired).await?;
    if let Some(created) = &created {
        tracing::info!(provisioning_request = %created.name_any(), %cluster, "created");
    }
    Ok(created)
}

/// Whether `scale` changes the worker hosts of `current`.
fn workers_changed(current: &ProvisioningRequest, cluster: &Selected) -> bool {
    current.spec.template_parameters["hosts"]["workers"] != json!(cluster.parameters.hosts.workers)
}

/// `scale`: the worker hosts follow the inventory; the O2IMS operator does the rest (how it
/// reaches them comes from the O-Cloud's own inventory).
async fn update_workers(
    o2ims: &O2ims,
    current: Arc<ProvisioningRequest>,
    cluster: &Selected,
) -> Result<Option<ProvisioningRequest>> {
    let workers = json!(cluster.parameters.hosts.workers);
    let updated = o2ims.set_workers(&current, workers).await?;
    tracing::info!(provisioning_request = %current.name_any(), cluster = %cluster.name, "workers updated");
    Ok(Some(updated))
}

async fn delete_selected(
    request: &FocomProvisioningRequest,
    target: &Target,
    selected: &[Selected],
) -> Result<()> {
    let names: Vec<String> = selected
        .iter()
        .map(|c| {
            focom::request_name(
                &request.namespace().unwrap_or_default(),
                &request.name_any(),
                &c.name,
            )
        })
        .collect();
    delete_requests(
        target.cache.o2ims(),
        owned(target, request)
            .into_iter()
            .filter(|r| names.contains(&r.name_any())),
    )
    .await
}

async fn delete_requests(
    o2ims: &O2ims,
    requests: impl Iterator<Item = Arc<ProvisioningRequest>>,
) -> Result<()> {
    for pr in requests.filter(|r| r.meta().deletion_timestamp.is_none()) {
        o2ims.delete(&pr.name_any()).await?;
        tracing::info!(provisioning_request = %pr.name_any(), "deleting");
    }
    Ok(())
}

/// Deleting the request deletes every ProvisioningRequest it created: `None` once they are
/// gone, else when to look again (their deletion is watched; an unreachable O-Cloud is retried).
async fn delete_all(request: &FocomProvisioningRequest, ctx: &Context) -> Result<Option<Action>> {
    let (target, owned) = match reach(ctx, request).await? {
        Ok(reached) => reached,
        // The O-Cloud is gone for good, or was never this request's to use: nothing more can
        // be cleaned up there.
        Err(condition)
            if condition.reason == "OCloudNotFound" || condition.reason == OCLOUD_NOT_ALLOWED =>
        {
            return Ok(None);
        }
        Err(condition) => {
            let blocked = Outcome::new(Operation::Delete).blocked(condition);
            return Ok(Some(status::write_retrying(ctx, request, blocked).await?));
        }
    };
    let this = ObjectRef::from_obj(request);
    target.cache.set_waiting(this.clone(), false);
    if owned.is_empty() {
        target.cache.set_user(this, false);
        return Ok(None);
    }
    delete_requests(target.cache.o2ims(), owned.clone().into_iter()).await?;
    let mut outcome = Outcome::new(Operation::Delete);
    outcome.selected = owned
        .iter()
        .filter_map(|r| r.labels().get(lcm_core::CLUSTER_NAME_LABEL).cloned())
        .collect();
    outcome.owned = owned;
    Ok(Some(status::write(ctx, request, outcome).await?))
}
