//! The project's CRDs as the real API server serves them: names, scopes and `kubectl get`
//! columns, the FocomProvisioningRequest's own rules, and the examples.

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
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
        ("null", json!({"clusterNames": null}), "exactly one of"),
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
    // An explicit null selects nothing: the one real selector stands.
    api.create(
        &PostParams::default(),
        &request(
            "null-beside",
            json!({"allClusters": true, "clusterNames": null}),
        ),
    )
    .await?;
    namespace.cleanup().await
}

/// The API server's 422 for `result`, whose message must contain `message`.
fn rejected<T: std::fmt::Debug>(what: &str, result: kube::Result<T>, message: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{what}: {}", status.message);
            assert!(
                status.message.contains(message),
                "{what}: {}",
                status.message
            );
        }
        other => panic!("{what}: not the API server's rejection: {other:?}"),
    }
}

#[tokio::test]
async fn the_ocloud_of_a_request_cannot_change_after_creation() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("fpr-immutable").await?;
    let api = api(&client, namespace.name());
    let params = PatchParams::default();
    let merge = |spec: Value| Patch::Merge(json!({"spec": spec}));
    let placed = api
        .create(
            &PostParams::default(),
            &request(
                "placed",
                json!({"oCloudId": "paris", "oCloudNamespace": "smo", "allClusters": true}),
            ),
        )
        .await?;
    // kubectl edit/replace and kubectl patch alike.
    let mut moved = placed.clone();
    moved.data["spec"]["oCloudId"] = json!("berlin");
    rejected(
        "replace oCloudId",
        api.replace("placed", &PostParams::default(), &moved).await,
        "oCloudId cannot be set, changed or removed after creation",
    );
    rejected(
        "patch oCloudNamespace",
        api.patch(
            "placed",
            &params,
            &merge(json!({"oCloudNamespace": "other"})),
        )
        .await,
        "oCloudNamespace cannot be set, changed or removed after creation",
    );
    rejected(
        "remove oCloudId",
        api.patch("placed", &params, &merge(json!({"oCloudId": null})))
            .await,
        "spec.oCloudId",
    );
    api.create(
        &PostParams::default(),
        &request("local", json!({"allClusters": true})),
    )
    .await?;
    rejected(
        "add oCloudId",
        api.patch("local", &params, &merge(json!({"oCloudId": "paris"})))
            .await,
        "oCloudId cannot be set",
    );
    rejected(
        "add oCloudNamespace",
        api.patch("local", &params, &merge(json!({"oCloudNamespace": "smo"})))
            .await,
        "oCloudNamespace cannot be set",
    );
    // Everything else may change; the O-Cloud stays as it was.
    let changed = api
        .patch(
            "placed",
            &params,
            &merge(json!({"operation": "scale", "oCloudId": "paris"})),
        )
        .await?;
    assert_eq!(changed.data["spec"]["operation"], "scale");
    api.patch("local", &params, &merge(json!({"operation": "delete"})))
        .await?;
    namespace.cleanup().await
}

#[tokio::test]
async fn an_ocloud_is_reached_one_way_and_its_rest_api_only_over_https() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("ocloud-ways").await?;
    let api: Api<lcm_core::crd::OCloud> = Api::namespaced(client.clone(), namespace.name());
    let ocloud = |name: &str, spec: Value| -> anyhow::Result<lcm_core::crd::OCloud> {
        Ok(serde_json::from_value(json!({
            "apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud",
            "metadata": {"name": name}, "spec": spec,
        }))?)
    };
    let secret = json!({"name": "s", "namespace": namespace.name()});
    let rest = |url: &str| json!({"url": url, "secretRef": secret});
    let params = PostParams::default();
    rejected(
        "both ways",
        api.create(&params, &ocloud("both", json!({"o2imsSecret": {"secretRef": secret}, "o2imsApi": rest("https://o2ims.example.org")}))?).await,
        lcm_core::crd::ONE_WAY_IN,
    );
    for url in [
        "http://o2ims.example.org",
        "https://o2ims.example.org/?token=x",
        "o2ims.example.org",
    ] {
        rejected(
            url,
            api.create(&params, &ocloud("plain", json!({"o2imsApi": rest(url)}))?)
                .await,
            lcm_core::crd::HTTPS_ONLY,
        );
    }
    api.create(
        &params,
        &ocloud(
            "rest",
            json!({"o2imsApi": rest("https://o2ims.example.org:8443/base")}),
        )?,
    )
    .await?;
    namespace.cleanup().await
}

#[tokio::test]
async fn the_ocloud_and_template_info_examples_pass_strict_validation() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("examples").await?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut kinds = Vec::new();
    for example in ["ocloud.yaml", "template-info.yaml"] {
        let documents: Vec<DynamicObject> =
            lcm_core::yaml::from_multi_str(&std::fs::read_to_string(examples.join(example))?)?;
        for mut object in documents {
            object.metadata.namespace = None;
            let types = object.types.clone().expect("apiVersion and kind");
            let gvk = GroupVersionKind::try_from(&types)?;
            let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await?;
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace.name(), &resource);
            let name = object.metadata.name.clone().expect("named");
            api.patch(
                &name,
                &PatchParams::apply("examples-test")
                    .dry_run()
                    .validation_strict(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{example}: {} {name}: {e}", types.kind))?;
            kinds.push(format!("{}/{name}", types.kind));
        }
    }
    assert_eq!(
        kinds,
        [
            "OCloud/local",
            "OCloud/paris-edge",
            "OCloud/lyon-edge",
            "TemplateInfo/byoh-workload-cluster-v1"
        ]
    );
    namespace.cleanup().await
}

/// The columns `kubectl get` shows for a resource's objects, from the API server's Table view.
async fn table_columns(client: &kube::Client, path: &str) -> anyhow::Result<Vec<String>> {
    let request = http::Request::get(path)
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())?;
    let table: Value = serde_json::from_str(&client.request_text(request).await?)?;
    Ok(table["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect())
}

#[tokio::test]
async fn the_crds_have_their_short_names_scopes_and_columns() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster.namespace("columns").await?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let served = [
        (
            "provisioningrequests.o2ims.provisioning.oran.org",
            "Cluster",
            vec!["provreq"],
        ),
        (
            "focomprovisioningrequests.focom.nephio.org",
            "Namespaced",
            vec!["fpr"],
        ),
        ("oclouds.focom.nephio.org", "Namespaced", vec![]),
        ("templateinfoes.provisioning.oran.org", "Namespaced", vec![]),
    ];
    for (name, scope, short_names) in served {
        let crd = crds.get(name).await?;
        assert_eq!(crd.spec.scope, scope, "{name}");
        assert_eq!(
            crd.spec.names.short_names.unwrap_or_default(),
            short_names,
            "{name}"
        );
    }
    assert_eq!(
        table_columns(
            &client,
            "/apis/o2ims.provisioning.oran.org/v1alpha1/provisioningrequests"
        )
        .await?,
        ["Name", "State", "Cluster", "Message", "Age"]
    );
    let path = format!(
        "/apis/focom.nephio.org/v1alpha1/namespaces/{}/focomprovisioningrequests",
        namespace.name()
    );
    assert_eq!(
        table_columns(&client, &path).await?,
        ["Name", "Phase", "Ready", "Message", "Age"]
    );
    namespace.cleanup().await
}
