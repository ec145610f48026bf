//! Wiring: the watches that make status event-driven, leader election, health and shutdown.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};

use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind, MANAGED_BY};
use lcm_core::crd::{HostClaim, ProvisioningRequest, host_claim_name};
use lcm_core::handoff::argocd;
use lcm_core::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};

use operator_kit::apply::Applier;
use operator_kit::keyed::Keyed;
use operator_kit::watch::triggers;

use crate::config::Config;
use crate::context::Context;
use crate::error::Error;
use crate::index::{self, Index};
use crate::reconcile::reconcile;

const NAME: &str = "o2ims-operator";

pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check()?;
    let runtime = operator_kit::runtime::start(NAME, "o2ims", &config.runtime).await?;
    let client = runtime.client.clone();
    let requests: Api<ProvisioningRequest> = Api::all(client.clone());
    let controller = operator_kit::watch::controller(requests);
    let (controller, index) = watch_children(controller, &client, &config);
    let ctx = Arc::new(Context {
        recorder: runtime.recorder(),
        applier: Applier::new(client.clone(), MANAGED_BY),
        client,
        metrics: runtime.metrics.clone(),
        config,
        index,
        status_writes: Default::default(),
    });
    // Registered before the first reconcile, so every series exists from start-up.
    ctx.o2ims_metrics();
    runtime.run(controller, reconcile, error_policy, ctx).await
}

fn error_policy(request: Arc<ProvisioningRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    operator_kit::runtime::retry_after_error(
        &ctx.metrics,
        &request.name_any(),
        error,
        error.metric_label(),
    )
}

/// The request an object belongs to, by its owner reference: the label holds only a hash of
/// names longer than a label value, so the name is read from where it is whole.
fn by_owner<K: Resource>(object: &K) -> Option<ObjectRef<ProvisioningRequest>> {
    object
        .owner_references()
        .iter()
        .find(|o| {
            o.kind == ProvisioningRequest::kind(&())
                && o.api_version == ProvisioningRequest::api_version(&())
        })
        .map(|o| ObjectRef::new(&o.name))
}

/// Status is event-driven: every object whose change can change a request's status is watched,
/// and the watches of what reconcile reads feed the index it reads from.
fn watch_children(
    controller: Controller<ProvisioningRequest>,
    client: &Client,
    config: &Config,
) -> (Controller<ProvisioningRequest>, Index) {
    let labelled = watcher::Config::default().labels(PROVISIONING_REQUEST_LABEL);
    let requests = controller.store();
    let mut controller = controller
        .watches_stream(
            triggers(Api::<Namespace>::all(client.clone()), labelled.clone()),
            |o| by_owner(&o),
        )
        .watches_stream(
            triggers(
                Api::<Job>::namespaced(client.clone(), config.namespace()),
                labelled.clone(),
            ),
            |o| by_owner(&o),
        );
    // Host preparation waits for BYOH to issue its bootstrap kubeconfig.
    let bootstrap = Kind::BootstrapKubeconfig.api_resource();
    controller = controller.watches_stream_with(
        triggers(
            Api::<DynamicObject>::namespaced_with(client.clone(), config.namespace(), &bootstrap),
            labelled,
        ),
        |o| by_owner(&o),
        bootstrap,
    );
    // A claim's change reconciles its holder (a released host, a claim deleted by hand).
    let (claims, claim_events) = operator_kit::watch::store(
        Api::<HostClaim>::all(client.clone()),
        watcher::Config::default(),
    );
    controller = controller.watches_stream(claim_events, |claim| {
        Some(ObjectRef::new(&claim.spec.request_name))
    });
    // The request's own Cluster API objects name it as owner.
    let owned = PROVISIONING_REQUEST_LABEL;
    let (controller, clusters) =
        indexed(controller, client, Kind::Cluster, owned, |o| by_owner(&o));
    let (controller, control_planes) =
        indexed(controller, client, Kind::KubeadmControlPlane, owned, |o| {
            by_owner(&o)
        });
    let (controller, machine_deployments) =
        indexed(controller, client, Kind::MachineDeployment, owned, |o| {
            by_owner(&o)
        });
    // Machines are Cluster API's own: found through the Cluster they belong to.
    let of_cluster = |clusters: Keyed| {
        move |machine: DynamicObject| {
            let name = machine.labels().get(CAPI_CLUSTER_NAME_LABEL)?.clone();
            let key = ObjectRef::new_with(&name, Kind::Cluster.api_resource())
                .within(&machine.namespace()?);
            by_owner(clusters.store().get(&key)?.as_ref())
        }
    };
    let in_cluster = CAPI_CLUSTER_NAME_LABEL;
    let (controller, machines) = indexed(
        controller,
        client,
        Kind::Machine,
        in_cluster,
        of_cluster(clusters.clone()),
    );
    let (controller, byo_machines) = indexed(
        controller,
        client,
        Kind::ByoMachine,
        in_cluster,
        of_cluster(clusters.clone()),
    );
    // Hosts registering, being claimed or released: the request holding them in the ledger.
    let ledger = claims.clone();
    let (controller, byo_hosts) = indexed(
        controller,
        client,
        Kind::ByoHost,
        HOST_ID_LABEL,
        move |host| {
            let id = host.labels().get(HOST_ID_LABEL)?;
            let claim = ledger.get(&ObjectRef::new(&host_claim_name(id)))?;
            Some(ObjectRef::new(&claim.spec.request_name))
        },
    );
    // Read, not acted on: the next reconcile of each request uses what they hold.
    let (config_maps, config_map_events) = operator_kit::watch::store(
        Api::<ConfigMap>::namespaced(client.clone(), config.namespace()),
        watcher::Config::default(),
    );
    let controller = controller.watches_stream(config_map_events, |_| None);
    let (controller, handoff) = watch_handoff(controller, client, config, clusters.store().clone());
    let ready = operator_kit::watch::readiness(
        [
            &clusters,
            &control_planes,
            &machine_deployments,
            &machines,
            &byo_machines,
            &byo_hosts,
        ]
        .into_iter()
        .map(|keyed| operator_kit::watch::listed(keyed.store()))
        .chain([
            operator_kit::watch::listed(&claims),
            operator_kit::watch::listed(&config_maps),
        ])
        .chain(handoff.listed)
        .collect(),
    );
    let index = Index {
        ready,
        requests,
        claims,
        clusters,
        control_planes,
        machine_deployments,
        machines,
        byo_machines,
        byo_hosts,
        config_maps,
        cluster_secrets: handoff.cluster_secrets,
        registrations: handoff.registrations,
        git_credentials: handoff.git_credentials,
    };
    (controller, index)
}

/// The stores of the day-2 hand-offs the admin enabled (the others stay empty, never watched).
struct HandoffStores {
    cluster_secrets: Store<PartialObjectMeta<Secret>>,
    registrations: Store<PartialObjectMeta<Secret>>,
    git_credentials: Store<Secret>,
    listed: Vec<futures::future::BoxFuture<'static, bool>>,
}

/// With ArgoCD: a kubeconfig's change (Cluster API rotating it) reconciles the request of its
/// Cluster, a registration's change (deleted by hand) its request; with a private Config Sync
/// repository, a change of its credentials reconciles every request.
fn watch_handoff(
    mut controller: Controller<ProvisioningRequest>,
    client: &Client,
    config: &Config,
    clusters: Store<DynamicObject>,
) -> (Controller<ProvisioningRequest>, HandoffStores) {
    let mut stores = HandoffStores {
        cluster_secrets: kube::runtime::reflector::store().0,
        registrations: kube::runtime::reflector::store().0,
        git_credentials: kube::runtime::reflector::store().0,
        listed: Vec::new(),
    };
    if let Some(namespace) = &config.handoff.argocd_namespace {
        let (secrets, events) = operator_kit::watch::store(
            Api::<PartialObjectMeta<Secret>>::all(client.clone()),
            watcher::Config::default().labels(CAPI_CLUSTER_NAME_LABEL),
        );
        controller = controller.watches_stream(events, move |secret| {
            let name = secret.labels().get(CAPI_CLUSTER_NAME_LABEL)?.clone();
            let key = ObjectRef::new_with(&name, Kind::Cluster.api_resource())
                .within(&secret.namespace()?);
            by_owner(clusters.get(&key)?.as_ref())
        });
        let mine = format!(
            "{}=cluster,app.kubernetes.io/managed-by={MANAGED_BY}",
            argocd::SECRET_TYPE_LABEL
        );
        let (registrations, events) = operator_kit::watch::store(
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), namespace),
            watcher::Config::default().labels(&mine),
        );
        controller = controller.watches_stream(events, |o| by_owner(&o));
        stores.listed.push(operator_kit::watch::listed(&secrets));
        stores
            .listed
            .push(operator_kit::watch::listed(&registrations));
        (stores.cluster_secrets, stores.registrations) = (secrets, registrations);
    }
    if let Some(name) = &config.handoff.config_sync_secret {
        let (credentials, events) = operator_kit::watch::store(
            Api::<Secret>::namespaced(client.clone(), config.namespace()),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        );
        // Every cluster's copy follows the credentials.
        controller = controller.reconcile_all_on(futures::StreamExt::map(events, |_| ()));
        stores
            .listed
            .push(operator_kit::watch::listed(&credentials));
        stores.git_credentials = credentials;
    }
    (controller, stores)
}

/// Watches the `kind` objects carrying `label` into a store of the index; each change
/// reconciles the request `map` finds for it.
fn indexed(
    controller: Controller<ProvisioningRequest>,
    client: &Client,
    kind: Kind,
    label: &str,
    map: impl Fn(DynamicObject) -> Option<ObjectRef<ProvisioningRequest>> + Send + Sync + 'static,
) -> (Controller<ProvisioningRequest>, Keyed) {
    let (store, events) = index::watch(client, kind, label);
    (
        controller.watches_stream_with(events, map, kind.api_resource()),
        store,
    )
}
