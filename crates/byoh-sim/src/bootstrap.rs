//! BYOH's BootstrapKubeconfig controller: for each BootstrapKubeconfig, a kubeconfig that lets
//! a host agent register at the API server and with the CA it names, carrying a bootstrap
//! token (simulated: no token Secret exists, and nothing here accepts it).

use std::sync::Arc;

use kube::api::DynamicObject;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use lcm_core::capi::Kind;
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, name, namespace, to_json};
use crate::runner;

pub fn run(ctx: Arc<Context>) -> impl Future<Output = ()> + Send {
    let controller = Controller::new_with(
        ctx.api_scoped(Kind::BootstrapKubeconfig),
        watcher::Config::default(),
        Kind::BootstrapKubeconfig.api_resource(),
    );
    runner::drive(
        "bootstrap-kubeconfigs",
        controller.run(reconcile, runner::retry, ctx),
    )
}

async fn reconcile(object: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action> {
    let object = to_json(&object);
    if !object["status"]["bootstrapKubeconfigData"].is_null() {
        return Ok(Action::await_change());
    }
    let spec = &object["spec"];
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": {
            "server": spec["apiserver"], "certificate-authority-data": spec["certificate-authority-data"],
        }}],
        "contexts": [{"name": "default-context", "context": {"cluster": "default-cluster", "user": "default-auth"}}],
        "current-context": "default-context",
        "users": [{"name": "default-auth", "user": {"token": format!("simbyo.{}", name(&object))}}],
    });
    let api = ctx.api(Kind::BootstrapKubeconfig, namespace(&object));
    objects::apply_status(
        &api,
        Kind::BootstrapKubeconfig,
        &object,
        json!({"bootstrapKubeconfigData": lcm_core::yaml::to_string(&kubeconfig)
            .map_err(|e| Error::Invalid(e.to_string()))?}),
    )
    .await?;
    tracing::info!(name = name(&object), "issued a bootstrap kubeconfig");
    Ok(Action::await_change())
}
