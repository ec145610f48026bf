//! Kubernetes-convention conditions: upsert by type, keep `lastTransitionTime`
//! unless the status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const TRUE: &str = "True";
pub const FALSE: &str = "False";
pub const UNKNOWN: &str = "Unknown";

/// A condition as a reconciler decides it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
    pub fn true_(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, TRUE, reason, message)
    }
    pub fn false_(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, FALSE, reason, message)
    }
    pub fn unknown(
        type_: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(type_, UNKNOWN, reason, message)
    }
}

/// Merges `desired` into `existing`: a condition whose status is unchanged keeps
/// its `lastTransitionTime`; conditions not named in `desired` are kept as they are.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut merged: Vec<Condition> = existing.to_vec();
    for d in desired {
        let transition = match existing.iter().find(|c| c.type_ == d.type_) {
            Some(old) if old.status == d.status => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        let condition = Condition {
            type_: d.type_.to_string(),
            status: d.status.to_string(),
            reason: d.reason.clone(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time: transition,
        };
        match merged.iter_mut().find(|c| c.type_ == d.type_) {
            Some(slot) => *slot = condition,
            None => merged.push(condition),
        }
    }
    merged
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_true(conditions: &[Condition], type_: &str) -> bool {
        find(conditions, type_).is_some_and(|c| c.status == TRUE)
    }

    fn time(s: &str) -> Time {
        Time(s.parse().expect("timestamp"))
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-01T00:05:00Z");
        let first = merge(
            &[],
            &[Desired::false_("Ready", "Waiting", "a")],
            Some(1),
            &t0,
        );
        let second = merge(
            &first,
            &[Desired::false_("Ready", "StillWaiting", "b")],
            Some(2),
            &t1,
        );
        assert_eq!(second[0].last_transition_time, t0);
        assert_eq!(second[0].reason, "StillWaiting");
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn flipped_status_moves_transition_time() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-01T00:05:00Z");
        let first = merge(&[], &[Desired::false_("Ready", "Waiting", "")], None, &t0);
        let second = merge(&first, &[Desired::true_("Ready", "Done", "")], None, &t1);
        assert_eq!(second[0].last_transition_time, t1);
        assert!(is_true(&second, "Ready"));
    }

    #[test]
    fn other_conditions_are_kept_in_order() {
        let t0 = time("2026-01-01T00:00:00Z");
        let first = merge(
            &[],
            &[Desired::true_("A", "R", ""), Desired::true_("B", "R", "")],
            None,
            &t0,
        );
        let second = merge(&first, &[Desired::false_("A", "R2", "")], None, &t0);
        let types: Vec<_> = second.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["A", "B"]);
        assert!(!is_true(&second, "A"));
        assert!(is_true(&second, "B"));
    }
}
