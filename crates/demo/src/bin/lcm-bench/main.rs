//! Benchmark (a program, not a test): for each fleet size N, on the real control plane with the
//! real Cluster API and BYOH managers, both operators, and zero-delay simulated hosts and
//! workload clusters, N clusters of two hosts requested by ten FocomProvisioningRequests (see
//! `fleet`). It measures the time until every Cluster API object exists against a bare client
//! applying the same rendered objects at the same concurrency (with the same managers running),
//! the time until Synced, the API server's requests per cluster by client (the managers too),
//! status propagation, steady-state writes, a restart of both operators, the churn (see
//! `churn`), and the peak memory and CPU of the operators, the managers and the workload-cluster
//! simulator; prints one table and writes JSON and a PNG plot.

mod apiserver;
mod churn;
mod fleet;
mod plot;
mod rest;
mod soak;
mod timeline;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use demo::{World, WorldOptions};
use futures::future::try_join_all;
use kube::Api;
use kube::api::{Patch, PatchParams};
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};
use lcm_core::inventory::Inventory;
use serde_json::{Value, json};

use apiserver::Requests;
use fleet::Fleet;
use timeline::{delays, quantile};

#[derive(Parser)]
#[command(about = "Fleet-scale benchmark of both operators (real control plane, simulated hosts)")]
struct Args {
    /// Fleet sizes, one run each.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    sizes: Vec<usize>,
    /// Seconds of steady state (everything fulfilled) over which writes are counted.
    #[arg(long, default_value_t = 120)]
    steady_seconds: u64,
    /// Where the JSON and the plot go.
    #[arg(long, default_value = ".cache/bench")]
    out: std::path::PathBuf,
    /// Instead of the fleet sizes: a soak of this many minutes (create, scale, delete in a loop).
    #[arg(long)]
    soak_minutes: Option<u64>,
    /// An extra flag of a Cluster API or BYOH manager, `<manager>=<flag>` (repeatable), on both
    /// sides of the comparison; e.g. raised concurrency and QPS.
    #[arg(long = "manager-arg")]
    manager_args: Vec<String>,
}

/// Seconds a bare client takes to apply every rendered object of `clusters` clusters, one task
/// per cluster as the operator reconciles them, on a control plane of its own where the same
/// Cluster API and BYOH managers run and act on those objects, so that both sides compete with
/// them for the API server alike.
async fn baseline(fleet: &Fleet, manager_args: &[String]) -> anyhow::Result<Baseline> {
    let inventory = Inventory::parse("bench", &fleet.inventory(false))?;
    let mut all = FocomProvisioningRequest::new("bench", Default::default());
    all.spec.cluster_names = Some(fleet.batches().into_iter().flat_map(|(_, c)| c).collect());
    let selected = lcm_core::focom::select(&all, Some(&inventory))
        .map_err(|p| anyhow::anyhow!("inventory: {p:?}"))?;
    let manager_args: Vec<&str> = manager_args.iter().map(String::as_str).collect();
    let cluster = testcluster::TestCluster::start_with_managers(&manager_args).await?;
    let client = cluster.admin_client()?;
    let started = Instant::now();
    try_join_all(selected.iter().map(|s| {
        let client = client.clone();
        async move {
            let request = format!("bench-{}", s.name);
            // The namespace first, as the operator claims it first.
            for object in lcm_core::capi::generate(&request, &s.parameters, None).objects {
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                operator_kit::apply::api_for(&client, &object)?
                    .patch(
                        &name,
                        &PatchParams::apply("bench").force(),
                        &Patch::Apply(&object),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }
    }))
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    // What the operators create per cluster: these objects, a claim per host, the request.
    let objects = selected.iter().map(|s| {
        let generated = lcm_core::capi::generate("bench", &s.parameters, None).objects;
        generated.len() + s.parameters.all_hosts().count() + 1
    });
    let objects_per_cluster = objects.sum::<usize>() as f64 / selected.len() as f64;
    Ok(Baseline {
        seconds,
        objects_per_cluster,
    })
}

/// What the bare client measured, and how many objects it wrote per cluster.
struct Baseline {
    seconds: f64,
    /// The objects the operators must create per cluster: the rendered ones, a host claim per
    /// host, the ProvisioningRequest.
    objects_per_cluster: f64,
}

/// Peak memory and CPU of every process the product and the stack run: both operators, each
/// Cluster API and BYOH manager, the workload-cluster simulator.
fn process_usage(world: &World) -> anyhow::Result<Value> {
    let mut processes = vec![
        ("o2ims-operator".to_string(), world.o2ims.usage()?),
        ("focom-operator".to_string(), world.focom.usage()?),
        ("o2ims-api".to_string(), world.api.process.usage()?),
    ];
    for (name, pid) in world.cluster.stack_processes()? {
        processes.push((name, testcluster::processes::usage(pid)?));
    }
    Ok(processes
        .into_iter()
        .map(|(name, u)| {
            let usage = json!({"peak_rss_mib": u.peak_rss_mib, "cpu_seconds": u.cpu_seconds});
            (name, usage)
        })
        .collect::<serde_json::Map<_, _>>()
        .into())
}

/// One run at `clusters`; its results as JSON.
async fn run(clusters: usize, steady: Duration, args: &Args) -> anyhow::Result<Value> {
    let out = args.out.as_path();
    let fleet = Fleet { clusters };
    let baseline = baseline(&fleet, &args.manager_args).await?;
    let mut options = WorldOptions::from_inventory(&fleet.inventory(false))?;
    options.manager_args = args.manager_args.clone();
    let audit_dir = out.join(format!("audit-{clusters}"));
    options.audit_dir = Some(audit_dir.clone());
    options.simulator.register_inventory_hosts = true;
    // `cni: none`: the clusters' owner brings the CNI.
    options.simulator.cni_by_cluster_owner = true;
    options.simulator.job_delay = Duration::ZERO;
    options.simulator.bootstrap_delay = Duration::ZERO;
    // A guard, not a measure: on the real managers 100 clusters took 309 s here.
    let deadline = Duration::from_secs(120 + 6 * clusters as u64);
    // The whole fleet is requested at once on two cores: a cluster waits its turn behind the
    // others for longer than the default stage timeouts (30 min) a real fleet is sized for, so
    // each stage gets the bench's own guard, as an admin provisioning so many at once would.
    for stage in ["host-preparation", "control-plane", "workers"] {
        let seconds = deadline.as_secs().to_string();
        options
            .o2ims_args
            .extend([format!("--{stage}-timeout-seconds"), seconds]);
    }
    let mut world = World::start(options).await?;
    let client = world.client()?;
    let timeline = timeline::watch(&client, clusters);
    let progress = timeline::report_progress(timeline.clone(), clusters);
    // The hosts registering before the request are not what is measured.
    testcluster::wait_for(
        "the hosts to register",
        Duration::from_secs(600 + clusters as u64),
        || async {
            let hosts = Api::<kube::api::DynamicObject>::all_with(
                client.clone(),
                &lcm_core::capi::Kind::ByoHost.api_resource(),
            )
            .list(&Default::default())
            .await?;
            Ok((hosts.items.len() >= fleet.hosts()).then_some(()))
        },
    )
    .await?;

    let audit = world.audit.clone().context("the audit log")?;
    let audit_from = audit.end()?;
    let before = Requests::read(&client).await?;
    let started = Instant::now();
    let batches = fleet.batches();
    for (name, clusters) in &batches {
        world
            .apply_manifest(&fleet::request(name, clusters, "create"))
            .await?;
    }
    testcluster::wait_for("the fleet to be Synced", deadline, || async {
        for (name, _) in &batches {
            if !fleet::reached(&client, name, FocomPhase::Synced).await? {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    let synced = started.elapsed().as_secs_f64();
    progress.abort();
    let served = Requests::read(&client).await?.since(&before);
    let by_client = apiserver::by_client(&audit.requests_since(audit_from)?, clusters);
    let (objects, to_request, reaction, to_focom) = {
        let t = timeline.lock().expect("timeline");
        let objects = t
            .all_objects_at
            .context("not every Cluster API object was seen")?
            .duration_since(started)
            .as_secs_f64();
        (
            objects,
            delays(&t.cluster_ready, &t.request_fulfilled),
            delays(&t.objects_fulfilled, &t.request_fulfilled),
            delays(&t.request_fulfilled, &t.focom_fulfilled),
        )
    };

    let quiet = Requests::read(&client).await?;
    let quiet_from = audit.end()?;
    tokio::time::sleep(steady).await; // the window over which writes are counted
    let steady_writes = Requests::read(&client).await?.since(&quiet).writes();
    let steady_logged = audit.requests_since(quiet_from)?;
    let steady_product_writes = apiserver::product_writes(&steady_logged);
    let usage = process_usage(&world)?;
    let (list_seconds, listed) = rest::list_latencies(&world, 200).await?;
    anyhow::ensure!(
        listed == clusters,
        "the API listed {listed} of {clusters} requests"
    );

    let before_restart = Requests::read(&client).await?;
    let restart_from = audit.end()?;
    let restarted = Instant::now();
    world.restart(demo::Operator::O2ims).await?;
    world.restart(demo::Operator::Focom).await?;
    let n = clusters as f64;
    let o2ims = &world.o2ims;
    testcluster::wait_for(
        "the O2IMS operator to reconcile every request",
        deadline,
        || async {
            Ok((o2ims
                .metric("o2ims_reconcile_runs_total")
                .await
                .unwrap_or(0.0)
                >= n)
                .then_some(()))
        },
    )
    .await?;
    let converged = restarted.elapsed().as_secs_f64();
    let restart_writes = Requests::read(&client)
        .await?
        .since(&before_restart)
        .writes();
    let restart_logged = audit.requests_since(restart_from)?;
    let restart_product_writes = apiserver::product_writes(&restart_logged);
    let churn = churn::run(&world, &fleet, &timeline, deadline).await?;
    // Hundreds of MiB at 1,000 clusters; what it says is in the JSON.
    drop(world);
    std::fs::remove_dir_all(&audit_dir)?;

    let per_cluster = |verb: &str| served.verb(verb) / n;
    Ok(json!({
        "clusters": clusters,
        "objects_seconds": objects,
        "baseline_seconds": baseline.seconds,
        "objects_ratio": objects / baseline.seconds,
        "objects_to_create_per_cluster": baseline.objects_per_cluster,
        "synced_seconds": synced,
        "requests_per_cluster": served.total() / n,
        "requests_per_cluster_by_verb_and_resource": served.0.iter().map(|(v, c)| (v.clone(), json!(c / n))).collect::<serde_json::Map<_, _>>(),
        "lists_per_cluster": per_cluster("LIST"),
        "requests_per_cluster_by_client": by_client,
        "writes_per_cluster": served.writes() / n,
        "cluster_ready_to_fulfilled": latencies(&to_request),
        "reaction_seconds": latencies(&reaction),
        "fulfilled_to_synced_row": latencies(&to_focom),
        "steady_writes_per_minute": steady_writes * 60.0 / steady.as_secs_f64(),
        "steady_product_writes_per_minute": steady_product_writes * 60.0 / steady.as_secs_f64(),
        "restart_converge_seconds": converged,
        "restart_writes": restart_writes,
        "restart_product_writes": restart_product_writes,
        "restart_product_writes_by_request": apiserver::product_writes_by_request(&restart_logged),
        "steady_product_writes_by_request": apiserver::product_writes_by_request(&steady_logged),
        "rest_list_seconds": {"p50": quantile(&list_seconds, 0.5), "p99": quantile(&list_seconds, 0.99), "samples": list_seconds.len()},
        "churn": churn,
        "processes": usage,
        "manager_args": args.manager_args,
    }))
}

fn print_table(runs: &[Value]) {
    let row = |label: &str, f: &dyn Fn(&Value) -> String| {
        let cells: Vec<String> = runs.iter().map(|r| format!("{:>12}", f(r))).collect();
        println!("{label:<52}{}", cells.join(""));
    };
    let num = |key: &'static str, digits: usize| {
        move |r: &Value| format!("{:.*}", digits, r[key].as_f64().unwrap_or(f64::NAN))
    };
    let nested = |a: &'static str, b: &'static str, digits: usize| {
        move |r: &Value| format!("{:.*}", digits, r[a][b].as_f64().unwrap_or(f64::NAN))
    };
    row("clusters", &|r| r["clusters"].to_string());
    row(
        "all Cluster API objects exist, operators (s)",
        &num("objects_seconds", 2),
    );
    row("same objects, bare client (s)", &num("baseline_seconds", 2));
    row(
        "ratio operators / bare client (goal <= 1.3)",
        &num("objects_ratio", 2),
    );
    row("all Synced (s)", &num("synced_seconds", 2));
    row(
        "API requests per cluster, all clients",
        &num("requests_per_cluster", 1),
    );
    row("  of which LIST", &num("lists_per_cluster", 2));
    row("  of which writes", &num("writes_per_cluster", 1));
    for client in apiserver::CLIENTS {
        let of = |what: &'static str| {
            move |r: &Value| {
                let value = &r["requests_per_cluster_by_client"][client][what];
                format!("{:.2}", value.as_f64().unwrap_or(0.0))
            }
        };
        row(&format!("  by {client}"), &of("all"));
        if client.ends_with("-operator") {
            row("    of which LIST", &of("list"));
            row("    of which writes", &of("writes"));
        }
    }
    row(
        "operators' writes per object they create (goal <= 2)",
        &|r| {
            let clients = &r["requests_per_cluster_by_client"];
            let writes = |client: &str| clients[client]["writes"].as_f64().unwrap_or(0.0);
            let objects = r["objects_to_create_per_cluster"].as_f64();
            let written = writes("o2ims-operator") + writes("focom-operator");
            format!("{:.2}", written / objects.unwrap_or(f64::NAN))
        },
    );
    row(
        "Cluster Ready -> request fulfilled p50 (s)",
        &nested("cluster_ready_to_fulfilled", "p50", 3),
    );
    row(
        "Cluster Ready -> request fulfilled p99 (s)",
        &nested("cluster_ready_to_fulfilled", "p99", 3),
    );
    // p50, p99 and max of the latencies at `path`, p99 with `goal`.
    let latency_rows = |label: &str, path: &[&'static str], goal: &str| {
        for at in ["p50", "p99", "max"] {
            let goal = if at == "p99" { goal } else { "" };
            row(&format!("{label} {at} (s{goal})"), &|r| {
                let latencies = path.iter().fold(r, |value, key| &value[*key]);
                format!("{:.3}", latencies[at].as_f64().unwrap_or(f64::NAN))
            });
        }
    };
    latency_rows(
        "reaction: objects fulfilled -> request",
        &["reaction_seconds"],
        ", goal < 1",
    );
    latency_rows(
        "request fulfilled -> FOCOM row",
        &["fulfilled_to_synced_row"],
        "",
    );
    row(
        "steady state writes/min, operators + host agents (goal 0)",
        &num("steady_product_writes_per_minute", 1),
    );
    row(
        "  all clients (the control plane's own leases too)",
        &num("steady_writes_per_minute", 1),
    );
    row(
        "restart: every request reconciled (s, goal < 10)",
        &num("restart_converge_seconds", 2),
    );
    row(
        "restart: writes, operators + host agents (goal 0)",
        &num("restart_product_writes", 0),
    );
    row("  all clients", &num("restart_writes", 0));
    row("churn: clusters deleted / scaled / created", &|r| {
        let churn = &r["churn"];
        format!(
            "{}/{}/{}",
            churn["deleted"], churn["scaled"], churn["created"]
        )
    });
    row(
        "churn: all converged (s)",
        &nested("churn", "converged_seconds", 2),
    );
    row(
        "churn: writes to untouched clusters, product (goal 0)",
        &nested("churn", "product_writes_to_untouched", 0),
    );
    latency_rows(
        "churn: reaction",
        &["churn", "reaction_seconds"],
        ", goal < 1",
    );
    let millis = |key: &'static str| {
        move |r: &Value| {
            format!(
                "{:.1}",
                r["rest_list_seconds"][key].as_f64().unwrap_or(f64::NAN) * 1000.0
            )
        }
    };
    row("REST: list every request p50 (ms)", &millis("p50"));
    row(
        "REST: list every request p99 (ms, goal < 50)",
        &millis("p99"),
    );
    for process in PROCESSES {
        let of = |what: &'static str| {
            move |r: &Value| {
                let value = r["processes"][process][what].as_f64();
                format!("{:.1}", value.unwrap_or(f64::NAN))
            }
        };
        let goal = if process.ends_with("-operator") {
            ", goal < 64"
        } else {
            ""
        };
        row(
            &format!("{process} peak RSS (MiB{goal})"),
            &of("peak_rss_mib"),
        );
        row(&format!("{process} CPU (s)"), &of("cpu_seconds"));
        if process.ends_with("-operator") {
            row(&format!("{process} CPU per 1,000 clusters (s)"), &|r| {
                let cpu = r["processes"][process]["cpu_seconds"].as_f64();
                let clusters = r["clusters"].as_f64().unwrap_or(f64::NAN);
                format!("{:.1}", cpu.unwrap_or(f64::NAN) * 1000.0 / clusters)
            });
        }
    }
}

/// p50, p99 and the largest of sorted `delays`.
pub(crate) fn latencies(delays: &[f64]) -> Value {
    json!({
        "p50": quantile(delays, 0.5),
        "p99": quantile(delays, 0.99),
        "max": delays.last().copied().unwrap_or(0.0),
        "samples": delays.len(),
    })
}

/// The processes whose memory and CPU the table shows: the product's operators and REST API,
/// then what runs beside them (the upstream managers, the workload-cluster simulator).
const PROCESSES: [&str; 8] = [
    "o2ims-operator",
    "focom-operator",
    "o2ims-api",
    "cluster-api",
    "bootstrap-kubeadm",
    "controlplane-kubeadm",
    "byoh",
    "workload-clusters",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(minutes) = args.soak_minutes {
        let soak = soak::run(minutes, &args.out).await?;
        soak::print(&soak);
        std::fs::create_dir_all(&args.out)?;
        let json_path = args.out.join("soak.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&soak)?)?;
        println!("wrote {}", json_path.display());
        return Ok(());
    }
    let mut runs = Vec::new();
    let mut failed = None;
    for size in &args.sizes {
        eprintln!("lcm-bench: {size} clusters");
        let steady = Duration::from_secs(args.steady_seconds);
        match run(*size, steady, &args).await {
            Ok(measured) => runs.push(measured),
            Err(e) => {
                failed = Some(e.context(format!("the run at {size} clusters")));
                break;
            }
        }
    }
    // What was measured before a run failed is printed and written all the same.
    if !runs.is_empty() {
        print_table(&runs);
        std::fs::create_dir_all(&args.out)?;
        let json_path = args.out.join("bench.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&runs)?)?;
        let plot_path = args.out.join("bench.png");
        plot::time_vs_size(&runs, &plot_path)?;
        println!("wrote {} and {}", json_path.display(), plot_path.display());
    }
    failed.map_or(Ok(()), Err)
}
