//! The simulator against a real control plane: the objects the O2IMS operator creates become a
//! cluster the operator's status mapping calls fulfilled; hosts are claimed, waited for,
//! released; rollouts, scale-in, deletion, host preparation and injected faults.

mod common;

use std::cell::Cell;
use std::cmp::Reverse;

use common::{
    TIMEOUT, VERSION, World, host_preparation, is_free, machine_of, names, true_conditions, view,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use lcm_core::capi::{DELETE_MACHINE_ANNOTATION, Kind};
use lcm_core::crd::ResourceProvisioningPhase;
use lcm_core::status::provisioning::host_phase;
use serde_json::{Value, json};
use testcluster::{TestCluster, wait_for};

#[tokio::test]
async fn provisions_the_operators_objects_into_a_fulfilled_cluster() -> anyhow::Result<()> {
    let world = World::new("fulfil", 2).await?;
    let _sim = world.start(world.config());
    world
        .apply_cluster(&[world.id(0)], &[world.id(1)], VERSION)
        .await?;

    let progress = world.wait_for_state("fulfilled").await?;
    assert_eq!(progress.message, "control plane and all workers are Ready");

    let cluster = world
        .get(Kind::Cluster, &world.cluster)
        .await?
        .expect("Cluster");
    assert_eq!(cluster["status"]["phase"], "Provisioned");
    assert_eq!(
        cluster["metadata"]["finalizers"],
        json!(["cluster.cluster.x-k8s.io"])
    );
    let kcp_name = world.control_plane();
    let kcp = world
        .get(Kind::KubeadmControlPlane, &kcp_name)
        .await?
        .expect("KubeadmControlPlane");
    assert_eq!(kcp["status"]["version"], VERSION);
    assert_eq!(kcp["status"]["unavailableReplicas"], 0);
    let workers = world
        .get(Kind::MachineDeployment, &format!("{}-md-0", world.cluster))
        .await?
        .expect("MachineDeployment");
    assert_eq!(workers["status"]["phase"], "Running");
    assert_eq!(workers["status"]["availableReplicas"], 1);

    // The workload kubeconfig, owned by the control plane.
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), &world.namespace());
    let kubeconfig = secrets
        .get(&format!("{}-kubeconfig", world.cluster))
        .await?;
    assert_eq!(kubeconfig.type_.as_deref(), Some("cluster.x-k8s.io/secret"));
    assert_eq!(
        kubeconfig.metadata.labels.unwrap_or_default()["cluster.x-k8s.io/cluster-name"],
        world.cluster
    );
    assert_eq!(
        kubeconfig.metadata.owner_references.unwrap_or_default()[0].name,
        kcp_name
    );
    let value = kubeconfig.data.unwrap_or_default()["value"].0.clone();
    assert!(String::from_utf8(value)?.contains("server: https://10.10.0.100:6443"));

    // Every host is claimed by its machine, bootstrapped, and the machine runs on it.
    for n in 0..2 {
        let host = world.host(n).await?.expect("ByoHost");
        assert_eq!(host["status"]["hostinfo"]["osimage"], "Ubuntu 22.04.4 LTS");
        assert_eq!(
            host["status"]["network"][0]["ipAddrs"],
            json!([format!("10.10.0.{}/24", n + 1)])
        );
        assert_eq!(
            host_phase(Some(&view(&host)), &world.namespace(), &world.cluster),
            ResourceProvisioningPhase::Provisioned
        );
        let machine_name = machine_of(&host).expect("machineRef");
        assert_eq!(
            host["metadata"]["labels"]["byoh.infrastructure.cluster.x-k8s.io/byomachine-name"],
            format!("{}.{machine_name}", world.namespace())
        );
        assert_eq!(
            host["spec"]["bootstrapSecret"]["name"],
            machine_name.as_str()
        );
        assert_eq!(
            host["metadata"]["annotations"]["byoh.infrastructure.cluster.x-k8s.io/endpointip"],
            common::ENDPOINT
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
        assert_eq!(machine["spec"]["version"], VERSION);
        let byo_machine = world
            .get(Kind::ByoMachine, &machine_name)
            .await?
            .expect("ByoMachine");
        let provider_id = byo_machine["spec"]["providerID"]
            .as_str()
            .unwrap_or_default();
        assert!(
            provider_id.starts_with(&format!("byoh://{}/", world.hosts[n].hostname)),
            "{provider_id}"
        );
        assert_eq!(machine["spec"]["providerID"], provider_id);
        assert_eq!(byo_machine["status"]["ready"], true);
        assert_eq!(
            byo_machine["metadata"]["ownerReferences"][0]["name"],
            machine_name.as_str()
        );
    }
    world.cleanup().await
}

/// As Cluster API's and BYOH's controllers read their informer caches, the simulator reads its
/// watches: while a cluster provisions, it lists each kind once (starting its watch) and gets
/// nothing. On a control plane of its own, where only this test reads besides: it polls the
/// cluster's progress (LISTs of Machines and ByoMachines; GETs of the Cluster, control plane and
/// MachineDeployment, which the garbage collector may also get as owners, as Machines).
#[tokio::test]
async fn a_cluster_provisions_with_every_read_from_a_watch() -> anyhow::Result<()> {
    let control_plane = TestCluster::start_new().await?;
    let world = World::on(&control_plane, "watched", 3).await?;
    let before = testcluster::requests(&world.client).await?;
    let _sim = world.start(world.config());
    world
        .apply_cluster(&[world.id(0)], &[world.id(1), world.id(2)], VERSION)
        .await?;
    let polls = Cell::new(0.0);
    wait_for("the cluster fulfilled", TIMEOUT, || async {
        polls.set(polls.get() + 1.0);
        let progress = world.progress().await?;
        Ok((progress.state.as_str() == "fulfilled").then_some(()))
    })
    .await?;

    let after = testcluster::requests(&world.client).await?;
    let served = |request: &String| after[request] - before.get(request).copied().unwrap_or(0.0);
    let hosts = world.hosts.len() as f64;
    let allowed = |verb: &str, resource: &str| match (verb, resource) {
        ("GET", "clusters" | "kubeadmcontrolplanes" | "machinedeployments" | "machines") => None,
        // Each host's agent reads its bootstrap data once.
        ("GET", "secrets") => Some(hosts),
        ("GET", _) => Some(0.0),
        ("LIST", "machines" | "byomachines" | "byohosts") => Some(polls.get() + 1.0),
        ("LIST", _) => Some(1.0),
        _ => None,
    };
    let read = [
        "clusters",
        "kubeadmcontrolplanes",
        "machinedeployments",
        "machines",
        "kubeadmconfigs",
        "kubeadmconfigtemplates",
        "byoclusters",
        "byomachinetemplates",
        "byomachines",
        "byohosts",
        "bootstrapkubeconfigs",
        "jobs",
        "secrets",
        "configmaps",
    ];
    let excess: Vec<(&String, f64)> = after
        .keys()
        .filter_map(|request| {
            let (verb, resource) = request.split_once(' ')?;
            let resource = resource.strip_suffix('/')?;
            let limit = allowed(verb, resource).filter(|_| read.contains(&resource))?;
            (served(request) > limit).then(|| (request, served(request)))
        })
        .collect();
    assert_eq!(excess, [], "reads beyond the watches and this test's polls");
    world.cleanup().await
}

#[tokio::test]
async fn a_cluster_applied_after_its_machine_deployment_still_gets_its_workers()
-> anyhow::Result<()> {
    let world = World::new("order", 2).await?;
    let _sim = world.start(world.config());
    let objects = world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?;
    let (cluster, rest): (Vec<Value>, Vec<Value>) =
        objects.into_iter().partition(|o| o["kind"] == "Cluster");
    world.apply_all(&rest).await?;
    // The simulator has seen them: the control plane reports itself, with no Cluster yet.
    let control_plane = world.control_plane();
    wait_for("the control plane's first status", TIMEOUT, || async {
        let kcp = world.get(Kind::KubeadmControlPlane, &control_plane).await?;
        Ok(kcp.filter(|kcp| !kcp["status"].is_null()))
    })
    .await?;
    world.apply_all(&cluster).await?;
    world.wait_for_state("fulfilled").await?;
    world.cleanup().await
}

#[tokio::test]
async fn a_machine_without_a_free_host_waits_until_one_registers() -> anyhow::Result<()> {
    let world = World::new("wait", 2).await?;
    // Only the control-plane host is there; the worker's host is prepared later.
    let config = byoh_sim::SimConfig {
        register_inventory_hosts: false,
        preregistered: [world.id(0)].into(),
        ..world.config()
    };
    let _sim = world.start(config);
    world
        .apply_cluster(&[world.id(0)], &[world.id(1)], VERSION)
        .await?;

    let waiting = wait_for("a worker waiting for a host", TIMEOUT, || async {
        let progress = world.progress().await?;
        let workers = &progress.conditions[1];
        Ok((workers.reason == "WaitingForHosts").then_some(progress))
    })
    .await?;
    assert_eq!(waiting.state.as_str(), "progressing");
    let byo_machines = world.list(Kind::ByoMachine).await?;
    let worker = byo_machines
        .iter()
        .find(|m| m["metadata"]["labels"]["cluster.x-k8s.io/control-plane"].is_null())
        .expect("the worker's ByoMachine");
    let condition = &worker["status"]["conditions"][0];
    assert_eq!(
        (
            &condition["type"],
            &condition["status"],
            &condition["reason"],
            &condition["severity"]
        ),
        (
            &json!("BYOHostReady"),
            &json!("False"),
            &json!("BYOHostsUnavailable"),
            &json!("Info")
        )
    );

    // The host gets prepared and registers; the waiting machine claims it.
    for object in host_preparation(
        &world.namespace(),
        "hostprep-late",
        &[&world.hosts[1]],
        world.hosts_namespace.name(),
    )? {
        common::apply(&world.client, &object).await?;
    }
    world.wait_for_state("fulfilled").await?;
    world.cleanup().await
}

#[tokio::test]
async fn scale_in_removes_the_marked_machine_and_releases_its_host() -> anyhow::Result<()> {
    let world = World::new("scalein", 3).await?;
    let _sim = world.start(world.config());
    world
        .apply_cluster(&[world.id(0)], &[world.id(1), world.id(2)], VERSION)
        .await?;
    world.wait_for_state("fulfilled").await?;

    // Mark the worker the default order (newest first) would keep.
    let mut workers: Vec<_> = world
        .list(Kind::Machine)
        .await?
        .into_iter()
        .filter(|m| m["metadata"]["labels"]["cluster.x-k8s.io/deployment-name"].is_string())
        .collect();
    workers.sort_by_key(|m| {
        (
            Reverse(
                m["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            m["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    let [default_victim, marked] = &names(&workers)[..] else {
        anyhow::bail!("expected two workers, got {}", workers.len());
    };
    let mut removed = None;
    for n in [1, 2] {
        let host = world.host(n).await?.expect("ByoHost");
        if machine_of(&host).as_deref() == Some(marked) {
            removed = Some(n);
        }
    }
    let removed = removed.expect("a host holds the marked machine");
    let kept = 3 - removed;
    world
        .api(Kind::Machine)
        .patch(
            marked,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {DELETE_MACHINE_ANNOTATION: "true"}}}),
            ),
        )
        .await?;
    world
        .apply_cluster(&[world.id(0)], &[world.id(kept)], VERSION)
        .await?;

    world.wait_for_host(removed, "released", is_free).await?;
    world.wait_for_state("fulfilled").await?;
    let kept_host = world.host(kept).await?.expect("ByoHost");
    assert_eq!(
        machine_of(&kept_host).as_deref(),
        Some(default_victim.as_str())
    );
    let machines = names(&world.list(Kind::Machine).await?);
    assert!(!machines.contains(marked), "{machines:?}");
    assert_eq!(machines.len(), 2);
    world.cleanup().await
}

#[tokio::test]
async fn an_upgrade_rolls_every_machine_to_the_new_version() -> anyhow::Result<()> {
    const NEW: &str = "v1.33.5";
    let world = World::new("upgrade", 4).await?;
    let _sim = world.start(world.config());
    let control_plane = [world.id(0), world.id(1), world.id(2)];
    world
        .apply_cluster(&control_plane, &[world.id(3)], VERSION)
        .await?;
    world.wait_for_state("fulfilled").await?;
    let before = names(&world.list(Kind::Machine).await?);

    world
        .apply_cluster(&control_plane, &[world.id(3)], NEW)
        .await?;
    let most_control_plane_machines = Cell::new(0);
    wait_for("every machine at the new version", TIMEOUT, || async {
        let machines = world.list(Kind::Machine).await?;
        let control_plane = machines
            .iter()
            .filter(|m| m["metadata"]["labels"]["cluster.x-k8s.io/control-plane"].is_string())
            .count();
        most_control_plane_machines.set(most_control_plane_machines.get().max(control_plane));
        let progress = world.progress().await?;
        let all_new = machines.iter().all(|m| m["spec"]["version"] == NEW);
        Ok((all_new && progress.state.as_str() == "fulfilled").then_some(()))
    })
    .await?;
    // maxSurge 0: a control-plane machine goes before its successor comes.
    assert!(
        most_control_plane_machines.get() <= 3,
        "{most_control_plane_machines:?}"
    );
    let kcp = world
        .get(Kind::KubeadmControlPlane, &world.control_plane())
        .await?
        .expect("KubeadmControlPlane");
    assert_eq!(kcp["status"]["version"], NEW);
    assert_eq!(kcp["status"]["updatedReplicas"], 3);
    let after = names(&world.list(Kind::Machine).await?);
    assert!(
        after.iter().all(|m| !before.contains(m)),
        "{before:?} -> {after:?}"
    );
    for n in 0..4 {
        let host = world.host(n).await?.expect("ByoHost");
        assert_eq!(
            host["metadata"]["annotations"]["byoh.infrastructure.cluster.x-k8s.io/k8sversion"],
            NEW
        );
    }
    // The bootstraps installed the new packages: every Node runs the new kubelet.
    for machine in world.list(Kind::Machine).await? {
        assert_eq!(
            machine["status"]["nodeInfo"]["kubeletVersion"], NEW,
            "{machine}"
        );
    }
    world.cleanup().await
}

#[tokio::test]
async fn an_infrastructure_machine_left_without_its_machine_is_deleted() -> anyhow::Result<()> {
    let world = World::new("orphan", 2).await?;
    let _sim = world.start(world.config());
    world
        .apply_cluster(&[world.id(0)], &[world.id(1)], VERSION)
        .await?;
    world.wait_for_state("fulfilled").await?;
    let before = names(&world.list(Kind::ByoMachine).await?);
    // As a simulator stopped between creating a ByoMachine and its Machine leaves it.
    let kcp = world
        .get(Kind::KubeadmControlPlane, &world.control_plane())
        .await?
        .expect("KubeadmControlPlane");
    let orphan = json!({
        "apiVersion": Kind::ByoMachine.api_version(), "kind": "ByoMachine",
        "metadata": {"name": "left-behind", "namespace": world.namespace(),
            "labels": {lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: world.cluster},
            "ownerReferences": [{"apiVersion": kcp["apiVersion"], "kind": kcp["kind"],
                "name": kcp["metadata"]["name"], "uid": kcp["metadata"]["uid"], "controller": true}]},
        "spec": {"selector": {"matchLabels": {"host-id": "nowhere"}}},
    });
    common::apply(&world.client, &orphan).await?;
    wait_for("the orphan to be deleted", TIMEOUT, || async {
        Ok(world
            .get(Kind::ByoMachine, "left-behind")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert_eq!(names(&world.list(Kind::ByoMachine).await?), before);
    world.cleanup().await
}

#[tokio::test]
async fn nodes_without_a_cni_stay_not_ready_until_its_manifest_exists() -> anyhow::Result<()> {
    let world = World::new("nocni", 2).await?;
    let _sim = world.start(world.config());
    let objects = world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?;
    // The ClusterResourceSet names a ConfigMap that is not there yet (the operator's
    // CreatedWithoutCni).
    let (manifest, rest): (Vec<Value>, Vec<Value>) =
        objects.into_iter().partition(|o| o["kind"] == "ConfigMap");
    world.apply_all(&rest).await?;
    let kcp_name = world.control_plane();
    let kcp = wait_for("kubeadm init, with no Ready node", TIMEOUT, || async {
        let machines = world.list(Kind::Machine).await?;
        let joined =
            machines.len() == 2 && machines.iter().all(|m| m["status"]["phase"] == "Running");
        let kcp = world.get(Kind::KubeadmControlPlane, &kcp_name).await?;
        Ok(kcp.filter(|k| joined && k["status"]["initialized"] == true))
    })
    .await?;
    assert_eq!(kcp["status"]["readyReplicas"], 0, "{kcp}");
    assert_eq!(world.progress().await?.state.as_str(), "progressing");

    world.apply_all(&manifest).await?;
    world.wait_for_state("fulfilled").await?;
    world.cleanup().await
}

#[tokio::test]
async fn a_bootstrap_change_rolls_the_control_plane_and_a_drain_timeout_rolls_nothing()
-> anyhow::Result<()> {
    let world = World::new("respec", 4).await?;
    let _sim = world.start(world.config());
    let control_plane = [world.id(0), world.id(1), world.id(2)];
    let objects = world.cluster_objects(&control_plane, &[world.id(3)], VERSION)?;
    world.apply_all(&objects).await?;
    world.wait_for_state("fulfilled").await?;
    let before = names(&world.list(Kind::Machine).await?);

    // Changed in place: no machine is replaced.
    let mut generated = lcm_core::capi::Generated {
        namespace: world.namespace(),
        objects: objects.clone(),
    };
    lcm_core::capi::drain_within(&mut generated, std::time::Duration::from_secs(60));
    world.apply_all(&generated.objects).await?;
    world.wait_for_state("fulfilled").await?;
    assert_eq!(names(&world.list(Kind::Machine).await?), before);

    // Another bootstrap at the same version: every control-plane machine is replaced.
    for object in generated
        .objects
        .iter_mut()
        .filter(|o| o["kind"] == "KubeadmControlPlane")
    {
        let commands = object["spec"]["kubeadmConfigSpec"]["preKubeadmCommands"]
            .as_array_mut()
            .expect("commands");
        commands.push(json!("echo another bootstrap"));
    }
    world.apply_all(&generated.objects).await?;
    wait_for("the control plane rolled", TIMEOUT, || async {
        let machines = world.list(Kind::Machine).await?;
        let control_plane: Vec<&Value> = machines
            .iter()
            .filter(|m| m["metadata"]["labels"]["cluster.x-k8s.io/control-plane"].is_string())
            .collect();
        let replaced = control_plane.len() == 3
            && control_plane.iter().all(|m| {
                !before.contains(
                    &m["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            });
        let fulfilled = world.progress().await?.state.as_str() == "fulfilled";
        Ok((replaced && fulfilled).then_some(()))
    })
    .await?;
    let worker = world
        .list(Kind::Machine)
        .await?
        .into_iter()
        .find(|m| m["metadata"]["labels"]["cluster.x-k8s.io/deployment-name"].is_string())
        .expect("worker");
    assert!(
        before.contains(&names(&[worker])[0]),
        "the workers did not roll"
    );
    world.cleanup().await
}

#[tokio::test]
async fn an_upgrade_that_installs_no_packages_leaves_the_nodes_at_the_old_kubelet()
-> anyhow::Result<()> {
    const NEW: &str = "v1.33.5";
    let world = World::new("nopkgs", 4).await?;
    let _sim = world.start(world.config());
    let control_plane = [world.id(0), world.id(1), world.id(2)];
    world
        .apply_cluster(&control_plane, &[world.id(3)], VERSION)
        .await?;
    world.wait_for_state("fulfilled").await?;
    let mut objects = world.cluster_objects(&control_plane, &[world.id(3)], NEW)?;
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
        "every machine asked for the new version",
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
        progress.message.contains("runs kubelet v1.32.9"),
        "{}",
        progress.message
    );
    world.cleanup().await
}

#[tokio::test]
async fn deleting_the_cluster_releases_every_host() -> anyhow::Result<()> {
    let world = World::new("delete", 2).await?;
    let _sim = world.start(world.config());
    world
        .apply_cluster(&[world.id(0)], &[world.id(1)], VERSION)
        .await?;
    world.wait_for_state("fulfilled").await?;

    world
        .api(Kind::Cluster)
        .delete(&world.cluster, &DeleteParams::background())
        .await?;
    wait_for("the Cluster to go", TIMEOUT, || async {
        Ok(world
            .get(Kind::Cluster, &world.cluster)
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(world.list(Kind::Machine).await?.is_empty());
    assert!(world.list(Kind::ByoMachine).await?.is_empty());
    let kcp = world
        .get(Kind::KubeadmControlPlane, &world.control_plane())
        .await?;
    assert!(kcp.is_none());
    // BYOH lets a ByoMachine go once its host is marked for cleanup, not once it is clean:
    // the agents release the hosts, maybe after the Cluster went.
    for n in 0..2 {
        world.wait_for_host(n, "released", is_free).await?;
    }
    world.cleanup().await
}

#[tokio::test]
async fn a_host_failing_to_bootstrap_shows_it_only_on_its_byo_host_and_is_retried()
-> anyhow::Result<()> {
    let world = World::new("bootfail", 2).await?;
    let mut config = world.config();
    config.faults.fail_bootstrap = [world.id(1)].into();
    let _sim = world.start(config);
    world
        .apply_cluster(&[world.id(0)], &[world.id(1)], VERSION)
        .await?;

    let failed = |h: &Value| view(h).bootstrap_failed();
    let host = world
        .wait_for_host(1, "failing to bootstrap", failed)
        .await?;
    // Retried: the agent fails again and again, with a Warning Event each time.
    let warnings = wait_for("a retried bootstrap", TIMEOUT, || async {
        let count = world.events(1, "BootstrapK8sNodeFailed").await?;
        Ok((count >= 2).then_some(count))
    })
    .await?;
    assert!(warnings >= 2);
    let machine = machine_of(&host).expect("machineRef");
    let machine = world.get(Kind::Machine, &machine).await?.expect("Machine");
    assert_eq!(machine["status"]["phase"], "Provisioning", "{machine}");
    assert!(machine["status"]["failureReason"].is_null(), "{machine}");
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

/// Scales the world's one worker (host 1) in and out again, onto the same host.
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
    world.apply_all(objects).await?;
    world.wait_for_state("fulfilled").await?;
    Ok(())
}

/// Scales the world's one worker (host 1, whose node a PodDisruptionBudget protects) in and
/// waits until its host is released.
async fn scale_in_a_worker_whose_drain_is_blocked(
    world: &World,
    objects: &[Value],
) -> anyhow::Result<()> {
    world.apply_all(objects).await?;
    world.wait_for_state("fulfilled").await?;
    for object in objects.iter().filter(|o| o["kind"] == "MachineDeployment") {
        let mut scaled_in = object.clone();
        scaled_in["spec"]["replicas"] = json!(0);
        common::apply(&world.client, &scaled_in).await?;
    }
    wait_for("the worker's drain to be blocked", TIMEOUT, || async {
        let machines = world.list(Kind::Machine).await?;
        Ok(machines.into_iter().find(|m| {
            m["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "DrainingSucceeded" && c["reason"] == "Draining")
            })
        }))
    })
    .await?;
    // Cluster API counts the draining machine in status.replicas, above spec.replicas.
    let md = world
        .get(Kind::MachineDeployment, &format!("{}-md-0", world.cluster))
        .await?
        .expect("MachineDeployment");
    assert_eq!(
        (&md["spec"]["replicas"], &md["status"]["replicas"]),
        (&json!(0), &json!(1))
    );
    let progress = world.progress().await?;
    assert!(
        progress.message.contains("removing 1 machine(s)"),
        "{}",
        progress.message
    );
    world.wait_for_host(1, "released", is_free).await?;
    Ok(())
}

#[tokio::test]
async fn a_drain_a_pod_disruption_budget_blocks_ends_at_the_generated_timeout() -> anyhow::Result<()>
{
    let world = World::new("drain", 2).await?;
    let mut config = world.config();
    config.faults.pdb_blocks_drain = [world.id(1)].into();
    let _sim = world.start(config);
    let mut generated = lcm_core::capi::Generated {
        namespace: world.namespace(),
        objects: world.cluster_objects(&[world.id(0)], &[world.id(1)], VERSION)?,
    };
    lcm_core::capi::drain_within(&mut generated, std::time::Duration::from_secs(3));
    scale_in_a_worker_whose_drain_is_blocked(&world, &generated.objects).await?;
    assert_eq!(world.list(Kind::Machine).await?.len(), 1);
    world.cleanup().await
}

#[tokio::test]
async fn a_released_host_is_not_reset_so_a_bootstrap_without_a_reset_fails_there_once()
-> anyhow::Result<()> {
    let world = World::new("dirty", 2).await?;
    let _sim = world.start(world.config());
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
    let _sim = world.start(world.config());
    // Before 1.29, so that only the reset tells this bootstrap from one that fails.
    let objects = world.cluster_objects(&[world.id(0)], &[world.id(1)], "v1.28.15")?;
    reuse_the_worker_host(&world, &objects).await?;
    assert_eq!(world.events(1, "BootstrapK8sNodeFailed").await?, 0);
    assert!(world.events(1, "BootstrapK8sNodeSucceeded").await? >= 2);
    world.cleanup().await
}

#[tokio::test]
async fn a_host_preparation_job_completes_and_its_hosts_register() -> anyhow::Result<()> {
    let world = World::new("hostprep", 2).await?;
    // The Job runs in the operator's namespace, played here by the hosts' namespace.
    let jobs_namespace = world.hosts_namespace.name().to_string();
    let mut config = world.config();
    config.namespace = Some(jobs_namespace.clone());
    config.register_inventory_hosts = false;
    // Sorts first, so its agent was skipped by the time the other host registered.
    config.faults.never_register = [world.id(0)].into();
    let _sim = world.start(config);
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-both",
        &[&world.hosts[0], &world.hosts[1]],
        &jobs_namespace,
    )? {
        common::apply(&world.client, &object).await?;
    }

    let jobs: Api<Job> = Api::namespaced(world.client.clone(), &jobs_namespace);
    let job = wait_for("the Job to complete", TIMEOUT, || async {
        let job = serde_json::to_value(jobs.get("hostprep-both").await?)?;
        Ok(true_conditions(&job)
            .contains(&"Complete".to_string())
            .then_some(job))
    })
    .await?;
    assert_eq!(true_conditions(&job), ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert!(job["status"]["startTime"].is_string() && job["status"]["completionTime"].is_string());
    // `active: 0` is omitted, as the Job controller writes it.
    assert!(job["status"]["active"].as_i64().unwrap_or(0) == 0, "{job}");

    // The agent reports its host's info and network right after registering.
    let host = world
        .wait_for_host(1, "registered, described and waiting for a machine", |h| {
            view(h).bootstrap_reason.as_deref() == Some("WaitingForMachineRefToBeAssigned")
                && !h["status"]["hostinfo"].is_null()
        })
        .await?;
    assert_eq!(host["metadata"]["labels"]["host-id"], world.id(1));
    assert_eq!(host["status"]["conditions"][0]["severity"], "Info");
    assert_eq!(host["status"]["hostinfo"]["architecture"], "amd64");
    assert_eq!(host["status"]["network"][0]["isDefault"], true);
    // The faulty agent never registered its host.
    assert!(world.host(0).await?.is_none());
    world.cleanup().await
}

#[tokio::test]
async fn a_job_preparing_a_failing_host_fails() -> anyhow::Result<()> {
    let world = World::new("jobfail", 2).await?;
    let jobs_namespace = world.hosts_namespace.name().to_string();
    let mut config = world.config();
    config.namespace = Some(jobs_namespace.clone());
    config.register_inventory_hosts = false;
    config.faults.fail_job_for = [world.id(1)].into();
    let _sim = world.start(config);
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-fails",
        &[&world.hosts[0], &world.hosts[1]],
        &jobs_namespace,
    )? {
        common::apply(&world.client, &object).await?;
    }

    let jobs: Api<Job> = Api::namespaced(world.client.clone(), &jobs_namespace);
    let job = wait_for("the Job to fail", TIMEOUT, || async {
        let job = serde_json::to_value(jobs.get("hostprep-fails").await?)?;
        Ok(true_conditions(&job)
            .contains(&"Failed".to_string())
            .then_some(job))
    })
    .await?;
    assert_eq!(true_conditions(&job), ["FailureTarget", "Failed"]);
    let failed = &job["status"]["conditions"][1];
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(job["status"]["failed"], 2);
    // A failed preparation registers nothing (hosts register right after success).
    assert!(world.host(0).await?.is_none() && world.host(1).await?.is_none());
    world.cleanup().await
}

#[tokio::test]
async fn a_job_waits_for_the_secret_it_mounts() -> anyhow::Result<()> {
    let world = World::new("jobwait", 2).await?;
    let jobs_namespace = world.hosts_namespace.name().to_string();
    let mut config = world.config();
    config.namespace = Some(jobs_namespace.clone());
    config.register_inventory_hosts = false;
    let _sim = world.start(config);
    let [inventory, mut waiting] = host_preparation(
        &jobs_namespace,
        "hostprep-waits",
        &[&world.hosts[0]],
        &jobs_namespace,
    )?;
    let pod = &mut waiting["spec"]["template"]["spec"];
    pod["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({"name": "bootstrap", "secret": {"secretName": "bootstrap-later"}}));
    pod["containers"][0]["volumeMounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({"name": "bootstrap", "mountPath": "/etc/lcm/bootstrap"}));
    for object in [inventory, waiting] {
        common::apply(&world.client, &object).await?;
    }
    // A Job created after it, with nothing missing, runs to completion meanwhile.
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-runs",
        &[&world.hosts[1]],
        &jobs_namespace,
    )? {
        common::apply(&world.client, &object).await?;
    }
    let jobs: Api<Job> = Api::namespaced(world.client.clone(), &jobs_namespace);
    let complete = |name: &'static str| {
        let jobs = jobs.clone();
        async move {
            wait_for(&format!("{name} to complete"), TIMEOUT, || async {
                let job = serde_json::to_value(jobs.get(name).await?)?;
                Ok(true_conditions(&job)
                    .contains(&"Complete".to_string())
                    .then_some(job))
            })
            .await
        }
    };
    complete("hostprep-runs").await?;
    let waiting = jobs.get("hostprep-waits").await?;
    assert!(
        waiting.status.and_then(|s| s.start_time).is_none(),
        "its pod has not started without the Secret"
    );

    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "bootstrap-later"}, "stringData": {"bootstrap-kubeconfig": "x"},
    }))?;
    Api::<Secret>::namespaced(world.client.clone(), &jobs_namespace)
        .create(&Default::default(), &secret)
        .await?;
    complete("hostprep-waits").await?;
    world.cleanup().await
}

#[tokio::test]
async fn bootstrap_kubeconfigs_are_issued_for_their_api_server_and_ca() -> anyhow::Result<()> {
    let world = World::new("bootstrap", 1).await?;
    let namespace = world.hosts_namespace.name().to_string();
    let mut config = world.config();
    config.namespace = Some(namespace.clone());
    let _sim = world.start(config);
    let asked = json!({"apiVersion": Kind::BootstrapKubeconfig.api_version(), "kind": "BootstrapKubeconfig",
        "metadata": {"name": "for-hosts", "namespace": namespace},
        "spec": {"apiserver": "https://192.0.2.1:6443", "certificate-authority-data": "Q0EK"}});
    common::apply(&world.client, &asked).await?;
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        world.client.clone(),
        &namespace,
        &Kind::BootstrapKubeconfig.api_resource(),
    );
    let issued = wait_for("the kubeconfig to be issued", TIMEOUT, || async {
        let object = api.get("for-hosts").await?;
        Ok(object.data["status"]["bootstrapKubeconfigData"]
            .as_str()
            .map(String::from))
    })
    .await?;
    let kubeconfig: serde_json::Value = lcm_core::yaml::from_str(&issued)?;
    let cluster = &kubeconfig["clusters"][0]["cluster"];
    assert_eq!(cluster["server"], "https://192.0.2.1:6443");
    assert_eq!(cluster["certificate-authority-data"], "Q0EK");
    assert!(kubeconfig["users"][0]["user"]["token"].is_string());
    world.cleanup().await
}
