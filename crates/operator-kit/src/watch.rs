//! The watch an operator's controller runs on its own kind.

use kube::runtime::controller::Controller;
use kube::runtime::reflector;
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use kube::{Api, Resource, ResourceExt};

/// A controller of `api`'s objects woken by what the operator must act on: a change of spec
/// (generation, which deletion also bumps), labels, annotations or finalizers. Status changes,
/// which only the operator writes, do not wake it: its own status write costs no reconcile.
/// Managed fields are dropped from the cache.
pub fn controller<K>(api: Api<K>) -> Controller<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + std::fmt::Debug + Unpin + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let triggers = unmanaged(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::labels)
                .combine(predicates::annotations)
                .combine(predicates::finalizers),
            Default::default(),
        );
    Controller::for_stream(triggers, reader).trigger_backoff(EachWatchBacksOff)
}

/// The back-off of a controller's merged triggers: none, since each watch feeding it backs off
/// on its own. kube-runtime's default backs off the merged stream, so one watch's error pauses
/// every other watch; after an API-server restart each watch errs once or twice and the pauses
/// add up to minutes in which no change is seen.
struct EachWatchBacksOff;

impl Iterator for EachWatchBacksOff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for EachWatchBacksOff {
    fn reset(&mut self) {}
}

/// A watch of `api`'s objects (those `config` selects) that only wakes a controller: each
/// changed object, and each watch error (the stream retries with back-off of its own).
pub fn triggers<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, config).default_backoff().touched_objects()
}

/// A watch of `api`'s objects (those `config` selects) into a new store, for reading instead
/// of listing; the stream yields each changed object (and each watch error: the stream retries
/// with back-off). Only what is read is kept: managed fields are dropped.
pub fn store<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    reflector::Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, unmanaged(api, config))
        .default_backoff()
        .touched_objects();
    (reader, stream)
}

/// [`store`] for a kind without a Rust type (Cluster API's, BYOH's), across namespaces.
pub fn dynamic_store(
    client: &kube::Client,
    resource: &kube::api::ApiResource,
    config: watcher::Config,
) -> (
    reflector::Store<kube::api::DynamicObject>,
    impl futures::Stream<Item = Result<kube::api::DynamicObject, watcher::Error>> + Send + use<>,
) {
    let writer = reflector::store::Writer::new(resource.clone());
    let store = writer.as_reader();
    let api = Api::<kube::api::DynamicObject>::all_with(client.clone(), resource);
    let stream = reflector::reflector(writer, unmanaged(api, config))
        .default_backoff()
        .touched_objects();
    (store, stream)
}

/// The watch events of `api`'s objects (those `config` selects), their managed fields dropped:
/// a store keeps only what is read.
pub fn unmanaged<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + use<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, config).modify(|object| object.managed_fields_mut().clear())
}

/// Resolves to `true` once `store` holds its first complete listing (`false`: its writer is gone).
pub fn listed<K>(store: &reflector::Store<K>) -> futures::future::BoxFuture<'static, bool>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let store = store.clone();
    Box::pin(async move { store.wait_until_ready().await.is_ok() })
}

/// Whether every store of a set has listed (see [`readiness`]).
#[derive(Clone)]
pub struct Listed(tokio::sync::watch::Receiver<bool>);

impl Listed {
    /// Resolves once every store has listed (or at once when the operator is stopping).
    pub async fn wait(&self) {
        let _ = self.0.clone().wait_for(|listed| *listed).await;
    }

    /// Whether every store has listed by now.
    pub fn now(&self) -> bool {
        *self.0.borrow()
    }
}

/// Says once every one of `stores` (see [`listed`]) has listed. Reconcile must not read an
/// empty store before (it would take a running cluster for a new one); many reconciles wait at
/// once, so they wait on a channel, as a store's own readiness wakes only one waiter.
pub fn readiness(stores: Vec<futures::future::BoxFuture<'static, bool>>) -> Listed {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        for listed in stores {
            if !listed.await {
                return;
            }
        }
        let _ = sender.send(true);
    });
    Listed(receiver)
}
