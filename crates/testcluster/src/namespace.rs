//! One fresh namespace per test, so tests can share a control plane.

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::wait::conditions::is_deleted;
use kube::{Client, ResourceExt};

use crate::wait::wait_until;

/// A namespace created for one test. Call [`TestNamespace::cleanup`] at the end of the test
/// (there is no async Drop); a namespace left behind only costs space in a throw-away etcd.
pub struct TestNamespace {
    name: String,
    uid: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random suffix>`; the API server picks the suffix (`generateName`), so
    /// names are unique even across test processes sharing a cluster.
    pub(crate) async fn create(client: Client, prefix: &str) -> anyhow::Result<TestNamespace> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", sanitize(prefix))),
                labels: Some(
                    [("testcluster/test-namespace".to_string(), "true".to_string())].into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("create namespace with prefix {prefix}"))?;
        Ok(TestNamespace {
            name: created.name_any(),
            uid: created.uid().unwrap_or_default(),
            client,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace without waiting: the namespace controller empties it in the
    /// background.
    pub async fn cleanup(self) -> anyhow::Result<()> {
        self.delete().await
    }

    /// Deletes the namespace and waits until the namespace controller has removed it.
    pub async fn delete_and_wait(self, timeout: Duration) -> anyhow::Result<()> {
        self.delete().await?;
        let api = Api::<Namespace>::all(self.client.clone());
        wait_until(api, &self.name, is_deleted(&self.uid), timeout).await?;
        Ok(())
    }

    async fn delete(&self) -> anyhow::Result<()> {
        match Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
            Err(err) => Err(err).with_context(|| format!("delete namespace {}", self.name)),
        }
    }
}

/// Makes a test name usable as a namespace prefix: a DNS label, leaving room for the suffix.
fn sanitize(prefix: &str) -> String {
    let mut name: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(50)
        .collect();
    name = name.trim_matches('-').to_string();
    if name.is_empty() { "test".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitizes_prefixes() {
        assert_eq!(sanitize("gc_owner::Test"), "gc-owner--test");
        assert_eq!(sanitize("__"), "test");
        assert_eq!(sanitize(&"a".repeat(80)).len(), 50);
    }
}
