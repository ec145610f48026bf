//! Which machine a KubeadmControlPlane or MachineDeployment creates or deletes next: it scales
//! to the desired replicas, and replaces machines made from another template (what the owner's
//! rollout compares: see `replicas::made_from`) one at a time, either surging (`maxSurge` ≥ 1:
//! create one, wait until it is Ready, delete an old one) or deleting first (`maxSurge: 0`:
//! delete an old one, wait until it is gone, which means its host is free again, then create its
//! successor).

use std::cmp::Reverse;

/// One machine of a control plane or deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub name: String,
    /// What it was made from (`replicas::made_from` of its owner then).
    pub template: String,
    /// `creationTimestamp` (RFC 3339, so it sorts as text).
    pub created: String,
    pub ready: bool,
    pub deleting: bool,
    /// Annotated `cluster.x-k8s.io/delete-machine`: the first to go on scale-in.
    pub marked: bool,
}

/// Which machines go first on scale-in, after marked and unready ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleIn {
    OldestFirst,
    NewestFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub max_surge: usize,
    /// Create a machine only once every machine is Ready (a control plane joins one node at a
    /// time); otherwise all missing machines are created at once.
    pub one_at_a_time: bool,
    pub scale_in: ScaleIn,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Create(usize),
    Delete(Vec<String>),
    /// Something is under way (a machine going, or not Ready yet).
    Wait,
    Steady,
}

pub fn plan(desired: usize, template: &str, replicas: &[Replica], policy: &Policy) -> Step {
    // One change at a time: a deleting machine holds its host until it is gone.
    if replicas.iter().any(|r| r.deleting) {
        return Step::Wait;
    }
    let count = replicas.len();
    let all_ready = replicas.iter().all(|r| r.ready);
    let outdated: Vec<&Replica> = replicas.iter().filter(|r| r.template != template).collect();
    if outdated.is_empty() {
        return if count > desired {
            let victims = by_deletion_priority(replicas.iter().collect(), policy.scale_in);
            let take = if policy.one_at_a_time {
                1
            } else {
                count - desired
            };
            Step::Delete(victims.into_iter().take(take).collect())
        } else if count < desired {
            match (policy.one_at_a_time, all_ready) {
                (true, false) => Step::Wait,
                (true, true) => Step::Create(1),
                (false, _) => Step::Create(desired - count),
            }
        } else {
            Step::Steady
        };
    }
    // Rolling out: first replace a machine deleted for the rollout.
    if count < desired {
        return Step::Create(1);
    }
    if !all_ready {
        return Step::Wait;
    }
    if count < desired + policy.max_surge {
        return Step::Create(1);
    }
    let victims = by_deletion_priority(outdated, policy.scale_in);
    Step::Delete(victims.into_iter().take(1).collect())
}

/// `maxSurge` as a count (a percentage of `desired` rounds up); 1 when unset, as in Cluster API.
pub fn max_surge(value: &serde_json::Value, desired: usize) -> usize {
    int_or_percent(value, desired, true).unwrap_or(1)
}

/// `maxUnavailable` as a count (a percentage of `desired` rounds down); 0 when unset.
pub fn max_unavailable(value: &serde_json::Value, desired: usize) -> usize {
    int_or_percent(value, desired, false).unwrap_or(0)
}

fn int_or_percent(value: &serde_json::Value, desired: usize, round_up: bool) -> Option<usize> {
    if let Some(count) = value.as_u64() {
        return usize::try_from(count).ok();
    }
    let percent: usize = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    let share = desired * percent;
    Some(if round_up {
        share.div_ceil(100)
    } else {
        share / 100
    })
}

/// Names in deletion order: marked, then not Ready, then by age.
fn by_deletion_priority(mut candidates: Vec<&Replica>, scale_in: ScaleIn) -> Vec<String> {
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    match scale_in {
        ScaleIn::OldestFirst => candidates.sort_by_key(|r| (!r.marked, r.ready, r.created.clone())),
        ScaleIn::NewestFirst => {
            candidates.sort_by_key(|r| (!r.marked, r.ready, Reverse(r.created.clone())))
        }
    }
    candidates.into_iter().map(|r| r.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, template: &str, created: &str) -> Replica {
        Replica {
            name: name.into(),
            template: template.into(),
            created: format!("2024-01-01T00:00:{created}Z"),
            ready: true,
            deleting: false,
            marked: false,
        }
    }

    const CONTROL_PLANE: Policy = Policy {
        max_surge: 0,
        one_at_a_time: true,
        scale_in: ScaleIn::OldestFirst,
    };
    const WORKERS: Policy = Policy {
        max_surge: 0,
        one_at_a_time: false,
        scale_in: ScaleIn::NewestFirst,
    };

    #[test]
    fn reads_surge_and_unavailability() {
        use serde_json::json;
        assert_eq!(max_surge(&json!(0), 3), 0);
        assert_eq!(max_surge(&json!("25%"), 3), 1);
        assert_eq!(max_surge(&json!(null), 3), 1);
        assert_eq!(max_unavailable(&json!("25%"), 3), 0);
        assert_eq!(max_unavailable(&json!(1), 3), 1);
    }

    #[test]
    fn control_planes_join_one_node_at_a_time() {
        assert_eq!(plan(3, "v1", &[], &CONTROL_PLANE), Step::Create(1));
        let mut first = replica("a", "v1", "01");
        first.ready = false;
        assert_eq!(plan(3, "v1", &[first.clone()], &CONTROL_PLANE), Step::Wait);
        first.ready = true;
        assert_eq!(plan(3, "v1", &[first], &CONTROL_PLANE), Step::Create(1));
    }

    #[test]
    fn workers_are_created_together() {
        assert_eq!(plan(2, "v1", &[], &WORKERS), Step::Create(2));
    }

    #[test]
    fn scale_in_takes_marked_machines_then_the_newest() {
        let mut machines = vec![
            replica("a", "v1", "01"),
            replica("b", "v1", "02"),
            replica("c", "v1", "03"),
        ];
        assert_eq!(
            plan(2, "v1", &machines, &WORKERS),
            Step::Delete(vec!["c".into()])
        );
        machines[0].marked = true;
        assert_eq!(
            plan(1, "v1", &machines, &WORKERS),
            Step::Delete(vec!["a".into(), "c".into()])
        );
        machines[1].deleting = true;
        assert_eq!(plan(1, "v1", &machines, &WORKERS), Step::Wait);
    }

    #[test]
    fn rollouts_without_surge_delete_first() {
        let machines = [
            replica("a", "v1", "01"),
            replica("b", "v1", "02"),
            replica("c", "v1", "03"),
        ];
        assert_eq!(
            plan(3, "v2", &machines, &CONTROL_PLANE),
            Step::Delete(vec!["a".into()])
        );
        assert_eq!(
            plan(3, "v2", &machines[1..], &CONTROL_PLANE),
            Step::Create(1)
        );
        let mut renewed = vec![
            machines[1].clone(),
            machines[2].clone(),
            replica("d", "v2", "04"),
        ];
        renewed[2].ready = false;
        assert_eq!(plan(3, "v2", &renewed, &CONTROL_PLANE), Step::Wait);
        renewed[2].ready = true;
        assert_eq!(
            plan(3, "v2", &renewed, &CONTROL_PLANE),
            Step::Delete(vec!["b".into()])
        );
    }

    #[test]
    fn rollouts_with_surge_create_first() {
        let surge = Policy {
            max_surge: 1,
            ..CONTROL_PLANE
        };
        let old = replica("a", "v1", "01");
        assert_eq!(
            plan(1, "v2", std::slice::from_ref(&old), &surge),
            Step::Create(1)
        );
        let mut new = replica("b", "v2", "02");
        new.ready = false;
        assert_eq!(
            plan(1, "v2", &[old.clone(), new.clone()], &surge),
            Step::Wait
        );
        new.ready = true;
        assert_eq!(
            plan(1, "v2", &[old, new.clone()], &surge),
            Step::Delete(vec!["a".into()])
        );
        assert_eq!(plan(1, "v2", &[new], &surge), Step::Steady);
    }
}
