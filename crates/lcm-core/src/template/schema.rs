//! Validation of template parameters against a TemplateInfo's JSON Schema.

use super::FieldError;

/// Checks `parameters` against `schema_text` (a JSON Schema as JSON or YAML); every
/// violation is reported with its path under `path_prefix`.
pub fn check(
    schema_text: &str,
    parameters: &serde_json::Value,
    path_prefix: &str,
) -> Result<(), Vec<FieldError>> {
    Schema::compile(schema_text, path_prefix)?.check(parameters, path_prefix)
}

/// A template's JSON Schema, compiled once to check many parameter sets (a fleet's clusters).
pub struct Schema(jsonschema::Validator);

impl Schema {
    /// Compiles `schema_text` (JSON or YAML); the error, under `path_prefix`, says why it
    /// cannot be used.
    pub fn compile(schema_text: &str, path_prefix: &str) -> Result<Self, Vec<FieldError>> {
        let schema: serde_json::Value = serde_json::from_str(schema_text)
            .or_else(|_| crate::yaml::from_str(schema_text))
            .map_err(|e| {
                vec![error(
                    path_prefix,
                    format!("the TemplateInfo's schema is neither JSON nor YAML: {e}"),
                )]
            })?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            vec![error(
                path_prefix,
                format!("the TemplateInfo's schema is not a valid JSON Schema: {e}"),
            )]
        })?;
        Ok(Self(validator))
    }

    /// Every violation of `parameters`, with its path under `path_prefix`.
    pub fn check(
        &self,
        parameters: &serde_json::Value,
        path_prefix: &str,
    ) -> Result<(), Vec<FieldError>> {
        let errors: Vec<FieldError> = self
            .0
            .iter_errors(parameters)
            .map(|e| {
                let pointer = e.instance_path().to_string();
                let path = pointer.split('/').filter(|s| !s.is_empty()).fold(
                    path_prefix.to_string(),
                    |path, segment| match segment.parse::<usize>() {
                        Ok(index) => format!("{path}[{index}]"),
                        Err(_) => format!("{path}.{segment}"),
                    },
                );
                error(&path, e.to_string())
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn error(path: &str, message: String) -> FieldError {
    FieldError {
        path: path.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let schema = r#"{"type": "object", "required": ["clusterName"],
            "properties": {"clusterName": {"type": "string"}, "hosts": {"type": "array", "items": {"type": "string"}}}}"#;
        let errors = check(
            schema,
            &json!({"hosts": ["a", 3]}),
            "spec.templateParameters",
        )
        .expect_err("two violations");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"spec.templateParameters"), "{paths:?}");
        assert!(
            paths.contains(&"spec.templateParameters.hosts[1]"),
            "{paths:?}"
        );
        assert!(check(schema, &json!({"clusterName": "a"}), "p").is_ok());
    }

    #[test]
    fn one_compiled_schema_checks_each_parameter_set_on_its_own() {
        let schema = Schema::compile(r#"{"required": ["clusterName"]}"#, "template t v1")
            .expect("a valid schema");
        assert!(
            schema
                .check(&json!({"clusterName": "a"}), "cluster `a`")
                .is_ok()
        );
        let errors = schema
            .check(&json!({}), "cluster `b`")
            .expect_err("missing");
        assert_eq!(errors[0].path, "cluster `b`");
        assert!(
            schema
                .check(&json!({"clusterName": "c"}), "cluster `c`")
                .is_ok()
        );
        let bad = Schema::compile("type: 12", "template t v1")
            .err()
            .expect("invalid");
        assert_eq!(bad[0].path, "template t v1");
    }

    #[test]
    fn yaml_schemas_work_and_bad_schemas_are_named() {
        assert!(check("type: object\nrequired: [a]\n", &json!({}), "p").is_err());
        assert!(check("type: object\n", &json!({}), "p").is_ok());
        let bad = check("type: 12", &json!({}), "p").expect_err("invalid schema");
        assert!(
            bad[0].message.contains("not a valid JSON Schema"),
            "{:?}",
            bad[0]
        );
    }

    #[test]
    fn the_builtin_schema_accepts_valid_parameters_and_names_bad_ones() {
        let schema = serde_json::to_string(&crate::template::parameter_schema()).expect("json");
        let valid = json!({"clusterName": "a", "kubernetesVersion": "v1.32.9",
            "controlPlaneEndpoint": {"host": "10.0.0.1"}, "hosts": {"controlPlane": ["h1"]}});
        assert!(check(&schema, &valid, "p").is_ok());
        let mut invalid = valid.clone();
        invalid["hosts"]["controlPlane"] = json!("h1");
        invalid["cni"] = json!("flannel");
        let errors = check(&schema, &invalid, "p").expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"p.hosts.controlPlane") && paths.contains(&"p.cni"),
            "{paths:?}"
        );
    }
}
