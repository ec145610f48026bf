//! What the simulated Job controller and kubelet read, as they read it: from watches (one per
//! kind) filling stores. A read costs no request and may be stale, as theirs may.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::{self, BoxFuture};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};

use crate::objects::typed_api;

/// The stores, each filled by its watch.
pub struct Stores {
    /// Only whether a Secret exists is read: no Secret's data is cached.
    secrets: Watched<PartialObjectMeta<Secret>>,
    config_maps: Watched<ConfigMap>,
}

impl Stores {
    /// The stores of the objects in `namespace` (`None`: in every namespace), and the watches
    /// filling them.
    pub fn new(
        client: &Client,
        namespace: Option<&str>,
    ) -> (Self, impl Future<Output = ()> + Send + use<>) {
        let secret_events = watcher(
            typed_api::<PartialObjectMeta<Secret>>(client, namespace),
            watcher::Config::default(),
        );
        let (secrets, secret_watch) = Watched::new("Secret", (), secret_events);
        let config_map_events = watcher(
            typed_api::<ConfigMap>(client, namespace),
            watcher::Config::default(),
        );
        let (config_maps, config_map_watch) = Watched::new("ConfigMap", (), config_map_events);
        let stores = Self {
            secrets,
            config_maps,
        };
        let watches = future::join(secret_watch, config_map_watch).map(drop);
        (stores, watches)
    }

    /// Waits until every store holds its first listing.
    pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
        self.secrets.store.wait_until_ready().await?;
        self.config_maps.store.wait_until_ready().await
    }

    pub fn secret_exists(&self, namespace: &str, name: &str) -> bool {
        self.secrets.get(namespace, name).is_some()
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Arc<ConfigMap>> {
        self.config_maps.get(namespace, name)
    }
}

/// One watch and the store it fills.
struct Watched<K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + Hash,
{
    store: Store<K>,
    dyntype: K::DynamicType,
}

impl<K> Watched<K>
where
    K: Resource + Clone + Debug + Send + Sync + 'static,
    K::DynamicType: Clone + Eq + Hash + Send + Sync,
{
    /// A store, and the watch filling it from `events` (for as long as it runs).
    fn new(
        kind: &'static str,
        dyntype: K::DynamicType,
        events: impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static,
    ) -> (Self, BoxFuture<'static, ()>) {
        let writer = Writer::new(dyntype.clone());
        let store = writer.as_reader();
        // Nothing here reads managed fields.
        let events = events
            .modify(|object| object.managed_fields_mut().clear())
            .default_backoff();
        let watch = reflector::reflector(writer, events).for_each(move |event| {
            if let Err(error) = event {
                tracing::warn!(%kind, %error, "watch failed; retrying");
            }
            future::ready(())
        });
        (Self { store, dyntype }, watch.boxed())
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = ObjectRef::new_with(name, self.dyntype.clone()).within(namespace);
        self.store.get(&key)
    }
}
