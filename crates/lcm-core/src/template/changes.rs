//! What changing the parameters of a provisioned cluster means: a worker scale,
//! a Kubernetes upgrade, or something the cluster cannot do in place.

use std::collections::BTreeSet;

use super::{ClusterParameters, KubernetesVersion};

/// An accepted change of a provisioned cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Worker hosts added.
    pub added_workers: Vec<String>,
    /// Worker hosts removed (their machines are deleted first, and the hosts released).
    pub removed_workers: Vec<String>,
    /// The new Kubernetes version, for an upgrade.
    pub upgrade_to: Option<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.added_workers.is_empty()
            && self.removed_workers.is_empty()
            && self.upgrade_to.is_none()
    }
}

/// The smallest control plane KubeadmControlPlane rolls by removing a machine first.
const MIN_IN_PLACE_CONTROL_PLANE: usize = 3;

/// Classifies going from `applied` to `desired`; an error says why the change is refused.
/// Only workers and (upwards) the Kubernetes version may change in place; SSH access and
/// the host-preparation policy may change freely, since they only matter for new hosts.
pub fn classify(
    applied: &ClusterParameters,
    desired: &ClusterParameters,
) -> Result<Change, String> {
    let mut refused = Vec::new();
    let fixed = [
        ("clusterName", applied.cluster_name != desired.cluster_name),
        (
            "controlPlaneEndpoint",
            applied.control_plane_endpoint != desired.control_plane_endpoint,
        ),
        ("network", applied.network != desired.network),
        ("cni", applied.cni != desired.cni),
        (
            "hosts.controlPlane",
            applied.hosts.control_plane != desired.hosts.control_plane,
        ),
    ];
    for (field, changed) in fixed {
        if changed {
            refused.push(format!("{field} cannot change once the cluster exists"));
        }
    }
    let mut change = Change::default();
    if applied.kubernetes_version != desired.kubernetes_version {
        let from = applied.kubernetes_version.parse::<KubernetesVersion>();
        let to = desired.kubernetes_version.parse::<KubernetesVersion>();
        match (from, to) {
            (Ok(from), Ok(to)) if to < from => {
                refused.push(format!("downgrade from {from} to {to} is not supported"))
            }
            (Ok(from), Ok(to)) if to.minor > from.minor + 1 => refused.push(format!(
                "upgrade from {from} to {to} skips a minor version; upgrade one minor at a time"
            )),
            _ if desired.hosts.control_plane.len() < MIN_IN_PLACE_CONTROL_PLANE => {
                refused.push(format!(
                    "a control plane of {} host(s) cannot be upgraded in place: below {MIN_IN_PLACE_CONTROL_PLANE} replicas Cluster API's KubeadmControlPlane creates a machine's successor before removing it (maxSurge 1), and the template selects no spare host for it; provision the cluster with {MIN_IN_PLACE_CONTROL_PLANE} control-plane hosts, or create a new one at {}",
                    desired.hosts.control_plane.len(),
                    desired.kubernetes_version
                ))
            }
            _ => change.upgrade_to = Some(desired.kubernetes_version.clone()),
        }
    }
    let before: BTreeSet<&String> = applied.hosts.workers.iter().collect();
    let after: BTreeSet<&String> = desired.hosts.workers.iter().collect();
    change.added_workers = after.difference(&before).map(|h| h.to_string()).collect();
    change.removed_workers = before.difference(&after).map(|h| h.to_string()).collect();
    if refused.is_empty() {
        Ok(change)
    } else {
        Err(refused.join("; "))
    }
}
