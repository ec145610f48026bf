//! Support for the FOCOM operator's integration tests: inventories, requests, and
//! ProvisioningRequest status written the way the O2IMS operator would.

#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::crd::{
    FocomPhase, FocomProvisioningRequest, FocomProvisioningRequestSpec, ProvisioningRequest,
    TemplateInfo, TemplateInfoSpec,
};
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const BINARY: &str = env!("CARGO_BIN_EXE_focom-operator");
pub const INVENTORY: &str = "lcm-inventory";

/// An inventory of `clusters`: (name, control-plane hosts, workers, endpoint); every host listed.
pub fn inventory(clusters: &[(&str, &[&str], &[&str], &str)]) -> Value {
    let mut hosts: Vec<&str> = clusters
        .iter()
        .flat_map(|(_, cp, w, _)| cp.iter().chain(w.iter()).copied())
        .collect();
    hosts.sort();
    hosts.dedup();
    json!({
        "defaults": {"hostPreparation": "skip", "cni": "none"},
        "hosts": hosts.iter().enumerate().map(|(i, h)| json!({
            "id": h, "hostname": format!("{h}-node"), "address": format!("192.0.2.{}", i + 1),
        })).collect::<Vec<_>>(),
        "clusters": clusters.iter().map(|(name, cp, w, vip)| json!({
            "name": name, "controlPlaneEndpoint": vip, "controlPlaneHosts": cp, "workerHosts": w,
        })).collect::<Vec<_>>(),
    })
}

/// Creates or replaces the inventory ConfigMap with `text`.
pub async fn put_inventory(client: &Client, namespace: &str, text: &str) -> anyhow::Result<()> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": INVENTORY}, "data": {"input.json": text}});
    api.patch(
        INVENTORY,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&config_map),
    )
    .await?;
    Ok(())
}

pub fn request(name: &str, spec: FocomProvisioningRequestSpec) -> FocomProvisioningRequest {
    FocomProvisioningRequest::new(name, spec)
}

pub fn by_names(names: &[&str]) -> FocomProvisioningRequestSpec {
    FocomProvisioningRequestSpec {
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        cluster_names: Some(names.iter().map(|n| n.to_string()).collect()),
        ..Default::default()
    }
}

/// A request describing one cluster in full (`templateParameters`): control-plane host
/// `<cluster>-h1`, endpoint `endpoint`.
pub fn one_cluster(cluster: &str, endpoint: &str) -> FocomProvisioningRequestSpec {
    FocomProvisioningRequestSpec {
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        template_parameters: Some(json!({
            "clusterName": cluster, "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": endpoint}, "hosts": {"controlPlane": [format!("{cluster}-h1")]},
        })),
        ..Default::default()
    }
}

pub async fn create(
    client: &Client,
    namespace: &str,
    request: &FocomProvisioningRequest,
) -> anyhow::Result<()> {
    Api::<FocomProvisioningRequest>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), request)
        .await?;
    Ok(())
}

pub fn phase(request: &FocomProvisioningRequest) -> Option<FocomPhase> {
    request.status.as_ref()?.phase
}

pub fn message(request: &FocomProvisioningRequest) -> String {
    request
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

pub fn condition(
    request: &FocomProvisioningRequest,
    type_: &str,
) -> Option<(String, String, String)> {
    let c = lcm_core::conditions::find(&request.status.as_ref()?.conditions, type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub async fn wait_request(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&FocomProvisioningRequest) -> bool,
) -> anyhow::Result<FocomProvisioningRequest> {
    let api = Api::<FocomProvisioningRequest>::namespaced(client.clone(), namespace);
    let found = testcluster::wait_for(what, TIMEOUT, || {
        let api = api.clone();
        let check = &check;
        async move { Ok(api.get_opt(name).await?.filter(|r| check(r))) }
    })
    .await;
    match found {
        Ok(r) => Ok(r),
        Err(e) => {
            let last = api
                .get_opt(name)
                .await?
                .map(|r| format!("{:?}: {}", phase(&r), message(&r)));
            Err(e.context(format!("last seen: {last:?}")))
        }
    }
}

pub async fn wait_phase(
    client: &Client,
    namespace: &str,
    name: &str,
    phase: FocomPhase,
) -> anyhow::Result<FocomProvisioningRequest> {
    wait_request(
        client,
        namespace,
        name,
        &format!("{name} to be {phase}"),
        |r| self::phase(r) == Some(phase),
    )
    .await
}

/// The ProvisioningRequests created for the request `namespace/name`.
pub async fn owned(
    client: &Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Vec<ProvisioningRequest>> {
    let selector = format!(
        "{}={}",
        lcm_core::FOCOM_REQUEST_LABEL,
        lcm_core::focom::owner_label(namespace, name)
    );
    let mut list = Api::<ProvisioningRequest>::all(client.clone())
        .list(&kube::api::ListParams::default().labels(&selector))
        .await?
        .items;
    list.sort_by_key(|r| r.labels().get(lcm_core::CLUSTER_NAME_LABEL).cloned());
    Ok(list)
}

pub async fn wait_owned(
    client: &Client,
    namespace: &str,
    name: &str,
    count: usize,
) -> anyhow::Result<Vec<ProvisioningRequest>> {
    testcluster::wait_for(
        &format!("{count} ProvisioningRequest(s) for {name}"),
        TIMEOUT,
        || async {
            let list = owned(client, namespace, name).await?;
            Ok((list.len() == count).then_some(list))
        },
    )
    .await
}

/// Writes a ProvisioningRequest's state as the O2IMS operator would.
pub async fn set_state(
    client: &Client,
    request: &str,
    state: &str,
    message: &str,
) -> anyhow::Result<()> {
    let mut status =
        json!({"provisioningStatus": {"provisioningState": state, "provisioningMessage": message}});
    if state == "fulfilled" {
        status["provisionedResourceSet"] =
            json!({"oCloudNodeClusterId": format!("uid-of-{request}")});
    }
    Api::<ProvisioningRequest>::all(client.clone())
        .patch_status(
            request,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await?;
    Ok(())
}

/// Publishes a TemplateInfo `name` for `template` `version` in `ns`.
pub async fn template_info(
    client: &Client,
    ns: &str,
    name: &str,
    template: &str,
    version: &str,
    schema: serde_json::Value,
) -> anyhow::Result<()> {
    let info = TemplateInfo::new(
        name,
        TemplateInfoSpec {
            template_name: template.into(),
            template_version: version.into(),
            template_parameter_schema: schema.to_string(),
        },
    );
    Api::<TemplateInfo>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &info)
        .await?;
    Ok(())
}
