//! The index against LISTs of the real API server: the same objects, before and after changes.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector;
use lcm_core::HOST_ID_LABEL;
use lcm_core::capi::CAPI_CLUSTER_NAME_LABEL;
use serde_json::{Value, json};

use super::*;

/// An index of every Cluster API kind (each watched by the label the operator watches it by)
/// and the host ledger, the other stores empty.
fn machines_and_hosts(client: &Client) -> Index {
    let watched = |kind: Kind, label: &str| {
        let (keyed, events) = watch(client, kind, label);
        tokio::spawn(events.for_each(|_| async {}));
        keyed
    };
    let machines = watched(Kind::Machine, CAPI_CLUSTER_NAME_LABEL);
    let byo_hosts = watched(Kind::ByoHost, HOST_ID_LABEL);
    let owned = |kind| watched(kind, PROVISIONING_REQUEST_LABEL);
    Index {
        ready: operator_kit::watch::readiness(vec![
            operator_kit::watch::listed(machines.store()),
            operator_kit::watch::listed(byo_hosts.store()),
        ]),
        requests: reflector::store().0,
        claims: reflector::store().0,
        clusters: owned(Kind::Cluster),
        control_planes: owned(Kind::KubeadmControlPlane),
        machine_deployments: owned(Kind::MachineDeployment),
        machines,
        byo_machines: watched(Kind::ByoMachine, CAPI_CLUSTER_NAME_LABEL),
        byo_hosts,
        config_maps: reflector::store().0,
        cluster_secrets: reflector::store().0,
        registrations: reflector::store().0,
        git_credentials: reflector::store().0,
    }
}

fn api(client: &Client, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &kind.api_resource())
}

fn object(kind: Kind, namespace: &str, name: &str, labels: Value, spec: Value) -> Value {
    json!({"apiVersion": kind.api_version(), "kind": kind.name(),
        "metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec})
}

fn machine(namespace: &str, name: &str, labels: Value) -> Value {
    let infrastructure = json!({"apiVersion": Kind::ByoMachine.api_version(), "kind": Kind::ByoMachine.name(), "name": name});
    let spec = json!({"clusterName": "a", "bootstrap": {"dataSecretName": "none"}, "infrastructureRef": infrastructure});
    object(Kind::Machine, namespace, name, labels, spec)
}

/// Name → (labels, body) of `objects`, as a LIST and the index both give them.
fn summary<'a>(objects: impl IntoIterator<Item = &'a DynamicObject>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|o| {
            let labels = json!(o.metadata.labels);
            (o.name_any(), json!([labels, o.data]))
        })
        .collect()
}

/// `object` as the index keeps it: what is read of it.
fn kept(kind: Kind, object: &DynamicObject) -> DynamicObject {
    let mut kept = object.clone();
    lcm_core::capi::read::keep_read(kind, &mut kept);
    kept
}

/// Waits until what the index gives for `kind` objects of `namespace` with the label
/// `selector` (all of them by `look_up`, one by one, and as [`Index::cached`] finds them)
/// equals a LIST.
async fn agrees_with_list(
    index: &Index,
    client: &Client,
    kind: Kind,
    namespace: &str,
    selector: &str,
    look_up: impl Fn() -> Vec<DynamicObject>,
) -> anyhow::Result<()> {
    let api = api(client, namespace, kind);
    testcluster::wait_for(
        "the index to agree with a LIST",
        Duration::from_secs(20),
        || async {
            let listed = api
                .list(&ListParams::default().labels(selector))
                .await?
                .items;
            let indexed = look_up();
            let one_by_one: Vec<DynamicObject> = listed
                .iter()
                .filter_map(|o| index.get(kind, namespace, &o.name_any()))
                .collect();
            let cached: Vec<DynamicObject> = listed
                .iter()
                .filter_map(|o| index.cached(&serde_json::to_value(o).ok()?))
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect();
            let expected = summary(&listed.iter().map(|o| kept(kind, o)).collect::<Vec<_>>());
            let same = summary(&indexed) == expected
                && summary(&one_by_one) == expected
                && summary(&cached) == expected;
            Ok(same.then_some(()))
        },
    )
    .await
}

/// Machines by namespace and cluster (each, and all labelled) and ByoHosts by host id agree
/// with LISTs.
async fn every_look_up_agrees(index: &Index, client: &Client, ns: &str) -> anyhow::Result<()> {
    for cluster in ["a", "b", ""] {
        let selector = match cluster {
            "" => CAPI_CLUSTER_NAME_LABEL.to_string(),
            name => format!("{CAPI_CLUSTER_NAME_LABEL}={name}"),
        };
        let of_cluster = || {
            index.in_namespace(Kind::Machine, ns, |o| {
                o.labels()
                    .get(CAPI_CLUSTER_NAME_LABEL)
                    .is_some_and(|c| cluster.is_empty() || c == cluster)
            })
        };
        agrees_with_list(index, client, Kind::Machine, ns, &selector, of_cluster).await?;
    }
    for id in ["h1", "h2", "h3"] {
        let selector = format!("{HOST_ID_LABEL}={id}");
        let with_id = || {
            let found = index.byo_hosts.with_key(id).into_iter();
            let here = found.filter(|h| h.namespace().as_deref() == Some(ns));
            here.map(|h| h.as_ref().clone()).collect()
        };
        agrees_with_list(index, client, Kind::ByoHost, ns, &selector, with_id).await?;
    }
    Ok(())
}

#[tokio::test]
async fn look_ups_give_the_same_answers_as_lists() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("index").await?;
    let ns = namespace.name();
    let index = machines_and_hosts(&client);
    let create = |object: Value| {
        let client = client.clone();
        async move {
            let kind = [Kind::Machine, Kind::ByoHost]
                .into_iter()
                .find(|k| object["kind"] == k.name())
                .expect("a watched kind");
            api(&client, ns, kind)
                .create(&PostParams::default(), &serde_json::from_value(object)?)
                .await?;
            anyhow::Ok(())
        }
    };
    for (name, labels) in [
        ("a-0", json!({CAPI_CLUSTER_NAME_LABEL: "a"})),
        ("a-1", json!({CAPI_CLUSTER_NAME_LABEL: "a"})),
        ("b-0", json!({CAPI_CLUSTER_NAME_LABEL: "b"})),
        ("unlabelled", json!({})),
    ] {
        create(machine(ns, name, labels)).await?;
    }
    for (name, id) in [("node-1", "h1"), ("node-2", "h2")] {
        let labels = json!({HOST_ID_LABEL: id});
        create(object(Kind::ByoHost, ns, name, labels, json!({}))).await?;
    }
    index.ready.wait().await;
    every_look_up_agrees(&index, &client, ns).await?;
    assert!(
        index.get(Kind::Machine, ns, "unlabelled").is_none(),
        "an object without the watched label is not indexed"
    );
    let indexed = index.get(Kind::Machine, ns, "a-0").expect("indexed");
    assert!(
        indexed.metadata.managed_fields.is_none_or(|f| f.is_empty()),
        "managed fields are dropped"
    );

    // Changes: a machine moves to another cluster, one is deleted, a host changes its id.
    let relabel = |kind: Kind, name: &'static str, label: &'static str, value: &'static str| {
        let patch = json!({"metadata": {"labels": {label: value}}});
        let api = api(&client, ns, kind);
        async move {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    relabel(Kind::Machine, "a-1", CAPI_CLUSTER_NAME_LABEL, "b").await?;
    api(&client, ns, Kind::Machine)
        .delete("b-0", &DeleteParams::default())
        .await?;
    relabel(Kind::ByoHost, "node-2", HOST_ID_LABEL, "h3").await?;
    every_look_up_agrees(&index, &client, ns).await?;
    Ok(())
}
