//! What the API server served, from its own counter (`testcluster::requests`).

use std::collections::BTreeMap;

use kube::Client;

/// Requests served so far, by `"<VERB> <resource>/<subresource>"`.
#[derive(Clone, Debug, Default)]
pub struct Requests(pub BTreeMap<String, f64>);

impl Requests {
    pub async fn read(client: &Client) -> anyhow::Result<Self> {
        Ok(Self(testcluster::requests(client).await?))
    }

    /// What was served between `earlier` and `self`.
    pub fn since(&self, earlier: &Requests) -> Requests {
        Requests(
            self.0
                .iter()
                .map(|(key, n)| (key.clone(), n - earlier.0.get(key).copied().unwrap_or(0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect(),
        )
    }

    // Sums start at 0.0: an empty f64 sum is -0.0, which prints as "-0".
    /// Requests of `verb`, every resource.
    pub fn verb(&self, verb: &str) -> f64 {
        self.0
            .iter()
            .filter(|(key, _)| key.split(' ').next() == Some(verb))
            .fold(0.0, |sum, (_, n)| sum + n)
    }

    /// Every write, the control plane's own lease renewals included.
    pub fn writes(&self) -> f64 {
        testcluster::WRITE_VERBS
            .iter()
            .fold(0.0, |sum, verb| sum + self.verb(verb))
    }

    pub fn total(&self) -> f64 {
        self.0.values().fold(0.0, |sum, n| sum + n)
    }
}
