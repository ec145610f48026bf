//! How a ByoMachine gets a host and gives it back, as BYOH's ByoMachine controller does it
//! (controllers/infrastructure/byomachine_controller.go `attachByoHost`): one claim at a time
//! (its single worker), it lists the free ByoHosts (no `cluster.x-k8s.io/cluster-name` label) its
//! selector matches from its cache, in any namespace, takes the first and patches it from the
//! cached copy, unguarded by resourceVersion, without waiting for its cache to show the claim:
//! a claim right after may take the same host, and the machine that lost it (the host's
//! `byomachine-name` label names the other) claims again. When deleted it marks the host for
//! cleanup, which the host's agent performs.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::Result;
use crate::objects::{self, label, name, namespace};
use crate::stores::labelled;

/// Label naming the ByoMachine (`<namespace>.<name>`) a host is attached to.
pub const BYOMACHINE_NAME_LABEL: &str = "byoh.infrastructure.cluster.x-k8s.io/byomachine-name";
/// Annotation asking a host's agent to reset the node and give the host back.
pub const CLEANUP_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/unregistering";
const ENDPOINT_IP_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/endpointip";
pub const K8S_VERSION_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/k8sversion";
const BUNDLE_REGISTRY_ANNOTATION: &str = "byoh.infrastructure.cluster.x-k8s.io/bundle-registry";
/// Annotations a claim puts on a host; its agent removes them on release.
pub const CLAIM_ANNOTATIONS: [&str; 3] = [
    ENDPOINT_IP_ANNOTATION,
    K8S_VERSION_ANNOTATION,
    BUNDLE_REGISTRY_ANNOTATION,
];

/// A `metav1.LabelSelector` as a selector, refusing what the API server refuses: `In` and
/// `NotIn` without values, unknown operators.
pub fn label_selector(selector: &Value) -> std::result::Result<Selector, String> {
    let mut requirements: Vec<Expression> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            Expression::Equal(key.clone(), value.as_str().unwrap_or_default().into())
        })
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default().to_string();
        let values: BTreeSet<String> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        let operator = expression["operator"].as_str().unwrap_or_default();
        requirements.push(match operator {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!("{operator} on `{key}` needs values"));
            }
            "In" => Expression::In(key, values),
            "NotIn" => Expression::NotIn(key, values),
            "Exists" => Expression::Exists(key),
            "DoesNotExist" => Expression::DoesNotExist(key),
            other => return Err(format!("unknown operator `{other}` on `{key}`")),
        });
    }
    Ok(requirements.into_iter().collect())
}

fn attachment(byo_machine: &Value) -> String {
    format!("{}.{}", namespace(byo_machine), name(byo_machine))
}

/// The host attached to `byo_machine`, if any.
pub fn attached_host(ctx: &Context, byo_machine: &Value) -> Option<Value> {
    let attached = labelled(BYOMACHINE_NAME_LABEL, &attachment(byo_machine));
    ctx.stores
        .list(Kind::ByoHost, None, &attached)
        .into_iter()
        .next()
}

/// What a claim needs to know besides the ByoMachine.
pub struct ClaimFor<'a> {
    pub machine: &'a Value,
    pub cluster: &'a Value,
    pub byo_cluster: Option<&'a Value>,
}

/// Attaches the first free host `byo_machine`'s selector matches; `None` when there is none.
pub async fn claim(ctx: &Context, byo_machine: &Value, by: ClaimFor<'_>) -> Result<Option<Value>> {
    let mut selector = match label_selector(&byo_machine["spec"]["selector"]) {
        Ok(selector) => selector,
        Err(problem) => {
            tracing::warn!(byo_machine = name(byo_machine), %problem, "invalid host selector: no host matches");
            return Ok(None);
        }
    };
    selector.extend(Expression::DoesNotExist(CAPI_CLUSTER_NAME_LABEL.into()));
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
    let _one_at_a_time = ctx.claiming.lock().await;
    let Some(host) = ctx
        .stores
        .list(Kind::ByoHost, None, &selector)
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    attach(ctx, &host, byo_machine, &claim).await?;
    Ok(Some(host))
}

/// Writes `claim` to `host` for `byo_machine`: labels, annotations and spec, then the status.
async fn attach(ctx: &Context, host: &Value, byo_machine: &Value, claim: &Value) -> Result<()> {
    let api = ctx.api(Kind::ByoHost, namespace(host));
    objects::merge(&api, name(host), claim.clone()).await?;
    let machine_ref = json!({
        "apiVersion": byo_machine["apiVersion"], "kind": byo_machine["kind"],
        "namespace": namespace(byo_machine), "name": name(byo_machine),
        "uid": byo_machine["metadata"]["uid"],
    });
    objects::merge_status(
        &api,
        name(host),
        json!({"status": {"machineRef": machine_ref}}),
    )
    .await?;
    tracing::info!(host = name(host), byo_machine = %attachment(byo_machine), "claimed host");
    Ok(())
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
    fn selectors_read_as_the_api_server_reads_them() {
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
            label_selector(&selector).map(|s| s.to_string()).as_deref(),
            Ok("site=paris,host-id in (h1,h2),rack notin (r9),gpu,!broken")
        );
        assert_eq!(label_selector(&Value::Null), Ok(Selector::default()));
        assert!(
            label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]})).is_err()
        );
    }
}
