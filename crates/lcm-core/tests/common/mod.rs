//! Fixtures shared by the lcm-core tests.

#![allow(dead_code)] // each test binary uses a different part of the fixtures

use serde_json::{Value, json};

/// Valid parameters: three control-plane hosts and two workers.
pub fn parameters() -> Value {
    json!({
        "clusterName": "demo",
        "kubernetesVersion": "v1.32.9",
        "controlPlaneEndpoint": {"host": "10.0.0.100", "port": 6443},
        "hosts": {"controlPlane": ["h1", "h2", "h3"], "workers": ["h4", "h5"]},
        "network": {"podCIDRs": ["192.168.0.0/16"], "serviceCIDRs": ["10.128.0.0/12"], "serviceDomain": "cluster.local"},
        "cni": "calico",
        "hostPreparation": "skip"
    })
}

/// `parameters()` with `pointer` (a JSON pointer) set to `value`.
pub fn with(pointer: &str, value: Value) -> Value {
    let mut params = parameters();
    *params
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} exists in the fixture")) = value;
    params
}
