//! Host preparation's I/O: whether every host of a request has registered, else following the
//! Job that prepares the others, or creating it once BYOH has issued its bootstrap kubeconfig.
//! How hosts are reached comes from the O-Cloud's own host inventory, not from requests. The
//! objects themselves are built in `hostprep`.

use kube::ResourceExt;

use lcm_core::conditions::Desired;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::inventory::Inventory;
use lcm_core::template::{ClusterParameters, HostAccess, HostPreparation};

use crate::config::{Config, HOST_INVENTORY_KEY, HostPreparationSettings};
use crate::context::Context;
use crate::error::Result;
use crate::hostprep::{self, JobOutcome};
use crate::reconcile::Hosts;
use crate::status::HOSTS_PREPARED;
use crate::{children, observe};

/// How host preparation reaches each of `hosts`: from the host inventory, else (only where the
/// operator allows it) from the request's hostAccess; the hosts neither describes are `Err`.
fn access(
    inventory: Option<&Inventory>,
    params: &ClusterParameters,
    allow_request: bool,
    hosts: &[String],
) -> std::result::Result<Vec<HostAccess>, Vec<String>> {
    let from_request = |id: &String| {
        params
            .host_access
            .iter()
            .find(|a| allow_request && &a.id == id)
            .cloned()
    };
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in hosts {
        match inventory
            .and_then(|i| i.host_access(id))
            .or_else(|| from_request(id))
        {
            Some(access) => found.push(access),
            None => missing.push(id.clone()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// The host inventory ConfigMap's inventory (`None` when the ConfigMap does not exist), or the
/// HostsPrepared condition saying why it cannot be used.
fn host_inventory(ctx: &Context) -> std::result::Result<Option<Inventory>, Desired> {
    let Some(config_map) = ctx
        .index
        .config_map(ctx.config.namespace(), &ctx.config.host_inventory_configmap)
    else {
        return Ok(None);
    };
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(HOST_INVENTORY_KEY))
        .map(String::as_str)
        .unwrap_or_default();
    let parsed = Inventory::parse(&ctx.config.host_inventory(), text);
    parsed.map(Some).map_err(|e| {
        Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!("the host inventory cannot be used: {e}"),
        )
    })
}

/// HostPreparationFailed for `missing` hosts that neither the host inventory nor an allowed
/// request describes: nothing says how to reach them.
fn not_in_inventory(config: &Config, missing: &[String], exists: bool) -> Desired {
    let inventory = if exists {
        format!("the host inventory, {}", config.host_inventory())
    } else {
        format!(
            "the host inventory: {} does not exist",
            config.host_inventory()
        )
    };
    Desired::false_(
        HOSTS_PREPARED,
        "HostPreparationFailed",
        format!(
            "{} need preparation but are not in {inventory}; add them there, or register their ByoHosts",
            missing.join(", ")
        ),
    )
}

/// HostPreparationFailed for hosts that have no pinned SSH host key: the Job would have to trust
/// whatever answers at their address with the fleet's SSH key.
fn unpinned(config: &Config, access: &[HostAccess]) -> Option<Desired> {
    let unpinned: Vec<&str> = access
        .iter()
        .filter(|a| a.ssh_host_keys.is_empty())
        .map(|a| a.id.as_str())
        .collect();
    (!unpinned.is_empty()).then(|| {
        Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!(
                "no SSH host key is pinned for {}: give their sshHostKeys, as ssh-keyscan prints them, in the host inventory ({})",
                unpinned.join(", "),
                config.host_inventory()
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
            let inventory = match host_inventory(ctx) {
                Ok(inventory) => inventory,
                Err(unusable) => return Ok(unusable),
            };
            let allow = ctx.config.allow_request_host_access;
            let access = match access(inventory.as_ref(), params, allow, &missing) {
                Ok(access) => access,
                Err(unknown) => {
                    return Ok(not_in_inventory(&ctx.config, &unknown, inventory.is_some()));
                }
            };
            if let Some(unpinned) = unpinned(&ctx.config, &access) {
                return Ok(unpinned);
            }
            let settings = match ctx.config.host_preparation() {
                Ok(settings) => settings,
                Err(lacking) => {
                    let message = format!("{} need preparation, but {lacking}", missing.join(", "));
                    return Ok(Desired::false_(
                        HOSTS_PREPARED,
                        "HostPreparationFailed",
                        message,
                    ));
                }
            };
            let name = hostprep::name(params, &missing);
            let kubeconfig =
                match bootstrap_kubeconfig(ctx, request, &settings, &name, &missing).await? {
                    Ok(kubeconfig) => kubeconfig,
                    Err(waiting) => return Ok(waiting),
                };
            let owner = children::owner_reference(request, true);
            let preparation = hostprep::build(
                &ctx.config,
                &request.name_any(),
                &owner,
                params,
                &access,
                &settings,
                &kubeconfig,
            );
            children::apply_secret(ctx, &preparation.secret).await?;
            children::apply_owned(ctx, request, preparation.objects, false).await?;
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
    settings: &HostPreparationSettings<'_>,
    name: &str,
    hosts: &[String],
) -> Result<std::result::Result<String, Desired>> {
    let list = hosts.join(", ");
    let not_ready =
        |reason: &str, message: String| Ok(Err(Desired::false_(HOSTS_PREPARED, reason, message)));
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
                settings.apiserver,
                &ca,
            );
            children::apply_owned(ctx, request, vec![asked], false).await?;
            issuing()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcm_core::template::{ParameterErrors, refuse_request_host_access};
    use serde_json::{Value, json};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";

    fn config(allow: bool) -> Config {
        Config::parse(if allow {
            &["--allow-request-host-access"]
        } else {
            &[]
        })
    }

    fn parameters(host_access: Value) -> Value {
        json!({
            "clusterName": "c", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.1.0.1"},
            "hosts": {"controlPlane": ["h1"], "workers": ["h2"]}, "hostPreparation": "auto",
            "hostAccess": host_access,
        })
    }

    fn checked(
        config: &Config,
        applied: Option<&ClusterParameters>,
        parameters: &Value,
    ) -> std::result::Result<ClusterParameters, ParameterErrors> {
        let validation = lcm_core::template::validate(parameters);
        let (allowed, inventory) = (config.allow_request_host_access, config.host_inventory());
        refuse_request_host_access(allowed, &inventory, applied, parameters, validation)
    }

    #[test]
    fn request_host_access_is_refused_unless_allowed() {
        let given = parameters(json!([{"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"}]));
        let errors = checked(&config(false), None, &given).expect_err("refused");
        let text = errors.to_string();
        assert!(
            text.starts_with("templateParameters.hostAccess: ")
                && text.contains("not allowed on this O-Cloud")
                && text.contains("ConfigMap o2ims-system/lcm-inventory")
                && text.contains("--allow-request-host-access"),
            "{text}"
        );
        assert!(checked(&config(true), None, &given).is_ok());
        assert!(checked(&config(false), None, &parameters(json!([]))).is_ok());
        // Other problems are reported beside the refusal.
        let bad = parameters(json!([{"id": "h2", "address": "10.0.0.2", "sshUser": "root; id"}]));
        let errors = checked(&config(false), None, &bad).expect_err("refused");
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "templateParameters.hostAccess[0].sshUser",
                "templateParameters.hostAccess"
            ]
        );
        // A cluster provisioned with host access keeps it; adding to it is refused.
        let applied = lcm_core::template::validate(&given).expect("valid");
        assert!(checked(&config(false), Some(&applied), &given).is_ok());
        let more = parameters(json!([
            {"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu"},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ]));
        assert!(checked(&config(false), Some(&applied), &more).is_err());
    }

    #[test]
    fn access_comes_from_the_inventory_then_an_allowed_request() {
        let inventory = Inventory::parse(
            "input.json",
            &json!({"hosts": [{"id": "h1", "hostname": "node-1", "address": "10.0.0.1", "sshHostKeys": [KEY]}], "clusters": []}).to_string(),
        )
        .expect("inventory");
        let params = lcm_core::template::validate(&parameters(json!([
            {"id": "h1", "address": "192.0.2.66", "sshUser": "attacker"},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ])))
        .expect("valid");
        let hosts = ["h1".to_string(), "h2".to_string()];
        assert_eq!(
            access(Some(&inventory), &params, false, &hosts),
            Err(vec!["h2".to_string()])
        );
        let found = access(Some(&inventory), &params, true, &hosts).expect("both");
        assert_eq!(found[0].address, "10.0.0.1", "the inventory wins");
        assert_eq!(found[0].hostname.as_deref(), Some("node-1"));
        assert_eq!(
            found[1].address, "10.0.0.2",
            "the request's, for a host the inventory lacks"
        );
        assert_eq!(access(None, &params, false, &hosts), Err(hosts.to_vec()));
        let missing = not_in_inventory(&config(false), &["h2".into()], false);
        assert_eq!(missing.reason, "HostPreparationFailed");
        assert!(
            missing.message.contains("h2")
                && missing
                    .message
                    .contains("ConfigMap o2ims-system/lcm-inventory (input.json) does not exist"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn a_host_without_a_pinned_key_is_not_prepared() {
        let params = lcm_core::template::validate(&parameters(json!([
            {"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu", "sshHostKeys": [KEY]},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ])))
        .expect("valid");
        let config = config(true);
        assert!(unpinned(&config, &params.host_access[..1]).is_none());
        let failed = unpinned(&config, &params.host_access).expect("h2 has no key");
        assert_eq!(failed.reason, "HostPreparationFailed");
        assert!(
            failed.message.contains("h2")
                && !failed.message.contains("h1")
                && failed.message.contains("sshHostKeys")
                && failed
                    .message
                    .contains("ConfigMap o2ims-system/lcm-inventory"),
            "{}",
            failed.message
        );
    }
}
