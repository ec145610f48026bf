//! Benchmark: how provisioning time scales with the number of clusters requested at once.
//! One run provisions one cluster, then N clusters in one request, on the real control plane
//! with the simulator (no artificial delays), and prints the measured times and their ratios.

use std::time::{Duration, Instant};

use clap::Parser;
use demo::{World, WorldOptions};
use kube::Api;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};
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
        .map(|i| json!({"id": format!("h{i}"), "hostname": format!("node{i}"), "address": format!("10.20.{}.{}", i / 200, i % 200 + 1)}))
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
    Ok(())
}
