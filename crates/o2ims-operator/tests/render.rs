//! `o2ims-operator render` on the shipped examples and on bad input.

use std::path::Path;
use std::process::{Command, Output};

fn render_with(file: &Path, flags: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_o2ims-operator"))
        .arg("render")
        .arg("-f")
        .arg(file)
        .args(flags)
        .output()
        .expect("o2ims-operator runs")
}

fn render(file: &Path) -> Output {
    render_with(file, &[])
}

#[test]
fn renders_the_example_request() {
    let output = render(&testcluster::repo_root().join("examples/o2ims-provisioning-request.yaml"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let documents: Vec<serde_json::Value> =
        lcm_core::yaml::from_multi_str(&String::from_utf8_lossy(&output.stdout))
            .expect("YAML documents");
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    for kind in [
        "Namespace",
        "Cluster",
        "ByoCluster",
        "KubeadmControlPlane",
        "ByoMachineTemplate",
        "KubeadmConfigTemplate",
        "MachineDeployment",
        "ClusterResourceSet",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

/// Host access as a request would give it.
const HOST_ACCESS: &str = "    hostPreparation: auto
    hostAccess:
      - { id: host-5, address: 172.20.10.15, sshUser: ubuntu }
";

#[test]
fn bad_input_fails_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("o2ims-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let example = std::fs::read_to_string(
        testcluster::repo_root().join("examples/o2ims-provisioning-request.yaml"),
    )
    .expect("example");
    let cases = [
        (
            "even.yaml",
            example.replace("controlPlane: [host-5]", "controlPlane: [host-5, host-8]"),
            "templateParameters.hosts.controlPlane",
        ),
        (
            "template.yaml",
            example.replace(
                "templateName: byoh-workload-cluster",
                "templateName: metal3",
            ),
            "templateName",
        ),
        (
            "version.yaml",
            example.replace("kubernetesVersion: v1.33.5", "kubernetesVersion: 1.26.6"),
            "templateParameters.kubernetesVersion",
        ),
        (
            "host-access.yaml",
            example.replace("    hostPreparation: auto\n", HOST_ACCESS),
            "templateParameters.hostAccess: requests may not say how hosts are reached: not allowed on this O-Cloud",
        ),
        (
            "notyaml.yaml",
            "spec: [".to_string(),
            "is not a ProvisioningRequest",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write");
        let output = render(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} must fail");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{name}: nothing is printed on failure"
        );
    }
    // As the operator with --allow-request-host-access would.
    let allowed = render_with(
        &dir.join("host-access.yaml"),
        &["--allow-request-host-access"],
    );
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let missing = render(&dir.join("absent.yaml"));
    assert!(!missing.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
