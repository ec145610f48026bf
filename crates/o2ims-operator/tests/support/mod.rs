//! Support for the O2IMS operator's integration tests: the operator as a real process against
//! a real control plane on which the real Cluster API and BYOH managers run, with each test's
//! hosts simulated (byoh-sim's agents, in the test's own runtime, on the stack's workload-cluster
//! simulator), so Cluster API and BYOH themselves claim the hosts and report every status.

#![allow(dead_code)] // each test binary uses a different part of the support module

pub use testcluster::capi;

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use byoh_sim::{SimConfig, SimHost};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningRequestSpec, ProvisioningState};
use lcm_core::rest::provisioning::Phase;
use serde_json::{Value, json};
use testcluster::TestCluster;

/// Long enough for a loaded CI machine and for Cluster API's ClusterCache, which retries a
/// workload cluster it could not reach (every new one: it connects before kubeadm init) 30 s
/// later; the waits end as soon as their condition holds.
pub const TIMEOUT: Duration = Duration::from_secs(180);

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

/// The BootstrapKubeconfig the operator asked for to prepare the hosts of `request` in
/// `namespace`, once BYOH issued it (`status.bootstrapKubeconfigData`).
pub async fn issued_bootstrap_kubeconfig(
    client: &Client,
    namespace: &str,
    request: &str,
) -> anyhow::Result<Value> {
    let api = capi::api(client, Kind::BootstrapKubeconfig, namespace);
    let selector = lcm_core::provisioning_request_selector(request);
    testcluster::wait_for("BYOH to issue a bootstrap kubeconfig", TIMEOUT, || async {
        let list = api.list(&ListParams::default().labels(&selector)).await?;
        let issued = list
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or_default())
            .find(|o| o["status"]["bootstrapKubeconfigData"].is_string());
        Ok(issued)
    })
    .await
}

/// Pauses the Cluster `namespace/name` (`spec.paused`, as `clusterctl move` does) or resumes it:
/// Cluster API's controllers leave a paused cluster and everything of it as it is.
pub async fn pause(
    client: &Client,
    namespace: &str,
    name: &str,
    paused: bool,
) -> anyhow::Result<()> {
    capi::api(client, Kind::Cluster, namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": paused}})),
        )
        .await?;
    Ok(())
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

/// Where a test's scenarios run: a stack with the managers and the O2IMS operator's namespace.
#[derive(Clone)]
pub struct Site {
    admin: kube::Config,
    workload_clusters: String,
    /// The operator's namespace, where it makes its host-preparation Jobs.
    pub namespace: String,
}

impl Site {
    pub fn new(stack: &TestCluster, namespace: &str) -> anyhow::Result<Site> {
        // What the simulated agents and Jobs do shows with a failed test.
        testcluster::diagnostics::trace_to_test_output("byoh_sim=info");
        let workload_clusters = stack
            .workload_clusters_url()?
            .ok_or_else(|| anyhow::anyhow!("the stack runs no workload-cluster simulator"))?;
        Ok(Site {
            admin: stack.admin_config_as("byoh-sim")?,
            workload_clusters,
            namespace: namespace.to_string(),
        })
    }

    /// A scenario of its own: unique name, hosts and control-plane endpoint.
    pub fn scenario(&self, prefix: &str) -> Scenario {
        static NEXT: AtomicU8 = AtomicU8::new(1);
        let name = unique(prefix);
        let request = format!("{name}-req");
        // Hosts are prepared (or registered) with a CNI their cluster's owner brings (`cni:
        // none`), bootstrap at once, and only this scenario's host-preparation Jobs run here.
        let simulator = SimConfig {
            namespace: Some(self.namespace.clone()),
            job_selector: Some(lcm_core::provisioning_request_selector(&request)),
            cni_by_cluster_owner: true,
            job_delay: Duration::from_millis(200),
            bootstrap_delay: Duration::from_millis(200),
            ..SimConfig::default()
        };
        Scenario {
            request,
            // In the local routes of the stack's network namespace, where the workload clusters
            // listen.
            vip: Ipv4Addr::new(172, 31, 0, NEXT.fetch_add(1, Ordering::SeqCst)).to_string(),
            name,
            site: self.clone(),
            simulator: Mutex::new(simulator),
            running: tokio::sync::Mutex::new(None),
        }
    }
}

/// A test's own cluster: unique name, hosts and VIP, and the simulator of its hosts.
pub struct Scenario {
    pub name: String,
    pub request: String,
    pub vip: String,
    site: Site,
    /// How its hosts are simulated; `hosts` holds those registered so far.
    simulator: Mutex<SimConfig>,
    /// The simulator while its agents run.
    running: tokio::sync::Mutex<Option<byoh_sim::Handle>>,
}

impl Scenario {
    /// Changes how its hosts are simulated (faults, delays), before they register.
    pub fn with(self, configure: impl FnOnce(&mut SimConfig)) -> Self {
        configure(&mut self.config());
        self
    }

    fn config(&self) -> std::sync::MutexGuard<'_, SimConfig> {
        self.simulator
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// Host `i` as the simulator plays it: at 192.0.2.`i`.
    pub fn sim_host(&self, i: usize) -> SimHost {
        SimHost {
            id: self.host(i),
            hostname: self.hostname(i),
            address: Some(format!("192.0.2.{i}")),
        }
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

    /// Starts the simulator of this scenario's hosts unless it runs: the agents of the hosts
    /// registered so far register again, as agents do when they start.
    pub async fn start_agents(&self) -> anyhow::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_none() {
            let mut config = self.config().clone();
            config.register_inventory_hosts = true;
            *running = Some(byoh_sim::spawn(
                self.site.admin.clone(),
                &self.site.workload_clusters,
                config,
            )?);
        }
        Ok(())
    }

    /// Stops every agent of this scenario's hosts (and its host-preparation Jobs), as when
    /// they are down: their ByoHosts stay as they are until [`Scenario::start_agents`].
    pub async fn stop_agents(&self) {
        self.running.lock().await.take();
    }

    /// One more host of the simulation.
    fn add_host(&self, host: SimHost) {
        let mut config = self.config();
        if !config.hosts.contains(&host) {
            config.hosts.push(host);
        }
    }

    /// Starts the agents of `hosts` (as on hosts their owner prepared) and returns their
    /// ByoHosts' UIDs once they registered.
    pub async fn register(&self, hosts: &[usize]) -> anyhow::Result<Vec<String>> {
        let client = Client::try_from(self.site.admin.clone())?;
        let mut uids = Vec::new();
        for i in hosts {
            uids.push(self.register_host(&client, self.sim_host(*i)).await?);
        }
        Ok(uids)
    }

    /// Starts the agent of `host` (one of this scenario's or another) and returns its ByoHost's
    /// UID once it registered.
    pub async fn register_host(&self, client: &Client, host: SimHost) -> anyhow::Result<String> {
        self.start_agents().await?;
        self.add_host(host.clone());
        if let Some(running) = self.running.lock().await.as_ref() {
            running.register(&host).await?;
        }
        let namespace = self.config().byoh_namespace.clone();
        let registered = capi::get(client, Kind::ByoHost, &namespace, &host.hostname)
            .await?
            .ok_or_else(|| anyhow::anyhow!("host {} registered no ByoHost", host.id))?;
        Ok(registered["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }
}
