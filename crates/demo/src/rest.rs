//! What an SMO sees of the demo over the O2ims REST API: a ServiceAccount with the chart's
//! reader role, its token, the list of provisioning requests and the active alarms.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

use crate::world::{FOCOM_NAMESPACE, World};

const LIST: &str = "/o2ims-infrastructureProvisioning/v1/provisioningRequests";
/// The active alarms (perceivedSeverity 5 is CLEARED).
pub const ACTIVE_ALARMS: &str =
    "/o2ims-infrastructureMonitoring/v1/alarms?filter=(neq,perceivedSeverity,5)";

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
    curl_of(world, reader, LIST)
}

/// The `curl` that GETs `path` with the reader's token.
pub fn curl_of(world: &World, reader: &Reader, path: &str) -> String {
    format!(
        "curl --cacert {} -H \"Authorization: Bearer $(cat {})\" '{}{path}'",
        world.api.ca_file.display(),
        reader.token_file.display(),
        world.api.base
    )
}

/// The active alarms as that `curl` shows them: one line per alarm (probable cause, severity,
/// subject, message).
pub async fn alarms(world: &World, reader: &Reader) -> anyhow::Result<Vec<String>> {
    let response = world
        .api
        .http()?
        .get(format!("{}{ACTIVE_ALARMS}", world.api.base))
        .bearer_auth(&reader.token)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "GET {ACTIVE_ALARMS}: {status}: {body}");
    Ok(body
        .as_array()
        .context("a list")?
        .iter()
        .map(|alarm| {
            let extension =
                |key: &str| alarm["extensions"][key].as_str().unwrap_or("-").to_string();
            format!(
                "{:<28}  severity {}  {:<10}  {}",
                extension("probableCause"),
                alarm["perceivedSeverity"],
                extension("subject"),
                extension("message"),
            )
        })
        .collect())
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
