//! The shared control plane behaves like a real cluster: version, CRDs with strict validation,
//! garbage collection, namespace deletion and RBAC.

mod common;

use std::time::Duration;

use common::{api_status, capi_cluster, capi_cluster_resource};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::Condition;
use kube::runtime::wait::conditions::{is_crd_established, is_deleted};
use kube::{Resource, ResourceExt};
use serde_json::json;
use testcluster::{TestCluster, create_strict, wait_for, wait_until};

/// Generous: the garbage collector and namespace controller work asynchronously.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn starts_and_reports_version() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    if std::env::var_os("TEST_KUBECONFIG").is_none() {
        let startup = cluster
            .startup_time()
            .expect("a started cluster reports its start time");
        assert!(
            startup > Duration::ZERO && startup < Duration::from_secs(120),
            "{startup:?}"
        );
    }
    assert!(cluster.kubeconfig_path().is_file());

    let version = cluster.admin_client()?.apiserver_version().await?;
    assert_eq!(version.git_version, "v1.36.3");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );
    Ok(())
}

#[tokio::test]
async fn upstream_crds_are_established() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.admin_client()?);
    let upstream: Vec<_> = crds
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|crd| crd.spec.group.ends_with("cluster.x-k8s.io"))
        .collect();
    assert_eq!(
        upstream.len(),
        17 + 8,
        "17 Cluster API (v1.10) and 8 BYOH CRDs"
    );
    for crd in &upstream {
        assert!(
            is_crd_established().matches_object(Some(crd)),
            "{} not Established",
            crd.name_any()
        );
    }
    for name in [
        "clusters.cluster.x-k8s.io",
        "machinedrainrules.cluster.x-k8s.io",
        "byohosts.infrastructure.cluster.x-k8s.io",
        "byomachines.infrastructure.cluster.x-k8s.io",
    ] {
        assert!(
            upstream.iter().any(|crd| crd.name_any() == name),
            "{name} missing"
        );
    }
    Ok(())
}

#[tokio::test]
async fn strict_validation_rejects_unknown_fields() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let ns = cluster.namespace("strict-validation").await?;
    let resource = capi_cluster_resource();

    let valid = capi_cluster("valid", json!({}))?;
    let created = create_strict(&client, &resource, Some(ns.name()), &valid).await?;
    assert_eq!(created.name_any(), "valid");

    let bogus = capi_cluster("bogus", json!({"bogusField": true}))?;
    let status = api_status(create_strict(&client, &resource, Some(ns.name()), &bogus).await)?;
    eprintln!("strict create rejected: {}", status.message);
    assert_eq!(status.code, 400);
    assert!(
        status
            .message
            .contains(r#"unknown field "spec.bogusField""#),
        "{}",
        status.message
    );

    // The same through a strictly validated server-side apply (dry run).
    let api: Api<DynamicObject> = Api::namespaced_with(client, ns.name(), &resource);
    let params = PatchParams::apply("testcluster-test")
        .dry_run()
        .validation_strict();
    api.patch("valid", &params, &Patch::Apply(&valid)).await?;
    let status = api_status(api.patch("bogus", &params, &Patch::Apply(&bogus)).await)?;
    assert!(status.message.contains("bogusField"), "{}", status.message);

    ns.cleanup().await
}

fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> anyhow::Result<OwnerReference> {
    owner
        .controller_owner_ref(&())
        .ok_or_else(|| anyhow::anyhow!("owner without uid"))
}

fn config_map(name: &str, owner: Option<OwnerReference>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_config_map() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let ns = cluster.namespace("gc-configmap").await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.admin_client()?, ns.name());

    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", None))
        .await?;
    let mut reference = owner_reference(&owner)?;
    reference.block_owner_deletion = Some(true);
    let dependent = config_maps
        .create(
            &PostParams::default(),
            &config_map("dependent", Some(reference)),
        )
        .await?;

    config_maps
        .delete("owner", &DeleteParams::background())
        .await?;
    let uid = dependent.uid().unwrap_or_default();
    wait_until(
        config_maps,
        "dependent",
        is_deleted(&uid),
        CONTROLLER_TIMEOUT,
    )
    .await?;
    ns.cleanup().await
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_custom_resource() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let ns = cluster.namespace("gc-custom-resource").await?;
    let resource = capi_cluster_resource();
    let clusters: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, ns.name());

    let owner = clusters
        .create(&PostParams::default(), &capi_cluster("owner", json!({}))?)
        .await?;
    let reference = OwnerReference {
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let dependent = config_maps
        .create(
            &PostParams::default(),
            &config_map("dependent", Some(reference)),
        )
        .await?;

    // Foreground: the owner stays (with a finalizer) until the collector removed the dependent.
    clusters
        .delete("owner", &DeleteParams::foreground())
        .await?;
    let dependent_uid = dependent.uid().unwrap_or_default();
    wait_until(
        config_maps,
        "dependent",
        is_deleted(&dependent_uid),
        CONTROLLER_TIMEOUT,
    )
    .await?;
    let owner_uid = owner.uid().unwrap_or_default();
    wait_until(
        clusters,
        "owner",
        is_deleted(&owner_uid),
        CONTROLLER_TIMEOUT,
    )
    .await?;
    ns.cleanup().await
}

#[tokio::test]
async fn namespace_deletion_completes() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let ns = cluster.namespace("namespace-deletion").await?;
    let resource = capi_cluster_resource();
    // Content of a built-in and of a custom type, which the namespace controller must delete.
    Api::<ConfigMap>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &config_map("content", None))
        .await?;
    Api::<DynamicObject>::namespaced_with(client, ns.name(), &resource)
        .create(&PostParams::default(), &capi_cluster("content", json!({}))?)
        .await?;
    ns.delete_and_wait(CONTROLLER_TIMEOUT).await
}

#[tokio::test]
async fn rbac_is_enforced_for_service_accounts() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let admin = cluster.admin_client()?;
    let ns = cluster.namespace("rbac").await?;
    let sa = cluster.service_account_client(ns.name(), "reader").await?;

    let status = api_status(
        Api::<Pod>::namespaced(sa.clone(), ns.name())
            .list(&ListParams::default())
            .await,
    )?;
    assert!(status.is_forbidden(), "{status:?}");

    let role = Role {
        metadata: ObjectMeta {
            name: Some("configmap-reader".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), ns.name())
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("reader-reads-configmaps".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "configmap-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(ns.name().into()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, ns.name())
        .create(&PostParams::default(), &binding)
        .await?;

    // The authorizer sees the new binding through its informer, so allow it a moment.
    let config_maps: Api<ConfigMap> = Api::namespaced(sa.clone(), ns.name());
    wait_for(
        "the RoleBinding to take effect",
        Duration::from_secs(10),
        || async {
            match config_maps.list(&ListParams::default()).await {
                Ok(list) => Ok(Some(list)),
                Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(None),
                Err(err) => Err(err.into()),
            }
        },
    )
    .await?;

    let status = api_status(
        Api::<Secret>::namespaced(sa, ns.name())
            .list(&ListParams::default())
            .await,
    )?;
    assert!(status.is_forbidden(), "{status:?}");
    let status = api_status(
        Api::<ConfigMap>::all(cluster.service_account_client(ns.name(), "reader").await?)
            .list(&ListParams::default())
            .await,
    )?;
    assert!(
        status.is_forbidden(),
        "cluster-wide list must be forbidden: {status:?}"
    );
    ns.cleanup().await
}

#[tokio::test]
async fn impersonated_users_are_authorized_as_themselves() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let nobody = cluster.impersonating_client("nobody", &[])?;
    let status = api_status(
        Api::<ConfigMap>::namespaced(nobody, "default")
            .list(&ListParams::default())
            .await,
    )?;
    assert!(status.is_forbidden(), "{status:?}");
    assert!(
        status.message.contains(r#"User "nobody""#),
        "{}",
        status.message
    );

    let master = cluster.impersonating_client("someone", &["system:masters"])?;
    Api::<ConfigMap>::namespaced(master, "default")
        .list(&ListParams::default())
        .await?;
    Ok(())
}
