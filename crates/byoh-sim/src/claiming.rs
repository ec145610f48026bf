//! How a ByoMachine gets a host and gives it back, as BYOH's ByoMachine controller does it: it
//! takes the first free ByoHost (one without the `cluster.x-k8s.io/cluster-name` label) its
//! selector matches, in any namespace; when deleted it marks the host for cleanup, which the
//! host's agent performs.

use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::objects::{self, label, name, namespace};

/// Label naming the ByoMachine (`<namespace>.<name>`) a host is attached to.
pub const BYOMACHINE_NAME_LABEL: &str = "byoh.infrastructure.cluster.x-k8s.io/byomachine-name";
/// Annotation asking a host's agent to reset the node and give the host back.
pub const CLEANUP_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/unregistering";
const ENDPOINT_IP_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/endpointip";
const K8S_VERSION_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/k8sversion";
const BUNDLE_REGISTRY_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/bundle-registry";
/// Annotations a claim puts on a host; its agent removes them on release.
pub const CLAIM_ANNOTATIONS: [&str; 3] = [
    ENDPOINT_IP_ANNOTATION,
    K8S_VERSION_ANNOTATION,
    BUNDLE_REGISTRY_ANNOTATION,
];

/// A `metav1.LabelSelector` as a label-selector string the API server evaluates.
pub fn selector_string(selector: &Value) -> std::result::Result<String, String> {
    let mut requirements: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let operator = expression["operator"].as_str().unwrap_or_default();
        requirements.push(match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!("{operator} on `{key}` needs values"));
            }
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => return Err(format!("unknown operator `{other}` on `{key}`")),
        });
    }
    Ok(requirements.join(","))
}

fn attachment(byo_machine: &Value) -> String {
    format!("{}.{}", namespace(byo_machine), name(byo_machine))
}

/// The host attached to `byo_machine`, if any.
pub async fn attached_host(ctx: &Context, byo_machine: &Value) -> Result<Option<Value>> {
    let selector = format!("{BYOMACHINE_NAME_LABEL}={}", attachment(byo_machine));
    Ok(objects::list(&ctx.api_all(Kind::ByoHost), &selector)
        .await?
        .into_iter()
        .next())
}

/// What a claim needs to know besides the ByoMachine.
pub struct ClaimFor<'a> {
    pub machine: &'a Value,
    pub cluster: &'a Value,
    pub byo_cluster: Option<&'a Value>,
}

/// Attaches the first free host `byo_machine`'s selector matches; `None` when there is none.
pub async fn claim(ctx: &Context, byo_machine: &Value, by: ClaimFor<'_>) -> Result<Option<Value>> {
    let selector = match selector_string(&byo_machine["spec"]["selector"]) {
        Ok(s) if s.is_empty() => format!("!{CAPI_CLUSTER_NAME_LABEL}"),
        Ok(s) => format!("{s},!{CAPI_CLUSTER_NAME_LABEL}"),
        Err(problem) => {
            tracing::warn!(byo_machine = name(byo_machine), %problem, "invalid host selector: no host matches");
            return Ok(None);
        }
    };
    let version = by.machine["spec"]["version"].as_str().unwrap_or_default();
    let mut annotations = json!({
        ENDPOINT_IP_ANNOTATION: by.cluster["spec"]["controlPlaneEndpoint"]["host"],
        K8S_VERSION_ANNOTATION: version.split('+').next().unwrap_or(version),
    });
    if let Some(registry) = by
        .byo_cluster
        .and_then(|c| c["spec"]["bundleLookupBaseRegistry"].as_str())
    {
        annotations[BUNDLE_REGISTRY_ANNOTATION] = json!(registry);
    }
    let claim = json!({
        "metadata": {
            "labels": {
                CAPI_CLUSTER_NAME_LABEL: label(byo_machine, CAPI_CLUSTER_NAME_LABEL),
                BYOMACHINE_NAME_LABEL: attachment(byo_machine),
            },
            "annotations": annotations,
        },
        "spec": {"bootstrapSecret": {
            "kind": "Secret",
            "namespace": namespace(byo_machine),
            "name": by.machine["spec"]["bootstrap"]["dataSecretName"],
        }},
    });
    for host in objects::list(&ctx.api_all(Kind::ByoHost), &selector).await? {
        let api = ctx.api(Kind::ByoHost, namespace(&host));
        match objects::merge_guarded(&api, &host, claim.clone()).await {
            // Another machine claimed it between our list and our write.
            Err(Error::Kube(kube::Error::Api(status))) if status.is_conflict() => continue,
            other => other?,
        }
        let machine_ref = json!({
            "apiVersion": byo_machine["apiVersion"], "kind": byo_machine["kind"],
            "namespace": namespace(byo_machine), "name": name(byo_machine),
            "uid": byo_machine["metadata"]["uid"],
        });
        objects::merge_status(
            &api,
            name(&host),
            json!({"status": {"machineRef": machine_ref}}),
        )
        .await?;
        tracing::info!(host = name(&host), byo_machine = %attachment(byo_machine), "claimed host");
        return Ok(Some(host));
    }
    Ok(None)
}

/// Asks the agent of `host` to give it back (BYOH's `markHostForCleanup`).
pub async fn mark_for_cleanup(ctx: &Context, host: &Value) -> Result<()> {
    if !host["metadata"]["annotations"][CLEANUP_ANNOTATION].is_null() {
        return Ok(());
    }
    let api = ctx.api(Kind::ByoHost, namespace(host));
    objects::merge(
        &api,
        name(host),
        json!({"metadata": {"annotations": {CLEANUP_ANNOTATION: ""}}}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_label_selector_strings() {
        let selector = json!({
            "matchLabels": {"site": "paris"},
            "matchExpressions": [
                {"key": "host-id", "operator": "In", "values": ["h1", "h2"]},
                {"key": "rack", "operator": "NotIn", "values": ["r9"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "broken", "operator": "DoesNotExist"},
            ],
        });
        assert_eq!(
            selector_string(&selector).as_deref(),
            Ok("site=paris,host-id in (h1,h2),rack notin (r9),gpu,!broken")
        );
        assert_eq!(selector_string(&Value::Null).as_deref(), Ok(""));
        assert!(
            selector_string(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
                .is_err()
        );
    }
}
