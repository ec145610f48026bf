//! The chart and the kustomize overlays, rendered: in sync with the repository, lint-clean,
//! identical to each other, and using only flags and variables the operators read. No cluster.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, ensure};
use deploy_tests::{
    API_EXTERNAL_URL, chart_dir, compare, helm, helm_template, kustomize, named, normalize,
    operator_binary, parse_manifests, repo_root, run,
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
    let external_url = format!("api.externalUrl={API_EXTERNAL_URL}");
    run(
        &helm()?,
        &[
            "lint",
            "--strict",
            chart,
            "--set-file",
            INVENTORY,
            "--set",
            &external_url,
        ],
    )?;
    run(
        &helm()?,
        &["lint", "--strict", chart, "--set", &external_url],
    )?;
    run(
        &helm()?,
        &["lint", "--strict", chart, "--set", "api.enabled=false"],
    )?;
    let monitoring = "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.dashboard.enabled=true";
    run(
        &helm()?,
        &[
            "lint",
            "--strict",
            chart,
            "--set",
            &external_url,
            "--set",
            monitoring,
        ],
    )?;
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
        "image.tag=dev,leaderElection.enabled=false,focom.replicas=1,o2ims.replicas=1,api.replicas=1,logging.format=text",
        "--set",
        r"logging.filter=info\,kube=warn\,o2ims_operator=debug\,focom_operator=debug\,o2ims_api=debug",
    ])?;
    same_install(chart, "overlays/dev")
}

/// The comparison sees a difference (so the tests above can fail).
#[test]
fn a_changed_value_is_a_difference() -> anyhow::Result<()> {
    let chart = normalize(helm_template(&[])?);
    let changed = normalize(helm_template(&[
        "--set",
        // A value of the operator alone (the stage timeouts go to the O2ims API too).
        "o2ims.timeouts.nodeDrainSeconds=60",
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
        "--set",
        &format!(
            "api.oCloudId={OCLOUD_ID},api.globalCloudId={GLOBAL_CLOUD_ID},api.oCloudDescription=lab,api.allowRequestHostAccess=true"
        ),
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
    let api = &named(&objects, "Deployment", "o2ims-api")?["spec"]["template"]["spec"]["containers"]
        [0]["env"];
    for (variable, value) in [
        ("EXTERNAL_URL", API_EXTERNAL_URL),
        ("OCLOUD_ID", OCLOUD_ID),
        ("GLOBAL_CLOUD_ID", GLOBAL_CLOUD_ID),
        ("OCLOUD_NAME", "o-cloud"),
        ("OCLOUD_DESCRIPTION", "lab"),
        ("ALLOW_REQUEST_HOST_ACCESS", "true"),
        ("HOST_INVENTORY_CONFIGMAP", "lcm-inventory"),
        ("TLS_CERT_FILE", "/etc/o2ims-api/tls/tls.crt"),
        ("TLS_KEY_FILE", "/etc/o2ims-api/tls/tls.key"),
    ] {
        ensure!(
            api.as_array()
                .context("env")?
                .iter()
                .any(|e| e["name"] == variable && e["value"] == value),
            "{variable} reaches the O2ims API: {api}"
        );
    }
    for name in ["focom-operator", "o2ims-operator", "o2ims-api"] {
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

/// With `monitoring.serviceMonitor.enabled`, each operator's ServiceMonitor selects its metrics
/// Service; the value's old name is refused, not ignored.
#[test]
fn service_monitors_select_the_metrics_services() -> anyhow::Result<()> {
    let objects = helm_template(&["--set", "monitoring.serviceMonitor.enabled=true"])?;
    for name in ["focom-operator", "o2ims-operator", "o2ims-api"] {
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
        "a ServiceMonitor without monitoring.serviceMonitor.enabled"
    );
    let moved = helm_template(&["--set", "serviceMonitor.enabled=true"])
        .err()
        .context("the old serviceMonitor value was accepted")?;
    ensure!(
        format!("{moved:#}").contains("serviceMonitor moved to monitoring.serviceMonitor"),
        "{moved:#}"
    );
    Ok(())
}

/// The monitoring parts are off by default (their CRDs may be missing); the dashboard ConfigMap
/// holds the chart's JSON file as it is.
#[test]
fn monitoring_is_off_by_default_and_the_dashboard_is_the_charts_file() -> anyhow::Result<()> {
    let monitoring = |o: &&Value| {
        o["apiVersion"] == "monitoring.coreos.com/v1"
            || o["metadata"]["name"] == "oran-lcm-dashboard"
    };
    ensure!(
        !helm_template(&[])?.iter().any(|o| monitoring(&o)),
        "monitoring rendered by default"
    );
    let objects = helm_template(&["--set", "monitoring.dashboard.enabled=true"])?;
    let dashboard = named(&objects, "ConfigMap", "oran-lcm-dashboard")?;
    ensure!(
        dashboard["metadata"]["labels"]["grafana_dashboard"] == "1",
        "sidecar label"
    );
    let file = std::fs::read_to_string(chart_dir().join("files/grafana-dashboard.json"))?;
    ensure!(
        dashboard["data"]["oran-lcm.json"].as_str() == Some(file.trim_end()),
        "the ConfigMap's JSON differs from files/grafana-dashboard.json"
    );
    let json: Value = serde_json::from_str(&file)?;
    ensure!(json["uid"] == "oran-lcm", "dashboard uid");
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

const OCLOUD_ID: &str = "262c8f17-52b5-4614-9e56-812ae21fa8a7";
const GLOBAL_CLOUD_ID: &str = "5a4b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

/// What the chart promises the O2ims API's Pods: the operators' restricted security and probes,
/// no leader election (every replica serves, so two replicas even without it, updated by rolling),
/// HTTPS on 8443 with the TLS Secret mounted read-only, the image's o2ims-api, and a Service.
#[test]
fn api_pods_are_restricted_probed_and_serve_tls() -> anyhow::Result<()> {
    let objects = helm_template(&["--set-file", INVENTORY])?;
    let operator = named(&objects, "Deployment", "o2ims-operator")?;
    let deployment = named(&objects, "Deployment", "o2ims-api")?;
    ensure!(
        deployment["metadata"]["namespace"] == "o2ims-system",
        "namespace"
    );
    ensure!(deployment["spec"]["replicas"] == 2, "replicas");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let operator_pod = &operator["spec"]["template"]["spec"];
    for field in ["securityContext", "terminationGracePeriodSeconds"] {
        ensure!(
            pod[field] == operator_pod[field],
            "pod {field}: {}",
            pod[field]
        );
    }
    for field in [
        "securityContext",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "image",
    ] {
        ensure!(
            container[field] == operator_pod["containers"][0][field],
            "container {field}: {}",
            container[field]
        );
    }
    ensure!(
        pod["serviceAccountName"] == "o2ims-api",
        "serviceAccountName"
    );
    ensure!(
        container["command"] == json!(["/usr/local/bin/o2ims-api"])
            && container["args"] == json!(["run"]),
        "command {} args {}",
        container["command"],
        container["args"]
    );
    ensure!(
        container["ports"]
            == json!([{"name": "https", "containerPort": 8443}, {"name": "http", "containerPort": 8080}]),
        "ports {}",
        container["ports"]
    );
    ensure!(
        container["volumeMounts"]
            == json!([{"name": "tls", "mountPath": "/etc/o2ims-api/tls", "readOnly": true}])
            && pod["volumes"]
                == json!([{"name": "tls", "secret": {"secretName": "o2ims-api-tls"}}]),
        "TLS: {} {}",
        container["volumeMounts"],
        pod["volumes"]
    );
    let names: Vec<&str> = container["env"]
        .as_array()
        .context("env")?
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    ensure!(
        !names.contains(&"LEASE_NAME") && !names.contains(&"LEADER_ELECT"),
        "env {names:?}"
    );
    let service = named(&objects, "Service", "o2ims-api")?;
    ensure!(
        service["spec"]["ports"] == json!([{"name": "https", "port": 8443, "targetPort": "https"}]),
        "Service ports {}",
        service["spec"]["ports"]
    );
    let selector = service["spec"]["selector"]
        .as_object()
        .context("selector")?;
    ensure!(
        selector
            .iter()
            .all(|(k, v)| deployment["spec"]["template"]["metadata"]["labels"][k] == *v),
        "the Service selects {selector:?}"
    );
    ensure!(
        named(&objects, "Service", "o2ims-api-metrics")?["spec"]["ports"]
            == json!([{"name": "http", "port": 8080, "targetPort": "http"}]),
        "metrics Service"
    );

    // Without leader election the operators need one replica; the API keeps its two.
    let unelected = helm_template(&[
        "--set",
        "leaderElection.enabled=false,focom.replicas=1,o2ims.replicas=1",
    ])?;
    let api = named(&unelected, "Deployment", "o2ims-api")?;
    ensure!(
        api["spec"]["replicas"] == 2 && api["spec"].get("strategy").is_none(),
        "without leader election: {}",
        api["spec"]
    );
    Ok(())
}

/// The API's URL is required (and checked), its ids must be UUIDs; `api.enabled=false` renders
/// nothing of the API.
#[test]
fn the_api_needs_an_external_url_and_can_be_disabled() -> anyhow::Result<()> {
    for (values, message) in [
        ("api.externalUrl=", "api.externalUrl is required"),
        ("api.externalUrl=o2ims.example.org", "is not a URL"),
        (
            "api.oCloudId=O-CLOUD",
            "api.oCloudId \"O-CLOUD\" is not a lower-case UUID",
        ),
        (
            "api.globalCloudId=262C8F17-52B5-4614-9E56-812AE21FA8A7",
            "is not a lower-case UUID",
        ),
    ] {
        let refused = helm_template(&["--set", values])
            .err()
            .with_context(|| format!("{values} was rendered"))?;
        ensure!(
            format!("{refused:#}").contains(message),
            "{values}: {refused:#}"
        );
    }
    let disabled = helm_template(&["--set", "api.enabled=false,api.externalUrl="])?;
    let api: Vec<String> = disabled
        .iter()
        .filter(|o| {
            o["metadata"]["labels"]["app.kubernetes.io/component"] == "o2ims-api"
                || o["metadata"]["name"].as_str().is_some_and(|n| {
                    n.contains("o2ims-api") || n.starts_with("oran-lcm-o2ims-reader")
                })
        })
        .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
        .collect();
    ensure!(api.is_empty(), "rendered with api.enabled=false: {api:?}");
    Ok(())
}

/// Who may call the API: the chart installs files/o2ims-api-roles.yaml as it is, and so does
/// kustomize (through the chart-root kustomization).
#[test]
fn the_api_roles_are_the_charts_file_as_it_is() -> anyhow::Result<()> {
    let file = std::fs::read_to_string(chart_dir().join("files/o2ims-api-roles.yaml"))?;
    let roles = parse_manifests(&file)?;
    let names: Vec<&str> = roles
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    ensure!(
        names
            == [
                "oran-lcm-o2ims-reader",
                "oran-lcm-o2ims-provisioner",
                "oran-lcm-o2ims-subscriber",
                "oran-lcm-o2ims-maintainer",
                "oran-lcm-o2ims-alertmanager"
            ],
        "{names:?}"
    );
    for (render, objects) in [
        ("the chart", helm_template(&[])?),
        ("overlays/default", kustomize("overlays/default")?),
    ] {
        for role in &roles {
            let name = role["metadata"]["name"].as_str().context("name")?;
            ensure!(
                named(&objects, "ClusterRole", name)? == role,
                "{render}: ClusterRole {name} differs from files/o2ims-api-roles.yaml"
            );
        }
    }
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
