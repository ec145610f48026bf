//! The O2ims REST server (`o2ims-api`) as a real process over HTTPS, with a certificate of
//! the tests' own, and tokens of ServiceAccounts holding the chart's API roles.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use crate::{OperatorProcess, TestCluster};

pub struct ApiServer {
    pub process: OperatorProcess,
    /// `https://127.0.0.1:<port>`.
    pub base: String,
    /// The CA file a client trusts the server's certificate with.
    pub ca_file: PathBuf,
    ca_pem: String,
}

impl ApiServer {
    /// Starts `o2ims-api run` (the workspace's binary `binary`) in `namespace` with a fresh
    /// certificate for 127.0.0.1, and waits until it is ready.
    pub async fn start(
        cluster: &TestCluster,
        binary: &str,
        namespace: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let dir =
            std::env::temp_dir().join(format!("o2ims-api-{namespace}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert, certified.cert.pem())?;
        std::fs::write(&key, certified.key_pair.serialize_pem())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let base = format!("https://{address}");
        let mut all = vec![
            "--api-addr",
            &address,
            "--tls-cert-file",
            cert.to_str().context("path")?,
            "--tls-key-file",
            key.to_str().context("path")?,
            "--external-url",
            &base,
        ];
        all.extend_from_slice(args);
        let process =
            OperatorProcess::start(binary, cluster.kubeconfig_path(), namespace, &all).await?;
        crate::wait_for("the API's /readyz", Duration::from_secs(30), || async {
            Ok(process
                .get("/readyz")
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
                .map(drop))
        })
        .await
        .with_context(|| process.log_tail())?;
        Ok(Self {
            process,
            base,
            ca_file: cert,
            ca_pem: certified.cert.pem(),
        })
    }

    /// An HTTPS client trusting only the server's certificate.
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        Ok(reqwest::Client::builder()
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(10))
            .build()?)
    }
}

/// A token of ServiceAccount `namespace/account` (created when missing) bound cluster-wide to
/// each of `roles`, the chart's ClusterRoles for the API (applied from the chart's file first).
pub async fn token_with_roles(
    cluster: &TestCluster,
    namespace: &str,
    account: &str,
    roles: &[&str],
) -> anyhow::Result<String> {
    let client = cluster.admin_client()?;
    apply_api_roles(&client).await?;
    for role in roles {
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("{namespace}-{account}-{role}")),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: role.to_string(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account.into(),
                namespace: Some(namespace.into()),
                ..Default::default()
            }]),
        };
        match Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await
        {
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            other => drop(other?),
        }
    }
    cluster.service_account_token(namespace, account).await
}

/// The chart's ClusterRoles of the API, as it installs them (`files/o2ims-api-roles.yaml`).
async fn apply_api_roles(client: &Client) -> anyhow::Result<()> {
    let path = crate::repo_root().join("deploy/helm/oran-lcm/files/o2ims-api-roles.yaml");
    let text = std::fs::read_to_string(&path)?;
    let roles: Vec<ClusterRole> = serde_saphyr::from_multiple(&text)?;
    let api = Api::<ClusterRole>::all(client.clone());
    for role in roles {
        let name = role.metadata.name.clone().context("role name")?;
        api.patch(
            &name,
            &PatchParams::apply("testcluster").force(),
            &Patch::Apply(&role),
        )
        .await?;
    }
    Ok(())
}
