//! The O2ims REST API's latency: listing every provisioning request as an SMO does, with a
//! token the server authenticates (TokenReview) and authorizes (SubjectAccessReview) each time.

use std::time::Instant;

use anyhow::Context as _;
use demo::World;

const LIST: &str = "/o2ims-infrastructureProvisioning/v1/provisioningRequests";

/// Seconds each of `samples` sequential lists took (the whole response read), sorted for the
/// quantiles, and the number of requests the last one listed.
pub async fn list_latencies(world: &World, samples: usize) -> anyhow::Result<(Vec<f64>, usize)> {
    let reader = demo::rest::reader(world).await?;
    let http = world.api.http()?;
    let url = format!("{}{LIST}", world.api.base);
    let mut seconds = Vec::with_capacity(samples);
    let mut listed = 0;
    for _ in 0..samples {
        let started = Instant::now();
        let response = http.get(&url).bearer_auth(&reader.token).send().await?;
        anyhow::ensure!(
            response.status() == 200,
            "GET {LIST}: {}",
            response.status()
        );
        let body: serde_json::Value = response.json().await?;
        seconds.push(started.elapsed().as_secs_f64());
        listed = body.as_array().context("a list")?.len();
    }
    seconds.sort_by(f64::total_cmp);
    Ok((seconds, listed))
}
