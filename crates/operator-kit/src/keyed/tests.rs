use kube::runtime::reflector::store::Writer;
use serde_json::json;

use super::*;

fn resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())
}

fn object(namespace: &str, name: &str, group: Option<&str>) -> DynamicObject {
    let labels = group.map_or_else(|| json!({}), |g| json!({"group": g}));
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
    }))
    .expect("object")
}

fn by_group(object: &DynamicObject) -> Option<String> {
    object.labels().get("group").cloned()
}

/// A keyed store fed by hand: each event applied as the watch's stream applies it.
struct Fed {
    writer: Writer<DynamicObject>,
    keyed: Keyed,
}

impl Fed {
    fn new() -> Self {
        let writer = Writer::new(resource());
        let keyed = Keyed {
            store: writer.as_reader(),
            keys: Arc::new(RwLock::new(Keys::new(by_group, resource()))),
        };
        Self { writer, keyed }
    }

    fn event(&mut self, event: watcher::Event<DynamicObject>) {
        self.keyed.keys.write().expect("keys").apply(&event);
        self.writer.apply_watcher_event(&event);
    }

    /// The (namespace, name) of the objects of `key`, as the keys alone have them.
    fn keys_of(&self, key: &str) -> Vec<(String, String)> {
        let keys = self.keyed.keys.read().expect("keys");
        keys.objects
            .get(key)
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn names(&self, key: &str) -> Vec<String> {
        self.keyed
            .with_key(key)
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
            .collect()
    }
}

#[test]
fn objects_are_found_by_their_key_as_it_changes() {
    let mut fed = Fed::new();
    fed.event(watcher::Event::Init);
    fed.event(watcher::Event::InitApply(object("a", "one", Some("x"))));
    fed.event(watcher::Event::InitApply(object("b", "one", Some("x"))));
    fed.event(watcher::Event::InitApply(object("a", "none", None)));
    assert!(
        fed.names("x").is_empty(),
        "nothing before the listing is whole"
    );
    assert!(fed.keys_of("x").is_empty());
    fed.event(watcher::Event::InitDone);
    assert_eq!(fed.names("x"), ["a/one", "b/one"]);

    fed.event(watcher::Event::Apply(object("a", "two", Some("y"))));
    fed.event(watcher::Event::Apply(object("b", "one", Some("y"))));
    assert_eq!(fed.names("x"), ["a/one"]);
    assert_eq!(fed.names("y"), ["a/two", "b/one"]);
    fed.event(watcher::Event::Apply(object("a", "one", None)));
    fed.event(watcher::Event::Delete(object("a", "two", Some("y"))));
    assert!(fed.names("x").is_empty());
    assert_eq!(fed.names("y"), ["b/one"]);
    let keys = fed.keyed.keys.read().expect("keys");
    assert!(!keys.objects.contains_key("x"), "an emptied key is dropped");
}

#[test]
fn a_relisting_replaces_every_key() {
    let mut fed = Fed::new();
    fed.event(watcher::Event::Init);
    fed.event(watcher::Event::InitApply(object("a", "one", Some("x"))));
    fed.event(watcher::Event::InitApply(object("a", "two", Some("x"))));
    fed.event(watcher::Event::InitDone);
    // The watch restarts: `one` was deleted and `two` relabelled meanwhile.
    fed.event(watcher::Event::Init);
    fed.event(watcher::Event::InitApply(object("a", "two", Some("y"))));
    assert_eq!(
        fed.names("x"),
        ["a/one", "a/two"],
        "the old listing until the new is whole"
    );
    fed.event(watcher::Event::InitDone);
    assert!(fed.names("x").is_empty());
    assert_eq!(fed.names("y"), ["a/two"]);
    // The keys come from the events, not from reading the store back: they are whole before
    // the store says it has listed.
    assert_eq!(fed.keys_of("y"), [("a".to_string(), "two".to_string())]);
}
