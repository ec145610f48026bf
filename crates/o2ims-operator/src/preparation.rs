//! Host preparation's I/O: whether every host of a request has registered, else following the
//! Job that prepares the others, or creating it once BYOH has issued its bootstrap kubeconfig.
//! The objects themselves are built in `hostprep`.

use kube::ResourceExt;

use lcm_core::conditions::Desired;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::template::{ClusterParameters, HostPreparation};

use crate::context::Context;
use crate::error::Result;
use crate::hostprep::{self, JobOutcome};
use crate::reconcile::Hosts;
use crate::status::HOSTS_PREPARED;
use crate::{children, observe};

/// HostPreparationFailed for hosts that have no pinned SSH host key: the Job would have to trust
/// whatever answers at their address with the fleet's SSH key.
fn unpinned(params: &ClusterParameters, missing: &[String]) -> Option<Desired> {
    let unpinned: Vec<&str> = params
        .host_access
        .iter()
        .filter(|a| missing.contains(&a.id) && a.ssh_host_keys.is_empty())
        .map(|a| a.id.as_str())
        .collect();
    (!unpinned.is_empty()).then(|| {
        Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!(
                "no SSH host key is pinned for {}: give the inventory's sshHostKeys (templateParameters.hostAccess[].sshHostKeys), as ssh-keyscan prints them",
                unpinned.join(", ")
            ),
        )
    })
}

/// HostsPrepared: every host registered, or the state of the Job preparing the others.
pub async fn prepare_hosts(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    hosts: &Hosts,
) -> Result<Desired> {
    let missing: Vec<String> = params
        .all_hosts()
        .filter(|h| !hosts.contains_key(*h))
        .cloned()
        .collect();
    if missing.is_empty() {
        let count = params.all_hosts().count();
        return Ok(Desired::true_(
            HOSTS_PREPARED,
            "HostsRegistered",
            format!("all {count} hosts have registered ByoHosts"),
        ));
    }
    let list = missing.join(", ");
    if params.host_preparation == HostPreparation::Skip {
        let message = format!(
            "no ByoHost is registered for {list} (hostPreparation: skip); their machines wait for them"
        );
        return Ok(Desired::false_(HOSTS_PREPARED, "WaitingForHosts", message));
    }
    // A Job already preparing (or having prepared) these hosts is followed, not repeated: hosts
    // register one by one, and the missing set shrinks while that Job's hosts come up.
    let jobs = observe::jobs(&ctx.client, ctx.config.namespace(), &request.name_any()).await?;
    let covering = jobs
        .iter()
        .filter(|job| {
            missing
                .iter()
                .all(|h| hostprep::prepared_hosts(job).contains(&h.as_str()))
        })
        .max_by_key(|job| {
            job["metadata"]["creationTimestamp"]
                .as_str()
                .map(String::from)
        });
    let (job_name, outcome) = match covering {
        Some(job) => (
            job["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Some(hostprep::outcome(job)),
        ),
        None => {
            if let Some(unpinned) = unpinned(params, &missing) {
                return Ok(unpinned);
            }
            let name = hostprep::name(params, &missing);
            let kubeconfig = match bootstrap_kubeconfig(ctx, request, &name, &missing).await? {
                Ok(kubeconfig) => kubeconfig,
                Err(waiting) => return Ok(waiting),
            };
            let owner = children::owner_reference(request, true);
            let preparation = hostprep::build(
                &ctx.config,
                &request.name_any(),
                &owner,
                params,
                &missing,
                &kubeconfig,
            );
            children::apply_secret(ctx, &preparation.secret).await?;
            children::apply_owned(ctx, request, preparation.objects).await?;
            (name, None)
        }
    };
    let job = format!("{}/{job_name}", ctx.config.namespace());
    Ok(match outcome {
        Some(JobOutcome::Failed(reason)) => Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!("Job {job} preparing {list} failed: {reason}; delete the Job to retry"),
        ),
        Some(JobOutcome::Succeeded) => Desired::false_(
            HOSTS_PREPARED,
            "WaitingForRegistration",
            format!("Job {job} prepared {list}; waiting for their ByoHosts to register"),
        ),
        _ => Desired::false_(
            HOSTS_PREPARED,
            "Preparing",
            format!("Job {job} is preparing {list}"),
        ),
    })
}

/// The bootstrap kubeconfig BYOH issued for the host-preparation Job `name` (asked for first),
/// or the HostsPrepared condition saying what preparation waits for.
async fn bootstrap_kubeconfig(
    ctx: &Context,
    request: &ProvisioningRequest,
    name: &str,
    hosts: &[String],
) -> Result<std::result::Result<String, Desired>> {
    let list = hosts.join(", ");
    let not_ready =
        |reason: &str, message: String| Ok(Err(Desired::false_(HOSTS_PREPARED, reason, message)));
    let Some(apiserver) = &ctx.config.bootstrap_apiserver else {
        return not_ready(
            "HostPreparationFailed",
            format!(
                "{list} need preparation, but the operator has no --bootstrap-apiserver (BOOTSTRAP_APISERVER): the address at which hosts reach this cluster's API server"
            ),
        );
    };
    let namespace = ctx.config.namespace();
    let what = format!("BootstrapKubeconfig {namespace}/{name}");
    let issuing = || {
        not_ready(
            "WaitingForBootstrapKubeconfig",
            format!("waiting for BYOH to issue {what} for {list}"),
        )
    };
    match observe::bootstrap_kubeconfig(&ctx.client, namespace, name).await? {
        Some(bootstrap) if hostprep::is_stale(&bootstrap, jiff::Timestamp::now()) => {
            observe::delete_bootstrap_kubeconfig(&ctx.client, namespace, name).await?;
            not_ready(
                "WaitingForBootstrapKubeconfig",
                format!("{what} is too old for a new Job; asking BYOH for a new one for {list}"),
            )
        }
        Some(bootstrap) => match hostprep::issued(&bootstrap) {
            Some(kubeconfig) => Ok(Ok(kubeconfig.to_string())),
            None => issuing(),
        },
        None => {
            let ca = match std::fs::read(&ctx.config.bootstrap_ca_file) {
                Ok(ca) => ca,
                Err(e) => {
                    return not_ready(
                        "HostPreparationFailed",
                        format!(
                            "cannot read --bootstrap-ca-file {}: {e}",
                            ctx.config.bootstrap_ca_file.display()
                        ),
                    );
                }
            };
            let owner = children::owner_reference(request, true);
            let asked = hostprep::bootstrap_request(
                &ctx.config,
                &request.name_any(),
                &owner,
                name,
                hosts,
                apiserver,
                &ca,
            );
            children::apply_owned(ctx, request, vec![asked]).await?;
            issuing()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_host_without_a_pinned_key_is_not_prepared() {
        let params = lcm_core::template::validate(&json!({
            "clusterName": "c", "kubernetesVersion": "v1.26.6", "controlPlaneEndpoint": {"host": "10.1.0.1"},
            "hosts": {"controlPlane": ["h1"], "workers": ["h2"]}, "hostPreparation": "auto",
            "hostAccess": [
                {"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu", "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1x"]},
                {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
            ],
        }))
        .expect("valid");
        assert!(unpinned(&params, &["h1".into()]).is_none());
        let failed = unpinned(&params, &["h1".into(), "h2".into()]).expect("h2 has no key");
        assert_eq!(failed.reason, "HostPreparationFailed");
        assert!(
            failed.message.contains("h2") && failed.message.contains("sshHostKeys"),
            "{}",
            failed.message
        );
    }
}
