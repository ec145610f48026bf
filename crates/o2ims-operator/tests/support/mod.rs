//! Support for the O2IMS operator's integration tests: the operator as a real process
//! against the real control plane, and drivers that write Cluster API / BYOH status the way
//! their controllers would.

#![allow(dead_code)] // each test binary uses a different part of the support module

pub use testcluster::capi;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use lcm_core::crd::{ProvisioningRequest, ProvisioningRequestSpec, ProvisioningState};
use lcm_core::rest::provisioning::Phase;
use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The host inventory ConfigMap (key `input.json`) the operator reads how hosts are reached
/// from: `--host-inventory-configmap`'s default.
pub const HOST_INVENTORY: &str = "lcm-inventory";
/// An ed25519 SSH host key, as `ssh-keyscan` prints it.
pub const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";

/// Adds `hosts` (entries of `input.json`'s `hosts`) to the host inventory of the operator in
/// `namespace`, creating it: tests sharing an operator each add their own hosts, so a write that
/// raced another is retried on the new content.
pub async fn add_to_host_inventory(
    client: &Client,
    namespace: &str,
    hosts: &[Value],
) -> anyhow::Result<()> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    loop {
        let current = api.get_opt(HOST_INVENTORY).await?;
        let mut inventory: Value = match current.as_ref().and_then(|c| c.data.as_ref()) {
            Some(data) => {
                serde_json::from_str(data.get("input.json").map_or("{}", String::as_str))?
            }
            None => json!({"hosts": [], "clusters": []}),
        };
        if let Some(all) = inventory["hosts"].as_array_mut() {
            all.extend(hosts.iter().cloned());
        }
        let data = [("input.json".to_string(), inventory.to_string())].into();
        let written = match current {
            Some(mut config_map) => {
                config_map.data = Some(data);
                api.replace(HOST_INVENTORY, &PostParams::default(), &config_map)
                    .await
            }
            None => {
                let mut config_map = ConfigMap::default();
                config_map.metadata.name = Some(HOST_INVENTORY.into());
                config_map.data = Some(data);
                api.create(&PostParams::default(), &config_map).await
            }
        };
        match written {
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            written => return Ok(written.map(drop)?),
        }
    }
}

/// Parameters of a cluster `name` with one control-plane host and the given workers.
pub fn parameters(name: &str, control_plane: &[&str], workers: &[&str], vip: &str) -> Value {
    json!({
        "clusterName": name,
        "kubernetesVersion": "v1.32.9",
        "controlPlaneEndpoint": {"host": vip},
        "hosts": {"controlPlane": control_plane, "workers": workers},
        "cni": "none",
        "hostPreparation": "skip",
    })
}

pub fn request(name: &str, parameters: Value) -> ProvisioningRequest {
    ProvisioningRequest::new(
        name,
        ProvisioningRequestSpec {
            name: Some(format!("test {name}")),
            description: None,
            template_name: "byoh-workload-cluster".into(),
            template_version: "v1".into(),
            template_parameters: parameters,
        },
    )
}

pub async fn create(
    client: &Client,
    request: &ProvisioningRequest,
) -> anyhow::Result<ProvisioningRequest> {
    Ok(Api::<ProvisioningRequest>::all(client.clone())
        .create(&PostParams::default(), request)
        .await?)
}

pub fn state(request: &ProvisioningRequest) -> Option<ProvisioningState> {
    request
        .status
        .as_ref()?
        .provisioning_status
        .as_ref()
        .map(|s| s.provisioning_state)
}

pub fn message(request: &ProvisioningRequest) -> String {
    request
        .status
        .as_ref()
        .and_then(|s| s.provisioning_status.as_ref())
        .map(|s| s.provisioning_message.clone())
        .unwrap_or_default()
}

pub fn condition(request: &ProvisioningRequest, type_: &str) -> Option<(String, String, String)> {
    let c = lcm_core::conditions::find(&request.status.as_ref()?.conditions, type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the request satisfies `check` (it is watched through polling with a deadline).
pub async fn wait_request(
    client: &Client,
    name: &str,
    what: &str,
    check: impl Fn(&ProvisioningRequest) -> bool,
) -> anyhow::Result<ProvisioningRequest> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    testcluster::wait_for(what, TIMEOUT, || {
        let api = api.clone();
        let check = &check;
        async move { Ok(api.get_opt(name).await?.filter(|r| check(r))) }
    })
    .await
}

/// Waits for a state; on timeout the error shows the last message. `Progressing` means judged
/// (its validation done): a request not yet validated is progressing too, with nothing created.
pub async fn wait_state(
    client: &Client,
    name: &str,
    state: ProvisioningState,
) -> anyhow::Result<ProvisioningRequest> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    match wait_request(client, name, &format!("{name} to be {state}"), |r| {
        self::state(r) == Some(state)
            && (state != ProvisioningState::Progressing
                || lcm_core::rest::provisioning::phase(r) == Phase::Progressing)
    })
    .await
    {
        Ok(r) => Ok(r),
        Err(e) => {
            let last = api
                .get_opt(name)
                .await?
                .map(|r| format!("{:?}: {}", self::state(&r), self::message(&r)));
            Err(e.context(format!("last seen: {last:?}")))
        }
    }
}

/// Waits until every host of the request is reported PROVISIONED (host claims settle a little
/// after the cluster's own status).
pub async fn wait_hosts_provisioned(
    client: &Client,
    name: &str,
) -> anyhow::Result<ProvisioningRequest> {
    wait_request(client, name, "every host to be reported provisioned", |r| {
        let hosts = r
            .status
            .as_ref()
            .map(|s| s.infrastructure_resource_provisioning_status.as_slice())
            .unwrap_or_default();
        hosts.iter().all(|h| {
            h.resource_provisioning_phase == lcm_core::crd::ResourceProvisioningPhase::Provisioned
        })
    })
    .await
}

/// The API server's current resourceVersion for ProvisioningRequests: watching from it sees
/// every later change.
pub async fn resource_version_now(client: &Client) -> anyhow::Result<String> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let list = api.list_metadata(&ListParams::default().limit(1)).await?;
    Ok(list.metadata.resource_version.unwrap_or_default())
}

/// Every state the request `name` passed through since `resource_version`, until `last`
/// (read from a watch, so no intermediate state is missed).
pub async fn states_since(
    client: &Client,
    name: &str,
    resource_version: &str,
    last: ProvisioningState,
) -> anyhow::Result<Vec<ProvisioningState>> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(TIMEOUT.as_secs() as u32);
    let mut events = api.watch(&params, resource_version).await?.boxed();
    let mut states = Vec::new();
    while let Some(event) = events.try_next().await? {
        let (WatchEvent::Added(r) | WatchEvent::Modified(r)) = event else {
            continue;
        };
        if let Some(now) = state(&r)
            && states.last() != Some(&now)
        {
            states.push(now);
            if now == last {
                return Ok(states);
            }
        }
    }
    anyhow::bail!("{name} did not become {last} within {TIMEOUT:?}: states seen {states:?}")
}

/// Every state the request `name` was written in since `resource_version`, until its status
/// describes `generation` of its spec (read from a watch, so no intermediate state is missed).
pub async fn states_until_observed(
    client: &Client,
    name: &str,
    resource_version: &str,
    generation: i64,
) -> anyhow::Result<Vec<ProvisioningState>> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(TIMEOUT.as_secs() as u32);
    let mut events = api.watch(&params, resource_version).await?.boxed();
    let mut states = Vec::new();
    while let Some(event) = events.try_next().await? {
        let (WatchEvent::Added(r) | WatchEvent::Modified(r)) = event else {
            continue;
        };
        if let Some(now) = state(&r)
            && states.last() != Some(&now)
        {
            states.push(now);
        }
        let observed = r.status.as_ref().and_then(|s| s.observed_generation);
        if observed.is_some_and(|o| o >= generation) {
            return Ok(states);
        }
    }
    anyhow::bail!(
        "{name}'s status did not describe generation {generation} within {TIMEOUT:?}: states seen {states:?}"
    )
}

/// A unique suffix for names in a shared cluster.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 10000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A test's own cluster: unique name, hosts and VIP.
pub struct Scenario {
    pub name: String,
    pub request: String,
    pub vip: String,
}

impl Scenario {
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let name = unique(prefix);
        Self {
            request: format!("{name}-req"),
            vip: Ipv4Addr::new(172, 31, 0, NEXT.fetch_add(1, Ordering::SeqCst)).to_string(),
            name,
        }
    }
    pub fn host(&self, i: usize) -> String {
        format!("{}-h{i}", self.name)
    }
    pub fn hostname(&self, i: usize) -> String {
        format!("{}-node{i}", self.name)
    }
    pub fn namespace(&self) -> String {
        format!("cluster-{}", self.name)
    }
    /// Host `i` as the O-Cloud's host inventory describes it: at 192.0.2.`i`, with a pinned key.
    pub fn inventory_host(&self, i: usize) -> Value {
        json!({"id": self.host(i), "hostname": self.hostname(i), "address": format!("192.0.2.{i}"), "sshHostKeys": [HOST_KEY]})
    }
    pub fn parameters(&self, control_plane: &[usize], workers: &[usize]) -> serde_json::Value {
        let ids = |hosts: &[usize]| hosts.iter().map(|i| self.host(*i)).collect::<Vec<_>>();
        let (cp, w) = (ids(control_plane), ids(workers));
        json!({
            "clusterName": self.name, "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": self.vip},
            "hosts": {"controlPlane": cp, "workers": w},
            "cni": "none", "hostPreparation": "skip",
        })
    }
    pub async fn register(&self, client: &Client, hosts: &[usize]) -> anyhow::Result<Vec<String>> {
        let mut uids = Vec::new();
        for i in hosts {
            uids.push(capi::register_host(client, &self.hostname(*i), &self.host(*i)).await?);
        }
        Ok(uids)
    }
    /// Machines on every host and all status Ready, as CAPI and BYOH report a finished cluster.
    pub async fn provision(
        &self,
        client: &Client,
        control_plane: &[usize],
        workers: &[usize],
    ) -> anyhow::Result<()> {
        for (role, hosts) in [(true, control_plane), (false, workers)] {
            for i in hosts {
                let machine = format!("{}-m{i}", self.name);
                capi::machine_on_host(
                    client,
                    &self.namespace(),
                    &self.name,
                    &machine,
                    &self.hostname(*i),
                    role,
                )
                .await?;
            }
        }
        capi::all_ready(
            client,
            &self.namespace(),
            &self.name,
            control_plane.len() as i64,
            workers.len() as i64,
            "v1.32.9",
        )
        .await
    }
}
