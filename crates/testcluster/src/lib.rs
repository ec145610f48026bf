//! Test support: a real Kubernetes control plane for integration tests (and [`check_layers`],
//! which keeps a crate's modules depending one way).
//!
//! [`TestCluster::shared`] starts one control plane per test binary (the Go harness in
//! `tools/testcluster`: etcd, kube-apiserver v1.36 with RBAC, and kube-controller-manager with the
//! garbage-collector and namespace controllers), with this project's CRDs and the upstream Cluster
//! API / BYOH CRDs installed. Tests share it and isolate themselves with [`TestCluster::namespace`].
//!
//! Build the harness first: `tools/testcluster/build.sh`.
//!
//! Environment:
//! - `TEST_KUBECONFIG`: use this running cluster instead of starting one (CRDs are applied to it).
//! - `TESTCLUSTER_BIN`: the harness binary (default `<repo>/tools/testcluster/bin/testcluster`).
//! - `LCM_SHARED_DIR`: the shared material (default `<repo>/../shared`).
//!
//! Clients are cheap to create and tied to the tokio runtime that creates them (each
//! `#[tokio::test]` has its own), so the cluster hands out new clients instead of storing one.

pub mod api_server;
mod audit;
pub mod capi;
mod clients;
mod cluster;
mod crds;
pub mod diagnostics;
mod harness;
mod layers;
mod namespace;
pub mod openapi;
mod operator;
mod paths;
pub mod processes;
mod strict;
mod wait;
mod writes;

pub use audit::{AUDIT_WRITE_VERBS, AuditLog, Logged, is_write as is_audit_write};
pub use cluster::{BYOH_AGENT_CHECKSUM, HOST_PREPARATION_IMAGE, TestCluster};
pub use crds::{crd_dirs, install_crds};
pub use layers::check_layers;
pub use namespace::TestNamespace;
pub use operator::OperatorProcess;
pub use paths::{harness_binary, repo_root, shared_dir, workspace_binary};
pub use strict::create_strict;
pub use wait::{time_changes, wait_for, wait_until};
pub use writes::{WRITE_VERBS, reads_since, requests, writes};

/// A note for the person running the tests. Written to the stderr handle directly because libtest
/// captures `eprintln!`, and e.g. the control plane's start-up time should show without
/// `--nocapture`.
fn notice(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "testcluster: {message}");
}
