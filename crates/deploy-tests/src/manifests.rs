//! Rendered manifests: the chart and the overlays rendered, compared, and applied.

use std::collections::BTreeMap;

use anyhow::Context;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::Value;

use crate::paths::{chart_dir, helm, repo_root, run, tool};

/// Release and namespace as mgmt.sh installs the chart.
const RELEASE: &str = "oran-lcm";
const RELEASE_NAMESPACE: &str = "oran-lcm-system";

/// What Helm adds that kustomize does not (and need not): chart labels and the keep policy.
const HELM_ONLY: [&str; 3] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "helm.sh/resource-policy",
];

/// The O2ims API's URL in the kustomize base (`EXTERNAL_URL`), which [`helm_template`] gives the
/// chart as `api.externalUrl` (the chart requires one).
pub const API_EXTERNAL_URL: &str = "https://o2ims-api.o2ims-system.svc:8443";

/// `helm template` of the chart, CRDs included, with `api.externalUrl` [`API_EXTERNAL_URL`]
/// (`args` may set another, or an empty one) and extra arguments (`--set`, `--set-file`).
pub fn helm_template(args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let chart = chart_dir();
    let chart = chart.to_str().context("chart path")?;
    let external_url = format!("api.externalUrl={API_EXTERNAL_URL}");
    let mut all = vec![
        "template",
        RELEASE,
        chart,
        "--namespace",
        RELEASE_NAMESPACE,
        "--include-crds",
        "--set",
        &external_url,
    ];
    all.extend_from_slice(args);
    parse_manifests(&run(&helm()?, &all)?)
}

/// `kustomize build deploy/kustomize/<dir>` (kustomize from `deploy/install-tools.sh`).
pub fn kustomize(dir: &str) -> anyhow::Result<Vec<Value>> {
    let path = repo_root().join("deploy/kustomize").join(dir);
    let path = path.to_str().context("kustomize path")?;
    parse_manifests(&run(&tool("kustomize")?, &["build", path])?)
}

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn parse_manifests(text: &str) -> anyhow::Result<Vec<Value>> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).context("parsing manifests")?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

fn key(object: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let metadata = &object["metadata"];
    format!(
        "{} {} {}/{}",
        text(&object["apiVersion"]),
        text(&object["kind"]),
        text(&metadata["namespace"]),
        text(&metadata["name"])
    )
}

/// Removes Helm-only labels and annotations everywhere (metadata and pod templates), and the
/// maps left empty.
fn strip_helm_only(value: &mut Value) {
    let Some(map) = value.as_object_mut() else {
        if let Some(items) = value.as_array_mut() {
            items.iter_mut().for_each(strip_helm_only);
        }
        return;
    };
    for field in ["labels", "annotations"] {
        if let Some(Value::Object(entries)) = map.get_mut(field) {
            HELM_ONLY.iter().for_each(|k| {
                entries.remove(*k);
            });
            if entries.is_empty() {
                map.remove(field);
            }
        }
    }
    map.values_mut().for_each(strip_helm_only);
}

/// Objects by `apiVersion kind namespace/name`, without what only Helm adds.
pub fn normalize(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut object| {
            strip_helm_only(&mut object);
            (key(&object), object)
        })
        .collect()
}

/// Every difference between two normalized renders, as `object: path: what`.
pub fn compare(
    left_name: &str,
    left: &BTreeMap<String, Value>,
    right_name: &str,
    right: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, object) in left {
        match right.get(key) {
            None => problems.push(format!("{key}: only in {left_name}")),
            Some(other) => {
                let mut found = Vec::new();
                differences(object, other, "", &mut found);
                problems.extend(
                    found
                        .into_iter()
                        .map(|d| format!("{key}: {d} ({left_name} vs {right_name})")),
                );
            }
        }
    }
    problems.extend(
        right
            .keys()
            .filter(|k| !left.contains_key(*k))
            .map(|k| format!("{k}: only in {right_name}")),
    );
    problems
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

fn differences(left: &Value, right: &Value, path: &str, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            for (k, lv) in l {
                let here = format!("{path}/{k}");
                match r.get(k) {
                    Some(rv) => differences(lv, rv, &here, out),
                    None => out.push(format!("{here}: {} vs (absent)", short(lv))),
                }
            }
            for (k, rv) in r.iter().filter(|(k, _)| !l.contains_key(*k)) {
                out.push(format!("{path}/{k}: (absent) vs {}", short(rv)));
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (lv, rv)) in l.iter().zip(r).enumerate() {
                differences(lv, rv, &format!("{path}/{i}"), out);
            }
        }
        _ if left != right => out.push(format!("{path}: {} vs {}", short(left), short(right))),
        _ => {}
    }
}

/// The object of `kind` named `name` in `objects`.
pub fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> anyhow::Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} in the rendered manifests"))
}

/// The API of `object`'s kind, found by discovery (namespaced in its namespace, or cluster-wide).
pub async fn api_for(client: &kube::Client, object: &Value) -> anyhow::Result<Api<DynamicObject>> {
    let api_version = object["apiVersion"].as_str().context("apiVersion")?;
    let kind = object["kind"].as_str().context("kind")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (resource, capabilities) =
        pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .with_context(|| format!("discovery of {api_version} {kind}"))?;
    Ok(
        match (capabilities.scope, object["metadata"]["namespace"].as_str()) {
            (Scope::Namespaced, Some(namespace)) => {
                Api::namespaced_with(client.clone(), namespace, &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        },
    )
}

/// Server-side applies `object` with strict field validation (an unknown or duplicate field is
/// an error), for real or as a dry run.
pub async fn apply(client: &kube::Client, object: &Value, dry_run: bool) -> anyhow::Result<()> {
    let name = object["metadata"]["name"]
        .as_str()
        .context("metadata.name")?;
    let mut params = PatchParams::apply("deploy-tests")
        .force()
        .validation_strict();
    if dry_run {
        params = params.dry_run();
    }
    api_for(client, object)
        .await?
        .patch(name, &params, &Patch::Apply(object))
        .await
        .with_context(|| format!("applying {}", key(object)))?;
    Ok(())
}
