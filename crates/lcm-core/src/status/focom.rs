//! ProvisioningRequest states -> FocomProvisioningRequest phase and message.

use crate::crd::{FocomPhase, Operation, ProvisioningState};

/// The state of one selected cluster's ProvisioningRequest (None: it does not exist).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterState {
    pub name: String,
    pub state: Option<ProvisioningState>,
    pub message: String,
}

/// Aggregate phase and message of a request over its clusters.
pub fn aggregate(operation: Operation, clusters: &[ClusterState]) -> (FocomPhase, String) {
    if operation == Operation::Delete {
        let remaining: Vec<&str> = clusters
            .iter()
            .filter(|c| c.state.is_some())
            .map(|c| c.name.as_str())
            .collect();
        return if remaining.is_empty() {
            (
                FocomPhase::Deleted,
                "all selected clusters are deleted".into(),
            )
        } else {
            (
                FocomPhase::Deleting,
                format!("deleting {}", remaining.join(", ")),
            )
        };
    }
    let failed: Vec<String> = clusters
        .iter()
        .filter(|c| c.state == Some(ProvisioningState::Failed))
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect();
    if !failed.is_empty() {
        return (
            FocomPhase::Failed,
            format!("failed clusters: {}", failed.join("; ")),
        );
    }
    let waiting: Vec<String> = clusters
        .iter()
        .filter(|c| c.state != Some(ProvisioningState::Fulfilled))
        .map(|c| match c.state {
            Some(state) => format!("{} is {state}", c.name),
            None => format!("{} is not requested yet", c.name),
        })
        .collect();
    if waiting.is_empty() {
        (
            FocomPhase::Synced,
            format!("{} cluster(s) provisioned", clusters.len()),
        )
    } else {
        (FocomPhase::Creating, waiting.join(", "))
    }
}

/// `ready/total` for the printer column.
pub fn ready_count(clusters: &[ClusterState]) -> String {
    let ready = clusters
        .iter()
        .filter(|c| c.state == Some(ProvisioningState::Fulfilled))
        .count();
    format!("{ready}/{}", clusters.len())
}
