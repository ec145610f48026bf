//! Wiring: the watches that make status event-driven (local and remote ProvisioningRequests,
//! the inventory, the admin's TemplateInfos, OClouds), leader election, health and shutdown.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use lcm_core::FOCOM_REQUEST_LABEL;
use lcm_core::crd::{FocomProvisioningRequest, OCloud, ProvisioningRequest, TemplateInfo};

use crate::config::Config;
use crate::context::Context;
use crate::error::Error;
use crate::ocloud::owner_of;
use crate::reconcile::reconcile;

const NAME: &str = "focom-operator";

pub async fn run(config: Config) -> anyhow::Result<()> {
    let runtime = operator_kit::runtime::start(NAME, "focom", &config.runtime).await?;
    let client = runtime.client.clone();
    let requests: Api<FocomProvisioningRequest> = Api::all(client.clone());
    let controller = operator_kit::watch::controller(requests);
    let store = controller.store();
    let (triggers, remote_changes) = futures::channel::mpsc::unbounded();
    let controller =
        watch_inputs(controller, &client, &config, store.clone()).reconcile_on(remote_changes);
    let ctx = Arc::new(Context {
        recorder: runtime.recorder(),
        client,
        metrics: runtime.metrics.clone(),
        config,
        requests: store.clone(),
        remotes: tokio::sync::Mutex::new(HashMap::new()),
        triggers,
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

fn watch_inputs(
    controller: Controller<FocomProvisioningRequest>,
    client: &Client,
    config: &Config,
    store: Store<FocomProvisioningRequest>,
) -> Controller<FocomProvisioningRequest> {
    let inventory = Api::<ConfigMap>::namespaced(client.clone(), config.inventory_namespace());
    let inventory_only =
        watcher::Config::default().fields(&format!("metadata.name={}", config.inventory_configmap));
    let (for_inventory, for_templates, for_oclouds) = (store.clone(), store.clone(), store);
    controller
        // ProvisioningRequests on this cluster; remote O-Clouds are watched by `ocloud`.
        .watches(
            Api::<ProvisioningRequest>::all(client.clone()),
            watcher::Config::default().labels(FOCOM_REQUEST_LABEL),
            |r| owner_of(&r),
        )
        .watches(inventory, inventory_only, move |_| all(&for_inventory))
        .watches(
            Api::<TemplateInfo>::namespaced(client.clone(), config.template_namespace()),
            watcher::Config::default(),
            move |_| all(&for_templates),
        )
        .watches(
            Api::<OCloud>::all(client.clone()),
            watcher::Config::default(),
            move |ocloud| {
                for_oclouds
                    .state()
                    .iter()
                    .filter(|r| {
                        let namespace = r.spec.o_cloud_namespace.clone().or_else(|| r.namespace());
                        r.spec.o_cloud_id.as_deref() == Some(ocloud.name_any().as_str())
                            && namespace == ocloud.namespace()
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
}
