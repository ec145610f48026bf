//! The chart's monitoring against what it watches, on the real control plane: every metric its
//! alerts and its Grafana dashboard read is on the right operator's `/metrics` (both operators
//! running as processes), and its ServiceMonitors, PrometheusRule and dashboard ConfigMap pass
//! strict server-side validation with the Prometheus Operator's CRDs installed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use deploy_tests::{apply, helm_template, monitoring, operator_binary, promql};
use kube::api::{Api, PostParams};
use lcm_core::crd::{
    FocomProvisioningRequest, FocomProvisioningRequestSpec, ProvisioningRequest,
    ProvisioningRequestSpec,
};
use serde_json::json;
use testcluster::{OperatorProcess, TestCluster, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Every part of `monitoring` on.
const MONITORING: &str = "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.dashboard.enabled=true";

/// Which operator exports the metrics of each prefix.
const OPERATORS: [(&str, &str); 2] = [("o2ims_", "o2ims-operator"), ("focom_", "focom-operator")];

/// The metric names the rendered alerts and dashboard read, by the operator that must export them.
fn wanted_by_operator() -> anyhow::Result<BTreeMap<&'static str, BTreeSet<String>>> {
    let queries = monitoring::queries(&helm_template(&["--set", MONITORING])?)?;
    for kind in ["alert", "panel"] {
        ensure!(
            queries.iter().any(|q| q.source.starts_with(kind)),
            "the render has no {kind} query: {queries:?}"
        );
    }
    let mut wanted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for query in &queries {
        let names = promql::metric_names(&query.expr);
        ensure!(
            !names.is_empty(),
            "{}: no metric in {}",
            query.source,
            query.expr
        );
        for name in names {
            let Some((_, operator)) = OPERATORS.iter().find(|(p, _)| name.starts_with(p)) else {
                bail!("{}: {name} is no operator's metric", query.source);
            };
            wanted.entry(operator).or_default().insert(name);
        }
    }
    Ok(wanted)
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_read_is_exported() -> anyhow::Result<()> {
    let wanted = wanted_by_operator()?;
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let mut operators = BTreeMap::new();
    for (_, name) in OPERATORS {
        let namespace = cluster.namespace(name).await?.name().to_string();
        let binary = operator_binary(name)?;
        let binary = binary.to_str().context("binary path")?;
        let process =
            OperatorProcess::start(binary, cluster.kubeconfig_path(), &namespace, &[]).await?;
        operators.insert(name, (process, namespace));
    }

    // One request each, which fails validation: the O2IMS operator registers its own metrics
    // with a request's first status write, and both count requests per state once they have
    // reconciled one.
    let spec = ProvisioningRequestSpec {
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        template_parameters: json!({}),
        ..Default::default()
    };
    Api::<ProvisioningRequest>::all(client.clone())
        .create(
            &PostParams::default(),
            &ProvisioningRequest::new("monitoring", spec),
        )
        .await?;
    let (focom, focom_namespace) = &operators["focom-operator"];
    let mut request = FocomProvisioningRequest::new(
        "monitoring",
        FocomProvisioningRequestSpec {
            template_name: "byoh-workload-cluster".into(),
            template_version: "v1".into(),
            cluster_names: Some(vec!["core".into()]),
            ..Default::default()
        },
    );
    request.metadata.namespace = Some(focom_namespace.clone());
    Api::<FocomProvisioningRequest>::namespaced(client.clone(), focom_namespace)
        .create(&PostParams::default(), &request)
        .await?;
    let o2ims = &operators["o2ims-operator"].0;
    wait_for(
        "the O2IMS operator to count the failed request",
        TIMEOUT,
        || async {
            Ok(
                (o2ims.metric("o2ims_objects{state=\"failed\"}").await.ok() == Some(1.0))
                    .then_some(()),
            )
        },
    )
    .await
    .with_context(|| o2ims.log_tail())?;
    wait_for(
        "the FOCOM operator to count its request",
        TIMEOUT,
        || async {
            let (_, text) = focom.get("/metrics").await?;
            Ok(text.contains("\nfocom_objects{").then_some(()))
        },
    )
    .await
    .with_context(|| focom.log_tail())?;

    let mut problems = Vec::new();
    for (operator, names) in &wanted {
        let (_, text) = operators[operator].0.get("/metrics").await?;
        for name in promql::missing(names, &text) {
            problems.push(format!("{name} is not on the {operator}'s /metrics"));
        }
    }
    ensure!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

#[tokio::test]
async fn the_monitoring_objects_pass_strict_validation() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    testcluster::install_crds(&client, &deploy_tests::prometheus_operator_crds()?).await?;
    let (o2ims, focom) = (
        cluster.namespace("o2ims-system").await?,
        cluster.namespace("focom-system").await?,
    );
    let into_test_namespaces = format!(
        "createNamespaces=false,o2ims.namespace={},focom.namespace={}",
        o2ims.name(),
        focom.name()
    );
    let render = |extra: &[&str]| {
        let mut args = vec!["--set", MONITORING, "--set", &into_test_namespaces];
        args.extend_from_slice(extra);
        let objects = helm_template(&args)?;
        let monitoring: Vec<serde_json::Value> = objects
            .into_iter()
            .filter(|o| {
                o["apiVersion"] == "monitoring.coreos.com/v1"
                    || o["metadata"]["name"] == "oran-lcm-dashboard"
            })
            .collect();
        anyhow::Ok(monitoring)
    };
    let objects = render(&[])?;
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    ensure!(
        kinds == BTreeSet::from(["ConfigMap", "PrometheusRule", "ServiceMonitor"]),
        "{kinds:?}"
    );
    for object in &objects {
        apply(&client, object, true).await?;
    }

    // The dry runs can fail: a misplaced field, and a value the CRD's schema refuses.
    let mut rule = objects
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .context("PrometheusRule")?
        .clone();
    rule["spec"]["groups"][0]["rules"][0]["exprs"] = json!("up");
    let refused = apply(&client, &rule, true)
        .await
        .err()
        .context("a misplaced field was accepted")?;
    ensure!(
        format!("{refused:#}").contains("exprs: field not declared in schema"),
        "{refused:#}"
    );
    let bad_duration = render(&["--set", "monitoring.prometheusRule.noLeaderFor=5 minutes"])?;
    let rule = bad_duration
        .iter()
        .find(|o| o["kind"] == "PrometheusRule")
        .context("PrometheusRule")?;
    let refused = apply(&client, rule, true)
        .await
        .err()
        .context("an invalid `for` was accepted")?;
    ensure!(
        format!("{refused:#}").contains(r#"rules[2].for: Invalid value: "5 minutes""#),
        "{refused:#}"
    );
    Ok(())
}
