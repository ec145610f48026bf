use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use lcm_core::crd::{FocomProvisioningRequestSpec, TemplateInfoSpec};

use super::*;

const INVENTORY: &str = include_str!("../../../../input.json");

fn config() -> Config {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        config: Config,
    }
    <Flags as clap::Parser>::try_parse_from(["focom-operator", "--pod-namespace", "focom"])
        .expect("flags")
        .config
}

fn request(generation: i64, spec: FocomProvisioningRequestSpec) -> FocomProvisioningRequest {
    let mut request = FocomProvisioningRequest::new("fleet", spec);
    request.metadata.namespace = Some("smo".into());
    request.metadata.uid = Some("uid-1".into());
    request.metadata.generation = Some(generation);
    request
}

fn all_clusters() -> FocomProvisioningRequestSpec {
    FocomProvisioningRequestSpec {
        template_name: template::NAME.into(),
        template_version: template::VERSION.into(),
        all_clusters: Some(true),
        ..Default::default()
    }
}

fn inventory(resource_version: &str, text: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("lcm-inventory".into()),
            resource_version: Some(resource_version.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(INVENTORY_KEY.into(), text.into())])),
        ..Default::default()
    }
}

fn template_info(resource_version: &str) -> Arc<TemplateInfo> {
    let mut info = TemplateInfo::new(
        "published",
        TemplateInfoSpec {
            template_name: template::NAME.into(),
            template_version: template::VERSION.into(),
            template_parameter_schema: template::parameter_schema().to_string(),
        },
    );
    info.metadata.uid = Some("template-uid".into());
    info.metadata.resource_version = Some(resource_version.into());
    Arc::new(info)
}

fn selected(validation: &Validation) -> Vec<&str> {
    match validation {
        Validation::Selected(clusters) => clusters.iter().map(|c| c.name.as_str()).collect(),
        other => panic!("not selected: {other:?}"),
    }
}

#[test]
fn a_request_is_validated_again_only_when_something_it_reads_changes() {
    let metrics = Metrics::new("test");
    let validations = Validations::of(&metrics);
    let config = config();
    let runs = || validations.runs.get();
    let fleet = request(1, all_clusters());
    let first = validations.validate(&fleet, Some(&inventory("1", INVENTORY)), &[], &config);
    assert_eq!(selected(&first), ["core", "edge"]);
    let again = validations.validate(&fleet, Some(&inventory("1", INVENTORY)), &[], &config);
    assert!(Arc::ptr_eq(&first, &again), "reused");
    assert_eq!(runs(), 1);

    // Each input's new version is read: the inventory, the spec, the template.
    let fewer = INVENTORY.replace("\"name\": \"edge\"", "\"name\": \"far-edge\"");
    let edited = validations.validate(&fleet, Some(&inventory("2", &fewer)), &[], &config);
    assert_eq!(selected(&edited), ["core", "far-edge"]);
    let fleet = request(2, all_clusters());
    validations.validate(&fleet, Some(&inventory("2", &fewer)), &[], &config);
    let published = [template_info("7")];
    validations.validate(&fleet, Some(&inventory("2", &fewer)), &published, &config);
    validations.validate(&fleet, None, &published, &config);
    assert_eq!(runs(), 5);

    // Once gone, nothing of it is kept.
    validations.forget(&fleet);
    validations.validate(&fleet, None, &published, &config);
    assert_eq!(runs(), 6);
}

#[test]
fn a_request_describing_its_cluster_does_not_depend_on_the_inventory() {
    let metrics = Metrics::new("test");
    let validations = Validations::of(&metrics);
    let config = config();
    let inventory_clusters = Inventory::parse("input.json", INVENTORY).expect("inventory");
    let core = &inventory_clusters.clusters[0];
    let mut parameters =
        serde_json::to_value(inventory_clusters.parameters(core)).expect("parameters");
    parameters
        .as_object_mut()
        .expect("object")
        .remove("hostAccess");
    let one = request(
        1,
        FocomProvisioningRequestSpec {
            all_clusters: None,
            template_parameters: Some(parameters),
            ..all_clusters()
        },
    );
    let first = validations.validate(&one, Some(&inventory("1", INVENTORY)), &[], &config);
    let after_edit = validations.validate(&one, Some(&inventory("2", "{}")), &[], &config);
    assert_eq!(selected(&first), ["core"]);
    assert!(Arc::ptr_eq(&first, &after_edit));
    assert_eq!(validations.runs.get(), 1);
}

#[test]
fn what_is_wrong_is_said_by_condition_and_reason() {
    let metrics = Metrics::new("test");
    let validations = Validations::of(&metrics);
    let config = config();
    let reason = |validation: &Validation| match validation {
        Validation::InventoryUnusable(c) => (c.type_, c.reason.clone()),
        Validation::Invalid(c) => (c.type_, c.reason.clone()),
        Validation::Selected(_) => panic!("valid"),
    };
    let fleet = request(1, all_clusters());
    let missing = validations.validate(&fleet, None, &[], &config);
    assert_eq!(
        reason(&missing),
        (INVENTORY_VALID, "InventoryMissing".into())
    );
    let broken = validations.validate(&fleet, Some(&inventory("1", "{")), &[], &config);
    assert_eq!(
        reason(&broken),
        (INVENTORY_VALID, "InvalidInventory".into())
    );
    let unknown = request(
        2,
        FocomProvisioningRequestSpec {
            template_name: "other".into(),
            ..all_clusters()
        },
    );
    let refused = validations.validate(&unknown, Some(&inventory("1", INVENTORY)), &[], &config);
    assert_eq!(reason(&refused), (VALIDATED, "UnknownTemplate".into()));
    let names = request(
        3,
        FocomProvisioningRequestSpec {
            all_clusters: None,
            cluster_names: Some(vec!["nowhere".into()]),
            ..all_clusters()
        },
    );
    let invalid = validations.validate(&names, Some(&inventory("1", INVENTORY)), &[], &config);
    assert_eq!(reason(&invalid), (VALIDATED, "InvalidRequest".into()));
}
