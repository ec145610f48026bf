//! Cluster API status -> ProvisioningRequest state, message and stage conditions.
//!
//! `Cluster.status.phase == Provisioned` only means the infrastructure (the ByoCluster) is
//! ready, which BYOH reports at once; the cluster is fulfilled only when the control plane and
//! every worker node are Ready at the requested version.

use crate::capi::observe::{
    BOOTSTRAP_FAILED_REASON, ByoHostView, ByoMachineView, ClusterView, ControlPlaneView,
    MachineView, WorkersView,
};
use crate::conditions::{self, Desired};
use crate::crd::{
    ProvisioningRequest, ProvisioningRequestStatus, ProvisioningState, ResourceProvisioningPhase,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

pub const VALIDATED: &str = "ProvisioningRequestValidated";
pub const HOSTS_PREPARED: &str = "HostsPrepared";
pub const CONTROL_PLANE_READY: &str = "ControlPlaneReady";
pub const WORKERS_READY: &str = "WorkersReady";
pub const CLUSTER_PROVISIONED: &str = "ClusterProvisioned";

/// Stages with a timeout.
pub const TIMED_STAGES: [&str; 3] = [HOSTS_PREPARED, CONTROL_PLANE_READY, WORKERS_READY];

/// How long each timed stage may take: the O2IMS operator fails a request at its timeout, the
/// O2ims API raises an alarm before (both take these flags, the chart gives both the same).
#[derive(clap::Args, Clone, Debug)]
pub struct StageTimeouts {
    /// Seconds host preparation (Job and host registration) may take.
    #[arg(long, env = "HOST_PREPARATION_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub host_preparation_timeout_seconds: u64,
    /// Seconds the control plane may take to become Ready (also per upgrade).
    #[arg(long, env = "CONTROL_PLANE_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub control_plane_timeout_seconds: u64,
    /// Seconds the workers may take to become Ready (also per scale or upgrade).
    #[arg(long, env = "WORKERS_TIMEOUT_SECONDS", default_value_t = 1800)]
    pub workers_timeout_seconds: u64,
}

impl StageTimeouts {
    /// Each timed stage (its condition type) with its timeout in seconds.
    pub fn by_stage(&self) -> [(&'static str, u64); 3] {
        [
            (HOSTS_PREPARED, self.host_preparation_timeout_seconds),
            (CONTROL_PLANE_READY, self.control_plane_timeout_seconds),
            (WORKERS_READY, self.workers_timeout_seconds),
        ]
    }

    /// The timeout of `stage`.
    pub fn of(&self, stage: &str) -> Option<u64> {
        self.by_stage()
            .into_iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, seconds)| seconds)
    }
}

/// When the timeout clock of a False `stage` started: when its reason did (`stage_since`), or
/// `not_before` if that is later; with the condition.
pub fn clock_start<'a>(
    status: &'a ProvisioningRequestStatus,
    stage: &str,
    not_before: Option<jiff::Timestamp>,
) -> Option<(jiff::Timestamp, &'a Condition)> {
    let condition =
        conditions::find(&status.conditions, stage).filter(|c| c.status == conditions::FALSE)?;
    let reason_since = status
        .stage_since
        .get(stage)
        .map_or(condition.last_transition_time.0, |t| t.0);
    Some((
        not_before.map_or(reason_since, |t| t.max(reason_since)),
        condition,
    ))
}

/// The HostsPrepared reason of `hostPreparation: skip`, waiting for hosts registered by others:
/// no timeout runs for it (the control plane's does).
const WAITING_FOR_HOSTS: &str = "WaitingForHosts";

/// The timed stages whose timeout clock runs, each with when it started, as `reconcile`'s
/// `timeouts` counts them: only while the request is progressing; the workers' not before the
/// control plane is up; host preparation's not while it waits for hosts registered by others.
pub fn running_stage_clocks(
    status: &ProvisioningRequestStatus,
) -> Vec<(&'static str, jiff::Timestamp)> {
    let progressing = status
        .provisioning_status
        .as_ref()
        .is_some_and(|s| s.provisioning_state == ProvisioningState::Progressing);
    if !progressing {
        return Vec::new();
    }
    let control_plane_up = conditions::find(&status.conditions, CONTROL_PLANE_READY)
        .filter(|c| c.status == conditions::TRUE)
        .map(|c| c.last_transition_time.0);
    TIMED_STAGES
        .into_iter()
        .filter_map(|stage| {
            let not_before = match stage {
                WORKERS_READY => Some(control_plane_up?),
                _ => None,
            };
            let (since, condition) = clock_start(status, stage, not_before)?;
            let untimed = stage == HOSTS_PREPARED && condition.reason == WAITING_FOR_HOSTS;
            (!untimed).then_some((stage, since))
        })
        .collect()
}

/// Whether a request holds its hosts, cluster name and endpoint: one that failed validation
/// holds nothing; one whose change was refused keeps what it runs on.
pub fn holds_resources(request: &ProvisioningRequest) -> bool {
    conditions::find(request.conditions(), VALIDATED)
        .is_none_or(|c| c.status != conditions::FALSE || c.reason == "ChangeRefused")
}

/// What the operator observed of one cluster's Cluster API objects.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub cluster: Option<ClusterView>,
    pub control_plane: Option<ControlPlaneView>,
    pub workers: Option<WorkersView>,
    pub machines: Vec<MachineView>,
    pub byo_machines: Vec<ByoMachineView>,
    /// The ByoHosts the cluster's machines claimed.
    pub hosts: Vec<ByoHostView>,
}

/// The mapped state of a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub state: ProvisioningState,
    pub message: String,
    /// ControlPlaneReady, WorkersReady and ClusterProvisioned.
    pub conditions: Vec<Desired>,
}

/// Maps observed Cluster API state to the request's state.
pub fn cluster_progress(observed: &Observed) -> Progress {
    let control_plane = control_plane_condition(observed);
    let workers = workers_condition(observed);
    if let Some(failure) = failure(observed) {
        let provisioned = Desired::false_(CLUSTER_PROVISIONED, "Failed", failure.clone());
        return Progress {
            state: ProvisioningState::Failed,
            message: failure,
            conditions: vec![control_plane, workers, provisioned],
        };
    }
    let cluster_ready = observed
        .cluster
        .as_ref()
        .is_some_and(|c| c.ready && c.infrastructure_ready && c.control_plane_ready);
    let parts_ready = control_plane.status == crate::conditions::TRUE
        && workers.status == crate::conditions::TRUE;
    let (state, provisioned) = if parts_ready && cluster_ready {
        (
            ProvisioningState::Fulfilled,
            Desired::true_(
                CLUSTER_PROVISIONED,
                "Provisioned",
                "control plane and all workers are Ready",
            ),
        )
    } else {
        let waiting = if observed.cluster.is_none() {
            "waiting for the Cluster to be created".to_string()
        } else if !parts_ready {
            [&control_plane, &workers]
                .into_iter()
                .filter(|c| c.status != crate::conditions::TRUE)
                .map(|c| c.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            "waiting for the Cluster to report Ready".to_string()
        };
        (
            ProvisioningState::Progressing,
            Desired::false_(CLUSTER_PROVISIONED, "InProgress", waiting),
        )
    };
    Progress {
        state,
        message: provisioned.message.clone(),
        conditions: vec![control_plane, workers, provisioned],
    }
}

/// The first failure any object reports, naming the object.
fn failure(observed: &Observed) -> Option<String> {
    if let Some(cluster) = &observed.cluster {
        if let Some(f) = cluster.failure.describe() {
            return Some(format!("Cluster failed: {f}"));
        }
        if cluster.phase.as_deref() == Some("Failed") {
            return Some("Cluster is in phase Failed".into());
        }
    }
    if let Some(f) = observed
        .control_plane
        .as_ref()
        .and_then(|cp| cp.failure.describe())
    {
        return Some(format!("KubeadmControlPlane failed: {f}"));
    }
    for machine in &observed.machines {
        if let Some(f) = machine.failure.describe() {
            return Some(format!("Machine {} failed: {f}", machine.name));
        }
        if machine.phase.as_deref() == Some("Failed") {
            return Some(format!("Machine {} is in phase Failed", machine.name));
        }
    }
    if observed.workers.as_ref().and_then(|w| w.phase.as_deref()) == Some("Failed") {
        return Some("MachineDeployment is in phase Failed".into());
    }
    None
}

/// The hosts of the control plane (or of the workers) whose last bootstrap failed, named for a
/// message: BYOH's agent retries them, and the stage's timeout decides when it is a failure.
fn failing_hosts(observed: &Observed, control_plane: bool) -> Option<String> {
    let of_role = |host: &&ByoHostView| {
        observed
            .byo_machines
            .iter()
            .any(|m| Some(&m.name) == host.machine.as_ref() && m.control_plane == control_plane)
    };
    let names: Vec<String> = observed
        .hosts
        .iter()
        .filter(|h| h.bootstrap_failed())
        .filter(of_role)
        .map(|h| match &h.host_id {
            Some(id) => format!("{id} (ByoHost {})", h.name),
            None => format!("ByoHost {}", h.name),
        })
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "bootstrapping the node failed on {} ({BOOTSTRAP_FAILED_REASON}; see the ByoHost's Warning Events); BYOH's agent resets the host and retries",
            names.join(", ")
        )
    })
}

/// The machines of the control plane (or of the workers) whose Node does not report kubelet
/// `version`: Cluster API's `spec.version` says what a machine was asked for, only the Node
/// what runs.
fn nodes_not_at(observed: &Observed, control_plane: bool, version: &str) -> Option<String> {
    let behind: Vec<String> = observed
        .machines
        .iter()
        .filter(|m| m.control_plane == control_plane && !m.deleting)
        .filter(|m| m.kubelet_version.as_deref() != Some(version))
        .map(|m| match &m.kubelet_version {
            Some(running) => format!("{} runs kubelet {running}", m.name),
            None => format!("{} reports no kubelet version yet", m.name),
        })
        .collect();
    (!behind.is_empty()).then(|| format!("waiting for nodes at {version}: {}", behind.join(", ")))
}

/// The machines of the control plane (or of the workers): how many are being deleted, and how
/// many of the `desired` are missing (not there, or being deleted). Cluster API's replica counts
/// are not enough: a MachineSet or KubeadmControlPlane counts a machine being deleted in its
/// replicas (and, while its Node is Ready, in readyReplicas) and makes its replacement only once
/// it is gone (MachineSet `syncReplicas` counts every machine it owns), and its status reports a
/// machine that is gone until it next writes it.
fn machines_short(observed: &Observed, control_plane: bool, desired: i64) -> (usize, usize) {
    let of_role = || {
        observed
            .machines
            .iter()
            .filter(move |m| m.control_plane == control_plane)
    };
    let deleting = of_role().filter(|m| m.deleting).count();
    let present = of_role().filter(|m| !m.deleting).count();
    let missing = usize::try_from(desired)
        .unwrap_or(0)
        .saturating_sub(present);
    (deleting, missing)
}

/// Why the machines of a role do not make it Ready although Cluster API's counts do, if so
/// (checked only then: the counts say more while they are short).
fn machines_message(deleting: usize, missing: usize) -> Option<String> {
    match (deleting, missing) {
        (0, 0) => None,
        (0, missing) => Some(format!("{missing} machine(s) to be created")),
        (deleting, _) => Some(format!("{deleting} machine(s) being deleted")),
    }
}

/// How many machines of the control plane (or of the workers) wait for a free host.
fn hosts_wanted(observed: &Observed, control_plane: bool) -> usize {
    observed
        .byo_machines
        .iter()
        .filter(|m| m.control_plane == control_plane && m.waits_for_host())
        .count()
}

fn control_plane_condition(observed: &Observed) -> Desired {
    let Some(cp) = &observed.control_plane else {
        return Desired::false_(
            CONTROL_PLANE_READY,
            "NotCreated",
            "waiting for the KubeadmControlPlane to be created",
        );
    };
    let counts = format!(
        "{}/{} control-plane nodes ready",
        cp.ready_replicas, cp.desired_replicas
    );
    let waiting_hosts = hosts_wanted(observed, true);
    let at_version = cp.version.as_deref() == Some(cp.desired_version.as_str());
    let behind = nodes_not_at(observed, true, &cp.desired_version);
    let (deleting, missing) = machines_short(observed, true, cp.desired_replicas);
    let counts_ready = !cp.stale
        && cp.initialized
        && cp.ready
        && at_version
        && cp.ready_replicas == cp.desired_replicas
        && cp.updated_replicas == cp.desired_replicas
        && cp.replicas == cp.desired_replicas;
    let short = machines_message(deleting, missing).filter(|_| counts_ready);
    let counted_ready = counts_ready && short.is_none();
    if let Some(short) = short {
        Desired::false_(
            CONTROL_PLANE_READY,
            "WaitingForMachines",
            format!("control plane: {counts}; {short}"),
        )
    } else if counted_ready && let Some(behind) = behind {
        Desired::false_(
            CONTROL_PLANE_READY,
            "NodesNotAtVersion",
            format!("control plane: {behind}"),
        )
    } else if counted_ready {
        Desired::true_(
            CONTROL_PLANE_READY,
            "Ready",
            format!("{counts} at {}", cp.desired_version),
        )
    } else if cp.stale {
        Desired::false_(
            CONTROL_PLANE_READY,
            "Updating",
            "control plane: waiting for Cluster API to act on the new spec",
        )
    } else if let Some(failing) = failing_hosts(observed, true) {
        Desired::false_(
            CONTROL_PLANE_READY,
            "BootstrapFailing",
            format!("control plane: {counts}; {failing}"),
        )
    } else if waiting_hosts > 0 {
        Desired::false_(
            CONTROL_PLANE_READY,
            "WaitingForHosts",
            format!("control plane: {counts}; {waiting_hosts} machine(s) wait for a free host"),
        )
    } else if !cp.initialized {
        Desired::false_(
            CONTROL_PLANE_READY,
            "Initializing",
            format!("control plane: {counts}; waiting for kubeadm init"),
        )
    } else if cp.updated_replicas < cp.desired_replicas || !at_version {
        Desired::false_(
            CONTROL_PLANE_READY,
            "RollingOut",
            format!(
                "control plane: rolling out {}: {}/{} machines updated",
                cp.desired_version, cp.updated_replicas, cp.desired_replicas
            ),
        )
    } else {
        Desired::false_(
            CONTROL_PLANE_READY,
            "WaitingForNodes",
            format!("control plane: {counts}"),
        )
    }
}

fn workers_condition(observed: &Observed) -> Desired {
    let Some(md) = &observed.workers else {
        return Desired::false_(
            WORKERS_READY,
            "NotCreated",
            "waiting for the MachineDeployment to be created",
        );
    };
    let counts = format!(
        "{}/{} worker nodes ready",
        md.ready_replicas, md.desired_replicas
    );
    let waiting_hosts = hosts_wanted(observed, false);
    let behind = md
        .desired_version
        .as_deref()
        .and_then(|version| nodes_not_at(observed, false, version));
    let (deleting, missing) = machines_short(observed, false, md.desired_replicas);
    let counts_ready = !md.stale
        && md.ready_replicas == md.desired_replicas
        && md.updated_replicas == md.desired_replicas
        && md.replicas == md.desired_replicas;
    let short = machines_message(deleting, missing).filter(|_| counts_ready);
    let counted_ready = counts_ready && short.is_none();
    if let Some(short) = short {
        Desired::false_(
            WORKERS_READY,
            "WaitingForMachines",
            format!("workers: {counts}; {short}"),
        )
    } else if counted_ready && let Some(behind) = behind {
        Desired::false_(
            WORKERS_READY,
            "NodesNotAtVersion",
            format!("workers: {behind}"),
        )
    } else if counted_ready {
        Desired::true_(WORKERS_READY, "Ready", counts)
    } else if md.stale {
        Desired::false_(
            WORKERS_READY,
            "Updating",
            "workers: waiting for Cluster API to act on the new spec",
        )
    } else if let Some(failing) = failing_hosts(observed, false) {
        Desired::false_(
            WORKERS_READY,
            "BootstrapFailing",
            format!("workers: {counts}; {failing}"),
        )
    } else if waiting_hosts > 0 {
        Desired::false_(
            WORKERS_READY,
            "WaitingForHosts",
            format!("workers: {counts}; {waiting_hosts} machine(s) wait for a free host"),
        )
    } else if md.replicas > md.desired_replicas {
        Desired::false_(
            WORKERS_READY,
            "ScalingDown",
            format!(
                "workers: {counts}; removing {} machine(s)",
                md.replicas - md.desired_replicas
            ),
        )
    } else if md.updated_replicas < md.desired_replicas && md.replicas == md.desired_replicas {
        Desired::false_(
            WORKERS_READY,
            "RollingOut",
            format!(
                "workers: {}/{} machines updated",
                md.updated_replicas, md.desired_replicas
            ),
        )
    } else {
        Desired::false_(
            WORKERS_READY,
            "WaitingForNodes",
            format!("workers: {counts}"),
        )
    }
}

/// Phase of one target host of a cluster (O2ims resource provisioning phase).
pub fn host_phase(
    host: Option<&ByoHostView>,
    namespace: &str,
    cluster: &str,
) -> ResourceProvisioningPhase {
    match host {
        Some(h) if h.claimed_by_cluster(namespace, cluster) => {
            match (h.bootstrapped, h.bootstrap_reason.as_deref()) {
                (Some(true), _) => ResourceProvisioningPhase::Provisioned,
                (Some(false), Some(BOOTSTRAP_FAILED_REASON)) => ResourceProvisioningPhase::Failed,
                _ => ResourceProvisioningPhase::Processing,
            }
        }
        // Not registered yet, or still held by another cluster.
        _ => ResourceProvisioningPhase::AwaitingFreeResources,
    }
}
