//! byoh-sim's hosts on a real stack: the control plane with the real Cluster API v1.10.10 and
//! BYOH v0.5.0 managers and the workload-cluster simulator, shared by every test of this binary
//! (each in its own namespaces, with its own hosts and control-plane endpoint).

mod agents;
mod common;
mod preparation;
