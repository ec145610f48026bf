//! How host preparation reaches hosts: from the O-Cloud's own host inventory, else (only where
//! the operator allows it) from the request; and the HostsPrepared conditions of hosts it
//! cannot reach. Pure.

use lcm_core::conditions::Desired;
use lcm_core::inventory::Inventory;
use lcm_core::template::{ClusterParameters, HostAccess};

use crate::config::Config;
use crate::report::HOSTS_PREPARED;

/// How host preparation reaches each of `hosts`: from the host inventory, else (only where the
/// operator allows it) from the request's hostAccess; the hosts neither describes are `Err`.
pub fn access(
    inventory: Option<&Inventory>,
    params: &ClusterParameters,
    allow_request: bool,
    hosts: &[String],
) -> std::result::Result<Vec<HostAccess>, Vec<String>> {
    let from_request = |id: &String| {
        params
            .host_access
            .iter()
            .find(|a| allow_request && &a.id == id)
            .cloned()
    };
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for id in hosts {
        match inventory
            .and_then(|i| i.host_access(id))
            .or_else(|| from_request(id))
        {
            Some(access) => found.push(access),
            None => missing.push(id.clone()),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// The host inventory of `text`, its ConfigMap's (`None` when the ConfigMap does not exist), or
/// the HostsPrepared condition saying why it cannot be used.
pub fn host_inventory(
    config: &Config,
    text: Option<&str>,
) -> std::result::Result<Option<Inventory>, Desired> {
    let Some(text) = text else {
        return Ok(None);
    };
    let parsed = Inventory::parse(&config.host_inventory(), text);
    parsed.map(Some).map_err(|e| {
        Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!("the host inventory cannot be used: {e}"),
        )
    })
}

/// HostPreparationFailed for `missing` hosts that neither the host inventory nor an allowed
/// request describes: nothing says how to reach them.
pub fn not_in_inventory(config: &Config, missing: &[String], exists: bool) -> Desired {
    let inventory = if exists {
        format!("the host inventory, {}", config.host_inventory())
    } else {
        format!(
            "the host inventory: {} does not exist",
            config.host_inventory()
        )
    };
    Desired::false_(
        HOSTS_PREPARED,
        "HostPreparationFailed",
        format!(
            "{} need preparation but are not in {inventory}; add them there, or register their ByoHosts",
            missing.join(", ")
        ),
    )
}

/// HostPreparationFailed for hosts that have no pinned SSH host key: the Job would have to trust
/// whatever answers at their address with the fleet's SSH key.
pub fn unpinned(config: &Config, access: &[HostAccess]) -> Option<Desired> {
    let unpinned: Vec<&str> = access
        .iter()
        .filter(|a| a.ssh_host_keys.is_empty())
        .map(|a| a.id.as_str())
        .collect();
    (!unpinned.is_empty()).then(|| {
        Desired::false_(
            HOSTS_PREPARED,
            "HostPreparationFailed",
            format!(
                "no SSH host key is pinned for {}: give their sshHostKeys, as ssh-keyscan prints them, in the host inventory ({})",
                unpinned.join(", "),
                config.host_inventory()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lcm_core::template::{ParameterErrors, refuse_request_host_access};
    use serde_json::{Value, json};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB";

    fn config(allow: bool) -> Config {
        Config::parse(if allow {
            &["--allow-request-host-access"]
        } else {
            &[]
        })
    }

    fn parameters(host_access: Value) -> Value {
        json!({
            "clusterName": "c", "kubernetesVersion": "v1.32.9", "controlPlaneEndpoint": {"host": "10.1.0.1"},
            "hosts": {"controlPlane": ["h1"], "workers": ["h2"]}, "hostPreparation": "auto",
            "hostAccess": host_access,
        })
    }

    fn checked(
        config: &Config,
        applied: Option<&ClusterParameters>,
        parameters: &Value,
    ) -> std::result::Result<ClusterParameters, ParameterErrors> {
        let validation = lcm_core::template::validate(parameters);
        let (allowed, inventory) = (config.allow_request_host_access, config.host_inventory());
        refuse_request_host_access(allowed, &inventory, applied, parameters, validation)
    }

    #[test]
    fn request_host_access_is_refused_unless_allowed() {
        let given = parameters(json!([{"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"}]));
        let errors = checked(&config(false), None, &given).expect_err("refused");
        let text = errors.to_string();
        assert!(
            text.starts_with("templateParameters.hostAccess: ")
                && text.contains("not allowed on this O-Cloud")
                && text.contains("ConfigMap o2ims-system/lcm-inventory")
                && text.contains("--allow-request-host-access"),
            "{text}"
        );
        assert!(checked(&config(true), None, &given).is_ok());
        assert!(checked(&config(false), None, &parameters(json!([]))).is_ok());
        // Other problems are reported beside the refusal.
        let bad = parameters(json!([{"id": "h2", "address": "10.0.0.2", "sshUser": "root; id"}]));
        let errors = checked(&config(false), None, &bad).expect_err("refused");
        let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "templateParameters.hostAccess[0].sshUser",
                "templateParameters.hostAccess"
            ]
        );
        // A cluster provisioned with host access keeps it; adding to it is refused.
        let applied = lcm_core::template::validate(&given).expect("valid");
        assert!(checked(&config(false), Some(&applied), &given).is_ok());
        let more = parameters(json!([
            {"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu"},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ]));
        assert!(checked(&config(false), Some(&applied), &more).is_err());
    }

    #[test]
    fn access_comes_from_the_inventory_then_an_allowed_request() {
        let inventory = Inventory::parse(
            "input.json",
            &json!({"hosts": [{"id": "h1", "hostname": "node-1", "address": "10.0.0.1", "sshHostKeys": [KEY]}], "clusters": []}).to_string(),
        )
        .expect("inventory");
        let params = lcm_core::template::validate(&parameters(json!([
            {"id": "h1", "address": "192.0.2.66", "sshUser": "attacker"},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ])))
        .expect("valid");
        let hosts = ["h1".to_string(), "h2".to_string()];
        assert_eq!(
            access(Some(&inventory), &params, false, &hosts),
            Err(vec!["h2".to_string()])
        );
        let found = access(Some(&inventory), &params, true, &hosts).expect("both");
        assert_eq!(found[0].address, "10.0.0.1", "the inventory wins");
        assert_eq!(found[0].hostname.as_deref(), Some("node-1"));
        assert_eq!(
            found[1].address, "10.0.0.2",
            "the request's, for a host the inventory lacks"
        );
        assert_eq!(access(None, &params, false, &hosts), Err(hosts.to_vec()));
        let missing = not_in_inventory(&config(false), &["h2".into()], false);
        assert_eq!(missing.reason, "HostPreparationFailed");
        assert!(
            missing.message.contains("h2")
                && missing
                    .message
                    .contains("ConfigMap o2ims-system/lcm-inventory (input.json) does not exist"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn a_host_without_a_pinned_key_is_not_prepared() {
        let params = lcm_core::template::validate(&parameters(json!([
            {"id": "h1", "address": "10.0.0.1", "sshUser": "ubuntu", "sshHostKeys": [KEY]},
            {"id": "h2", "address": "10.0.0.2", "sshUser": "ubuntu"},
        ])))
        .expect("valid");
        let config = config(true);
        assert!(unpinned(&config, &params.host_access[..1]).is_none());
        let failed = unpinned(&config, &params.host_access).expect("h2 has no key");
        assert_eq!(failed.reason, "HostPreparationFailed");
        assert!(
            failed.message.contains("h2")
                && !failed.message.contains("h1")
                && failed.message.contains("sshHostKeys")
                && failed
                    .message
                    .contains("ConfigMap o2ims-system/lcm-inventory"),
            "{}",
            failed.message
        );
    }
}
