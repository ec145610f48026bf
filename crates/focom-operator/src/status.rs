//! A reconcile's outcome -> the FocomProvisioningRequest's status: one row per cluster, the
//! aggregate phase, conditions; written only when it changed, with an Event per phase change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;

use lcm_core::conditions::{self, Desired};
use lcm_core::crd::{
    ClusterStatus, FocomPhase, FocomProvisioningRequest, FocomProvisioningRequestStatus, Operation,
    ProvisioningRequest,
};
use lcm_core::focom;
use lcm_core::status::focom::{ClusterState, aggregate, ready_count};

use crate::context::Context;
use crate::error::Result;
use crate::ocloud::OCLOUD_REACHABLE;
use crate::validation::{INVENTORY_VALID, VALIDATED};

pub const FEASIBLE: &str = "Feasible";
pub const READY: &str = "Ready";

/// What one reconcile found.
pub struct Outcome {
    pub operation: Operation,
    pub conditions: Vec<Desired>,
    /// Names of the selected clusters.
    pub selected: Vec<String>,
    /// The ProvisioningRequests this request created that exist, by name.
    pub owned: Vec<Arc<ProvisioningRequest>>,
    /// A phase and message that override the aggregate (the request cannot proceed).
    verdict: Option<(FocomPhase, String)>,
}

impl Outcome {
    pub fn new(operation: Operation) -> Self {
        Self {
            operation,
            conditions: Vec::new(),
            selected: Vec::new(),
            owned: Vec::new(),
            verdict: None,
        }
    }

    fn with(mut self, condition: Desired, phase: FocomPhase) -> Self {
        self.verdict = Some((phase, condition.message.clone()));
        self.conditions.push(condition);
        self
    }

    /// The O-Cloud cannot be reached yet: pending (deleting, for a deletion), retried with
    /// backoff.
    pub fn blocked(self, condition: Desired) -> Self {
        let phase = match self.operation {
            Operation::Delete => FocomPhase::Deleting,
            _ => FocomPhase::Pending,
        };
        self.with(condition, phase)
    }

    /// The request can never proceed as it is (say, an O-Cloud it may not use): failed, not retried.
    pub fn refused(self, condition: Desired) -> Self {
        self.with(condition, FocomPhase::Failed)
    }

    pub fn invalid(self, condition: Desired) -> Self {
        let condition = Desired {
            type_: VALIDATED,
            ..condition
        };
        self.with(condition, FocomPhase::Failed)
    }

    pub fn infeasible(self, condition: Desired) -> Self {
        self.valid_but(condition, FocomPhase::Failed)
    }

    /// Hosts it needs are wanted by other requests that may still give them up: pending.
    pub fn waiting(self, condition: Desired) -> Self {
        self.valid_but(condition, FocomPhase::Pending)
    }

    /// A valid request that `condition` keeps from being created.
    fn valid_but(mut self, condition: Desired, phase: FocomPhase) -> Self {
        self.conditions
            .push(Desired::true_(VALIDATED, "Valid", "the request is valid"));
        self.with(condition, phase)
    }

    /// The inventory is unusable: a request with nothing provisioned fails; one with
    /// clusters keeps reporting them, and says the inventory is broken.
    pub fn failed_or_current(mut self) -> Self {
        let problem = self
            .conditions
            .last()
            .map(|c| c.message.clone())
            .unwrap_or_default();
        if self.owned.is_empty() {
            self.verdict = Some((FocomPhase::Failed, problem));
        } else {
            self.selected = self.owned.iter().filter_map(|r| cluster_of(r)).collect();
        }
        self
    }
}

fn cluster_of(request: &ProvisioningRequest) -> Option<String> {
    request.labels().get(lcm_core::CLUSTER_NAME_LABEL).cloned()
}

/// The status `outcome` gives `request`.
pub fn next_status(
    request: &FocomProvisioningRequest,
    outcome: &Outcome,
    now: &Time,
) -> FocomProvisioningRequestStatus {
    let old = request.status.clone().unwrap_or_default();
    let (namespace, name) = (request.namespace().unwrap_or_default(), request.name_any());
    let owned: HashMap<&str, &ProvisioningRequest> = outcome
        .owned
        .iter()
        .filter_map(|r| Some((r.metadata.name.as_deref()?, r.as_ref())))
        .collect();
    let (rows, states): (Vec<ClusterStatus>, Vec<ClusterState>) = outcome
        .selected
        .iter()
        .map(|cluster| {
            let pr_name = focom::request_name(&namespace, &name, cluster);
            let pr = owned.get(pr_name.as_str());
            let status = pr.and_then(|r| r.status.as_ref());
            let provisioning = status.and_then(|s| s.provisioning_status.as_ref());
            let message = provisioning.map(|p| p.provisioning_message.clone());
            let state = ClusterState {
                name: cluster.clone(),
                state: pr.map(|_| {
                    provisioning
                        .map(|p| p.provisioning_state)
                        .unwrap_or_default()
                }),
                message: message.clone().unwrap_or_default(),
            };
            let row = ClusterStatus {
                name: cluster.clone(),
                provisioning_request: Some(pr_name),
                state: Some(provisioning.map_or_else(
                    || {
                        if pr.is_some() {
                            "pending".to_string()
                        } else {
                            "absent".to_string()
                        }
                    },
                    |p| p.provisioning_state.to_string(),
                )),
                message,
                node_cluster_id: status
                    .and_then(|s| s.provisioned_resource_set.as_ref())
                    .and_then(|set| set.o_cloud_node_cluster_id.clone()),
            };
            (row, state)
        })
        .unzip();
    let (phase, mut message) = outcome
        .verdict
        .clone()
        .unwrap_or_else(|| aggregate(outcome.operation, &states));
    if outcome.verdict.is_none()
        && let Some(broken) = outcome
            .conditions
            .iter()
            .find(|c| c.type_ == INVENTORY_VALID && c.status == conditions::FALSE)
    {
        message = format!(
            "{message}; the inventory is invalid, nothing was changed: {}",
            broken.message
        );
    }
    let ready = match phase {
        FocomPhase::Synced | FocomPhase::Deleted => {
            Desired::true_(READY, phase.to_string(), message.clone())
        }
        _ => Desired::false_(READY, phase.to_string(), message.clone()),
    };
    let mut desired = outcome.conditions.clone();
    desired.push(ready);
    let unchanged = old.phase == Some(phase) && old.message.as_deref() == Some(message.as_str());
    FocomProvisioningRequestStatus {
        phase: Some(phase),
        last_updated: if unchanged {
            old.last_updated.clone()
        } else {
            Some(now.clone())
        },
        remote_name: (rows.len() == 1)
            .then(|| rows[0].provisioning_request.clone())
            .flatten(),
        clusters_ready: Some(ready_count(&states)),
        clusters: rows,
        conditions: conditions::merge(&old.conditions, &desired, request.metadata.generation, now),
        observed_generation: request.metadata.generation,
        message: Some(message),
    }
}

/// Writes the status unless it is already there; an Event marks every phase change.
pub async fn write(
    ctx: &Context,
    request: &FocomProvisioningRequest,
    outcome: Outcome,
) -> Result<Action> {
    let now = Time(jiff::Timestamp::now());
    let status = next_status(request, &outcome, &now);
    if request.status.as_ref() == Some(&status) {
        return Ok(Action::await_change());
    }
    let api: Api<FocomProvisioningRequest> =
        Api::namespaced(ctx.client.clone(), &request.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": FocomProvisioningRequest::api_version(&()),
        "kind": FocomProvisioningRequest::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &request.name_any(),
            &PatchParams::apply("focom-operator").force(),
            &Patch::Apply(&patch),
        )
        .await?;
    ctx.status_writes.record(&written);
    if request.status.as_ref().and_then(|s| s.phase) != status.phase {
        let phase = status.phase.unwrap_or_default();
        let event = Event {
            type_: if phase == FocomPhase::Failed {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: phase.to_string(),
            note: status
                .message
                .clone()
                .map(|m| m.chars().take(1000).collect()),
            action: "Provision".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &request.object_ref(&())).await {
            tracing::warn!(error = %e, "publishing an Event failed");
        }
    }
    Ok(Action::await_change())
}

/// [`write`], then look again after a backoff that grows with how long the O-Cloud has been
/// unreachable.
pub async fn write_retrying(
    ctx: &Context,
    request: &FocomProvisioningRequest,
    outcome: Outcome,
) -> Result<Action> {
    write(ctx, request, outcome).await?;
    let since = request
        .status
        .as_ref()
        .and_then(|s| conditions::find(&s.conditions, OCLOUD_REACHABLE))
        .filter(|c| c.status == conditions::FALSE)
        .map(|c| {
            jiff::Timestamp::now()
                .duration_since(c.last_transition_time.0)
                .unsigned_abs()
        })
        .unwrap_or(Duration::ZERO);
    Ok(Action::requeue(retry_after(since)))
}

/// How long to wait before retrying an unreachable O-Cloud: grows with how long it has been
/// unreachable, from 5 s to 5 min.
pub fn retry_after(unreachable_for: Duration) -> Duration {
    (unreachable_for / 2).clamp(Duration::from_secs(5), Duration::from_secs(300))
}
