//! Sends each subscription what changed since it was last told, level-based: the fingerprints
//! of what it was told (kept in its status) against what exists now. A restart loses nothing:
//! what changed meanwhile is told once the server is back (several changes of one object as one
//! modification, with its latest state). One replica sends, the holder of a Lease, which also
//! raises and clears the alarms. A failed delivery is retried with back-off; a subscription's
//! changes go out in order, one at a time. Inventory and provisioning subscribers get change
//! notifications; alarm subscribers an `AlarmEventNotification` per new, changed, cleared or
//! acknowledged alarm (an alarm deleted past its retention is not news).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use lcm_core::crd::{O2imsSubscription, SubscribedApi};
use lcm_core::rest::alarms::{self, EventType};
use lcm_core::rest::notifications::{self, Change, Event, fingerprint};
use lcm_core::rest::selection::Selection;

use crate::shared::Shared;
use crate::stores;
use crate::{callback, inventory, provisioning};

const FIELD_MANAGER: &str = "o2ims-api";
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(300);

/// Sends notifications while holding the Lease; runs until the process ends.
pub async fn run(shared: Shared, identity: String) {
    let namespace = shared.config.runtime.pod_namespace.clone();
    loop {
        let mut leadership = match operator_kit::leader::acquire(
            shared.client.clone(),
            &namespace,
            &shared.config.notifier_lease,
            &identity,
        )
        .await
        {
            Ok(leadership) => leadership,
            Err(error) => {
                tracing::warn!(%error, "cannot take the notifier Lease; retrying");
                tokio::time::sleep(FIRST_RETRY * 5).await;
                continue;
            }
        };
        tracing::info!("sending notifications and raising alarms (holding the notifier Lease)");
        tokio::select! {
            () = notify(&shared) => {}
            () = crate::alarms::raise(&shared) => {}
            () = leadership.lost() => tracing::warn!("lost the notifier Lease; another replica sends"),
        }
    }
}

/// What the notifier keeps between passes: every state it saw, by fingerprint, so a
/// modification carries the state a subscriber was told before as `priorObjectState` (states
/// seen before this process started are not known), and when each failing subscription is
/// tried again.
#[derive(Default)]
struct Memory {
    states: HashMap<String, Value>,
    retry: HashMap<String, (Instant, Duration)>,
    /// What each subscription was told, as last written, with the resourceVersion written,
    /// until the store shows that version: a pass reading the store's older copy must not
    /// tell the same changes again.
    written: HashMap<String, (String, BTreeMap<String, String>)>,
}

impl Memory {
    /// Remembers the states that exist now.
    fn saw(&mut self, current: &BTreeMap<String, Value>, seen: &mut HashSet<String>) {
        for state in current.values() {
            let print = fingerprint(state);
            seen.insert(print.clone());
            self.states.entry(print).or_insert_with(|| state.clone());
        }
    }

    /// Forgets the states no subscription was told and that no longer exist.
    fn prune(&mut self, subscriptions: &[Arc<O2imsSubscription>], seen: &HashSet<String>) {
        let told: HashSet<&String> = subscriptions
            .iter()
            .filter_map(|s| s.status.as_ref())
            .flat_map(|s| s.delivered.values())
            .chain(seen)
            .collect();
        self.states
            .retain(|fingerprint, _| told.contains(fingerprint));
        let exists = |name: &String| subscriptions.iter().any(|s| s.name_any() == *name);
        self.retry.retain(|name, _| exists(name));
        let caught_up = |name: &String, version: &String| {
            subscriptions
                .iter()
                .any(|s| s.name_any() == *name && s.resource_version().as_ref() == Some(version))
        };
        self.written
            .retain(|name, (version, _)| exists(name) && !caught_up(name, version));
    }
}

async fn notify(shared: &Shared) {
    shared.stores.listed.wait().await;
    let http = callback::client();
    let mut memory = Memory::default();
    let mut changes = shared.stores.changed.subscribe();
    loop {
        changes.borrow_and_update();
        let now = Instant::now();
        let subscriptions = shared.stores.subscriptions.state();
        let mut seen = HashSet::new();
        for subscription in subscriptions.iter() {
            let name = subscription.name_any();
            if memory.retry.get(&name).is_some_and(|(at, _)| *at > now) {
                continue;
            }
            match deliver(shared, &http, subscription, &mut memory, &mut seen).await {
                Ok(()) => {
                    memory.retry.remove(&name);
                }
                Err(failure) => {
                    let wait = memory
                        .retry
                        .get(&name)
                        .map_or(FIRST_RETRY, |(_, w)| (*w * 2).min(LAST_RETRY));
                    tracing::warn!(subscription = %name, %failure, retry_in = ?wait, "notification not delivered");
                    memory.retry.insert(name, (Instant::now() + wait, wait));
                }
            }
        }
        memory.prune(&subscriptions, &seen);
        let next_retry = memory.retry.values().map(|(at, _)| *at).min();
        let sleep = next_retry.map_or(LAST_RETRY, |at| {
            at.saturating_duration_since(Instant::now())
        });
        stores::next_pass(&mut changes, now, sleep).await;
    }
}

/// Tells one subscription what it was not told yet, then records what it was told.
async fn deliver(
    shared: &Shared,
    http: &reqwest::Client,
    subscription: &O2imsSubscription,
    memory: &mut Memory,
    seen: &mut HashSet<String>,
) -> Result<(), String> {
    let name = subscription.name_any();
    // Not yet subscribed: the API records what exists when it answers the POST.
    let Some(status) = &subscription.status else {
        return Ok(());
    };
    let current = current(shared, subscription)?;
    let mut told = match memory.written.get(&name) {
        Some((_, written)) => written.clone(),
        None => status.delivered.clone(),
    };
    let changes = notifications::changes(&told, &current);
    memory.saw(&current, seen);
    if changes.is_empty() {
        return Ok(());
    }
    let mut failure = None;
    for change in &changes {
        let prior = told
            .get(&change.object_ref)
            .and_then(|f| memory.states.get(f));
        let sent = match body(shared, subscription, change, prior) {
            Some(body) => post(http, subscription, &body).await,
            None => Ok(()),
        };
        match sent {
            Ok(()) => record(&mut told, change),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let version = write_status(shared, &name, &told, failure.as_deref()).await?;
    memory.written.insert(name, (version, told));
    failure.map_or(Ok(()), Err)
}

/// The objects `subscription` is told about, as they are now, by URL path.
pub fn current(
    shared: &Shared,
    subscription: &O2imsSubscription,
) -> Result<BTreeMap<String, Value>, String> {
    let spec = &subscription.spec;
    if spec.api == SubscribedApi::Alarms {
        // An alarm subscription's filter is an event type, applied when it is told.
        return Ok(crate::alarms::objects(shared));
    }
    let filter = spec
        .filter
        .as_deref()
        .map(|f| Selection::parse([("filter", f)]))
        .transpose()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    Ok(match spec.api {
        SubscribedApi::Provisioning => provisioning::objects(shared),
        _ => inventory::objects(shared),
    }
    .into_iter()
    .filter(|(_, object)| filter.matches(object))
    .collect())
}

/// What to POST for `change`, if anything: a change notification, or for alarms the event's
/// notification unless the subscription filters that event type out.
fn body(
    shared: &Shared,
    subscription: &O2imsSubscription,
    change: &Change,
    prior: Option<&Value>,
) -> Option<Value> {
    let consumer = subscription.spec.consumer_subscription_id.as_deref();
    if subscription.spec.api != SubscribedApi::Alarms {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        return Some(notifications::body(&id, consumer, change, prior));
    }
    let record = change.post.as_ref()?;
    let event = alarms::event_type(record, prior, change.event != Event::Create);
    let excluded = subscription
        .spec
        .filter
        .as_deref()
        .and_then(EventType::parse);
    (excluded != Some(event)).then(|| alarms::notification(&shared.cloud, consumer, event, record))
}

fn record(told: &mut BTreeMap<String, String>, change: &Change) {
    match &change.post {
        Some(state) => told.insert(change.object_ref.clone(), fingerprint(state)),
        None => told.remove(&change.object_ref),
    };
}

async fn post(
    http: &reqwest::Client,
    subscription: &O2imsSubscription,
    body: &Value,
) -> Result<(), String> {
    let callback = &subscription.spec.callback;
    match http.post(callback).json(body).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("POST {callback} answered {}", response.status())),
        Err(e) => Err(format!("POST {callback} failed: {e}")),
    }
}

/// Records what was told (server-side apply: keys no longer told are dropped); returns the
/// subscription's new resourceVersion.
pub async fn write_status(
    shared: &Shared,
    name: &str,
    told: &BTreeMap<String, String>,
    failure: Option<&str>,
) -> Result<String, String> {
    let api: Api<O2imsSubscription> =
        Api::namespaced(shared.client.clone(), &shared.config.runtime.pod_namespace);
    let mut status = json!({
        "apiVersion": "o2ims.provisioning.oran.org/v1alpha1",
        "kind": "O2imsSubscription",
        "status": {"delivered": told},
    });
    if let Some(failure) = failure {
        status["status"]["lastFailure"] = json!(failure);
    }
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&status),
    )
    .await
    .map(|written| written.resource_version().unwrap_or_default())
    .map_err(|e| format!("recording what subscription {name} was told: {e}"))
}
