//! Observe: what the cluster's objects say, as the request's report. Pure: from the snapshot
//! taken before this pass wrote anything, so a spec this pass changed is judged by the next.

use lcm_core::conditions::Desired;
use lcm_core::crd::{
    ProvisionedResourceSet, ProvisioningState, ResourceProvisioningStatus, SecretReference,
};
use lcm_core::status::provisioning::{Observed, cluster_progress, host_phase};
use lcm_core::template::ClusterParameters;
use operator_kit::apply::Applied;

use super::apply::Written;
use super::validate::Build;
use crate::report::{self, Report, VALIDATED};
use crate::snapshot::{Hosts, Snapshot};

/// The report of a cluster whose objects `written` applied; `prepared` is HostsPrepared.
pub fn observe(build: &Build, prepared: Desired, written: &Written, world: &Snapshot) -> Report {
    let conditions = vec![build.validated.clone(), prepared, written.created.clone()];
    let report = cluster_report(&build.params, &world.observed, &world.hosts, conditions);
    let mut report = refusal_shown(report);
    if written.changed == Applied::NewGeneration && report.state == ProvisioningState::Fulfilled {
        // A spec changed (a version, hosts, a bootstrap): the snapshot shows the objects as they
        // were before this write, so fulfilled is for the next reconcile to say, once their
        // watches bring what Cluster API makes of them. A write of labels or annotations only
        // (hand-off settings, inventory labels) gives Cluster API nothing to do: the cluster
        // stays fulfilled.
        report.state = ProvisioningState::Progressing;
        report.message =
            "Cluster API objects updated; waiting for Cluster API to report them".into();
    }
    report
}

/// The report of a cluster whose objects exist.
fn cluster_report(
    params: &ClusterParameters,
    observed: &Observed,
    hosts: &Hosts,
    mut conditions: Vec<Desired>,
) -> Report {
    let progress = cluster_progress(observed);
    conditions.extend(progress.conditions);
    let namespace = params.namespace();
    let host_status: Vec<ResourceProvisioningStatus> = params
        .all_hosts()
        .map(|id| {
            let view = hosts.get(id).map(|(v, _)| v);
            ResourceProvisioningStatus {
                resource_name: id.clone(),
                resource_id: view.and_then(|v| v.uid.clone()),
                resource_provisioning_phase: host_phase(view, &namespace, &params.cluster_name),
            }
        })
        .collect();
    let cluster_uid = observed.cluster.as_ref().and_then(|c| c.uid.clone());
    let fulfilled = progress.state == ProvisioningState::Fulfilled;
    let mut report = Report::new(progress.state, progress.message, conditions);
    report.node_cluster = Some(ResourceProvisioningStatus {
        resource_name: params.cluster_name.clone(),
        resource_id: cluster_uid.clone(),
        resource_provisioning_phase: report::node_cluster_phase(progress.state),
    });
    if fulfilled {
        report.resource_set = Some(ProvisionedResourceSet {
            o_cloud_node_cluster_id: cluster_uid,
            o_cloud_infrastructure_resource_ids: host_status
                .iter()
                .filter_map(|h| h.resource_id.clone())
                .collect(),
        });
        let secret = SecretReference {
            name: format!("{}-kubeconfig", params.cluster_name),
            namespace,
        };
        report.message = format!(
            "{}; kubeconfig in Secret {}/{} (key value)",
            report.message, secret.namespace, secret.name
        );
        report.kubeconfig = Some(secret);
    }
    report.hosts = host_status;
    report
}

/// A refused change fails the request (its spec is not what runs), whatever state the cluster is
/// in: an SMO must not read `fulfilled` for a spec that was not applied. The cluster's own
/// conditions still say how it runs.
fn refusal_shown(mut report: Report) -> Report {
    let refused = report
        .conditions
        .iter()
        .find(|c| c.type_ == VALIDATED && c.reason == "ChangeRefused");
    if let Some(refused) = refused {
        report.message = format!(
            "{}; the cluster keeps running as it was ({}): revert the spec, or change it again once the cluster is fulfilled",
            refused.message, report.message
        );
        report.state = ProvisioningState::Failed;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::validate::refused;
    use crate::report::{HOSTS_PREPARED, RESOURCES_CREATED};
    use lcm_core::crd::ResourceProvisioningPhase;
    use serde_json::json;

    fn params() -> ClusterParameters {
        lcm_core::template::validate(&json!({
            "clusterName": "one", "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": "10.0.0.1"},
            "hosts": {"controlPlane": ["h1"], "workers": ["h2"]},
        }))
        .expect("valid")
    }

    fn written(changed: Applied) -> Written {
        Written {
            created: Desired::true_(RESOURCES_CREATED, "Created", "created"),
            changed,
        }
    }

    fn prepared() -> Desired {
        Desired::true_(HOSTS_PREPARED, "HostsRegistered", "all 2 hosts")
    }

    #[test]
    fn a_cluster_cluster_api_has_not_built_yet_progresses_with_every_host_listed() {
        let build = Build {
            params: params(),
            applied: None,
            validated: Desired::true_(VALIDATED, "Valid", "valid"),
        };
        let report = observe(
            &build,
            prepared(),
            &written(Applied::NewGeneration),
            &Snapshot::default(),
        );
        assert_eq!(report.state, ProvisioningState::Progressing);
        let reasons: Vec<&str> = report
            .conditions
            .iter()
            .map(|c| c.reason.as_str())
            .collect();
        assert_eq!(reasons[..3], ["Valid", "HostsRegistered", "Created"]);
        let hosts: Vec<&str> = report
            .hosts
            .iter()
            .map(|h| h.resource_name.as_str())
            .collect();
        assert_eq!(hosts, ["h1", "h2"]);
        let node = report.node_cluster.expect("node cluster");
        assert_eq!(
            (
                node.resource_name.as_str(),
                node.resource_provisioning_phase
            ),
            ("one", ResourceProvisioningPhase::Processing)
        );
        assert_eq!((report.kubeconfig, report.resource_set), (None, None));
    }

    #[test]
    fn a_refused_change_fails_the_request_and_says_the_cluster_runs_as_it_was() {
        let build = refused(&params(), "the hosts are busy".into());
        let report = observe(
            &build,
            prepared(),
            &written(Applied::Unchanged),
            &Snapshot::default(),
        );
        assert_eq!(report.state, ProvisioningState::Failed);
        assert!(
            report.message.starts_with(
                "the spec change was not applied: the hosts are busy; the cluster keeps running as it was ("
            ),
            "{}",
            report.message
        );
    }
}
