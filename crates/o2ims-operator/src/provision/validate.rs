//! Validate: the spec against the template, and against what runs. A new request must be valid
//! and conflict-free; a provisioned cluster accepts only worker and upgrade changes, and only
//! once fulfilled. Pure: decided from the snapshot.

use std::collections::BTreeMap;

use lcm_core::capi::observe::ByoHostView;
use lcm_core::conditions::Desired;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use lcm_core::status::provisioning::cluster_progress;
use lcm_core::template::{self, ClusterParameters};

use crate::config::Config;
use crate::conflicts::{self, Conflict};
use crate::report::VALIDATED;
use crate::snapshot::Snapshot;

/// Which parameters to build from, and how the request's spec was judged.
#[derive(Debug)]
pub struct Build {
    pub params: ClusterParameters,
    /// The parameters the running cluster was applied from.
    pub applied: Option<ClusterParameters>,
    /// The ProvisioningRequestValidated condition.
    pub validated: Desired,
}

/// A build, or the condition that fails (or, Unknown, holds back) the request before anything
/// is created.
pub type Plan = std::result::Result<Build, Desired>;

/// Judges `request`'s spec against the template and against what `world` shows running.
pub fn validate(config: &Config, request: &ProvisioningRequest, world: &Snapshot) -> Plan {
    let spec = &request.spec;
    let validation = template::refuse_request_host_access(
        config.allow_request_host_access,
        &config.host_inventory(),
        world.applied.as_ref(),
        &spec.template_parameters,
        template::validate_request(
            &spec.template_name,
            &spec.template_version,
            &spec.template_parameters,
        ),
    );
    let conflict = |params: &ClusterParameters, checked: &[String]| {
        conflicts::ambiguous(checked, &world.ambiguous)
            .map(Conflict::Taken)
            .or_else(|| {
                let views: BTreeMap<String, ByoHostView> = world
                    .hosts
                    .iter()
                    .map(|(id, (view, _))| (id.clone(), view.clone()))
                    .collect();
                let in_ledger = |host: &str| world.in_ledger(host);
                conflicts::find(
                    request,
                    params,
                    checked,
                    &world.requests,
                    &views,
                    &in_ledger,
                )
            })
    };
    let Some(applied) = world.applied.clone() else {
        let params = validation.map_err(|errors| {
            Desired::false_(VALIDATED, "InvalidParameters", errors.to_string())
        })?;
        let all: Vec<String> = params.all_hosts().cloned().collect();
        if let Some(conflict) = conflict(&params, &all) {
            return Err(not_held(conflict));
        }
        return Ok(Build {
            params,
            applied: None,
            validated: valid(),
        });
    };
    let desired = match validation {
        Err(errors) => return Ok(refused(&applied, errors.to_string())),
        Ok(desired) => desired,
    };
    let change = match template::classify(&applied, &desired) {
        Err(why) => return Ok(refused(&applied, why)),
        Ok(change) if change.is_empty() => {
            return Ok(Build {
                params: desired,
                applied: Some(applied),
                validated: valid(),
            });
        }
        Ok(change) => change,
    };
    let progress = cluster_progress(&world.observed);
    if progress.state != ProvisioningState::Fulfilled {
        return Ok(refused(
            &applied,
            format!(
                "the cluster is {} ({}); change it once it is fulfilled",
                progress.state, progress.message
            ),
        ));
    }
    if let Some(conflict) = conflict(&desired, &change.added_workers) {
        return Ok(refused(&applied, conflict.into_message()));
    }
    let mut what = Vec::new();
    if let Some(version) = &change.upgrade_to {
        what.push(format!("upgrade to {version}"));
    }
    if !change.added_workers.is_empty() || !change.removed_workers.is_empty() {
        what.push(format!(
            "workers +{:?} -{:?}",
            change.added_workers, change.removed_workers
        ));
    }
    Ok(Build {
        params: desired,
        applied: Some(applied),
        validated: Desired::true_(VALIDATED, "ChangeAccepted", what.join(", ")),
    })
}

/// The condition of a new request that cannot have a host: failed when another holds it,
/// Unknown (waiting) when one that comes first wants it.
pub fn not_held(conflict: Conflict) -> Desired {
    match conflict {
        Conflict::Taken(message) => Desired::false_(VALIDATED, "HostConflict", message),
        Conflict::Wanted(message) => Desired::unknown(VALIDATED, "WaitingForHost", message),
    }
}

/// The build of a change that is not applied: the cluster stays as `applied`.
pub fn refused(applied: &ClusterParameters, why: String) -> Build {
    Build {
        params: applied.clone(),
        applied: Some(applied.clone()),
        validated: Desired::false_(
            VALIDATED,
            "ChangeRefused",
            format!("the spec change was not applied: {why}"),
        ),
    }
}

fn valid() -> Desired {
    Desired::true_(VALIDATED, "Valid", "template and parameters are valid")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use lcm_core::crd::ProvisioningRequestSpec;
    use serde_json::{Value, json};

    fn parameters(cluster: &str, vip: &str, hosts: &[&str], workers: &[&str]) -> Value {
        json!({
            "clusterName": cluster, "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": vip},
            "hosts": {"controlPlane": hosts, "workers": workers},
        })
    }

    fn request(name: &str, created: &str, parameters: Value) -> ProvisioningRequest {
        let mut pr = ProvisioningRequest::new(
            name,
            ProvisioningRequestSpec {
                template_name: template::NAME.into(),
                template_version: template::VERSION.into(),
                template_parameters: parameters,
                ..Default::default()
            },
        );
        pr.metadata.creation_timestamp = Some(Time(created.parse().expect("timestamp")));
        pr
    }

    fn judged(request: &ProvisioningRequest, world: &Snapshot) -> Plan {
        validate(&Config::parse(&[]), request, world)
    }

    #[test]
    fn a_new_valid_request_builds_from_its_spec_and_an_invalid_one_fails() {
        let new = request(
            "a",
            "2026-01-01T00:00:00Z",
            parameters("one", "10.0.0.1", &["h1"], &[]),
        );
        let build = judged(&new, &Snapshot::default()).expect("valid");
        assert_eq!(build.params.cluster_name, "one");
        assert_eq!(build.applied, None);
        assert_eq!(build.validated.reason, "Valid");
        let invalid = request(
            "b",
            "2026-01-01T00:00:00Z",
            json!({"clusterName": "Not A Name"}),
        );
        let failed = judged(&invalid, &Snapshot::default()).expect_err("invalid");
        assert_eq!(
            (failed.reason.as_str(), failed.status),
            ("InvalidParameters", "False")
        );
    }

    #[test]
    fn a_new_request_waits_for_a_host_that_an_older_one_wants() {
        let older = request(
            "a",
            "2026-01-01T00:00:00Z",
            parameters("one", "10.0.0.1", &["h1"], &[]),
        );
        let newer = request(
            "b",
            "2026-01-01T00:00:01Z",
            parameters("two", "10.0.0.2", &["h1"], &[]),
        );
        let world = Snapshot {
            requests: vec![Arc::new(older), Arc::new(newer.clone())],
            ..Default::default()
        };
        let waiting = judged(&newer, &world).expect_err("waits");
        assert_eq!(
            (waiting.reason.as_str(), waiting.status),
            ("WaitingForHost", "Unknown")
        );
    }

    #[test]
    fn a_running_cluster_keeps_its_parameters_when_a_change_is_refused() {
        let running = parameters("one", "10.0.0.1", &["h1"], &["h2"]);
        let applied = template::validate(&running).expect("valid");
        let world = Snapshot {
            applied: Some(applied.clone()),
            ..Default::default()
        };
        let unchanged = request("a", "2026-01-01T00:00:00Z", running);
        let build = judged(&unchanged, &world).expect("unchanged");
        assert_eq!(build.validated.reason, "Valid");
        // A scale of a cluster that is not fulfilled waits for it to be.
        let scaled = parameters("one", "10.0.0.1", &["h1"], &["h2", "h3"]);
        let build = judged(&request("a", "2026-01-01T00:00:00Z", scaled), &world).expect("refused");
        assert_eq!(build.params, applied);
        assert_eq!(build.validated.reason, "ChangeRefused");
        assert!(
            build
                .validated
                .message
                .starts_with("the spec change was not applied: the cluster is")
                && build
                    .validated
                    .message
                    .ends_with("change it once it is fulfilled"),
            "{}",
            build.validated.message
        );
        // An invalid spec of a running cluster is a refused change, not a failed cluster.
        let invalid = request("a", "2026-01-01T00:00:00Z", json!({"clusterName": "one"}));
        let build = judged(&invalid, &world).expect("refused");
        assert_eq!(
            (build.params, build.validated.reason.as_str()),
            (applied, "ChangeRefused")
        );
    }
}
