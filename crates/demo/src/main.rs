//! `make demo`: the whole chain on a local control plane, no hardware. Starts the control
//! plane with the real Cluster API and BYOH controllers, both operators, and the simulated hosts
//! and workload clusters, applies a FocomProvisioningRequest, and shows every cluster's
//! progress until all are Synced (exit 0) or one fails (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use demo::{World, WorldOptions};
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};

#[derive(Parser)]
#[command(
    about = "The whole O-RAN cluster lifecycle on a local control plane with the real Cluster API and BYOH controllers, simulated hosts and workload clusters"
)]
struct Args {
    /// The FocomProvisioningRequest to apply.
    #[arg(long, default_value = "examples/focom-all-clusters.yaml")]
    example: PathBuf,
    /// The inventory.
    #[arg(long, default_value = "input.json")]
    inventory: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_seconds: u64,
    /// Keep everything running after the clusters are Synced (also KEEP=1), until Ctrl-C.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // The simulated hosts run in this process: their log on stderr, as RUST_LOG selects it
    // (e.g. RUST_LOG=byoh_sim=info); nothing by default.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let keep = args.keep || std::env::var("KEEP").is_ok_and(|v| !v.is_empty() && v != "0");
    tokio::select! {
        result = run(&args, keep) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: stopping the operators, the simulators, the controllers and the control plane");
            ExitCode::from(130)
        }
    }
}

async fn run(args: &Args, keep: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let manifest = std::fs::read_to_string(&args.example)?;
    let request: FocomProvisioningRequest = lcm_core::yaml::from_str(&manifest)?;
    let name = request.metadata.name.clone().unwrap_or_default();
    let namespace = request
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "focom-system".into());

    println!(
        "starting the control plane (etcd, kube-apiserver, kube-controller-manager), the Cluster API and BYOH controllers, both operators, and the simulated hosts and workload clusters..."
    );
    let mut options = WorldOptions::from_inventory(&std::fs::read_to_string(&args.inventory)?)?;
    // A request describing its cluster in full may name hosts the inventory lacks: they are
    // simulated too, as hosts whose agents registered.
    options.simulate_hosts_named_by(&request);
    // Day 2: every fulfilled cluster is registered in ArgoCD.
    options.o2ims_args = vec!["--argocd-namespace".into(), demo::ARGOCD_NAMESPACE.into()];
    let world = World::start(options).await?;
    let client = world.client()?;
    for line in demo::stack::describe(&world.cluster, &client).await? {
        println!("{line}");
    }
    println!(
        "ready after {:.1}s; applying {} (FocomProvisioningRequest {namespace}/{name})\n",
        started.elapsed().as_secs_f64(),
        args.example.display()
    );
    world.apply_manifest(&manifest).await?;

    let api = kube::Api::<FocomProvisioningRequest>::namespaced(client.clone(), &namespace);
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let mut shown = String::new();
    let (outcome, status) = loop {
        // The status first: the table read after it shows at least that state, so the last
        // table printed is the final one.
        let status = api.get(&name).await?.status.unwrap_or_default();
        let table = demo::render(&demo::rows(&client, &namespace, &name).await?);
        if table != shown {
            println!("[{:>5.1}s]\n{table}\n", started.elapsed().as_secs_f64());
            shown = table;
        }
        let message = status.message.clone().unwrap_or_default();
        match status.phase {
            Some(FocomPhase::Synced) => break (Ok(()), status),
            Some(FocomPhase::Failed) => {
                break (Err(anyhow::anyhow!("{name} failed: {message}")), status);
            }
            _ if Instant::now() > deadline => {
                let timeout = args.timeout_seconds;
                break (
                    Err(anyhow::anyhow!("timed out after {timeout}s: {message}")),
                    status,
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    outcome?;
    // What the request selected, as its status lists it: not every cluster of the inventory.
    let clusters: Vec<String> = status.clusters.iter().map(|c| c.name.clone()).collect();
    println!(
        "all clusters Synced in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let reader = demo::rest::reader(&world).await?;
    println!(
        "the O2ims REST API at {}, as an SMO with the reader role lists the provisioning requests:\n  {}",
        world.api.base,
        demo::rest::curl(&world, &reader)
    );
    for line in demo::rest::list(&world, &reader).await? {
        println!("  {line}");
    }
    // Alarms of failing hosts and clusters (docs/o2ims-api.md says how to raise one).
    let alarms = demo::rest::alarms(&world, &reader).await?;
    println!(
        "active O2ims alarms: {}\n  {}",
        if alarms.is_empty() { "none" } else { "" },
        demo::rest::curl_of(&world, &reader, demo::rest::ACTIVE_ALARMS)
    );
    for line in alarms {
        println!("  {line}");
    }
    println!("day 2: each cluster is registered in ArgoCD by a declarative cluster Secret:");
    for line in demo::argocd::registrations(&client, demo::ARGOCD_NAMESPACE, &clusters).await? {
        println!("  {line}");
    }
    if keep {
        let kubeconfig = world.cluster.kubeconfig_path().display().to_string();
        println!("\neverything keeps running; Ctrl-C stops it.\n");
        println!("  export KUBECONFIG={kubeconfig}");
        println!("  kubectl get fpr -A; kubectl get provreq");
        println!("  kubectl get clusters,kubeadmcontrolplanes,machinedeployments,machines -A");
        println!("  kubectl get byohosts -n byoh-hosts -L host-id,cluster.x-k8s.io/cluster-name");
        println!(
            "  kubectl -n cluster-core get secret core-kubeconfig -o jsonpath='{{.data.value}}' | base64 -d > core.kubeconfig"
        );
        // The workload clusters' endpoints answer only in the controllers' network namespace.
        println!(
            "  nsenter --net={} kubectl --kubeconfig core.kubeconfig get nodes,pods -A",
            demo::stack::network_namespace(&world.cluster)?
        );
        println!("  {}", demo::rest::curl(&world, &reader));
        println!(
            "  {}",
            demo::rest::curl_of(&world, &reader, demo::rest::ACTIVE_ALARMS)
        );
        println!(
            "  kubectl -n {} get secrets -l argocd.argoproj.io/secret-type=cluster -L site,role",
            demo::ARGOCD_NAMESPACE
        );
        println!(
            "  logs: {}, {} and {}; the controllers' and the workload clusters' beside {}",
            world.o2ims.log.display(),
            world.focom.log.display(),
            world.api.process.log.display(),
            world.cluster.managers_file().display()
        );
        std::future::pending::<()>().await;
    }
    Ok(())
}
