//! The machines of a KubeadmControlPlane or MachineDeployment (their owner): finding them,
//! creating one (a ByoMachine cloned from the owner's ByoMachineTemplate, and its Machine),
//! deleting some, and counting them for the owner's status.

use kube::api::DynamicObject;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, DELETE_MACHINE_ANNOTATION, Kind};
use serde_json::{Map, Value, json};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, deleting, name, namespace};
use crate::rollout::Replica;
use crate::stores::labelled;

/// The Machines `owner` controls, in its namespace.
pub fn owned_machines(ctx: &Context, owner: &Value, cluster: &str) -> Vec<Value> {
    let of_cluster = labelled(CAPI_CLUSTER_NAME_LABEL, cluster);
    ctx.stores
        .list(Kind::Machine, Some(namespace(owner)), &of_cluster)
        .into_iter()
        .filter(|m| objects::owned_by(m, owner))
        .collect()
}

/// A Machine counts as Ready once its Node is (Running and `Ready=True`): a Node without a CNI
/// is NotReady.
pub fn is_ready(machine: &Value) -> bool {
    let ready = crate::conditions::is_true(machine, "Ready");
    machine["status"]["phase"] == "Running" && ready && !deleting(machine)
}

/// Whether the machine's node has joined (`kubeadm init` or `join` done), Ready or not.
pub fn has_node(machine: &Value) -> bool {
    !machine["status"]["nodeRef"].is_null()
}

pub fn version(machine: &Value) -> &str {
    machine["spec"]["version"].as_str().unwrap_or_default()
}

/// Annotation on a Machine: what its owner's rollout compares, as it was when the Machine was
/// made (the simulator's stand-in for KCP's comparison of the machine's KubeadmConfig and
/// cloned-from template, and for the MachineSet a MachineDeployment's template makes).
const MADE_FROM_ANNOTATION: &str = "byoh-sim.oran-lcm/made-from";

fn made_from_of(machine: &Value) -> &str {
    machine["metadata"]["annotations"][MADE_FROM_ANNOTATION]
        .as_str()
        .unwrap_or_default()
}

/// The fields of an owner whose change rolls its machines, as one string.
pub fn made_from(fields: &Value) -> String {
    fields.to_string()
}

pub fn replicas(machines: &[Value]) -> Vec<Replica> {
    machines
        .iter()
        .map(|m| Replica {
            name: name(m).into(),
            template: made_from_of(m).into(),
            created: m["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .into(),
            ready: is_ready(m),
            deleting: deleting(m),
            marked: !m["metadata"]["annotations"][DELETE_MACHINE_ANNOTATION].is_null(),
        })
        .collect()
}

/// Replica counts for an owner's status.
pub struct Counts {
    pub replicas: usize,
    pub ready: usize,
    /// Made from the current template (and staying).
    pub updated: usize,
    /// Made from another (and staying).
    pub outdated: usize,
}

pub fn count(machines: &[Value], template: &str) -> Counts {
    let staying = || machines.iter().filter(|m| !deleting(m));
    Counts {
        replicas: machines.len(),
        ready: machines.iter().filter(|m| is_ready(m)).count(),
        updated: staying().filter(|m| made_from_of(m) == template).count(),
        outdated: staying().filter(|m| made_from_of(m) != template).count(),
    }
}

/// A machine to create for `owner`.
pub struct NewMachine<'a> {
    pub owner: &'a Value,
    pub labels: Map<String, Value>,
    /// The Machine's spec but for its bootstrap data and infrastructure reference.
    pub spec: Value,
    /// The owner's reference to its ByoMachineTemplate.
    pub template: &'a Value,
    /// The spec of the machine's KubeadmConfig.
    pub bootstrap: Value,
    /// What the owner's rollout compares ([`made_from`]).
    pub made_from: String,
}

/// Creates a ByoMachine cloned from the template and a KubeadmConfig, both owned by `owner`,
/// then their Machine of the same name (as Cluster API's MachineSet controller does:
/// infrastructure and bootstrap config first), which then owns them; if the Machine cannot be
/// created they are deleted.
pub async fn create(ctx: &Context, new: NewMachine<'_>) -> Result<String> {
    let ns = namespace(new.owner);
    let template_name = new.template["name"].as_str().unwrap_or_default();
    let template_ns = new.template["namespace"].as_str().unwrap_or(ns);
    let template = ctx
        .stores
        .get(Kind::ByoMachineTemplate, template_ns, template_name)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no ByoMachineTemplate {template_ns}/{template_name}"
            ))
        })?;
    let mut labels = new.labels;
    if let Some(template_labels) = template["spec"]["template"]["metadata"]["labels"].as_object() {
        labels.extend(template_labels.clone());
    }
    let byo_machine = objects::create(
        &ctx.api(Kind::ByoMachine, ns),
        json!({
            "apiVersion": Kind::ByoMachine.api_version(), "kind": Kind::ByoMachine.name(),
            "metadata": {
                "generateName": format!("{}-", name(new.owner)),
                "namespace": ns,
                "labels": labels,
                "ownerReferences": [objects::controller_reference(new.owner)],
                "annotations": {
                    "cluster.x-k8s.io/cloned-from-name": template_name,
                    "cluster.x-k8s.io/cloned-from-groupkind": "ByoMachineTemplate.infrastructure.cluster.x-k8s.io",
                },
            },
            "spec": template["spec"]["template"]["spec"],
        }),
    )
    .await?;
    let machine_name = name(&byo_machine).to_string();
    objects::create(
        &ctx.api(Kind::KubeadmConfig, ns),
        json!({
            "apiVersion": Kind::KubeadmConfig.api_version(), "kind": Kind::KubeadmConfig.name(),
            "metadata": {
                "name": machine_name, "namespace": ns, "labels": labels,
                "ownerReferences": [objects::controller_reference(new.owner)],
            },
            "spec": new.bootstrap,
        }),
    )
    .await?;
    let mut spec = new.spec;
    spec["bootstrap"] = json!({
        "configRef": {
            "apiVersion": Kind::KubeadmConfig.api_version(), "kind": Kind::KubeadmConfig.name(),
            "name": machine_name, "namespace": ns,
        },
        "dataSecretName": machine_name,
    });
    spec["infrastructureRef"] = json!({
        "apiVersion": Kind::ByoMachine.api_version(), "kind": Kind::ByoMachine.name(),
        "name": machine_name, "namespace": ns,
    });
    let created = objects::create(
        &ctx.api(Kind::Machine, ns),
        json!({
            "apiVersion": Kind::Machine.api_version(), "kind": Kind::Machine.name(),
            "metadata": {
                "name": machine_name, "namespace": ns, "labels": labels,
                "annotations": {MADE_FROM_ANNOTATION: new.made_from},
                "ownerReferences": [objects::controller_reference(new.owner)],
            },
            "spec": spec,
        }),
    )
    .await;
    let machine = match created {
        Ok(machine) => machine,
        Err(error) => {
            // As the MachineSet controller: what was made for the Machine goes with it.
            for kind in [Kind::ByoMachine, Kind::KubeadmConfig] {
                objects::delete(&ctx.api(kind, ns), &machine_name).await?;
            }
            return Err(error);
        }
    };
    let owned = json!({"metadata": {"ownerReferences": [objects::controller_reference(&machine)]}});
    for kind in [Kind::ByoMachine, Kind::KubeadmConfig] {
        objects::merge(&ctx.api(kind, ns), &machine_name, owned.clone()).await?;
    }
    tracing::info!(owner = name(new.owner), machine = %machine_name, version = version(&machine), "machine created");
    // The owner's next reconcile must count it, not create another.
    ctx.stores
        .wait_for_own_write(Kind::Machine, ns, &machine_name, |cached| cached.is_some())
        .await?;
    Ok(machine_name)
}

/// Deletes the ByoMachines and KubeadmConfigs `owner` made for a Machine that does not exist
/// (the simulator stopped between the creates), as the MachineSet controller's
/// `cleanupOrphanedBootstrapConfigsInfraMachines` does.
pub async fn delete_orphans(ctx: &Context, owner: &Value, machines: &[Value]) -> Result<()> {
    let ns = namespace(owner);
    let everything = kube::core::Selector::default();
    for kind in [Kind::ByoMachine, Kind::KubeadmConfig] {
        for orphan in ctx
            .stores
            .list(kind, Some(ns), &everything)
            .iter()
            .filter(|o| objects::owned_by(o, owner))
            .filter(|o| !machines.iter().any(|m| name(m) == name(o)))
        {
            tracing::info!(
                kind = kind.name(),
                name = name(orphan),
                "deleting an orphan"
            );
            objects::delete(&ctx.api(kind, ns), name(orphan)).await?;
        }
    }
    Ok(())
}

pub async fn delete(ctx: &Context, namespace: &str, names: &[String]) -> Result<()> {
    let api = ctx.api(Kind::Machine, namespace);
    for machine in names {
        tracing::info!(%machine, "deleting machine");
        objects::delete(&api, machine).await?;
        // The owner's next reconcile must see it going, not delete another.
        let going = |cached: Option<&DynamicObject>| {
            cached.is_none_or(|m| m.metadata.deletion_timestamp.is_some())
        };
        ctx.stores
            .wait_for_own_write(Kind::Machine, namespace, machine, going)
            .await?;
    }
    Ok(())
}
