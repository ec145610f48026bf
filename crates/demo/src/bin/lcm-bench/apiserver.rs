//! What the API server served, from its own `apiserver_request_total` counter.

use std::collections::BTreeMap;

use kube::Client;

/// Requests served so far, by verb.
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
            let verb = labels
                .split(',')
                .find_map(|l| l.trim_start_matches('{').strip_prefix("verb=\""))
                .map(|v| v.trim_end_matches(['"', '}']).to_string())
                .unwrap_or_default();
            *by_verb.entry(verb).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
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

    pub fn writes(&self) -> f64 {
        WRITES.iter().filter_map(|v| self.0.get(*v)).sum()
    }

    pub fn get(&self, verb: &str) -> f64 {
        self.0.get(verb).copied().unwrap_or(0.0)
    }
}
