//! Writing objects as the simulated components do: creates, and merge patches that fail on a
//! field the schema does not have instead of losing it silently.

use std::fmt::Debug;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Result;

pub const FIELD_MANAGER: &str = "byoh-sim";

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// Creates `object` unless it exists already; returns whether it created it.
pub async fn create_if_missing<K>(api: &Api<K>, object: &K) -> Result<bool>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

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

/// The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The objects of `K` in `namespace`, or in every namespace.
pub fn typed_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}
