//! The life of a ProvisioningRequest: validate -> prepare hosts -> apply the Cluster API
//! objects -> report their status; scale and upgrade by spec change; ordered deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use lcm_core::capi;
use lcm_core::capi::observe::ByoHostView;
use lcm_core::conditions::Desired;
use lcm_core::crd::{
    HostClaim, ProvisionedResourceSet, ProvisioningRequest, ProvisioningState,
    ResourceProvisioningStatus, SecretReference, host_claim_name,
};
use lcm_core::status::provisioning::{Observed, cluster_progress, host_phase};
use lcm_core::template::{self, ClusterParameters, HostPreparation, ParameterErrors};
use operator_kit::apply::Applied;

use crate::config::Config;
use crate::conflicts::Conflict;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::observe::Ambiguous;
use crate::status::{self, HOSTS_PREPARED, RESOURCES_CREATED, Report, VALIDATED};
use crate::{children, cleanup, conflicts, handoff, ledger, observe, preparation};

pub const FINALIZER: &str = "o2ims.provisioning.oran.org/finalizer";

pub type Hosts = BTreeMap<String, (ByoHostView, Value)>;

/// How often a request waiting for a host that a request coming first wants looks again.
const WAIT_FOR_HOST: Duration = Duration::from_secs(2);
const RETRY_REFUSED_APPLY: Duration = Duration::from_secs(15);

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
        // The finalizer goes on before anything exists that would need cleaning up; the
        // request is progressing, not yet validated, until the next reconcile (which the
        // change triggers) judges it.
        set_finalizer(&ctx, &request, true).await?;
        let pending = Report::new(
            ProvisioningState::Progressing,
            "accepted; validating",
            vec![],
        );
        status::write(&ctx, &request, &pending).await?;
        return Ok(Action::await_change());
    }
    provision(&request, &ctx).await
}

async fn set_finalizer(ctx: &Context, request: &ProvisioningRequest, present: bool) -> Result<()> {
    let api: Api<ProvisioningRequest> = Api::all(ctx.client.clone());
    Ok(operator_kit::runtime::set_finalizer(&api, request, FINALIZER, present).await?)
}

/// Which parameters to build from, and how the request's spec was judged.
struct Build {
    params: ClusterParameters,
    applied: Option<ClusterParameters>,
    validated: Desired,
}

/// A build, or the condition that fails the request before anything is created.
type Plan = std::result::Result<Build, Desired>;

async fn provision(request: &ProvisioningRequest, ctx: &Context) -> Result<Action> {
    let live_cluster = observe::request_cluster(&ctx.index, request);
    let applied = live_cluster.as_ref().and_then(capi::applied_parameters);
    let wanted = observe::hosts_of_request(request, applied.as_ref(), ledger::held(ctx, request));
    let (hosts, ambiguous) = observe::byo_hosts(&ctx.index, &wanted);
    let current = match &applied {
        Some(a) => observe::cluster_objects(&ctx.index, &a.namespace(), &a.cluster_name, &hosts),
        None => Observed::default(),
    };
    let spec = &request.spec;
    let validation = template::refuse_request_host_access(
        ctx.config.allow_request_host_access,
        &ctx.config.host_inventory(),
        applied.as_ref(),
        &spec.template_parameters,
        template::validate_request(
            &spec.template_name,
            &spec.template_version,
            &spec.template_parameters,
        ),
    );
    let planned = plan(
        ctx,
        request,
        applied,
        validation,
        &current,
        (&hosts, &ambiguous),
    );
    let (
        Build {
            params,
            applied,
            validated,
        },
        claims,
    ) = match hold_hosts(ctx, request, planned).await? {
        Ok(held) => held,
        Err(waiting) if waiting.status == lcm_core::conditions::UNKNOWN => {
            let message = waiting.message.clone();
            let report = Report::new(ProvisioningState::Progressing, message, vec![waiting]);
            status::write(ctx, request, &report).await?;
            return Ok(Action::requeue(WAIT_FOR_HOST));
        }
        Err(condition) => return finish(ctx, request, Report::failed(condition), None).await,
    };

    if applied.is_none()
        && let Some(conflict) = children::claim_namespace(ctx, request, &params).await?
    {
        ledger::withdraw(ctx, request, &claims).await?;
        let failed = Report::failed(Desired::false_(VALIDATED, "NamespaceConflict", conflict));
        return finish(ctx, request, failed, None).await;
    }
    // From here on Jobs and Cluster API objects name the hosts.
    ledger::mark_in_use(ctx, &claims).await?;
    let mut conditions = vec![validated];
    let prepared = preparation::prepare_hosts(ctx, request, &params, &hosts).await?;
    let hosts_ready = prepared.status == lcm_core::conditions::TRUE;
    let must_wait = params.host_preparation == HostPreparation::Auto && !hosts_ready;
    conditions.push(prepared.clone());
    if prepared.reason == "HostPreparationFailed" {
        return finish(
            ctx,
            request,
            Report::new(ProvisioningState::Failed, prepared.message, conditions),
            None,
        )
        .await;
    }
    if must_wait {
        let report = Report::new(ProvisioningState::Progressing, prepared.message, conditions);
        return finish(ctx, request, report, Some(&params)).await;
    }

    let ensured = children::ensure(ctx, request, &params, applied.as_ref(), &current, &hosts).await;
    let (warning, written) = match ensured.as_ref().err().and_then(Error::refusal) {
        Some(refusal) => {
            conditions.push(Desired::false_(
                RESOURCES_CREATED,
                "ApplyRefused",
                refusal.clone(),
            ));
            let report = Report::new(ProvisioningState::Failed, refusal, conditions);
            status::write(ctx, request, &report).await?;
            // What refused may change (a policy or webhook fixed): try again now and then.
            return Ok(Action::requeue(RETRY_REFUSED_APPLY));
        }
        None => ensured?,
    };
    let created = format!(
        "Cluster API objects of cluster `{}` are in namespace {}",
        params.cluster_name,
        params.namespace()
    );
    conditions.push(match &warning {
        Some(w) => Desired::true_(
            RESOURCES_CREATED,
            "CreatedWithoutCni",
            format!("{created}; {w}"),
        ),
        None => Desired::true_(RESOURCES_CREATED, "Created", created),
    });
    let observed = observe::cluster_objects(
        &ctx.index,
        &params.namespace(),
        &params.cluster_name,
        &hosts,
    );
    let mut report = refusal_shown(cluster_report(&params, &observed, &hosts, conditions));
    if written == Applied::NewGeneration && report.state == ProvisioningState::Fulfilled {
        // A spec changed (a version, hosts, a bootstrap): the index shows the objects as they
        // were before this write, so fulfilled is for the next reconcile to say, once their
        // watches bring what Cluster API makes of them. A write of labels or annotations only
        // (hand-off settings, inventory labels) gives Cluster API nothing to do: the cluster
        // stays fulfilled.
        report.state = ProvisioningState::Progressing;
        report.message =
            "Cluster API objects updated; waiting for Cluster API to report them".into();
    }
    let fulfilled = report.state == ProvisioningState::Fulfilled;
    let handed_off = handoff::keep(ctx, request, &params, fulfilled).await?;
    report.conditions.extend(handed_off);
    let keep: Vec<&String> = params.all_hosts().collect();
    ledger::release(ctx, request, &keep, &hosts).await?;
    finish(ctx, request, report, Some(&params)).await
}

/// Takes the hosts of a planned build in the host ledger. A new request that fails, in its
/// plan or for a host another request holds, withdraws what it took; a change that needs a
/// held host is refused, and the cluster keeps the hosts it runs on.
async fn hold_hosts(
    ctx: &Context,
    request: &ProvisioningRequest,
    planned: Plan,
) -> Result<std::result::Result<(Build, Vec<HostClaim>), Desired>> {
    let build = match planned {
        Ok(build) => build,
        Err(condition) => {
            ledger::withdraw(ctx, request, &[]).await?;
            return Ok(Err(condition));
        }
    };
    let taken = ledger::take(ctx, request, &build.params).await?;
    let Some(conflict) = taken.conflict else {
        return Ok(Ok((build, taken.claims)));
    };
    // What was taken goes back while waiting too: two requests each holding a host the other
    // waits for would wait forever.
    ledger::withdraw(ctx, request, &taken.claims).await?;
    let Some(applied) = build.applied else {
        return Ok(Err(match conflict {
            Conflict::Taken(message) => Desired::false_(VALIDATED, "HostConflict", message),
            Conflict::Wanted(message) => Desired::unknown(VALIDATED, "WaitingForHost", message),
        }));
    };
    let conflict = conflict.into_message();
    let running = ledger::take(ctx, request, &applied).await?;
    if let Some(lost) = running.conflict.map(Conflict::into_message) {
        tracing::warn!(request = %request.name_any(), "a running cluster's host is held by another request: {lost}");
    }
    Ok(Ok((refused(&applied, conflict), running.claims)))
}

/// The build of a change that is not applied: the cluster stays as `applied`.
fn refused(applied: &ClusterParameters, why: String) -> Build {
    Build {
        params: applied.clone(),
        applied: Some(applied.clone()),
        validated: Desired::false_(
            VALIDATED,
            "ChangeRefused",
            format!("the spec change was not applied: {why}"),
        ),
    }
}

/// A refused change fails the request (its spec is not what runs), whatever state the cluster is
/// in: an SMO must not read `fulfilled` for a spec that was not applied. The cluster's own
/// conditions still say how it runs.
fn refusal_shown(mut report: Report) -> Report {
    let refused = report
        .conditions
        .iter()
        .find(|c| c.type_ == VALIDATED && c.reason == "ChangeRefused");
    if let Some(refused) = refused {
        report.message = format!(
            "{}; the cluster keeps running as it was ({}): revert the spec, or change it again once the cluster is fulfilled",
            refused.message, report.message
        );
        report.state = ProvisioningState::Failed;
    }
    report
}

/// Judges the spec against what exists: a new request must be valid and conflict-free; a
/// provisioned cluster accepts only worker and upgrade changes, and only once fulfilled.
fn plan(
    ctx: &Context,
    request: &ProvisioningRequest,
    applied: Option<ClusterParameters>,
    validation: Result<ClusterParameters, ParameterErrors>,
    current: &Observed,
    (hosts, ambiguous): (&Hosts, &Ambiguous),
) -> Plan {
    let views: BTreeMap<String, ByoHostView> = hosts
        .iter()
        .map(|(id, (view, _))| (id.clone(), view.clone()))
        .collect();
    let requests = ctx.index.requests.state();
    let in_ledger = |host: &str| {
        let claim = ObjectRef::<HostClaim>::new(&host_claim_name(host));
        ctx.index.claims.get(&claim).is_some()
    };
    let conflict = |params: &ClusterParameters, checked: &[String]| {
        conflicts::ambiguous(checked, ambiguous)
            .map(Conflict::Taken)
            .or_else(|| conflicts::find(request, params, checked, &requests, &views, &in_ledger))
    };
    let Some(applied) = applied else {
        return match validation {
            Err(errors) => Err(Desired::false_(
                VALIDATED,
                "InvalidParameters",
                errors.to_string(),
            )),
            Ok(params) => {
                let all: Vec<String> = params.all_hosts().cloned().collect();
                match conflict(&params, &all) {
                    Some(Conflict::Taken(message)) => {
                        Err(Desired::false_(VALIDATED, "HostConflict", message))
                    }
                    Some(Conflict::Wanted(message)) => {
                        Err(Desired::unknown(VALIDATED, "WaitingForHost", message))
                    }
                    None => Ok(Build {
                        params,
                        applied: None,
                        validated: valid(),
                    }),
                }
            }
        };
    };
    let refuse = |why: String| Ok(refused(&applied, why));
    let desired = match validation {
        Err(errors) => return refuse(errors.to_string()),
        Ok(desired) => desired,
    };
    match template::classify(&applied, &desired) {
        Err(why) => refuse(why),
        Ok(change) if change.is_empty() => Ok(Build {
            params: desired,
            applied: Some(applied),
            validated: valid(),
        }),
        Ok(change) => {
            let progress = cluster_progress(current);
            if progress.state != ProvisioningState::Fulfilled {
                return refuse(format!(
                    "the cluster is {} ({}); change it once it is fulfilled",
                    progress.state, progress.message
                ));
            }
            if let Some(conflict) = conflict(&desired, &change.added_workers) {
                return refuse(conflict.into_message());
            }
            let mut what = Vec::new();
            if let Some(version) = &change.upgrade_to {
                what.push(format!("upgrade to {version}"));
            }
            if !change.added_workers.is_empty() || !change.removed_workers.is_empty() {
                what.push(format!(
                    "workers +{:?} -{:?}",
                    change.added_workers, change.removed_workers
                ));
            }
            let validated = Desired::true_(VALIDATED, "ChangeAccepted", what.join(", "));
            Ok(Build {
                params: desired,
                applied: Some(applied),
                validated,
            })
        }
    }
}

fn valid() -> Desired {
    Desired::true_(VALIDATED, "Valid", "template and parameters are valid")
}

/// The report of a cluster whose objects exist.
fn cluster_report(
    params: &ClusterParameters,
    observed: &Observed,
    hosts: &Hosts,
    mut conditions: Vec<Desired>,
) -> Report {
    let progress = cluster_progress(observed);
    conditions.extend(progress.conditions);
    let namespace = params.namespace();
    let host_status: Vec<ResourceProvisioningStatus> = params
        .all_hosts()
        .map(|id| {
            let view = hosts.get(id).map(|(v, _)| v);
            ResourceProvisioningStatus {
                resource_name: id.clone(),
                resource_id: view.and_then(|v| v.uid.clone()),
                resource_provisioning_phase: host_phase(view, &namespace, &params.cluster_name),
            }
        })
        .collect();
    let cluster_uid = observed.cluster.as_ref().and_then(|c| c.uid.clone());
    let fulfilled = progress.state == ProvisioningState::Fulfilled;
    let mut report = Report::new(progress.state, progress.message, conditions);
    report.node_cluster = Some(ResourceProvisioningStatus {
        resource_name: params.cluster_name.clone(),
        resource_id: cluster_uid.clone(),
        resource_provisioning_phase: status::node_cluster_phase(progress.state),
    });
    if fulfilled {
        report.resource_set = Some(ProvisionedResourceSet {
            o_cloud_node_cluster_id: cluster_uid,
            o_cloud_infrastructure_resource_ids: host_status
                .iter()
                .filter_map(|h| h.resource_id.clone())
                .collect(),
        });
        let secret = SecretReference {
            name: format!("{}-kubeconfig", params.cluster_name),
            namespace,
        };
        report.message = format!(
            "{}; kubeconfig in Secret {}/{} (key value)",
            report.message, secret.namespace, secret.name
        );
        report.kubeconfig = Some(secret);
    }
    report.hosts = host_status;
    report
}

/// Applies stage timeouts to a progressing report, writes the status, and says when to look again.
async fn finish(
    ctx: &Context,
    request: &ProvisioningRequest,
    mut report: Report,
    params: Option<&ClusterParameters>,
) -> Result<Action> {
    let mut requeue = None;
    if report.state == ProvisioningState::Progressing
        && let Some(params) = params
    {
        match timeouts(&ctx.config, request, &report, params) {
            Ok(next) => requeue = next,
            Err(message) => {
                report.state = ProvisioningState::Failed;
                report.conditions.push(Desired::false_(
                    status::CLUSTER_PROVISIONED,
                    "TimedOut",
                    message.clone(),
                ));
                report.message = message;
            }
        }
    }
    if let Some(node) = report.node_cluster.as_mut() {
        node.resource_provisioning_phase = status::node_cluster_phase(report.state);
    }
    status::write(ctx, request, &report).await?;
    ctx.refresh_state_metrics();
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The earliest stage deadline, or the message of a stage that exceeded it.
fn timeouts(
    config: &Config,
    request: &ProvisioningRequest,
    report: &Report,
    params: &ClusterParameters,
) -> Result<Option<Duration>, String> {
    let now = jiff::Timestamp::now();
    let status = status::next_status(
        request,
        report,
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
    );
    let timeouts = config.stage_timeouts();
    let mut earliest: Option<Duration> = None;
    for (stage, since) in status::running_stage_clocks(&status) {
        if stage == HOSTS_PREPARED && params.host_preparation != HostPreparation::Auto {
            continue;
        }
        let Some((_, seconds)) = timeouts.iter().find(|(timed, _)| *timed == stage) else {
            continue;
        };
        match status::stage_deadline(&status, stage, Config::timeout(*seconds), Some(since), now) {
            Some(Err(message)) => return Err(message),
            Some(Ok(left)) => earliest = Some(earliest.map_or(left, |e| e.min(left))),
            None => {}
        }
    }
    Ok(earliest)
}
