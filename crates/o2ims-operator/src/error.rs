#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] operator_kit::apply::ApplyError),
    /// A removed worker runs a Machine that cannot be found yet: lowering the replicas now
    /// could make Cluster API remove another worker, so the scale-in is retried.
    #[error("scale-in waits: {0}")]
    MachineNotFound(String),
    /// The cluster's namespace of an earlier request is still going: retried until it is gone.
    #[error("waiting for namespace {0} to be deleted")]
    NamespaceTerminating(String),
    /// A HostClaim changed between reading and marking it: retried on a fresher cache.
    #[error("host ledger: {0}")]
    Ledger(String),
}

impl Error {
    /// Every label [`Error::metric_label`] gives: their failure counters start at 0.
    pub const METRIC_LABELS: [&'static str; 5] = [
        "kube",
        "apply",
        "machine_not_found",
        "namespace_terminating",
        "ledger",
    ];

    /// Low-cardinality label for the failure metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Apply(_) => "apply",
            Self::MachineNotFound(_) => "machine_not_found",
            Self::NamespaceTerminating(_) => "namespace_terminating",
            Self::Ledger(_) => "ledger",
        }
    }
}

impl Error {
    /// What the API server said when it refused an object (schema validation, admission
    /// policy or webhook, forbidden): trying the same object again cannot succeed, so the
    /// request must say it, not only the log.
    pub fn refusal(&self) -> Option<String> {
        let Self::Apply(operator_kit::apply::ApplyError::Kube {
            kind,
            name,
            source: kube::Error::Api(status),
        }) = self
        else {
            return None;
        };
        matches!(status.code, 400 | 403 | 422).then(|| {
            format!(
                "the API server refused {kind} {name} ({}): {}",
                status.reason, status.message
            )
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
