//! Test support for `deploy/`: where the chart, the overlays, helm and the operator binaries are;
//! rendering and comparing manifests; applying rendered objects. ServiceAccount kubeconfigs and
//! the Cluster API drivers come from `testcluster`.

mod manifests;
mod paths;

pub use manifests::{
    api_for, apply, compare, helm_template, kustomize, named, normalize, parse_manifests,
};
pub use paths::{chart_dir, helm, operator_binary, repo_root, run};
