//! A reconcile's conclusion (`Report`) -> the ProvisioningRequest's status it gives, and the
//! Events its change deserves: pure, written by `status`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::{Event, EventType};

use lcm_core::conditions::{self, Desired};
use lcm_core::crd::{
    ProvisionedResourceSet, ProvisioningRequest, ProvisioningRequestStatus, ProvisioningState,
    ProvisioningStatus, ResourceProvisioningPhase, ResourceProvisioningStatus, SecretReference,
};

pub const RESOURCES_CREATED: &str = "ClusterResourcesCreated";
pub use lcm_core::status::provisioning::{
    CLUSTER_PROVISIONED, CONTROL_PLANE_READY, HOSTS_PREPARED, TIMED_STAGES, VALIDATED,
    WORKERS_READY, clock_start, running_stage_clocks,
};

/// Every condition the operator owns, in display order.
const ALL_CONDITIONS: [&str; 6] = [
    VALIDATED,
    HOSTS_PREPARED,
    RESOURCES_CREATED,
    CONTROL_PLANE_READY,
    WORKERS_READY,
    CLUSTER_PROVISIONED,
];

/// What one reconcile concluded.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub state: ProvisioningState,
    pub message: String,
    pub conditions: Vec<Desired>,
    pub node_cluster: Option<ResourceProvisioningStatus>,
    pub hosts: Vec<ResourceProvisioningStatus>,
    pub resource_set: Option<ProvisionedResourceSet>,
    pub kubeconfig: Option<SecretReference>,
}

impl Report {
    pub fn new(
        state: ProvisioningState,
        message: impl Into<String>,
        conditions: Vec<Desired>,
    ) -> Self {
        Self {
            state,
            message: message.into(),
            conditions,
            ..Default::default()
        }
    }

    /// A request that failed before anything was created.
    pub fn failed(condition: Desired) -> Self {
        Self::new(
            ProvisioningState::Failed,
            condition.message.clone(),
            vec![condition],
        )
    }
}

/// The status `report` gives `request`, keeping timestamps of what did not change.
pub fn next_status(
    request: &ProvisioningRequest,
    report: &Report,
    now: &Time,
) -> ProvisioningRequestStatus {
    let old = request.status.clone().unwrap_or_default();
    let generation = request.metadata.generation;
    // Conditions are set on first visit, Unknown until a stage says otherwise.
    let mut desired: Vec<Desired> = ALL_CONDITIONS
        .iter()
        .filter(|t| {
            conditions::find(&old.conditions, t).is_none()
                && !report.conditions.iter().any(|d| d.type_ == **t)
        })
        .map(|t| Desired::unknown(t, "NotReached", "this stage has not been reached"))
        .collect();
    desired.extend(report.conditions.iter().cloned());
    let conditions = conditions::merge(&old.conditions, &desired, generation, now);
    let unchanged = old.provisioning_status.as_ref().is_some_and(|s| {
        s.provisioning_state == report.state && s.provisioning_message == report.message
    });
    let update_time = match (&old.provisioning_status, unchanged) {
        (Some(s), true) => s.provisioning_update_time.clone(),
        _ => Some(now.clone()),
    };
    ProvisioningRequestStatus {
        provisioning_status: Some(ProvisioningStatus {
            provisioning_state: report.state,
            provisioning_message: report.message.clone(),
            provisioning_update_time: update_time,
        }),
        provisioned_resource_set: report.resource_set.clone(),
        node_cluster_provisioning_status: report.node_cluster.clone(),
        infrastructure_resource_provisioning_status: report.hosts.clone(),
        kubeconfig_secret: report.kubeconfig.clone(),
        stage_since: stage_since(&old, &conditions, now),
        conditions,
        observed_generation: generation,
    }
}

/// Since when each False timed stage has had its reason: kept while the reason stays, `now`
/// when it changes (for a status written before this field, the condition's transition).
fn stage_since(
    old: &ProvisioningRequestStatus,
    new: &[Condition],
    now: &Time,
) -> BTreeMap<String, Time> {
    TIMED_STAGES
        .iter()
        .filter_map(|stage| {
            let current = conditions::find(new, stage).filter(|c| c.status == conditions::FALSE)?;
            let before = conditions::find(&old.conditions, stage)
                .filter(|b| b.status == conditions::FALSE && b.reason == current.reason);
            let since = before.map(|b| {
                old.stage_since
                    .get(*stage)
                    .cloned()
                    .unwrap_or_else(|| b.last_transition_time.clone())
            });
            Some((stage.to_string(), since.unwrap_or_else(|| now.clone())))
        })
        .collect()
}

/// The Event a status change deserves, if any: one per write, naming each stage the change
/// reached (True) or failed (False for a failure, not "not yet"), and the new state when it
/// changed; a Warning when something failed. One, not one per stage: a pass often reaches
/// several stages at once, and each Event is a write to the API server.
pub fn event(
    old: Option<&ProvisioningRequestStatus>,
    new: &ProvisioningRequestStatus,
) -> Option<Event> {
    let old_conditions = old.map(|s| s.conditions.as_slice()).unwrap_or_default();
    let mut flipped: Vec<&Condition> = new
        .conditions
        .iter()
        .filter(|c| {
            c.status == conditions::TRUE || (c.status == conditions::FALSE && is_failure(&c.reason))
        })
        .filter(|c| conditions::find(old_conditions, &c.type_).is_none_or(|o| o.status != c.status))
        .collect();
    // Failures first: they are what a reader of a long note must see.
    flipped.sort_by_key(|c| c.status == conditions::TRUE);
    fn state(s: &ProvisioningRequestStatus) -> Option<(ProvisioningState, &str)> {
        let p = s.provisioning_status.as_ref()?;
        Some((p.provisioning_state, p.provisioning_message.as_str()))
    }
    let new_state = state(new).filter(|(s, _)| old.and_then(state).map(|(o, _)| o) != Some(*s));
    let failed = flipped.iter().any(|c| c.status == conditions::FALSE)
        || new_state.is_some_and(|(s, _)| s == ProvisioningState::Failed);
    // Named after the new state, else a failure, else the furthest stage reached.
    let stage = if failed {
        flipped.first()
    } else {
        flipped.last()
    };
    let reason = match (new_state, stage) {
        (Some((state, _)), _) => capitalize(state.as_str()),
        (None, Some(stage)) => format!("{}{}", stage.type_, stage.status),
        (None, None) => return None,
    };
    let mut lines: Vec<String> = flipped
        .iter()
        .map(|c| format!("{} {}: {}", c.type_, c.status, c.message))
        .collect();
    if let Some((state, message)) = new_state {
        lines.push(format!("{state}: {message}"));
    }
    Some(Event {
        type_: if failed {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason,
        note: Some(truncate(&lines.join("; "), 1000)),
        action: "Provision".into(),
        secondary: None,
    })
}

/// Condition reasons that mean something went wrong (rather than "not yet").
fn is_failure(reason: &str) -> bool {
    matches!(
        reason,
        "InvalidParameters"
            | "HostConflict"
            | "ChangeRefused"
            | "HostPreparationFailed"
            | "ApplyRefused"
            | "Failed"
            | "TimedOut"
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A stage condition that has been False with its reason longer than `timeout` (counted from
/// `not_before` if that is later) fails the request; otherwise, how long until it would.
pub fn stage_deadline(
    status: &ProvisioningRequestStatus,
    stage: &str,
    timeout: Duration,
    not_before: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Option<std::result::Result<Duration, String>> {
    let (since, condition) = clock_start(status, stage, not_before)?;
    let elapsed = now.duration_since(since).unsigned_abs();
    Some(match timeout.checked_sub(elapsed) {
        Some(left) => Ok(left),
        None => Err(format!(
            "{stage} is still False after {}s (timeout {}s): {}",
            elapsed.as_secs(),
            timeout.as_secs(),
            condition.message
        )),
    })
}

/// The node cluster's O2ims phase for a state.
pub fn node_cluster_phase(state: ProvisioningState) -> ResourceProvisioningPhase {
    match state {
        ProvisioningState::Fulfilled => ResourceProvisioningPhase::Provisioned,
        ProvisioningState::Failed => ResourceProvisioningPhase::Failed,
        _ => ResourceProvisioningPhase::Processing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcm_core::crd::ProvisioningRequestSpec;

    fn time(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    fn request() -> ProvisioningRequest {
        let mut pr = ProvisioningRequest::new("r", ProvisioningRequestSpec::default());
        pr.metadata.generation = Some(3);
        pr
    }

    #[test]
    fn first_status_sets_every_condition() {
        let report = Report::new(ProvisioningState::Progressing, "validating", vec![]);
        let status = next_status(&request(), &report, &time("2026-01-01T00:00:00Z"));
        let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ALL_CONDITIONS);
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.status == conditions::UNKNOWN)
        );
        assert_eq!(status.observed_generation, Some(3));
    }

    #[test]
    fn an_unchanged_report_gives_the_same_status() {
        let report = Report::new(
            ProvisioningState::Progressing,
            "waiting",
            vec![Desired::false_(
                CONTROL_PLANE_READY,
                "Initializing",
                "waiting",
            )],
        );
        let mut pr = request();
        pr.status = Some(next_status(&pr, &report, &time("2026-01-01T00:00:00Z")));
        let again = next_status(&pr, &report, &time("2026-01-01T00:09:00Z"));
        assert_eq!(
            pr.status,
            Some(again),
            "a later identical reconcile must not write"
        );
    }

    #[test]
    fn one_event_marks_the_stages_reached_or_failed_and_the_new_state() {
        let t0 = time("2026-01-01T00:00:00Z");
        let progressing = Report::new(
            ProvisioningState::Progressing,
            "waiting",
            vec![
                Desired::true_(VALIDATED, "Valid", "ok"),
                Desired::false_(CONTROL_PLANE_READY, "Initializing", "waiting"),
            ],
        );
        let first = next_status(&request(), &progressing, &t0);
        let reason =
            |event: Option<Event>| event.map(|e| (e.reason, e.type_, e.note.unwrap_or_default()));
        let (reason_, type_, note) = reason(event(None, &first)).expect("an Event");
        assert_eq!(
            (reason_.as_str(), type_),
            ("Progressing", EventType::Normal)
        );
        assert!(
            note.contains("ProvisioningRequestValidated True: ok")
                && note.ends_with("progressing: waiting"),
            "the stage reached and the state: {note}"
        );
        assert!(
            !note.contains("ControlPlaneReady"),
            "a stage not reached yet is no news: {note}"
        );
        let mut pr = request();
        pr.status = Some(first.clone());
        assert!(
            event(Some(&first), &next_status(&pr, &progressing, &t0)).is_none(),
            "nothing changed, no Event"
        );
        let ready = Report::new(
            ProvisioningState::Progressing,
            "waiting",
            vec![Desired::true_(CONTROL_PLANE_READY, "Ready", "1/1 ready")],
        );
        let (reason_, type_, _) =
            reason(event(Some(&first), &next_status(&pr, &ready, &t0))).expect("a stage reached");
        assert_eq!(
            (reason_.as_str(), type_),
            ("ControlPlaneReadyTrue", EventType::Normal)
        );
        let mixed = Report::new(
            ProvisioningState::Progressing,
            "waiting",
            vec![
                Desired::true_(CONTROL_PLANE_READY, "Ready", "1/1 ready"),
                Desired::false_(WORKERS_READY, "Failed", "a worker failed"),
            ],
        );
        let (reason_, type_, _) = reason(event(Some(&first), &next_status(&pr, &mixed, &t0)))
            .expect("a stage reached and one failed");
        assert_eq!(
            (reason_.as_str(), type_),
            ("WorkersReadyFalse", EventType::Warning),
            "named after the failure"
        );
        let failed = Report::new(
            ProvisioningState::Failed,
            "timed out",
            vec![Desired::false_(
                CLUSTER_PROVISIONED,
                "TimedOut",
                "the control plane timed out",
            )],
        );
        let later = next_status(&pr, &failed, &t0);
        let (reason_, type_, note) = reason(event(Some(&first), &later)).expect("a failure");
        assert_eq!((reason_.as_str(), type_), ("Failed", EventType::Warning));
        assert!(
            note.starts_with("ClusterProvisioned False: the control plane timed out"),
            "{note}"
        );
    }

    #[test]
    fn the_workers_clock_starts_when_the_control_plane_is_up() {
        let workers = Desired::false_(WORKERS_READY, "WaitingForNodes", "0/1 ready");
        let waiting = Report::new(ProvisioningState::Progressing, "", vec![workers.clone()]);
        let mut pr = request();
        pr.status = Some(next_status(&pr, &waiting, &time("2026-01-01T00:00:00Z")));
        assert_eq!(
            running_stage_clocks(pr.status.as_ref().expect("status")),
            [],
            "the control plane is not up: the workers' clock does not run"
        );
        let up = Report::new(
            ProvisioningState::Progressing,
            "",
            vec![Desired::true_(CONTROL_PLANE_READY, "Ready", "1/1"), workers],
        );
        let status = next_status(&pr, &up, &time("2026-01-01T00:07:00Z"));
        assert_eq!(
            running_stage_clocks(&status),
            [(WORKERS_READY, "2026-01-01T00:07:00Z".parse().expect("ts"))]
        );
        let mut failed = status.clone();
        if let Some(s) = failed.provisioning_status.as_mut() {
            s.provisioning_state = ProvisioningState::Failed;
        }
        assert_eq!(running_stage_clocks(&failed), [], "only while progressing");
    }

    #[test]
    fn stages_time_out_from_their_last_transition() {
        let report = Report::new(
            ProvisioningState::Progressing,
            "",
            vec![Desired::false_(
                CONTROL_PLANE_READY,
                "Initializing",
                "waiting for kubeadm init",
            )],
        );
        let status = next_status(&request(), &report, &time("2026-01-01T00:00:00Z"));
        let early: jiff::Timestamp = "2026-01-01T00:10:00Z".parse().expect("ts");
        let late: jiff::Timestamp = "2026-01-01T00:31:00Z".parse().expect("ts");
        let timeout = Duration::from_secs(1800);
        assert_eq!(
            stage_deadline(&status, CONTROL_PLANE_READY, timeout, None, early),
            Some(Ok(Duration::from_secs(1200)))
        );
        let failure = stage_deadline(&status, CONTROL_PLANE_READY, timeout, None, late)
            .expect("stage")
            .expect_err("timed out");
        assert!(
            failure.contains("after 1860s (timeout 1800s): waiting for kubeadm init"),
            "{failure}"
        );
        assert_eq!(
            stage_deadline(&status, WORKERS_READY, timeout, None, late),
            None,
            "Unknown stages do not time out"
        );
        // The stage recovers: another reason, and its clock starts again.
        let mut timed_out = request();
        timed_out.status = Some(status.clone());
        let recovered = Report::new(
            ProvisioningState::Progressing,
            "",
            vec![Desired::false_(
                CONTROL_PLANE_READY,
                "WaitingForNodes",
                "0/1 ready",
            )],
        );
        let later = next_status(&timed_out, &recovered, &time("2026-01-01T00:40:00Z"));
        let soon: jiff::Timestamp = "2026-01-01T00:45:00Z".parse().expect("ts");
        assert_eq!(
            stage_deadline(&later, CONTROL_PLANE_READY, timeout, None, soon),
            Some(Ok(Duration::from_secs(1500)))
        );
        // The same reason keeps its clock.
        let mut stuck = request();
        stuck.status = Some(status.clone());
        let again = next_status(&stuck, &report, &time("2026-01-01T00:40:00Z"));
        assert!(matches!(
            stage_deadline(&again, CONTROL_PLANE_READY, timeout, None, soon),
            Some(Err(_))
        ));
        let started: jiff::Timestamp = "2026-01-01T00:20:00Z".parse().expect("ts");
        assert_eq!(
            stage_deadline(&status, CONTROL_PLANE_READY, timeout, Some(started), late),
            Some(Ok(Duration::from_secs(1140))),
            "the clock starts at the later of the transition and not_before"
        );
    }
}
