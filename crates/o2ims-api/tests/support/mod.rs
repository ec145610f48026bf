//! The O2ims REST server under test (see `testcluster::api_server`), with every response a
//! test gets checked against the O2ims OpenAPI documents.

#![allow(dead_code)] // each test binary uses a different part of the support module

pub mod receiver;

use std::sync::OnceLock;

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::Value;
use testcluster::TestCluster;
use testcluster::openapi::Documents;

pub use testcluster::api_server::{ApiServer, token_with_roles};

pub const PROVISIONING: &str = "/o2ims-infrastructureProvisioning/v1";
pub const INVENTORY: &str = "/o2ims-infrastructureInventory/v2";
pub const MONITORING: &str = "/o2ims-infrastructureMonitoring/v1";
pub const OCLOUD_ID: &str = "262c8f17-52b5-4614-9e56-812ae21fa8a7";

/// The documents every response is checked against, loaded once.
pub fn documents() -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let extension = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("openapi/provisioning-subscriptions.yaml");
        let alarms = testcluster::shared_dir().join("o2ims-openapi/alarms/api/openapi.yaml");
        Documents::load(&[extension, alarms]).expect("the O2ims OpenAPI documents load")
    })
}

/// Starts this crate's server in `namespace`.
pub async fn start(cluster: &TestCluster, namespace: &str) -> anyhow::Result<Checked> {
    start_with(cluster, namespace, &[]).await
}

/// [`start`] with more flags.
pub async fn start_with(
    cluster: &TestCluster,
    namespace: &str,
    more: &[&str],
) -> anyhow::Result<Checked> {
    // Callbacks may be on this machine, over HTTP.
    let mut args = vec![
        "--ocloud-id",
        OCLOUD_ID,
        "--ocloud-name",
        "test-cloud",
        "--allowed-callback-hosts",
        "127.0.0.1",
        "--allow-http-callbacks",
    ];
    args.extend_from_slice(more);
    let server =
        ApiServer::start(cluster, env!("CARGO_BIN_EXE_o2ims-api"), namespace, &args).await?;
    Ok(Checked(server))
}

/// A server whose every response is checked.
pub struct Checked(pub ApiServer);

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

impl Checked {
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
            .0
            .http()?
            .get(format!("{}{path_and_query}", self.0.base))
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
            .0
            .http()?
            .request(method.clone(), format!("{}{path_and_query}", self.0.base))
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
        // A trailing `/` names the same path (the server trims it).
        let path = path_and_query.split('?').next().unwrap_or_default();
        let path = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
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

impl Checked {
    /// A request the documents do not list (a method a path does not take): its status, its
    /// headers, and its body checked as a problem (`application/problem+json`, `ProblemDetails`).
    pub async fn call_undocumented(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
        let mut request = self
            .0
            .http()?
            .request(method.parse()?, format!("{}{path}", self.0.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        anyhow::ensure!(
            content_type == lcm_core::rest::PROBLEM_JSON,
            "{method} {path}: {status} with Content-Type {content_type}"
        );
        let body: Value = response.json().await?;
        documents()
            .check_schema("common", "ProblemDetails", &body)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok((status, headers, body))
    }
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
