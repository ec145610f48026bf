//! Checks responses of the O2ims REST server against the OpenAPI 3.0 documents in
//! `<shared>/o2ims-openapi` (`provisioning`, `resources`, `common`, ...).
//!
//! Every documented response schema becomes one self-contained JSON Schema (draft 2020-12, whose
//! validator knows the `uuid` format, unlike draft 4): each `$ref`, local or into another file,
//! is translated once into the root's `$defs` and the reference rewritten to point there, so
//! recursive schemas (`Resource.elements`) stay finite. OpenAPI-only keywords are translated or
//! dropped on the way (see [`Bundle::schema`]), and `format`s are asserted.
//!
//! Documents are named for [`Documents::check_schema`] by their file stem, or, in the shared
//! `<name>/api/openapi.yaml` layout, by `<name>`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};

/// The operations of a path item, lower case as OpenAPI spells them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The parsed OpenAPI documents, with every documented response compiled for checking.
pub struct Documents {
    /// Every parsed document by canonical path, including those only reached through `$ref`s.
    docs: HashMap<PathBuf, Doc>,
    /// Canonical paths by document name.
    names: BTreeMap<String, PathBuf>,
    routes: Vec<Route>,
}

struct Doc {
    name: String,
    value: Value,
}

struct Route {
    template: String,
    /// The template split at `/`; `None` for a `{param}` segment.
    segments: Vec<Option<String>>,
    /// By lower-case method, then by response key (`200`, `2XX` or `default`).
    operations: BTreeMap<String, BTreeMap<String, Response>>,
}

struct Response {
    headers: Vec<String>,
    /// By lower-case media type; `None` where the media type documents no schema.
    content: BTreeMap<String, Option<jsonschema::Validator>>,
}

impl Documents {
    /// Loads provisioning and inventory (resources) documents from the shared dir, plus any extra
    /// OpenAPI documents given (paths to YAML files; their relative $refs resolve against their own directory).
    pub fn load(extra: &[PathBuf]) -> anyhow::Result<Self> {
        let shared = crate::paths::shared_dir().join("o2ims-openapi");
        let mut documents = Self {
            docs: HashMap::new(),
            names: BTreeMap::new(),
            routes: Vec::new(),
        };
        let mut roots = Vec::new();
        let named = ["provisioning", "resources", "common"]
            .map(|name| shared.join(name).join("api/openapi.yaml"));
        for path in named.iter().chain(extra) {
            let root = documents.load_file(path)?;
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        for root in &roots {
            let routes = documents
                .routes(root)
                .with_context(|| format!("reading the paths of {}", root.display()))?;
            documents.routes.extend(routes);
        }
        Ok(documents)
    }

    /// Checks one response: `method` (GET/POST/PUT/DELETE), `path` the actual request path without query
    /// (e.g. `/o2ims-infrastructureProvisioning/v1/provisioningRequests/123e4567-...`), matched against the
    /// documents' path templates (`{param}` matches one segment; literal segments win over templated ones);
    /// `status` the HTTP status (matched exactly, else by its `2XX` range, else by `default`);
    /// `content_type` the response's Content-Type header (parameters like `; charset=utf-8`
    /// ignored) or None; `body` the parsed JSON body or None for an empty body.
    ///
    /// Err(message) when: the path/method is not documented; the status code is not one of the operation's
    /// documented responses; the documented response has content but the content type differs (e.g.
    /// application/json vs application/problem+json) or the body is missing; the response documents no
    /// content but a body was sent; or the body does not satisfy the schema (the message lists every error
    /// with its instance path).
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let what = format!("{method} {path} -> {status}");
        let (route, response) = self
            .response(method, path, status)
            .map_err(|e| format!("{what}: {e:#}"))?;
        let documented: Vec<&String> = response.content.keys().collect();
        let body = match (body, documented.is_empty()) {
            (None, true) => return Ok(()),
            (Some(_), true) => {
                return Err(format!(
                    "{what}: the response documents no content, but has a body"
                ));
            }
            (None, false) => {
                return Err(format!(
                    "{what}: the response documents {documented:?}, but the body is empty"
                ));
            }
            (Some(body), false) => body,
        };
        let media = content_type.map(|value| {
            let media = value.split(';').next().unwrap_or(value);
            media.trim().to_ascii_lowercase()
        });
        let validator = media
            .as_deref()
            .and_then(|media| media_type(&response.content, media))
            .ok_or_else(|| {
                let actual = content_type.unwrap_or("(none)");
                format!("{what}: Content-Type {actual} is not one of the documented {documented:?}")
            })?;
        match validator {
            None => Ok(()),
            Some(validator) => validate(validator, body).map_err(|errors| {
                format!(
                    "{what} ({}): the body does not match the schema:\n{errors}",
                    route.template
                )
            }),
        }
    }

    /// The names of the headers the response documents (e.g. `Location` for a 201), for a test
    /// to assert.
    pub fn documented_headers(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> anyhow::Result<Vec<String>> {
        let (_, response) = self
            .response(method, path, status)
            .with_context(|| format!("{method} {path} -> {status}"))?;
        Ok(response.headers.clone())
    }

    /// Validates `value` against the named schema `#/components/schemas/<name>` of the document `doc`
    /// ("provisioning", "resources", "common" or an extra document's file stem): for notification bodies.
    pub fn check_schema(&self, doc: &str, schema: &str, value: &Value) -> Result<(), String> {
        let what = format!("{doc} #/components/schemas/{schema}");
        let path = self
            .names
            .get(doc)
            .ok_or_else(|| format!("{what}: no such document (known: {:?})", self.names.keys()))?;
        let validator = self
            .compile(
                path,
                &json!({ "$ref": format!("#/components/schemas/{schema}") }),
            )
            .map_err(|e| format!("{what}: {e:#}"))?;
        validate(&validator, value)
            .map_err(|errors| format!("{what}: the value does not match the schema:\n{errors}"))
    }

    /// Parses the document at `path` and, transitively, the files its `$ref`s name; returns its
    /// canonical path.
    fn load_file(&mut self, path: &Path) -> anyhow::Result<PathBuf> {
        let path =
            std::fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        if self.docs.contains_key(&path) {
            return Ok(path);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let value: Value =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let name = doc_name(&path);
        if let Some(other) = self.names.insert(name.clone(), path.clone()) {
            bail!(
                "{} and {} are both named {name}",
                other.display(),
                path.display()
            );
        }
        let mut files = Vec::new();
        referenced_files(&value, &mut files);
        // Inserted before following the references, which may lead back here.
        self.docs.insert(path.clone(), Doc { name, value });
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        for file in files {
            self.load_file(&dir.join(file))
                .with_context(|| format!("following a $ref of {}", path.display()))?;
        }
        Ok(path)
    }

    /// The documented paths of the document at `root`, with their responses compiled.
    fn routes(&self, root: &Path) -> anyhow::Result<Vec<Route>> {
        let paths = self.docs[root]
            .value
            .get("paths")
            .and_then(Value::as_object);
        let mut routes = Vec::new();
        for (template, item) in paths.into_iter().flatten() {
            let (item_doc, item) = self.deref(root, item)?;
            let mut operations = BTreeMap::new();
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let mut responses = BTreeMap::new();
                let documented = operation.get("responses").and_then(Value::as_object);
                for (key, response) in documented.into_iter().flatten() {
                    let compiled = self
                        .deref(&item_doc, response)
                        .and_then(|(doc, response)| self.compile_response(&doc, response))
                        .with_context(|| format!("{method} {template} {key}"))?;
                    responses.insert(key.clone(), compiled);
                }
                operations.insert(method.to_string(), responses);
            }
            let segments = template
                .split('/')
                .map(|segment| {
                    let param = segment.starts_with('{') && segment.ends_with('}');
                    (!param).then(|| segment.to_string())
                })
                .collect();
            routes.push(Route {
                template: template.clone(),
                segments,
                operations,
            });
        }
        Ok(routes)
    }

    fn compile_response(&self, doc: &Path, response: &Value) -> anyhow::Result<Response> {
        let headers = response.get("headers").and_then(Value::as_object);
        let headers = headers
            .into_iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .collect();
        let mut content = BTreeMap::new();
        let documented = response.get("content").and_then(Value::as_object);
        for (media, object) in documented.into_iter().flatten() {
            let validator = match object.get("schema") {
                Some(schema) => Some(self.compile(doc, schema)?),
                None => None,
            };
            content.insert(media.to_ascii_lowercase(), validator);
        }
        Ok(Response { headers, content })
    }

    /// Compiles the OpenAPI `schema` found in the document `doc` into a validator.
    fn compile(&self, doc: &Path, schema: &Value) -> anyhow::Result<jsonschema::Validator> {
        let mut bundle = Bundle {
            documents: self,
            defs: Map::new(),
            keys: HashMap::new(),
        };
        let mut root = bundle.schema(doc, schema)?;
        let Value::Object(object) = &mut root else {
            bail!("a schema is not an object: {schema}");
        };
        if !bundle.defs.is_empty() {
            object.insert("$defs".to_string(), Value::Object(bundle.defs));
        }
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            // Formats are annotations by default in 2020-12; unknown ones (`double`) stay ignored.
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| anyhow!("invalid schema {root}: {e}"))
    }

    /// The route matching `path` and its documented response for `method` and `status`.
    fn response(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> anyhow::Result<(&Route, &Response)> {
        let segments: Vec<&str> = path.split('/').collect();
        let route = self
            .routes
            .iter()
            .filter(|route| {
                route.segments.len() == segments.len()
                    && route.segments.iter().zip(&segments).all(
                        |(template, segment)| match template {
                            Some(literal) => literal == segment,
                            None => !segment.is_empty(),
                        },
                    )
            })
            // Literal segments win over templated ones, left to right.
            .max_by_key(|route| {
                route
                    .segments
                    .iter()
                    .map(Option::is_some)
                    .collect::<Vec<_>>()
            })
            .context("no documented path matches")?;
        let responses = route
            .operations
            .get(&method.to_ascii_lowercase())
            .with_context(|| {
                let documented: Vec<&String> = route.operations.keys().collect();
                format!(
                    "{} documents no {method} (only {documented:?})",
                    route.template
                )
            })?;
        let range = format!("{}XX", status / 100);
        let response = responses
            .get(&status.to_string())
            .or_else(|| {
                responses
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(&range))
                    .map(|(_, r)| r)
            })
            .or_else(|| responses.get("default"))
            .with_context(|| {
                let documented: Vec<&String> = responses.keys().collect();
                format!(
                    "status {status} is not documented for {method} {} (only {documented:?})",
                    route.template
                )
            })?;
        Ok((route, response))
    }

    /// The document and the value that `reference`, found in the document `doc`, points to.
    fn resolve(&self, doc: &Path, reference: &str) -> anyhow::Result<(PathBuf, &Value)> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if file.is_empty() {
            doc.to_path_buf()
        } else {
            let dir = doc.parent().unwrap_or(Path::new("/"));
            std::fs::canonicalize(dir.join(file))
                .with_context(|| format!("$ref {reference} in {}", doc.display()))?
        };
        let value = self
            .docs
            .get(&target)
            .and_then(|target| target.value.pointer(pointer))
            .with_context(|| format!("$ref {reference} in {} points nowhere", doc.display()))?;
        Ok((target, value))
    }

    /// Follows the `$ref`s of a response or path item to the object they name.
    fn deref<'a>(
        &'a self,
        doc: &Path,
        mut value: &'a Value,
    ) -> anyhow::Result<(PathBuf, &'a Value)> {
        let mut doc = doc.to_path_buf();
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                None => return Ok((doc, value)),
                Some(reference) => (doc, value) = self.resolve(&doc, reference)?,
            }
        }
        bail!("a cycle of $refs in {}", doc.display())
    }
}

/// Translates OpenAPI schemas into one JSON Schema, collecting what they reference in `defs`.
struct Bundle<'a> {
    documents: &'a Documents,
    defs: Map<String, Value>,
    /// The `$defs` key of each referenced (document, JSON pointer).
    keys: HashMap<(PathBuf, String), String>,
}

impl Bundle<'_> {
    /// The JSON Schema equivalent of the OpenAPI 3.0 `schema` found in the document `doc`.
    fn schema(&mut self, doc: &Path, schema: &Value) -> anyhow::Result<Value> {
        let Some(object) = schema.as_object() else {
            return Ok(schema.clone());
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            // OpenAPI 3.0 ignores the siblings of a `$ref`.
            let key = self.definition(doc, reference)?;
            return Ok(json!({ "$ref": format!("#/$defs/{key}") }));
        }
        let mut out = Map::new();
        for (keyword, value) in object {
            let value = match keyword.as_str() {
                // Documentation, code-generation hints, and `nullable` (applied below).
                "nullable" | "example" | "readOnly" | "writeOnly" | "xml" | "externalDocs"
                | "deprecated" | "discriminator" => continue,
                extension if extension.starts_with("x-") => continue,
                "properties" => {
                    let mut properties = Map::new();
                    for (name, property) in value.as_object().into_iter().flatten() {
                        properties.insert(name.clone(), self.schema(doc, property)?);
                    }
                    Value::Object(properties)
                }
                "items" | "additionalProperties" | "not" => self.schema(doc, value)?,
                "allOf" | "anyOf" | "oneOf" => {
                    let schemas = value.as_array().into_iter().flatten();
                    Value::Array(
                        schemas
                            .map(|s| self.schema(doc, s))
                            .collect::<anyhow::Result<_>>()?,
                    )
                }
                _ => value.clone(),
            };
            out.insert(keyword.clone(), value);
        }
        // Draft 4's boolean `exclusiveMinimum` qualifies `minimum`; later drafts take the bound.
        for (exclusive, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if let Some(Value::Bool(is_exclusive)) = out.get(exclusive).cloned() {
                out.remove(exclusive);
                if let (true, Some(bound)) = (is_exclusive, out.remove(bound)) {
                    out.insert(exclusive.to_string(), bound);
                }
            }
        }
        if object.get("nullable") == Some(&Value::Bool(true)) {
            return Ok(allow_null(out));
        }
        Ok(Value::Object(out))
    }

    /// The `$defs` key holding the translation of what `reference` (found in `doc`) points to,
    /// translating it on first use.
    fn definition(&mut self, doc: &Path, reference: &str) -> anyhow::Result<String> {
        let documents = self.documents;
        let (target_doc, target) = documents.resolve(doc, reference)?;
        let pointer = reference.split_once('#').map_or("", |(_, pointer)| pointer);
        let id = (target_doc.clone(), pointer.to_string());
        if let Some(key) = self.keys.get(&id) {
            return Ok(key.clone());
        }
        // A readable key (`provisioning.components.schemas.X`) that is safe in a URI fragment.
        let name = format!(
            "{}{}",
            documents.docs[&target_doc].name,
            pointer.replace('/', ".")
        );
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut key = name.clone();
        for n in 2.. {
            if !self.defs.contains_key(&key) {
                break;
            }
            key = format!("{name}_{n}");
        }
        // Claimed before translating the target, so that a recursive reference finds it.
        self.keys.insert(id, key.clone());
        self.defs.insert(key.clone(), Value::Null);
        let translated = self.schema(&target_doc, target)?;
        self.defs.insert(key.clone(), translated);
        Ok(key)
    }
}

/// `nullable: true`: null is allowed besides what the schema allows.
fn allow_null(mut schema: Map<String, Value>) -> Value {
    let Some(Value::String(kind)) = schema.get("type").cloned() else {
        return json!({ "anyOf": [{ "type": "null" }, schema] });
    };
    schema.insert("type".to_string(), json!([kind, "null"]));
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        values.push(Value::Null);
    }
    Value::Object(schema)
}

/// The validator documented for `media`: exactly, else by `type/*`, else by `*/*`.
fn media_type<'a>(
    content: &'a BTreeMap<String, Option<jsonschema::Validator>>,
    media: &str,
) -> Option<&'a Option<jsonschema::Validator>> {
    let wildcard = media.split_once('/').map(|(kind, _)| format!("{kind}/*"));
    content
        .get(media)
        .or_else(|| wildcard.and_then(|wildcard| content.get(&wildcard)))
        .or_else(|| content.get("*/*"))
}

/// Every error of `value` against `validator`, a line each with its instance path.
fn validate(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|error| {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "(root)".to_string()
            } else {
                path
            };
            format!("  at {path}: {error}")
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The files named by the `$ref`s anywhere in `value` (not the local `#/...` ones).
fn referenced_files(value: &Value, files: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        let file = reference.split('#').next().unwrap_or_default();
                        if !file.is_empty() && !files.iter().any(|known| known == file) {
                            files.push(file.to_string());
                        }
                    }
                    _ => referenced_files(value, files),
                }
            }
        }
        Value::Array(values) => values
            .iter()
            .for_each(|value| referenced_files(value, files)),
        _ => {}
    }
}

/// The file stem, or `<name>` for the shared layout's `<name>/api/openapi.yaml`.
fn doc_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let api = path
        .parent()
        .filter(|dir| dir.file_name() == Some("api".as_ref()));
    match api.and_then(Path::parent).and_then(Path::file_name) {
        Some(name) if stem == "openapi" => name.to_string_lossy().into_owned(),
        _ => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTS: &str = "/o2ims-infrastructureProvisioning/v1/provisioningRequests";
    const ID: &str = "123e4567-e89b-12d3-a456-426614174000";

    fn documents() -> Documents {
        Documents::load(&[]).expect("the shared OpenAPI documents load")
    }

    fn provisioning_request(phase: &str) -> Value {
        let status = json!({
            "resourceName": "cluster-1",
            "resourceId": "a1478db9-651f-4d30-96d6-8af13481d779",
            "resourceProvisioningPhase": "PROVISIONED",
        });
        json!({
            "provisioningRequestReference": "822eca7c-54cd-4cbe-a01f-8b4ccb4bb3cf",
            "provisioningRequestData": {
                "provisioningRequestId": ID,
                "name": "cluster-1",
                "description": "a cluster",
                "templateName": "sno",
                "templateVersion": "v1",
                "templateParameters": { "nodes": 1 },
            },
            "provisionedResourceSet": {
                "nodeClusterId": "a1478db9-651f-4d30-96d6-8af13481d779",
                "infrastructureResourceIds": ["res-1"],
            },
            "status": {
                "updateTime": "2024-01-15T20:32:28Z",
                "message": "done",
                "provisioningPhase": phase,
                "nodeClusterProvisioningStatus": status,
                "infrastructureResourceProvisioningStatus": [status],
            },
        })
    }

    #[test]
    fn a_provisioning_request_list_passes() {
        let body = json!([provisioning_request("FULFILLED")]);
        documents()
            .check(
                "GET",
                REQUESTS,
                200,
                Some("application/json; charset=utf-8"),
                Some(&body),
            )
            .expect("valid");
    }

    #[test]
    fn a_lower_case_phase_fails_naming_the_path() {
        let body = json!([provisioning_request("pending")]);
        let error = documents()
            .check("GET", REQUESTS, 200, Some("application/json"), Some(&body))
            .expect_err("invalid");
        assert!(error.contains("/0/status/provisioningPhase"), "{error}");
    }

    #[test]
    fn problem_details_need_their_media_type_and_detail() {
        let documents = documents();
        let path = format!("{REQUESTS}/{ID}");
        let problem = json!({ "status": 404, "detail": "x" });
        let check = |content_type, body: &Value| {
            documents.check("GET", &path, 404, Some(content_type), Some(body))
        };
        check("application/problem+json", &problem).expect("valid");
        let error = check("application/json", &problem).expect_err("wrong media type");
        assert!(error.contains("application/problem+json"), "{error}");
        let error =
            check("application/problem+json", &json!({ "status": 404 })).expect_err("no detail");
        assert!(error.contains("detail"), "{error}");
    }

    #[test]
    fn undocumented_statuses_and_paths_are_refused() {
        let documents = documents();
        let error = documents
            .check("GET", REQUESTS, 418, None, None)
            .expect_err("418");
        assert!(error.contains("418 is not documented"), "{error}");
        let error = documents.check(
            "GET",
            "/o2ims-infrastructureProvisioning/v1/nothing",
            200,
            None,
            None,
        );
        assert!(
            error
                .expect_err("no such path")
                .contains("no documented path")
        );
        let error = documents
            .check("PATCH", REQUESTS, 200, None, None)
            .expect_err("no PATCH");
        assert!(error.contains("documents no PATCH"), "{error}");
    }

    #[test]
    fn bodies_follow_the_documented_content() {
        let documents = documents();
        let path = format!("{REQUESTS}/{ID}");
        documents
            .check("DELETE", &path, 202, None, None)
            .expect("202 has no content");
        let error = documents.check(
            "DELETE",
            &path,
            202,
            Some("application/json"),
            Some(&json!({})),
        );
        assert!(error.expect_err("unexpected body").contains("no content"));
        let error = documents.check("GET", &path, 200, Some("application/json"), None);
        assert!(error.expect_err("missing body").contains("body is empty"));
    }

    #[test]
    fn created_requests_document_a_location() {
        let headers = documents()
            .documented_headers("POST", REQUESTS, 201)
            .expect("documented");
        assert!(headers.iter().any(|h| h == "Location"), "{headers:?}");
    }

    /// An extra document, with a relative `$ref` into a file next to it.
    #[test]
    fn extra_documents_route_by_specificity() {
        let dir = std::env::temp_dir().join(format!("openapi-extra-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("defs")).expect("temp dir");
        let json =
            |schema: &str| format!("{{content: {{application/json: {{schema: {schema}}}}}}}");
        let item = "{$ref: 'defs/things.yaml#/components/schemas/Item'}";
        let spec = format!(
            "openapi: 3.0.3\npaths:\n  /things/special:\n    get:\n      responses: {{'200': {}}}\n  \
             /things/{{id}}:\n    get:\n      responses:\n        '2XX': {}\n        default: {{description: x}}\n",
            json("{type: string}"),
            json(item),
        );
        std::fs::write(dir.join("extra.yaml"), spec).expect("write");
        let things = "components: {schemas: {Item: {type: object, required: [id], properties: \
                      {id: {type: string, nullable: true}}}}}";
        std::fs::write(dir.join("defs/things.yaml"), things).expect("write");
        let documents = Documents::load(&[dir.join("extra.yaml")]);
        std::fs::remove_dir_all(&dir).expect("clean up");
        let documents = documents.expect("loads");

        let json = Some("application/json");
        documents
            .check("GET", "/things/special", 200, json, Some(&json!("s")))
            .expect("literal route");
        documents
            .check("GET", "/things/1", 203, json, Some(&json!({ "id": null })))
            .expect("2XX, nullable");
        let error = documents.check("GET", "/things/1", 200, json, Some(&json!({})));
        assert!(
            error
                .expect_err("no id")
                .contains("\"id\" is a required property")
        );
        documents
            .check("GET", "/things/1", 500, None, None)
            .expect("default");
        documents
            .check("GET", "/things/", 200, json, Some(&json!("s")))
            .expect_err("empty segment");
        let error = documents.check_schema("things", "Item", &json!({ "id": 1 }));
        assert!(error.expect_err("number").contains("/id"));
    }

    #[test]
    fn recursive_resources_validate() {
        let resource = |elements: Value| {
            json!({
                "resourceId": "39c85e74-2e98-4e3d-8fec-e5a849d967c6",
                "resourcePoolId": "39c85e74-2e98-4e3d-8fec-e5a849d967c6",
                "resourceTypeId": "56337d0e-8bee-47d3-afcb-3c621cffa2b7",
                "globalAssetId": "serial-1",
                "description": "a node",
                "elements": elements,
                "tags": [],
                "groups": [],
                "extensions": { "any": { "thing": 1 } },
            })
        };
        let documents = documents();
        let nested = resource(json!([resource(json!([]))]));
        documents
            .check_schema("resources", "Resource", &nested)
            .expect("valid");
        let bad = resource(json!([{ "resourceId": "x" }]));
        let error = documents
            .check_schema("resources", "Resource", &bad)
            .expect_err("invalid element");
        assert!(error.contains("/elements/0"), "{error}");
    }

    #[test]
    fn formats_are_validated() {
        let mut request = provisioning_request("FULFILLED");
        request["provisioningRequestReference"] = json!("not-a-uuid");
        let error = documents()
            .check(
                "GET",
                &format!("{REQUESTS}/{ID}"),
                200,
                Some("application/json"),
                Some(&request),
            )
            .expect_err("not a uuid");
        assert!(error.contains("/provisioningRequestReference"), "{error}");
    }

    #[test]
    fn additional_properties_fail_only_where_forbidden() {
        let documents = documents();
        let mut request = provisioning_request("FULFILLED");
        request["unknown"] = json!(1);
        documents
            .check_schema("provisioning", "ProvisioningRequestInfo", &request)
            .expect("open object");
        request["provisioningRequestData"]["unknown"] = json!(1);
        let error = documents
            .check_schema("provisioning", "ProvisioningRequestInfo", &request)
            .expect_err("additionalProperties: false");
        assert!(error.contains("/provisioningRequestData"), "{error}");
    }

    #[test]
    fn openapi_keywords_are_translated() {
        let documents = documents();
        let doc = documents.names["common"].clone();
        let schema = json!({
            "type": "integer", "minimum": 1, "exclusiveMinimum": true, "nullable": true, "example": 1,
            "enum": [1, 2],
        });
        let validator = documents.compile(&doc, &schema).expect("compiles");
        assert!(validator.is_valid(&json!(null)));
        assert!(validator.is_valid(&json!(2)));
        assert!(!validator.is_valid(&json!(1)), "exclusive minimum");
    }

    #[test]
    fn every_shared_document_compiles() {
        let shared = crate::paths::shared_dir().join("o2ims-openapi");
        let extra = ["cluster", "alarms"].map(|name| shared.join(name).join("api/openapi.yaml"));
        let documents = Documents::load(&extra).expect("loads");
        let names: Vec<&String> = documents.names.keys().collect();
        assert_eq!(
            names,
            ["alarms", "cluster", "common", "provisioning", "resources"]
        );
    }

    #[test]
    fn documents_can_be_shared_between_tests() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Documents>();
    }
}
