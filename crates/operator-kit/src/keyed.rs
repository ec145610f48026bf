//! A watch-fed store whose objects are also found by a key (their namespace, a label's value),
//! so that a reconcile reading one cluster's objects reads those, not the whole fleet's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use futures::TryStreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

/// What an object is found by: its key, or none (then it is found only by name).
pub type KeyOf = fn(&DynamicObject) -> Option<String>;

/// A store of one kind, with its objects by key.
#[derive(Clone)]
pub struct Keyed {
    store: Store<DynamicObject>,
    keys: Arc<RwLock<Keys>>,
}

impl Keyed {
    /// Every object, by namespace and name.
    pub fn store(&self) -> &Store<DynamicObject> {
        &self.store
    }

    /// The objects whose key is `key`, ordered by namespace and name.
    pub fn with_key(&self, key: &str) -> Vec<Arc<DynamicObject>> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.objects
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|(namespace, name)| {
                let at = ObjectRef::new_with(name, keys.resource.clone());
                self.store.get(&at.within(namespace))
            })
            .collect()
    }
}

/// The keys of a store's objects, kept from each watch event before the store's writer
/// applies it: when the store says it has listed, its keys are whole already.
struct Keys {
    key_of: KeyOf,
    resource: ApiResource,
    /// Per key, the (namespace, name) of its objects.
    objects: HashMap<String, BTreeSet<(String, String)>>,
    /// Each keyed object's key, to move it when its key changes.
    keyed: HashMap<(String, String), String>,
    /// A relisting's keys until it is complete, as the store's writer buffers its objects.
    relisting: Option<Box<Keys>>,
}

impl Keys {
    fn new(key_of: KeyOf, resource: ApiResource) -> Self {
        Self {
            key_of,
            resource,
            objects: HashMap::new(),
            keyed: HashMap::new(),
            relisting: None,
        }
    }

    /// Follows `event`: a relisting replaces every key once it is complete.
    fn apply(&mut self, event: &watcher::Event<DynamicObject>) {
        match event {
            watcher::Event::Apply(object) => self.set(object),
            watcher::Event::Delete(object) => self.remove(&location(object)),
            watcher::Event::Init => {
                self.relisting = Some(Box::new(Keys::new(self.key_of, self.resource.clone())));
            }
            watcher::Event::InitApply(object) => {
                if let Some(relisting) = &mut self.relisting {
                    relisting.set(object);
                }
            }
            watcher::Event::InitDone => {
                if let Some(listed) = self.relisting.take() {
                    (self.objects, self.keyed) = (listed.objects, listed.keyed);
                }
            }
        }
    }

    fn set(&mut self, object: &DynamicObject) {
        let at = location(object);
        self.remove(&at);
        if let Some(key) = (self.key_of)(object) {
            self.insert(at, key);
        }
    }

    fn insert(&mut self, at: (String, String), key: String) {
        self.objects
            .entry(key.clone())
            .or_default()
            .insert(at.clone());
        self.keyed.insert(at, key);
    }

    fn remove(&mut self, at: &(String, String)) {
        let Some(key) = self.keyed.remove(at) else {
            return;
        };
        if let Some(objects) = self.objects.get_mut(&key) {
            objects.remove(at);
            if objects.is_empty() {
                self.objects.remove(&key);
            }
        }
    }
}

fn location(object: &DynamicObject) -> (String, String) {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// A watch of `resource`'s objects (those `config` selects, across namespaces) into a new
/// store with their keys, each object as `keep` leaves it (dropping in place what no reader
/// reads; managed fields are dropped first). The stream yields each object whose kept fields
/// changed, and each watch error (the stream retries with back-off): a change of nothing kept is
/// stored (its resourceVersion) but yields nothing, as no reader would see it.
pub fn store<Keep>(
    client: &Client,
    resource: &ApiResource,
    config: watcher::Config,
    key_of: KeyOf,
    keep: Keep,
) -> (
    Keyed,
    impl futures::Stream<Item = Result<DynamicObject, watcher::Error>> + Send + use<Keep>,
)
where
    Keep: Fn(&mut DynamicObject) + Send + 'static,
{
    let mut writer = reflector::store::Writer::new(resource.clone());
    let keyed = Keyed {
        store: writer.as_reader(),
        keys: Arc::new(RwLock::new(Keys::new(key_of, resource.clone()))),
    };
    let (keys, held, resource) = (keyed.keys.clone(), keyed.store.clone(), resource.clone());
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let events = crate::watch::unmanaged(api, config)
        .modify(keep)
        .map_ok(move |event| {
            let news = match &event {
                watcher::Event::Apply(object) => {
                    let at = ObjectRef::from_obj_with(object, resource.clone());
                    held.get(&at)
                        .is_none_or(|held| !same_but_version(&held, object))
                }
                _ => true,
            };
            // Keys first: a reconcile that finds the store listed finds its keys too.
            keys.write()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(&event);
            writer.apply_watcher_event(&event);
            news.then_some(event)
        })
        .try_filter_map(|event| std::future::ready(Ok(event)))
        .default_backoff()
        .touched_objects();
    (keyed, events)
}

/// Whether `a` and `b`, of the same kind, are the same but for their resourceVersions (a
/// listed object has no `apiVersion` and `kind`, a watched one has them).
fn same_but_version(a: &DynamicObject, b: &DynamicObject) -> bool {
    let version = |o: &DynamicObject| {
        let mut metadata = o.metadata.clone();
        metadata.resource_version = None;
        metadata
    };
    a.data == b.data && version(a) == version(b)
}

#[cfg(test)]
mod tests;
