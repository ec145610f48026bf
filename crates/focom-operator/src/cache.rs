//! What the operator knows of an O-Cloud: its ProvisioningRequests and its host ledger, each in
//! a reflector store fed by one watch (or, for an O-Cloud reached over REST, by a listing every
//! poll interval). Reconcile reads the stores, so a pass over an unchanged world lists nothing;
//! every change of a ProvisioningRequest reconciles its owner.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use futures::{Stream, StreamExt};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use lcm_core::crd::{FocomProvisioningRequest, HostClaim, ProvisioningRequest};

use crate::o2ims::O2ims;
use crate::rest::RestClient;

/// How long a reconcile waits for a new O-Cloud's first listing before reporting it unreachable.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The watched objects of one O-Cloud; dropping it stops its watches.
pub struct OCloudCache {
    o2ims: O2ims,
    pub requests: Store<ProvisioningRequest>,
    pub claims: Store<HostClaim>,
    /// `true` once both stores hold their first complete listing.
    synced: operator_kit::watch::Listed,
    /// The last watch error, cleared by the next event that arrives.
    last_error: watch::Receiver<Option<String>>,
    /// Requests waiting for other requests to use or give up hosts: every change of a
    /// ProvisioningRequest or of the ledger reconciles them.
    waiting: Waiting,
    /// Requests that reached this O-Cloud: a change of a ProvisioningRequest without an owner
    /// mark (one created over REST) reconciles the one its name derives from.
    users: Waiting,
    tasks: Vec<JoinHandle<()>>,
}

type Waiting = Arc<Mutex<HashSet<ObjectRef<FocomProvisioningRequest>>>>;
type Trigger = UnboundedSender<ObjectRef<FocomProvisioningRequest>>;

impl Drop for OCloudCache {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl OCloudCache {
    pub fn o2ims(&self) -> &O2ims {
        &self.o2ims
    }

    /// Starts the watches of `client`'s O-Cloud; their changes reconcile the owners through
    /// `triggers`.
    pub fn watch(client: Client, triggers: Trigger) -> Self {
        let (errors, last_error) = watch::channel(None);
        let (requests, request_events) = operator_kit::watch::store(
            Api::<ProvisioningRequest>::all(client.clone()),
            watcher::Config::default(),
        );
        let (claims, claim_events) = operator_kit::watch::store(
            Api::<HostClaim>::all(client.clone()),
            watcher::Config::default(),
        );
        let (waiting, users) = (Waiting::default(), Waiting::default());
        let on_request = {
            let (wake, users, triggers) =
                (wake(&waiting, &triggers), users.clone(), triggers.clone());
            move |request: &ProvisioningRequest| {
                reconcile_owner(request, &users, &triggers);
                wake();
            }
        };
        let on_claim = {
            let wake = wake(&waiting, &triggers);
            move |_: &HostClaim| wake()
        };
        let tasks = vec![
            tokio::spawn(drive(request_events, errors.clone(), on_request)),
            tokio::spawn(drive(claim_events, errors, on_claim)),
        ];
        Self::new(
            O2ims::Kube(client),
            requests,
            claims,
            last_error,
            waiting,
            users,
            tasks,
        )
    }

    /// Lists the requests and the host ledger of the O-Cloud behind `rest` every `interval`;
    /// what changed reconciles the owners through `triggers`.
    pub fn poll(rest: Arc<RestClient>, interval: Duration, triggers: Trigger) -> Self {
        let (errors, last_error) = watch::channel(None);
        let (mut request_writer, mut claim_writer) = (
            reflector::store::Writer::<ProvisioningRequest>::default(),
            reflector::store::Writer::<HostClaim>::default(),
        );
        let (requests, claims) = (request_writer.as_reader(), claim_writer.as_reader());
        let (waiting, users) = (Waiting::default(), Waiting::default());
        let (wake, owners, source) = (wake(&waiting, &triggers), users.clone(), rest.clone());
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let listed = match source.requests().await {
                    Ok(requests) => source.claims().await.map(|claims| (requests, claims)),
                    Err(e) => Err(e),
                };
                let (listed_requests, listed_claims) = match listed {
                    Ok(listed) => listed,
                    Err(e) => {
                        tracing::warn!(error = %e, "listing an O-Cloud over REST");
                        errors.send_replace(Some(e.to_string()));
                        continue;
                    }
                };
                let listed_requests: Vec<ProvisioningRequest> = listed_requests
                    .iter()
                    .map(lcm_core::rest::provisioning::request_of)
                    .collect();
                let changed = changed(&request_writer.as_reader(), &listed_requests);
                let claims_changed = !same_claims(&claim_writer.as_reader(), &listed_claims);
                replace(&mut request_writer, listed_requests);
                replace(&mut claim_writer, listed_claims);
                errors.send_if_modified(|e| e.take().is_some());
                for request in &changed {
                    reconcile_owner(request, &owners, &triggers);
                }
                if !changed.is_empty() || claims_changed {
                    wake();
                }
            }
        });
        Self::new(
            O2ims::Rest(rest),
            requests,
            claims,
            last_error,
            waiting,
            users,
            vec![task],
        )
    }

    fn new(
        o2ims: O2ims,
        requests: Store<ProvisioningRequest>,
        claims: Store<HostClaim>,
        last_error: watch::Receiver<Option<String>>,
        waiting: Waiting,
        users: Waiting,
        tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        let synced = operator_kit::watch::readiness(vec![
            operator_kit::watch::listed(&requests),
            operator_kit::watch::listed(&claims),
        ]);
        Self {
            o2ims,
            requests,
            claims,
            synced,
            last_error,
            waiting,
            users,
            tasks,
        }
    }

    /// Records whether `request` uses this O-Cloud.
    pub fn set_user(&self, request: ObjectRef<FocomProvisioningRequest>, uses: bool) {
        set(&self.users, request, uses);
    }

    /// Records whether `request` waits for hosts other requests may still give up.
    pub fn set_waiting(&self, request: ObjectRef<FocomProvisioningRequest>, waits: bool) {
        set(&self.waiting, request, waits);
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
        match (last_error, &self.o2ims) {
            (None, _) => Ok(()),
            // Polled: the last listing failed, the next one says whether it is back.
            (Some(e), O2ims::Rest(_)) => Err(e),
            (Some(_), O2ims::Kube(client)) => Api::<ProvisioningRequest>::all(client.clone())
                .list(&ListParams::default().limit(1))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

fn set(requests: &Waiting, request: ObjectRef<FocomProvisioningRequest>, member: bool) {
    let mut requests = requests.lock().unwrap_or_else(PoisonError::into_inner);
    if member {
        requests.insert(request);
    } else {
        requests.remove(&request);
    }
}

/// Reconciles every waiting request.
fn wake(waiting: &Waiting, triggers: &Trigger) -> impl Fn() + Send + Clone + 'static {
    let (waiting, triggers) = (waiting.clone(), triggers.clone());
    move || {
        let waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for request in waiting.iter() {
            let _ = triggers.unbounded_send(request.clone());
        }
    }
}

/// Reconciles the FocomProvisioningRequest `request` belongs to: its owner mark, or, without
/// one, the user its name derives from.
fn reconcile_owner(request: &ProvisioningRequest, users: &Waiting, triggers: &Trigger) {
    if let Some(owner) = owner_of(request) {
        let _ = triggers.unbounded_send(owner);
        return;
    }
    let users = users.lock().unwrap_or_else(PoisonError::into_inner);
    for user in users.iter() {
        let namespace = user.namespace.as_deref().unwrap_or_default();
        if lcm_core::focom::is_owned_by(request, namespace, &user.name) {
            let _ = triggers.unbounded_send(user.clone());
        }
    }
}

/// The requests of a new listing that differ from the store's, and those it no longer has.
fn changed(
    store: &Store<ProvisioningRequest>,
    listed: &[ProvisioningRequest],
) -> Vec<ProvisioningRequest> {
    let mut changed: Vec<ProvisioningRequest> = listed
        .iter()
        .filter(|r| {
            store.get(&ObjectRef::from_obj(*r)).is_none_or(|old| {
                (&old.metadata, &old.spec, &old.status) != (&r.metadata, &r.spec, &r.status)
            })
        })
        .cloned()
        .collect();
    changed.extend(
        store
            .state()
            .iter()
            .filter(|old| !listed.iter().any(|r| r.name_any() == old.name_any()))
            .map(|old| old.as_ref().clone()),
    );
    changed
}

/// Whether a new listing of the host ledger is the store's.
fn same_claims(store: &Store<HostClaim>, listed: &[HostClaim]) -> bool {
    store.state().len() == listed.len()
        && listed.iter().all(|c| {
            store
                .get(&ObjectRef::from_obj(c))
                .is_some_and(|old| old.spec == c.spec)
        })
}

/// Replaces a store's content by a listing, as a watch's relisting does.
fn replace<K>(writer: &mut reflector::store::Writer<K>, listed: Vec<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in listed {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
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

/// Which FocomProvisioningRequest a ProvisioningRequest was created for.
pub fn owner_of(request: &ProvisioningRequest) -> Option<ObjectRef<FocomProvisioningRequest>> {
    let (namespace, name) = lcm_core::focom::owner_of(request)?;
    Some(ObjectRef::new(&name).within(&namespace))
}
