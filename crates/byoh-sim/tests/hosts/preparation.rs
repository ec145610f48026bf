//! Host preparation, as the Job controller, kubelet and Ansible would run it: a Job waits for
//! what it mounts, completes or fails with the status Kubernetes 1.36 requires, and the agents
//! of the hosts it prepared register their ByoHosts (as their own identity, which BYOH's
//! ByoHost webhook admits).

use crate::common::{TIMEOUT, World, host_preparation, true_conditions, view};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;
use testcluster::wait_for;

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
    let _sim = world.start(config)?;
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-both",
        &[&world.hosts[0], &world.hosts[1]],
        &jobs_namespace,
    ) {
        crate::common::apply(&world.client, &object).await?;
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
    let _sim = world.start(config)?;
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-fails",
        &[&world.hosts[0], &world.hosts[1]],
        &jobs_namespace,
    ) {
        crate::common::apply(&world.client, &object).await?;
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
    let _sim = world.start(config)?;
    let [inventory, mut waiting] = host_preparation(
        &jobs_namespace,
        "hostprep-waits",
        &[&world.hosts[0]],
        &jobs_namespace,
    );
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
        crate::common::apply(&world.client, &object).await?;
    }
    // A Job created after it, with nothing missing, runs to completion meanwhile.
    for object in host_preparation(
        &jobs_namespace,
        "hostprep-runs",
        &[&world.hosts[1]],
        &jobs_namespace,
    ) {
        crate::common::apply(&world.client, &object).await?;
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
