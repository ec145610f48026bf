//! Is a FocomProvisioningRequest valid, and which clusters does it select. Decided once per
//! version of what that depends on (the request's spec, the inventory, its TemplateInfo): a
//! pass woken by a change of one of its clusters' ProvisioningRequests reuses the decision
//! instead of checking the whole fleet against the template again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use lcm_core::conditions::Desired;
use lcm_core::crd::{FocomProvisioningRequest, TemplateInfo};
use lcm_core::focom::{self, Selected};
use lcm_core::inventory::Inventory;
use lcm_core::template::{self, schema::Schema};
use operator_kit::metrics::Metrics;

use crate::config::{Config, INVENTORY_KEY};

pub const VALIDATED: &str = "Validated";
pub const INVENTORY_VALID: &str = "InventoryValid";

/// What validating a request decided.
#[derive(Debug, PartialEq)]
pub enum Validation {
    /// The inventory the request selects from is missing or invalid: its InventoryValid
    /// condition.
    InventoryUnusable(Desired),
    /// The request is invalid: its Validated condition.
    Invalid(Desired),
    /// The clusters it selects, each checked against its template.
    Selected(Vec<Selected>),
}

/// Whether `request` selects its clusters from the inventory (else it describes its one
/// cluster in full).
pub fn selects_from_inventory(request: &FocomProvisioningRequest) -> bool {
    request.spec.template_parameters.is_none()
}

/// The versions of what a validation read: while they stay the same, so does the validation.
#[derive(Debug, PartialEq, Eq)]
struct Versions {
    uid: Option<String>,
    generation: Option<i64>,
    /// The inventory ConfigMap's resourceVersion, for a request that selects from it.
    inventory: Option<String>,
    /// The matching TemplateInfo's uid and resourceVersion; none for the built-in template.
    template: Option<(Option<String>, Option<String>)>,
}

type Last = HashMap<ObjectRef<FocomProvisioningRequest>, (Versions, Arc<Validation>)>;

/// The last validation of each request, and how many were run.
pub struct Validations {
    last: Mutex<Last>,
    runs: Counter,
}

impl Validations {
    /// The validations of this process, their counter registered in `metrics`.
    pub fn of(metrics: &Metrics) -> Arc<Self> {
        metrics.extension(Self::register)
    }

    fn register(registry: &mut Registry) -> Self {
        let runs = Counter::default();
        registry.register(
            "request_validations",
            "Validations of a request's spec against the inventory and its template that were run (not reused)",
            runs.clone(),
        );
        Self {
            last: Mutex::default(),
            runs,
        }
    }

    /// `request` validated against `inventory` (its ConfigMap, if it exists) and the admin's
    /// `templates`: the last validation while none of them changed.
    pub fn validate(
        &self,
        request: &FocomProvisioningRequest,
        inventory: Option<&ConfigMap>,
        templates: &[Arc<TemplateInfo>],
        config: &Config,
    ) -> Arc<Validation> {
        let template = find_template(templates, request);
        let versions = Versions {
            uid: request.uid(),
            generation: request.metadata.generation,
            inventory: inventory
                .filter(|_| selects_from_inventory(request))
                .and_then(ResourceExt::resource_version),
            template: template.map(|t| (t.uid(), t.resource_version())),
        };
        let key = ObjectRef::from_obj(request);
        if let Some((seen, validation)) = lock(&self.last).get(&key)
            && *seen == versions
        {
            return validation.clone();
        }
        self.runs.inc();
        tracing::info!(
            generation = versions.generation,
            inventory_version = versions.inventory.as_deref(),
            "validating the request against the inventory and its template"
        );
        let validation = Arc::new(validate(request, inventory, template, config));
        lock(&self.last).insert(key, (versions, validation.clone()));
        validation
    }

    /// Drops what is kept of `request` (it is gone).
    pub fn forget(&self, request: &FocomProvisioningRequest) {
        lock(&self.last).remove(&ObjectRef::from_obj(request));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn validate(
    request: &FocomProvisioningRequest,
    inventory: Option<&ConfigMap>,
    template: Option<&TemplateInfo>,
    config: &Config,
) -> Validation {
    let inventory = match selects_from_inventory(request) {
        false => None,
        true => match parse_inventory(inventory, config) {
            Ok(inventory) => Some(inventory),
            Err(unusable) => return Validation::InventoryUnusable(unusable),
        },
    };
    match select(request, inventory.as_ref(), template, config) {
        Ok(selected) => Validation::Selected(selected),
        Err(invalid) => Validation::Invalid(invalid),
    }
}

/// The inventory from its ConfigMap, or the InventoryValid condition saying what is wrong.
fn parse_inventory(config_map: Option<&ConfigMap>, config: &Config) -> Result<Inventory, Desired> {
    let source = format!(
        "ConfigMap {}/{}",
        config.inventory_namespace(),
        config.inventory_configmap
    );
    let Some(text) = config_map.and_then(|c| c.data.as_ref()?.get(INVENTORY_KEY)) else {
        let message = format!("{source} with key {INVENTORY_KEY} does not exist");
        return Err(Desired::false_(
            INVENTORY_VALID,
            "InventoryMissing",
            message,
        ));
    };
    Inventory::parse(&format!("{source} key {INVENTORY_KEY}"), text)
        .map_err(|e| Desired::false_(INVENTORY_VALID, "InvalidInventory", e.to_string()))
}

/// The selected clusters, each checked against the template's JSON Schema, or the Validated
/// condition saying what is wrong.
fn select(
    request: &FocomProvisioningRequest,
    inventory: Option<&Inventory>,
    template: Option<&TemplateInfo>,
    config: &Config,
) -> Result<Vec<Selected>, Desired> {
    let spec = &request.spec;
    let invalid =
        |problems: Vec<String>| Desired::false_(VALIDATED, "InvalidRequest", problems.join("; "));
    let builtin =
        spec.template_name == template::NAME && spec.template_version == template::VERSION;
    let schema = match template {
        Some(info) => info.spec.template_parameter_schema.clone(),
        None if builtin => template::parameter_schema().to_string(),
        None => {
            let message = format!(
                "no TemplateInfo for template {} {} (and it is not the built-in {} {})",
                spec.template_name,
                spec.template_version,
                template::NAME,
                template::VERSION
            );
            return Err(Desired::false_(VALIDATED, "UnknownTemplate", message));
        }
    };
    // Compiled once: a fleet's clusters are each checked against it.
    let template_name = format!("template {} {}", spec.template_name, spec.template_version);
    let schema = Schema::compile(&schema, &template_name)
        .map_err(|errors| invalid(errors.iter().map(ToString::to_string).collect()))?;
    // The request's own parameters are checked as sent; inventory clusters as derived.
    let mut problems = Vec::new();
    if let Some(parameters) = &spec.template_parameters {
        if let Err(errors) = schema.check(parameters, "spec.templateParameters") {
            problems.extend(errors.iter().map(ToString::to_string));
        }
        if !config.allow_request_host_access
            && parameters["hostAccess"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            // Addresses, users and keys of the hosts are the O-Cloud admin's to give: they
            // decide where the fleet's SSH key is sent.
            problems.push(
                "spec.templateParameters.hostAccess: requests may not say how hosts are reached on this O-Cloud; the admin's inventory does (or the FOCOM operator runs with --allow-request-host-access)".into(),
            );
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let selected = focom::select(request, inventory)
        .map_err(|found| invalid(found.iter().map(ToString::to_string).collect()))?;
    if inventory.is_some() {
        for cluster in &selected {
            let value = serde_json::to_value(&cluster.parameters).unwrap_or_default();
            if let Err(errors) = schema.check(&value, &format!("cluster `{}`", cluster.name)) {
                problems.extend(errors.iter().map(ToString::to_string));
            }
        }
    }
    match problems.is_empty() {
        true => Ok(selected),
        false => Err(invalid(problems)),
    }
}

/// The TemplateInfo of the request's template: matching its name and version (by spec fields
/// or by Nephio's `<templateName>-<templateVersion>` name), among the admin's only, so a tenant
/// cannot shadow the catalogue from its own namespace.
fn find_template<'a>(
    templates: &'a [Arc<TemplateInfo>],
    request: &FocomProvisioningRequest,
) -> Option<&'a TemplateInfo> {
    let spec = &request.spec;
    let nephio_name = format!("{}-{}", spec.template_name, spec.template_version);
    templates
        .iter()
        .find(|info| {
            (info.spec.template_name == spec.template_name
                && info.spec.template_version == spec.template_version)
                || info.name_any() == nephio_name
        })
        .map(AsRef::as_ref)
}

#[cfg(test)]
mod tests;
