//! Test support for `deploy/`: where the chart, the overlays, helm and the operator binaries are;
//! rendering and comparing manifests; applying rendered objects; ServiceAccount kubeconfigs; and
//! Cluster API status written the way its controllers would ([`capi`]).

pub mod capi;
mod manifests;
mod paths;
mod service_account;

pub use manifests::{
    api_for, apply, compare, helm_template, kustomize, named, normalize, parse_manifests,
};
pub use paths::{chart_dir, helm, operator_binary, repo_root, run};
pub use service_account::write_kubeconfig;
