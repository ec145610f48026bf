//! Every object `o2ims-operator render` produces for the examples is accepted by the real API
//! server under the upstream Cluster API / BYOH schemas with strict field validation.

use std::path::PathBuf;
use std::process::Command;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use lcm_core::crd::FocomProvisioningRequest;
use lcm_core::inventory::Inventory;
use serde_json::{Value, json};

fn run(binary: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .args(args)
        .current_dir(testcluster::repo_root())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{binary} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The ProvisioningRequests of every example: the O2IMS one, and those the FOCOM examples become.
fn example_requests() -> anyhow::Result<Vec<PathBuf>> {
    let dir = std::env::temp_dir().join(format!("render-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut files = vec![testcluster::repo_root().join("examples/o2ims-provisioning-request.yaml")];
    let inventory = Inventory::parse(
        "input.json",
        &std::fs::read_to_string(testcluster::repo_root().join("input.json"))?,
    )?;
    for example in [
        "focom-all-clusters.yaml",
        "focom-provisioning-request.yaml",
        "focom-template-request.yaml",
    ] {
        // What `focom-operator render` prints for the example.
        let focom: FocomProvisioningRequest = lcm_core::yaml::from_str(&std::fs::read_to_string(
            testcluster::repo_root().join("examples").join(example),
        )?)?;
        let selected = lcm_core::focom::select(&focom, Some(&inventory))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (i, cluster) in selected.iter().enumerate() {
            let request = lcm_core::focom::provisioning_request(&focom, cluster);
            let path = dir.join(format!("{example}-{i}.yaml"));
            std::fs::write(&path, lcm_core::yaml::to_string(&request)?)?;
            files.push(path);
        }
    }
    Ok(files)
}

fn api(client: &kube::Client, object: &Value) -> Api<DynamicObject> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &format!("{}s", kind.to_lowercase()),
    );
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

#[tokio::test]
async fn rendered_objects_satisfy_the_upstream_schemas_strictly() -> anyhow::Result<()> {
    let cluster = testcluster::TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let strict = PatchParams::apply("render-test").validation_strict();
    let mut checked = 0;
    let mut namespaces = std::collections::BTreeSet::new();
    for request in example_requests()? {
        let manifest = std::fs::write(
            testcluster::repo_root().join("target/calico-test.yaml"),
            "kind: List\n",
        )
        .map(|_| "target/calico-test.yaml")?;
        let rendered = run(
            env!("CARGO_BIN_EXE_o2ims-operator"),
            &[
                "render",
                "-f",
                request.to_str().unwrap_or_default(),
                "--calico-manifest",
                manifest,
            ],
        )?;
        let objects: Vec<Value> = lcm_core::yaml::from_multi_str(&rendered)?;
        for object in &objects {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            // The namespace must exist for the dry runs of what goes into it.
            let params = if object["kind"] == "Namespace" {
                namespaces.insert(name.to_string());
                strict.clone()
            } else {
                strict.clone().dry_run()
            };
            api(&client, object)
                .patch(name, &params, &Patch::Apply(object))
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{} {name} from {} is rejected: {e}",
                        object["kind"],
                        request.display()
                    )
                })?;
            checked += 1;
        }
        // The check is strict: a misplaced field in the same objects is refused.
        let mut misplaced = objects
            .iter()
            .find(|o| o["kind"] == "KubeadmControlPlane")
            .cloned()
            .expect("a control plane");
        misplaced["spec"]["machineTemplate"]["selector"] = json!({"matchLabels": {"a": "b"}});
        let error = api(&client, &misplaced)
            .patch(
                misplaced["metadata"]["name"].as_str().unwrap_or_default(),
                &strict.clone().dry_run(),
                &Patch::Apply(&misplaced),
            )
            .await
            .expect_err("an unknown field must be rejected");
        assert!(error.to_string().contains("selector"), "{error}");
    }
    assert!(
        checked >= 40,
        "every example's objects were checked ({checked})"
    );
    // Only the namespaces were created: remove them, so a reused control plane stays clean.
    let namespace_api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    for namespace in namespaces {
        namespace_api
            .delete(&namespace, &Default::default())
            .await?;
    }
    Ok(())
}
