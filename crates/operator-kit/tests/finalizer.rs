//! Finalizers against the real API server.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use operator_kit::runtime::set_finalizer;

const FINALIZER: &str = "test.example/finalizer";

/// A reconcile working from a cached copy taken before its own earlier removal of the last
/// finalizer finds the object gone: that is done, not an error to retry.
#[tokio::test]
async fn removing_a_finalizer_from_an_object_already_gone_is_done() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let namespace = cluster.namespace("finalizer").await?;
    let api = Api::<ConfigMap>::namespaced(cluster.admin_client()?, namespace.name());
    let object = ConfigMap {
        metadata: ObjectMeta {
            name: Some("held".into()),
            finalizers: Some(vec![FINALIZER.into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &object).await?;
    api.delete("held", &DeleteParams::default()).await?;
    let deleting = api.get("held").await?;
    assert!(deleting.metadata.deletion_timestamp.is_some());

    set_finalizer(&api, &deleting, FINALIZER, false).await?;
    assert!(api.get_opt("held").await?.is_none(), "gone once released");
    // The same stale copy again, as a second reconcile from the cache would have it.
    set_finalizer(&api, &deleting, FINALIZER, false).await?;
    Ok(())
}
