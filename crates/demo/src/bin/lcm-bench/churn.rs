//! The churn, once the fleet is provisioned: at once, a tenth of its clusters deleted
//! (`fleet-0`), a tenth scaled out by a spare worker (`fleet-1`), and as many new clusters
//! created (`fleet-new`). It measures the time until all of it has converged, the reaction
//! latency of the scaled and new clusters, and the writes of the product's clients to the
//! clusters left alone (goal 0).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use demo::World;
use lcm_core::crd::FocomPhase;
use lcm_core::crd::host_claim_name;
use lcm_core::template::cluster_namespace;
use serde_json::{Value, json};

use crate::apiserver;
use crate::fleet::{self, Fleet};
use crate::timeline::{Shared, delays};

pub async fn run(
    world: &World,
    fleet: &Fleet,
    timeline: &Shared,
    deadline: Duration,
) -> anyhow::Result<Value> {
    let client = world.client()?;
    let audit = world.audit.clone().context("the audit log")?;
    let batches = fleet.batches();
    anyhow::ensure!(
        batches.len() > 2,
        "the churn needs a fleet of 3 clusters or more"
    );
    let ((deleted, deleted_clusters), (scaled, scaled_clusters)) = (&batches[0], &batches[1]);
    let (created, new_clusters) = fleet.new_clusters();
    for cluster in scaled_clusters {
        // A control-plane host and two workers.
        timeline.lock().expect("timeline").scale(cluster, 2);
    }
    let from = audit.end()?;
    let started = Instant::now();
    world.set_inventory(&fleet.inventory(true)).await?;
    for (name, clusters, operation) in [
        (deleted, deleted_clusters, "delete"),
        (scaled, scaled_clusters, "scale"),
        (&created, &new_clusters, "create"),
    ] {
        let manifest = fleet::request(name, clusters, operation);
        world.apply_manifest(&manifest).await?;
    }
    // Two hosts per cluster, less the deleted clusters', plus the new clusters' and the spares.
    let claimed = 2 * fleet.clusters + fleet.batch_size();
    testcluster::wait_for("the churn to converge", deadline, || async {
        let done = fleet::reached(&client, deleted, FocomPhase::Deleted).await?
            && fleet::reached(&client, scaled, FocomPhase::Synced).await?
            && fleet::reached(&client, &created, FocomPhase::Synced).await?
            && fleet::claimed_hosts(&client).await? == claimed;
        Ok(done.then_some(()))
    })
    .await?;
    let converged = started.elapsed().as_secs_f64();

    let untouched = untouched(&batches[2..]);
    let mut writes_to_untouched = BTreeMap::<String, f64>::new();
    for logged in audit.logged_since(from)? {
        if apiserver::PRODUCT.contains(&logged.client.as_str())
            && logged.is_write()
            && touches(&logged, &untouched)
        {
            let what = format!("{} {} {}", logged.client, logged.request, logged.name);
            *writes_to_untouched.entry(what).or_default() += 1.0;
        }
    }
    let changed: HashSet<&String> = scaled_clusters.iter().chain(&new_clusters).collect();
    let t = timeline.lock().expect("timeline");
    let of_changed = |seen: &HashMap<String, Instant>| -> HashMap<String, Instant> {
        seen.iter()
            .filter(|(cluster, _)| changed.contains(cluster))
            .map(|(cluster, at)| (cluster.clone(), *at))
            .collect()
    };
    let reaction = delays(
        &of_changed(&t.objects_fulfilled),
        &of_changed(&t.request_fulfilled),
    );
    Ok(json!({
        "deleted": deleted_clusters.len(),
        "scaled": scaled_clusters.len(),
        "created": new_clusters.len(),
        "converged_seconds": converged,
        "product_writes_to_untouched": writes_to_untouched.values().fold(0.0, |sum, n| sum + n),
        "product_writes_to_untouched_by_request": writes_to_untouched,
        "reaction_seconds": crate::latencies(&reaction),
    }))
}

/// What names the clusters of `batches` and what is theirs: their requests, namespaces, hosts,
/// host claims.
fn untouched(batches: &[(String, Vec<String>)]) -> HashSet<String> {
    let mut names = HashSet::new();
    for (request, clusters) in batches {
        names.insert(request.clone());
        for cluster in clusters {
            names.insert(lcm_core::focom::request_name(
                fleet::NAMESPACE,
                request,
                cluster,
            ));
            names.insert(cluster_namespace(cluster));
            for (id, hostname) in fleet::hosts_of(cluster) {
                names.insert(host_claim_name(&id));
                names.insert(hostname);
            }
        }
    }
    names
}

/// Whether `logged` was made on one of `names`' objects, in one of their namespaces, or is an
/// Event about one of them (named `<object>.<suffix>`).
fn touches(logged: &testcluster::Logged, names: &HashSet<String>) -> bool {
    let object = logged.name.split('.').next().unwrap_or_default();
    names.contains(&logged.namespace) || names.contains(&logged.name) || names.contains(object)
}
