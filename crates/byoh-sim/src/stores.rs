//! What the simulated controllers know of the world, as Cluster API's and BYOH's controllers know
//! it from their informer caches: one watch per kind, filling a store every controller reads and
//! triggering every controller that reacts to the kind. A read costs no request and may be stale,
//! as theirs may; every write decided on a read is either guarded by the resourceVersion read (a
//! stale copy costs a conflict and a retry) or an apply of what changed. A change triggers the
//! controllers only once the store holds it, so a reconcile sees at least what triggered it.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc::{self, UnboundedSender};
use futures::future::{self, BoxFuture};
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::core::{Expression, Selector, SelectorExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use lcm_core::capi::Kind;
use serde_json::Value;

use crate::context::{dynamic_api, typed_api};
use crate::error::{Error, Result};
use crate::objects::to_json;

/// The Cluster API and BYOH kinds the simulated controllers read or react to.
const WATCHED: [Kind; 11] = [
    Kind::Cluster,
    Kind::ClusterResourceSet,
    Kind::KubeadmControlPlane,
    Kind::KubeadmConfigTemplate,
    Kind::KubeadmConfig,
    Kind::MachineDeployment,
    Kind::Machine,
    Kind::ByoCluster,
    Kind::ByoMachineTemplate,
    Kind::ByoMachine,
    Kind::ByoHost,
];

/// How long a controller waits for its own write to reach its store, and how often it looks.
const OWN_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const OWN_WRITE_POLL: Duration = Duration::from_millis(10);

/// The stores, each filled by its watch.
pub struct Stores {
    watched: Vec<(Kind, Watched<DynamicObject>)>,
    /// Only whether a Secret exists is read: no Secret's data is cached.
    secrets: Watched<PartialObjectMeta<Secret>>,
    config_maps: Watched<ConfigMap>,
}

impl Stores {
    /// The stores of the objects in `namespace` (`None`: in every namespace; ByoHosts always in
    /// every namespace, as a machine claims a host in any), and the watches filling them. Run
    /// the watches once every controller subscribed, so that each sees the first listing.
    pub fn new(
        client: &Client,
        namespace: Option<&str>,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (watched, mut watches): (Vec<_>, Vec<_>) = WATCHED
            .into_iter()
            .map(|kind| {
                let scope = if kind == Kind::ByoHost {
                    None
                } else {
                    namespace
                };
                let events = watcher(dynamic_api(client, kind, scope), watcher::Config::default());
                let (watched, watch) = Watched::new(kind.name(), kind.api_resource(), events);
                ((kind, watched), watch)
            })
            .collect();
        let secrets = typed_api::<PartialObjectMeta<Secret>>(client, namespace);
        let secret_events = watcher(secrets, watcher::Config::default());
        let (secrets, secret_watch) = Watched::new("Secret", (), secret_events);
        let config_map_events = watcher(
            typed_api::<ConfigMap>(client, namespace),
            watcher::Config::default(),
        );
        let (config_maps, config_map_watch) = Watched::new("ConfigMap", (), config_map_events);
        watches.extend([secret_watch, config_map_watch]);
        let stores = Self {
            watched,
            secrets,
            config_maps,
        };
        (stores, future::join_all(watches).map(drop))
    }

    fn watched(&self, kind: Kind) -> &Watched<DynamicObject> {
        self.watched
            .iter()
            .find(|(watched, _)| *watched == kind)
            .map(|(_, watched)| watched)
            .unwrap_or_else(|| panic!("byoh-sim does not watch {kind:?}"))
    }

    /// Waits until every store holds its first listing.
    pub async fn wait_until_ready(&self) -> std::result::Result<(), WriterDropped> {
        // Each store once, and only here: a store reliably wakes only one of several concurrent
        // waiters. (The controllers' own waits come later and return at once.)
        for (_, watched) in &self.watched {
            watched.store.wait_until_ready().await?;
        }
        self.secrets.store.wait_until_ready().await?;
        self.config_maps.store.wait_until_ready().await
    }

    /// A controller of `kind`, reconciling the objects its store holds.
    pub fn controller(&self, kind: Kind) -> Controller<DynamicObject> {
        let watched = self.watched(kind);
        Controller::for_stream_with(
            watched.changes(),
            watched.store.clone(),
            kind.api_resource(),
        )
    }

    /// The objects of `kind` that change (applied or deleted), to trigger a controller.
    pub fn changes(
        &self,
        kind: Kind,
    ) -> impl Stream<Item = watcher::Result<DynamicObject>> + Send + 'static {
        self.watched(kind).changes()
    }

    /// The ConfigMaps that change, to trigger a controller.
    pub fn config_map_changes(
        &self,
    ) -> impl Stream<Item = watcher::Result<ConfigMap>> + Send + 'static {
        self.config_maps.changes()
    }

    /// The object of `kind` named `name` in `namespace`.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.watched(kind)
            .get(namespace, name)
            .map(|object| to_json(&object))
    }

    /// The objects of `kind` in `namespace` (`None`: in any) whose labels `selector` selects,
    /// in the order the API server lists them (by namespace and name).
    pub fn list(&self, kind: Kind, namespace: Option<&str>, selector: &Selector) -> Vec<Value> {
        let mut objects = self.watched(kind).store.state_filter(|object| {
            namespace.is_none_or(|ns| object.metadata.namespace.as_deref() == Some(ns))
                && selector.matches(object.labels())
        });
        objects.sort_by(|a, b| {
            let by_namespace = a.metadata.namespace.cmp(&b.metadata.namespace);
            by_namespace.then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        objects.iter().map(|object| to_json(object)).collect()
    }

    /// Waits until the store of `kind` shows this simulator's own write to the object `name` in
    /// `namespace` (`shows` it; `None`: not there), as Cluster API's MachineSet controller waits
    /// for its cache after creating or deleting machines: the next reconcile may be triggered
    /// through another watch, and must not act on a world without this write (a second machine
    /// for one replica, a second host for one machine).
    pub async fn wait_for_own_write(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        shows: impl Fn(Option<&DynamicObject>) -> bool,
    ) -> Result<()> {
        let watched = self.watched(kind);
        let shown = async {
            while !shows(watched.get(namespace, name).as_deref()) {
                tokio::time::sleep(OWN_WRITE_POLL).await;
            }
        };
        tokio::time::timeout(OWN_WRITE_TIMEOUT, shown)
            .await
            .map_err(|_| {
                Error::Stale(format!(
                    "{} {namespace}/{name} did not show this simulator's write within {OWN_WRITE_TIMEOUT:?}",
                    kind.name()
                ))
            })
    }

    pub fn secret_exists(&self, namespace: &str, name: &str) -> bool {
        self.secrets.get(namespace, name).is_some()
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<Arc<ConfigMap>> {
        self.config_maps.get(namespace, name)
    }
}

/// Selects the objects labelled `key=value`.
pub fn labelled(key: &str, value: &str) -> Selector {
    Expression::Equal(key.into(), value.into()).into()
}

/// One watch: the store it fills and the controllers its changes trigger.
struct Watched<K>
where
    K: Resource + 'static,
    K::DynamicType: Eq + Hash,
{
    store: Store<K>,
    dyntype: K::DynamicType,
    subscribers: Arc<Subscribers<K>>,
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
        let subscribers = Arc::new(Subscribers::default());
        let watched = Self {
            store: store.clone(),
            dyntype,
            subscribers: subscribers.clone(),
        };
        // Nothing here reads managed fields.
        let events = events
            .modify(|object| object.managed_fields_mut().clear())
            .default_backoff();
        let watch = reflector::reflector(writer, events).for_each(move |event| {
            match event {
                Ok(Event::Apply(object) | Event::Delete(object)) => subscribers.notify(&object),
                // A (re)listing reaches the store all at once, now.
                Ok(Event::InitDone) => store
                    .state()
                    .iter()
                    .for_each(|object| subscribers.notify(object)),
                Ok(Event::Init | Event::InitApply(_)) => {}
                Err(error) => tracing::warn!(%kind, %error, "watch failed; retrying"),
            }
            future::ready(())
        });
        (watched, watch.boxed())
    }

    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let key = ObjectRef::new_with(name, self.dyntype.clone()).within(namespace);
        self.store.get(&key)
    }

    /// Subscribes to the objects that change, from the next event the watch yields on.
    fn changes(&self) -> impl Stream<Item = watcher::Result<K>> + Send + 'static {
        self.subscribers.add().map(Ok)
    }
}

/// The controllers a watch triggers, each through a channel of its own.
struct Subscribers<K>(Mutex<Vec<UnboundedSender<K>>>);

impl<K> Default for Subscribers<K> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<K: Clone> Subscribers<K> {
    fn add(&self) -> mpsc::UnboundedReceiver<K> {
        let (sender, receiver) = mpsc::unbounded();
        self.senders().push(sender);
        receiver
    }

    /// Tells every subscriber still listening that `object` changed.
    fn notify(&self, object: &K) {
        self.senders()
            .retain(|sender| sender.unbounded_send(object.clone()).is_ok());
    }

    fn senders(&self) -> std::sync::MutexGuard<'_, Vec<UnboundedSender<K>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
