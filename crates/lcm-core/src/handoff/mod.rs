//! Day 2: what a fulfilled cluster is handed to, so workloads reach it: ArgoCD (a declarative
//! cluster Secret), Rancher Turtles (its auto-import label on the Cluster) and Config Sync (a
//! RootSync applied by a ClusterResourceSet). Pure builders; the operator applies them.

pub mod argocd;
pub mod config_sync;
pub mod rancher;

use crate::template::ClusterParameters;

/// The label naming the site a cluster runs at, by which workloads are routed to it.
pub const SITE_LABEL: &str = "site";

/// The cluster's `site` label, if it has one.
pub fn site(params: &ClusterParameters) -> Option<&str> {
    params.labels.get(SITE_LABEL).map(String::as_str)
}
