//! MachineDeployment, as its controller and its MachineSets take it (the machines belong to the
//! MachineDeployment directly: nothing the operators read needs the MachineSet in between):
//! `spec.replicas` worker machines from its template, scale-in taking machines annotated
//! `cluster.x-k8s.io/delete-machine` first, then the newest, rollouts per `strategy`, and the
//! status.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Map, Value, json};

use crate::conditions::{self, Condition, Severity};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, deleting, name, namespace, to_json};
use crate::replicas::{self, NewMachine};
use crate::rollout::{self, Policy, ScaleIn, Step};
use crate::runner;

const DEPLOYMENT_NAME_LABEL: &str = "cluster.x-k8s.io/deployment-name";
const CLUSTER_NOT_FOUND_RETRY: Duration = Duration::from_secs(1);

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let controller = ctx
        .stores
        .controller(Kind::MachineDeployment)
        .owns_stream_with(
            ctx.stores.changes(Kind::Machine),
            Kind::Machine.api_resource(),
        )
        // Infrastructure machines it made, until their Machine owns them (or as orphans).
        .owns_stream_with(
            ctx.stores.changes(Kind::ByoMachine),
            Kind::ByoMachine.api_resource(),
        );
    runner::drive(
        "machine-deployment",
        controller.run(reconcile, runner::retry, ctx),
    )
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let deployment = to_json(&object);
    if deleting(&deployment) {
        return Ok(Action::await_change());
    }
    let cluster_name = deployment["spec"]["clusterName"]
        .as_str()
        .unwrap_or_default();
    let Some(cluster) = ctx
        .stores
        .get(Kind::Cluster, namespace(&deployment), cluster_name)
    else {
        // As Cluster API's MachineDeployment controller: a Cluster not found (yet: the objects
        // may arrive in any order) is an error, retried with back-off.
        return Ok(Action::requeue(CLUSTER_NOT_FOUND_RETRY));
    };
    let machines = replicas::owned_machines(&ctx, &deployment, cluster_name);
    replicas::delete_orphans(&ctx, &deployment, &machines).await?;
    if !deleting(&cluster) {
        scale(&ctx, &deployment, cluster_name, &machines).await?;
    }
    write_status(&ctx, &deployment, cluster_name, &machines).await?;
    Ok(Action::await_change())
}

fn desired_replicas(deployment: &Value) -> usize {
    deployment["spec"]["replicas"]
        .as_u64()
        .and_then(|r| usize::try_from(r).ok())
        .unwrap_or(1)
}

/// What rolls the workers: the machine template's version, bootstrap, infrastructure
/// reference and failure domain, as `MachineTemplateUpToDate` in
/// internal/controllers/machinedeployment/mdutil/util.go (labels, annotations and the drain
/// and deletion timeouts change in place).
fn current_template(deployment: &Value) -> String {
    let spec = &deployment["spec"]["template"]["spec"];
    replicas::made_from(&json!({
        "version": spec["version"],
        "bootstrap": spec["bootstrap"],
        "infrastructureRef": spec["infrastructureRef"],
        "failureDomain": spec["failureDomain"],
    }))
}

async fn scale(ctx: &Context, deployment: &Value, cluster: &str, machines: &[Value]) -> Result<()> {
    let desired = desired_replicas(deployment);
    let policy = Policy {
        max_surge: rollout::max_surge(
            &deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            desired,
        ),
        one_at_a_time: false,
        scale_in: ScaleIn::NewestFirst,
    };
    let template = &deployment["spec"]["template"];
    let current = current_template(deployment);
    match rollout::plan(desired, &current, &replicas::replicas(machines), &policy) {
        Step::Create(count) => {
            let bootstrap = bootstrap_config(ctx, deployment)?;
            for _ in 0..count {
                let mut labels: Map<String, Value> = template["metadata"]["labels"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                labels.insert(CAPI_CLUSTER_NAME_LABEL.into(), json!(cluster));
                labels.insert(DEPLOYMENT_NAME_LABEL.into(), json!(name(deployment)));
                let new = NewMachine {
                    owner: deployment,
                    labels,
                    spec: template["spec"].clone(),
                    template: &template["spec"]["infrastructureRef"],
                    bootstrap: bootstrap.clone(),
                    made_from: current.clone(),
                };
                replicas::create(ctx, new).await?;
            }
        }
        Step::Delete(names) => replicas::delete(ctx, namespace(deployment), &names).await?,
        Step::Wait | Step::Steady => {}
    }
    Ok(())
}

/// The spec a new machine's KubeadmConfig is cloned from: the template's (as the MachineSet
/// controller clones `bootstrap.configRef`, internal/controllers/machineset/machineset_controller.go).
fn bootstrap_config(ctx: &Context, deployment: &Value) -> Result<Value> {
    let reference = &deployment["spec"]["template"]["spec"]["bootstrap"]["configRef"];
    let template_name = reference["name"].as_str().unwrap_or_default();
    let template = ctx
        .stores
        .get(
            Kind::KubeadmConfigTemplate,
            namespace(deployment),
            template_name,
        )
        .ok_or_else(|| {
            Error::Invalid(format!(
                "failed to clone bootstrap config: KubeadmConfigTemplate {template_name} not found"
            ))
        })?;
    Ok(template["spec"]["template"]["spec"].clone())
}

async fn write_status(
    ctx: &Context,
    deployment: &Value,
    cluster: &str,
    machines: &[Value],
) -> Result<()> {
    let desired = desired_replicas(deployment);
    let counts = replicas::count(machines, &current_template(deployment));
    // Machines become available as soon as they are Ready (no minReadySeconds).
    let available = counts.ready;
    let failed = machines
        .iter()
        .any(|m| !m["status"]["failureReason"].is_null());
    let phase = if failed {
        "Failed"
    } else if desired < available {
        "ScalingDown"
    } else if desired > counts.ready {
        "ScalingUp"
    } else {
        "Running"
    };
    let ready = if counts.ready == desired && counts.replicas == desired && counts.outdated == 0 {
        Condition::true_("Ready")
    } else {
        Condition::false_("Ready", "WaitingForAvailableMachines", Severity::Warning)
    };
    let max_unavailable = rollout::max_unavailable(
        &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
    );
    let available_condition = if available + max_unavailable >= desired {
        Condition::true_("Available")
    } else {
        Condition::false_(
            "Available",
            "WaitingForAvailableMachines",
            Severity::Warning,
        )
    };
    let status = json!({
        "selector": format!("{CAPI_CLUSTER_NAME_LABEL}={cluster},{DEPLOYMENT_NAME_LABEL}={}", name(deployment)),
        "replicas": counts.replicas,
        "updatedReplicas": counts.updated,
        "readyReplicas": counts.ready,
        "availableReplicas": available,
        "unavailableReplicas": desired.saturating_sub(available),
        "phase": phase,
        "observedGeneration": deployment["metadata"]["generation"],
        "conditions": conditions::render(&[ready, available_condition], &deployment["status"]["conditions"]),
    });
    let api = ctx.api(Kind::MachineDeployment, namespace(deployment));
    objects::apply_status(&api, Kind::MachineDeployment, deployment, status).await
}
