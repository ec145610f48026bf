//! The Events an agent records about its ByoHost, as its event recorder does
//! (`mgr.GetEventRecorderFor("hostagent-controller")` in agent/main.go: client-go's
//! `record.EventRecorder`, core/v1 Events, which the agent's RBAC allows).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};
use lcm_core::capi::Kind;
use serde_json::Value;

use super::Agent;
use crate::objects::{name, namespace};

const SOURCE: &str = "hostagent-controller";

#[derive(Clone, Copy, Debug)]
pub enum EventType {
    Normal,
    Warning,
}

/// Records an Event about `host` (a ByoHost) named `<object>.<unix nanoseconds in hex>`, as
/// client-go names them; a lost Event is only logged.
pub async fn record(agent: &Agent, host: &Value, type_: EventType, reason: &str, message: &str) {
    let now = Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", name(host), now.as_nanosecond())),
            namespace: Some(namespace(host).into()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(Kind::ByoHost.api_version().into()),
            kind: Some(Kind::ByoHost.name().into()),
            name: Some(name(host).into()),
            namespace: Some(namespace(host).into()),
            uid: host["metadata"]["uid"].as_str().map(String::from),
            resource_version: host["metadata"]["resourceVersion"]
                .as_str()
                .map(String::from),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(format!("{type_:?}")),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        source: Some(EventSource {
            component: Some(SOURCE.into()),
            ..EventSource::default()
        }),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(agent.client.clone(), namespace(host));
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, %reason, "recording an Event failed");
    }
}
