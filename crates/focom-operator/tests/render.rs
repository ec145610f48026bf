//! `focom-operator render` on the shipped examples and on bad input.

use std::path::Path;
use std::process::{Command, Output};

use lcm_core::crd::ProvisioningRequest;

fn render(file: &Path, inventory: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_focom-operator"))
        .arg("render")
        .arg("-f")
        .arg(file)
        .arg("--inventory")
        .arg(inventory)
        .output()
        .expect("focom-operator runs")
}

fn rendered(example: &str) -> Vec<ProvisioningRequest> {
    let output = render(
        &testcluster::repo_root().join("examples").join(example),
        &testcluster::repo_root().join("input.json"),
    );
    assert!(
        output.status.success(),
        "{example}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    lcm_core::yaml::from_multi_str(&String::from_utf8_lossy(&output.stdout))
        .expect("ProvisioningRequests")
}

fn cluster_names(requests: &[ProvisioningRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            r.spec.template_parameters["clusterName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn renders_each_selection_mode() {
    assert_eq!(
        cluster_names(&rendered("focom-all-clusters.yaml")),
        ["core", "edge"]
    );
    assert_eq!(
        cluster_names(&rendered("focom-provisioning-request.yaml")),
        ["core"]
    );
    assert_eq!(
        cluster_names(&rendered("focom-template-request.yaml")),
        ["lab"]
    );
}

#[test]
fn rendering_twice_gives_the_same_names() {
    let first: Vec<_> = rendered("focom-all-clusters.yaml")
        .into_iter()
        .map(|r| r.metadata.name)
        .collect();
    let second: Vec<_> = rendered("focom-all-clusters.yaml")
        .into_iter()
        .map(|r| r.metadata.name)
        .collect();
    assert_eq!(first, second);
}

#[test]
fn bad_input_fails_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("focom-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let by_name = std::fs::read_to_string(
        testcluster::repo_root().join("examples/focom-provisioning-request.yaml"),
    )
    .expect("example");
    let inventory = testcluster::repo_root().join("input.json");
    let unknown = dir.join("unknown.yaml");
    std::fs::write(
        &unknown,
        by_name.replace("clusterNames: [core]", "clusterNames: [core, metro]"),
    )
    .expect("write");
    let output = render(&unknown, &inventory);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("spec.clusterNames[1]: no cluster `metro`")
    );

    // What the CRD would refuse is refused here too: two selectors.
    let two = dir.join("two.yaml");
    std::fs::write(
        &two,
        by_name.replace(
            "clusterNames: [core]",
            "clusterNames: [core]\n  allClusters: true",
        ),
    )
    .expect("write");
    let output = render(&two, &inventory);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("spec: exactly one of"), "{stderr}");

    let broken_inventory = dir.join("input.json");
    let text = std::fs::read_to_string(&inventory)
        .expect("inventory")
        .replace(
            "\"workerHosts\": [\"host-2\"]",
            "\"workerHosts\": \"host-2\"",
        );
    std::fs::write(&broken_inventory, text).expect("write");
    let output = render(
        &testcluster::repo_root().join("examples/focom-provisioning-request.yaml"),
        &broken_inventory,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at clusters[0].workerHosts:"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
