//! The O2ims REST server as a real process against the real control plane, over HTTPS with a
//! certificate of the tests' own; every response a test gets is checked against the O2ims
//! OpenAPI documents.

#![allow(dead_code)] // each test binary uses a different part of the support module

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::Value;
use testcluster::openapi::Documents;
use testcluster::{OperatorProcess, TestCluster};

pub const PROVISIONING: &str = "/o2ims-infrastructureProvisioning/v1";
pub const INVENTORY: &str = "/o2ims-infrastructureInventory/v2";
pub const OCLOUD_ID: &str = "262c8f17-52b5-4614-9e56-812ae21fa8a7";

/// The documents every response is checked against, loaded once.
pub fn documents() -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| Documents::load(&[]).expect("the O2ims OpenAPI documents load"))
}

pub struct ApiServer {
    pub process: OperatorProcess,
    pub base: String,
    ca_pem: String,
}

/// One response, already checked against the documents.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub body: Option<Value>,
}

impl Reply {
    pub fn detail(&self) -> String {
        self.body.as_ref().map_or(String::new(), |b| {
            b["detail"].as_str().unwrap_or_default().to_string()
        })
    }
}

impl ApiServer {
    /// Starts `o2ims-api run` in `namespace` with a fresh certificate for 127.0.0.1.
    pub async fn start(
        cluster: &TestCluster,
        namespace: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let dir = std::env::temp_dir().join(format!("o2ims-api-{namespace}"));
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
            "--ocloud-id",
            OCLOUD_ID,
            "--ocloud-name",
            "test-cloud",
        ];
        all.extend_from_slice(args);
        let process = OperatorProcess::start(
            env!("CARGO_BIN_EXE_o2ims-api"),
            cluster.kubeconfig_path(),
            namespace,
            &all,
        )
        .await?;
        testcluster::wait_for("the API's /readyz", Duration::from_secs(30), || async {
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
            ca_pem: certified.cert.pem(),
        })
    }

    fn http(&self) -> anyhow::Result<reqwest::Client> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        Ok(reqwest::Client::builder()
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// Sends one request and checks the response against the documents (path without query).
    pub async fn call(
        &self,
        method: &str,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        self.call_with_header(
            method,
            path_and_query,
            token,
            body,
            ("Accept", "application/json"),
        )
        .await
    }

    /// A GET of a list with `fields` or `exclude_fields`: its items lack fields the documents
    /// require by design, so only the status and content type are checked.
    pub async fn call_projected(&self, path_and_query: &str, token: &str) -> anyhow::Result<Value> {
        let response = self
            .http()?
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "{path_and_query}: {}",
            response.status()
        );
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        anyhow::ensure!(content_type == "application/json", "{content_type}");
        Ok(response.json().await?)
    }

    /// [`Self::call`] with one more request header.
    pub async fn call_with_header(
        &self,
        method: &str,
        path_and_query: &str,
        token: Option<&str>,
        body: Option<&Value>,
        (name, value): (&str, &str),
    ) -> anyhow::Result<Reply> {
        let method: reqwest::Method = method.parse()?;
        let mut request = self
            .http()?
            .request(method.clone(), format!("{}{path_and_query}", self.base))
            .header(name, value);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let (content_type, location, etag) =
            (header("content-type"), header("location"), header("etag"));
        let text = response.text().await?;
        let body: Option<Value> = if text.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&text).with_context(|| text.clone())?)
        };
        let path = path_and_query.split('?').next().unwrap_or_default();
        documents()
            .check(
                method.as_str(),
                path,
                status,
                content_type.as_deref(),
                body.as_ref(),
            )
            .map_err(|e| anyhow::anyhow!("{e}\nbody: {text}"))?;
        for documented in documents().documented_headers(method.as_str(), path, status)? {
            anyhow::ensure!(
                documented != "Location" || location.is_some(),
                "{method} {path} -> {status} documents a Location header; none sent"
            );
        }
        Ok(Reply {
            status,
            location,
            etag,
            body,
        })
    }
}

/// A token of a new ServiceAccount bound (cluster-wide) to each of `roles`, the chart's
/// ClusterRoles for the API (applied from the chart's file first).
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
    let path = testcluster::repo_root().join("deploy/helm/oran-lcm/files/o2ims-api-roles.yaml");
    let text = std::fs::read_to_string(&path)?;
    let roles: Vec<k8s_openapi::api::rbac::v1::ClusterRole> = serde_saphyr::from_multiple(&text)?;
    let api = Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(client.clone());
    for role in roles {
        let name = role.metadata.name.clone().context("role name")?;
        api.patch(
            &name,
            &PatchParams::apply("o2ims-api-tests").force(),
            &Patch::Apply(&role),
        )
        .await?;
    }
    Ok(())
}

/// Writes the host inventory ConfigMap (`input.json`) the server reads in `namespace`.
pub async fn write_inventory(
    client: &Client,
    namespace: &str,
    inventory: &Value,
) -> anyhow::Result<()> {
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("lcm-inventory".into()),
            ..Default::default()
        },
        data: Some([("input.json".to_string(), inventory.to_string())].into()),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            "lcm-inventory",
            &PatchParams::apply("o2ims-api-tests").force(),
            &Patch::Apply(&config_map),
        )
        .await?;
    Ok(())
}
