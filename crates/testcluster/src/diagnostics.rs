//! What a failed test shows besides what it waited for: the logs of the processes under test
//! that run for this test process (the operators' tails; the managers' and the workload-cluster
//! simulator's paths and last lines) in a failed wait's error, and the tracing of what runs
//! inside the test process (the simulated hosts) in the test's output, so a failure on the real
//! stack explains itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Lines of an operator's log a report shows.
pub(crate) const OPERATOR_LINES: usize = 40;
/// Lines of each manager's (and the workload-cluster simulator's) log a report shows.
const MANAGER_LINES: usize = 5;

enum Source {
    /// An operator's log.
    Operator(PathBuf),
    /// The `managers.json` of a stack with the managers.
    Stack(PathBuf),
}

static SOURCES: Mutex<BTreeMap<u64, Source>> = Mutex::new(BTreeMap::new());

/// A source of the reports for as long as it is held.
pub(crate) struct Reported(u64);

impl Drop for Reported {
    fn drop(&mut self) {
        sources().remove(&self.0);
    }
}

fn sources() -> std::sync::MutexGuard<'static, BTreeMap<u64, Source>> {
    SOURCES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn add(source: Source) -> Reported {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    sources().insert(id, source);
    Reported(id)
}

/// Reports the operator logging to `log` until the returned value is dropped.
pub(crate) fn operator(log: &Path) -> Reported {
    add(Source::Operator(log.to_path_buf()))
}

/// Reports the managers and the workload-cluster simulator `managers_json` describes until the
/// returned value is dropped.
pub(crate) fn stack(managers_json: &Path) -> Reported {
    add(Source::Stack(managers_json.to_path_buf()))
}

/// The last `count` lines of the file at `path`, under a heading naming it.
pub(crate) fn tail(what: &str, path: &Path, count: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "{what} log {}:\n{}",
        path.display(),
        lines[lines.len().saturating_sub(count)..].join("\n")
    )
}

/// Sends this process's tracing that `filter` selects (e.g. `byoh_sim=info`: the simulated
/// hosts, running inside the test) to the output of the test that emits it, which the test
/// harness shows when that test fails. The first call in a process decides.
pub fn trace_to_test_output(filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
}

/// What a failed wait appends to its error: the report on its own lines, if there is one.
pub fn explanation() -> String {
    match report() {
        report if report.is_empty() => report,
        report => format!("\n{report}"),
    }
}

/// Every reported log: empty when nothing is reported.
pub fn report() -> String {
    let sources = sources();
    let mut parts = Vec::new();
    for source in sources.values() {
        match source {
            Source::Operator(log) => parts.push(tail("operator", log, OPERATOR_LINES)),
            Source::Stack(managers_json) => parts.extend(stack_logs(managers_json)),
        }
    }
    parts.join("\n")
}

/// Each manager's log and the workload-cluster simulator's, from the stack's `managers.json`.
fn stack_logs(managers_json: &Path) -> Vec<String> {
    let state: serde_json::Value = std::fs::read_to_string(managers_json)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let managers = state["managers"].as_array().into_iter().flatten();
    managers
        .chain([&state["workloadClusters"]])
        .filter_map(|process| {
            let log = process["log"].as_str()?;
            let name = process["name"].as_str().unwrap_or("workload-clusters");
            Some(tail(name, Path::new(log), MANAGER_LINES))
        })
        .collect()
}
