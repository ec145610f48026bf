//! Server-side apply of generated objects, under one field manager, writing only
//! when the live object does not already hold every desired field.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long an object this process applied, or found as desired, is taken to still be so
/// without reading it again: what another writer changes meanwhile is corrected that much later.
const TRUSTED_FOR: Duration = Duration::from_secs(300);

/// What the caller of [`Applier::apply`] knows of the live object.
#[derive(Clone, Copy, Debug)]
pub enum Live<'a> {
    /// Its kind is watched: the object as the cache has it, compared instead of remembered, so a
    /// change of a watched object is corrected at once.
    Cached(&'a Value),
    /// It is new (e.g. the first pass of its cluster): written without being read first; an
    /// apply of what already holds changes nothing.
    Absent,
    /// Nothing: what was remembered holds, else it is read.
    Unknown,
}

/// What an apply changed. The API server moves an object's `metadata.generation` with its
/// spec only, so a write that leaves it (labels, annotations, owners; data of kinds without a
/// generation) gives the object's controllers nothing new to reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Applied {
    /// Nothing was written: the live object held every desired field.
    Unchanged,
    /// Written, and the generation stayed.
    SameGeneration,
    /// The object is new, or its spec changed.
    NewGeneration,
}

impl Applied {
    pub fn written(self) -> bool {
        self != Applied::Unchanged
    }
}

/// Applies generated objects under one field manager, writing only when the live object does
/// not already hold every desired field. It remembers what each object was last seen to hold
/// (a hash of the desired object), so a pass rendering the same objects again neither reads
/// nor writes them: the cost of a reconcile does not grow with the number of its objects.
pub struct Applier {
    client: Client,
    field_manager: &'static str,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    hashes: HashMap<String, (u64, Instant)>,
    /// Expired entries are dropped when the map outgrows this.
    prune_at: usize,
}

impl Applier {
    pub fn new(client: Client, field_manager: &'static str) -> Self {
        Self {
            client,
            field_manager,
            seen: Mutex::default(),
        }
    }

    /// Applies `desired` unless it holds already, and says what the write changed. `live` is
    /// what the caller knows of the object (see [`Live`]).
    pub async fn apply(&self, desired: &Value, live: Live<'_>) -> Result<Applied, ApplyError> {
        let key = key(desired)?;
        let hash = hash(desired);
        let fetched;
        let live = match live {
            Live::Cached(live) => Some(live),
            Live::Absent => None,
            Live::Unknown if self.remembers(&key, hash) => return Ok(Applied::Unchanged),
            Live::Unknown => {
                fetched = self.get(desired).await?;
                fetched.as_ref()
            }
        };
        if live.is_some_and(|live| is_subset(desired, live)) {
            self.remember(key, hash);
            return Ok(Applied::Unchanged);
        }
        let applied = api_for(&self.client, desired)?
            .patch(
                name(desired)?,
                &PatchParams::apply(self.field_manager).force(),
                &Patch::Apply(desired),
            )
            .await
            .map_err(|e| kube_error(desired, e))?;
        tracing::debug!(
            kind = desired["kind"].as_str(),
            name = applied.name_any(),
            "applied"
        );
        self.remember(key, hash);
        let generation = |object: &Value| object["metadata"]["generation"].as_i64();
        Ok(match live {
            Some(live) if generation(live) == applied.metadata.generation => {
                Applied::SameGeneration
            }
            _ => Applied::NewGeneration,
        })
    }

    /// Records that `desired` was just created as it is (by a create, which fails on an
    /// existing object): applying it next writes nothing.
    pub fn created(&self, desired: &Value) {
        if let Ok(key) = key(desired) {
            self.remember(key, hash(desired));
        }
    }

    async fn get(&self, desired: &Value) -> Result<Option<Value>, ApplyError> {
        let live = api_for(&self.client, desired)?
            .get_opt(name(desired)?)
            .await
            .map_err(|e| kube_error(desired, e))?;
        Ok(live.map(|live| serde_json::to_value(live).unwrap_or_default()))
    }

    fn remembers(&self, key: &str, hash: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.hashes
            .get(key)
            .is_some_and(|(h, at)| *h == hash && at.elapsed() < TRUSTED_FOR)
    }

    fn remember(&self, key: String, hash: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.hashes.insert(key, (hash, Instant::now()));
        if seen.hashes.len() > seen.prune_at {
            seen.hashes.retain(|_, (_, at)| at.elapsed() < TRUSTED_FOR);
            seen.prune_at = (seen.hashes.len() * 2).max(1024);
        }
    }
}

fn name(object: &Value) -> Result<&str, ApplyError> {
    object["metadata"]["name"]
        .as_str()
        .ok_or(ApplyError::Incomplete("metadata.name"))
}

fn key(object: &Value) -> Result<String, ApplyError> {
    Ok(format!(
        "{}/{}/{}/{}",
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["namespace"].as_str().unwrap_or_default(),
        name(object)?
    ))
}

fn hash(object: &Value) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    object.to_string().hash(&mut hasher);
    hasher.finish()
}

fn kube_error(object: &Value, source: kube::Error) -> ApplyError {
    ApplyError::Kube {
        kind: object["kind"].as_str().unwrap_or_default().to_string(),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        source,
    }
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
