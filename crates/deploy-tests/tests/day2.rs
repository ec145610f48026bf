//! Day 2 with only the chart's RBAC: the chart rendered with every hand-off enabled, the O2IMS
//! operator started with the day-2 settings of its rendered Deployment (ARGOCD_NAMESPACE, ...,
//! as flags: same names), a cluster fulfilled by the real Cluster API and BYOH managers on a
//! simulated host, registered in ArgoCD, imported by Rancher Turtles and bootstrapped for Config
//! Sync, then deleted; no request of the operator refused.

use std::time::Duration;

use anyhow::{Context, ensure};
use deploy_tests::{apply, helm_template, named, operator_binary};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams};
use lcm_core::capi::Kind;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use serde_json::{Value, json};
use testcluster::capi;
use testcluster::{OperatorProcess, TestCluster, wait_for};

/// Long enough for a loaded CI machine and for Cluster API's ClusterCache, which retries a new
/// workload cluster it could not reach 30 s later.
const TIMEOUT: Duration = Duration::from_secs(180);
const CLUSTER: &str = "dt";
const CLUSTER_NAMESPACE: &str = "cluster-dt";
const CREDENTIALS: &str = "fleet-git";

/// The operator's flags for the day-2 settings of the rendered Deployment's environment: each
/// variable is its flag's name (`ARGOCD_NAMESPACE` is `--argocd-namespace`), a `true` a switch.
fn day2_flags(deployment: &Value) -> Vec<String> {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array();
    let mut flags = Vec::new();
    for var in env.into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default();
        if !["ARGOCD_", "RANCHER_", "CONFIG_SYNC_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        flags.push(format!("--{}", name.to_lowercase().replace('_', "-")));
        match var["value"].as_str() {
            Some("true") => {}
            value => flags.push(value.unwrap_or_default().to_string()),
        }
    }
    flags
}

#[tokio::test]
async fn every_handoff_runs_with_only_the_charts_rbac() -> anyhow::Result<()> {
    let cluster = TestCluster::shared_with_managers().await?;
    let admin = cluster.admin_client()?;
    let o2ims = cluster.namespace("dt-o2ims").await?.name().to_string();
    let focom = cluster.namespace("dt-focom").await?.name().to_string();
    let argocd = cluster.namespace("dt-argocd").await?.name().to_string();
    let objects = helm_template(&[
        "--set",
        &format!(
            "createNamespaces=false,focom.namespace={focom},o2ims.namespace={o2ims},\
             day2.argocd.enabled=true,day2.argocd.namespace={argocd},day2.rancher.autoImport=true,\
             day2.configSync.enabled=true,day2.configSync.repo=https://git.example.org/fleet.git,\
             day2.configSync.credentialsSecret={CREDENTIALS}"
        ),
    ])?;
    for object in &objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "ServiceAccount" | "ClusterRole" | "ClusterRoleBinding" | "Role" | "RoleBinding"
        ) {
            apply(&admin, object, false).await?;
        }
    }
    let flags = day2_flags(named(&objects, "Deployment", "o2ims-operator")?);
    let settings = flags.iter().filter(|f| f.starts_with("--")).count();
    ensure!(settings == 5, "the day-2 settings of the chart: {flags:?}");
    let dir = std::env::temp_dir().join(format!("deploy-tests-day2-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("o2ims.kubeconfig");
    cluster
        .write_service_account_kubeconfig(&o2ims, "o2ims-operator", &kubeconfig)
        .await?;
    let credentials = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CREDENTIALS, "namespace": o2ims},
        "stringData": {"username": "fleet-bot", "token": "s3cret"}});
    apply(&admin, &credentials, false).await?;
    // The cluster's host, simulated: its agent registers at once; the cluster's owner brings
    // its CNI (`cni: none`). What it does shows with a failed test.
    testcluster::diagnostics::trace_to_test_output("byoh_sim=info");
    let host = byoh_sim::SimHost {
        id: "dt-h1".into(),
        hostname: "dt-node1".into(),
        address: Some("192.0.2.21".into()),
    };
    let config = byoh_sim::SimConfig {
        hosts: vec![host],
        register_inventory_hosts: true,
        cni_by_cluster_owner: true,
        bootstrap_delay: Duration::from_millis(200),
        ..byoh_sim::SimConfig::default()
    };
    let url = cluster
        .workload_clusters_url()?
        .context("the stack runs no workload clusters")?;
    let _hosts = byoh_sim::spawn(cluster.admin_config_as("byoh-sim")?, &url, config)?;

    let binary = operator_binary("o2ims-operator")?;
    let mut args = vec!["--pod-name", "o2ims-operator-0"];
    args.extend(flags.iter().map(String::as_str));
    let operator = OperatorProcess::start(
        binary.to_str().context("binary path")?,
        &kubeconfig,
        &o2ims,
        &args,
    )
    .await?;
    let flow = provision_register_delete(&admin, &argocd).await;
    let flow = flow.with_context(|| operator.log_tail());
    operator.terminate().await?;
    flow?;
    let log = std::fs::read_to_string(&operator.log)?;
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.to_lowercase().contains("forbidden") || l.contains(" 403"))
        .collect();
    ensure!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    for object in objects.iter().filter(|o| {
        matches!(
            o["kind"].as_str(),
            Some("ClusterRole" | "ClusterRoleBinding")
        )
    }) {
        let api = deploy_tests::api_for(&admin, object).await?;
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        api.delete(name, &DeleteParams::default()).await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn provision_register_delete(admin: &Client, argocd: &str) -> anyhow::Result<()> {
    let requests = Api::<ProvisioningRequest>::all(admin.clone());
    let request: ProvisioningRequest = serde_json::from_value(json!({
        "apiVersion": "o2ims.provisioning.oran.org/v1alpha1", "kind": "ProvisioningRequest",
        "metadata": {"name": "dt-request"},
        "spec": {"templateName": "byoh-workload-cluster", "templateVersion": "v1", "templateParameters": {
            "clusterName": CLUSTER, "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "172.25.0.200"},
            "hosts": {"controlPlane": ["dt-h1"]}, "cni": "none", "hostPreparation": "skip",
            "labels": {"site": "edge1"}}}}))?;
    requests.create(&Default::default(), &request).await?;
    wait_for("the Cluster", TIMEOUT, || async {
        capi::get(admin, Kind::Cluster, CLUSTER_NAMESPACE, CLUSTER).await
    })
    .await?;
    let registrations = Api::<Secret>::namespaced(admin.clone(), argocd);
    wait_for("the ArgoCD registration", TIMEOUT, || async {
        Ok(registrations.get_opt(&format!("cluster-{CLUSTER}")).await?)
    })
    .await?;
    wait_for("the request to be fulfilled", TIMEOUT, || async {
        let request = requests.get("dt-request").await?;
        let state = request
            .status
            .and_then(|s| s.provisioning_status)
            .map(|s| s.provisioning_state);
        Ok((state == Some(ProvisioningState::Fulfilled)).then_some(()))
    })
    .await?;
    let cluster = capi::get(admin, Kind::Cluster, CLUSTER_NAMESPACE, CLUSTER)
        .await?
        .context("the Cluster")?;
    ensure!(
        cluster["metadata"]["labels"]["cluster-api.cattle.io/rancher-auto-import"] == "true",
        "{}",
        cluster["metadata"]["labels"]
    );
    let bundle = Api::<Secret>::namespaced(admin.clone(), CLUSTER_NAMESPACE)
        .get_opt(&format!("{CLUSTER}-config-sync"))
        .await?;
    ensure!(
        bundle.is_some(),
        "the credentials' copy for the ClusterResourceSet"
    );
    ensure!(
        capi::get(
            admin,
            Kind::ClusterResourceSet,
            CLUSTER_NAMESPACE,
            &format!("{CLUSTER}-config-sync")
        )
        .await?
        .is_some(),
        "the Config Sync ClusterResourceSet"
    );

    requests
        .delete("dt-request", &DeleteParams::default())
        .await?;
    wait_for(
        "the request and its registration to be gone",
        TIMEOUT,
        || async {
            let gone = requests.get_opt("dt-request").await?.is_none()
                && registrations
                    .get_opt(&format!("cluster-{CLUSTER}"))
                    .await?
                    .is_none();
            Ok(gone.then_some(()))
        },
    )
    .await
}
