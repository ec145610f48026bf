//! The list parameters of the O2ims common document: `filter`, `fields`, `exclude_fields` and
//! `all_fields`, with ETSI SOL013's `exclude_default`, applied to the JSON of each item.
//!
//! A filter is one or more `(operator,field/path,value...)` criteria joined by `;`, all of which
//! must match; values holding `,`, `/`, `;`, `)` or spaces are quoted with `'`. A field path
//! names nested fields with `/`. An empty filter is no filter.
//!
//! Against a [`Model`] (the type of a list's items), a path naming no attribute of the type is
//! an error naming it, and every projection keeps the item's identifiers: an SMO that misspells
//! an attribute learns it, and never gets objects it cannot tell apart.

use schemars::JsonSchema;
use serde_json::Value;

/// What a list request selects, parsed from its query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    criteria: Vec<Criterion>,
    fields: Vec<Vec<String>>,
    excluded: Vec<Vec<String>>,
    exclude_default: bool,
}

/// A type the API lists: its name in the O2ims model, the attributes identifying an item (kept
/// by every projection; the first is its key), and the complex attributes `exclude_default`
/// leaves out.
pub trait Listed: serde::Serialize + JsonSchema {
    const NAME: &'static str;
    const IDENTIFIERS: &'static [&'static str];
    const DEFAULT_EXCLUDED: &'static [&'static str] = &["extensions"];
}

/// A listed type with the JSON Schema of its serialization (what a path may name).
#[derive(Clone, Debug)]
pub struct Model {
    pub name: &'static str,
    pub identifiers: &'static [&'static str],
    pub default_excluded: &'static [&'static str],
    schema: Value,
}

impl Model {
    pub fn of<T: Listed>() -> Self {
        Self {
            name: T::NAME,
            identifiers: T::IDENTIFIERS,
            default_excluded: T::DEFAULT_EXCLUDED,
            schema: schemars::schema_for!(T).to_value(),
        }
    }

    /// The value of the item's key (its first identifier), as text.
    pub fn key(&self, item: &Value) -> Option<String> {
        let path = path_of(self.identifiers.first()?);
        get(item, &path).map(scalar_text)
    }

    /// Whether `path` names an attribute of the type (anything below a free-form object, such
    /// as `extensions`, does).
    pub fn knows(&self, path: &[String]) -> bool {
        knows(&self.schema, &self.schema, path)
    }

    /// The type's attributes, for messages.
    fn attributes(&self) -> Vec<String> {
        let root = resolve(&self.schema, &self.schema);
        root.get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Whether `path` leads somewhere in `schema` (found in `root`, whose `$defs` its `$ref`s name).
fn knows(root: &Value, schema: &Value, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let schema = resolve(root, schema);
    let Some(object) = schema.as_object() else {
        // `true`: anything.
        return schema.as_bool().unwrap_or(false);
    };
    let alternatives = ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| object.get(*k)?.as_array())
        .flatten()
        .collect::<Vec<_>>();
    if !alternatives.is_empty() {
        return alternatives.iter().any(|a| knows(root, a, path));
    }
    if let Some(property) = object.get("properties").and_then(|p| p.get(first)) {
        return knows(root, property, rest);
    }
    match object.get("additionalProperties") {
        Some(Value::Bool(open)) => *open,
        Some(additional) => knows(root, additional, rest),
        // An object of no declared attributes is free-form.
        None => {
            !object.contains_key("properties")
                && object.get("type").is_none_or(|t| {
                    t == "object"
                        || t.as_array()
                            .is_some_and(|a| a.contains(&Value::from("object")))
                })
        }
    }
}

/// The schema a `$ref` points to (into the root's `$defs`), or `schema` itself.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .map_or(schema, |target| resolve(root, target)),
        None => schema,
    }
}

fn path_of(text: &str) -> Vec<String> {
    text.split('/').map(str::to_string).collect()
}

#[derive(Clone, Debug, PartialEq)]
struct Criterion {
    operator: Operator,
    path: Vec<String>,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Cont,
    Ncont,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

impl Operator {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cont" => Self::Cont,
            "ncont" => Self::Ncont,
            "eq" => Self::Eq,
            "neq" => Self::Neq,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "in" => Self::In,
            "nin" => Self::Nin,
            _ => return None,
        })
    }
}

/// A query parameter that cannot be used; the message names the parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct SelectionError {
    pub parameter: &'static str,
    pub message: String,
}

fn error(parameter: &'static str, message: impl Into<String>) -> SelectionError {
    SelectionError {
        parameter,
        message: message.into(),
    }
}

impl Selection {
    /// Parses the query's `(name, value)` pairs; other parameters are refused, so a misspelt
    /// one never silently selects everything.
    pub fn parse<'a>(
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SelectionError> {
        let mut selection = Selection::default();
        let mut all_fields = false;
        for (name, value) in query {
            match name {
                "filter" => selection.criteria.extend(parse_filter(value)?),
                "fields" => selection.fields.extend(paths("fields", value)?),
                "exclude_fields" => selection.excluded.extend(paths("exclude_fields", value)?),
                // A flag: present means on, but for an explicit `false` (the document's default).
                "all_fields" => all_fields = !value.trim().eq_ignore_ascii_case("false"),
                "exclude_default" => {
                    selection.exclude_default = !value.trim().eq_ignore_ascii_case("false")
                }
                other => {
                    return Err(error(
                        "query",
                        format!(
                            "unknown parameter `{other}`; lists take filter, fields, exclude_fields, exclude_default, all_fields and nextpage_opaque_marker"
                        ),
                    ));
                }
            }
        }
        if all_fields && (!selection.fields.is_empty() || selection.exclude_default) {
            return Err(error(
                "all_fields",
                "cannot be combined with fields or exclude_default: all_fields includes every field",
            ));
        }
        Ok(selection)
    }

    /// Refuses a path naming no attribute of `model`'s items, naming it.
    pub fn check(&self, model: &Model) -> Result<(), SelectionError> {
        let named = self
            .criteria
            .iter()
            .map(|c| ("filter", &c.path))
            .chain(self.fields.iter().map(|p| ("fields", p)))
            .chain(self.excluded.iter().map(|p| ("exclude_fields", p)));
        for (parameter, path) in named {
            if !model.knows(path) {
                return Err(error(
                    parameter,
                    format!(
                        "`{}` is not an attribute of {} (its attributes: {})",
                        path.join("/"),
                        model.name,
                        model.attributes().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `item` matches every criterion.
    pub fn matches(&self, item: &Value) -> bool {
        self.criteria.iter().all(|c| c.matches(item))
    }

    /// `item` with only the selected fields (or without the complex attributes
    /// `exclude_default` names), without the excluded ones, always with its identifiers.
    pub fn project(&self, model: &Model, item: Value) -> Value {
        let identifiers: Vec<Vec<String>> = model.identifiers.iter().map(|i| path_of(i)).collect();
        let mut projected = if self.fields.is_empty() {
            let mut all = item.clone();
            if self.exclude_default {
                for attribute in model.default_excluded {
                    remove(&mut all, &path_of(attribute));
                }
            }
            all
        } else {
            let mut kept = Value::Object(Default::default());
            for path in &self.fields {
                if let Some(value) = get(&item, path) {
                    put(&mut kept, path, value.clone());
                }
            }
            kept
        };
        for path in &self.excluded {
            remove(&mut projected, path);
        }
        for path in &identifiers {
            if let Some(value) = get(&item, path) {
                put(&mut projected, path, value.clone());
            }
        }
        projected
    }

    /// Whether the selection projects (its items may lack attributes the type requires).
    pub fn projects(&self) -> bool {
        !self.fields.is_empty() || !self.excluded.is_empty() || self.exclude_default
    }

    /// Filters and projects a list.
    pub fn apply(&self, model: &Model, items: impl IntoIterator<Item = Value>) -> Vec<Value> {
        items
            .into_iter()
            .filter(|item| self.matches(item))
            .map(|item| self.project(model, item))
            .collect()
    }
}

impl Criterion {
    fn matches(&self, item: &Value) -> bool {
        let field = get(item, &self.path);
        let text = field.map(scalar_text);
        let first = self.values.first().map(String::as_str).unwrap_or_default();
        let contains = |t: &Option<String>| t.as_ref().is_some_and(|t| t.contains(first));
        let equals = |t: &Option<String>, v: &str| t.as_deref() == Some(v);
        match self.operator {
            Operator::Eq => equals(&text, first),
            Operator::Neq => !equals(&text, first),
            Operator::Cont => contains(&text),
            Operator::Ncont => !contains(&text),
            Operator::In => self.values.iter().any(|v| equals(&text, v)),
            Operator::Nin => !self.values.iter().any(|v| equals(&text, v)),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
                let Some(ordering) = field.and_then(|f| compare(f, first)) else {
                    return false;
                };
                match self.operator {
                    Operator::Gt => ordering.is_gt(),
                    Operator::Gte => ordering.is_ge(),
                    Operator::Lt => ordering.is_lt(),
                    _ => ordering.is_le(),
                }
            }
        }
    }
}

/// A field's value as the text a criterion compares (arrays and objects compare as JSON).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Numbers compare as numbers, everything else as text (RFC 3339 times order as text).
fn compare(field: &Value, value: &str) -> Option<std::cmp::Ordering> {
    match (field.as_f64(), value.parse::<f64>()) {
        (Some(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(scalar_text(field).as_str().cmp(value)),
    }
}

fn get<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, name| v.get(name))
}

fn put(target: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = Some(target);
    for name in parents {
        at = at.and_then(Value::as_object_mut).map(|o| {
            o.entry(name.clone())
                .or_insert_with(|| Value::Object(Default::default()))
        });
    }
    if let Some(object) = at.and_then(Value::as_object_mut) {
        object.insert(last.clone(), value);
    }
}

fn remove(item: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = Some(item);
    for name in parents {
        at = at.and_then(|v| v.get_mut(name));
    }
    if let Some(object) = at.and_then(Value::as_object_mut) {
        object.remove(last);
    }
}

fn paths(parameter: &'static str, value: &str) -> Result<Vec<Vec<String>>, SelectionError> {
    value
        .split(',')
        .map(|field| field_path(parameter, field.trim()))
        .collect()
}

fn field_path(parameter: &'static str, text: &str) -> Result<Vec<String>, SelectionError> {
    let path: Vec<String> = text.split('/').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(error(
            parameter,
            format!("`{text}` is not a field reference"),
        ));
    }
    Ok(path)
}

fn parse_filter(text: &str) -> Result<Vec<Criterion>, SelectionError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_outside_quotes(text, ';')?
        .into_iter()
        .map(|criterion| {
            let inner = criterion
                .trim()
                .strip_prefix('(')
                .and_then(|c| c.strip_suffix(')'))
                .ok_or_else(|| {
                    error(
                        "filter",
                        format!("`{criterion}` is not `(operator,field,value...)`"),
                    )
                })?;
            let mut parts = split_outside_quotes(inner, ',')?.into_iter().map(unquote);
            let operator_name = parts.next().unwrap_or_default();
            let operator = Operator::parse(&operator_name).ok_or_else(|| {
                error(
                    "filter",
                    format!(
                        "unknown operator `{operator_name}`; use cont, ncont, eq, neq, gt, gte, lt, lte, in or nin"
                    ),
                )
            })?;
            let path = field_path("filter", &parts.next().unwrap_or_default())?;
            let values: Vec<String> = parts.collect();
            let expected = match operator {
                Operator::In | Operator::Nin => !values.is_empty(),
                _ => values.len() == 1,
            };
            if !expected {
                return Err(error(
                    "filter",
                    format!(
                        "`{operator_name}` takes {} value(s), got {}",
                        if matches!(operator, Operator::In | Operator::Nin) { "one or more" } else { "one" },
                        values.len()
                    ),
                ));
            }
            Ok(Criterion {
                operator,
                path,
                values,
            })
        })
        .collect()
}

/// Splits on `separator` outside single quotes; an unclosed quote is an error.
fn split_outside_quotes(text: &str, separator: char) -> Result<Vec<String>, SelectionError> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                parts.last_mut().expect("never empty").push(c);
            }
            c if c == separator && !quoted => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    if quoted {
        return Err(error("filter", format!("unclosed quote in `{text}`")));
    }
    Ok(parts)
}

fn unquote(part: String) -> String {
    let trimmed = part.trim();
    trimmed
        .strip_prefix('\'')
        .and_then(|p| p.strip_suffix('\''))
        .unwrap_or(trimmed)
        .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn select(query: &[(&str, &str)]) -> Selection {
        Selection::parse(query.iter().copied()).expect("valid selection")
    }

    #[derive(JsonSchema, serde::Serialize)]
    #[allow(dead_code)] // only its schema is used
    struct Item {
        name: String,
        n: u32,
        extensions: serde_json::Map<String, Value>,
        labels: std::collections::BTreeMap<String, String>,
        status: Option<Status>,
    }

    #[derive(JsonSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct Status {
        phase: String,
    }

    impl Listed for Item {
        const NAME: &'static str = "Item";
        const IDENTIFIERS: &'static [&'static str] = &["name"];
    }

    fn model() -> Model {
        Model::of::<Item>()
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"name": "my cluster", "n": 5, "extensions": {"country": "ES", "hub": "h0"}}),
            json!({"name": "edge", "n": 12, "extensions": {"country": "US"}}),
            json!({"name": "core", "n": 7}),
        ]
    }

    fn names(selection: &Selection) -> Vec<String> {
        selection
            .apply(&model(), items())
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    #[test]
    fn each_operator_selects_as_the_common_document_defines_it() {
        let cases: &[(&str, &[&str])] = &[
            ("(eq,name,'my cluster')", &["my cluster"]),
            ("(neq,name,edge)", &["my cluster", "core"]),
            ("(cont,name,ed)", &["edge"]),
            ("(ncont,name,ed)", &["my cluster", "core"]),
            ("(in,extensions/country,ES,US)", &["my cluster", "edge"]),
            ("(nin,extensions/country,ES,US)", &["core"]),
            ("(gt,n,7)", &["edge"]),
            ("(gte,n,7)", &["edge", "core"]),
            ("(lt,n,7)", &["my cluster"]),
            ("(lte,n,7)", &["my cluster", "core"]),
            (
                "(eq,name,'my cluster');(eq,extensions/country,ES)",
                &["my cluster"],
            ),
            ("(eq,name,edge);(eq,extensions/country,ES)", &[]),
        ];
        for (filter, want) in cases {
            assert_eq!(names(&select(&[("filter", filter)])), *want, "{filter}");
        }
    }

    #[test]
    fn numbers_compare_as_numbers_not_text() {
        // As text "12" < "7"; as numbers it is greater.
        assert_eq!(names(&select(&[("filter", "(gt,n,10)")])), ["edge"]);
    }

    #[test]
    fn fields_keep_only_the_named_paths_and_exclusions_win() {
        let m = model();
        let s = select(&[("fields", "name,extensions/country")]);
        assert_eq!(
            s.project(&m, items()[0].clone()),
            json!({"name": "my cluster", "extensions": {"country": "ES"}})
        );
        let s = select(&[
            ("fields", "name,extensions"),
            ("exclude_fields", "extensions/hub"),
        ]);
        assert_eq!(
            s.project(&m, items()[0].clone()),
            json!({"name": "my cluster", "extensions": {"country": "ES"}})
        );
        let s = select(&[("exclude_fields", "extensions,n")]);
        assert_eq!(s.project(&m, items()[2].clone()), json!({"name": "core"}));
        assert_eq!(
            select(&[("all_fields", "")]).project(&m, items()[1].clone()),
            items()[1]
        );
    }

    #[test]
    fn projections_keep_the_identifiers() {
        let m = model();
        let s = select(&[("fields", "n")]);
        assert_eq!(
            s.project(&m, items()[1].clone()),
            json!({"name": "edge", "n": 12})
        );
        let s = select(&[("exclude_fields", "name")]);
        assert_eq!(
            s.project(&m, items()[2].clone()),
            json!({"name": "core", "n": 7})
        );
    }

    #[test]
    fn exclude_default_leaves_out_the_complex_attributes_unless_fields_names_them() {
        let m = model();
        let s = select(&[("exclude_default", "")]);
        assert_eq!(
            s.project(&m, items()[1].clone()),
            json!({"name": "edge", "n": 12})
        );
        let s = select(&[("exclude_default", ""), ("fields", "extensions")]);
        assert_eq!(
            s.project(&m, items()[1].clone()),
            json!({"name": "edge", "extensions": {"country": "US"}})
        );
    }

    #[test]
    fn an_empty_filter_and_all_fields_false_select_as_if_absent() {
        assert_eq!(select(&[("filter", "")]), Selection::default());
        assert_eq!(select(&[("filter", "  ")]), Selection::default());
        let s = select(&[("all_fields", "false"), ("fields", "n")]);
        assert_eq!(s, select(&[("fields", "n")]));
    }

    #[test]
    fn paths_must_name_attributes_of_the_model() {
        let m = model();
        for known in [
            "(eq,name,x)",
            "(eq,extensions/country/deep,x)",
            "(eq,labels/site,x)",
            "(eq,status/phase,x)",
        ] {
            select(&[("filter", known)]).check(&m).expect(known);
        }
        for (name, value) in [
            ("filter", "(eq,WrongAttrName,x)"),
            ("filter", "(eq,labels/site/deeper,x)"),
            ("filter", "(eq,status/nothing,x)"),
            ("fields", "nothing"),
            ("exclude_fields", "name/x"),
        ] {
            let error = select(&[(name, value)]).check(&m).expect_err(value);
            assert_eq!(error.parameter, name, "{error}");
            assert!(
                error.message.contains("is not an attribute of Item"),
                "{error}"
            );
        }
        let error = select(&[("filter", "(eq,WrongAttrName,x)")])
            .check(&m)
            .expect_err("unknown");
        assert!(error.message.contains("`WrongAttrName`"), "{error}");
    }

    #[test]
    fn bad_parameters_are_refused_naming_the_parameter() {
        let cases = [
            ("filter", "eq,name,x", "filter"),
            ("filter", "(like,name,x)", "filter"),
            ("filter", "(eq,name)", "filter"),
            ("filter", "(eq,name,'open)", "filter"),
            ("filter", "(eq,,x)", "filter"),
            ("fields", "name,,n", "fields"),
            ("sort", "name", "query"),
        ];
        for (name, value, parameter) in cases {
            let err = Selection::parse([(name, value)]).expect_err(value);
            assert_eq!(err.parameter, parameter, "{value}: {err}");
        }
        let err = Selection::parse([("all_fields", ""), ("fields", "name")]).expect_err("both");
        assert_eq!(err.parameter, "all_fields");
        let err =
            Selection::parse([("all_fields", "true"), ("exclude_default", "")]).expect_err("both");
        assert_eq!(err.parameter, "all_fields");
    }
}
