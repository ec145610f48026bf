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
    let triggers = watcher(api, watcher::Config::default())
        .modify(|object| object.managed_fields_mut().clear())
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
    Controller::for_stream(triggers, reader)
}
