//! The Ansible inventory the host-preparation playbook (`ansible/site.yaml`) runs against.
//!
//! Every host is in the group `byoh_hosts`, named by its host id (the ByoHost's `host-id`
//! label), with the host variables
//!
//! | variable | value |
//! | --- | --- |
//! | `ansible_host` | the address Ansible connects to |
//! | `ansible_user` | the SSH user |
//! | `byoh_host_id` | the host id, given to the agent as `--label host-id=...` |
//! | `byoh_hostname` | the hostname the host registers under (only when known) |
//!
//! and the playbook needs two more, `kubernetes_version` (without the `v`, e.g. `1.33.5`) and
//! `byoh_namespace` (where the agent creates the ByoHost):
//!
//! * [`inventory`] prepares the hosts of one cluster: both are group variables of `byoh_hosts`.
//! * [`inventory_from_file`] prepares the hosts of several clusters from `input.json`, which may
//!   run different versions: `kubernetes_version` is a host variable there, and only
//!   `byoh_namespace` ([`DEFAULT_BYOH_NAMESPACE`], the operator's default) a group variable.
//!
//! The result is rendered with [`render`]: every value is data Ansible never templates.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::inventory::Inventory;
use crate::template::{HostAccess, KubernetesVersion};

/// The group every prepared host is in.
pub const GROUP: &str = "byoh_hosts";

/// Namespace the host agents register their ByoHosts in, unless told otherwise: the default
/// of the O2IMS operator's `BYOH_NAMESPACE`. BYOH finds hosts in any namespace.
pub const DEFAULT_BYOH_NAMESPACE: &str = "byoh-hosts";

/// The inventory for the hosts of one cluster running `kubernetes_version` (`v1.33.5` or
/// `1.33.5`), whose agents register their ByoHosts in `byoh_namespace`.
pub fn inventory(hosts: &[HostAccess], kubernetes_version: &str, byoh_namespace: &str) -> Value {
    let hosts: Map<String, Value> = hosts
        .iter()
        .map(|h| (h.id.clone(), Value::Object(host_vars(h))))
        .collect();
    let vars = json!({
        "kubernetes_version": without_v(kubernetes_version),
        "byoh_namespace": byoh_namespace,
    });
    wrap(hosts, Some(vars))
}

/// The inventory for every host of the named `clusters` of `inventory` (all clusters when
/// `None`), each host with its own cluster's `kubernetes_version`, all registering in
/// [`DEFAULT_BYOH_NAMESPACE`].
///
/// Fails on an unknown cluster name, on a host id the inventory lacks, on an invalid
/// Kubernetes version and on a host that two selected clusters share (a host can only be
/// prepared for one version and namespace).
pub fn inventory_from_file(
    inventory: &Inventory,
    clusters: Option<&[String]>,
) -> Result<Value, String> {
    let selected = match clusters {
        None => inventory.clusters.iter().collect::<Vec<_>>(),
        Some(names) => names
            .iter()
            .map(|name| {
                inventory
                    .cluster(name)
                    .ok_or_else(|| format!("no cluster `{name}` in the inventory"))
            })
            .collect::<Result<_, _>>()?,
    };
    let mut hosts = Map::new();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for cluster in selected {
        let params = inventory.parameters(cluster);
        let version: KubernetesVersion = params
            .kubernetes_version
            .parse()
            .map_err(|e| format!("cluster `{}`: kubernetesVersion {e}", cluster.name))?;
        for id in params.all_hosts() {
            let Some(access) = inventory.host_access(id) else {
                return Err(format!(
                    "cluster `{}`: host `{id}` is not in the inventory",
                    cluster.name
                ));
            };
            // The same cluster may name a host twice (validation reports that elsewhere).
            if let Some(first) = owner.insert(id.clone(), &cluster.name)
                && first != cluster.name
            {
                return Err(format!(
                    "host `{id}` is in both cluster `{first}` and cluster `{}`; select one of them",
                    cluster.name
                ));
            }
            let mut vars = host_vars(&access);
            vars.insert(
                "kubernetes_version".into(),
                without_v(&version.to_string()).into(),
            );
            hosts.insert(access.id.clone(), Value::Object(vars));
        }
    }
    Ok(wrap(
        hosts,
        Some(json!({ "byoh_namespace": DEFAULT_BYOH_NAMESPACE })),
    ))
}

/// The inventory as YAML in which every string is tagged `!unsafe`: Ansible templates inventory
/// variables, so an address like `{{ lookup('pipe', 'id') }}` would otherwise run in the
/// host-preparation pod, beside the SSH key. Strings are double-quoted with everything but
/// printable ASCII escaped, so no value can end its scalar or start another, and no character
/// reaches Ansible's YAML reader that it refuses (DEL, C1 controls) or folds (NEL, U+2028).
pub fn render(inventory: &Value) -> String {
    let mut out = String::new();
    write_mapping(inventory, 0, &mut out);
    out
}

fn write_mapping(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else {
        return;
    };
    for (key, item) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quoted(key));
        match item {
            Value::Object(inner) if inner.is_empty() => out.push_str(": {}\n"),
            Value::Object(_) => {
                out.push_str(":\n");
                write_mapping(item, indent + 2, out);
            }
            Value::String(text) => {
                out.push_str(": !unsafe ");
                out.push_str(&quoted(text));
                out.push('\n');
            }
            other => {
                out.push_str(": ");
                out.push_str(&other.to_string());
                out.push('\n');
            }
        }
    }
}

fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// The `known_hosts` lines of `hosts`: each host's address with each of its pinned keys.
pub fn known_hosts(hosts: &[HostAccess]) -> String {
    hosts
        .iter()
        .flat_map(|h| {
            h.ssh_host_keys
                .iter()
                .map(move |key| format!("{} {key}\n", h.address))
        })
        .collect()
}

fn host_vars(host: &HostAccess) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("ansible_host".into(), host.address.clone().into());
    vars.insert("ansible_user".into(), host.ssh_user.clone().into());
    vars.insert("byoh_host_id".into(), host.id.clone().into());
    if let Some(hostname) = &host.hostname {
        vars.insert("byoh_hostname".into(), hostname.clone().into());
    }
    vars
}

fn without_v(version: &str) -> &str {
    version.strip_prefix('v').unwrap_or(version)
}

/// Sets a variable of the group [`GROUP`] of an inventory made here.
pub fn set_group_var(inventory: &mut Value, name: &str, value: Value) {
    inventory["all"]["children"][GROUP]["vars"][name] = value;
}

fn wrap(hosts: Map<String, Value>, vars: Option<Value>) -> Value {
    let mut group = Map::new();
    group.insert("hosts".into(), Value::Object(hosts));
    if let Some(vars) = vars {
        group.insert("vars".into(), vars);
    }
    json!({ "all": { "children": { GROUP: group } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_unsafe_and_reads_back_exactly() {
        let hostile = "{{ lookup('pipe', 'id') }}\"\n: x";
        let value = json!({"all": {"children": {GROUP: {"hosts": {"h1": {"ansible_host": hostile}}, "vars": {}}}}});
        let text = render(&value);
        assert!(
            text.contains(r#""ansible_host": !unsafe "{{ lookup('pipe', 'id') }}\"\u000A: x""#),
            "{text}"
        );
        let parsed: Value = crate::yaml::from_str(&text).expect("valid YAML");
        assert_eq!(
            parsed["all"]["children"][GROUP]["hosts"]["h1"]["ansible_host"],
            hostile
        );
    }

    #[test]
    fn characters_yaml_readers_refuse_or_fold_are_escaped() {
        let text = "a\u{7f}b\u{85}c\u{2028}d\u{feff}e\u{1F600}\t";
        let rendered = render(&json!({ "h": text }));
        assert_eq!(
            rendered,
            "\"h\": !unsafe \"a\\u007Fb\\u0085c\\u2028d\\uFEFFe\\U0001F600\\u0009\"\n"
        );
        let parsed: Value = crate::yaml::from_str(&rendered).expect("valid YAML");
        assert_eq!(parsed["h"], text);
    }

    #[test]
    fn known_hosts_pin_each_key_to_its_address() {
        let host = HostAccess {
            id: "h1".into(),
            hostname: None,
            address: "10.0.0.1".into(),
            ssh_user: "ubuntu".into(),
            ssh_host_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA".into()],
        };
        assert_eq!(
            known_hosts(&[host]),
            "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n"
        );
    }
}
