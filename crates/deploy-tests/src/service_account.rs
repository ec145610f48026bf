//! A kubeconfig that authenticates as a ServiceAccount, for operator processes under test.

use std::path::Path;

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;
use testcluster::TestCluster;

/// Writes to `path` a kubeconfig for the cluster's API server with a TokenRequest token of the
/// (existing) ServiceAccount `namespace/name`: requests made with it are authorized by RBAC
/// exactly as the operator's in-cluster requests would be.
pub async fn write_kubeconfig(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.admin_client()?, namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|s| s.token)
        .context("TokenRequest without a token")?;
    let admin = Kubeconfig::read_from(cluster.kubeconfig_path())?;
    let server = admin
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("admin kubeconfig without a cluster")?;
    let mut cluster_entry = json!({"server": server.server});
    if let Some(data) = server.certificate_authority_data {
        cluster_entry["certificate-authority-data"] = json!(data);
    }
    if let Some(file) = server.certificate_authority {
        cluster_entry["certificate-authority"] = json!(file);
    }
    // JSON is YAML: kube reads it as a kubeconfig.
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster_entry}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "test", "user": name, "namespace": namespace}}],
        "current-context": name,
    });
    std::fs::write(path, serde_json::to_vec_pretty(&kubeconfig)?)
        .with_context(|| format!("writing {}", path.display()))
}
