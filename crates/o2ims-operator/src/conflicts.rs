//! Whether a request may take its hosts: no request that comes first uses them (or its cluster
//! name or endpoint), and no other cluster has claimed them. One that has acted on its hosts
//! comes first, then the older, so two requests racing for a host settle the same way whichever
//! is reconciled first. A request waits while one that comes first wants its host but has not
//! claimed it in the ledger yet: it fails only once a holder is known, and names it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;

use lcm_core::capi::observe::ByoHostView;
use lcm_core::conditions;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::status::provisioning::holds_resources;
use lcm_core::template::ClusterParameters;

use crate::report::{HOSTS_PREPARED, RESOURCES_CREATED};

/// Whether `other` comes first for a host: a request that has acted on its hosts (started a
/// host-preparation Job or created its Cluster API objects) before one that has not, so an
/// older request fixed later cannot take hosts a newer one already uses; else the older (name
/// breaks ties).
fn precedes(other: &ProvisioningRequest, request: &ProvisioningRequest) -> bool {
    let key = |r: &ProvisioningRequest| {
        (
            !has_acted(r),
            r.creation_timestamp().map(|t| t.0),
            r.name_any(),
        )
    };
    key(other) < key(request)
}

/// Whether the request's status says it started preparing its hosts or created its cluster.
fn has_acted(request: &ProvisioningRequest) -> bool {
    let holds = |type_: &str, reasons: &[&str]| {
        conditions::find(request.conditions(), type_)
            .is_some_and(|c| reasons.contains(&c.reason.as_str()))
    };
    holds(RESOURCES_CREATED, &["Created"])
        || holds(
            HOSTS_PREPARED,
            &["Preparing", "WaitingForRegistration", "HostsRegistered"],
        )
}

/// The first of `hosts_to_check` whose host id several ByoHosts claim: pinning on it would give
/// the cluster whichever of them BYOH lists first.
pub fn ambiguous(
    hosts_to_check: &[String],
    ambiguous: &crate::snapshot::Ambiguous,
) -> Option<String> {
    hosts_to_check.iter().find_map(|host| {
        let byo_hosts = ambiguous.get(host)?;
        Some(format!(
            "host `{host}` is claimed by {} ByoHosts ({}): its host-id label is ambiguous, so it cannot be pinned; remove the ByoHost that is not that host",
            byo_hosts.len(),
            byo_hosts.join(", ")
        ))
    })
}

/// A conflict of a request with what comes first.
#[derive(Debug, PartialEq)]
pub enum Conflict {
    /// Taken by another: the request cannot have it.
    Taken(String),
    /// Wanted by a request that comes first and has not claimed it yet, or claimed by one that
    /// has not started using it.
    Wanted(String),
}

impl Conflict {
    pub fn into_message(self) -> String {
        match self {
            Conflict::Taken(message) | Conflict::Wanted(message) => message,
        }
    }
}

/// The first conflict of `params` (for the hosts in `hosts_to_check`). `in_ledger` says whether
/// a host has a HostClaim: then the ledger, not this cache, says who holds it.
pub fn find(
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    hosts_to_check: &[String],
    requests: &[Arc<ProvisioningRequest>],
    byo_hosts: &BTreeMap<String, ByoHostView>,
    in_ledger: &dyn Fn(&str) -> bool,
) -> Option<Conflict> {
    for other in requests.iter().filter(|o| {
        o.name_any() != request.name_any()
            && o.metadata.deletion_timestamp.is_none()
            && precedes(o, request)
            && holds_resources(o)
    }) {
        let Ok(theirs) =
            serde_json::from_value::<ClusterParameters>(other.spec.template_parameters.clone())
        else {
            continue;
        };
        let who = format!(
            "ProvisioningRequest {} (cluster `{}`)",
            other.name_any(),
            theirs.cluster_name
        );
        if let Some(host) = hosts_to_check
            .iter()
            .find(|h| !in_ledger(h) && theirs.all_hosts().any(|t| t == *h))
        {
            return Some(Conflict::Wanted(format!(
                "host `{host}` is wanted by {who}, which comes first; waiting for it to take the host or fail"
            )));
        }
        if theirs.cluster_name == params.cluster_name {
            return Some(Conflict::Taken(format!(
                "cluster name `{}` is already used by {who}",
                params.cluster_name
            )));
        }
        if theirs.control_plane_endpoint.host == params.control_plane_endpoint.host {
            return Some(Conflict::Taken(format!(
                "endpoint {} is already used by {who}",
                params.control_plane_endpoint.host
            )));
        }
    }
    // A host in the ledger is judged there, naming its holder; BYOH's own claim of a host
    // outside the ledger is a cluster this operator did not make.
    hosts_to_check
        .iter()
        .filter(|h| !in_ledger(h))
        .find_map(|host| {
            let claimed_by = byo_hosts.get(host)?.claimed_by.as_deref()?;
            (claimed_by != params.cluster_name).then(|| {
                Conflict::Taken(format!(
                    "host `{host}` is already claimed by cluster `{claimed_by}`"
                ))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use lcm_core::crd::ProvisioningRequestSpec;
    use serde_json::json;

    fn request(
        name: &str,
        created: &str,
        cluster: &str,
        hosts: &[&str],
        vip: &str,
    ) -> ProvisioningRequest {
        let mut pr = ProvisioningRequest::new(
            name,
            ProvisioningRequestSpec {
                template_name: "byoh-workload-cluster".into(),
                template_version: "v1".into(),
                template_parameters: json!({
                    "clusterName": cluster, "kubernetesVersion": "v1.32.9",
                    "controlPlaneEndpoint": {"host": vip}, "hosts": {"controlPlane": hosts},
                }),
                ..Default::default()
            },
        );
        pr.metadata.creation_timestamp = Some(Time(created.parse().expect("timestamp")));
        pr
    }

    fn params(pr: &ProvisioningRequest) -> ClusterParameters {
        lcm_core::template::validate(&pr.spec.template_parameters).expect("valid")
    }

    fn unclaimed(_: &str) -> bool {
        false
    }

    fn check(pr: &ProvisioningRequest, all: &[ProvisioningRequest]) -> Option<Conflict> {
        let all: Vec<_> = all.iter().cloned().map(Arc::new).collect();
        let p = params(pr);
        let hosts: Vec<String> = p.all_hosts().cloned().collect();
        find(pr, &p, &hosts, &all, &BTreeMap::new(), &unclaimed)
    }

    #[test]
    fn the_older_request_wins_a_host() {
        let a = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        let b = request("b", "2026-01-01T00:00:01Z", "two", &["h1"], "10.0.0.2");
        let all = [a.clone(), b.clone()];
        assert_eq!(check(&a, &all), None);
        let conflict = check(&b, &all).expect("b waits");
        assert_eq!(
            conflict,
            Conflict::Wanted("host `h1` is wanted by ProvisioningRequest a (cluster `one`), which comes first; waiting for it to take the host or fail".into())
        );
    }

    #[test]
    fn a_host_in_the_ledger_is_left_to_the_ledger() {
        let a = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        let b = request("b", "2026-01-01T00:00:01Z", "two", &["h1"], "10.0.0.2");
        let all: Vec<_> = [a, b.clone()].into_iter().map(Arc::new).collect();
        let p = params(&b);
        let claimed = |host: &str| host == "h1";
        assert_eq!(
            find(&b, &p, &["h1".into()], &all, &BTreeMap::new(), &claimed),
            None
        );
    }

    #[test]
    fn a_failed_or_deleting_request_is_not_waited_for() {
        let mut failed = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        failed.status = Some(
            serde_json::from_value(json!({"conditions": [{
                "type": "ProvisioningRequestValidated", "status": "False", "reason": "HostConflict",
                "message": "m", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}))
            .expect("status"),
        );
        let mut deleting = request("c", "2026-01-01T00:00:00Z", "three", &["h1"], "10.0.0.3");
        deleting.metadata.deletion_timestamp =
            Some(Time("2026-01-01T00:00:05Z".parse().expect("time")));
        let b = request("b", "2026-01-01T00:00:01Z", "two", &["h1"], "10.0.0.2");
        assert_eq!(check(&b, &[failed, deleting, b.clone()]), None);
    }

    #[test]
    fn names_and_endpoints_conflict_too() {
        let a = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        let same_name = request("b", "2026-01-01T00:00:01Z", "one", &["h2"], "10.0.0.2");
        let same_vip = request("c", "2026-01-01T00:00:01Z", "three", &["h3"], "10.0.0.1");
        let taken = |conflict: Option<Conflict>| match conflict {
            Some(Conflict::Taken(message)) => message,
            other => panic!("not taken: {other:?}"),
        };
        assert!(
            taken(check(&same_name, &[a.clone(), same_name.clone()]))
                .contains("cluster name `one`")
        );
        assert!(taken(check(&same_vip, &[a, same_vip.clone()])).contains("endpoint 10.0.0.1"));
    }

    #[test]
    fn an_ambiguous_host_id_is_a_conflict_naming_its_byohosts() {
        let claims = crate::snapshot::Ambiguous::from([(
            "h2".to_string(),
            vec!["byoh-hosts/b".to_string(), "byoh-hosts/c".to_string()],
        )]);
        assert_eq!(ambiguous(&["h1".into()], &claims), None);
        let message = ambiguous(&["h1".into(), "h2".into()], &claims).expect("conflict");
        assert!(
            message.starts_with("host `h2` is claimed by 2 ByoHosts (byoh-hosts/b, byoh-hosts/c)"),
            "{message}"
        );
    }

    #[test]
    fn hosts_claimed_by_another_cluster_conflict() {
        let a = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        let p = params(&a);
        let claimed = ByoHostView {
            claimed_by: Some("legacy".into()),
            ..Default::default()
        };
        let ours = ByoHostView {
            claimed_by: Some("one".into()),
            ..Default::default()
        };
        let hosts = BTreeMap::from([("h1".to_string(), claimed)]);
        let message = find(&a, &p, &["h1".into()], &[], &hosts, &unclaimed);
        assert_eq!(
            message,
            Some(Conflict::Taken(
                "host `h1` is already claimed by cluster `legacy`".into()
            ))
        );
        let hosts = BTreeMap::from([("h1".to_string(), ours)]);
        assert_eq!(find(&a, &p, &["h1".into()], &[], &hosts, &unclaimed), None);
    }

    #[test]
    fn a_request_that_acted_on_its_hosts_keeps_them_from_an_older_one() {
        let older = request("a", "2026-01-01T00:00:00Z", "one", &["h1"], "10.0.0.1");
        let mut newer = request("b", "2026-01-01T00:00:01Z", "two", &["h1"], "10.0.0.2");
        newer.status = Some(
            serde_json::from_value(json!({"conditions": [{
                "type": "ClusterResourcesCreated", "status": "True", "reason": "Created",
                "message": "m", "lastTransitionTime": "2026-01-01T00:00:02Z"}]}))
            .expect("status"),
        );
        let all = [older.clone(), newer.clone()];
        assert_eq!(check(&newer, &all), None);
        assert!(matches!(
            check(&older, &all),
            Some(Conflict::Wanted(m)) if m.starts_with("host `h1` is wanted by ProvisioningRequest b")
        ));
    }
}
