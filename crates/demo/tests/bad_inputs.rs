//! A tenant's bad input, case by case, beside a running cluster: every case is refused by the
//! API server or fails with a condition whose reason and message name what is wrong, creates
//! nothing, and leaves the running cluster's objects exactly as they were (resourceVersions).

use std::collections::BTreeMap;
use std::time::Duration;

use demo::{O2IMS_NAMESPACE, World, WorldOptions};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use serde_json::{Value, json};

const NS: &str = "focom-system";
const TENANT: &str = "tenant-b";
const TIMEOUT: Duration = Duration::from_secs(30);

/// What a case must end in.
enum Expect {
    /// The API server refuses the last object; its message contains this.
    Refused(&'static str),
    /// The last object (a FocomProvisioningRequest or a ProvisioningRequest) gets `condition`
    /// False with `reason`, and its message contains `names`.
    Condition {
        condition: &'static str,
        reason: &'static str,
        names: &'static str,
    },
}

struct Case {
    name: &'static str,
    /// Applied in order; the last is the one judged.
    objects: Vec<Value>,
    /// Replaces the FOCOM inventory for this case.
    inventory: Option<String>,
    expect: Expect,
}

fn shipped() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../input.json"))
        .expect("input.json")
}

fn fpr(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

fn bad_fpr(spec: Value) -> Value {
    fpr(NS, "bad", spec)
}

/// A FocomProvisioningRequest describing one cluster in full, with `change` merged into the
/// parameters of a valid one (on free hosts).
fn bad_template(change: Value) -> Value {
    let mut parameters = valid_parameters();
    merge(&mut parameters, change);
    bad_fpr(json!({"oCloudId": "local", "templateParameters": parameters}))
}

fn valid_parameters() -> Value {
    json!({"clusterName": "lab", "kubernetesVersion": "v1.32.9",
        "controlPlaneEndpoint": {"host": "172.20.10.120"},
        "hosts": {"controlPlane": ["host-3"], "workers": ["host-4"]}, "hostPreparation": "skip"})
}

fn bad_request(change: Value) -> Value {
    let mut parameters = valid_parameters();
    merge(&mut parameters, change);
    json!({"apiVersion": "o2ims.provisioning.oran.org/v1alpha1", "kind": "ProvisioningRequest",
        "metadata": {"name": "bad-request"},
        "spec": {"templateName": "byoh-workload-cluster", "templateVersion": "v1", "templateParameters": parameters}})
}

fn merge(target: &mut Value, change: Value) {
    match (target, change) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, v) in c {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, c) => *t = c,
    }
}

fn with_inventory(change: impl FnOnce(&mut Value)) -> String {
    let mut inventory: Value = serde_json::from_str(&shipped()).expect("input.json");
    change(&mut inventory);
    inventory.to_string()
}

fn ocloud(namespace: &str, name: &str, secret: Option<(&str, &str)>) -> Value {
    let spec = match secret {
        Some((ns, secret)) => {
            json!({"o2imsSecret": {"secretRef": {"name": secret, "namespace": ns}}})
        }
        None => json!({}),
    };
    json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

fn kubeconfig_secret(name: &str, kubeconfig: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
        "stringData": {"kubeconfig": kubeconfig}})
}

/// A kubeconfig for `server` whose user is `user` (YAML flow mapping).
fn kubeconfig(server: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n\
         users: [{{name: u, user: {user}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
    )
}

/// The remote-O-Cloud cases: an OCloud `remote` whose Secret holds `kubeconfig`.
fn remote_case(
    name: &'static str,
    kubeconfig: String,
    reason: &'static str,
    names: &'static str,
) -> Case {
    failing(
        name,
        bad_fpr(json!({"oCloudId": "remote", "clusterNames": ["edge"]})),
        "OCloudReachable",
        reason,
        names,
    )
    .with(|c| {
        c.objects
            .insert(0, kubeconfig_secret("remote-kubeconfig", &kubeconfig));
        c.objects
            .insert(1, ocloud(NS, "remote", Some((NS, "remote-kubeconfig"))));
    })
}

fn inventory_case(
    name: &'static str,
    change: impl FnOnce(&mut Value),
    names: &'static str,
) -> Case {
    let mut case = failing(
        name,
        bad_fpr(json!({"oCloudId": "local", "clusterNames": ["edge"]})),
        "InventoryValid",
        "InvalidInventory",
        names,
    );
    case.inventory = Some(with_inventory(change));
    case
}

/// A case that applies `object` and expects it to fail with `condition` False/`reason`.
fn failing(
    name: &'static str,
    object: Value,
    condition: &'static str,
    reason: &'static str,
    names: &'static str,
) -> Case {
    Case {
        name,
        objects: vec![object],
        inventory: None,
        expect: Expect::Condition {
            condition,
            reason,
            names,
        },
    }
}

fn template_case(
    name: &'static str,
    change: Value,
    reason: &'static str,
    names: &'static str,
) -> Case {
    failing(name, bad_template(change), "Validated", reason, names)
}

fn request_case(
    name: &'static str,
    change: Value,
    reason: &'static str,
    names: &'static str,
) -> Case {
    failing(
        name,
        bad_request(change),
        "ProvisioningRequestValidated",
        reason,
        names,
    )
}

fn refused(name: &'static str, objects: Vec<Value>, names: &'static str) -> Case {
    Case {
        name,
        objects,
        inventory: None,
        expect: Expect::Refused(names),
    }
}

const HOSTILE: &str = "{{ lookup('pipe', 'id') }}";

fn cases(server: &str) -> Vec<Case> {
    let access = |field: &str, value: &str| {
        let mut access = json!({"id": "host-3", "hostname": "edge-node-3", "address": "172.20.10.13", "sshUser": "ubuntu"});
        access[field] = json!(value);
        json!({"hostPreparation": "auto", "hostAccess": [access]})
    };
    let host_field = |field: &'static str, value: Value| {
        move |inventory: &mut Value| inventory["hosts"][2][field] = value
    };
    let running = fpr(
        NS,
        "running",
        json!({"oCloudId": "local", "clusterNames": ["core"]}),
    );
    let mut moved = running.clone();
    moved["spec"]["oCloudNamespace"] = json!(TENANT);
    let mut renamed = running.clone();
    renamed["spec"]["oCloudId"] = json!("paris-edge");
    vec![
        // The FocomProvisioningRequest CRD refuses these at once.
        refused("two selectors", vec![bad_fpr(json!({"allClusters": true, "clusterNames": ["edge"]}))], "exactly one of"),
        refused("no selector", vec![bad_fpr(json!({"oCloudId": "local"}))], "exactly one of"),
        refused("empty clusterNames", vec![bad_fpr(json!({"clusterNames": []}))], "at least one cluster"),
        refused("unknown operation", vec![bad_fpr(json!({"clusterNames": ["edge"], "operation": "explode"}))], "operation"),
        refused("oCloudNamespace changed after creation", vec![moved], "oCloud"),
        refused("oCloudId changed after creation", vec![renamed], "oCloud"),
        refused("TemplateInfo without a schema", vec![json!({"apiVersion": "provisioning.oran.org/v1alpha1", "kind": "TemplateInfo",
            "metadata": {"name": "broken", "namespace": NS}, "spec": {"templateName": "x", "templateVersion": "v1"}})], "templateParameterSchema"),
        refused("OCloud secretRef without a name", vec![json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud",
            "metadata": {"name": "nameless", "namespace": NS}, "spec": {"o2imsSecret": {"secretRef": {"namespace": NS}}}})], "name"),
        // The O-Cloud a request names.
        Case { name: "OCloud that does not exist", objects: vec![bad_fpr(json!({"oCloudId": "atlantis", "clusterNames": ["edge"]}))],
            inventory: None, expect: Expect::Condition { condition: "OCloudReachable", reason: "OCloudNotFound", names: "atlantis" } },
        Case { name: "OCloud of another tenant", objects: vec![ocloud(TENANT, "theirs", None),
            bad_fpr(json!({"oCloudId": "theirs", "oCloudNamespace": TENANT, "clusterNames": ["edge"]}))],
            inventory: None, expect: Expect::Condition { condition: "OCloudReachable", reason: "OCloudNotAllowed", names: "oCloudNamespace" } },
        Case { name: "OCloud naming another namespace's Secret", objects: vec![ocloud(NS, "remote", Some(("kube-system", "admin-kubeconfig"))),
            bad_fpr(json!({"oCloudId": "remote", "clusterNames": ["edge"]}))],
            inventory: None, expect: Expect::Condition { condition: "OCloudReachable", reason: "SecretNotAllowed", names: "kube-system" } },
        Case { name: "OCloud Secret that does not exist", objects: vec![ocloud(NS, "remote", Some((NS, "missing"))),
            bad_fpr(json!({"oCloudId": "remote", "clusterNames": ["edge"]}))],
            inventory: None, expect: Expect::Condition { condition: "OCloudReachable", reason: "SecretNotFound", names: "missing" } },
        Case { name: "OCloud Secret without a kubeconfig", objects: vec![
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "remote-kubeconfig", "namespace": NS}, "stringData": {"config": "x"}}),
            ocloud(NS, "remote", Some((NS, "remote-kubeconfig"))),
            bad_fpr(json!({"oCloudId": "remote", "clusterNames": ["edge"]}))],
            inventory: None, expect: Expect::Condition { condition: "OCloudReachable", reason: "KubeconfigMissing", names: "kubeconfig" } },
        remote_case("kubeconfig that is not YAML", "{{{".into(), "InvalidKubeconfig", "remote-kubeconfig"),
        remote_case("kubeconfig running a command", kubeconfig(server, "{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: ['-c', 'id']}}"), "InvalidKubeconfig", "exec"),
        remote_case("kubeconfig reading a token file", kubeconfig(server, "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}"), "InvalidKubeconfig", "tokenFile"),
        remote_case("kubeconfig with an auth provider", kubeconfig(server, "{auth-provider: {name: gcp}}"), "InvalidKubeconfig", "auth-provider"),
        remote_case("kubeconfig reading a key file", kubeconfig(server, "{client-certificate: /etc/kubernetes/pki/admin.crt, client-key: /etc/kubernetes/pki/admin.key}"), "InvalidKubeconfig", "client-key"),
        // The inventory (input.json in the FOCOM operator's ConfigMap).
        inventory_case("inventory that is not JSON", |i| *i = json!("not an inventory"), "$"),
        inventory_case("inventory with an unknown field", |i| i["hosts"][2]["port"] = json!(22), "hosts[2]"),
        inventory_case("inventory with a host id twice", |i| i["hosts"][3]["id"] = json!("host-3"), "hosts[3].id"),
        inventory_case("inventory with a hostname twice", |i| i["hosts"][3]["hostname"] = json!("edge-node-3"), "hosts[3].hostname"),
        inventory_case("inventory hostname that is no DNS label", host_field("hostname", json!("Edge_Node;3")), "hosts[2].hostname"),
        inventory_case("inventory address that is a template", host_field("address", json!(HOSTILE)), "hosts[2].address"),
        inventory_case("inventory SSH user that is a command", host_field("sshUser", json!("ubuntu -oProxyCommand=id")), "hosts[2].sshUser"),
        inventory_case("inventory host id that is no label value", host_field("id", json!("host 3")), "hosts[2].id"),
        inventory_case("inventory SSH host key that is no key", host_field("sshHostKeys", json!(["not a key"])), "hosts[2].sshHostKeys[0]"),
        inventory_case("inventory workers that are not a list", |i| i["clusters"][1]["workerHosts"] = json!("host-4"), "clusters[1].workerHosts"),
        // A cluster described in full by the request (checked against the admin's TemplateInfo).
        template_case("even control plane", json!({"hosts": {"controlPlane": ["host-3", "host-4"], "workers": []}}), "InvalidRequest", "hosts.controlPlane"),
        template_case("cluster name that is no DNS label", json!({"clusterName": "Lab_1"}), "InvalidRequest", "clusterName"),
        template_case("Kubernetes version out of range", json!({"kubernetesVersion": "v1.19.0"}), "InvalidRequest", "kubernetesVersion"),
        template_case("endpoint that is no IP", json!({"controlPlaneEndpoint": {"host": "$(id)"}}), "InvalidRequest", "controlPlaneEndpoint.host"),
        template_case("unknown parameter", json!({"extraVars": {"x": "y"}}), "InvalidRequest", "extraVars"),
        template_case("host access given by the request", access("address", HOSTILE), "InvalidRequest", "--allow-request-host-access"),
        request_case("request with an SSH user that is a command", access("sshUser", "root; id"), "InvalidParameters", "hostAccess[0].sshUser"),
        request_case("request with a hostname that is a path", access("hostname", "../../etc"), "InvalidParameters", "hostAccess[0].hostname"),
        Case { name: "template nobody published", objects: vec![bad_fpr(json!({"templateName": "mine", "templateVersion": "v9", "templateParameters": valid_parameters()}))],
            inventory: None, expect: Expect::Condition { condition: "Validated", reason: "UnknownTemplate", names: "mine" } },
        Case { name: "host of the running cluster", objects: vec![bad_template(json!({"hosts": {"controlPlane": ["host-1"], "workers": []}}))],
            inventory: None, expect: Expect::Condition { condition: "Feasible", reason: "Infeasible", names: "host-1" } },
        Case { name: "endpoint of the running cluster", objects: vec![bad_template(json!({"controlPlaneEndpoint": {"host": "172.20.10.100"}}))],
            inventory: None, expect: Expect::Condition { condition: "Feasible", reason: "Infeasible", names: "172.20.10.100" } },
        Case { name: "cluster name of the running cluster", objects: vec![bad_template(json!({"clusterName": "core"}))],
            inventory: None, expect: Expect::Condition { condition: "Feasible", reason: "Infeasible", names: "core" } },
        Case { name: "unknown inventory cluster", objects: vec![bad_fpr(json!({"clusterNames": ["metro"]}))],
            inventory: None, expect: Expect::Condition { condition: "Validated", reason: "InvalidRequest", names: "spec.clusterNames[0]" } },
        // ProvisioningRequests sent straight to the O2IMS operator.
        request_case("request with an even control plane", json!({"hosts": {"controlPlane": ["host-3", "host-4"], "workers": []}}), "InvalidParameters", "hosts.controlPlane"),
        request_case("request with host access for another host", access("id", "host-1"), "InvalidParameters", "hostAccess[0].id"),
        request_case("request with a hostile host access address", access("address", HOSTILE), "InvalidParameters", "hostAccess[0].address"),
        request_case("request for a host of the running cluster", json!({"hosts": {"controlPlane": ["host-2"], "workers": []}}), "HostConflict", "host-2"),
        request_case("request for an unknown template version", json!({}), "InvalidParameters", "templateVersion")
            .with(|c| c.objects[0]["spec"]["templateVersion"] = json!("v7")),
        request_case("request whose namespace exists already", json!({"clusterName": "squat"}), "NamespaceConflict", "cluster-squat")
            .with(|c| c.objects.insert(0, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cluster-squat"}}))),
        request_case("request with a 70-character name and bad parameters", json!({"clusterName": "Bad"}), "InvalidParameters", "clusterName")
            .with(|c| c.objects[0]["metadata"]["name"] = json!(format!("{}.example.org", "x".repeat(58)))),
    ]
}

impl Case {
    fn with(mut self, change: impl FnOnce(&mut Case)) -> Self {
        change(&mut self);
        self
    }
}

fn resource(object: &Value) -> ApiResource {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "TemplateInfo" => "templateinfoes".to_string(),
        _ => format!("{}s", kind.to_lowercase()),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

fn api_of(client: &Client, object: &Value) -> Api<DynamicObject> {
    let resource = resource(object);
    match object["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn apply(client: &Client, object: &Value) -> kube::Result<()> {
    api_of(client, object)
        .patch(
            &name_of(object),
            &PatchParams::apply("bad-inputs-test").force(),
            &Patch::Apply(object),
        )
        .await
        .map(|_| ())
}

/// The condition `type_` of an object, as (status, reason, message).
fn condition(object: &Value, type_: &str) -> Option<(String, String, String)> {
    let found = object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| found[k].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

/// Every object a case could wrongly create, by kind and name, and the resourceVersions of the
/// running cluster's objects.
async fn footprint(client: &Client) -> anyhow::Result<BTreeMap<String, String>> {
    let mut seen = BTreeMap::new();
    let mut record = |kind: &str, objects: Vec<DynamicObject>| {
        for o in objects {
            let key = format!(
                "{kind} {}/{}",
                o.namespace().unwrap_or_default(),
                o.name_any()
            );
            seen.insert(key, o.resource_version().unwrap_or_default());
        }
    };
    for kind in [
        Kind::Cluster,
        Kind::KubeadmControlPlane,
        Kind::MachineDeployment,
        Kind::Machine,
        Kind::ByoMachine,
        Kind::ByoHost,
        Kind::BootstrapKubeconfig,
    ] {
        let objects = Api::<DynamicObject>::all_with(client.clone(), &kind.api_resource())
            .list(&ListParams::default())
            .await?
            .items;
        record(kind.name(), objects);
    }
    let requests = Api::<lcm_core::crd::ProvisioningRequest>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for r in requests
        .iter()
        .filter(|r| r.name_any() != "bad-request" && !r.name_any().ends_with(".example.org"))
    {
        seen.insert(
            format!("ProvisioningRequest {}", r.name_any()),
            r.resource_version().unwrap_or_default(),
        );
    }
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for n in namespaces
        .iter()
        .filter(|n| n.name_any().starts_with("cluster-") && n.name_any() != "cluster-squat")
    {
        seen.insert(
            format!("Namespace {}", n.name_any()),
            n.resource_version().unwrap_or_default(),
        );
    }
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), O2IMS_NAMESPACE)
        .list(&ListParams::default())
        .await?
        .items;
    for j in jobs {
        seen.insert(
            format!("Job {}", j.name_any()),
            j.resource_version().unwrap_or_default(),
        );
    }
    Ok(seen)
}

/// Waits until the judged object shows the expected failure; returns its message.
async fn judged(
    client: &Client,
    object: &Value,
    condition_type: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let api = api_of(client, object);
    let name = name_of(object);
    let found = testcluster::wait_for(
        &format!("{name} to have {condition_type} False/{reason}"),
        TIMEOUT,
        || async {
            let value = api
                .get_opt(&name)
                .await?
                .map(|o| serde_json::to_value(o).unwrap_or_default());
            Ok(value
                .and_then(|v| condition(&v, condition_type))
                .filter(|(status, r, _)| status == "False" && r == reason))
        },
    )
    .await;
    match found {
        Ok((_, _, message)) => Ok(message),
        Err(e) => {
            let last = api
                .get_opt(&name)
                .await?
                .map(|o| serde_json::to_value(o).unwrap_or_default()["status"].clone());
            Err(e.context(format!("last status: {last:?}")))
        }
    }
}

/// Deletes `objects` at once, then waits until they are gone (a request blocked by its O-Cloud
/// goes once its OCloud does), except namespaces, which go in the background.
async fn remove(client: &Client, objects: &[&Value]) -> anyhow::Result<()> {
    for object in objects {
        match api_of(client, object)
            .delete(&name_of(object), &DeleteParams::background())
            .await
        {
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            other => {
                other?;
            }
        }
    }
    for object in objects.iter().filter(|o| o["kind"] != "Namespace") {
        let (api, name) = (api_of(client, object), name_of(object));
        testcluster::wait_for(&format!("{name} to be gone"), TIMEOUT, || async {
            Ok(api.get_opt(&name).await?.is_none().then_some(()))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_bad_input_is_refused_creates_nothing_and_touches_no_running_cluster()
-> anyhow::Result<()> {
    let world = World::start(WorldOptions::from_inventory(&shipped())?).await?;
    let client = world.client()?;
    let inventory_api =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NS);
    apply(
        &client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TENANT}}),
    )
    .await?;
    let running = fpr(
        NS,
        "running",
        json!({"oCloudId": "local", "clusterNames": ["core"]}),
    );
    apply(&client, &running).await?;
    judged_synced(&client).await?;
    let before = footprint(&client).await?;

    let cases = cases(&world.cluster.api_server_url());
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        eprintln!("case: {}", case.name);
        if let Some(text) = &case.inventory {
            inventory_api
                .patch(
                    "lcm-inventory",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"input.json": text}})),
                )
                .await?;
        }
        let (last, setup) = case.objects.split_last().expect("a case applies something");
        for object in setup {
            apply(&client, object).await?;
        }
        let outcome = match &case.expect {
            Expect::Refused(names) => match apply(&client, last).await {
                Err(kube::Error::Api(status)) if status.message.contains(names) => Ok(()),
                Err(e) => Err(format!(
                    "refused, but the message does not name `{names}`: {e}"
                )),
                Ok(()) => Err("accepted by the API server".to_string()),
            },
            Expect::Condition {
                condition,
                reason,
                names,
            } => {
                apply(&client, last).await?;
                match judged(&client, last, condition, reason).await {
                    Ok(message) if message.contains(names) => Ok(()),
                    Ok(message) => Err(format!(
                        "{condition}/{reason}, but the message does not name `{names}`: {message}"
                    )),
                    Err(e) => Err(format!("{e:#}")),
                }
            }
        };
        let after = footprint(&client).await?;
        let outcome = outcome.and_then(|()| {
            (after == before).then_some(()).ok_or_else(|| {
                let changed: Vec<_> = after
                    .iter()
                    .filter(|(k, v)| before.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect();
                let gone: Vec<_> = before
                    .keys()
                    .filter(|k| !after.contains_key(*k))
                    .cloned()
                    .collect();
                format!("created or changed {changed:?}, removed {gone:?}")
            })
        });
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", case.name));
        }
        let mut made: Vec<&Value> = Vec::new();
        if !matches!(case.expect, Expect::Refused(_)) {
            made.push(last);
        }
        made.extend(setup.iter().rev());
        remove(&client, &made).await?;
        if case.inventory.is_some() {
            inventory_api
                .patch(
                    "lcm-inventory",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"input.json": shipped()}})),
                )
                .await?;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        footprint(&client).await?,
        before,
        "the running cluster was touched"
    );
    Ok(())
}

async fn judged_synced(client: &Client) -> anyhow::Result<()> {
    let api = Api::<lcm_core::crd::FocomProvisioningRequest>::namespaced(client.clone(), NS);
    testcluster::wait_for(
        "the running cluster to be Synced",
        Duration::from_secs(90),
        || async {
            Ok(api.get_opt("running").await?.filter(|r| {
                r.status.as_ref().and_then(|s| s.phase) == Some(lcm_core::crd::FocomPhase::Synced)
            }))
        },
    )
    .await
    .map(|_| ())
}
