//! Whether a cluster's nodes can be Ready: kubelet reports a node NotReady until a CNI runs on
//! it. A cluster gets one from a ClusterResourceSet of its namespace selecting it, which
//! Cluster API applies once the workload API server answers (the control plane initialized)
//! and every resource it lists exists (internal/controllers/clusterresourceset/
//! clusterresourceset_controller.go), or from its owner (`SimConfig::cni_by_cluster_owner`).

use std::collections::BTreeMap;

use kube::core::{Selector, SelectorExt};
use lcm_core::capi::Kind;
use serde_json::Value;

use crate::claiming::label_selector;
use crate::conditions;
use crate::context::Context;
use crate::objects::namespace;

/// Whether a CNI runs on the nodes of `cluster`.
pub fn installed(ctx: &Context, cluster: &Value) -> bool {
    let initialized = conditions::is_true(cluster, "ControlPlaneInitialized");
    initialized && (ctx.config.cni_by_cluster_owner || applied_by_a_resource_set(ctx, cluster))
}

fn applied_by_a_resource_set(ctx: &Context, cluster: &Value) -> bool {
    let ns = namespace(cluster);
    let labels = cluster["metadata"]["labels"].as_object();
    let selects = |set: &Value| {
        label_selector(&set["spec"]["clusterSelector"]).is_ok_and(|selector: Selector| {
            let labels: BTreeMap<String, String> = labels
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            // An empty selector selects no cluster.
            !set["spec"]["clusterSelector"]
                .as_object()
                .is_none_or(|s| s.is_empty())
                && selector.matches(&labels)
        })
    };
    let complete = |set: &Value| {
        set["spec"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|resource| {
                let name = resource["name"].as_str().unwrap_or_default();
                match resource["kind"].as_str() {
                    Some("ConfigMap") => ctx.stores.config_map(ns, name).is_some(),
                    Some("Secret") => ctx.stores.secret_exists(ns, name),
                    _ => false,
                }
            })
    };
    ctx.stores
        .list(Kind::ClusterResourceSet, Some(ns), &Selector::default())
        .iter()
        .any(|set| selects(set) && complete(set))
}
