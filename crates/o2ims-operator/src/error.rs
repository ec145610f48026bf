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

pub type Result<T, E = Error> = std::result::Result<T, E>;
