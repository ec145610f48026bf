//! Reading Cluster API and BYOH objects as tests check them; the real managers write them.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use lcm_core::capi::Kind;
use serde_json::{Value, json};

/// Where the hosts' agents register their ByoHosts unless told otherwise (the project's default).
pub const HOSTS_NAMESPACE: &str = lcm_core::ansible::DEFAULT_BYOH_NAMESPACE;

pub fn api(client: &Client, kind: Kind, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

pub async fn get(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(api(client, kind, namespace)
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).unwrap_or_default()))
}

/// The API server's current resourceVersion for `kind` in `namespace`: a watch from it sees
/// every later change.
pub async fn resource_version(
    client: &Client,
    kind: Kind,
    namespace: &str,
) -> anyhow::Result<String> {
    let list = api(client, kind, namespace)
        .list_metadata(&ListParams::default().limit(1))
        .await?;
    Ok(list.metadata.resource_version.unwrap_or_default())
}

/// The Machine (= ByoMachine) that holds the ByoHost `hostname` of [`HOSTS_NAMESPACE`], as
/// BYOH records it.
pub async fn machine_on(client: &Client, hostname: &str) -> anyhow::Result<String> {
    let host = get(client, Kind::ByoHost, HOSTS_NAMESPACE, hostname).await?;
    let machine = host
        .as_ref()
        .and_then(|h| h["status"]["machineRef"]["name"].as_str());
    machine
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("no machine holds host {hostname}: {host:?}"))
}

/// Every value the `delete-machine` annotation of each Machine of `namespace` had since
/// `resource_version` (of a Machine listing, see [`resource_version`]), by Machine, until the
/// Machine `gone` was deleted: read from a watch, so no write is missed (`null` while it had
/// none). Fails when `gone` is not deleted within `timeout`.
pub async fn deletion_marks_until_gone(
    client: &Client,
    namespace: &str,
    resource_version: &str,
    gone: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<BTreeMap<String, Vec<Value>>> {
    let api = api(client, Kind::Machine, namespace);
    let params = WatchParams::default().timeout(timeout.as_secs() as u32);
    let mut events = api.watch(&params, resource_version).await?.boxed();
    let mut marks: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    while let Some(event) = events.try_next().await? {
        let (WatchEvent::Added(m) | WatchEvent::Modified(m) | WatchEvent::Deleted(m)) = &event
        else {
            continue;
        };
        let name = m.metadata.name.clone().unwrap_or_default();
        let mark = m
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(lcm_core::capi::DELETE_MACHINE_ANNOTATION));
        marks.entry(name.clone()).or_default().push(json!(mark));
        if name == gone && matches!(event, WatchEvent::Deleted(_)) {
            return Ok(marks);
        }
    }
    anyhow::bail!("Machine {gone} was not deleted within {timeout:?}: marks seen {marks:?}")
}

/// The host ids a ByoMachineTemplate's selector names (`host-id In [...]`).
pub fn selected_hosts(template: &Value) -> Vec<String> {
    template["spec"]["template"]["spec"]["selector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|expression| expression["values"].as_array().into_iter().flatten())
        .filter_map(|host| host.as_str().map(String::from))
        .collect()
}
