//! Change notifications, level-based: what a subscriber was last told (a fingerprint per
//! object) against what exists now gives the creations, modifications and deletions still to
//! tell, however many changes happened in between and whether or not the server restarted.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// `notificationEventType` of the O2ims model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Create = 0,
    Modify = 1,
    Delete = 2,
}

/// One change to notify: the object's URL path and, unless deleted, its state now.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub object_ref: String,
    pub event: Event,
    pub post: Option<Value>,
}

/// A short, stable fingerprint of an object's state (serde_json orders keys).
pub fn fingerprint(state: &Value) -> String {
    format!(
        "{:016x}",
        crate::names::fnv1a64(state.to_string().as_bytes())
    )
}

/// What is still to notify, in object order: created and modified objects, then deleted ones.
pub fn changes(
    delivered: &BTreeMap<String, String>,
    current: &BTreeMap<String, Value>,
) -> Vec<Change> {
    let mut changes: Vec<Change> = current
        .iter()
        .filter_map(|(object_ref, state)| {
            let event = match delivered.get(object_ref) {
                None => Event::Create,
                Some(known) if *known != fingerprint(state) => Event::Modify,
                Some(_) => return None,
            };
            Some(Change {
                object_ref: object_ref.clone(),
                event,
                post: Some(state.clone()),
            })
        })
        .collect();
    changes.extend(
        delivered
            .keys()
            .filter(|object_ref| !current.contains_key(*object_ref))
            .map(|object_ref| Change {
                object_ref: object_ref.clone(),
                event: Event::Delete,
                post: None,
            }),
    );
    changes
}

/// The notification body (`InventoryChangeNotification`'s shape, for both APIs). `prior` is
/// the state last delivered, when the server still holds it (not after a restart).
pub fn body(
    notification_id: &str,
    consumer_subscription_id: Option<&str>,
    change: &Change,
    prior: Option<&Value>,
) -> Value {
    let mut body = json!({
        "notificationId": notification_id,
        "notificationEventType": change.event as u8,
        "objectRef": change.object_ref,
    });
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body[key] = value;
        }
    };
    set(
        "consumerSubscriptionId",
        consumer_subscription_id.map(Value::from),
    );
    set("priorObjectState", prior.cloned());
    set("postObjectState", change.post.clone());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_changed_and_gone_objects_are_created_modified_and_deleted() {
        let current: BTreeMap<String, Value> = [
            ("/a".to_string(), json!({"v": 1})),
            ("/b".to_string(), json!({"v": 2})),
            ("/c".to_string(), json!({"v": 3})),
        ]
        .into();
        let delivered: BTreeMap<String, String> = [
            ("/b".to_string(), fingerprint(&json!({"v": 2}))),
            ("/c".to_string(), fingerprint(&json!({"v": 0}))),
            ("/d".to_string(), fingerprint(&json!({"v": 4}))),
        ]
        .into();
        let found = changes(&delivered, &current);
        let got: Vec<(&str, Event)> = found
            .iter()
            .map(|c| (c.object_ref.as_str(), c.event))
            .collect();
        assert_eq!(
            got,
            [
                ("/a", Event::Create),
                ("/c", Event::Modify),
                ("/d", Event::Delete)
            ]
        );
    }

    #[test]
    fn what_was_delivered_is_not_told_again() {
        let current: BTreeMap<String, Value> =
            [("/a".to_string(), json!({"v": 1, "w": [1]}))].into();
        let delivered = current
            .iter()
            .map(|(k, v)| (k.clone(), fingerprint(v)))
            .collect();
        assert!(changes(&delivered, &current).is_empty());
    }

    #[test]
    fn a_deletion_carries_no_post_state_and_a_modification_its_prior_one() {
        let deleted = Change {
            object_ref: "/a".into(),
            event: Event::Delete,
            post: None,
        };
        let body = body("n", Some("c"), &deleted, Some(&json!({"v": 1})));
        assert_eq!(
            body,
            json!({"notificationId": "n", "notificationEventType": 2, "objectRef": "/a",
                   "consumerSubscriptionId": "c", "priorObjectState": {"v": 1}})
        );
    }
}
