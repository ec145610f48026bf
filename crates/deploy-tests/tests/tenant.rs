//! The chart's tenant role, bound in a tenant's namespace, as the API server enforces it: the
//! tenant manages its own FocomProvisioningRequests and reads its OClouds, and reaches nothing
//! else (another tenant's namespace, ProvisioningRequests, Secrets, the inventory, templates,
//! Cluster API objects, the host ledger).

use anyhow::Context;
use deploy_tests::{apply, expect_refused, helm_template};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use lcm_core::capi::Kind;
use lcm_core::crd::{
    FocomProvisioningRequest, HostClaim, OCloud, ProvisioningRequest, TemplateInfo,
};
use serde_json::{Value, json};
use testcluster::TestCluster;

fn request(namespace: &str) -> anyhow::Result<FocomProvisioningRequest> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": "mine", "namespace": namespace},
        "spec": {"clusterNames": ["core"]}
    }))?)
}

#[tokio::test]
async fn a_tenant_reaches_only_its_own_requests_and_oclouds() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let admin = cluster.admin_client()?;
    let own = cluster.namespace("tenant-a").await?;
    let other = cluster.namespace("tenant-b").await?;
    // The chart's role under a name of this test's own (the install test installs the chart's).
    let chart = helm_template(&["--set-file", "inventory.json=input.json"])?;
    let mut role: Value = deploy_tests::named(&chart, "ClusterRole", "oran-lcm-tenant")?.clone();
    let role_name = format!("oran-lcm-tenant-{}", own.name());
    role["metadata"]["name"] = json!(role_name);
    apply(&admin, &role, false).await?;
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "smo-is-a-tenant", "namespace": own.name()},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "smo", "namespace": own.name()}]});
    apply(&admin, &binding, false).await?;
    let ocloud: OCloud = serde_json::from_value(
        json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud", "metadata": {"name": "local"}, "spec": {}}),
    )?;
    for namespace in [own.name(), other.name()] {
        Api::<OCloud>::namespaced(admin.clone(), namespace)
            .create(&PostParams::default(), &ocloud)
            .await?;
    }
    let tenant = cluster.service_account_client(own.name(), "smo").await?;
    let result = check(&tenant, own.name(), other.name()).await;
    Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(admin)
        .delete(&role_name, &DeleteParams::default())
        .await?;
    own.cleanup().await?;
    other.cleanup().await?;
    result
}

async fn check(tenant: &Client, own: &str, other: &str) -> anyhow::Result<()> {
    // What the role grants works (so every refusal below is RBAC's).
    let mine = Api::<FocomProvisioningRequest>::namespaced(tenant.clone(), own);
    mine.create(&PostParams::default(), &request(own)?)
        .await
        .context("a tenant creates a request in its namespace")?;
    mine.list(&ListParams::default()).await?;
    Api::<OCloud>::namespaced(tenant.clone(), own)
        .get("local")
        .await
        .context("a tenant reads its OCloud")?;
    mine.delete("mine", &DeleteParams::default()).await?;

    expect_refused(
        "create a request in another tenant's namespace",
        Api::<FocomProvisioningRequest>::namespaced(tenant.clone(), other)
            .create(&PostParams::default(), &request(other)?)
            .await,
    )?;
    expect_refused(
        "read another tenant's OCloud",
        Api::<OCloud>::namespaced(tenant.clone(), other)
            .get("local")
            .await,
    )?;
    expect_refused(
        "create an OCloud",
        Api::<OCloud>::namespaced(tenant.clone(), own)
            .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud", "metadata": {"name": "mine"}, "spec": {}}))?)
            .await,
    )?;
    expect_refused(
        "write its request's status",
        mine.patch_status(
            "mine",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"status": {"phase": "Synced"}})),
        )
        .await,
    )?;
    expect_refused(
        "list ProvisioningRequests",
        Api::<ProvisioningRequest>::all(tenant.clone())
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "read a Secret in its namespace",
        Api::<Secret>::namespaced(tenant.clone(), own)
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "read the SSH key",
        Api::<Secret>::namespaced(tenant.clone(), "o2ims-system")
            .get("o2ims-host-ssh-key")
            .await,
    )?;
    expect_refused(
        "read the inventory",
        Api::<ConfigMap>::namespaced(tenant.clone(), "focom-system")
            .get("lcm-inventory")
            .await,
    )?;
    expect_refused(
        "publish a TemplateInfo in its namespace",
        Api::<TemplateInfo>::namespaced(tenant.clone(), own)
            .create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "provisioning.oran.org/v1alpha1", "kind": "TemplateInfo",
                "metadata": {"name": "byoh-workload-cluster-v1"}, "spec": {"templateName": "byoh-workload-cluster", "templateVersion": "v1", "templateParameterSchema": "{}"}}))?)
            .await,
    )?;
    expect_refused(
        "claim a host in the host ledger",
        Api::<HostClaim>::all(tenant.clone())
            .create(
                &PostParams::default(),
                &HostClaim::for_host("h1", "mine", "uid", "mine"),
            )
            .await,
    )?;
    expect_refused(
        "list ByoHosts",
        testcluster::capi::api(tenant, Kind::ByoHost, "byoh-hosts")
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "list Cluster API Clusters",
        testcluster::capi::api(tenant, Kind::Cluster, own)
            .list(&ListParams::default())
            .await,
    )?;
    Ok(())
}
