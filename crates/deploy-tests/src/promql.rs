//! The metric names a PromQL expression reads, and whether a `/metrics` exposition has them:
//! enough of PromQL's lexical rules for the chart's alerts and dashboard (names, functions,
//! aggregation modifiers, label matchers, ranges, strings, numbers, Grafana's `$variables`).

use std::collections::BTreeSet;

/// Words that are not metric names where a name could stand: operators, and the aggregations
/// (`sum by (le) (...)` puts a modifier between one and its parenthesis).
const KEYWORDS: [&str; 22] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Words followed by a list of label names, not by an expression.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names `expr` selects, e.g. `o2ims_hosts` in `max(o2ims_hosts{state="free"}) == 0`.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            // Label matchers and ranges hold no metric names.
            '{' => i = skip_past(&chars, i, '}'),
            '[' => i = skip_past(&chars, i, ']'),
            '$' => i = skip_word(&chars, i + 1),
            c if c.is_ascii_digit() || c == '.' => i = skip_word(&chars, i),
            c if is_name_start(c) => {
                let end = skip_word(&chars, i);
                let word: String = chars[i..end].iter().collect();
                let next = chars[end..].iter().find(|c| !c.is_whitespace());
                i = end;
                if LABEL_LISTS.contains(&word.as_str()) {
                    if next == Some(&'(') {
                        let open = end + chars[end..].iter().position(|c| *c == '(').unwrap_or(0);
                        i = skip_past(&chars, open, ')');
                    }
                } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn skip_word(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len()
        && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':' | '.'))
    {
        i += 1;
    }
    i
}

/// Past the closing quote of the string opening at `from` (backslash escapes honoured).
fn skip_string(chars: &[char], from: usize) -> usize {
    let quote = chars[from];
    let mut i = from + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// Past the `close` that ends the bracket opening at `from`, skipping strings inside.
fn skip_past(chars: &[char], from: usize, close: char) -> usize {
    let mut i = from + 1;
    while i < chars.len() && chars[i] != close {
        i = match chars[i] {
            '"' | '\'' | '`' => skip_string(chars, i),
            _ => i + 1,
        };
    }
    i + 1
}

/// The series names an OpenMetrics/Prometheus text exposition has samples of.
pub fn exposed_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The `names` of which `exposition` has no sample (a histogram is read through its `_bucket`,
/// `_sum` and `_count` series, a counter through `_total`: the names queries use).
pub fn missing<'a>(names: impl IntoIterator<Item = &'a String>, exposition: &str) -> Vec<String> {
    let exposed = exposed_names(exposition);
    names
        .into_iter()
        .filter(|n| !exposed.contains(*n))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).into_iter().collect()
    }

    #[test]
    fn finds_the_names_and_nothing_else() {
        assert_eq!(
            names(
                r#"histogram_quantile(0.95, sum by (le, stage) (increase(o2ims_stage_duration_seconds_bucket{namespace=~"$ns", stage!="a b"}[$window])))"#
            ),
            ["o2ims_stage_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                "sum(x_leader{namespace=\"n\"}) == 0 or absent(x_leader) unless on (pod) group_left (a) y:rate5m offset 5m > bool 1e3"
            ),
            ["x_leader", "y:rate5m"]
        );
        assert_eq!(
            names("max by (stage) (a_seconds) > 0.8 * max without (pod) (b_seconds)"),
            ["a_seconds", "b_seconds"]
        );
        assert_eq!(
            names(r#"sum(rate(c_total{error="by (x) d_total"}[$__rate_interval]))"#),
            ["c_total"],
            "a string's words are no names"
        );
    }

    const EXPOSITION: &str = "# HELP o2ims_hosts Hosts.\n# TYPE o2ims_hosts gauge\no2ims_hosts{state=\"free\"} 0\n# TYPE o2ims_reconcile_runs counter\no2ims_reconcile_runs_total 3\n# TYPE o2ims_stage_duration_seconds histogram\no2ims_stage_duration_seconds_bucket{le=\"5.0\",stage=\"fulfilled\"} 0\no2ims_stage_duration_seconds_count{stage=\"fulfilled\"} 0\n# EOF\n";

    /// The check the monitoring test makes can fail: a made-up name, a counter without its
    /// `_total`, a histogram by its family name are each reported missing.
    #[test]
    fn names_without_samples_are_missing() {
        let queried: Vec<String> = [
            "o2ims_hosts",
            "o2ims_reconcile_runs_total",
            "o2ims_stage_duration_seconds_bucket",
            "o2ims_made_up",
            "o2ims_reconcile_runs",
            "o2ims_stage_duration_seconds",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            missing(&queried, EXPOSITION),
            [
                "o2ims_made_up",
                "o2ims_reconcile_runs",
                "o2ims_stage_duration_seconds"
            ]
        );
    }
}
