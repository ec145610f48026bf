//! The I/O edges both operators share: structured logs, Prometheus metrics,
//! `/healthz` + `/readyz` + `/metrics`, leader election on a Lease, and
//! server-side apply that writes only what changed, and read-your-writes over watch caches.

pub mod apply;
pub mod fresh;
pub mod keyed;
pub mod leader;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod watch;

mod options;

pub use options::RuntimeOptions;
