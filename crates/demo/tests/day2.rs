//! Day 2 end to end: the shipped inventory's clusters, fulfilled, are registered in ArgoCD,
//! and the example ApplicationSets' cluster generators select the right ones. The selection is
//! evaluated by the API server, as ArgoCD's cluster generator evaluates it (a label selector
//! over the cluster Secrets); deleting the clusters removes their registrations.

use std::time::Duration;

use demo::{ARGOCD_NAMESPACE, World, WorldOptions};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(90);
const NS: &str = "focom-system";

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A label selector (matchLabels, matchExpressions) as the API server's selector syntax.
fn selector_string(selector: &Value) -> String {
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for expression in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = expression["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        terms.push(match expression["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => panic!("unknown operator {other}"),
        });
    }
    terms.join(",")
}

async fn phase(api: &Api<FocomProvisioningRequest>, wanted: FocomPhase) -> anyhow::Result<()> {
    testcluster::wait_for(&format!("all-clusters {wanted:?}"), TIMEOUT, || async {
        let phase = api.get("all-clusters").await?.status.and_then(|s| s.phase);
        Ok((phase == Some(wanted)).then_some(()))
    })
    .await
}

#[tokio::test]
async fn the_example_application_sets_route_to_the_clusters_of_their_sites() -> anyhow::Result<()> {
    let mut options = WorldOptions::from_inventory(&repository_file("input.json"))?;
    options.o2ims_args = vec!["--argocd-namespace".into(), ARGOCD_NAMESPACE.into()];
    let world = World::start(options).await?;
    let client = world.client()?;
    world
        .apply_manifest(&repository_file("examples/focom-all-clusters.yaml"))
        .await?;
    let requests = Api::<FocomProvisioningRequest>::namespaced(client.clone(), NS);
    phase(&requests, FocomPhase::Synced).await?;

    let secrets = Api::<Secret>::namespaced(client.clone(), ARGOCD_NAMESPACE);
    let application_sets: Vec<Value> =
        lcm_core::yaml::from_multi_str(&repository_file("examples/applicationset.yaml"))?;
    // input.json: core's hosts are at site edge1, edge's at edge2.
    let expected = [
        ("near-rt-ric", vec!["near-rt-ric-core", "near-rt-ric-edge"]),
        ("o-cu", vec!["o-cu-core"]),
        ("o-du", vec!["o-du-edge"]),
    ];
    for (name, applications) in expected {
        let set = application_sets
            .iter()
            .find(|s| s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("ApplicationSet {name}"));
        let selector = selector_string(&set["spec"]["generators"][0]["clusters"]["selector"]);
        let selected = secrets
            .list(&ListParams::default().labels(&format!(
                "argocd.argoproj.io/secret-type=cluster,{selector}"
            )))
            .await?;
        let template = set["spec"]["template"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let mut generated: Vec<String> = selected
            .items
            .iter()
            .map(|s| {
                let cluster = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get("name"))
                    .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                    .unwrap_or_default();
                template.replace("{{name}}", &cluster)
            })
            .collect();
        generated.sort();
        assert_eq!(
            generated, applications,
            "ApplicationSet {name} ({selector})"
        );
    }

    requests
        .patch(
            "all-clusters",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"operation": "delete"}})),
        )
        .await?;
    phase(&requests, FocomPhase::Deleted).await?;
    let left: Vec<String> = secrets
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert!(left.is_empty(), "registrations left: {left:?}");
    Ok(())
}
