//! Waiting with deadlines instead of fixed sleeps.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::{Condition, await_condition};
use serde::de::DeserializeOwned;

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Ok(Some(value))`, failing when `timeout` passes first.
/// `Ok(None)` means "not yet"; an `Err` ends the wait at once (map transient errors to `None`).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check()
            .await
            .with_context(|| format!("waiting for {what}"))?
        {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what}{}",
                crate::diagnostics::explanation()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Watches one object until `condition` holds (kube's `await_condition`), with a deadline.
/// Returns the object as last seen (`None` when it does not exist, e.g. for `is_deleted`).
pub async fn wait_until<K>(
    api: Api<K>,
    name: &str,
    condition: impl Condition<K>,
    timeout: Duration,
) -> anyhow::Result<Option<K>>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    tokio::time::timeout(timeout, await_condition(api, name, condition))
        .await
        .with_context(|| {
            format!(
                "timed out after {timeout:?} waiting for {name}{}",
                crate::diagnostics::explanation()
            )
        })?
        .with_context(|| format!("watching {name}"))
}

/// How long changes take to show: for each round, `change(round)` makes a change and returns
/// the moment it counts from (e.g. just before its write, or when what it changed showed), and
/// then `name` is watched until `reached(round, object)` holds. Returns the durations, sorted.
pub async fn time_changes<K, F, Fut, R>(
    api: &Api<K>,
    name: &str,
    rounds: usize,
    mut change: F,
    reached: R,
    timeout: Duration,
) -> anyhow::Result<Vec<Duration>>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<Instant>>,
    R: Fn(usize, Option<&K>) -> bool + Clone + Send + 'static,
{
    let mut durations = Vec::new();
    for round in 0..rounds {
        let started = change(round).await?;
        let reached = reached.clone();
        wait_until(
            api.clone(),
            name,
            move |object: Option<&K>| reached(round, object),
            timeout,
        )
        .await?;
        durations.push(started.elapsed());
    }
    durations.sort();
    Ok(durations)
}
