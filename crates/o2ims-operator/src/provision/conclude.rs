//! Report: a progressing request whose stage ran out of time fails; the status is written; the
//! pass says when to look again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;

use lcm_core::conditions::Desired;
use lcm_core::crd::{ProvisioningRequest, ProvisioningState};
use lcm_core::template::HostPreparation;

use super::step::{Stop, Then};
use crate::config::Config;
use crate::context::Context;
use crate::error::Result;
use crate::report::{self, CLUSTER_PROVISIONED, HOSTS_PREPARED, Report};
use crate::status;

/// Writes the report `stop` concludes with, and says when to look again.
pub async fn conclude(ctx: &Context, request: &ProvisioningRequest, stop: Stop) -> Result<Action> {
    let (report, look_again) = timed(&ctx.config, request, stop, jiff::Timestamp::now());
    status::write(ctx, request, &report).await?;
    ctx.refresh_state_metrics();
    Ok(look_again.map_or_else(Action::await_change, Action::requeue))
}

/// The report with its stage timeouts applied at `now`, and how long until the request is to be
/// looked at again (`None`: on a change only).
fn timed(
    config: &Config,
    request: &ProvisioningRequest,
    Stop { mut report, then }: Stop,
    now: jiff::Timestamp,
) -> (Report, Option<Duration>) {
    let look_again = match then {
        Then::Wait => None,
        Then::RetryAfter(after) => Some(after),
        Then::TimeStages(_) if report.state != ProvisioningState::Progressing => None,
        Then::TimeStages(host_preparation) => {
            match timeouts(config, request, &report, host_preparation, now) {
                Ok(next) => next,
                Err(message) => {
                    report.state = ProvisioningState::Failed;
                    report.conditions.push(Desired::false_(
                        CLUSTER_PROVISIONED,
                        "TimedOut",
                        message.clone(),
                    ));
                    report.message = message;
                    None
                }
            }
        }
    };
    if let Some(node) = report.node_cluster.as_mut() {
        node.resource_provisioning_phase = report::node_cluster_phase(report.state);
    }
    (report, look_again)
}

/// The earliest stage deadline, or the message of a stage that exceeded it.
fn timeouts(
    config: &Config,
    request: &ProvisioningRequest,
    report: &Report,
    host_preparation: HostPreparation,
    now: jiff::Timestamp,
) -> std::result::Result<Option<Duration>, String> {
    let status = report::next_status(request, report, &Time(now));
    let timeouts = config.stage_timeouts();
    let mut earliest: Option<Duration> = None;
    for (stage, since) in report::running_stage_clocks(&status) {
        if stage == HOSTS_PREPARED && host_preparation != HostPreparation::Auto {
            continue;
        }
        let Some((_, seconds)) = timeouts.iter().find(|(timed, _)| *timed == stage) else {
            continue;
        };
        match report::stage_deadline(&status, stage, Config::timeout(*seconds), Some(since), now) {
            Some(Err(message)) => return Err(message),
            Some(Ok(left)) => earliest = Some(earliest.map_or(left, |e| e.min(left))),
            None => {}
        }
    }
    Ok(earliest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CONTROL_PLANE_READY, WORKERS_READY};
    use lcm_core::crd::ProvisioningRequestSpec;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    /// A request whose control plane has been initializing since midnight, its report and
    /// when to look again timed at `now`, after `then`.
    fn initializing_timed_at(now: &str, then: Then) -> (Report, Option<Duration>) {
        let report = Report::new(
            ProvisioningState::Progressing,
            "initializing",
            vec![
                Desired::false_(CONTROL_PLANE_READY, "Initializing", "kubeadm init"),
                Desired::false_(WORKERS_READY, "WaitingForNodes", "0/1 ready"),
            ],
        );
        let mut request = ProvisioningRequest::new("r", ProvisioningRequestSpec::default());
        let midnight = Time(at("2026-01-01T00:00:00Z"));
        request.status = Some(report::next_status(&request, &report, &midnight));
        let stop = Stop { report, then };
        timed(&Config::parse(&[]), &request, stop, at(now))
    }

    #[test]
    fn a_progressing_request_is_looked_at_again_at_its_first_stage_deadline() {
        let then = Then::TimeStages(HostPreparation::Auto);
        let (report, look_again) = initializing_timed_at("2026-01-01T00:10:00Z", then);
        assert_eq!(report.state, ProvisioningState::Progressing);
        assert_eq!(look_again, Some(Duration::from_secs(1200)));
    }

    #[test]
    fn a_stage_past_its_timeout_fails_the_request() {
        let then = Then::TimeStages(HostPreparation::Auto);
        let (report, look_again) = initializing_timed_at("2026-01-01T00:31:00Z", then);
        assert_eq!(
            (report.state, look_again),
            (ProvisioningState::Failed, None)
        );
        let timed_out = report.conditions.last().expect("condition");
        assert_eq!(
            (timed_out.type_, timed_out.reason.as_str()),
            (CLUSTER_PROVISIONED, "TimedOut")
        );
        assert!(
            report
                .message
                .starts_with("ControlPlaneReady is still False after 1860s")
        );
    }

    #[test]
    fn a_retry_or_a_wait_runs_no_clock() {
        let late = "2026-01-02T00:00:00Z";
        let retry = Then::RetryAfter(Duration::from_secs(2));
        let (kept, look_again) = initializing_timed_at(late, retry);
        assert_eq!(kept.state, ProvisioningState::Progressing);
        assert_eq!(look_again, Some(Duration::from_secs(2)));
        let (kept, look_again) = initializing_timed_at(late, Then::Wait);
        assert_eq!(
            (kept.state, look_again),
            (ProvisioningState::Progressing, None)
        );
    }
}
