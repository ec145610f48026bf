//! The host ledger: a request holds a host through its HostClaim, created (atomically: the
//! API server refuses a second object of the same name) before any Job or Cluster API object
//! names the host. Which of two racing requests gets a host is decided before, in
//! `conflicts`, from what the cache shows; the ledger makes sure that, whatever the caches,
//! replicas or operators, two requests never both hold one.
//!
//! A claim is taken, then marked in use before the request acts on the host. Both the mark
//! and a withdrawal (a request failing before it acted) are conditional on the claim's
//! resourceVersion, so a claim cannot be withdrawn while another replica starts using it. A
//! claim in use goes only once BYOH has released the host (scale-in, deletion).

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use lcm_core::crd::{HostClaim, ProvisioningRequest};
use lcm_core::template::ClusterParameters;

use crate::conflicts::Conflict;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::snapshot::{Hosts, Snapshot};

fn api(ctx: &Context) -> Api<HostClaim> {
    Api::all(ctx.client.clone())
}

fn uid(request: &ProvisioningRequest) -> String {
    request.uid().unwrap_or_default()
}

/// What taking a request's hosts gave: its claims on them (as just read or written), and the
/// first host another request holds.
pub struct Taken {
    pub claims: Vec<HostClaim>,
    pub conflict: Option<Conflict>,
}

/// Takes every host of `params` for `request`, stopping at the first host another request
/// holds (named in a message). Hosts `world` shows as the request's cost nothing.
pub async fn take(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    world: &Snapshot,
) -> Result<Taken> {
    let uid = uid(request);
    let mut claims = Vec::new();
    for host in params.all_hosts() {
        let claim = HostClaim::for_host(host, &request.name_any(), &uid, &params.cluster_name);
        if let Some(cached) = world.claims.get(&claim.name_any())
            && cached.held_by(&uid)
        {
            claims.push(cached.as_ref().clone());
            continue;
        }
        let holder = match api(ctx).create(&PostParams::default(), &claim).await {
            Ok(created) => {
                tracing::info!(host = %host, request = %request.name_any(), "host claimed");
                created
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                api(ctx).get(&claim.name_any()).await?
            }
            Err(e) => return Err(e.into()),
        };
        if !holder.held_by(&uid) {
            let conflict = Some(held_by(host, &holder));
            return Ok(Taken { claims, conflict });
        }
        claims.push(holder);
    }
    Ok(Taken {
        claims,
        conflict: None,
    })
}

/// Why `host` cannot be taken: `claim` holds it for another request. A holder that has not
/// started using the host may still give it up (it fails on another host): then the host is
/// only wanted, and the request waits rather than failing on a holder that goes.
fn held_by(host: &str, claim: &HostClaim) -> Conflict {
    if claim.spec.host_id != host {
        return Conflict::Taken(format!(
            "host `{host}` cannot be claimed: HostClaim {} holds host `{}`",
            claim.name_any(),
            claim.spec.host_id
        ));
    }
    let holder = format!(
        "ProvisioningRequest {} (cluster `{}`, HostClaim {})",
        claim.spec.request_name,
        claim.spec.cluster_name,
        claim.name_any()
    );
    if claim.spec.in_use {
        Conflict::Taken(format!("host `{host}` is held by {holder}"))
    } else {
        Conflict::Wanted(format!(
            "host `{host}` is claimed by {holder}, which has not started using it; waiting for it to use the host or give it up"
        ))
    }
}

/// Marks `claims` in use, before the request acts on their hosts. A claim changed or
/// withdrawn since it was read fails the mark, and the request is reconciled again.
pub async fn mark_in_use(ctx: &Context, claims: &[HostClaim]) -> Result<()> {
    for claim in claims.iter().filter(|c| !c.spec.in_use) {
        let patch = json!({
            "metadata": {"resourceVersion": claim.resource_version()},
            "spec": {"inUse": true},
        });
        let name = claim.name_any();
        api(ctx)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::Ledger(format!("marking HostClaim {name} in use: {e}")))?;
    }
    Ok(())
}

/// Withdraws the claims `request` took but never used (it failed before acting on them):
/// those just `taken` and those `world` shows.
pub async fn withdraw(
    ctx: &Context,
    request: &ProvisioningRequest,
    world: &Snapshot,
    taken: &[HostClaim],
) -> Result<()> {
    let others = world
        .claims_of(request)
        .map(AsRef::as_ref)
        .filter(|c| taken.iter().all(|t| t.name_any() != c.name_any()));
    for claim in taken.iter().chain(others).filter(|c| !c.spec.in_use) {
        delete(ctx, request, claim, claim.resource_version()).await?;
    }
    Ok(())
}

/// Returns `request`'s hosts other than `keep` once BYOH has released them (their ByoHost
/// names no machine and no cluster, or is gone); returns the hosts it still holds besides
/// `keep`.
pub async fn release(
    ctx: &Context,
    request: &ProvisioningRequest,
    world: &Snapshot,
    keep: &[&String],
) -> Result<Vec<String>> {
    let mut held = Vec::new();
    for claim in world.claims_of(request) {
        let host = &claim.spec.host_id;
        if keep.contains(&host) {
            continue;
        }
        if released(&world.hosts, host) {
            delete(ctx, request, claim, None).await?;
        } else {
            held.push(host.clone());
        }
    }
    Ok(held)
}

/// Deletes `claim` if it is still the one the cache shows (its UID, and `resource_version` when
/// given): a claim someone made or changed since is never removed.
async fn delete(
    ctx: &Context,
    request: &ProvisioningRequest,
    claim: &HostClaim,
    resource_version: Option<String>,
) -> Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: claim.uid(),
            resource_version,
        }),
        ..DeleteParams::default()
    };
    match api(ctx).delete(&claim.name_any(), &params).await {
        Ok(_) => {
            let host = &claim.spec.host_id;
            tracing::info!(host = %host, request = %request.name_any(), "host released");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether BYOH has released `host`: no ByoHost, or one no machine claims.
fn released(hosts: &Hosts, host: &str) -> bool {
    hosts
        .get(host)
        .is_none_or(|(view, _)| view.claimed_by.is_none() && view.machine_namespace.is_none())
}
