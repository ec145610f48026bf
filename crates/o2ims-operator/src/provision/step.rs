//! What a step of the pipeline gives: what it produced, for the steps after it, or the end of
//! the pass: the report to write and when to look again, or an error the controller retries.

use std::time::Duration;

use lcm_core::conditions::Desired;
use lcm_core::template::HostPreparation;

use crate::error::Error;
use crate::report::Report;

/// A step's outcome: `Ok` goes on with what it produced.
pub type Step<T> = std::result::Result<T, Exit>;

/// How a pass ends before its last step.
pub enum Exit {
    /// Boxed: a report is large, and steps pass `Err` around.
    Stop(Box<Stop>),
    Error(Error),
}

impl From<Error> for Exit {
    fn from(error: Error) -> Self {
        Self::Error(error)
    }
}

/// The report a pass writes, and when to look at the request again.
pub struct Stop {
    pub report: Report,
    pub then: Then,
}

/// When to look at a request again, besides on any change its watches bring.
pub enum Then {
    /// On a change only.
    Wait,
    /// At the first stage timeout while it progresses (host preparation's only when the
    /// operator prepares the hosts).
    TimeStages(HostPreparation),
    /// After a while: what holds it back can change where no watch sees it.
    RetryAfter(Duration),
}

impl Stop {
    /// The pass ends here with `report`.
    pub fn exit<T>(report: Report, then: Then) -> Step<T> {
        Err(Exit::Stop(Box::new(Self { report, then })))
    }

    /// A request that failed before anything was created.
    pub fn failed<T>(condition: Desired) -> Step<T> {
        Self::exit(Report::failed(condition), Then::Wait)
    }
}
