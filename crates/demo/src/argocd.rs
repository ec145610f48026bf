//! What the demo shows of the day-2 hand-off: the ArgoCD cluster Secrets of its clusters.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use lcm_core::handoff::argocd::SECRET_TYPE_LABEL;

/// Waits until `namespace` holds an ArgoCD cluster Secret for each of `clusters`, and describes
/// each: name, server, routing labels and where its credentials come from.
pub async fn registrations(
    client: &Client,
    namespace: &str,
    clusters: &[String],
) -> anyhow::Result<Vec<String>> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let selector = ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=cluster"));
    let secrets = testcluster::wait_for(
        "the ArgoCD cluster Secrets",
        Duration::from_secs(30),
        || async {
            let secrets = api.list(&selector).await?.items;
            let all = clusters.iter().all(|c| {
                secrets
                    .iter()
                    .any(|s| s.name_any() == format!("cluster-{c}"))
            });
            Ok(all.then_some(secrets))
        },
    )
    .await?;
    Ok(secrets.iter().map(|s| describe(namespace, s)).collect())
}

fn describe(namespace: &str, secret: &Secret) -> String {
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .unwrap_or_default()
    };
    let config: serde_json::Value = serde_json::from_str(&field("config")).unwrap_or_default();
    let tls = &config["tlsClientConfig"];
    let present: Vec<&str> = [
        ("caData", "CA"),
        ("certData", "client certificate"),
        ("keyData", "client key"),
    ]
    .into_iter()
    .filter(|(key, _)| tls[*key].is_string())
    .map(|(_, what)| what)
    .collect();
    let labels: Vec<String> = ["site", "role"]
        .iter()
        .filter_map(|key| Some(format!("{key}={}", secret.labels().get(*key)?)))
        .collect();
    let labels = match labels.is_empty() {
        true => "no site or role label".to_string(),
        false => labels.join(" "),
    };
    format!(
        "Secret {namespace}/{}: name {}, server {}, {labels}; TLS {}",
        secret.name_any(),
        field("name"),
        field("server"),
        present.join(", ")
    )
}
