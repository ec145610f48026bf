//! A second control plane in the same process (e.g. a remote O-Cloud) is independent, and
//! stops when its handle is dropped.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use testcluster::{TestCluster, wait_for};

#[tokio::test]
async fn two_control_planes_are_independent() -> anyhow::Result<()> {
    let first = TestCluster::shared().await?;
    let second = TestCluster::start_new().await?;
    assert_ne!(first.kubeconfig_path(), second.kubeconfig_path());
    assert_ne!(
        first.admin_config().cluster_url,
        second.admin_config().cluster_url
    );

    let first_namespaces: Api<Namespace> = Api::all(first.admin_client()?);
    let second_namespaces: Api<Namespace> = Api::all(second.admin_client()?);
    let only_in_second = Namespace {
        metadata: ObjectMeta {
            generate_name: Some("only-in-second-".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = second_namespaces
        .create(&PostParams::default(), &only_in_second)
        .await?;
    assert!(
        second_namespaces
            .get_opt(&created.name_any())
            .await?
            .is_some()
    );
    assert!(
        first_namespaces
            .get_opt(&created.name_any())
            .await?
            .is_none()
    );

    // Dropping the handle closes the harness's stdin; the control plane must go away.
    let second_config = second.admin_config();
    drop(second);
    wait_for(
        "the dropped control plane to stop",
        Duration::from_secs(30),
        || {
            let config = second_config.clone();
            async move {
                let client = Client::try_from(config)?;
                Ok(client.apiserver_version().await.is_err().then_some(()))
            }
        },
    )
    .await?;

    // The shared one is unaffected.
    first.admin_client()?.apiserver_version().await?;
    Ok(())
}
