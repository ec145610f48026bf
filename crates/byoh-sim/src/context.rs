//! What the agents and the simulated Job controller share.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::future::BoxFuture;
use kube::Client;

use crate::config::SimConfig;
use crate::stores::Stores;
use crate::workload::ControlApi;

pub(crate) struct Context {
    /// The administrator: host-preparation Jobs (as the Job controller) and the hosts'
    /// namespace (as mgmt.sh).
    pub client: Client,
    /// The administrator's configuration, which impersonates each agent's identity.
    pub admin_config: kube::Config,
    pub config: SimConfig,
    pub agents: Agents,
    /// The workload clusters, as kubeadm on the hosts reaches them.
    pub clusters: ControlApi,
    /// What the Job controller and kubelet read: the Secrets and ConfigMaps Jobs mount.
    pub stores: Stores,
}

/// The agents running in this simulator, started as hosts register.
pub struct Agents {
    /// By ByoHost namespace and name.
    started: Mutex<BTreeSet<(String, String)>>,
    pub spawn: UnboundedSender<BoxFuture<'static, ()>>,
}

impl Agents {
    /// No agent yet, and where agents run: the receiver's futures, driven by the simulator.
    pub fn new() -> (Self, UnboundedReceiver<BoxFuture<'static, ()>>) {
        let (spawn, running) = mpsc::unbounded();
        let agents = Self {
            started: Mutex::default(),
            spawn,
        };
        (agents, running)
    }

    /// Marks the agent of `hostname` in `namespace` as started; false when it was.
    pub fn start(&self, namespace: &str, hostname: &str) -> bool {
        self.lock().insert((namespace.into(), hostname.into()))
    }

    pub fn forget(&self, namespace: &str, hostname: &str) {
        self.lock().remove(&(namespace.into(), hostname.into()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String)>> {
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
