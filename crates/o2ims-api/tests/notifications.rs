//! Subscriptions of both APIs against the real control plane: callbacks verified and limited
//! to allowed hosts, notifications of creations, modifications and deletions (each checked
//! against its schema), retried while the subscriber refuses, and none lost across a restart
//! of the server.

mod support;

use std::sync::atomic::Ordering;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use lcm_core::capi::Kind;
use lcm_core::crd::{O2imsSubscription, ProvisioningRequest, ProvisioningRequestSpec};
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::*;
use testcluster::TestCluster;

fn id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

fn body(id: &str, cluster: &str) -> Value {
    json!({
        "provisioningRequestId": id, "name": cluster, "description": "",
        "templateName": "byoh-workload-cluster", "templateVersion": "v1",
        "templateParameters": {
            "clusterName": cluster, "kubernetesVersion": "v1.33.5",
            "controlPlaneEndpoint": {"host": "10.8.0.1"},
            "hosts": {"controlPlane": [format!("{cluster}-cp")], "workers": []}
        },
    })
}

async fn set_status(
    client: &kube::Client,
    name: &str,
    state: &str,
    message: &str,
) -> anyhow::Result<()> {
    let status = json!({"status": {
        "provisioningStatus": {"provisioningState": state, "provisioningMessage": message},
        "conditions": [{"type": "ProvisioningRequestValidated", "status": "True", "reason": "Valid",
                        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }});
    Api::<ProvisioningRequest>::all(client.clone())
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn is(notification: &Value, event: u64, object_ref: &str) -> bool {
    notification["notificationEventType"] == event && notification["objectRef"] == object_ref
}

fn phase(state: &Value) -> &str {
    state["status"]["provisioningPhase"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn callbacks_are_verified_and_limited_to_allowed_hosts() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let namespace = cluster
        .namespace("o2ims-api-subs")
        .await?
        .name()
        .to_string();
    let server = start(cluster, &namespace).await?;
    let subscriber =
        token_with_roles(cluster, &namespace, "smo", &["oran-lcm-o2ims-subscriber"]).await?;
    let reader =
        token_with_roles(cluster, &namespace, "reader", &["oran-lcm-o2ims-reader"]).await?;
    let receiver = Receiver::start(
        "provisioning-subscriptions",
        "ProvisioningChangeNotification",
    )
    .await?;
    for prefix in [INVENTORY, PROVISIONING] {
        let list = format!("{prefix}/subscriptions");
        let post = |token: &str, body: Value| {
            let (list, token) = (list.clone(), token.to_string());
            let server = &server;
            async move { server.call("POST", &list, Some(&token), Some(&body)).await }
        };
        let elsewhere = post(&subscriber, json!({"callback": "http://10.0.0.1/notify"})).await?;
        assert!(
            elsewhere.status == 400 && elsewhere.detail().contains("not allowed"),
            "{elsewhere:?}"
        );
        let silent = post(
            &subscriber,
            json!({"callback": receiver.url.replace("/notify", "/ok")}),
        )
        .await?;
        assert!(
            silent.status == 400 && silent.detail().contains("not 204"),
            "{silent:?}"
        );
        let bad_consumer = post(
            &subscriber,
            json!({"callback": receiver.url, "consumerSubscriptionId": "x"}),
        )
        .await?;
        assert!(
            bad_consumer.status == 400 && bad_consumer.detail().contains("consumerSubscriptionId"),
            "{bad_consumer:?}"
        );
        let bad_filter = post(
            &subscriber,
            json!({"callback": receiver.url, "filter": "(near,x,1)"}),
        )
        .await?;
        assert!(
            bad_filter.status == 400 && bad_filter.detail().starts_with("filter:"),
            "{bad_filter:?}"
        );
        let not_allowed = post(&reader, json!({"callback": receiver.url})).await?;
        assert_eq!(not_allowed.status, 403, "{not_allowed:?}");
        // An empty filter is no filter (SMOs send one).
        let made = post(&subscriber, json!({"callback": receiver.url, "filter": ""})).await?;
        assert_eq!(made.status, 201, "{made:?}");
        let sub = made
            .body
            .as_ref()
            .and_then(|b| b["subscriptionId"].as_str())
            .expect("id")
            .to_string();
        let item = format!("{list}/{sub}");
        assert_eq!(made.location.as_deref(), Some(item.as_str()));
        let listed = server.call("GET", &list, Some(&subscriber), None).await?;
        assert!(
            listed
                .body
                .iter()
                .flat_map(|b| b.as_array())
                .flatten()
                .any(|s| s["subscriptionId"] == sub.as_str())
        );
        assert_eq!(
            server
                .call("GET", &item, Some(&subscriber), None)
                .await?
                .status,
            200
        );
        assert_eq!(
            server
                .call("DELETE", &item, Some(&subscriber), None)
                .await?
                .status,
            200
        );
        testcluster::wait_for(
            "the subscription to go",
            std::time::Duration::from_secs(10),
            || async {
                let reply = server.call("GET", &item, Some(&subscriber), None).await?;
                Ok((reply.status == 404).then_some(()))
            },
        )
        .await?;
        assert_eq!(
            server
                .call("DELETE", &item, Some(&subscriber), None)
                .await?
                .status,
            404
        );
    }
    Ok(())
}

#[tokio::test]
async fn changes_are_notified_retried_and_none_is_lost_across_a_restart() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster
        .namespace("o2ims-api-notify")
        .await?
        .name()
        .to_string();
    write_inventory(&client, &namespace, &json!({"hosts": [{"id": "notify-h1", "hostname": "notify-node-1", "address": "10.8.0.11"}], "clusters": []})).await?;
    let server = start(cluster, &namespace).await?;
    let smo = token_with_roles(
        cluster,
        &namespace,
        "smo",
        &["oran-lcm-o2ims-subscriber", "oran-lcm-o2ims-provisioner"],
    )
    .await?;
    let provisioning = Receiver::start(
        "provisioning-subscriptions",
        "ProvisioningChangeNotification",
    )
    .await?;
    let inventory = Receiver::start("resources", "InventoryChangeNotification").await?;
    let consumer = id();
    for (prefix, receiver) in [(PROVISIONING, &provisioning), (INVENTORY, &inventory)] {
        let body = json!({"callback": receiver.url, "consumerSubscriptionId": consumer});
        let made = server
            .call(
                "POST",
                &format!("{prefix}/subscriptions"),
                Some(&smo),
                Some(&body),
            )
            .await?;
        assert_eq!(made.status, 201, "{made:?}");
    }

    // Created over REST, judged, created by kubectl: each told once, in order.
    let (a, b) = (id(), id());
    let (a_ref, b_ref) = (
        format!("{PROVISIONING}/provisioningRequests/{a}"),
        format!("{PROVISIONING}/provisioningRequests/{b}"),
    );
    let created = server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&smo),
            Some(&body(&a, "notify-a")),
        )
        .await?;
    assert_eq!(created.status, 201, "{created:?}");
    let create = provisioning
        .wait_for("a's creation", |n| is(n, 0, &a_ref))
        .await?;
    assert_eq!(create["consumerSubscriptionId"], json!(consumer));
    assert_eq!(phase(&create["postObjectState"]), "PENDING");
    set_status(&client, &a, "progressing", "validated").await?;
    let modify = provisioning
        .wait_for("a's modification", |n| {
            is(n, 1, &a_ref) && phase(&n["postObjectState"]) == "PROGRESSING"
        })
        .await?;
    assert_eq!(
        phase(&modify["priorObjectState"]),
        "PENDING",
        "the state told before"
    );
    let kubectl = ProvisioningRequest::new(
        &b,
        ProvisioningRequestSpec {
            template_name: "byoh-workload-cluster".into(),
            template_version: "v1".into(),
            template_parameters: body(&b, "notify-b")["templateParameters"].clone(),
            ..Default::default()
        },
    );
    Api::<ProvisioningRequest>::all(client.clone())
        .create(&PostParams::default(), &kubectl)
        .await?;
    provisioning
        .wait_for("b's creation", |n| is(n, 0, &b_ref))
        .await?;

    // A host registering is a modification of its resource.
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "byoh-hosts"}}))?,
        )
        .await;
    let host: DynamicObject = serde_json::from_value(json!({
        "apiVersion": Kind::ByoHost.api_version(), "kind": "ByoHost",
        "metadata": {"name": "notify-node-1", "labels": {"host-id": "notify-h1"}}, "spec": {}
    }))?;
    Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "byoh-hosts",
        &Kind::ByoHost.api_resource(),
    )
    .create(&PostParams::default(), &host)
    .await?;
    let registered = inventory
        .wait_for("the host's registration", |n| {
            n["notificationEventType"] == 1
                && n["postObjectState"]["extensions"]["hostId"] == "notify-h1"
        })
        .await?;
    assert_eq!(
        registered["postObjectState"]["extensions"]["registered"],
        true
    );
    assert_eq!(
        registered["priorObjectState"]["extensions"]["registered"],
        false
    );

    // A subscriber that refuses is told again, with back-off, once it answers.
    provisioning.refusing.store(true, Ordering::SeqCst);
    set_status(&client, &a, "progressing", "retried").await?;
    let subscriptions = Api::<O2imsSubscription>::namespaced(client.clone(), &namespace);
    testcluster::wait_for(
        "a failed delivery to be recorded",
        std::time::Duration::from_secs(30),
        || async {
            let failing = subscriptions
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .find(|s| {
                    s.status
                        .as_ref()
                        .and_then(|st| st.last_failure.as_deref())
                        .is_some_and(|f| f.contains("503"))
                });
            Ok(failing.map(drop))
        },
    )
    .await?;
    provisioning.refusing.store(false, Ordering::SeqCst);
    provisioning
        .wait_for("the retried modification", |n| {
            is(n, 1, &a_ref) && n["postObjectState"]["status"]["message"] == "retried"
        })
        .await?;

    // Changes while the server is down are told once it is back.
    let Checked(stopped) = server;
    stopped.process.kill().await?;
    set_status(&client, &a, "fulfilled", "done while the server was down").await?;
    Api::<ProvisioningRequest>::all(client.clone())
        .delete(&b, &DeleteParams::default())
        .await?;
    let _server = start(cluster, &namespace).await?;
    let fulfilled = provisioning
        .wait_for("a's fulfilment, after the restart", |n| {
            is(n, 1, &a_ref) && phase(&n["postObjectState"]) == "FULFILLED"
        })
        .await?;
    assert!(
        fulfilled.get("priorObjectState").is_none(),
        "a restarted server holds no prior state: {fulfilled}"
    );
    let deleted = provisioning
        .wait_for("b's deletion, after the restart", |n| is(n, 2, &b_ref))
        .await?;
    assert!(deleted.get("postObjectState").is_none(), "{deleted}");
    // Each change was told once.
    let received = provisioning.received.lock().expect("lock").clone();
    let count =
        |event: u64, object_ref: &str| received.iter().filter(|n| is(n, event, object_ref)).count();
    assert_eq!(
        (count(0, &a_ref), count(0, &b_ref), count(2, &b_ref)),
        (1, 1, 1),
        "{received:#?}"
    );
    Ok(())
}
