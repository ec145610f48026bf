//! What the API server served, from its own `apiserver_request_total` counter.

use std::collections::BTreeMap;

use kube::Client;

/// Requests served so far, by verb and resource (`LIST clusters`, `APPLY machines/status`).
#[derive(Clone, Debug, Default)]
pub struct Requests(pub BTreeMap<String, f64>);

/// The verbs that write.
const WRITES: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

impl Requests {
    pub async fn read(client: &Client) -> anyhow::Result<Self> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = client.request_text(request).await?;
        let mut by_verb = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.starts_with("apiserver_request_total{"))
        {
            let (labels, value) = line.rsplit_once(' ').unwrap_or_default();
            let label = |name: &str| {
                labels
                    .trim_start_matches("apiserver_request_total{")
                    .trim_end_matches('}')
                    .split(',')
                    .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let (resource, subresource) = (label("resource"), label("subresource"));
            let what = if subresource.is_empty() {
                resource
            } else {
                format!("{resource}/{subresource}")
            };
            let key = format!("{} {what}", label("verb"));
            *by_verb.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
        Ok(Self(by_verb))
    }

    /// What was served between `earlier` and `self`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .map(|(verb, n)| {
                    (
                        verb.clone(),
                        n - earlier.0.get(verb).copied().unwrap_or(0.0),
                    )
                })
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        )
    }

    /// Requests of `verb`, every resource.
    pub fn verb(&self, verb: &str) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| key.split(' ').next() == Some(verb))
            .map(|(_, n)| n)
            .fold(0.0, |a, b| a + b)
    }

    // Sums start at 0.0: an empty f64 sum is -0.0, which prints as "-0".
    pub fn writes(&self) -> f64 {
        WRITES.iter().map(|v| self.verb(v)).fold(0.0, |a, b| a + b)
    }

    pub fn total(&self) -> f64 {
        self.0.values().fold(0.0, |a, b| a + b)
    }
}
