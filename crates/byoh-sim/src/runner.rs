//! What every simulated controller does with failures: log them and try again soon (most are
//! conflicts with another writer, which the next attempt resolves).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::context::Context;
use crate::error::Error;

const RETRY_AFTER: Duration = Duration::from_secs(1);

pub fn retry<K: Resource>(object: Arc<K>, error: &Error, _: Arc<Context>) -> Action {
    let name = object.meta().name.as_deref().unwrap_or_default();
    match error {
        // Deleted while being reconciled (e.g. torn down with its cluster): nothing left to do.
        Error::Kube(kube::Error::Api(s)) if s.is_not_found() => {
            tracing::debug!(%name, %error, "gone");
            Action::await_change()
        }
        Error::Kube(kube::Error::Api(s)) if s.is_conflict() => {
            tracing::debug!(%name, %error, "conflict; retrying");
            Action::requeue(RETRY_AFTER)
        }
        _ => {
            tracing::warn!(%name, %error, "reconciliation failed; retrying");
            Action::requeue(RETRY_AFTER)
        }
    }
}

/// Runs a controller's stream to its end, logging what `retry` does not.
pub async fn drive<K>(
    controller: &'static str,
    stream: impl Stream<Item = Result<(ObjectRef<K>, Action), controller::Error<Error, watcher::Error>>>,
) where
    K: Resource,
    K::DynamicType: Debug,
{
    stream
        .for_each(|outcome| async move {
            match outcome {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                // A deleted object that was still queued.
                Err(controller::Error::ObjectNotFound(_)) => {}
                Err(error) => tracing::warn!(%controller, %error, "controller error"),
            }
        })
        .await;
}
