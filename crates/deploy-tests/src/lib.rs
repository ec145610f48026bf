//! Test support for `deploy/` and the docs: where the chart, the overlays, helm and the operator binaries are;
//! rendering and comparing manifests; applying rendered objects. ServiceAccount kubeconfigs and
//! the Cluster API drivers come from `testcluster`.

pub mod docs;
mod manifests;
pub mod monitoring;
mod paths;
pub mod promql;

pub use manifests::{
    API_EXTERNAL_URL, api_for, apply, compare, helm_template, kustomize, named, normalize,
    parse_manifests,
};
pub use paths::{chart_dir, helm, operator_binary, prometheus_operator_crds, repo_root, run};

/// Passes when the API server refused `result` with 403 Forbidden: RBAC, not another error.
pub fn expect_refused<T>(what: &str, result: kube::Result<T>) -> anyhow::Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(()),
        Err(e) => anyhow::bail!("{what}: expected 403 Forbidden, got {e}"),
        Ok(_) => anyhow::bail!("{what}: allowed, but RBAC does not grant it"),
    }
}
