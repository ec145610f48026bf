//! Wiring: the watches that make status event-driven (the inventory, the admin's TemplateInfos,
//! OClouds; ProvisioningRequests through each O-Cloud's cache), leader election, health and
//! shutdown.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use lcm_core::crd::{FocomProvisioningRequest, OCloud, TemplateInfo};

use crate::cache::OCloudCache;
use crate::config::Config;
use crate::context::{Context, Inputs};
use crate::error::Error;
use crate::reconcile::reconcile;
use crate::validation::Validations;

const NAME: &str = "focom-operator";

pub async fn run(config: Config) -> anyhow::Result<()> {
    let runtime = operator_kit::runtime::start(NAME, "focom", &config.runtime).await?;
    runtime.metrics.declare_failures(&Error::METRIC_LABELS);
    let client = runtime.client.clone();
    let requests: Api<FocomProvisioningRequest> = Api::all(client.clone());
    let controller = operator_kit::watch::controller(requests);
    let store = controller.store();
    let (triggers, cache_changes) = futures::channel::mpsc::unbounded();
    let (controller, inputs) = watch_inputs(controller, &client, &config, store.clone());
    let controller = controller.reconcile_on(cache_changes);
    let local = Arc::new(OCloudCache::watch(client.clone(), triggers.clone()));
    let ctx = Arc::new(Context {
        recorder: runtime.recorder(),
        client,
        local,
        inputs,
        metrics: runtime.metrics.clone(),
        config,
        requests: store.clone(),
        remotes: tokio::sync::Mutex::new(HashMap::new()),
        triggers,
        status_writes: Default::default(),
        validations: Validations::of(&runtime.metrics),
    });
    runtime.run(controller, reconcile, error_policy, ctx).await
}

fn error_policy(
    request: Arc<FocomProvisioningRequest>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    operator_kit::runtime::retry_after_error(
        &ctx.metrics,
        &request.name_any(),
        error,
        error.metric_label(),
    )
}

fn all(store: &Store<FocomProvisioningRequest>) -> Vec<ObjectRef<FocomProvisioningRequest>> {
    store
        .state()
        .iter()
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The inputs every reconcile reads, each watched into a store whose changes reconcile the
/// requests they concern.
fn watch_inputs(
    controller: Controller<FocomProvisioningRequest>,
    client: &Client,
    config: &Config,
    requests: Store<FocomProvisioningRequest>,
) -> (Controller<FocomProvisioningRequest>, Inputs) {
    let (inventory, inventory_events) = operator_kit::watch::store(
        Api::<ConfigMap>::namespaced(client.clone(), config.inventory_namespace()),
        watcher::Config::default().fields(&format!("metadata.name={}", config.inventory_configmap)),
    );
    let (templates, template_events) = operator_kit::watch::store(
        Api::<TemplateInfo>::namespaced(client.clone(), config.template_namespace()),
        watcher::Config::default(),
    );
    let (oclouds, ocloud_events) = operator_kit::watch::store(
        Api::<OCloud>::all(client.clone()),
        watcher::Config::default(),
    );
    let ready = operator_kit::watch::readiness(vec![
        operator_kit::watch::listed(&inventory),
        operator_kit::watch::listed(&templates),
        operator_kit::watch::listed(&oclouds),
    ]);
    let (for_inventory, for_templates, for_oclouds) =
        (requests.clone(), requests.clone(), requests);
    let controller = controller
        .watches_stream(inventory_events, move |_| all(&for_inventory))
        .watches_stream(template_events, move |_| all(&for_templates))
        .watches_stream(ocloud_events, move |ocloud| {
            for_oclouds
                .state()
                .iter()
                .filter(|r| crate::ocloud_in_use::targets(r, &ocloud))
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        });
    let inputs = Inputs {
        inventory,
        templates,
        oclouds,
        ready,
    };
    (controller, inputs)
}
