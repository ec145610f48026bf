//! Bounded fuzzing (proptest, a fixed number of cases per property) of what takes untrusted
//! input: the inventory parser, template validation and the Ansible inventory writer.

use lcm_core::ansible::{GROUP, render};
use lcm_core::inventory::Inventory;
use lcm_core::template::validate;
use proptest::prelude::*;
use serde_json::{Value, json};

const SHIPPED: &str = include_str!("../../../input.json");

/// Strings an attacker would try: templates, quotes, newlines, shell and YAML syntax, unicode.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}'\"\\\\$`;|&\n\r\t :#!%@*-]{0,24}",
        Just("{{ lookup('pipe', 'id') }}".to_string()),
        "[a-z0-9.-]{0,70}",
    ]
}

/// Any JSON value, a few levels deep, with keys the parsers know mixed in.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "hosts",
            "clusters",
            "defaults",
            "id",
            "hostname",
            "address",
            "sshUser",
            "sshHostKeys",
            "hostAccess",
            "controlPlane",
            "clusterName",
            "network",
        ])
        .prop_map(String::from),
        hostile(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Whether every host of an accepted inventory obeys the typing rules (checked independently of
/// the parser's own code: plain character classes).
fn well_typed(inventory: &Inventory) -> bool {
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    inventory.hosts.iter().all(|h| {
        let user = h
            .ssh_user
            .as_deref()
            .unwrap_or(&inventory.defaults.ssh_user);
        dns_label(&h.hostname)
            && h.address
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-".contains(&b))
            && user
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
            && !h.id.contains(char::is_whitespace)
            && h.ssh_host_keys.iter().all(|k| well_typed_key(k))
    })
}

/// `<type> <base64>` and nothing else: no options, no comment, no second line.
fn well_typed_key(key: &str) -> bool {
    key.split_once(' ').is_some_and(|(kind, blob)| {
        kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-")
    } && !blob.is_empty()
        && blob.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)))
}

/// `value` for `field`, as a list where the field is one.
fn field_value(field: &str, value: String) -> Value {
    if field == "sshHostKeys" {
        json!([value])
    } else {
        json!(value)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inventory_fields_are_refused_unless_well_typed(
        field in prop::sample::select(vec!["id", "hostname", "address", "sshUser", "sshHostKeys"]),
        value in hostile(),
        host in 0usize..4,
    ) {
        let mut inventory: Value = serde_json::from_str(SHIPPED).expect("input.json");
        inventory["hosts"][host][field] = field_value(field, value.clone());
        if let Ok(parsed) = Inventory::parse("input.json", &inventory.to_string()) {
            prop_assert!(well_typed(&parsed), "accepted {field} = {value:?}");
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_inventory_parser(text in any::<String>()) {
        let _ = Inventory::parse("input.json", &text);
    }

    #[test]
    fn arbitrary_json_never_panics_the_parsers(value in json_value()) {
        let _ = Inventory::parse("input.json", &value.to_string());
        let _ = validate(&value);
        let _ = validate(&json!({"hostAccess": value}));
    }

    #[test]
    fn template_validation_refuses_ill_typed_host_access(
        field in prop::sample::select(vec!["id", "hostname", "address", "sshUser", "sshHostKeys"]),
        value in hostile(),
    ) {
        let mut access = json!({"id": "h1", "hostname": "node-1", "address": "10.0.0.1", "sshUser": "ubuntu"});
        access[field] = field_value(field, value.clone());
        let parameters = json!({
            "clusterName": "c", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.1.0.1"},
            "hosts": {"controlPlane": ["h1"]}, "hostPreparation": "auto", "hostAccess": [access],
        });
        if let Ok(params) = validate(&parameters) {
            let a = &params.host_access[0];
            for text in [a.id.as_str(), a.address.as_str(), a.ssh_user.as_str(), a.hostname.as_deref().unwrap_or("")] {
                prop_assert!(!text.contains(['{', '}', '\'', '"', '\n', ' ', ';', '$', '`']), "accepted {field} = {value:?}");
            }
            prop_assert!(a.ssh_host_keys.iter().all(|k| well_typed_key(k)), "accepted {field} = {value:?}");
        }
    }

    #[test]
    fn the_ansible_writer_keeps_any_string_as_inert_data(
        hosts in prop::collection::btree_map("[a-z0-9-]{1,12}", (hostile(), hostile()), 1..4),
    ) {
        let hosts_json: serde_json::Map<String, Value> = hosts
            .iter()
            .map(|(id, (address, user))| (id.clone(), json!({"ansible_host": address, "ansible_user": user})))
            .collect();
        let inventory = json!({"all": {"children": {GROUP: {"hosts": hosts_json}}}});
        let text = render(&inventory);
        let parsed: Value = lcm_core::yaml::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed, &inventory);
        // Ansible's YAML reader refuses some characters (DEL, C1 controls) and folds others
        // (NEL, U+2028): only printable ASCII and line ends reach it.
        prop_assert!(text.chars().all(|c| c == '\n' || (' '..='~').contains(&c)), "{}", text);
        let unsafe_values = text.matches(": !unsafe \"").count();
        prop_assert_eq!(unsafe_values, hosts.len() * 2, "every value tagged:\n{}", text);
    }
}
