//! The real Cluster API v1.10.10 and BYOH v0.5.0 managers on the test control plane
//! (`testcluster up --managers`): two stacks side by side, each manager and the workload-cluster
//! simulator running and ready inside its stack's network namespace, their webhooks answering (KCP's defaulting, BYOH's ByoHost
//! guard), and one cluster reconciled as far as it goes without hosts or a workload cluster: KCP
//! makes the cluster's certificates and a Machine, CABPK its bootstrap data, BYOH claims a host.
//! Stopping a stack leaves no process and no link behind, and so does SIGKILLing its harness.
//!
//! Needs root (a network namespace per stack) and `tools/capi-managers/build.sh`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use testcluster::processes::{alive, descendants, wait_gone};
use testcluster::{TestCluster, crd_dirs, harness_binary, repo_root, wait_for};

const MANAGERS: [&str; 4] = [
    "cluster-api",
    "bootstrap-kubeadm",
    "controlplane-kubeadm",
    "byoh",
];
/// Cluster API's controllers requeue after seconds; a minute covers a loaded 2-core machine.
const RECONCILED: Duration = Duration::from_secs(90);

#[tokio::test]
async fn real_managers_run_side_by_side_serve_webhooks_and_reconcile() -> anyhow::Result<()> {
    // Both at once, as parallel tests start them: BYOH's fixed port 9443 would clash without a
    // namespace per stack.
    let (first, second) = tokio::try_join!(
        TestCluster::start_with_managers(&[]),
        TestCluster::start_with_managers(&[
            "controlplane-kubeadm=--kubeadmcontrolplane-concurrency=20"
        ])
    )?;
    let (first_state, second_state) = (state(&first)?, state(&second)?);
    assert_ne!(first_state["netns"]["pid"], second_state["netns"]["pid"]);
    assert_ne!(
        first_state["netns"]["hostIP"],
        second_state["netns"]["hostIP"]
    );
    let extra = &manager(&second_state, "controlplane-kubeadm")?["args"];
    assert!(
        extra
            .as_array()
            .is_some_and(|args| args.contains(&json!("--kubeadmcontrolplane-concurrency=20"))),
        "--manager-arg reaches its manager: {extra}"
    );

    for (cluster, state) in [(&first, &first_state), (&second, &second_state)] {
        managers_run_ready_in_their_namespace(state).await?;
        kcp_defaulting_webhook_answers(cluster).await?;
        byohost_webhook_guards_writes(cluster).await?;
    }
    one_cluster_reconciles_until_a_host_is_claimed(&first).await?;

    // Dropping a stack closes its harness's stdin: every manager and the namespace go.
    for (cluster, state) in [(first, first_state), (second, second_state)] {
        let pids = stack_pids(&state)?;
        let link = state["netns"]["hostInterface"]
            .as_str()
            .context("hostInterface")?
            .to_string();
        drop(cluster);
        nothing_left(&pids, &link).await?;
    }
    Ok(())
}

/// A harness killed outright cannot clean up: its children die through Pdeathsig, and the
/// kernel removes the namespace, and both ends of the link with it, after its last process.
#[tokio::test]
async fn a_sigkilled_harness_leaves_no_manager_and_no_link() -> anyhow::Result<()> {
    let managers = std::env::var_os("CAPI_MANAGERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools/capi-managers/bin"));
    let mut command = Command::new(harness_binary());
    let workload_clusters = std::env::var_os("WORKLOAD_CLUSTERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools/workload-clusters/bin/workload-clusters"));
    command
        .arg("up")
        .arg("--managers")
        .arg(&managers)
        .arg("--workload-clusters")
        .arg(&workload_clusters);
    for dir in crd_dirs()? {
        command.arg("--crds").arg(dir);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let kubeconfig = PathBuf::from(
        line.split_whitespace()
            .nth(1)
            .with_context(|| format!("no READY line: {line:?}"))?,
    );
    let dir = kubeconfig.parent().context("harness dir")?.to_path_buf();
    let state: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("managers.json"))?)?;
    let mut pids = stack_pids(&state)?;
    let link = state["netns"]["hostInterface"]
        .as_str()
        .context("hostInterface")?
        .to_string();

    // Every process it started: kube-apiserver and kube-controller-manager too, which must be
    // gone before the directory is removed.
    pids.extend(descendants(child.id()));
    child.kill()?; // SIGKILL
    tokio::task::spawn_blocking(move || child.wait()).await??;
    let left = nothing_left(&pids, &link).await;
    // Only the directory stays, as documented for a SIGKILLed harness.
    remove_dir(&dir)?;
    left
}

async fn nothing_left(pids: &[u32], link: &str) -> anyhow::Result<()> {
    wait_gone(
        "the managers and the namespace holder to stop",
        pids,
        Duration::from_secs(60),
    )
    .await?;
    wait_for(
        &format!("link {link} to be removed"),
        Duration::from_secs(30),
        || {
            let gone = !PathBuf::from("/sys/class/net").join(link).exists();
            async move { Ok(gone.then_some(())) }
        },
    )
    .await
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))
}

/// Each manager's process runs in the stack's namespace, and answers its /readyz there.
async fn managers_run_ready_in_their_namespace(state: &Value) -> anyhow::Result<()> {
    let namespace = std::fs::read_link(state["netns"]["path"].as_str().context("netns path")?)?;
    assert_ne!(
        namespace,
        std::fs::read_link("/proc/self/ns/net")?,
        "the managers' namespace is not the test's"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for name in MANAGERS {
        let m = manager(state, name)?;
        let pid = as_pid(&m["pid"])?;
        assert!(alive(pid), "{name} (pid {pid}) runs");
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/net"))?,
            namespace,
            "{name} runs in the stack's network namespace"
        );
        let url = m["healthURL"].as_str().context("healthURL")?;
        let response = http.get(url).send().await?;
        assert!(response.status().is_success(), "{name} {url}: {response:?}");
    }
    // The workload-cluster simulator too, its control API reachable from here.
    let simulator = &state["workloadClusters"];
    let pid = as_pid(&simulator["pid"])?;
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/net"))?,
        namespace,
        "workload-clusters runs in the stack's network namespace"
    );
    let url = format!(
        "{}/v1/clusters",
        simulator["controlURL"].as_str().context("controlURL")?
    );
    let clusters: Value = http
        .get(&url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(clusters, json!({"clusters": []}), "{url}");
    Ok(())
}

/// The pids of the stack's namespace holder, managers and workload-cluster simulator.
fn stack_pids(state: &Value) -> anyhow::Result<Vec<u32>> {
    let mut pids = vec![
        as_pid(&state["netns"]["pid"])?,
        as_pid(&state["workloadClusters"]["pid"])?,
    ];
    for name in MANAGERS {
        pids.push(as_pid(&manager(state, name)?["pid"])?);
    }
    Ok(pids)
}

/// KCP's defaulting webhook fills what a KubeadmControlPlane leaves out.
async fn kcp_defaulting_webhook_answers(cluster: &TestCluster) -> anyhow::Result<()> {
    let ns = cluster.namespace("kcp-defaults").await?;
    let kcps = api(cluster, ns.name(), kcp_resource())?;
    let created = kcps
        .create(&PostParams::default(), &object(kcp("defaults"))?)
        .await?;
    assert_eq!(
        created.data["spec"]["rolloutStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
        "KCP's webhook defaults the rollout strategy"
    );
    assert_eq!(
        created.data["spec"]["kubeadmConfigSpec"]["format"],
        json!("cloud-config")
    );
    ns.cleanup().await
}

/// BYOH's ByoHost webhook, as upstream ships it: the admin may not write a ByoHost; the host's
/// own agent identity (`byoh:host:<name>`) may.
async fn byohost_webhook_guards_writes(cluster: &TestCluster) -> anyhow::Result<()> {
    let ns = cluster.namespace("byohost-guard").await?;
    let host = object(byohost("host-guard", "byohost-guard"))?;
    let as_admin = api(cluster, ns.name(), byohost_resource())?;
    let refused = as_admin
        .create(&PostParams::default(), &host)
        .await
        .expect_err("the admin may not create a ByoHost");
    assert!(
        refused.to_string().contains("not a valid agent username"),
        "refused by BYOH's webhook: {refused}"
    );

    let agent = cluster.impersonating_client("byoh:host:host-guard", &["byoh:hosts"])?;
    let as_agent: Api<DynamicObject> = Api::namespaced_with(agent, ns.name(), &byohost_resource());
    as_agent.create(&PostParams::default(), &host).await?;
    let refused = as_admin
        .patch(
            "host-guard",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "by-admin"}}})),
        )
        .await
        .expect_err("the admin may not update a ByoHost either");
    assert!(refused.to_string().contains("not a valid agent username"));
    ns.cleanup().await
}

/// The smoke run of the managers' notes: Cluster, KubeadmControlPlane, ByoCluster,
/// ByoMachineTemplate and one ByoHost. Nothing plays the host or the workload cluster, so it
/// stops once BYOH has handed the host its bootstrap Secret.
async fn one_cluster_reconciles_until_a_host_is_claimed(
    cluster: &TestCluster,
) -> anyhow::Result<()> {
    let ns = cluster.namespace("smoke").await?;
    // BYOH v0.5.0 claims a matching free ByoHost of any namespace: the selector keeps this
    // cluster to its own host.
    let pool = ns.name().to_string();
    let agent = cluster.impersonating_client("byoh:host:host-smoke", &["byoh:hosts"])?;
    Api::<DynamicObject>::namespaced_with(agent, ns.name(), &byohost_resource())
        .create(
            &PostParams::default(),
            &object(byohost("host-smoke", &pool))?,
        )
        .await?;
    for (resource, body) in [
        (byocluster_resource(), byocluster("smoke")),
        (
            byomachinetemplate_resource(),
            byomachinetemplate("smoke-cp", &pool),
        ),
        (kcp_resource(), kcp("smoke-cp")),
        (cluster_resource(), capi_cluster("smoke", "smoke-cp")),
    ] {
        api(cluster, ns.name(), resource)?
            .create(&PostParams::default(), &object(body)?)
            .await?;
    }

    let secrets: Api<Secret> = Api::namespaced(cluster.admin_client()?, ns.name());
    wait_for("KCP to create the cluster CA Secret", RECONCILED, || {
        let secrets = secrets.clone();
        async move { Ok(secrets.get_opt("smoke-ca").await?.map(|_| ())) }
    })
    .await?;
    let machines = api(cluster, ns.name(), machine_resource())?;
    let machine = wait_for("KCP to create a Machine", RECONCILED, || {
        let machines = machines.clone();
        async move {
            Ok(machines
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .next())
        }
    })
    .await?;
    let machine_name = machine.metadata.name.clone().context("machine name")?;
    let configs = api(cluster, ns.name(), kubeadmconfig_resource())?;
    let data_secret = wait_for("CABPK to write the bootstrap data", RECONCILED, || {
        let configs = configs.clone();
        let name = machine_name.clone();
        async move {
            let config = configs.get_opt(&name).await?;
            Ok(config.and_then(|c| {
                c.data["status"]["dataSecretName"]
                    .as_str()
                    .map(String::from)
            }))
        }
    })
    .await?;
    let bootstrap = secrets.get(&data_secret).await?;
    assert!(
        bootstrap
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key("value")),
        "the bootstrap Secret holds the cloud-config"
    );
    let hosts = api(cluster, ns.name(), byohost_resource())?;
    let host = wait_for("BYOH to claim the ByoHost", RECONCILED, || {
        let hosts = hosts.clone();
        async move {
            let host = hosts.get("host-smoke").await?;
            // BYOH's patch helper writes the spec and the status in two requests.
            let claimed = host.data["spec"]["bootstrapSecret"]["name"].is_string()
                && host.data["status"]["machineRef"]["name"].is_string();
            Ok(claimed.then_some(host))
        }
    })
    .await?;
    assert_eq!(
        host.data["spec"]["bootstrapSecret"]["name"],
        json!(data_secret)
    );
    assert_eq!(
        host.data["status"]["machineRef"]["kind"],
        json!("ByoMachine")
    );
    assert_eq!(
        host.data["status"]["machineRef"]["name"],
        json!(machine_name)
    );
    // Tearing down a cluster whose control plane never came up is Cluster API's business, not
    // this test's: the stack goes with it.
    Ok(())
}

fn state(cluster: &TestCluster) -> anyhow::Result<Value> {
    let path = cluster.managers_file();
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn manager<'a>(state: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    state["managers"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == name))
        .with_context(|| format!("manager {name} in managers.json"))
}

fn as_pid(value: &Value) -> anyhow::Result<u32> {
    Ok(u32::try_from(value.as_u64().context("pid")?)?)
}

fn api(
    cluster: &TestCluster,
    namespace: &str,
    resource: ApiResource,
) -> anyhow::Result<Api<DynamicObject>> {
    Ok(Api::namespaced_with(
        cluster.admin_client()?,
        namespace,
        &resource,
    ))
}

fn object(value: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(value)?)
}

fn resource(group: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, "v1beta1", kind))
}

fn cluster_resource() -> ApiResource {
    resource("cluster.x-k8s.io", "Cluster")
}
fn machine_resource() -> ApiResource {
    resource("cluster.x-k8s.io", "Machine")
}
fn kcp_resource() -> ApiResource {
    resource("controlplane.cluster.x-k8s.io", "KubeadmControlPlane")
}
fn kubeadmconfig_resource() -> ApiResource {
    resource("bootstrap.cluster.x-k8s.io", "KubeadmConfig")
}
fn byocluster_resource() -> ApiResource {
    resource("infrastructure.cluster.x-k8s.io", "ByoCluster")
}
fn byomachinetemplate_resource() -> ApiResource {
    resource("infrastructure.cluster.x-k8s.io", "ByoMachineTemplate")
}
fn byohost_resource() -> ApiResource {
    resource("infrastructure.cluster.x-k8s.io", "ByoHost")
}

fn capi_cluster(name: &str, control_plane: &str) -> Value {
    json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": ["10.244.0.0/16"]}},
            "controlPlaneRef": {"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
                "kind": "KubeadmControlPlane", "name": control_plane},
            "infrastructureRef": {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                "kind": "ByoCluster", "name": name},
        },
    })
}

fn byocluster(name: &str) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoCluster",
        "metadata": {"name": name},
        "spec": {
            // Inside the managers' namespace (AnyIP): refused at once, as nothing serves it yet.
            "controlPlaneEndpoint": {"host": "172.20.0.10", "port": 6443},
            "bundleLookupBaseRegistry": "projects.registry.vmware.com/cluster_api_provider_bringyourownhost",
        },
    })
}

fn byomachinetemplate(name: &str, pool: &str) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoMachineTemplate",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"selector": {"matchLabels": {"pool": pool}}}}},
    })
}

fn byohost(name: &str, pool: &str) -> Value {
    json!({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "ByoHost",
        "metadata": {"name": name, "labels": {"pool": pool}},
        "spec": {},
    })
}

fn kcp(name: &str) -> Value {
    json!({
        "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1", "kind": "KubeadmControlPlane",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "version": "v1.31.0",
            "machineTemplate": {"infrastructureRef": {
                "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                "kind": "ByoMachineTemplate", "name": name}},
            // CABPK writes the first machine's data only from an init configuration.
            "kubeadmConfigSpec": {
                "clusterConfiguration": {},
                "initConfiguration": {"nodeRegistration": {}},
                "joinConfiguration": {"nodeRegistration": {}},
            },
        },
    })
}
