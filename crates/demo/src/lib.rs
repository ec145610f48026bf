//! A whole local installation for the demo and the end-to-end tests: a real control plane
//! (built from the Kubernetes sources), both operators as processes, and the infrastructure
//! simulator playing the hosts, the host-preparation Jobs and Cluster API + BYOH.

pub mod argocd;
pub mod rest;
mod table;
mod world;

pub use table::{Row, render, rows};
pub use world::{ARGOCD_NAMESPACE, O2IMS_NAMESPACE, Operator, World, WorldOptions};
