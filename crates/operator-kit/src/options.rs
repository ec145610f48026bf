use std::net::SocketAddr;

use crate::telemetry::LogFormat;

/// Command-line options every operator takes (each also readable from the environment).
#[derive(clap::Args, Clone, Debug)]
pub struct RuntimeOptions {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Reconcile only while holding the Lease, so two replicas never both act.
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub pod_namespace: String,
    /// Identity in the Lease (the pod's name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// How many objects are reconciled at once (0: no limit). A fleet changing at once queues
    /// instead of crowding the API server and holding every object's copies in memory together.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
}
