//! What the operator knows of an O-Cloud: its ProvisioningRequests and its host ledger, each in
//! a reflector store fed by one watch. Reconcile reads the stores, so a pass over an unchanged
//! world lists nothing; every change of a ProvisioningRequest reconciles its owner.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use lcm_core::crd::{FocomProvisioningRequest, HostClaim, ProvisioningRequest};

/// How long a reconcile waits for a new O-Cloud's first listing before reporting it unreachable.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The watched objects of one O-Cloud; dropping it stops its watches.
pub struct OCloudCache {
    client: Client,
    pub requests: Store<ProvisioningRequest>,
    pub claims: Store<HostClaim>,
    /// `true` once both stores hold their first complete listing.
    synced: operator_kit::watch::Listed,
    /// The last watch error, cleared by the next event that arrives.
    last_error: watch::Receiver<Option<String>>,
    /// Requests waiting for other requests to use or give up hosts: every change of a
    /// ProvisioningRequest or of the ledger reconciles them.
    waiting: Waiting,
    tasks: Vec<JoinHandle<()>>,
}

type Waiting = Arc<Mutex<HashSet<ObjectRef<FocomProvisioningRequest>>>>;

impl Drop for OCloudCache {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl OCloudCache {
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts the watches of `client`'s O-Cloud; their changes reconcile the owners through
    /// `triggers`.
    pub fn watch(
        client: Client,
        triggers: UnboundedSender<ObjectRef<FocomProvisioningRequest>>,
    ) -> Self {
        let (errors, last_error) = watch::channel(None);
        let (requests, request_events) = operator_kit::watch::store(
            Api::<ProvisioningRequest>::all(client.clone()),
            watcher::Config::default(),
        );
        let (claims, claim_events) = operator_kit::watch::store(
            Api::<HostClaim>::all(client.clone()),
            watcher::Config::default(),
        );
        let synced = operator_kit::watch::readiness(vec![
            operator_kit::watch::listed(&requests),
            operator_kit::watch::listed(&claims),
        ]);
        let waiting = Waiting::default();
        let wake_waiting = {
            let (waiting, triggers) = (waiting.clone(), triggers.clone());
            move || {
                let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
                for request in waiting.iter() {
                    let _ = triggers.unbounded_send(request.clone());
                }
            }
        };
        let wake_waiting_too = wake_waiting.clone();
        let tasks = vec![
            tokio::spawn(drive(request_events, errors.clone(), move |request| {
                if let Some(owner) = crate::ocloud::owner_of(request) {
                    let _ = triggers.unbounded_send(owner);
                }
                wake_waiting();
            })),
            tokio::spawn(drive(claim_events, errors, move |_| wake_waiting_too())),
        ];
        Self {
            client,
            requests,
            claims,
            synced,
            last_error,
            waiting,
            tasks,
        }
    }

    /// Records whether `request` waits for hosts other requests may still give up.
    pub fn set_waiting(&self, request: ObjectRef<FocomProvisioningRequest>, waits: bool) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waits {
            waiting.insert(request);
        } else {
            waiting.remove(&request);
        }
    }

    /// Whether the stores can be trusted now: `Err` says why the O-Cloud counts as unreachable.
    /// A cache that has not listed yet is waited for (until it has, its watch fails, or
    /// [`SYNC_TIMEOUT`]); one whose watch failed since is checked with a one-item listing, as a
    /// watch that reconnects says nothing until the next change.
    pub async fn usable(&self) -> Result<(), String> {
        let mut failed = self.last_error.clone();
        let _ = tokio::time::timeout(SYNC_TIMEOUT, async {
            tokio::select! {
                () = self.synced.wait() => {}
                _ = failed.wait_for(Option::is_some) => {}
            }
        })
        .await;
        let last_error = self.last_error.borrow().clone();
        if !self.synced.now() {
            return Err(last_error.unwrap_or_else(|| {
                format!(
                    "its ProvisioningRequests and HostClaims are not listed after {}s",
                    SYNC_TIMEOUT.as_secs()
                )
            }));
        }
        if last_error.is_none() {
            return Ok(());
        }
        Api::<ProvisioningRequest>::all(self.client.clone())
            .list(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Keeps a store's watch running, recording its health and handing each changed object on.
async fn drive<K: Resource>(
    events: impl Stream<Item = Result<K, watcher::Error>>,
    errors: watch::Sender<Option<String>>,
    on_change: impl Fn(&K),
) {
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(object) => {
                errors.send_if_modified(|e| e.take().is_some());
                on_change(&object);
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching an O-Cloud");
                errors.send_replace(Some(e.to_string()));
            }
        }
    }
}
