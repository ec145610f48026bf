//! The keyed store against the real API server: it keeps what its readers read, and a change
//! of nothing kept wakes nobody.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;

/// Keeps of a ConfigMap's data only the key `read`.
fn keep_read_key(object: &mut DynamicObject) {
    if let Some(data) = object.data["data"].as_object_mut() {
        data.retain(|key, _| key == "read");
    }
}

type Events = futures::stream::BoxStream<'static, Result<DynamicObject, watcher::Error>>;

/// The data of the next object the stream yields.
async fn next(events: &mut Events) -> anyhow::Result<serde_json::Value> {
    let event = tokio::time::timeout(Duration::from_secs(20), events.next()).await?;
    let object = event.expect("the watch goes on")?;
    Ok(object.data["data"].clone())
}

#[tokio::test]
async fn a_change_of_nothing_kept_is_stored_but_wakes_nobody() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let namespace = cluster.namespace("keyed").await?;
    let client = cluster.admin_client()?;
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace.name());
    let label = format!("keyed-test={}", namespace.name());
    let object: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "watched", "labels": {"keyed-test": namespace.name()}},
        "data": {"read": "1", "ignored": "a"},
    }))?;
    api.create(&PostParams::default(), &object).await?;

    let resource = ApiResource::erase::<ConfigMap>(&());
    let (keyed, events) = operator_kit::keyed::store(
        &client,
        &resource,
        watcher::Config::default().labels(&label),
        |_| None,
        keep_read_key,
    );
    let mut events = events.boxed();
    assert_eq!(
        next(&mut events).await?,
        json!({"read": "1"}),
        "listed, as kept"
    );

    let patch = |key: &str, value: &str| {
        let api = api.clone();
        let patch = json!({"data": {key: value}});
        async move {
            api.patch("watched", &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    let ignored = patch("ignored", "b").await?;
    // The store takes the change in (its resourceVersion) while the stream yields nothing.
    let at = ObjectRef::new_with("watched", resource.clone()).within(namespace.name());
    let held = async {
        loop {
            if let Some(held) = keyed.store().get(&at)
                && held.resource_version() == ignored.resource_version()
            {
                return held;
            }
            // Polling the stream is what feeds the store.
            tokio::select! {
                yielded = events.next() => panic!("a change of nothing kept was yielded: {yielded:?}"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    };
    let held = tokio::time::timeout(Duration::from_secs(20), held).await?;
    assert_eq!(held.data["data"], json!({"read": "1"}));
    assert_eq!(held.meta().name.as_deref(), Some("watched"));

    patch("read", "2").await?;
    assert_eq!(
        next(&mut events).await?,
        json!({"read": "2"}),
        "the next change yielded is the one of a kept field"
    );
    Ok(())
}
