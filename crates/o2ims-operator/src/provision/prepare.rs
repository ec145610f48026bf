//! Prepare hosts: go on once every host of the build has registered; else follow the Job that
//! prepares the others, or create it once BYOH has issued its bootstrap kubeconfig. How hosts
//! are reached comes from the O-Cloud's own host inventory (`host_access`), not from requests;
//! the objects themselves are built in `hostprep`.

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use lcm_core::capi::Kind;
use lcm_core::conditions::{Desired, TRUE};
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use lcm_core::provisioning_request_selector;
use lcm_core::template::{ClusterParameters, HostPreparation};

use super::host_access::{access, host_inventory, not_in_inventory, unpinned};
use super::step::{Step, Stop, Then};
use super::validate::Build;
use crate::children;
use crate::config::HostPreparationSettings;
use crate::context::Context;
use crate::error::Result;
use crate::hostprep::{self, JobOutcome};
use crate::report::{HOSTS_PREPARED, Report};
use crate::snapshot::{Hosts, Snapshot};

/// Prepares the hosts of `build`; goes on with the HostsPrepared condition once they are
/// ready, or when the operator does not prepare them (their machines wait for them).
pub async fn prepare_hosts(
    ctx: &Context,
    request: &ProvisioningRequest,
    build: &Build,
    world: &Snapshot,
) -> Step<Desired> {
    let prepared = match still_to_prepare(&build.params, &world.hosts) {
        Err(condition) => condition,
        Ok(missing) => preparation(ctx, request, &build.params, world, &missing).await?,
    };
    go_on(build, prepared)
}

/// Whether the pass goes on after host preparation said `prepared`: not when it failed, nor
/// while the operator still prepares the hosts.
fn go_on(build: &Build, prepared: Desired) -> Step<Desired> {
    let conditions = vec![build.validated.clone(), prepared.clone()];
    if prepared.reason == "HostPreparationFailed" {
        let report = Report::new(ProvisioningState::Failed, prepared.message, conditions);
        return Stop::exit(report, Then::Wait);
    }
    let host_preparation = build.params.host_preparation;
    if host_preparation == HostPreparation::Auto && prepared.status != TRUE {
        let report = Report::new(ProvisioningState::Progressing, prepared.message, conditions);
        return Stop::exit(report, Then::TimeStages(host_preparation));
    }
    Ok(prepared)
}

/// The hosts of `params` that have not registered and that the operator prepares, or the
/// HostsPrepared condition when there are none to prepare.
fn still_to_prepare(params: &ClusterParameters, hosts: &Hosts) -> Result<Vec<String>, Desired> {
    let missing: Vec<String> = params
        .all_hosts()
        .filter(|h| !hosts.contains_key(*h))
        .cloned()
        .collect();
    if missing.is_empty() {
        let count = params.all_hosts().count();
        return Err(Desired::true_(
            HOSTS_PREPARED,
            "HostsRegistered",
            format!("all {count} hosts have registered ByoHosts"),
        ));
    }
    if params.host_preparation == HostPreparation::Skip {
        let message = format!(
            "no ByoHost is registered for {} (hostPreparation: skip); their machines wait for them",
            missing.join(", ")
        );
        return Err(Desired::false_(HOSTS_PREPARED, "WaitingForHosts", message));
    }
    Ok(missing)
}

/// HostsPrepared for `missing` hosts: the state of the Job preparing them, started if none is.
async fn preparation(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    world: &Snapshot,
    missing: &[String],
) -> Result<Desired> {
    let jobs = jobs(ctx, &request.name_any()).await?;
    let (job_name, outcome) = match covering(&jobs, missing) {
        Some(job) => (
            job["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Some(hostprep::outcome(job)),
        ),
        None => match start_job(ctx, request, params, world, missing).await? {
            Ok(name) => (name, None),
            Err(not_started) => return Ok(not_started),
        },
    };
    let job = format!("{}/{job_name}", ctx.config.namespace());
    Ok(job_condition(&job, &missing.join(", "), outcome))
}

/// The newest Job already preparing (or having prepared) all of `missing`: followed, not
/// repeated, as hosts register one by one and the missing set shrinks while its hosts come up.
fn covering<'a>(jobs: &'a [Value], missing: &[String]) -> Option<&'a Value> {
    jobs.iter()
        .filter(|job| {
            missing
                .iter()
                .all(|h| hostprep::prepared_hosts(job).contains(&h.as_str()))
        })
        .max_by_key(|job| {
            job["metadata"]["creationTimestamp"]
                .as_str()
                .map(String::from)
        })
}

/// HostsPrepared while the Job `job` prepares `list`, by how it ended (`None`: just started).
fn job_condition(job: &str, list: &str, outcome: Option<JobOutcome>) -> Desired {
    match outcome {
        Some(JobOutcome::Failed(reason)) => Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!("Job {job} preparing {list} failed: {reason}; delete the Job to retry"),
        ),
        Some(JobOutcome::Succeeded) => Desired::false_(
            HOSTS_PREPARED,
            "WaitingForRegistration",
            format!("Job {job} prepared {list}; waiting for their ByoHosts to register"),
        ),
        _ => Desired::false_(
            HOSTS_PREPARED,
            "Preparing",
            format!("Job {job} is preparing {list}"),
        ),
    }
}

/// Starts the Job preparing `missing`; returns its name, or the HostsPrepared condition saying
/// why it cannot start yet.
async fn start_job(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    world: &Snapshot,
    missing: &[String],
) -> Result<Result<String, Desired>> {
    let config = &ctx.config;
    let inventory = match host_inventory(config, world.host_inventory()) {
        Ok(inventory) => inventory,
        Err(unusable) => return Ok(Err(unusable)),
    };
    let allow = config.allow_request_host_access;
    let access = match access(inventory.as_ref(), params, allow, missing) {
        Ok(access) => access,
        Err(unknown) => return Ok(Err(not_in_inventory(config, &unknown, inventory.is_some()))),
    };
    if let Some(unpinned) = unpinned(config, &access) {
        return Ok(Err(unpinned));
    }
    let settings = match config.host_preparation() {
        Ok(settings) => settings,
        Err(lacking) => {
            let message = format!("{} need preparation, but {lacking}", missing.join(", "));
            let failed = Desired::false_(HOSTS_PREPARED, "HostPreparationFailed", message);
            return Ok(Err(failed));
        }
    };
    let name = hostprep::name(params, missing);
    let kubeconfig = match bootstrap_kubeconfig(ctx, request, &settings, &name, missing).await? {
        Ok(kubeconfig) => kubeconfig,
        Err(waiting) => return Ok(Err(waiting)),
    };
    let owner = children::owner_reference(request, true);
    let preparation = hostprep::build(
        config,
        &request.name_any(),
        &owner,
        params,
        &access,
        &settings,
        &kubeconfig,
    );
    children::apply_secret(ctx, &preparation.secret).await?;
    children::apply_owned(ctx, request, preparation.objects, false).await?;
    Ok(Ok(name))
}

/// The bootstrap kubeconfig BYOH issued for the host-preparation Job `name` (asked for first),
/// or the HostsPrepared condition saying what preparation waits for.
async fn bootstrap_kubeconfig(
    ctx: &Context,
    request: &ProvisioningRequest,
    settings: &HostPreparationSettings<'_>,
    name: &str,
    hosts: &[String],
) -> Result<std::result::Result<String, Desired>> {
    let list = hosts.join(", ");
    let not_ready =
        |reason: &str, message: String| Ok(Err(Desired::false_(HOSTS_PREPARED, reason, message)));
    let namespace = ctx.config.namespace();
    let what = format!("BootstrapKubeconfig {namespace}/{name}");
    let issuing = || {
        not_ready(
            "WaitingForBootstrapKubeconfig",
            format!("waiting for BYOH to issue {what} for {list}"),
        )
    };
    match bootstrap_kubeconfigs(ctx).get_opt(name).await?.map(json) {
        Some(bootstrap) if hostprep::is_stale(&bootstrap, jiff::Timestamp::now()) => {
            delete_bootstrap_kubeconfig(ctx, name).await?;
            not_ready(
                "WaitingForBootstrapKubeconfig",
                format!("{what} is too old for a new Job; asking BYOH for a new one for {list}"),
            )
        }
        Some(bootstrap) => match hostprep::issued(&bootstrap) {
            Some(kubeconfig) => Ok(Ok(kubeconfig.to_string())),
            None => issuing(),
        },
        None => {
            let ca = match std::fs::read(&ctx.config.bootstrap_ca_file) {
                Ok(ca) => ca,
                Err(e) => {
                    return not_ready(
                        "HostPreparationFailed",
                        format!(
                            "cannot read --bootstrap-ca-file {}: {e}",
                            ctx.config.bootstrap_ca_file.display()
                        ),
                    );
                }
            };
            let owner = children::owner_reference(request, true);
            let asked = hostprep::bootstrap_request(
                &ctx.config,
                &request.name_any(),
                &owner,
                name,
                hosts,
                settings.apiserver,
                &ca,
            );
            children::apply_owned(ctx, request, vec![asked], false).await?;
            issuing()
        }
    }
}

/// The BootstrapKubeconfigs of host-preparation Jobs, in the operator's namespace.
fn bootstrap_kubeconfigs(ctx: &Context) -> Api<DynamicObject> {
    let resource = Kind::BootstrapKubeconfig.api_resource();
    Api::namespaced_with(ctx.client.clone(), ctx.config.namespace(), &resource)
}

async fn delete_bootstrap_kubeconfig(ctx: &Context, name: &str) -> Result<()> {
    match bootstrap_kubeconfigs(ctx)
        .delete(name, &Default::default())
        .await
    {
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// The host-preparation Jobs of the request `request_name`, in the operator's namespace.
async fn jobs(ctx: &Context, request_name: &str) -> Result<Vec<Value>> {
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ctx.config.namespace());
    let selector = ListParams::default().labels(&provisioning_request_selector(request_name));
    Ok(api
        .list(&selector)
        .await?
        .items
        .into_iter()
        .map(json)
        .collect())
}

fn json(object: impl serde::Serialize) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}
