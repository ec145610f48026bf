//! Read-your-writes over watch caches. A write's answer comes from the API server before the
//! watch brings the written object to the cache, so a read right after it could miss it: a
//! writer that answers a client waits until its cache holds the write, and a reconcile that
//! follows its own status write decides from what it wrote ([`StatusWrites`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::core::object::HasStatus;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

/// How long a write waits for its cache: a watch is normally milliseconds behind, so past this
/// something is wrong with it, and the writer goes on (its write is done) and says so.
pub const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// Counts the changes a set of caches has taken in, so that a reader can wait for one.
#[derive(Clone)]
pub struct Changes(Arc<watch::Sender<u64>>);

impl Default for Changes {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl Changes {
    /// Called once a cache holds a change.
    pub fn bump(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that sees every later change (none is lost between two awaits).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// Resolves once `holds()` is true, checked now and after each change, or after `within`;
    /// says whether it held.
    pub async fn until(&self, within: Duration, mut holds: impl FnMut() -> bool) -> bool {
        let mut changes = self.subscribe();
        let waiting = async {
            loop {
                // Marked seen before the check: a change racing it wakes the next await.
                changes.borrow_and_update();
                if holds() {
                    return true;
                }
                if changes.changed().await.is_err() {
                    return holds();
                }
            }
        };
        tokio::time::timeout(within, waiting).await.unwrap_or(false)
    }
}

/// Waits until `store` holds `written` (as the write answered it) or a later version of it.
pub async fn written<K>(changes: &Changes, store: &Store<K>, written: &K)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let key = ObjectRef::from_obj(written);
    let version = written.meta().resource_version.as_deref();
    let held = changes
        .until(VISIBLE_WITHIN, || {
            store.get(&key).is_some_and(|cached| {
                holds_write(cached.meta().resource_version.as_deref(), version)
            })
        })
        .await;
    if !held {
        tracing::warn!(object = %key, ?version, "the watch cache did not show this write in time");
    }
}

/// Waits until `store` no longer holds the object `key` names with `uid` (a new object of the
/// same name has another uid; without a uid, until it holds none).
pub async fn deleted<K>(changes: &Changes, store: &Store<K>, key: &ObjectRef<K>, uid: Option<&str>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let held = changes
        .until(VISIBLE_WITHIN, || {
            store
                .get(key)
                .is_none_or(|cached| uid.is_some() && cached.meta().uid.as_deref() != uid)
        })
        .await;
    if !held {
        tracing::warn!(object = %key, "the watch cache did not show this deletion in time");
    }
}

/// The statuses this process wrote that its cache may not hold yet, by object uid: a reconcile
/// woken before the watch brought its own last status write reads that status instead of the
/// older one cached, so it neither writes it again nor counts a transition (an Event, a stage
/// clock) twice. An entry goes once the cache holds the write, so only writes in flight are kept.
pub struct StatusWrites<K: HasStatus> {
    written: Mutex<HashMap<String, (String, K::Status)>>,
}

impl<K: HasStatus> Default for StatusWrites<K> {
    fn default() -> Self {
        Self {
            written: Mutex::default(),
        }
    }
}

impl<K> StatusWrites<K>
where
    K: HasStatus + Resource + Clone,
    K::Status: Clone,
{
    /// Records the object a status write answered with.
    pub fn record(&self, written: &K) {
        let (Some(uid), Some(version)) = (written.uid(), written.resource_version()) else {
            return;
        };
        let Some(status) = written.status().cloned() else {
            return;
        };
        self.lock().insert(uid, (version, status));
    }

    /// `cached`, with the status this process wrote last if the cache does not hold it yet.
    pub fn fresh<'a>(&self, cached: &'a K) -> Cow<'a, K> {
        let Some(uid) = cached.uid() else {
            return Cow::Borrowed(cached);
        };
        let mut written = self.lock();
        let Some((version, status)) = written.get(&uid) else {
            return Cow::Borrowed(cached);
        };
        if holds_write(cached.resource_version().as_deref(), Some(version)) {
            written.remove(&uid);
            return Cow::Borrowed(cached);
        }
        let mut fresh = cached.clone();
        *fresh.status_mut() = Some(status.clone());
        Cow::Owned(fresh)
    }

    /// Forgets an object that is gone.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, K::Status)>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a cached copy at `cached` resourceVersion holds the write answered with `written`.
/// resourceVersions are etcd revisions of one API server's storage, increasing with every
/// write; where one is not a number, only the same version counts.
pub fn holds_write(cached: Option<&str>, written: Option<&str>) -> bool {
    match (cached, written) {
        (Some(cached), Some(written)) => match (cached.parse::<u64>(), written.parse::<u64>()) {
            (Ok(cached), Ok(written)) => cached >= written,
            _ => cached == written,
        },
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_or_same_version_holds_the_write() {
        assert!(holds_write(Some("120"), Some("120")));
        assert!(holds_write(Some("121"), Some("120")));
        assert!(!holds_write(Some("119"), Some("120")));
        // Numbers, not text: "99" is older than "100".
        assert!(!holds_write(Some("99"), Some("100")));
        assert!(!holds_write(None, Some("1")));
        assert!(holds_write(Some("x"), Some("x")));
        assert!(!holds_write(Some("y"), Some("x")));
    }

    #[tokio::test]
    async fn until_wakes_on_the_change_that_makes_it_hold() {
        let changes = Changes::default();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (changes, flag) = (changes.clone(), flag.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                changes.bump();
            })
        };
        let seen = changes
            .until(Duration::from_secs(30), || {
                flag.load(std::sync::atomic::Ordering::SeqCst)
            })
            .await;
        writer.await.expect("the writer task ends");
        assert!(seen);
    }

    #[derive(
        kube::CustomResource,
        serde::Serialize,
        serde::Deserialize,
        Clone,
        Debug,
        schemars::JsonSchema,
    )]
    #[kube(
        group = "test.example",
        version = "v1",
        kind = "Thing",
        status = "ThingStatus"
    )]
    struct ThingSpec {}

    #[derive(
        serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema,
    )]
    struct ThingStatus {
        step: u32,
    }

    fn thing(version: &str, step: u32) -> Thing {
        let mut thing = Thing::new("a", ThingSpec {});
        thing.metadata.uid = Some("uid-1".into());
        thing.metadata.resource_version = Some(version.into());
        thing.status = Some(ThingStatus { step });
        thing
    }

    #[test]
    fn a_status_written_is_read_until_the_cache_holds_it() {
        let writes = StatusWrites::<Thing>::default();
        writes.record(&thing("12", 2));
        // The cache still has the copy before the write: the written status is read.
        let stale = thing("11", 1);
        assert_eq!(writes.fresh(&stale).status, Some(ThingStatus { step: 2 }));
        // The cache caught up (or went past): its copy is read, and the entry goes.
        let caught_up = thing("13", 3);
        assert_eq!(
            writes.fresh(&caught_up).status,
            Some(ThingStatus { step: 3 })
        );
        assert_eq!(writes.fresh(&stale).status, Some(ThingStatus { step: 1 }));
    }

    #[tokio::test(start_paused = true)]
    async fn until_gives_up_after_its_time() {
        let changes = Changes::default();
        assert!(!changes.until(Duration::from_secs(5), || false).await);
    }
}
