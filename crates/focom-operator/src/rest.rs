//! An O-Cloud's O2ims REST API (the o2ims-api server) as FOCOM calls it: the provisioning
//! requests and the host ledger (the inventory's resources) read, requests created, replaced
//! and deleted. Every call carries the OCloud's bearer token; errors keep the server's
//! problem `detail`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use lcm_core::crd::HostClaim;
use lcm_core::rest::inventory::{Resource, ResourcePool, claim_of};
use lcm_core::rest::paging::next_link;
use lcm_core::rest::provisioning::{ProvisioningRequestData, ProvisioningRequestInfo};
use lcm_core::rest::{INVENTORY_PREFIX, PROVISIONING_PREFIX};

use crate::error::{Error, Result};

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct RestClient {
    /// The OCloud's `o2imsApi.url`, without a trailing `/`.
    base: String,
    token: String,
    http: reqwest::Client,
}

impl RestClient {
    /// A client of the API at `url`, trusting `ca_pem` (a PEM bundle) when given, else the
    /// system's roots; redirects are not followed (the token would go with them).
    pub fn new(url: &str, token: &str, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(certificate);
            }
            builder = builder.tls_built_in_root_certs(false);
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            http: builder.build()?,
        })
    }

    /// Every provisioning request of the O-Cloud.
    pub async fn requests(&self) -> Result<Vec<ProvisioningRequestInfo>> {
        self.list(&format!("{PROVISIONING_PREFIX}/provisioningRequests"))
            .await
    }

    /// Every item of a list, page after page (the `Link` header's `rel="next"`); a next page
    /// elsewhere than this API is refused, since the token would go with it.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut url = format!("{}{path}", self.base);
        loop {
            let response = self.call_url(Method::GET, &url, None).await?;
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            items.extend(self.read::<Vec<T>>(response).await?);
            match next {
                None => return Ok(items),
                Some(next) if next.starts_with(&format!("{}/", self.base)) => url = next,
                Some(next) => {
                    return Err(Error::Rest(format!(
                        "{url}: the next page is at {next}, not on this API ({})",
                        self.base
                    )));
                }
            }
        }
    }

    /// The host ledger: the claimed hosts of every resource pool.
    pub async fn claims(&self) -> Result<Vec<HostClaim>> {
        let pools: Vec<ResourcePool> = self
            .list(&format!("{INVENTORY_PREFIX}/resourcePools"))
            .await?;
        let mut claims = Vec::new();
        for pool in pools {
            let path = format!(
                "{INVENTORY_PREFIX}/resourcePools/{}/resources",
                pool.resource_pool_id
            );
            let resources: Vec<Resource> = self.list(&path).await?;
            claims.extend(resources.iter().filter_map(claim_of));
        }
        Ok(claims)
    }

    /// POSTs `data`; `None` when a request of that id exists already.
    pub async fn create(
        &self,
        data: &ProvisioningRequestData,
    ) -> Result<Option<ProvisioningRequestInfo>> {
        let path = format!("{PROVISIONING_PREFIX}/provisioningRequests");
        let response = self.call(Method::POST, &path, Some(data)).await?;
        if response.status() == StatusCode::CONFLICT {
            return Ok(None);
        }
        self.read(response).await.map(Some)
    }

    /// PUTs `data` in place of the request of its id.
    pub async fn replace(&self, data: &ProvisioningRequestData) -> Result<ProvisioningRequestInfo> {
        let response = self
            .call(
                Method::PUT,
                &request_path(&data.provisioning_request_id),
                Some(data),
            )
            .await?;
        self.read(response).await
    }

    /// DELETEs a request (asynchronous: it is deleting until its cluster is gone); one already
    /// gone is no error.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let response = self.call(Method::DELETE, &request_path(id), None).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            status if status.is_success() => Ok(()),
            _ => Err(self.refused(response).await),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&ProvisioningRequestData>,
    ) -> Result<reqwest::Response> {
        self.call_url(method, &format!("{}{path}", self.base), body)
            .await
    }

    async fn call_url(
        &self,
        method: Method,
        url: &str,
        body: Option<&ProvisioningRequestData>,
    ) -> Result<reqwest::Response> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .map_err(|e| Error::Rest(format!("{method} {url}: {e}")))
    }

    async fn read<T: DeserializeOwned>(&self, response: reqwest::Response) -> Result<T> {
        if !response.status().is_success() {
            return Err(self.refused(response).await);
        }
        let url = response.url().to_string();
        response
            .json()
            .await
            .map_err(|e| Error::Rest(format!("{url}: unexpected answer: {e}")))
    }

    /// The error of a refused call: its status and the problem's `detail`.
    async fn refused(&self, response: reqwest::Response) -> Error {
        let (status, url) = (response.status(), response.url().to_string());
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = body["detail"].as_str().unwrap_or("no problem detail");
        Error::Rest(format!("{url}: {status}: {detail}"))
    }
}

fn request_path(id: &str) -> String {
    format!("{PROVISIONING_PREFIX}/provisioningRequests/{id}")
}
