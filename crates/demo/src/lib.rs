//! A whole local installation for the demo and the end-to-end tests: a real control plane
//! (built from the Kubernetes sources) with the real Cluster API and BYOH managers, both
//! operators as processes, and the simulators of what cannot run here: the hosts (their BYOH
//! agents and host-preparation Jobs, `byoh-sim`) and the workload clusters
//! (`tools/workload-clusters`).

pub mod argocd;
pub mod rest;
pub mod stack;
mod table;
mod world;

pub use table::{Row, render, rows};
pub use world::{ARGOCD_NAMESPACE, O2IMS_NAMESPACE, Operator, World, WorldOptions};
