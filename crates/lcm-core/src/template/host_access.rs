//! Who says how hosts are reached: the O-Cloud admin's host inventory, not a request.

use serde_json::Value;

use super::{ClusterParameters, FieldError, ParameterErrors};

/// `validation` of a request's `parameters`, refusing host access the request gives unless
/// `allowed`: addresses, users and keys decide where the fleet's SSH key is used, and are the
/// O-Cloud admin's to give, in the host `inventory`. Host access a running cluster was
/// provisioned with (`applied`) is not refused again.
pub fn refuse_request_host_access(
    allowed: bool,
    inventory: &str,
    applied: Option<&ClusterParameters>,
    parameters: &Value,
    validation: Result<ClusterParameters, ParameterErrors>,
) -> Result<ClusterParameters, ParameterErrors> {
    let given = &parameters["hostAccess"];
    let applied_access = applied.map(|a| serde_json::json!(a.host_access));
    if allowed
        || given.as_array().is_none_or(Vec::is_empty)
        || applied_access.as_ref() == Some(given)
    {
        return validation;
    }
    let refusal = FieldError {
        path: "templateParameters.hostAccess".into(),
        message: format!(
            "requests may not say how hosts are reached: not allowed on this O-Cloud, whose host inventory ({inventory}) does; remove it (the O2IMS operator accepts it only with --allow-request-host-access)"
        ),
    };
    match validation {
        Ok(_) => Err(ParameterErrors(vec![refusal])),
        Err(ParameterErrors(mut errors)) => {
            errors.push(refusal);
            Err(ParameterErrors(errors))
        }
    }
}
