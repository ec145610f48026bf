//! The O2ims REST server against the real control plane: one server for all tests here, each
//! test with its own requests and hosts. Every response is checked against the O2ims OpenAPI
//! documents (status code, content type, body), errors included.

mod support;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{HostClaim, ProvisioningRequest, ProvisioningRequestSpec};
use serde_json::{Value, json};
use support::*;
use testcluster::TestCluster;
use tokio::sync::OnceCell;

struct Fixture {
    server: Checked,
    namespace: String,
    reader: String,
    provisioner: String,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn setup() -> anyhow::Result<(Client, &'static Fixture)> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("o2ims-api").await?.name().to_string();
            write_inventory(&client, &namespace, &inventory()).await?;
            let server = start(cluster, &namespace).await?;
            let reader =
                token_with_roles(cluster, &namespace, "reader", &["oran-lcm-o2ims-reader"]).await?;
            let provisioner = token_with_roles(
                cluster,
                &namespace,
                "provisioner",
                &["oran-lcm-o2ims-provisioner"],
            )
            .await?;
            anyhow::Ok(Fixture {
                server,
                namespace,
                reader,
                provisioner,
            })
        })
        .await?;
    Ok((client, fixture))
}

fn inventory() -> Value {
    json!({
        "hosts": [
            {"id": "api-h1", "hostname": "api-node-1", "address": "10.9.0.1", "labels": {"site": "paris"}},
            {"id": "api-h2", "hostname": "api-node-2", "address": "10.9.0.2", "labels": {"site": "paris"}},
            {"id": "api-h3", "hostname": "api-node-3", "address": "10.9.0.3"}
        ],
        "clusters": [],
        "sites": [{"name": "paris", "description": "the Paris lab", "globalLocationId": "fr-paris"}],
        "locations": [{"globalLocationId": "fr-paris", "name": "Paris", "address": "1 rue de Rivoli", "coordinates": [2.35, 48.86]}]
    })
}

fn parameters(cluster: &str, vip: &str) -> Value {
    json!({
        "clusterName": cluster,
        "kubernetesVersion": "v1.33.5",
        "controlPlaneEndpoint": {"host": vip},
        "hosts": {"controlPlane": [format!("{cluster}-cp")], "workers": []},
        "cni": "none",
    })
}

fn body(id: &str, cluster: &str, vip: &str) -> Value {
    json!({
        "provisioningRequestId": id,
        "name": format!("request for {cluster}"),
        "description": "made by a test",
        "templateName": "byoh-workload-cluster",
        "templateVersion": "v1",
        "templateParameters": parameters(cluster, vip),
    })
}

fn id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn requests_path(id: &str) -> String {
    format!("{PROVISIONING}/provisioningRequests/{id}")
}

#[tokio::test]
async fn no_token_is_401_no_rights_403_and_the_reader_role_200() -> anyhow::Result<()> {
    let (_, f) = setup().await?;
    let cluster = TestCluster::shared().await?;
    let list = format!("{PROVISIONING}/provisioningRequests");
    let none = f.server.call("GET", &list, None, None).await?;
    assert_eq!(
        (none.status, none.detail().contains("bearer token")),
        (401, true),
        "{none:?}"
    );
    let forged = f
        .server
        .call("GET", &list, Some("not-a-token"), None)
        .await?;
    assert_eq!(forged.status, 401, "{forged:?}");
    let nobody = cluster
        .service_account_token(&f.namespace, "nobody")
        .await?;
    let refused = f.server.call("GET", &list, Some(&nobody), None).await?;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused
            .detail()
            .contains(&format!("system:serviceaccount:{}:nobody", f.namespace)),
        "{refused:?}"
    );
    let read = f.server.call("GET", &list, Some(&f.reader), None).await?;
    assert_eq!(read.status, 200, "{read:?}");
    let inventory = f
        .server
        .call("GET", INVENTORY, Some(&f.reader), None)
        .await?;
    assert_eq!(inventory.status, 200, "{inventory:?}");
    // Reading is not provisioning.
    let post = f
        .server
        .call(
            "POST",
            &list,
            Some(&f.reader),
            Some(&body(&id(), "api-r", "10.9.1.1")),
        )
        .await?;
    assert_eq!(post.status, 403, "{post:?}");
    Ok(())
}

#[tokio::test]
async fn a_request_created_over_rest_and_one_by_kubectl_look_the_same_both_ways()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let (by_rest, by_kubectl) = (id(), id());
    let created = f
        .server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&f.provisioner),
            Some(&body(&by_rest, "api-same", "10.9.2.1")),
        )
        .await?;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        created.location.as_deref(),
        Some(requests_path(&by_rest).as_str())
    );
    let api = Api::<ProvisioningRequest>::all(client.clone());
    let mut kubectl = ProvisioningRequest::new(
        &by_kubectl,
        ProvisioningRequestSpec {
            name: Some("request for api-same".into()),
            description: Some("made by a test".into()),
            template_name: "byoh-workload-cluster".into(),
            template_version: "v1".into(),
            template_parameters: parameters("api-same", "10.9.2.1"),
        },
    );
    kubectl = api.create(&PostParams::default(), &kubectl).await?;
    // Through kubectl: the same spec.
    let rest_object = api.get(&by_rest).await?;
    assert_eq!(rest_object.spec, kubectl.spec);
    // Through REST: the same data and status but for the id and reference.
    let get = |id: String| async move {
        f.server
            .call("GET", &requests_path(&id), Some(&f.reader), None)
            .await
    };
    let (a, b) = (get(by_rest.clone()).await?, get(by_kubectl.clone()).await?);
    assert_eq!((a.status, b.status), (200, 200));
    let (mut a, mut b) = (a.body.expect("body"), b.body.expect("body"));
    assert_eq!(a["provisioningRequestReference"], json!(rest_object.uid()));
    assert_eq!(b["provisioningRequestReference"], json!(kubectl.uid()));
    assert_eq!(
        a["status"]["provisioningPhase"], "PENDING",
        "no operator has judged it"
    );
    for (item, id) in [(&mut a, &by_rest), (&mut b, &by_kubectl)] {
        assert_eq!(
            item["provisioningRequestData"]["provisioningRequestId"],
            json!(id)
        );
        for field in [
            "provisioningRequestReference",
            "provisioningRequestData/provisioningRequestId",
            "status/updateTime",
        ] {
            let (parent, last) = field.rsplit_once('/').unwrap_or(("", field));
            let at = if parent.is_empty() {
                &mut *item
            } else {
                &mut item[parent]
            };
            at.as_object_mut().expect("object").remove(last);
        }
    }
    assert_eq!(a, b);
    // A second POST of the same id conflicts; the list shows both, and filters select.
    let again = f
        .server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&f.provisioner),
            Some(&body(&by_rest, "api-same", "10.9.2.1")),
        )
        .await?;
    assert_eq!(again.status, 409, "{again:?}");
    let filtered = f
        .server
        .call(
            "GET",
            &format!("{PROVISIONING}/provisioningRequests?filter=(in,provisioningRequestData/provisioningRequestId,{by_rest},{by_kubectl})"),
            Some(&f.reader),
            None,
        )
        .await?;
    let ids: Vec<&Value> = filtered
        .body
        .as_ref()
        .and_then(Value::as_array)
        .expect("list")
        .iter()
        .map(|i| &i["provisioningRequestData"]["provisioningRequestId"])
        .collect();
    let mut want = [json!(by_rest), json!(by_kubectl)];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(ids, want.iter().collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn invalid_requests_are_400_naming_the_field_and_create_nothing() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let list = format!("{PROVISIONING}/provisioningRequests");
    let post = |body: Value| {
        let list = list.clone();
        async move {
            f.server
                .call("POST", &list, Some(&f.provisioner), Some(&body))
                .await
        }
    };
    let mut bad_name = body(&id(), "Not_A_Name", "10.9.3.1");
    let bad_id = bad_name["provisioningRequestId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reply = post(bad_name.clone()).await?;
    assert_eq!(reply.status, 400);
    assert!(
        reply.detail().contains("templateParameters.clusterName"),
        "{reply:?}"
    );
    bad_name["extra"] = json!(1);
    let reply = post(bad_name).await?;
    assert!(
        reply.status == 400 && reply.detail().contains("extra"),
        "{reply:?}"
    );
    let reply = post(body("core", "api-bad", "10.9.3.2")).await?;
    assert!(
        reply.status == 400 && reply.detail().contains("provisioningRequestId"),
        "{reply:?}"
    );
    let mut wrong_template = body(&id(), "api-bad", "10.9.3.3");
    wrong_template["templateName"] = json!("other");
    let reply = post(wrong_template).await?;
    assert!(
        reply.status == 400 && reply.detail().contains("templateName"),
        "{reply:?}"
    );
    let mut host_access = body(&id(), "api-bad", "10.9.3.4");
    host_access["templateParameters"]["hostAccess"] =
        json!([{"id": "api-bad-cp", "address": "192.0.2.1", "sshUser": "root"}]);
    let reply = post(host_access).await?;
    assert!(
        reply.status == 400 && reply.detail().contains("templateParameters.hostAccess"),
        "{reply:?}"
    );
    let reply = f
        .server
        .call("POST", &list, Some(&f.provisioner), None)
        .await?;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert!(
        Api::<ProvisioningRequest>::all(client)
            .get_opt(&bad_id)
            .await?
            .is_none()
    );
    let query = f
        .server
        .call(
            "GET",
            &format!("{list}?filter=(like,name,x)"),
            Some(&f.reader),
            None,
        )
        .await?;
    assert!(
        query.status == 400 && query.detail().starts_with("filter:"),
        "{query:?}"
    );
    Ok(())
}

#[tokio::test]
async fn put_follows_the_operators_rules_and_delete_is_accepted() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let pr = id();
    let list = format!("{PROVISIONING}/provisioningRequests");
    let created = f
        .server
        .call(
            "POST",
            &list,
            Some(&f.provisioner),
            Some(&body(&pr, "api-put", "10.9.4.1")),
        )
        .await?;
    assert_eq!(created.status, 201, "{created:?}");
    let put = |path: String, body: Value| async move {
        f.server
            .call("PUT", &path, Some(&f.provisioner), Some(&body))
            .await
    };
    let other = put(requests_path(&pr), body(&id(), "api-put", "10.9.4.1")).await?;
    assert_eq!(other.status, 422, "{other:?}");
    let missing_id = id();
    let missing = put(
        requests_path(&missing_id),
        body(&missing_id, "api-put", "10.9.4.1"),
    )
    .await?;
    assert_eq!(missing.status, 404, "{missing:?}");
    let mut renamed = body(&pr, "api-put", "10.9.4.1");
    renamed["name"] = json!("renamed");
    let replaced = put(requests_path(&pr), renamed.clone()).await?;
    assert_eq!(replaced.status, 200, "{replaced:?}");
    let api = Api::<ProvisioningRequest>::all(client.clone());
    assert_eq!(api.get(&pr).await?.spec.name.as_deref(), Some("renamed"));
    // A stale If-Match is a failed precondition.
    let stale = f
        .server
        .call_with_header(
            "PUT",
            &requests_path(&pr),
            Some(&f.provisioner),
            Some(&renamed),
            ("If-Match", "\"1\""),
        )
        .await?;
    assert_eq!(stale.status, 412, "{stale:?}");
    // Once its Cluster exists, the operator's change rules apply: the endpoint is fixed.
    let params = lcm_core::template::validate(&renamed["templateParameters"]).expect("valid");
    let generated = lcm_core::capi::generate(&pr, &params, None);
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(generated.objects[0].clone())?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let cluster: DynamicObject = serde_json::from_value(generated.objects[1].clone())?;
    testcluster::create_strict(
        &client,
        &Kind::Cluster.api_resource(),
        Some(&params.namespace()),
        &cluster,
    )
    .await?;
    let mut moved = renamed.clone();
    moved["templateParameters"]["controlPlaneEndpoint"]["host"] = json!("10.9.4.2");
    let refused = put(requests_path(&pr), moved).await?;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(
        refused
            .detail()
            .contains("controlPlaneEndpoint cannot change"),
        "{refused:?}"
    );
    let deleted = f
        .server
        .call("DELETE", &requests_path(&pr), Some(&f.provisioner), None)
        .await?;
    assert_eq!(
        (deleted.status, deleted.location.as_deref()),
        (202, Some(requests_path(&pr).as_str()))
    );
    testcluster::wait_for(
        "the request to go",
        std::time::Duration::from_secs(30),
        || {
            let api = api.clone();
            let pr = pr.clone();
            async move { Ok(api.get_opt(&pr).await?.is_none().then_some(())) }
        },
    )
    .await?;
    let gone = f
        .server
        .call("DELETE", &requests_path(&pr), Some(&f.provisioner), None)
        .await?;
    assert_eq!(gone.status, 404, "{gone:?}");
    Ok(())
}

#[tokio::test]
async fn the_phase_is_pending_until_the_operator_judges_the_request() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let pr = id();
    let created = f
        .server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&f.provisioner),
            Some(&body(&pr, "api-phase", "10.9.5.1")),
        )
        .await?;
    assert_eq!(created.status, 201);
    let api = Api::<ProvisioningRequest>::all(client.clone());
    for (validated, phase) in [("Unknown", "PENDING"), ("True", "PROGRESSING")] {
        let status = json!({"status": {
            "provisioningStatus": {"provisioningState": "progressing", "provisioningMessage": "waiting"},
            "conditions": [{"type": "ProvisioningRequestValidated", "status": validated, "reason": "R", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]
        }});
        api.patch_status(&pr, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        let seen = testcluster::wait_for(
            &format!("{phase} over REST"),
            std::time::Duration::from_secs(10),
            || async {
                let reply = f
                    .server
                    .call("GET", &requests_path(&pr), Some(&f.reader), None)
                    .await?;
                Ok(reply
                    .body
                    .filter(|b| b["status"]["provisioningPhase"] == phase))
            },
        )
        .await?;
        assert_eq!(seen["status"]["message"], "waiting");
    }
    Ok(())
}

#[tokio::test]
async fn the_inventory_shows_sites_hosts_claims_and_fulfilled_clusters_without_credentials()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let get =
        |path: String| async move { f.server.call("GET", &path, Some(&f.reader), None).await };
    let cloud = get(INVENTORY.to_string()).await?.body.expect("cloud");
    assert_eq!(
        (cloud["oCloudId"].as_str(), cloud["name"].as_str()),
        (Some(OCLOUD_ID), Some("test-cloud"))
    );
    let types = get(format!("{INVENTORY}/resourceTypes"))
        .await?
        .body
        .expect("types");
    let type_id = types[0]["resourceTypeId"].as_str().expect("id").to_string();
    assert_eq!(
        get(format!("{INVENTORY}/resourceTypes/{type_id}"))
            .await?
            .status,
        200
    );
    let pools = get(format!("{INVENTORY}/resourcePools"))
        .await?
        .body
        .expect("pools");
    let names: Vec<&str> = pools
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "paris"]);
    let paris = pools[1]["resourcePoolId"].as_str().expect("id").to_string();
    // A registered host and a claim show on the host.
    let hosts_ns = "byoh-hosts";
    let _ = k8s_openapi_namespace(&client, hosts_ns).await;
    let byo = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        hosts_ns,
        &Kind::ByoHost.api_resource(),
    );
    let host: DynamicObject = serde_json::from_value(json!({
        "apiVersion": Kind::ByoHost.api_version(), "kind": "ByoHost",
        "metadata": {"name": "api-node-1", "labels": {"host-id": "api-h1"}}, "spec": {}
    }))?;
    let host = byo.create(&PostParams::default(), &host).await?;
    let claims = Api::<HostClaim>::all(client.clone());
    claims
        .create(
            &PostParams::default(),
            &HostClaim::for_host("api-h1", "some-request", "uid", "api-inv"),
        )
        .await?;
    let resource = testcluster::wait_for(
        "api-h1 registered and claimed",
        std::time::Duration::from_secs(10),
        || async {
            let list = get(format!("{INVENTORY}/resourcePools/{paris}/resources"))
                .await?
                .body
                .expect("resources");
            Ok(list
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| {
                    r["extensions"]["hostId"] == "api-h1"
                        && r["extensions"]["registered"] == true
                        && r["extensions"]["claimed"] == true
                })
                .cloned())
        },
    )
    .await?;
    assert_eq!(resource["extensions"]["byoHostUid"], json!(host.uid()));
    assert_eq!(
        resource["extensions"]["claimedBy"]["clusterName"],
        "api-inv"
    );
    let resource_id = resource["resourceId"].as_str().expect("id");
    assert_eq!(
        get(format!(
            "{INVENTORY}/resourcePools/{paris}/resources/{resource_id}"
        ))
        .await?
        .status,
        200
    );
    assert_eq!(
        get(format!("{INVENTORY}/resourcePools/{}/resources", id()))
            .await?
            .status,
        404
    );
    // A fulfilled request is a deployment manager: its endpoint, nothing secret.
    let pr = id();
    let created = f
        .server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&f.provisioner),
            Some(&body(&pr, "api-dm", "10.9.6.1")),
        )
        .await?;
    assert_eq!(created.status, 201);
    let cluster_uid = id();
    Api::<ProvisioningRequest>::all(client.clone())
        .patch_status(&pr, &PatchParams::default(), &Patch::Merge(&json!({"status": {
            "provisioningStatus": {"provisioningState": "fulfilled", "provisioningMessage": "kubeconfig in Secret cluster-api-dm/api-dm-kubeconfig"},
            "provisionedResourceSet": {"oCloudNodeClusterId": cluster_uid},
            "kubeconfigSecret": {"name": "api-dm-kubeconfig", "namespace": "cluster-api-dm"}
        }})))
        .await?;
    let manager = testcluster::wait_for(
        "the deployment manager",
        std::time::Duration::from_secs(10),
        || async {
            let list = get(format!("{INVENTORY}/deploymentManagers"))
                .await?
                .body
                .expect("managers");
            Ok(list
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["deploymentManagerId"] == json!(cluster_uid))
                .cloned())
        },
    )
    .await?;
    assert_eq!(manager["serviceUri"], "https://10.9.6.1:6443");
    assert!(!manager.to_string().contains("kubeconfig"), "{manager}");
    assert_eq!(
        get(format!("{INVENTORY}/deploymentManagers/{cluster_uid}"))
            .await?
            .status,
        200
    );
    assert_eq!(
        get(format!("{INVENTORY}/deploymentManagers/{}", id()))
            .await?
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn sites_and_locations_come_from_the_inventory_and_link_to_the_pools() -> anyhow::Result<()> {
    let (_, f) = setup().await?;
    let get = |path: String| async move {
        let reply = f.server.call("GET", &path, Some(&f.reader), None).await?;
        anyhow::ensure!(reply.status == 200, "{path}: {reply:?}");
        Ok(reply.body.unwrap_or_default())
    };
    let pools = get(format!("{INVENTORY}/resourcePools")).await?;
    let paris = pools
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "paris")
        .cloned()
        .expect("the paris pool");
    let site_id = paris["oCloudSiteId"].as_str().expect("site id");
    let site = get(format!("{INVENTORY}/oCloudSites/{site_id}")).await?;
    assert_eq!(
        (
            &site["name"],
            &site["description"],
            &site["globalLocationId"]
        ),
        (&json!("paris"), &json!("the Paris lab"), &json!("fr-paris"))
    );
    assert_eq!(site["resourcePools"], json!([paris["resourcePoolId"]]));
    let sites = get(format!("{INVENTORY}/oCloudSites")).await?;
    let names: Vec<&str> = sites
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "paris"]);
    let location = get(format!("{INVENTORY}/locations/fr-paris")).await?;
    assert_eq!(location["oCloudSiteIds"], json!([site_id]));
    assert_eq!(location["address"], "1 rue de Rivoli");
    assert_eq!(location["coordinate"]["coordinates"], json!([2.35, 48.86]));
    // A site the inventory does not place is a location of its own.
    let locations = get(format!("{INVENTORY}/locations")).await?;
    let ids: Vec<&str> = locations
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["globalLocationId"].as_str())
        .collect();
    assert_eq!(ids, ["default", "fr-paris"]);
    for missing in [
        format!("{INVENTORY}/locations/nowhere"),
        format!("{INVENTORY}/oCloudSites/{}", id()),
    ] {
        let reply = f
            .server
            .call("GET", &missing, Some(&f.reader), None)
            .await?;
        assert_eq!(reply.status, 404, "{missing}");
    }
    Ok(())
}

async fn k8s_openapi_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
        other => Ok(other.map(drop)?),
    }
}

#[tokio::test]
async fn fields_and_exclusions_project_each_item_keeping_its_identifier() -> anyhow::Result<()> {
    let (_, f) = setup().await?;
    let reply = f
        .server
        .call_projected(&format!("{INVENTORY}/resourcePools?fields=name,extensions&exclude_fields=extensions/freeHosts"), &f.reader)
        .await?;
    let first = &reply[0];
    assert_eq!(first.as_object().map(|o| o.len()), Some(3), "{first}");
    assert!(first["resourcePoolId"].is_string(), "{first}");
    assert!(
        first["extensions"].get("hosts").is_some()
            && first["extensions"].get("freeHosts").is_none(),
        "{first}"
    );
    // SMOs send `all_fields=false` beside `fields`: the document's default, not a conflict.
    let reply = f
        .server
        .call_projected(
            &format!("{INVENTORY}/resourcePools?all_fields=false&fields=name"),
            &f.reader,
        )
        .await?;
    let keys: Vec<&String> = reply[0]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["name", "resourcePoolId"], "{reply}");
    // exclude_default leaves the complex attributes out.
    let reply = f
        .server
        .call_projected(
            &format!("{INVENTORY}/resourcePools?exclude_default"),
            &f.reader,
        )
        .await?;
    assert!(
        reply[0].get("extensions").is_none() && reply[0]["name"].is_string(),
        "{reply}"
    );
    Ok(())
}

#[tokio::test]
async fn a_filter_naming_no_attribute_is_400_naming_it() -> anyhow::Result<()> {
    let (_, f) = setup().await?;
    for (path, attribute) in [
        (
            format!("{INVENTORY}/resourcePools?filter=(eq,WrongAttrName,x)"),
            "WrongAttrName",
        ),
        (
            format!("{PROVISIONING}/provisioningRequests?filter=(eq,status/nothing,x)"),
            "status/nothing",
        ),
        (
            format!("{INVENTORY}/resourcePools?fields=nothing"),
            "nothing",
        ),
    ] {
        let reply = f.server.call("GET", &path, Some(&f.reader), None).await?;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        assert!(
            reply.detail().contains(&format!("`{attribute}`")),
            "{reply:?}"
        );
    }
    // Attributes below a free-form object (extensions) are anyone's.
    let reply = f
        .server
        .call(
            "GET",
            &format!("{INVENTORY}/resourcePools?filter=(eq,extensions/anything,x)"),
            Some(&f.reader),
            None,
        )
        .await?;
    assert_eq!(reply.status, 200, "{reply:?}");
    Ok(())
}

#[tokio::test]
async fn the_api_root_answers_with_a_trailing_slash() -> anyhow::Result<()> {
    let (_, f) = setup().await?;
    for root in [
        format!("{INVENTORY}/"),
        format!("{PROVISIONING}/provisioningRequests/"),
    ] {
        let reply = f.server.call("GET", &root, Some(&f.reader), None).await?;
        assert_eq!(reply.status, 200, "{root}: {reply:?}");
    }
    let cloud = f
        .server
        .call("GET", &format!("{INVENTORY}/"), Some(&f.reader), None)
        .await?;
    assert_eq!(cloud.body.expect("cloud")["oCloudId"], OCLOUD_ID);
    Ok(())
}

#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_with_allow_to_any_authenticated_caller()
-> anyhow::Result<()> {
    let (_, f) = setup().await?;
    let cluster = TestCluster::shared().await?;
    let nobody = cluster
        .service_account_token(&f.namespace, "nobody")
        .await?;
    for (method, path, allow) in [
        ("DELETE", format!("{INVENTORY}/resourcePools"), "GET,HEAD"),
        ("POST", INVENTORY.to_string(), "GET,HEAD"),
        (
            "PATCH",
            format!("{PROVISIONING}/provisioningRequests"),
            "GET,HEAD,POST",
        ),
    ] {
        // Whatever the caller's rights: the path does not take the method.
        for token in [&f.reader, &nobody] {
            let (status, headers, body) = f
                .server
                .call_undocumented(method, &path, Some(token))
                .await?;
            assert_eq!(status, 405, "{method} {path}: {body}");
            assert_eq!(
                headers.get("allow").and_then(|v| v.to_str().ok()),
                Some(allow),
                "{method} {path}"
            );
        }
        // Anonymous callers learn nothing.
        let (status, _, _) = f.server.call_undocumented(method, &path, None).await?;
        assert_eq!(status, 401, "{method} {path}");
    }
    let (status, _, _) = f
        .server
        .call_undocumented("GET", &format!("{INVENTORY}/nothing"), Some(&nobody))
        .await?;
    assert_eq!(status, 404);
    Ok(())
}
