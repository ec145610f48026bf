//! Read-your-writes over REST: once a POST, PUT or DELETE is answered, any following GET (item
//! or list, by another client) shows that write, although the server reads from watches. Each
//! write is repeated and read at once by a second client while a busy O-Cloud keeps changing
//! other requests, so the server's watch runs behind its writes: a server answering before its
//! watch saw the write misses some of them.

mod support;

use kube::api::{Api, Patch, PatchParams};
use lcm_core::crd::{
    O2imsSubscription, O2imsSubscriptionSpec, ProvisioningRequest, ProvisioningRequestSpec,
    SubscribedApi,
};
use serde_json::{Value, json};
use support::receiver::Receiver;
use support::*;
use testcluster::TestCluster;

const ROUNDS: usize = 10;

/// Keeps changing other objects of the kind written, each change large, until dropped: the
/// server's watch of the kind carries each change before the next one it has not seen yet.
struct BusyOCloud(tokio::task::JoinHandle<()>);

impl BusyOCloud {
    async fn start<K>(api: Api<K>, others: Vec<K>) -> anyhow::Result<Self>
    where
        K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned,
        K: std::fmt::Debug + Send + Sync + 'static,
    {
        let mut names = Vec::new();
        for other in &others {
            let name = other.meta().name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("busy").force(),
                &Patch::Apply(other),
            )
            .await?;
            names.push(name);
        }
        let task = tokio::spawn(async move {
            let filler = "x".repeat(100_000);
            for round in 0usize.. {
                let writes = names.iter().map(|name| {
                    let (api, annotation) = (&api, format!("{round}{filler}"));
                    async move {
                        let patch = json!({"metadata": {"annotations": {"busy": annotation}}});
                        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                            .await
                    }
                });
                let _ = futures::future::join_all(writes).await;
            }
        });
        Ok(Self(task))
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

impl Drop for BusyOCloud {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The ids of a list's items, at `pointer` in each.
fn ids(list: &Reply, pointer: &str) -> Vec<String> {
    list.body
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.pointer(pointer)?.as_str().map(String::from))
        .collect()
}

const REQUEST_ID: &str = "/provisioningRequestData/provisioningRequestId";

fn request_body(id: &str, cluster: &str, description: &str) -> Value {
    json!({
        "provisioningRequestId": id, "name": cluster, "description": description,
        "templateName": "byoh-workload-cluster", "templateVersion": "v1",
        "templateParameters": {
            "clusterName": cluster, "kubernetesVersion": "v1.33.5",
            "controlPlaneEndpoint": {"host": "10.9.0.1"},
            "hosts": {"controlPlane": [format!("{cluster}-cp")], "workers": []}
        },
    })
}

#[tokio::test]
async fn a_provisioning_request_written_over_rest_is_read_back_at_once() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let namespace = cluster.namespace("o2ims-api-ryw").await?.name().to_string();
    let server = start(cluster, &namespace).await?;
    let writer = token_with_roles(
        cluster,
        &namespace,
        "provisioner",
        &["oran-lcm-o2ims-provisioner"],
    )
    .await?;
    let reader =
        token_with_roles(cluster, &namespace, "reader", &["oran-lcm-o2ims-reader"]).await?;
    let list = format!("{PROVISIONING}/provisioningRequests");
    let others = (0..4)
        .map(|_| {
            let spec = ProvisioningRequestSpec {
                template_name: "byoh-workload-cluster".into(),
                template_version: "v1".into(),
                template_parameters: json!({}),
                ..Default::default()
            };
            ProvisioningRequest::new(&uuid(), spec)
        })
        .collect();
    let _busy = BusyOCloud::start(Api::all(cluster.admin_client()?), others).await?;
    for round in 0..ROUNDS {
        let id = uuid();
        let item = format!("{list}/{id}");
        let name = format!("ryw{round}");
        let created = server
            .call(
                "POST",
                &list,
                Some(&writer),
                Some(&request_body(&id, &name, "first")),
            )
            .await?;
        assert_eq!(created.status, 201, "{created:?}");
        let read = server.call("GET", &item, Some(&reader), None).await?;
        assert_eq!(read.status, 200, "round {round}: GET after POST: {read:?}");
        let listed = server.call("GET", &list, Some(&reader), None).await?;
        assert!(
            ids(&listed, REQUEST_ID).contains(&id),
            "round {round}: list after POST lacks {id}"
        );

        let replaced = server
            .call(
                "PUT",
                &item,
                Some(&writer),
                Some(&request_body(&id, &name, "second")),
            )
            .await?;
        assert_eq!(replaced.status, 200, "{replaced:?}");
        let read = server.call("GET", &item, Some(&reader), None).await?;
        let description = read
            .body
            .as_ref()
            .map(|b| b["provisioningRequestData"]["description"].clone());
        assert_eq!(
            description,
            Some(json!("second")),
            "round {round}: GET after PUT"
        );

        let deleted = server.call("DELETE", &item, Some(&writer), None).await?;
        assert_eq!(deleted.status, 202, "{deleted:?}");
        // No operator runs here, so nothing holds the request: it is gone at once.
        let read = server.call("GET", &item, Some(&reader), None).await?;
        assert_eq!(
            read.status, 404,
            "round {round}: GET after DELETE: {read:?}"
        );
        let listed = server.call("GET", &list, Some(&reader), None).await?;
        assert!(
            !ids(&listed, REQUEST_ID).contains(&id),
            "round {round}: list after DELETE still has {id}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_subscription_written_over_rest_is_read_back_at_once() -> anyhow::Result<()> {
    let cluster = TestCluster::shared().await?;
    let namespace = cluster
        .namespace("o2ims-api-ryws")
        .await?
        .name()
        .to_string();
    let server = start(cluster, &namespace).await?;
    let subscriber =
        token_with_roles(cluster, &namespace, "smo", &["oran-lcm-o2ims-subscriber"]).await?;
    let reader =
        token_with_roles(cluster, &namespace, "reader", &["oran-lcm-o2ims-reader"]).await?;
    let receiver = Receiver::start("inventory", "InventoryChangeNotification").await?;
    let list = format!("{INVENTORY}/subscriptions");
    // Subscribed by nobody (no status): the server notifies none of them.
    let others = (0..4)
        .map(|_| {
            let spec = O2imsSubscriptionSpec {
                api: SubscribedApi::Inventory,
                callback: receiver.url.clone(),
                consumer_subscription_id: None,
                filter: None,
            };
            O2imsSubscription::new(&uuid(), spec)
        })
        .collect();
    let busy = Api::namespaced(cluster.admin_client()?, &namespace);
    let _busy = BusyOCloud::start(busy, others).await?;
    for round in 0..ROUNDS {
        let made = server
            .call(
                "POST",
                &list,
                Some(&subscriber),
                Some(&json!({"callback": receiver.url})),
            )
            .await?;
        assert_eq!(made.status, 201, "{made:?}");
        let id = made
            .body
            .as_ref()
            .and_then(|b| b["subscriptionId"].as_str())
            .unwrap_or_default()
            .to_string();
        let listed = server.call("GET", &list, Some(&reader), None).await?;
        assert!(
            ids(&listed, "/subscriptionId").contains(&id),
            "round {round}: list after POST lacks {id}"
        );
        let item = format!("{list}/{id}");
        let gone = server
            .call("DELETE", &item, Some(&subscriber), None)
            .await?;
        assert_eq!(gone.status, 200, "{gone:?}");
        let read = server.call("GET", &item, Some(&reader), None).await?;
        assert_eq!(
            read.status, 404,
            "round {round}: GET after DELETE: {read:?}"
        );
        let listed = server.call("GET", &list, Some(&reader), None).await?;
        assert!(
            !ids(&listed, "/subscriptionId").contains(&id),
            "round {round}: list after DELETE still has {id}"
        );
    }
    Ok(())
}
