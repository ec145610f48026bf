//! What an SMO sees of the demo over the O2ims REST API: a ServiceAccount with the chart's
//! reader role, its token, and the list of provisioning requests.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

use crate::world::{FOCOM_NAMESPACE, World};

const LIST: &str = "/o2ims-infrastructureProvisioning/v1/provisioningRequests";

/// A reader's token, written to a file for `curl`.
pub struct Reader {
    pub token: String,
    pub token_file: PathBuf,
}

/// Grants the ServiceAccount `focom-system/smo` the chart's reader role and writes its token.
pub async fn reader(world: &World) -> anyhow::Result<Reader> {
    let token = testcluster::api_server::token_with_roles(
        &world.cluster,
        FOCOM_NAMESPACE,
        "smo",
        &["oran-lcm-o2ims-reader"],
    )
    .await?;
    let token_file = world.api.ca_file.with_file_name("smo.token");
    std::fs::write(&token_file, &token)?;
    Ok(Reader { token, token_file })
}

/// The `curl` that lists the provisioning requests with the reader's token.
pub fn curl(world: &World, reader: &Reader) -> String {
    format!(
        "curl --cacert {} -H \"Authorization: Bearer $(cat {})\" {}{LIST}",
        world.api.ca_file.display(),
        reader.token_file.display(),
        world.api.base
    )
}

/// Lists the provisioning requests as that `curl` does: one line per request (id, phase,
/// cluster, message).
pub async fn list(world: &World, reader: &Reader) -> anyhow::Result<Vec<String>> {
    let response = world
        .api
        .http()?
        .get(format!("{}{LIST}", world.api.base))
        .bearer_auth(&reader.token)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "GET {LIST}: {status}: {body}");
    let items = body.as_array().context("a list")?;
    Ok(items
        .iter()
        .map(|item| {
            let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
            format!(
                "{}  {:<11}  {:<6}  {}",
                text(&item["provisioningRequestData"]["provisioningRequestId"]),
                text(&item["status"]["provisioningPhase"]),
                text(&item["provisioningRequestData"]["templateParameters"]["clusterName"]),
                text(&item["status"]["message"]),
            )
        })
        .collect())
}
