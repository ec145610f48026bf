//! CRD installation through the API: server-side apply, then wait for `Established`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::conditions::is_crd_established;

use crate::paths::{repo_root, shared_dir};
use crate::wait::wait_until;

const FIELD_MANAGER: &str = "testcluster";
const ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);

/// The CRD directories every test cluster gets: this project's `<repo>/crds` (skipped while it
/// does not exist) and the upstream Cluster API v1.10.10 and BYOH v0.5.0 CRDs from the shared dir.
pub fn crd_dirs() -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let own = repo_root().join("crds");
    if own.is_dir() {
        dirs.push(own);
    }
    let upstream = shared_dir().join("upstream-crds");
    for name in [
        "cluster-api-v1.10.10",
        "cluster-api-provider-bringyourownhost-v0.5.0",
    ] {
        let dir = upstream.join(name);
        if !dir.is_dir() {
            bail!(
                "{} is missing (set LCM_SHARED_DIR to the shared dir)",
                dir.display()
            );
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Applies every CRD in the `*.yaml`/`*.yml` files of `dir` (multi-document files allowed) and
/// waits until each is Established. Returns the CRD names.
pub async fn install_crds(client: &kube::Client, dir: &Path) -> anyhow::Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for crd in read_crds(dir)? {
        api.patch(&crd.name, &params, &Patch::Apply(&crd.manifest))
            .await
            .with_context(|| format!("apply CRD {}", crd.name))?;
        names.push(crd.name);
    }
    for name in &names {
        wait_until(api.clone(), name, is_crd_established(), ESTABLISHED_TIMEOUT)
            .await
            .with_context(|| format!("CRD {name} not Established"))?;
    }
    Ok(names)
}

/// A CRD manifest as written in its file: applied as is, so no field is lost in a round trip
/// through the typed struct.
struct CrdManifest {
    name: String,
    manifest: serde_json::Value,
}

/// Reads the CRDs of one directory, sorted by file name; a missing directory has none.
fn read_crds(dir: &Path) -> anyhow::Result<Vec<CrdManifest>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| {
        path.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
    });
    files.sort();

    let mut crds = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        crds.extend(parse_crds(&text).with_context(|| format!("parse {}", file.display()))?);
    }
    Ok(crds)
}

/// Parses YAML documents that must all be CRDs (the parser skips empty documents).
fn parse_crds(text: &str) -> anyhow::Result<Vec<CrdManifest>> {
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(text)?;
    documents
        .into_iter()
        .filter(|doc| !doc.is_null())
        .map(|manifest| {
            let kind = manifest.get("kind").and_then(|k| k.as_str());
            if kind != Some("CustomResourceDefinition") {
                bail!("a document of kind {kind:?} is not a CustomResourceDefinition");
            }
            // Typed parse only to check that it is a well-formed CRD and to get its name.
            let crd: CustomResourceDefinition = serde_json::from_value(manifest.clone())?;
            let name = crd.metadata.name.context("CRD without metadata.name")?;
            Ok(CrdManifest { name, manifest })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_yaml() -> anyhow::Result<()> {
        let yaml = "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: as.example.com}\nspec: {group: example.com, scope: Namespaced, names: {plural: as, kind: A}, versions: []}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bs.example.com}\nspec: {group: example.com, scope: Namespaced, names: {plural: bs, kind: B}, versions: []}\n";
        let crds = parse_crds(yaml)?;
        let names: Vec<_> = crds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["as.example.com", "bs.example.com"]);
        Ok(())
    }

    #[test]
    fn rejects_other_kinds() {
        let err = parse_crds("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
        assert!(err.is_err());
    }

    #[test]
    fn parses_every_upstream_crd() -> anyhow::Result<()> {
        let mut count = 0;
        for dir in crd_dirs()? {
            count += read_crds(&dir)?.len();
        }
        assert!(
            count >= 21,
            "expected the 13 CAPI + 8 BYOH CRDs, found {count}"
        );
        Ok(())
    }
}
