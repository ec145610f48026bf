//! The FocomProvisioningRequest CRD's own rules, enforced by the real API server.

use std::path::Path;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("focom.nephio.org", "v1alpha1", "FocomProvisioningRequest");
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, "focomprovisioningrequests"),
    )
}

fn request(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("valid object")
}

#[tokio::test]
async fn the_api_server_rejects_bad_selections_and_operations() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("fpr-cel").await?;
    let api = api(&client, namespace.name());
    let parameters = json!({"clusterName": "x"});
    let cases = [
        (
            "two",
            json!({"allClusters": true, "clusterNames": ["core"]}),
            "exactly one of allClusters: true, clusterNames or templateParameters",
        ),
        (
            "three",
            json!({"allClusters": true, "clusterNames": ["core"], "templateParameters": parameters}),
            "exactly one of",
        ),
        ("none", json!({}), "exactly one of"),
        ("false", json!({"allClusters": false}), "exactly one of"),
        (
            "empty",
            json!({"clusterNames": []}),
            "clusterNames must name at least one cluster",
        ),
        (
            "operation",
            json!({"allClusters": true, "operation": "destroy"}),
            "Unsupported value: \"destroy\"",
        ),
    ];
    for (name, spec, message) in cases {
        let error = api
            .create(&PostParams::default(), &request(name, spec))
            .await
            .expect_err(name);
        match &error {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 422, "{name}: {error}");
                assert!(
                    status.message.contains(message),
                    "{name}: {}",
                    status.message
                );
            }
            other => panic!("{name}: not the API server's rejection: {other}"),
        }
    }

    // Each shipped example is accepted, with defaults filled in by the API server.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for example in [
        "focom-all-clusters.yaml",
        "focom-provisioning-request.yaml",
        "focom-template-request.yaml",
    ] {
        let mut object: DynamicObject =
            lcm_core::yaml::from_str(&std::fs::read_to_string(examples.join(example))?)?;
        object.metadata.namespace = None;
        let created = api.create(&PostParams::default(), &object).await?;
        assert_eq!(created.data["spec"]["operation"], "create", "{example}");
    }
    let defaulted = api
        .create(
            &PostParams::default(),
            &request("defaults", json!({"allClusters": true})),
        )
        .await?;
    assert_eq!(
        defaulted.data["spec"]["templateName"],
        "byoh-workload-cluster"
    );
    assert_eq!(defaulted.data["spec"]["templateVersion"], "v1");
    namespace.cleanup().await
}
