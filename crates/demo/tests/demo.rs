//! `lcm-demo` (what `make demo` runs) as a person runs it: exit 0 with every cluster Synced,
//! non-zero with the reason when a cluster fails or time runs out, and with KEEP=1 a cluster to
//! use until Ctrl-C, which stops everything.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kube::Api;
use lcm_core::crd::{FocomPhase, FocomProvisioningRequest};
use testcluster::processes::{descendants, wait_gone};
use tokio::io::{AsyncBufReadExt, BufReader};

const DEMO: &str = env!("CARGO_BIN_EXE_lcm-demo");

fn demo(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(DEMO)
        .args(args)
        .current_dir(testcluster::repo_root())
        .env_remove("KEEP")
        .output()?)
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_demo_ends_with_every_cluster_synced() -> anyhow::Result<()> {
    let output = demo(&[])?;
    let stdout = text_of(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        text_of(&output.stderr)
    );
    let last_table: Vec<&str> = stdout
        .rsplit("\n\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .collect();
    for cluster in ["core", "edge"] {
        assert!(
            last_table
                .iter()
                .any(|l| l.starts_with(cluster) && l.contains("Synced") && l.contains("fulfilled")),
            "{cluster} in the final table: {last_table:?}"
        );
    }
    assert!(stdout.contains("all clusters Synced in"), "{stdout}");
    // The SMO's view over REST: the curl to run, and both requests FULFILLED.
    assert!(
        stdout.contains("curl --cacert ")
            && stdout.contains("/o2ims-infrastructureProvisioning/v1/provisioningRequests"),
        "{stdout}"
    );
    let after = stdout
        .split("all clusters Synced in")
        .nth(1)
        .unwrap_or_default();
    for cluster in ["core", "edge"] {
        assert!(
            after
                .lines()
                .any(|l| l.contains("FULFILLED") && l.contains(&format!("  {cluster}  "))),
            "{cluster} listed over REST: {after}"
        );
    }
    // Day 2: both clusters registered in ArgoCD, at their endpoints (input.json), with their
    // sites (their hosts') and roles, and the kubeconfig's TLS credentials.
    let day2 = after
        .split("registered in ArgoCD")
        .nth(1)
        .unwrap_or_default();
    for (cluster, server, labels) in [
        ("core", "https://172.20.10.100:6443", "site=edge1 role=cu"),
        ("edge", "https://172.20.10.101:6443", "site=edge2 role=du"),
    ] {
        assert!(
            day2.lines().any(|l| l.contains(&format!("Secret argocd/cluster-{cluster}: name {cluster}, server {server}, {labels}; TLS CA, client certificate, client key"))),
            "{cluster} registered in ArgoCD: {day2}"
        );
    }
    Ok(())
}

/// The clusters a shipped request selects, read from its file as a user reads it: the names it
/// lists, the one it describes, or every cluster of the inventory.
fn selected_clusters(request: &FocomProvisioningRequest) -> anyhow::Result<Vec<String>> {
    let spec = &request.spec;
    if let Some(names) = &spec.cluster_names {
        return Ok(names.clone());
    }
    if let Some(name) = spec
        .template_parameters
        .as_ref()
        .and_then(|p| p["clusterName"].as_str())
    {
        return Ok(vec![name.to_string()]);
    }
    let inventory: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        testcluster::repo_root().join("input.json"),
    )?)?;
    Ok(inventory["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect())
}

#[test]
fn every_shipped_request_runs_and_the_demo_shows_what_it_selected() -> anyhow::Result<()> {
    let examples = testcluster::repo_root().join("examples");
    let mut ran = Vec::new();
    let mut all = std::fs::read_dir(&examples)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    all.sort();
    for path in all {
        let text = std::fs::read_to_string(&path)?;
        let documents: Vec<serde_json::Value> = lcm_core::yaml::from_multi_str(&text)?;
        let [object] = documents.as_slice() else {
            continue;
        };
        if object["kind"] != "FocomProvisioningRequest" {
            continue;
        }
        let request: FocomProvisioningRequest = serde_json::from_value(object.clone())?;
        let selected = selected_clusters(&request)?;
        let output = demo(&["--example", &path.to_string_lossy()])?;
        let stdout = text_of(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {stdout}{}",
            path.display(),
            text_of(&output.stderr)
        );
        let (tables, after) = stdout
            .split_once("all clusters Synced in")
            .unwrap_or_default();
        let last_table = tables.trim_end().rsplit("\n\n").next().unwrap_or_default();
        let rows: Vec<&str> = last_table.lines().skip(2).collect();
        assert_eq!(
            rows.len(),
            selected.len(),
            "{}: {last_table}",
            path.display()
        );
        for cluster in &selected {
            assert!(
                rows.iter()
                    .any(|l| l.starts_with(&format!("{cluster} ")) && l.contains("Synced")),
                "{}: {cluster} Synced in the final table: {last_table}",
                path.display()
            );
        }
        let registered: Vec<&str> = after
            .lines()
            .filter(|l| l.contains("Secret argocd/cluster-"))
            .collect();
        assert_eq!(
            registered.len(),
            selected.len(),
            "{}: {after}",
            path.display()
        );
        for cluster in &selected {
            assert!(
                registered
                    .iter()
                    .any(|l| l.contains(&format!("argocd/cluster-{cluster}:"))),
                "{}: {cluster} registered in ArgoCD: {after}",
                path.display()
            );
        }
        ran.push(
            path.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert_eq!(
        ran,
        [
            "focom-all-clusters.yaml",
            "focom-provisioning-request.yaml",
            "focom-template-request.yaml"
        ],
        "the shipped FocomProvisioningRequests"
    );
    Ok(())
}

#[test]
fn a_failed_cluster_or_the_deadline_exits_non_zero_with_the_reason() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("lcm-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let example = std::fs::read_to_string(
        testcluster::repo_root().join("examples/focom-provisioning-request.yaml"),
    )?;
    let unknown = dir.join("unknown-cluster.yaml");
    std::fs::write(
        &unknown,
        example.replace("clusterNames: [core]", "clusterNames: [metro]"),
    )?;
    let failed = demo(&["--example", unknown.to_str().unwrap_or_default()])?;
    assert_eq!(failed.status.code(), Some(1));
    let stderr = text_of(&failed.stderr);
    assert!(
        stderr.contains("failed") && stderr.contains("no cluster `metro`"),
        "{stderr}"
    );

    let late = demo(&["--timeout-seconds", "1"])?;
    assert_eq!(late.status.code(), Some(1));
    assert!(
        text_of(&late.stderr).contains("timed out after 1s"),
        "{}",
        text_of(&late.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[tokio::test]
async fn keep_leaves_a_usable_cluster_until_ctrl_c_stops_everything() -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(DEMO)
        .current_dir(testcluster::repo_root())
        .env("KEEP", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let kubeconfig = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(path) = line.trim().strip_prefix("export KUBECONFIG=") {
                return anyhow::Ok(path.to_string());
            }
        }
        anyhow::bail!("lcm-demo ended without printing the kubeconfig")
    })
    .await??;

    // The printed kubeconfig reaches the cluster the demo provisioned.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let client = kube::Client::try_from(config)?;
    let request = Api::<FocomProvisioningRequest>::namespaced(client, "focom-system")
        .get("all-clusters")
        .await?;
    assert_eq!(
        request.status.and_then(|s| s.phase),
        Some(FocomPhase::Synced)
    );

    let running = descendants(pid);
    assert!(
        running.len() >= 4,
        "the control plane and both operators run under the demo: {running:?}"
    );
    let signal = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    assert!(signal.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert_eq!(status.code(), Some(130), "Ctrl-C's exit status");
    wait_gone(
        "everything the demo started to stop",
        &running,
        Duration::from_secs(30),
    )
    .await?;
    assert!(
        !std::path::Path::new(&kubeconfig).exists(),
        "the control plane's temp dir is removed"
    );
    Ok(())
}
