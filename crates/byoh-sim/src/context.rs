//! What every simulated controller shares.

use kube::Client;
use kube::api::{Api, DynamicObject};
use lcm_core::capi::Kind;

use crate::agent::Registry;
use crate::config::SimConfig;

pub(crate) struct Context {
    pub client: Client,
    pub config: SimConfig,
    /// The hosts whose agents run in this simulator.
    pub registry: Registry,
}

impl Context {
    pub fn new(client: Client, config: SimConfig) -> Self {
        Self {
            client,
            config,
            registry: Registry::default(),
        }
    }

    /// The objects of `kind` in `namespace`.
    pub fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource())
    }

    /// The objects of `kind` in every namespace.
    pub fn api_all(&self, kind: Kind) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &kind.api_resource())
    }

    /// The objects of `kind` this simulator reconciles: in its namespace, or in all.
    pub fn api_scoped(&self, kind: Kind) -> Api<DynamicObject> {
        match &self.config.namespace {
            Some(namespace) => self.api(kind, namespace),
            None => self.api_all(kind),
        }
    }
}
