//! The chart and the kustomize overlays, rendered: in sync with the repository, lint-clean,
//! identical to each other, and using only flags and variables the operators read. No cluster.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, ensure};
use deploy_tests::{
    chart_dir, compare, helm, helm_template, kustomize, named, normalize, operator_binary,
    repo_root, run,
};
use serde_json::{Value, json};

const INVENTORY: &str = "inventory.json=input.json";

fn files(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        names.insert(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

#[test]
fn chart_crds_are_the_repository_crds() -> anyhow::Result<()> {
    let (repo, chart) = (repo_root().join("crds"), chart_dir().join("crds"));
    let names = files(&repo)?;
    ensure!(!names.is_empty(), "no CRDs in {}", repo.display());
    ensure!(
        files(&chart)? == names,
        "deploy/helm/oran-lcm/crds has other files than crds/: run deploy/sync.sh"
    );
    for name in &names {
        ensure!(
            std::fs::read(repo.join(name))? == std::fs::read(chart.join(name))?,
            "deploy/helm/oran-lcm/crds/{name} differs from crds/{name}: run deploy/sync.sh"
        );
    }
    Ok(())
}

/// The playbook, the template catalogue, the default overlay's inventory and the chart-root
/// kustomization (deploy/sync.sh writes them all).
#[test]
fn every_copy_in_deploy_is_up_to_date() -> anyhow::Result<()> {
    run(&repo_root().join("deploy/sync.sh"), &["--check"])?;
    Ok(())
}

#[test]
fn helm_lint_passes() -> anyhow::Result<()> {
    let chart = chart_dir();
    let chart = chart.to_str().context("chart path")?;
    run(
        &helm()?,
        &["lint", "--strict", chart, "--set-file", INVENTORY],
    )?;
    run(&helm()?, &["lint", "--strict", chart])?;
    Ok(())
}

fn same_install(chart: Vec<Value>, overlay: &str) -> anyhow::Result<()> {
    let kustomized = normalize(kustomize(overlay)?);
    ensure!(
        kustomized.len() > 20,
        "only {} objects in {overlay}",
        kustomized.len()
    );
    let problems = compare("chart", &normalize(chart), overlay, &kustomized);
    ensure!(
        problems.is_empty(),
        "the chart and deploy/kustomize/{overlay} differ:\n{}",
        problems.join("\n")
    );
    Ok(())
}

#[test]
fn chart_and_default_overlay_render_the_same_install() -> anyhow::Result<()> {
    same_install(
        helm_template(&["--set-file", INVENTORY])?,
        "overlays/default",
    )
}

#[test]
fn chart_with_dev_values_is_the_dev_overlay() -> anyhow::Result<()> {
    let chart = helm_template(&[
        "--set-file",
        INVENTORY,
        "--set",
        "image.tag=dev,leaderElection.enabled=false,focom.replicas=1,o2ims.replicas=1,logging.format=text",
        "--set",
        r"logging.filter=info\,kube=warn\,o2ims_operator=debug\,focom_operator=debug",
    ])?;
    same_install(chart, "overlays/dev")
}

/// The comparison sees a difference (so the tests above can fail).
#[test]
fn a_changed_value_is_a_difference() -> anyhow::Result<()> {
    let chart = normalize(helm_template(&[])?);
    let changed = normalize(helm_template(&[
        "--set",
        "o2ims.timeouts.workersSeconds=60",
    ])?);
    let problems = compare("a", &chart, "b", &changed);
    ensure!(
        problems.len() == 1 && problems[0].contains("Deployment o2ims-system/o2ims-operator"),
        "{problems:?}"
    );
    Ok(())
}

/// Every environment variable and flag the chart gives an operator is one its `run` reads
/// (clap prints each option's variable as `[env: NAME=`), so a renamed flag cannot go unnoticed.
#[test]
fn the_chart_sets_only_flags_and_variables_the_operators_read() -> anyhow::Result<()> {
    // With every optional value set, so each variable it can give is checked.
    let objects = helm_template(&[
        "--set-file",
        INVENTORY,
        "--set",
        "o2ims.hostPreparation.bootstrapApiServer=https://192.0.2.1:6443,o2ims.hostPreparation.allowRequestHostAccess=true",
        "--set",
        &format!(
            "o2ims.hostPreparation.image={PINNED_IMAGE},o2ims.hostPreparation.allowUnpinnedImage=true"
        ),
        "--set",
        &format!(
            "o2ims.hostPreparation.agentChecksum={AGENT_CHECKSUM},o2ims.hostPreparation.allowUnverifiedAgent=true"
        ),
        "--set",
        "focom.allowedOCloudNamespaces={smo-a,smo-b},focom.templateNamespace=catalogue",
    ])?;
    let focom_env = &named(&objects, "Deployment", "focom-operator")?["spec"]["template"]["spec"]["containers"]
        [0]["env"];
    for (variable, value) in [
        ("ALLOWED_OCLOUD_NAMESPACES", "smo-a,smo-b"),
        ("TEMPLATE_NAMESPACE", "catalogue"),
    ] {
        ensure!(
            focom_env
                .as_array()
                .context("env")?
                .iter()
                .any(|e| e["name"] == variable && e["value"] == value),
            "{variable} reaches the FOCOM operator: {focom_env}"
        );
    }
    let o2ims = &named(&objects, "Deployment", "o2ims-operator")?["spec"]["template"]["spec"]["containers"]
        [0]["env"];
    for (variable, value) in [
        ("BOOTSTRAP_APISERVER", "https://192.0.2.1:6443"),
        ("ALLOW_REQUEST_HOST_ACCESS", "true"),
        ("HOST_PREPARATION_IMAGE", PINNED_IMAGE),
        ("ALLOW_UNPINNED_HOST_PREPARATION_IMAGE", "true"),
        ("BYOH_AGENT_CHECKSUM", AGENT_CHECKSUM),
        ("ALLOW_UNVERIFIED_BYOH_AGENT", "true"),
        ("HOST_INVENTORY_CONFIGMAP", "lcm-inventory"),
    ] {
        ensure!(
            o2ims
                .as_array()
                .context("env")?
                .iter()
                .any(|e| e["name"] == variable && e["value"] == value),
            "{variable} reaches the O2IMS operator: {o2ims}"
        );
    }
    for name in ["focom-operator", "o2ims-operator"] {
        let container =
            &named(&objects, "Deployment", name)?["spec"]["template"]["spec"]["containers"][0];
        let help = run(&operator_binary(name)?, &["run", "--help"])?;
        let args: Vec<&str> = container["args"]
            .as_array()
            .context("args")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        ensure!(args.first() == Some(&"run"), "{name}: args {args:?}");
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            ensure!(
                help.split_whitespace().any(|word| word == *flag),
                "{name} has no flag {flag}:\n{help}"
            );
        }
        for env in container["env"].as_array().context("env")? {
            let variable = env["name"].as_str().context("env name")?;
            if variable == "RUST_LOG" {
                continue; // tracing's EnvFilter reads it (operator-kit's telemetry), not clap
            }
            ensure!(
                help.contains(&format!("[env: {variable}=")),
                "{name} reads no {variable}:\n{help}"
            );
        }
    }
    Ok(())
}

/// What the chart promises every operator Pod: restricted security, probes, the downward API,
/// JSON logs, leader election with two replicas.
#[test]
fn operator_pods_are_restricted_probed_and_leader_elected() -> anyhow::Result<()> {
    let objects = helm_template(&["--set-file", INVENTORY])?;
    for name in ["focom-operator", "o2ims-operator"] {
        let deployment = named(&objects, "Deployment", name)?;
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        ensure!(deployment["spec"]["replicas"] == 2, "{name}: replicas");
        ensure!(
            pod["securityContext"]
                == json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}}),
            "{name}: pod securityContext {}",
            pod["securityContext"]
        );
        ensure!(
            container["securityContext"]
                == json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}),
            "{name}: container securityContext {}",
            container["securityContext"]
        );
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            ensure!(
                container[probe]["httpGet"] == json!({"path": path, "port": "http"}),
                "{name}: {probe}"
            );
        }
        ensure!(
            container["ports"] == json!([{"name": "http", "containerPort": 8080}]),
            "{name}: ports"
        );
        let env = |variable: &str| {
            container["env"]
                .as_array()
                .and_then(|e| e.iter().find(|v| v["name"] == variable))
                .cloned()
                .unwrap_or_default()
        };
        ensure!(
            env("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name",
            "{name}: POD_NAME"
        );
        ensure!(
            env("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace",
            "{name}: POD_NAMESPACE"
        );
        ensure!(env("LOG_FORMAT")["value"] == "json", "{name}: LOG_FORMAT");
        ensure!(
            container["args"] == json!(["run", "--leader-elect"]),
            "{name}: args"
        );
        // The chart's appVersion is the operators' (the workspace) version.
        let image = format!("oran-lcm:{}", env!("CARGO_PKG_VERSION"));
        ensure!(
            container["image"] == image.as_str(),
            "{name}: image {}",
            container["image"]
        );
    }
    let focom = &named(&objects, "Deployment", "focom-operator")?["spec"]["template"]["spec"]["containers"]
        [0];
    ensure!(
        focom["command"] == json!(["/usr/local/bin/focom-operator"]),
        "focom command"
    );
    Ok(())
}

/// With `serviceMonitor.enabled`, each operator's ServiceMonitor selects its metrics Service.
#[test]
fn service_monitors_select_the_metrics_services() -> anyhow::Result<()> {
    let objects = helm_template(&["--set", "serviceMonitor.enabled=true"])?;
    for name in ["focom-operator", "o2ims-operator"] {
        let monitor = named(&objects, "ServiceMonitor", name)?;
        let service = named(&objects, "Service", &format!("{name}-metrics"))?;
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .context("selector")?;
        ensure!(
            selector
                .iter()
                .all(|(k, v)| service["metadata"]["labels"][k] == *v),
            "{name}: the ServiceMonitor selects {selector:?}"
        );
        ensure!(
            monitor["metadata"]["namespace"] == service["metadata"]["namespace"],
            "{name}: namespace"
        );
        ensure!(
            monitor["spec"]["endpoints"][0]["port"] == "http",
            "{name}: port"
        );
    }
    ensure!(
        !helm_template(&[])?
            .iter()
            .any(|o| o["kind"] == "ServiceMonitor"),
        "a ServiceMonitor without serviceMonitor.enabled"
    );
    Ok(())
}

/// Without leader election, more than one replica of an operator would reconcile twice: refused.
#[test]
fn replicas_without_leader_election_are_refused() -> anyhow::Result<()> {
    let refused = helm_template(&["--set", "leaderElection.enabled=false"])
        .err()
        .context("two replicas without leader election were rendered")?;
    ensure!(
        format!("{refused:#}").contains("2 replicas without leader election"),
        "{refused:#}"
    );
    Ok(())
}

const PINNED_IMAGE: &str = "registry.example.org/runner@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const AGENT_CHECKSUM: &str =
    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// The host-preparation Jobs hold the fleet's SSH key: an image named by tag is refused at
/// render unless allowed, one pinned by digest reaches the operator.
#[test]
fn a_host_preparation_image_must_be_pinned_by_digest() -> anyhow::Result<()> {
    let by_tag = "o2ims.hostPreparation.image=quay.io/ansible/ansible-runner:latest";
    let refused = helm_template(&["--set", by_tag])
        .err()
        .context("an image named by tag was rendered")?;
    ensure!(
        format!("{refused:#}").contains("is not pinned by digest"),
        "{refused:#}"
    );
    let allowed = format!("{by_tag},o2ims.hostPreparation.allowUnpinnedImage=true");
    helm_template(&["--set", &allowed])?;
    let pinned = helm_template(&[
        "--set",
        &format!("o2ims.hostPreparation.image={PINNED_IMAGE}"),
    ])?;
    let env = &named(&pinned, "Deployment", "o2ims-operator")?["spec"]["template"]["spec"]["containers"]
        [0]["env"];
    ensure!(
        env.as_array()
            .context("env")?
            .iter()
            .any(|e| e["name"] == "HOST_PREPARATION_IMAGE" && e["value"] == PINNED_IMAGE),
        "{env}"
    );
    Ok(())
}
