//! The queries of the chart's monitoring: its PrometheusRules' alert expressions and its
//! Grafana dashboards' panel targets, as rendered.

use anyhow::Context;
use serde_json::Value;

/// One PromQL expression and where it comes from, for messages.
#[derive(Debug)]
pub struct Query {
    pub source: String,
    pub expr: String,
}

/// Every alert expression of the PrometheusRules in `objects` and every panel target of the
/// dashboards (the JSON values of ConfigMaps labelled `grafana_dashboard`).
pub fn queries(objects: &[Value]) -> anyhow::Result<Vec<Query>> {
    let mut found = Vec::new();
    for rule in objects.iter().filter(|o| o["kind"] == "PrometheusRule") {
        let groups = rule["spec"]["groups"].as_array().context("spec.groups")?;
        for rule in groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        {
            found.push(Query {
                source: format!("alert {}", rule["alert"].as_str().unwrap_or("(unnamed)")),
                expr: rule["expr"].as_str().context("a rule's expr")?.to_string(),
            });
        }
    }
    let dashboards = objects.iter().filter(|o| {
        o["kind"] == "ConfigMap" && !o["metadata"]["labels"]["grafana_dashboard"].is_null()
    });
    for config_map in dashboards {
        let data = config_map["data"].as_object().context("dashboard data")?;
        for (key, text) in data {
            let json: Value = serde_json::from_str(text.as_str().unwrap_or_default())
                .with_context(|| format!("dashboard {key} is not JSON"))?;
            panel_queries(&json, &mut found);
        }
    }
    Ok(found)
}

/// The targets of `dashboard`'s panels, rows' panels included.
fn panel_queries(dashboard: &Value, found: &mut Vec<Query>) {
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                found.push(Query {
                    source: format!("panel {title:?}"),
                    expr: expr.to_string(),
                });
            }
        }
        panel_queries(panel, found);
    }
}
