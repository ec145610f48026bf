use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An SMO's subscription to changes, made over the O2ims REST API (`POST .../subscriptions`)
/// and kept here so that it and what it was last told survive a restart of the API server.
/// Named by its `subscriptionId`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "o2ims.provisioning.oran.org",
    version = "v1alpha1",
    kind = "O2imsSubscription",
    namespaced,
    category = "oran",
    status = "O2imsSubscriptionStatus",
    doc = "A subscription of the O2ims REST API: which changes are notified to which callback.",
    printcolumn(name = "API", type_ = "string", json_path = ".spec.api"),
    printcolumn(name = "Callback", type_ = "string", json_path = ".spec.callback"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a subscription is not changed: delete it and subscribe again"))]
#[serde(rename_all = "camelCase")]
pub struct O2imsSubscriptionSpec {
    /// Which API's objects are notified.
    pub api: SubscribedApi,
    /// The URL notifications are POSTed to; it answered a GET with 204 when subscribed.
    pub callback: String,
    /// The SMO's own id of the subscription, sent back in each notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_subscription_id: Option<String>,
    /// Which objects are notified, in the list `filter` syntax (for alarms: the event type not
    /// notified); absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The API a subscription is made on.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SubscribedApi {
    /// Resource pools, resources and deployment managers.
    Inventory,
    /// Provisioning requests.
    Provisioning,
    /// Alarms (`filter`: the one event type not notified, NEW, CHANGE, CLEAR or ACKNOWLEDGE).
    Alarms,
}

/// What the subscriber has been told.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct O2imsSubscriptionStatus {
    /// For each object notified (its URL path), a fingerprint of the state last delivered:
    /// after a restart, every difference from what exists is still notified.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delivered: BTreeMap<String, String>,
    /// Why the last delivery failed, while it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}
