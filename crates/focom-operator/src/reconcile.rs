//! The life of a FocomProvisioningRequest: reach the O-Cloud -> read the inventory -> select
//! and validate the clusters -> check feasibility -> create, scale or delete their
//! ProvisioningRequests -> aggregate their status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use lcm_core::conditions::Desired;
use lcm_core::crd::{
    FocomProvisioningRequest, HostClaim, Operation, ProvisioningRequest, TemplateInfo,
};
use lcm_core::focom::{self, Claim, Selected};
use lcm_core::inventory::Inventory;
use lcm_core::{FOCOM_REQUEST_LABEL, template};

use crate::config::INVENTORY_KEY;
use crate::context::Context;
use crate::error::Result;
use crate::ocloud::{self, OCLOUD_NOT_ALLOWED, OCLOUD_REACHABLE, Target};
use crate::status::{self, FEASIBLE, INVENTORY_VALID, Outcome, VALIDATED};

pub const FINALIZER: &str = "focom.nephio.org/finalizer";

pub async fn reconcile(
    request: Arc<FocomProvisioningRequest>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let has_finalizer = request.finalizers().iter().any(|f| f == FINALIZER);
    if request.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        return match delete_all(&request, &ctx).await? {
            Some(waiting) => Ok(waiting),
            None => {
                set_finalizer(&ctx, &request, false).await?;
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

fn owner_selector(request: &FocomProvisioningRequest) -> ListParams {
    let owner = focom::owner_label(
        &request.namespace().unwrap_or_default(),
        &request.name_any(),
    );
    ListParams::default().labels(&format!("{FOCOM_REQUEST_LABEL}={owner}"))
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
        true => match load_inventory(ctx).await? {
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

    let result = match request.spec.operation {
        Operation::Create => create_missing(request, &target, &selected, false).await?,
        Operation::Scale => create_missing(request, &target, &selected, true).await?,
        Operation::Delete => delete_selected(request, &target, &selected)
            .await
            .map(|()| None)?,
    };
    if let Some(infeasible) = result {
        return status::write(ctx, request, outcome.infeasible(infeasible)).await;
    }
    outcome.owned = list_owned(&target, request).await?;
    status::write(ctx, request, outcome).await
}

fn needs_inventory(request: &FocomProvisioningRequest) -> bool {
    request.spec.template_parameters.is_none()
}

async fn list_owned(
    target: &Target,
    request: &FocomProvisioningRequest,
) -> kube::Result<Vec<ProvisioningRequest>> {
    // The label selects (it may be a hash of a long name); the owner is checked in full.
    let owner = Some((request.namespace().unwrap_or_default(), request.name_any()));
    Ok(Api::<ProvisioningRequest>::all(target.client.clone())
        .list(&owner_selector(request))
        .await?
        .items
        .into_iter()
        .filter(|r| focom::owner_of(r) == owner)
        .collect())
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
    Ok(match list_owned(&target, request).await {
        Ok(owned) => Ok((target, owned)),
        Err(e) => Err(Desired::false_(
            OCLOUD_REACHABLE,
            "Unreachable",
            format!("{}: {e}", target.description),
        )),
    })
}

/// The inventory from its ConfigMap, or the InventoryValid condition saying what is wrong.
async fn load_inventory(ctx: &Context) -> Result<std::result::Result<Inventory, Desired>> {
    let (namespace, name) = (
        ctx.config.inventory_namespace(),
        &ctx.config.inventory_configmap,
    );
    let source = format!("ConfigMap {namespace}/{name}");
    let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?;
    let Some(text) = config_map.and_then(|c| c.data?.remove(INVENTORY_KEY)) else {
        let message = format!("{source} with key {INVENTORY_KEY} does not exist");
        return Ok(Err(Desired::false_(
            INVENTORY_VALID,
            "InventoryMissing",
            message,
        )));
    };
    Ok(
        Inventory::parse(&format!("{source} key {INVENTORY_KEY}"), &text)
            .map_err(|e| Desired::false_(INVENTORY_VALID, "InvalidInventory", e.to_string())),
    )
}

/// The selected clusters, each checked against the template's JSON Schema.
async fn select(
    ctx: &Context,
    request: &FocomProvisioningRequest,
    inventory: Option<&Inventory>,
) -> Result<std::result::Result<Vec<Selected>, Desired>> {
    let spec = &request.spec;
    let schema = match template_schema(ctx, request).await? {
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
    // The request's own parameters are checked as sent; inventory clusters as derived.
    let mut problems = Vec::new();
    if let Some(parameters) = &spec.template_parameters
        && let Err(errors) = template::schema::check(&schema, parameters, "spec.templateParameters")
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
                    if let Err(errors) = template::schema::check(
                        &schema,
                        &value,
                        &format!("cluster `{}`", cluster.name),
                    ) {
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
async fn template_schema(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<Option<String>> {
    let spec = &request.spec;
    let nephio_name = format!("{}-{}", spec.template_name, spec.template_version);
    let infos =
        Api::<TemplateInfo>::namespaced(ctx.client.clone(), ctx.config.template_namespace())
            .list(&ListParams::default())
            .await?;
    let matching = infos.items.into_iter().find(|info| {
        (info.spec.template_name == spec.template_name
            && info.spec.template_version == spec.template_version)
            || info.name_any() == nephio_name
    });
    if let Some(info) = matching {
        return Ok(Some(info.spec.template_parameter_schema));
    }
    let builtin =
        spec.template_name == template::NAME && spec.template_version == template::VERSION;
    Ok(builtin.then(|| template::parameter_schema().to_string()))
}

/// Creates the ProvisioningRequests that do not exist yet (and, with `scale`, updates the
/// workers of those that do), after checking the whole request is feasible. Returns the
/// infeasibility, if any; then nothing was written.
async fn create_missing(
    request: &FocomProvisioningRequest,
    target: &Target,
    selected: &[Selected],
    scale: bool,
) -> Result<Option<Desired>> {
    let api = Api::<ProvisioningRequest>::all(target.client.clone());
    let existing = api.list(&ListParams::default()).await?.items;
    // The O-Cloud's host ledger says who holds a host; two FOCOM passes deciding at once may
    // both find a host free, and then the O-Cloud gives it to one request and fails the other.
    let held = Api::<HostClaim>::all(target.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let own: Vec<Claim> = list_owned(target, request)
        .await?
        .iter()
        .filter_map(Claim::of)
        .collect();
    let claims: Vec<Claim> = existing.iter().filter_map(Claim::of).collect();
    let problems = focom::feasibility(selected, &own, &claims, &held);
    if !problems.is_empty() {
        let message = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(Some(Desired::false_(FEASIBLE, "Infeasible", message)));
    }
    for cluster in selected {
        let desired = focom::provisioning_request(request, cluster);
        let name = desired.name_any();
        match existing.iter().find(|r| r.name_any() == name) {
            None => {
                if let Err(e) = api.create(&PostParams::default(), &desired).await
                    && !matches!(&e, kube::Error::Api(s) if s.is_already_exists())
                {
                    return Err(e.into());
                }
                tracing::info!(provisioning_request = %name, cluster = %cluster.name, "created");
            }
            Some(current) if scale => update_workers(&api, current, cluster).await?,
            Some(_) => {}
        }
    }
    Ok(None)
}

/// `scale`: the worker hosts follow the inventory; the O2IMS operator does the rest (how it
/// reaches them comes from the O-Cloud's own inventory).
async fn update_workers(
    api: &Api<ProvisioningRequest>,
    current: &ProvisioningRequest,
    cluster: &Selected,
) -> Result<()> {
    let workers = json!(cluster.parameters.hosts.workers);
    if current.spec.template_parameters["hosts"]["workers"] == workers {
        return Ok(());
    }
    let patch = json!({"spec": {"templateParameters": {"hosts": {"workers": workers}}}});
    api.patch(
        &current.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    tracing::info!(provisioning_request = %current.name_any(), cluster = %cluster.name, "workers updated");
    Ok(())
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
        &target.client,
        list_owned(target, request)
            .await?
            .into_iter()
            .filter(|r| names.contains(&r.name_any())),
    )
    .await
}

async fn delete_requests(
    client: &Client,
    requests: impl Iterator<Item = ProvisioningRequest>,
) -> Result<()> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    for pr in requests.filter(|r| r.meta().deletion_timestamp.is_none()) {
        match api
            .delete(&pr.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => tracing::info!(provisioning_request = %pr.name_any(), "deleting"),
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
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
    if owned.is_empty() {
        return Ok(None);
    }
    delete_requests(&target.client, owned.clone().into_iter()).await?;
    let mut outcome = Outcome::new(Operation::Delete);
    outcome.selected = owned
        .iter()
        .filter_map(|r| r.labels().get(lcm_core::CLUSTER_NAME_LABEL).cloned())
        .collect();
    outcome.owned = owned;
    Ok(Some(status::write(ctx, request, outcome).await?))
}

/// How long to wait before retrying an unreachable O-Cloud: grows with how long it has been
/// unreachable, from 5 s to 5 min.
pub fn retry_after(unreachable_for: Duration) -> Duration {
    (unreachable_for / 2).clamp(Duration::from_secs(5), Duration::from_secs(300))
}
