//! Cluster API v1beta1 conditions: a condition's lastTransitionTime changes only when its status
//! does, so rewriting an unchanged status is a no-op.

use serde_json::{Map, Value, json};

use crate::objects::now;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Info,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    type_: &'static str,
    status: bool,
    reason: Option<String>,
    severity: Option<Severity>,
}

impl Condition {
    pub fn true_(type_: &'static str) -> Self {
        Self {
            type_,
            status: true,
            reason: None,
            severity: None,
        }
    }

    pub fn false_(type_: &'static str, reason: impl Into<String>, severity: Severity) -> Self {
        Self {
            type_,
            status: false,
            reason: Some(reason.into()),
            severity: Some(severity),
        }
    }
}

/// The conditions as JSON, each keeping the lastTransitionTime it has in `previous`
/// (an object's `status.conditions`) when its status did not change.
pub fn render(conditions: &[Condition], previous: &Value) -> Value {
    let status = |s: bool| if s { "True" } else { "False" };
    conditions
        .iter()
        .map(|c| {
            let since = previous
                .as_array()
                .and_then(|p| {
                    p.iter()
                        .find(|p| p["type"] == c.type_ && p["status"] == status(c.status))
                })
                .and_then(|p| p["lastTransitionTime"].as_str())
                .map_or_else(now, String::from);
            let mut out = Map::new();
            out.insert("type".into(), json!(c.type_));
            out.insert("status".into(), json!(status(c.status)));
            out.insert("lastTransitionTime".into(), json!(since));
            if let Some(reason) = &c.reason {
                out.insert("reason".into(), json!(reason));
            }
            if let Some(severity) = c.severity {
                out.insert("severity".into(), json!(format!("{severity:?}")));
            }
            Value::Object(out)
        })
        .collect()
}

/// Whether an object's condition of `type_` is True.
pub fn is_true(object: &Value, type_: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_transition_time_of_an_unchanged_status() {
        let previous = json!([
            {"type": "Ready", "status": "False", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "Available", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"},
        ]);
        let rendered = render(
            &[
                Condition::false_("Ready", "Waiting", Severity::Info),
                Condition::false_("Available", "Lost", Severity::Error),
            ],
            &previous,
        );
        assert_eq!(rendered[0]["lastTransitionTime"], "2024-01-01T00:00:00Z");
        assert_eq!(rendered[0]["reason"], "Waiting");
        assert_eq!(rendered[0]["severity"], "Info");
        assert_ne!(rendered[1]["lastTransitionTime"], "2024-01-01T00:00:00Z");
        assert_eq!(rendered[1]["reason"], "Lost");
    }
}
