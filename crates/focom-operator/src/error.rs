#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A call to an O-Cloud's O2ims REST API failed: what was called and why.
    #[error("O2ims REST API: {0}")]
    Rest(String),
}

impl Error {
    /// Every label [`Error::metric_label`] gives: their failure counters start at 0.
    pub const METRIC_LABELS: [&'static str; 2] = ["kube", "rest"];

    /// Low-cardinality label for the failure metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Rest(_) => "rest",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
