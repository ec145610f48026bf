//! The life of a FocomProvisioningRequest: reach the O-Cloud -> read the inventory -> select
//! and validate the clusters -> check feasibility -> create, scale or delete their
//! ProvisioningRequests -> aggregate their status.

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
use lcm_core::inventory::Inventory;
use lcm_core::template::{self, schema::Schema};

use crate::config::INVENTORY_KEY;
use crate::context::Context;
use crate::error::Result;
use crate::o2ims::O2ims;
use crate::ocloud::{self, OCLOUD_NOT_ALLOWED, OCLOUD_REACHABLE, Target};
use crate::ocloud_in_use;
use crate::status::{self, FEASIBLE, INVENTORY_VALID, Outcome, VALIDATED};

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
                ocloud_in_use::release_unused(&ctx, Some(&request)).await?;
                Ok(Action::await_change())
            }
        };
    }
    if !has_finalizer {
        set_finalizer(&ctx, &request, true).await?;
        return Ok(Action::await_change());
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

    let inventory = match needs_inventory(request) {
        false => None,
        true => match load_inventory(ctx) {
            Ok(inventory) => Some(inventory),
            Err(invalid) => {
                // Nothing already provisioned is touched: the rows still show what exists.
                outcome.conditions.push(invalid);
                return status::write(ctx, request, outcome.failed_or_current()).await;
            }
        },
    };
    if inventory.is_some() {
        outcome.conditions.push(Desired::true_(
            INVENTORY_VALID,
            "Valid",
            "the inventory is valid",
        ));
    }
    let selected = match select(ctx, request, inventory.as_ref()).await? {
        Ok(selected) => selected,
        Err(invalid) => return status::write(ctx, request, outcome.invalid(invalid)).await,
    };
    outcome.conditions.push(Desired::true_(
        VALIDATED,
        "Valid",
        format!("{} cluster(s) selected", selected.len()),
    ));
    outcome.selected = selected.iter().map(|s| s.name.clone()).collect();

    let written = match request.spec.operation {
        Operation::Create => create_missing(request, &target, &selected, false).await?,
        Operation::Scale => create_missing(request, &target, &selected, true).await?,
        Operation::Delete => {
            delete_selected(request, &target, &selected).await?;
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

fn needs_inventory(request: &FocomProvisioningRequest) -> bool {
    request.spec.template_parameters.is_none()
}

/// The ProvisioningRequests `request` created on `target`, as its cache has them.
fn owned(target: &Target, request: &FocomProvisioningRequest) -> Vec<ProvisioningRequest> {
    let (namespace, name) = (request.namespace().unwrap_or_default(), request.name_any());
    target
        .cache
        .requests
        .state()
        .iter()
        .filter(|r| focom::is_owned_by(r, &namespace, &name))
        .map(|r| r.as_ref().clone())
        .collect()
}

/// `owned` with what this pass wrote in place of what the cache had (it has not seen it yet).
fn with_written(
    mut owned: Vec<ProvisioningRequest>,
    written: Vec<ProvisioningRequest>,
) -> Vec<ProvisioningRequest> {
    for request in written {
        owned.retain(|r| r.name_any() != request.name_any());
        owned.push(request);
    }
    owned.sort_by_key(ResourceExt::name_any);
    owned
}

/// The request's O-Cloud and the ProvisioningRequests it created there, or the
/// OCloudReachable condition saying why the O-Cloud cannot be reached.
async fn reach(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<std::result::Result<(Target, Vec<ProvisioningRequest>), Desired>> {
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

/// The inventory from its ConfigMap, or the InventoryValid condition saying what is wrong.
fn load_inventory(ctx: &Context) -> std::result::Result<Inventory, Desired> {
    let (namespace, name) = (
        ctx.config.inventory_namespace(),
        &ctx.config.inventory_configmap,
    );
    let source = format!("ConfigMap {namespace}/{name}");
    let config_map = ctx
        .inputs
        .inventory
        .get(&ObjectRef::new(name).within(namespace));
    let Some(text) = config_map
        .as_ref()
        .and_then(|c| c.data.as_ref()?.get(INVENTORY_KEY))
    else {
        let message = format!("{source} with key {INVENTORY_KEY} does not exist");
        return Err(Desired::false_(
            INVENTORY_VALID,
            "InventoryMissing",
            message,
        ));
    };
    Inventory::parse(&format!("{source} key {INVENTORY_KEY}"), text)
        .map_err(|e| Desired::false_(INVENTORY_VALID, "InvalidInventory", e.to_string()))
}

/// The selected clusters, each checked against the template's JSON Schema.
async fn select(
    ctx: &Context,
    request: &FocomProvisioningRequest,
    inventory: Option<&Inventory>,
) -> Result<std::result::Result<Vec<Selected>, Desired>> {
    let spec = &request.spec;
    let schema = match template_schema(ctx, request) {
        Some(schema) => schema,
        None => {
            let message = format!(
                "no TemplateInfo for template {} {} (and it is not the built-in {} {})",
                spec.template_name,
                spec.template_version,
                template::NAME,
                template::VERSION
            );
            return Ok(Err(Desired::false_(VALIDATED, "UnknownTemplate", message)));
        }
    };
    // Compiled once: a fleet's clusters are each checked against it.
    let template = format!("template {} {}", spec.template_name, spec.template_version);
    let schema = match Schema::compile(&schema, &template) {
        Ok(schema) => schema,
        Err(errors) => {
            let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Ok(Err(Desired::false_(
                VALIDATED,
                "InvalidRequest",
                problems.join("; "),
            )));
        }
    };
    // The request's own parameters are checked as sent; inventory clusters as derived.
    let mut problems = Vec::new();
    if let Some(parameters) = &spec.template_parameters
        && let Err(errors) = schema.check(parameters, "spec.templateParameters")
    {
        problems.extend(errors.iter().map(ToString::to_string));
    }
    if let Some(parameters) = &spec.template_parameters
        && !ctx.config.allow_request_host_access
        && parameters["hostAccess"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    {
        // Addresses, users and keys of the hosts are the O-Cloud admin's to give: they decide
        // where the fleet's SSH key is sent.
        problems.push(
            "spec.templateParameters.hostAccess: requests may not say how hosts are reached on this O-Cloud; the admin's inventory does (or the FOCOM operator runs with --allow-request-host-access)".into(),
        );
    }
    if problems.is_empty() {
        match focom::select(request, inventory) {
            Err(found) => problems.extend(found.iter().map(ToString::to_string)),
            Ok(selected) => {
                for cluster in selected
                    .iter()
                    .filter(|_| spec.template_parameters.is_none())
                {
                    let value = serde_json::to_value(&cluster.parameters).unwrap_or_default();
                    if let Err(errors) =
                        schema.check(&value, &format!("cluster `{}`", cluster.name))
                    {
                        problems.extend(errors.iter().map(ToString::to_string));
                    }
                }
                if problems.is_empty() {
                    return Ok(Ok(selected));
                }
            }
        }
    }
    Ok(Err(Desired::false_(
        VALIDATED,
        "InvalidRequest",
        problems.join("; "),
    )))
}

/// The JSON Schema of the request's template: a TemplateInfo matching its name and version (by
/// spec fields or by Nephio's `<templateName>-<templateVersion>` name) in the admin's
/// `--template-namespace` only, so a tenant cannot shadow the catalogue from its own
/// namespace; else the built-in template's.
fn template_schema(ctx: &Context, request: &FocomProvisioningRequest) -> Option<String> {
    let spec = &request.spec;
    let nephio_name = format!("{}-{}", spec.template_name, spec.template_version);
    let infos = ctx.inputs.templates.state();
    let matching = infos.iter().find(|info| {
        (info.spec.template_name == spec.template_name
            && info.spec.template_version == spec.template_version)
            || info.name_any() == nephio_name
    });
    if let Some(info) = matching {
        return Some(info.spec.template_parameter_schema.clone());
    }
    let builtin =
        spec.template_name == template::NAME && spec.template_version == template::VERSION;
    builtin.then(|| template::parameter_schema().to_string())
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
    let existing = target.cache.requests.state();
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
        .filter_map(Claim::of)
        .collect();
    let claims: Vec<Claim> = existing.iter().filter_map(|r| Claim::of(r)).collect();
    let feasibility = focom::feasibility(selected, &own, &claims, &held);
    let waits = feasibility.conflicts.is_empty() && !feasibility.waiting.is_empty();
    target.cache.set_waiting(this, waits);
    let joined = |problems: &[focom::Problem]| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !feasibility.conflicts.is_empty() {
        let message = joined(&feasibility.conflicts);
        return Ok(Err(Undecided::Infeasible(Desired::false_(
            FEASIBLE,
            "Infeasible",
            message,
        ))));
    }
    if waits {
        let message = joined(&feasibility.waiting);
        return Ok(Err(Undecided::Waiting(Desired::unknown(
            FEASIBLE,
            "WaitingForHosts",
            message,
        ))));
    }
    let o2ims = target.cache.o2ims();
    let mut writes = Vec::new();
    for cluster in selected {
        let desired = focom::provisioning_request(request, cluster);
        match existing.iter().find(|r| r.name_any() == desired.name_any()) {
            None => writes.push(create(o2ims, desired, &cluster.name).boxed()),
            Some(current) if scale => writes.push(update_workers(o2ims, current, cluster).boxed()),
            Some(_) => {}
        }
    }
    let written: Vec<Option<ProvisioningRequest>> = futures::stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect()
        .await?;
    Ok(Ok(written.into_iter().flatten().collect()))
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

/// `scale`: the worker hosts follow the inventory; the O2IMS operator does the rest (how it
/// reaches them comes from the O-Cloud's own inventory).
async fn update_workers(
    o2ims: &O2ims,
    current: &ProvisioningRequest,
    cluster: &Selected,
) -> Result<Option<ProvisioningRequest>> {
    let workers = json!(cluster.parameters.hosts.workers);
    if current.spec.template_parameters["hosts"]["workers"] == workers {
        return Ok(None);
    }
    let updated = o2ims.set_workers(current, workers).await?;
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
    requests: impl Iterator<Item = ProvisioningRequest>,
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
