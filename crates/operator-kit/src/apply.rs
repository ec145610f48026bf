//! Server-side apply of generated objects, under one field manager, writing only
//! when the live object does not already hold every desired field.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("object has no {0}")]
    Incomplete(&'static str),
    #[error("applying {kind} {name}: {source}")]
    Kube {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Whether every field of `desired` is present with the same value in `live`
/// (lists must match element by element, but for owner references: see below).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, v)| match l.get(k) {
            Some(lv) if k == "ownerReferences" => owners_present(v, lv),
            Some(lv) => is_subset(v, lv),
            None => false,
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        _ => desired == live,
    }
}

/// Owner references are a list keyed by `uid` that others extend (Cluster API adds the Cluster
/// as an owner of the objects it manages): each desired owner must be present, others may be.
fn owners_present(desired: &Value, live: &Value) -> bool {
    let (Some(desired), Some(live)) = (desired.as_array(), live.as_array()) else {
        return desired == live;
    };
    desired.iter().all(|owner| {
        live.iter()
            .any(|l| l["uid"] == owner["uid"] && is_subset(owner, l))
    })
}

/// The dynamic API of an object's kind (every kind applied here pluralizes by adding `s`).
pub fn api_for(client: &Client, object: &Value) -> Result<Api<DynamicObject>, ApplyError> {
    let api_version = object["apiVersion"]
        .as_str()
        .ok_or(ApplyError::Incomplete("apiVersion"))?;
    let kind = object["kind"]
        .as_str()
        .ok_or(ApplyError::Incomplete("kind"))?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &format!("{}s", kind.to_lowercase()),
    );
    Ok(match object["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    })
}

/// Applies `desired` unless the live object already matches it; returns whether it wrote.
pub async fn apply(
    client: &Client,
    desired: &Value,
    field_manager: &str,
) -> Result<bool, ApplyError> {
    let api = api_for(client, desired)?;
    let name = desired["metadata"]["name"]
        .as_str()
        .ok_or(ApplyError::Incomplete("metadata.name"))?;
    let kube_error = |source| ApplyError::Kube {
        kind: desired["kind"].as_str().unwrap_or_default().to_string(),
        name: name.to_string(),
        source,
    };
    if let Some(live) = api.get_opt(name).await.map_err(kube_error)? {
        let live = serde_json::to_value(&live).unwrap_or_default();
        if is_subset(desired, &live) {
            return Ok(false);
        }
    }
    let applied = api
        .patch(
            name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(desired),
        )
        .await
        .map_err(kube_error)?;
    tracing::debug!(
        kind = desired["kind"].as_str(),
        name = applied.name_any(),
        "applied"
    );
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::is_subset;
    use serde_json::json;

    #[test]
    fn subset_ignores_fields_others_set() {
        let desired = json!({"spec": {"replicas": 2, "selector": {"a": "b"}}});
        let live =
            json!({"spec": {"replicas": 2, "selector": {"a": "b"}, "paused": false}, "status": {}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn subset_sees_changed_values_and_lists() {
        let live = json!({"spec": {"replicas": 2, "hosts": ["a", "b"]}});
        assert!(!is_subset(&json!({"spec": {"replicas": 3}}), &live));
        assert!(!is_subset(&json!({"spec": {"hosts": ["a"]}}), &live));
        assert!(!is_subset(&json!({"spec": {"missing": 1}}), &live));
        assert!(is_subset(&json!({"spec": {"hosts": ["a", "b"]}}), &live));
    }

    #[test]
    fn owner_references_added_by_others_are_not_a_difference() {
        let ours = json!({"uid": "1", "kind": "ProvisioningRequest", "controller": false});
        let theirs = json!({"uid": "2", "kind": "Cluster", "controller": true});
        let desired = json!({"metadata": {"ownerReferences": [ours]}});
        let live = |owners| json!({"metadata": {"ownerReferences": owners}});
        assert!(is_subset(&desired, &live(json!([theirs, ours]))));
        assert!(!is_subset(&desired, &live(json!([theirs]))));
        let changed = json!({"uid": "1", "kind": "ProvisioningRequest", "controller": true});
        assert!(!is_subset(&desired, &live(json!([theirs, changed]))));
    }
}
