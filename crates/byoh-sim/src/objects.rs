//! Objects as JSON, and writing them as the simulated controllers do: a status by server-side
//! apply (an apply that changes nothing writes nothing, so it triggers no watch event), metadata
//! by merge patches guarded by the resourceVersion read (from the stores, `crate::stores`).

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use lcm_core::capi::Kind;
use operator_kit::apply::is_subset;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::Result;

pub const FIELD_MANAGER: &str = "byoh-sim";

pub fn to_json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or_default()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

pub fn deleting(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

pub async fn create(api: &Api<DynamicObject>, object: Value) -> Result<Value> {
    let object: DynamicObject = serde_json::from_value(object)?;
    Ok(to_json(&api.create(&post_params(), &object).await?))
}

/// Creates `object` unless it exists already; returns whether it created it.
pub async fn create_if_missing<K>(api: &Api<K>, object: &K) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.create(&post_params(), object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sets the status fields this simulator owns to `status` (fields it no longer sets go), unless
/// `current` already has exactly that status: one write per real state transition, as the
/// controllers it stands in for patch only what changed.
pub async fn apply_status(
    api: &Api<DynamicObject>,
    kind: Kind,
    current: &Value,
    status: Value,
) -> Result<()> {
    let live = &current["status"];
    if is_subset(&status, live) && is_subset(live, &status) {
        return Ok(());
    }
    let name = current["metadata"]["name"].as_str().unwrap_or_default();
    let patch = json!({
        "apiVersion": kind.api_version(), "kind": kind.name(),
        "metadata": {"name": name}, "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER)
            .force()
            .validation_strict(),
        &Patch::Apply(patch),
    )
    .await?;
    Ok(())
}

/// Merge patches under this simulator's name; like its applies, they fail on a field the
/// schema does not have instead of losing it silently.
pub fn merge_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
    .validation_strict()
}

pub async fn merge(api: &Api<DynamicObject>, name: &str, patch: Value) -> Result<()> {
    api.patch(name, &merge_params(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

pub async fn merge_status(api: &Api<DynamicObject>, name: &str, patch: Value) -> Result<()> {
    api.patch_status(name, &merge_params(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// A merge patch that fails with a conflict when `object` changed since it was read, so two
/// writers never both believe they won (e.g. two machines claiming one host).
pub async fn merge_guarded(
    api: &Api<DynamicObject>,
    object: &Value,
    mut patch: Value,
) -> Result<()> {
    patch["metadata"]["resourceVersion"] = object["metadata"]["resourceVersion"].clone();
    merge(api, name(object), patch).await
}

fn finalizers(object: &Value) -> Vec<&str> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub async fn add_finalizer(
    api: &Api<DynamicObject>,
    object: &Value,
    finalizer: &str,
) -> Result<()> {
    let mut all = finalizers(object);
    if all.contains(&finalizer) {
        return Ok(());
    }
    all.push(finalizer);
    merge_guarded(api, object, json!({"metadata": {"finalizers": all}})).await
}

pub async fn remove_finalizer(
    api: &Api<DynamicObject>,
    object: &Value,
    finalizer: &str,
) -> Result<()> {
    let all = finalizers(object);
    if !all.contains(&finalizer) {
        return Ok(());
    }
    let rest: Vec<&str> = all.into_iter().filter(|f| *f != finalizer).collect();
    merge_guarded(api, object, json!({"metadata": {"finalizers": rest}})).await
}

/// Deletes `name` unless it is gone already.
pub async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An owner reference making `owner` the controller of an object (garbage collected with it).
pub fn controller_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// Whether `object` is owned by `owner` (same uid).
pub fn owned_by(object: &Value, owner: &Value) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner["metadata"]["uid"]))
}

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
