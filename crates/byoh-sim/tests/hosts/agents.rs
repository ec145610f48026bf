//! The simulated hosts with the real Cluster API v1.10.10 and BYOH v0.5.0 managers and the
//! workload-cluster simulator: the objects the O2IMS operator creates become a cluster the
//! operator's status mapping calls fulfilled, on hosts whose agents register, bootstrap,
//! fail and retry, and give hosts back without a reset, as BYOH's agent with
//! `--skip-installation` does.

use crate::common::{TIMEOUT, VERSION, World, is_free, machine_of, view};
use lcm_core::capi::Kind;
use lcm_core::crd::ResourceProvisioningPhase;
use lcm_core::status::provisioning::host_phase;
use serde_json::{Value, json};
use testcluster::wait_for;

#[tokio::test]
async fn the_managers_and_the_agents_provision_the_operators_objects() -> anyhow::Result<()> {
    let world = World::new("fulfil", 2).await?;
    let _sim = world.start(world.config())?;
    world
        .apply_all(&world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?)
        .await?;

    let progress = world.wait_for_state("fulfilled").await?;
    assert_eq!(progress.message, "control plane and all workers are Ready");
    for n in 0..2 {
        let host = world.host(n).await?.expect("ByoHost");
        // As the agent registered it.
        assert_eq!(host["metadata"]["labels"]["host-id"], world.id(n));
        assert_eq!(host["status"]["hostinfo"]["osimage"], "Ubuntu 22.04.4 LTS");
        assert_eq!(
            host["status"]["network"][0]["ipAddrs"],
            json!([format!("10.10.0.{}/24", n + 1)])
        );
        assert_eq!(
            host_phase(Some(&view(&host)), &world.namespace(), &world.cluster),
            ResourceProvisioningPhase::Provisioned
        );
        // BYOH's claim and Cluster API's machine, on the Node the agent's kubeadm made.
        let machine_name = machine_of(&host).expect("machineRef");
        assert_eq!(
            host["spec"]["bootstrapSecret"]["name"],
            machine_name.as_str()
        );
        let machine = world
            .get(Kind::Machine, &machine_name)
            .await?
            .expect("Machine");
        assert_eq!(machine["status"]["phase"], "Running");
        assert_eq!(
            machine["status"]["nodeRef"]["name"],
            host["metadata"]["name"]
        );
        let provider_id = machine["spec"]["providerID"].as_str().unwrap_or_default();
        assert!(
            provider_id.starts_with(&format!("byoh://{}/", world.hosts[n].hostname)),
            "{provider_id}"
        );
    }
    // The workload cluster: both hosts' kubelets run at the machines' version, Ready.
    let nodes = world.workload_nodes().await?;
    let summary: Vec<(Value, Value, Value, Value)> = nodes
        .iter()
        .map(|n| {
            (
                n["name"].clone(),
                n["controlPlane"].clone(),
                n["kubeletVersion"].clone(),
                n["ready"].clone(),
            )
        })
        .collect();
    let expected: Vec<(Value, Value, Value, Value)> = (0..2)
        .map(|n| {
            (
                json!(world.hosts[n].hostname),
                json!(n == 0),
                json!(VERSION),
                json!("True"),
            )
        })
        .collect();
    assert_eq!(summary, expected);
    world.cleanup().await
}

#[tokio::test]
async fn a_host_failing_to_bootstrap_shows_it_only_on_its_byo_host_and_is_retried()
-> anyhow::Result<()> {
    let world = World::new("bootfail", 2).await?;
    let mut config = world.config();
    config.faults.fail_bootstrap = [world.id(1)].into();
    let _sim = world.start(config)?;
    world
        .apply_all(&world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?)
        .await?;

    let failed = |h: &Value| view(h).bootstrap_failed();
    let host = world
        .wait_for_host(1, "failing to bootstrap", failed)
        .await?;
    assert_eq!(
        host["status"]["conditions"][0]["severity"], "Error",
        "{host}"
    );
    // Retried: the agent fails again and again, with a Warning Event and a reset each time.
    wait_for("a retried bootstrap", TIMEOUT, || async {
        let count = world.events(1, "BootstrapK8sNodeFailed").await?;
        Ok((count >= 2).then_some(count))
    })
    .await?;
    assert!(world.events(1, "ResetK8sNodeSucceeded").await? >= 2);
    // Nothing of it reaches the Machine: BYOH sets no failure there.
    let machine = machine_of(&host).expect("machineRef");
    let machine = world.get(Kind::Machine, &machine).await?.expect("Machine");
    assert!(machine["status"]["failureReason"].is_null(), "{machine}");
    assert!(machine["status"]["nodeRef"].is_null(), "{machine}");
    let progress = world.progress().await?;
    assert_eq!(progress.state.as_str(), "progressing");
    assert!(
        progress.message.contains(&world.id(1))
            && progress.message.contains("CloudInitExecutionFailed"),
        "{}",
        progress.message
    );
    assert_eq!(
        host_phase(Some(&view(&host)), &world.namespace(), &world.cluster),
        ResourceProvisioningPhase::Failed
    );
    world.cleanup().await
}

/// Scales the world's one worker (host 1) in, checks its host is given back still running its
/// kubelet, and scales it out again onto the same host.
async fn reuse_the_worker_host(world: &World, objects: &[Value]) -> anyhow::Result<()> {
    world.apply_all(objects).await?;
    world.wait_for_state("fulfilled").await?;
    let mut scaled_in = objects.to_vec();
    for object in scaled_in
        .iter_mut()
        .filter(|o| o["kind"] == "MachineDeployment")
    {
        object["spec"]["replicas"] = json!(0);
    }
    world.apply_all(&scaled_in).await?;
    world.wait_for_host(1, "released", is_free).await?;
    // No kubeadm reset on release: the kubelet runs on, though Cluster API deleted its Node.
    let worker = &world.hosts[1].hostname;
    let nodes = world.workload_nodes().await?;
    assert!(
        nodes
            .iter()
            .any(|n| n["name"] == worker.as_str() && n["running"] == true),
        "{worker} still runs its kubelet: {nodes:?}"
    );
    world.apply_all(objects).await?;
    world.wait_for_state("fulfilled").await?;
    Ok(())
}

#[tokio::test]
async fn a_released_host_is_not_reset_so_a_bootstrap_without_a_reset_fails_there_once()
-> anyhow::Result<()> {
    let world = World::new("dirty", 2).await?;
    let _sim = world.start(world.config())?;
    let mut objects = world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?;
    for object in objects
        .iter_mut()
        .filter(|o| o["kind"] == "KubeadmConfigTemplate")
    {
        object["spec"]["template"]["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("preKubeadmCommands");
    }
    reuse_the_worker_host(&world, &objects).await?;
    // The join found the first node's kubelet still running; the agent reset the host and the
    // retry joined.
    assert!(world.events(1, "BootstrapK8sNodeFailed").await? >= 1);
    assert!(world.events(1, "ResetK8sNodeSucceeded").await? >= 1);
    world.cleanup().await
}

#[tokio::test]
async fn generated_bootstraps_reset_a_reused_host_before_kubeadm() -> anyhow::Result<()> {
    let world = World::new("reuse", 2).await?;
    let _sim = world.start(world.config())?;
    let objects = world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?;
    reuse_the_worker_host(&world, &objects).await?;
    assert_eq!(world.events(1, "BootstrapK8sNodeFailed").await?, 0);
    assert!(world.events(1, "BootstrapK8sNodeSucceeded").await? >= 2);
    world.cleanup().await
}

/// A host's kubelet is what its packages are: a machine asked for a new version joins with the
/// kubelet the host was prepared with unless its bootstrap installs the new packages, and the
/// operator's status mapping says so from the Nodes Cluster API reads.
#[tokio::test]
async fn an_upgrade_that_installs_no_packages_leaves_the_nodes_at_the_old_kubelet()
-> anyhow::Result<()> {
    const NEW: &str = "v1.33.5";
    let world = World::new("nopkgs", 4).await?;
    let _sim = world.start(world.config())?;
    let control_plane = [world.id(0), world.id(1), world.id(2)];
    let workers = [world.id(3)];
    world
        .apply_all(&world.cluster_objects(&control_plane, &workers, VERSION)?)
        .await?;
    world.wait_for_state("fulfilled").await?;
    let mut objects = world.cluster_objects(&control_plane, &workers, NEW)?;
    for object in &mut objects {
        let spec = match object["kind"].as_str() {
            Some("KubeadmControlPlane") => &mut object["spec"]["kubeadmConfigSpec"],
            Some("KubeadmConfigTemplate") => &mut object["spec"]["template"]["spec"],
            _ => continue,
        };
        let commands = spec["preKubeadmCommands"].as_array_mut().expect("commands");
        commands.retain(|c| c != "sh /etc/lcm/install-kubernetes.sh");
    }
    world.apply_all(&objects).await?;
    let progress = wait_for(
        "every machine asked for the new version, running",
        TIMEOUT,
        || async {
            let machines = world.list(Kind::Machine).await?;
            let all_new = machines.len() == 4
                && machines
                    .iter()
                    .all(|m| m["spec"]["version"] == NEW && m["status"]["phase"] == "Running");
            let progress = world.progress().await?;
            Ok(all_new.then_some(progress))
        },
    )
    .await?;
    assert_eq!(progress.state.as_str(), "progressing");
    assert!(
        progress
            .message
            .contains(&format!("runs kubelet {VERSION}")),
        "{}",
        progress.message
    );
    world.cleanup().await
}
