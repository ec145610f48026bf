//! The soak: for a stated time, a fleet is created, scaled out, scaled in and deleted, again and
//! again, on one installation. It prints each operator's resident memory at the start and the
//! end, the product's writes per cycle, the warnings and errors the operators logged, and what
//! the last deletion left behind (goal: flat memory, no leftovers, no error that is not
//! expected).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use demo::{World, WorldOptions};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest, HostClaim, ProvisioningRequest};
use serde_json::{Value, json};

use crate::{apiserver, fleet};

const CLUSTERS: usize = 4;
const NAMESPACE: &str = "focom-system";
/// A cycle step that takes longer than this is a failure of the soak.
const STEP: Duration = Duration::from_secs(300);

/// The soak's inventory: each cluster with a control-plane host, a worker and a spare worker.
fn inventory(spares_in_use: bool) -> Value {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";
    let host = |c: usize, role: &str| format!("s{c}-{role}");
    let hosts: Vec<Value> = (1..=CLUSTERS)
        .flat_map(|c| ["cp", "w", "spare"].map(|role| (c, role)))
        .enumerate()
        .map(|(i, (c, role))| {
            json!({"id": host(c, role), "hostname": format!("soak-{}", host(c, role)),
                   "address": format!("10.77.0.{}", i + 1), "sshHostKeys": [key]})
        })
        .collect();
    let clusters: Vec<Value> = (1..=CLUSTERS)
        .map(|c| {
            let mut workers = vec![host(c, "w")];
            if spares_in_use {
                workers.push(host(c, "spare"));
            }
            json!({"name": format!("soak{c}"), "controlPlaneEndpoint": format!("172.20.77.{c}"),
                   "controlPlaneHosts": [host(c, "cp")], "workerHosts": workers})
        })
        .collect();
    json!({"defaults": {"hostPreparation": "skip", "cni": "none"}, "hosts": hosts, "clusters": clusters})
}

pub async fn run(minutes: u64, out: &std::path::Path) -> anyhow::Result<Value> {
    let mut options = WorldOptions::from_inventory(&inventory(false).to_string())?;
    let audit_dir = out.join("audit-soak");
    options.audit_dir = Some(audit_dir.clone());
    options.simulator.register_inventory_hosts = true;
    options.simulator.cni_by_cluster_owner = true;
    options.simulator.job_delay = Duration::ZERO;
    options.simulator.bootstrap_delay = Duration::ZERO;
    let world = World::start(options).await?;
    let client = world.client()?;
    let audit = world.audit.clone().context("the audit log")?;

    let until = Instant::now() + Duration::from_secs(60 * minutes);
    let mut cycles = Vec::new();
    let mut rss_start = None;
    while Instant::now() < until || cycles.is_empty() {
        let from = audit.end()?;
        let started = Instant::now();
        cycle(&world, &client).await?;
        let writes = apiserver::product_writes(&audit.requests_since(from)?);
        let rss = [world.o2ims.usage()?.rss_mib, world.focom.usage()?.rss_mib];
        // Memory after the first cycle: what the operators hold once every path has run.
        rss_start.get_or_insert(rss);
        eprintln!(
            "soak: cycle {} in {:.1}s, {writes} writes, RSS o2ims {:.1} MiB, focom {:.1} MiB",
            cycles.len() + 1,
            started.elapsed().as_secs_f64(),
            rss[0],
            rss[1]
        );
        cycles.push(
            json!({"seconds": started.elapsed().as_secs_f64(), "writes": writes, "rss_mib": rss}),
        );
    }
    let rss_end = [world.o2ims.usage()?.rss_mib, world.focom.usage()?.rss_mib];
    let left = left_behind(&client).await?;
    let logged = [
        ("o2ims-operator", logged_problems(&world.o2ims.log)?),
        ("focom-operator", logged_problems(&world.focom.log)?),
    ];
    drop(world);
    std::fs::remove_dir_all(&audit_dir)?;
    Ok(json!({
        "minutes": minutes,
        "clusters": CLUSTERS,
        "cycles": cycles,
        "rss_start_mib": rss_start.unwrap_or(rss_end),
        "rss_end_mib": rss_end,
        "left_behind": left,
        "logged": logged.iter().map(|(name, lines)| (name.to_string(), json!(lines))).collect::<serde_json::Map<_, _>>(),
    }))
}

/// One cycle: create, scale out, scale in, delete, each waited for.
async fn cycle(world: &World, client: &Client) -> anyhow::Result<()> {
    let requests = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NAMESPACE);
    for (spares, operation) in [(false, "create"), (true, "scale"), (false, "scale")] {
        world.set_inventory(&inventory(spares).to_string()).await?;
        let request = json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
            "metadata": {"name": "soak", "namespace": NAMESPACE},
            "spec": {"allClusters": true, "operation": operation}});
        world.apply_manifest(&request.to_string()).await?;
        let wanted = if spares { 3 } else { 2 };
        testcluster::wait_for(&format!("{operation} to be Synced"), STEP, || async {
            let synced = fleet::reached(client, "soak", FocomPhase::Synced).await?
                && fleet::claimed_hosts(client).await? == wanted * CLUSTERS;
            Ok(synced.then_some(()))
        })
        .await?;
    }
    requests.delete("soak", &Default::default()).await?;
    testcluster::wait_for("the fleet to be deleted", STEP, || async {
        let gone = requests.get_opt("soak").await?.is_none()
            && left_behind(client)
                .await?
                .as_object()
                .is_some_and(|m| m.is_empty());
        Ok(gone.then_some(()))
    })
    .await
}

async fn dynamic(client: &Client, kind: Kind) -> anyhow::Result<Vec<DynamicObject>> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource());
    Ok(api.list(&ListParams::default()).await?.items)
}

/// What exists of a fleet once it is deleted, by kind (only kinds with something left).
async fn left_behind(client: &Client) -> anyhow::Result<Value> {
    let mut left = serde_json::Map::new();
    let mut note = |what: &str, names: Vec<String>| {
        if !names.is_empty() {
            left.insert(what.to_string(), json!(names));
        }
    };
    let names = |objects: Vec<DynamicObject>| objects.iter().map(|o| o.name_any()).collect();
    for kind in [
        Kind::Cluster,
        Kind::MachineDeployment,
        Kind::Machine,
        Kind::KubeadmControlPlane,
        Kind::KubeadmConfigTemplate,
        Kind::KubeadmConfig,
        Kind::ByoCluster,
        Kind::ByoMachineTemplate,
        Kind::ByoMachine,
        Kind::ClusterResourceSet,
        Kind::BootstrapKubeconfig,
    ] {
        note(kind.name(), names(dynamic(client, kind).await?));
    }
    note("claimed ByoHost", {
        let hosts = dynamic(client, Kind::ByoHost).await?;
        let claimed = hosts
            .into_iter()
            .filter(|h| h.data["status"]["machineRef"].is_object());
        claimed.map(|h| h.name_any()).collect()
    });
    let all = ListParams::default();
    let prs = Api::<ProvisioningRequest>::all(client.clone())
        .list(&all)
        .await?;
    note(
        "ProvisioningRequest",
        prs.iter().map(|o| o.name_any()).collect(),
    );
    let claims = Api::<HostClaim>::all(client.clone()).list(&all).await?;
    note("HostClaim", claims.iter().map(|o| o.name_any()).collect());
    let namespaces = Api::<Namespace>::all(client.clone()).list(&all).await?;
    let cluster_namespaces = namespaces.iter().map(|o| o.name_any());
    note(
        "Namespace",
        cluster_namespaces
            .filter(|n| n.starts_with("cluster-"))
            .collect(),
    );
    let jobs = Api::<Job>::all(client.clone()).list(&all).await?;
    note("Job", jobs.iter().map(|o| o.name_any()).collect());
    Ok(Value::Object(left))
}

/// The warnings and errors an operator logged, each distinct message once with its count.
fn logged_problems(log: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(log)?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let Some(level) = [" WARN ", " ERROR "].iter().find(|l| line.contains(*l)) else {
            continue;
        };
        // The message without its timestamp: the same problem counts once.
        let message = line.split_once(level).map_or(line, |(_, rest)| rest);
        *counts
            .entry(format!("{}{message}", level.trim()))
            .or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .map(|(message, n)| format!("{n} x {message}"))
        .collect())
}

pub fn print(soak: &Value) {
    let cycles = soak["cycles"].as_array().cloned().unwrap_or_default();
    let writes: Vec<f64> = cycles.iter().filter_map(|c| c["writes"].as_f64()).collect();
    let mean = writes.iter().sum::<f64>() / writes.len().max(1) as f64;
    println!(
        "soak: {} min, {} cycles of create -> scale out -> scale in -> delete of {CLUSTERS} clusters",
        soak["minutes"],
        cycles.len()
    );
    for (i, name) in ["o2ims-operator", "focom-operator"].iter().enumerate() {
        println!(
            "  {name} RSS after the first cycle {:.1} MiB, at the end {:.1} MiB",
            soak["rss_start_mib"][i].as_f64().unwrap_or(f64::NAN),
            soak["rss_end_mib"][i].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "  product writes per cycle: first {}, last {}, mean {mean:.1}",
        writes.first().copied().unwrap_or(f64::NAN),
        writes.last().copied().unwrap_or(f64::NAN)
    );
    let left = &soak["left_behind"];
    match left.as_object().is_some_and(|m| m.is_empty()) {
        true => println!("  left behind after the last deletion: nothing"),
        false => println!("  left behind after the last deletion: {left}"),
    }
    for (name, lines) in soak["logged"].as_object().into_iter().flatten() {
        let lines = lines.as_array().cloned().unwrap_or_default();
        println!(
            "  {name} logged {} distinct warnings or errors",
            lines.len()
        );
        for line in lines {
            println!("    {}", line.as_str().unwrap_or_default());
        }
    }
}
