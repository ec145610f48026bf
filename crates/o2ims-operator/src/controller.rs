//! Wiring: the watches that make status event-driven, leader election, health and shutdown.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use lcm_core::crd::{HostClaim, ProvisioningRequest};
use lcm_core::template::ClusterParameters;
use lcm_core::{HOST_ID_LABEL, PROVISIONING_REQUEST_LABEL};

use crate::config::Config;
use crate::context::Context;
use crate::error::Error;
use crate::reconcile::reconcile;

const NAME: &str = "o2ims-operator";

pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check()?;
    let runtime = operator_kit::runtime::start(NAME, "o2ims", &config.runtime).await?;
    let client = runtime.client.clone();
    let requests: Api<ProvisioningRequest> = Api::all(client.clone());
    let controller = Controller::new(requests, watcher::Config::default());
    let store = controller.store();
    let (claims, claims_writer) = reflector::store();
    // A claim's change reconciles its holder (a released host, a claim deleted by hand).
    let claim_events = reflector(
        claims_writer,
        watcher(
            Api::<HostClaim>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let controller = watch_children(controller, &client, &config, store.clone())
        .watches_stream(claim_events, |claim| {
            Some(ObjectRef::new(&claim.spec.request_name))
        });
    let ctx = Arc::new(Context {
        recorder: runtime.recorder(),
        client,
        metrics: runtime.metrics.clone(),
        config,
        requests: store.clone(),
        claims,
    });
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

fn parameters(request: &ProvisioningRequest) -> Option<ClusterParameters> {
    serde_json::from_value(request.spec.template_parameters.clone()).ok()
}

/// Status is event-driven: every object whose change can change a request's status is watched.
fn watch_children(
    controller: Controller<ProvisioningRequest>,
    client: &Client,
    config: &Config,
    store: Store<ProvisioningRequest>,
) -> Controller<ProvisioningRequest> {
    let labelled = watcher::Config::default().labels(PROVISIONING_REQUEST_LABEL);
    let mut controller = controller
        .watches(
            Api::<Namespace>::all(client.clone()),
            labelled.clone(),
            |o| by_owner(&o),
        )
        .watches(
            Api::<Job>::namespaced(client.clone(), config.namespace()),
            labelled.clone(),
            |o| by_owner(&o),
        );
    // Host preparation waits for BYOH to issue its bootstrap kubeconfig.
    let bootstrap = Kind::BootstrapKubeconfig.api_resource();
    controller = controller.watches_with(
        Api::<DynamicObject>::namespaced_with(client.clone(), config.namespace(), &bootstrap),
        bootstrap,
        labelled.clone(),
        |o| by_owner(&o),
    );
    for kind in [
        Kind::Cluster,
        Kind::KubeadmControlPlane,
        Kind::MachineDeployment,
    ] {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        controller = controller.watches_with(api, resource, labelled.clone(), |o| by_owner(&o));
    }
    // Machines are Cluster API's own: found through the cluster namespace they live in.
    for kind in [Kind::Machine, Kind::ByoMachine] {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let requests = store.clone();
        let config = watcher::Config::default().labels(CAPI_CLUSTER_NAME_LABEL);
        controller = controller.watches_with(api, resource, config, move |machine| {
            let namespace = machine.namespace();
            requests
                .state()
                .into_iter()
                .filter(|r| parameters(r).is_some_and(|p| Some(p.namespace()) == namespace))
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        });
    }
    // Hosts registering, being claimed or released: the requests that name them.
    let resource = Kind::ByoHost.api_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    controller.watches_with(
        api,
        resource,
        watcher::Config::default().labels(HOST_ID_LABEL),
        move |host| {
            let host_id = host
                .labels()
                .get(HOST_ID_LABEL)
                .cloned()
                .unwrap_or_default();
            store
                .state()
                .into_iter()
                .filter(|r| parameters(r).is_some_and(|p| p.all_hosts().any(|h| *h == host_id)))
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        },
    )
}
