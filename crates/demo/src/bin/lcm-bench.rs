//! Benchmark: how provisioning time scales with the number of clusters requested at once, and
//! how fast a status change travels. One run provisions one cluster, then N clusters in one
//! request, on the real control plane with the simulator (no artificial delays), measures how
//! long ProvisioningRequest status changes take to reach the FocomProvisioningRequest, and
//! prints the measured times and their ratios.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use demo::{World, WorldOptions};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::await_condition;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest, ProvisioningRequest};
use serde_json::json;

#[derive(Parser)]
#[command(
    about = "Provisioning time of 1 cluster vs N clusters at once (real control plane, simulated hosts)"
)]
struct Args {
    /// Clusters provisioned together in the second round.
    #[arg(long, default_value_t = 8)]
    clusters: usize,
}

fn inventory(clusters: usize) -> String {
    let hosts: Vec<_> = (1..=2 * clusters)
        .map(|i| json!({"id": format!("h{i}"), "hostname": format!("node{i}"), "address": format!("10.20.{}.{}", i / 200, i % 200 + 1), "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]}))
        .collect();
    let definitions: Vec<_> = (1..=clusters)
        .map(|c| json!({"name": format!("c{c}"), "controlPlaneEndpoint": format!("10.30.0.{c}"),
            "controlPlaneHosts": [format!("h{}", 2 * c - 1)], "workerHosts": [format!("h{}", 2 * c)]}))
        .collect();
    json!({"defaults": {"hostPreparation": "skip", "cni": "none"}, "hosts": hosts, "clusters": definitions}).to_string()
}

async fn provision(world: &World, name: &str, clusters: Vec<String>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let request = json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": name, "namespace": "focom-system"}, "spec": {"clusterNames": clusters}});
    world.apply_manifest(&request.to_string()).await?;
    let api = Api::<FocomProvisioningRequest>::namespaced(world.client()?, "focom-system");
    testcluster::wait_for(
        &format!("{name} to be Synced"),
        Duration::from_secs(600),
        || async {
            let phase = api.get(name).await?.status.and_then(|s| s.phase);
            anyhow::ensure!(phase != Some(FocomPhase::Failed), "{name} failed");
            Ok((phase == Some(FocomPhase::Synced)).then_some(()))
        },
    )
    .await?;
    Ok(started.elapsed())
}

/// Seconds a ProvisioningRequest's status change takes to show in its FocomProvisioningRequest,
/// sorted. The O2IMS operator is stopped first, so the status written here stays as written.
async fn propagation(world: &World, request: &str) -> anyhow::Result<Vec<f64>> {
    world.o2ims.kill().await?;
    let client = world.client()?;
    let requests = Api::<FocomProvisioningRequest>::namespaced(client.clone(), "focom-system");
    let provisioning = requests
        .get(request)
        .await?
        .status
        .and_then(|s| s.remote_name)
        .context("one cluster")?;
    let provisioning_requests = Api::<ProvisioningRequest>::all(client);
    let mut latencies = Vec::new();
    for change in 0..20 {
        let message = format!("benchmark change {change}");
        let status = json!({"status": {"provisioningStatus": {"provisioningState": "fulfilled", "provisioningMessage": message}}});
        let started = Instant::now();
        provisioning_requests
            .patch_status(
                &provisioning,
                &PatchParams::default(),
                &Patch::Merge(status),
            )
            .await?;
        let shows = move |r: Option<&FocomProvisioningRequest>| {
            r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                s.clusters
                    .iter()
                    .any(|c| c.message.as_deref() == Some(message.as_str()))
            })
        };
        tokio::time::timeout(
            Duration::from_secs(10),
            await_condition(requests.clone(), request, shows),
        )
        .await??;
        latencies.push(started.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut options = WorldOptions::from_inventory(&inventory(args.clusters + 1))?;
    options.simulator.register_inventory_hosts = true;
    options.simulator.job_delay = Duration::ZERO;
    options.simulator.bootstrap_delay = Duration::ZERO;
    let world = World::start(options).await?;

    let one = provision(&world, "one", vec!["c1".into()]).await?;
    let names = (2..=args.clusters + 1).map(|c| format!("c{c}")).collect();
    let many = provision(&world, "many", names).await?;

    let latencies = propagation(&world, "one").await?;

    let n = args.clusters as f64;
    println!("1 cluster:   {:>7.2}s", one.as_secs_f64());
    println!("{} clusters: {:>7.2}s", args.clusters, many.as_secs_f64());
    println!(
        "time ratio ({} / 1):        {:.2}",
        args.clusters,
        many.as_secs_f64() / one.as_secs_f64()
    );
    println!(
        "throughput ratio ({} / 1):  {:.2}  (clusters per second, {} at once vs one)",
        args.clusters,
        n * one.as_secs_f64() / many.as_secs_f64(),
        args.clusters
    );
    let (median, max) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    println!(
        "status propagation ProvisioningRequest -> FocomProvisioningRequest: median {:.0} ms, max {:.0} ms ({} changes); max / median {:.1}",
        median * 1000.0,
        max * 1000.0,
        latencies.len(),
        max / median
    );
    Ok(())
}
