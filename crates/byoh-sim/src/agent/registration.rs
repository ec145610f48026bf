//! An agent's start (agent/registration/host_registrar.go `Register`): it creates its host's
//! ByoHost, named after the hostname, with the agent's `--label`s (here the `host-id` label;
//! labels are set only at creation), unless it exists; then, on every start, reports the host's
//! platform and network in the status.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, ObjectMeta};
use lcm_core::HOST_ID_LABEL;
use lcm_core::capi::Kind;
use serde_json::{Value, json};

use super::Agent;
use crate::config::SimHost;
use crate::error::Result;
use crate::objects;

pub async fn register(agent: &Agent) -> Result<()> {
    ensure_namespace(agent).await?;
    let host = &agent.host;
    let api = agent.byo_hosts();
    if api.get_opt(&host.hostname).await?.is_none() {
        let byo_host: DynamicObject = serde_json::from_value(json!({
            "apiVersion": Kind::ByoHost.api_version(), "kind": Kind::ByoHost.name(),
            "metadata": {"name": host.hostname, "namespace": agent.namespace,
                "labels": {HOST_ID_LABEL: host.id}},
            "spec": {},
        }))?;
        if objects::create_if_missing(&api, &byo_host).await? {
            tracing::info!(host = %host.id, byo_host = %host.hostname, namespace = %agent.namespace, "host registered");
        }
    }
    let status = json!({"status": {
        "hostinfo": {"osname": "linux", "osimage": "Ubuntu 22.04.4 LTS", "architecture": "amd64"},
        "network": network(host),
    }});
    objects::merge_status(&api, &host.hostname, status).await
}

/// The namespace exists on a real management cluster (mgmt.sh creates it); here nobody else
/// creates it, and an agent may not: the simulator does, as the administrator.
async fn ensure_namespace(agent: &Agent) -> Result<()> {
    let api: Api<Namespace> = Api::all(agent.sim.client.clone());
    let object = Namespace {
        metadata: ObjectMeta {
            name: Some(agent.namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    objects::create_if_missing(&api, &object).await.map(|_| ())
}

/// The host's one interface, the default route's, with its address.
fn network(host: &SimHost) -> Value {
    let prefix = |address: &String| if address.contains(':') { 64 } else { 24 };
    let addresses: Vec<String> = host
        .address
        .iter()
        .map(|a| format!("{a}/{}", prefix(a)))
        .collect();
    json!([{
        "connected": true, "isDefault": true, "networkInterfaceName": "ens3",
        "ipAddrs": addresses, "macAddr": mac_address(&host.id),
    }])
}

/// A stable, locally administered MAC address per host (FNV-1a of its id).
fn mac_address(id: &str) -> String {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let [_, a, b, c] = hash.to_be_bytes();
    format!("52:54:00:{a:02x}:{b:02x}:{c:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_stable_and_distinct() {
        assert_eq!(mac_address("host-1"), mac_address("host-1"));
        assert_ne!(mac_address("host-1"), mac_address("host-2"));
        assert!(mac_address("host-1").starts_with("52:54:00:"));
    }
}
