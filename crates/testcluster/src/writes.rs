//! Counting the API server's requests, from its own `apiserver_request_total` counter: to show
//! that a reconcile of an unchanged world makes no write, and for the benchmark.

use std::collections::BTreeMap;

use kube::Client;

/// The verbs that write.
pub const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Requests the API server has served, by `"<VERB> <resource>/<subresource>"`.
pub async fn requests(client: &Client) -> anyhow::Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |key: &str| {
            line.split(&format!("{key}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let key = format!(
            "{} {}/{}",
            label("verb"),
            label("resource"),
            label("subresource")
        );
        *counts.entry(key).or_insert(0.0) += value;
    }
    Ok(counts)
}

/// Mutating requests the API server has served, by resource (its own lease renewals aside).
pub async fn writes(client: &Client) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut counts = requests(client).await?;
    counts.retain(|key, _| {
        let (verb, resource) = key.split_once(' ').unwrap_or_default();
        WRITE_VERBS.contains(&verb) && !resource.starts_with("leases/")
    });
    Ok(counts)
}

/// The GETs and LISTs of resources `counted` selects that the API server served since
/// `before` (a [`requests`] reading), by `"<VERB> <resource>/<subresource>"`.
pub async fn reads_since(
    client: &Client,
    before: &BTreeMap<String, f64>,
    counted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<(String, f64)>> {
    Ok(requests(client)
        .await?
        .into_iter()
        .map(|(key, n)| {
            let served = n - before.get(&key).copied().unwrap_or(0.0);
            (key, served)
        })
        .filter(|(key, served)| {
            let (verb, resource) = key.split_once(' ').unwrap_or_default();
            *served != 0.0 && ["GET", "LIST"].contains(&verb) && counted(resource)
        })
        .collect())
}
