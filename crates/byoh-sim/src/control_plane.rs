//! KubeadmControlPlane, as its controller takes it: the `<cluster>-kubeconfig` Secret once the
//! cluster has an endpoint; once the cluster's infrastructure is ready, `spec.replicas`
//! control-plane machines, joined one at a time and rolled to `spec.version` per
//! `rolloutStrategy`; and the status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, Kind};
use lcm_core::template::KubernetesVersion;
use serde_json::{Map, Value, json};

use crate::conditions::{self, Condition, Severity};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, deleting, name, namespace, to_json};
use crate::replicas::{self, NewMachine};
use crate::rollout::{self, Policy, ScaleIn, Step};
use crate::runner;

const CONTROL_PLANE_NAME_LABEL: &str = "cluster.x-k8s.io/control-plane-name";

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let resource = Kind::KubeadmControlPlane.api_resource();
    let controller = ctx
        .stores
        .controller(Kind::KubeadmControlPlane)
        .owns_stream_with(
            ctx.stores.changes(Kind::Machine),
            Kind::Machine.api_resource(),
        )
        // Infrastructure machines it made, until their Machine owns them (or as orphans).
        .owns_stream_with(
            ctx.stores.changes(Kind::ByoMachine),
            Kind::ByoMachine.api_resource(),
        )
        // The Cluster's infrastructure becoming ready, its endpoint, its deletion.
        .watches_stream_with(
            ctx.stores.changes(Kind::Cluster),
            move |cluster| {
                let reference = &cluster.data["spec"]["controlPlaneRef"];
                let ns = cluster.metadata.namespace.clone().unwrap_or_default();
                (reference["kind"] == Kind::KubeadmControlPlane.name())
                    .then(|| reference["name"].as_str())
                    .flatten()
                    .map(|kcp| ObjectRef::new_with(kcp, resource.clone()).within(&ns))
            },
            Kind::Cluster.api_resource(),
        );
    runner::drive(
        "control-plane",
        controller.run(reconcile, runner::retry, ctx),
    )
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let kcp = to_json(&object);
    // Without a finalizer here, its machines go with it (owner references) or with the cluster.
    if deleting(&kcp) {
        return Ok(Action::await_change());
    }
    // Its Cluster: the one that adopted it, or the one its label names.
    let Some(cluster_name) = crate::cluster::owner_cluster(&kcp) else {
        return Ok(Action::await_change());
    };
    let cluster = ctx
        .stores
        .get(Kind::Cluster, namespace(&kcp), &cluster_name);
    let machines = replicas::owned_machines(&ctx, &kcp, &cluster_name);
    replicas::delete_orphans(&ctx, &kcp, &machines).await?;
    if let Some(cluster) = cluster.filter(|c| !deleting(c)) {
        ensure_kubeconfig(&ctx, &cluster, &kcp).await?;
        if cluster["status"]["infrastructureReady"] == true {
            scale(&ctx, &kcp, &cluster_name, &machines).await?;
        }
    }
    write_status(&ctx, &kcp, &cluster_name, &machines).await?;
    Ok(Action::await_change())
}

fn desired_replicas(kcp: &Value) -> usize {
    kcp["spec"]["replicas"]
        .as_u64()
        .and_then(|r| usize::try_from(r).ok())
        .unwrap_or(1)
}

fn desired_version(kcp: &Value) -> &str {
    kcp["spec"]["version"].as_str().unwrap_or_default()
}

/// What rolls the control plane: its version, its `kubeadmConfigSpec` (compared with each
/// machine's KubeadmConfig) and the infrastructure template machines are cloned from, as
/// `UpToDate` in controlplane/kubeadm/internal/filters.go. `machineTemplate`'s drain and
/// deletion timeouts change in place.
fn current_template(kcp: &Value) -> String {
    let spec = &kcp["spec"];
    replicas::made_from(&json!({
        "version": spec["version"],
        "kubeadmConfigSpec": spec["kubeadmConfigSpec"],
        "infrastructureRef": spec["machineTemplate"]["infrastructureRef"]["name"],
    }))
}

async fn scale(ctx: &Context, kcp: &Value, cluster: &str, machines: &[Value]) -> Result<()> {
    let desired = desired_replicas(kcp);
    let policy = Policy {
        max_surge: rollout::max_surge(
            &kcp["spec"]["rolloutStrategy"]["rollingUpdate"]["maxSurge"],
            desired,
        ),
        one_at_a_time: true,
        scale_in: ScaleIn::OldestFirst,
    };
    let replicas = replicas::replicas(machines);
    let template = current_template(kcp);
    match rollout::plan(desired, &template, &replicas, &policy) {
        Step::Create(count) => {
            for _ in 0..count {
                let mut labels = Map::new();
                labels.insert(CAPI_CLUSTER_NAME_LABEL.into(), json!(cluster));
                labels.insert(CONTROL_PLANE_LABEL.into(), json!(""));
                labels.insert(CONTROL_PLANE_NAME_LABEL.into(), json!(name(kcp)));
                let mut spec = json!({"clusterName": cluster, "version": desired_version(kcp)});
                // KCP copies these of its machine template to each Machine.
                let drain = &kcp["spec"]["machineTemplate"]["nodeDrainTimeout"];
                if drain.is_string() {
                    spec["nodeDrainTimeout"] = drain.clone();
                }
                let new = NewMachine {
                    owner: kcp,
                    labels,
                    spec,
                    template: &kcp["spec"]["machineTemplate"]["infrastructureRef"],
                    bootstrap: bootstrap_config(kcp, machines.is_empty()),
                    made_from: template.clone(),
                };
                replicas::create(ctx, new).await?;
            }
        }
        Step::Delete(names) => replicas::delete(ctx, namespace(kcp), &names).await?,
        Step::Wait | Step::Steady => {}
    }
    Ok(())
}

/// The KubeadmConfig spec of a new machine: the first one inits (no `joinConfiguration`), the
/// others join (no `initConfiguration`), as `InitialControlPlaneConfig` and
/// `JoinControlPlaneConfig` in controlplane/kubeadm/internal/control_plane.go.
fn bootstrap_config(kcp: &Value, first: bool) -> Value {
    let mut spec = kcp["spec"]["kubeadmConfigSpec"].clone();
    if let Some(fields) = spec.as_object_mut() {
        fields.remove(if first {
            "joinConfiguration"
        } else {
            "initConfiguration"
        });
    }
    spec
}

/// The workload cluster's admin kubeconfig. It exists before any node does, as with Cluster API.
async fn ensure_kubeconfig(ctx: &Context, cluster: &Value, kcp: &Value) -> Result<()> {
    let endpoint = &cluster["spec"]["controlPlaneEndpoint"];
    let (Some(host), Some(port)) = (endpoint["host"].as_str(), endpoint["port"].as_i64()) else {
        return Ok(());
    };
    if host.is_empty() || port == 0 {
        return Ok(());
    }
    let secret_name = format!("{}-kubeconfig", name(cluster));
    if ctx.stores.secret_exists(namespace(kcp), &secret_name) {
        return Ok(());
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": secret_name, "namespace": namespace(kcp),
            "labels": {CAPI_CLUSTER_NAME_LABEL: name(cluster)},
            "ownerReferences": [objects::controller_reference(kcp)],
        },
        "type": "cluster.x-k8s.io/secret",
        "stringData": {"value": kubeconfig(name(cluster), host, port).map_err(|e| Error::Invalid(format!("kubeconfig: {e}")))?},
    }))?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace(kcp));
    objects::create_if_missing(&api, &secret).await.map(|_| ())
}

/// The kubeconfig as Cluster API writes it (util/kubeconfig/kubeconfig.go): the cluster CA and
/// a client certificate of `kubernetes-admin` in `system:masters` signed by it, both inline.
/// The CA is the simulator's own per cluster; nothing serves the endpoint.
fn kubeconfig(cluster: &str, host: &str, port: i64) -> anyhow::Result<String> {
    use base64::Engine as _;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let encode = |pem: String| base64::engine::general_purpose::STANDARD.encode(pem);
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "kubernetes");
    let ca = ca.self_signed(&ca_key)?;
    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "kubernetes-admin");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    let client = client.signed_by(&client_key, &ca, &ca_key)?;
    let user = format!("{cluster}-admin");
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority-data": encode(ca.pem()),
        }}],
        "users": [{"name": user, "user": {
            "client-certificate-data": encode(client.pem()),
            "client-key-data": encode(client_key.serialize_pem()),
        }}],
        "contexts": [{"name": format!("{user}@{cluster}"), "context": {"cluster": cluster, "user": user}}],
        "current-context": format!("{user}@{cluster}"),
    });
    Ok(lcm_core::yaml::to_string(&kubeconfig)?)
}

/// The lowest `spec.version` among the machines, as `LowestVersion` (deleting ones too).
fn lowest_version(machines: &[Value]) -> Option<&str> {
    machines
        .iter()
        .map(replicas::version)
        .min_by_key(|v| v.parse::<KubernetesVersion>().ok())
}

async fn write_status(ctx: &Context, kcp: &Value, cluster: &str, machines: &[Value]) -> Result<()> {
    let desired = desired_replicas(kcp);
    let counts = replicas::count(machines, &current_template(kcp));
    // Once the kubeadm configuration `kubeadm init` uploads is readable (a node joined), and
    // never unset; `readyReplicas` counts Ready Nodes (controlplane/kubeadm/internal/
    // controllers/status.go).
    let initialized =
        kcp["status"]["initialized"] == true || machines.iter().any(replicas::has_node);
    let ready = if !initialized {
        Condition::false_("Ready", "WaitingForKubeadmInit", Severity::Info)
    } else if counts.outdated > 0 {
        Condition::false_("Ready", "RollingUpdateInProgress", Severity::Warning)
    } else if counts.replicas < desired {
        Condition::false_("Ready", "ScalingUp", Severity::Warning)
    } else if counts.replicas > desired {
        Condition::false_("Ready", "ScalingDown", Severity::Warning)
    } else if counts.ready < desired {
        Condition::false_("Ready", "MachinesNotReady", Severity::Warning)
    } else {
        Condition::true_("Ready")
    };
    let available = if initialized {
        Condition::true_("Available")
    } else {
        Condition::false_("Available", "WaitingForKubeadmInit", Severity::Info)
    };
    let mut status = json!({
        "selector": format!("{CAPI_CLUSTER_NAME_LABEL}={cluster},{CONTROL_PLANE_LABEL}"),
        "replicas": counts.replicas,
        "updatedReplicas": counts.updated,
        "readyReplicas": counts.ready,
        "unavailableReplicas": counts.replicas - counts.ready,
        "initialized": initialized,
        "ready": counts.ready > 0,
        "observedGeneration": kcp["metadata"]["generation"],
        "conditions": conditions::render(&[ready, available], &kcp["status"]["conditions"]),
    });
    if let Some(version) = lowest_version(machines) {
        status["version"] = json!(version);
    }
    let api = ctx.api(Kind::KubeadmControlPlane, namespace(kcp));
    objects::apply_status(&api, Kind::KubeadmControlPlane, kcp, status).await
}
