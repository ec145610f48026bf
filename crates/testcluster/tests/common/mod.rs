//! Helpers shared by this crate's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

/// Cluster API's `Cluster` at the version the BYOH provider speaks.
pub fn capi_cluster_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "cluster.x-k8s.io",
        "v1beta1",
        "Cluster",
    ))
}

/// A valid `cluster.x-k8s.io/v1beta1` Cluster, with `extra_spec` merged into its spec.
pub fn capi_cluster(name: &str, extra_spec: serde_json::Value) -> anyhow::Result<DynamicObject> {
    let mut spec = json!({
        "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
        "controlPlaneEndpoint": {"host": "10.0.0.10", "port": 6443},
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    Ok(serde_json::from_value(json!({
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": spec,
    }))?)
}

/// The API server's status for an error response, or a test failure for anything else.
pub fn api_status<T: std::fmt::Debug>(
    result: kube::Result<T>,
) -> anyhow::Result<Box<kube::core::Status>> {
    match result {
        Err(kube::Error::Api(status)) => Ok(status),
        other => anyhow::bail!("expected an API error, got {other:?}"),
    }
}
