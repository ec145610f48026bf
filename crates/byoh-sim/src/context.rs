//! What every simulated controller shares.

use kube::api::{Api, DynamicObject};
use kube::core::NamespaceResourceScope;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource};
use lcm_core::capi::Kind;

use crate::agent::Registry;
use crate::config::SimConfig;
use crate::stores::Stores;

pub(crate) struct Context {
    pub client: Client,
    pub config: SimConfig,
    /// The hosts whose agents run in this simulator.
    pub registry: Registry,
    /// Events of the host agents.
    pub recorder: Recorder,
    /// BYOH's ByoMachine controller runs one worker: one host claim at a time.
    pub claiming: tokio::sync::Mutex<()>,
    /// What the controllers read: every object they look at, watched once for all of them.
    pub stores: Stores,
}

impl Context {
    pub fn new(client: Client, config: SimConfig, stores: Stores) -> Self {
        let reporter = Reporter {
            controller: "byoh-hostagent".into(),
            instance: None,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            claiming: tokio::sync::Mutex::new(()),
            client,
            config,
            registry: Registry::default(),
            stores,
        }
    }

    /// The objects of `kind` in `namespace`.
    pub fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        dynamic_api(&self.client, kind, Some(namespace))
    }

    /// The objects of `kind` this simulator reconciles: in its namespace, or in all.
    pub fn api_scoped(&self, kind: Kind) -> Api<DynamicObject> {
        dynamic_api(&self.client, kind, self.config.namespace.as_deref())
    }
}

/// The objects of `kind` in `namespace`, or in every namespace.
pub fn dynamic_api(client: &Client, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = kind.api_resource();
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
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
