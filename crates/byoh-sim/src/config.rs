//! What the simulated world holds (its hosts, how long things take) and which faults it injects.

use std::collections::BTreeSet;
use std::time::Duration;

use lcm_core::inventory::Inventory;

/// A bare-metal host of the simulated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimHost {
    /// The host id: the value of the ByoHost's `host-id` label.
    pub id: String,
    /// The hostname: the name its agent registers the ByoHost under.
    pub hostname: String,
    /// Its IP address, reported in the ByoHost's network status.
    pub address: Option<String>,
}

impl SimHost {
    /// The hosts of an inventory (`input.json`).
    pub fn from_inventory(inventory: &Inventory) -> Vec<SimHost> {
        inventory
            .hosts
            .iter()
            .map(|h| SimHost {
                id: h.id.clone(),
                hostname: h.hostname.clone(),
                address: Some(h.address.clone()),
            })
            .collect()
    }

    /// Whether `names` holds this host's id or hostname.
    pub fn named_in(&self, names: &BTreeSet<String>) -> bool {
        names.contains(&self.id) || names.contains(&self.hostname)
    }
}

/// Faults to inject; each set holds host ids or hostnames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Hosts whose agent never registers a ByoHost.
    pub never_register: BTreeSet<String>,
    /// Hosts whose preparation fails: every Job preparing one of them fails.
    pub fail_job_for: BTreeSet<String>,
    /// Hosts on which bootstrapping Kubernetes (cloud-init / kubeadm) fails.
    pub fail_bootstrap: BTreeSet<String>,
    /// Hosts whose node runs a pod a PodDisruptionBudget keeps from eviction: their drain
    /// ends only when the machine's `nodeDrainTimeout` passes.
    pub pdb_blocks_drain: BTreeSet<String>,
}

/// The simulator's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The hosts the world has (the inventory's); hosts that only a Job inventory names are
    /// known from that inventory.
    pub hosts: Vec<SimHost>,
    /// Namespace agents register their ByoHosts in, unless a Job's inventory says otherwise
    /// (`byoh_namespace`).
    pub byoh_namespace: String,
    /// Register every host of `hosts` at start, as if all were prepared already.
    pub register_inventory_hosts: bool,
    /// Hosts (ids or hostnames) registered at start although no Job prepared them.
    pub preregistered: BTreeSet<String>,
    /// Namespace whose host-preparation Jobs are run; `None` for all.
    pub namespace: Option<String>,
    /// Label selector of the host-preparation Jobs that are run, e.g. one ProvisioningRequest's
    /// (`lcm_core::provisioning_request_selector`); `None` for every Job labelled with a
    /// ProvisioningRequest.
    pub job_selector: Option<String>,
    /// How long a host-preparation Job runs.
    pub job_delay: Duration,
    /// How long a host takes to bootstrap Kubernetes once a machine claimed it.
    pub bootstrap_delay: Duration,
    /// Every cluster's owner brings its CNI (the workload cluster's `cniPreinstalled`): nodes
    /// are Ready without a CNI applied; otherwise they stay NotReady until a ClusterResourceSet
    /// applies one, as with Cluster API.
    pub cni_by_cluster_owner: bool,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            byoh_namespace: lcm_core::ansible::DEFAULT_BYOH_NAMESPACE.into(),
            register_inventory_hosts: false,
            preregistered: BTreeSet::new(),
            namespace: None,
            job_selector: None,
            job_delay: Duration::from_secs(2),
            bootstrap_delay: Duration::from_secs(3),
            cni_by_cluster_owner: false,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// The hosts whose agents register when the simulator starts.
    pub fn registered_at_start(&self) -> impl Iterator<Item = &SimHost> {
        self.hosts
            .iter()
            .filter(|h| self.register_inventory_hosts || h.named_in(&self.preregistered))
    }

    /// An inventory host by id.
    pub fn host(&self, id: &str) -> Option<&SimHost> {
        self.hosts.iter().find(|h| h.id == id)
    }
}

/// Parses a duration such as `500ms`, `2s`, `1m` or `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 2s or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn registers_inventory_or_preregistered_hosts_at_start() {
        let host = |id: &str| SimHost {
            id: id.into(),
            hostname: format!("node-{id}"),
            address: None,
        };
        let mut config = SimConfig {
            hosts: vec![host("a"), host("b")],
            preregistered: ["node-b".to_string()].into(),
            ..SimConfig::default()
        };
        let ids = |c: &SimConfig| {
            c.registered_at_start()
                .map(|h| h.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&config), ["b"]);
        config.register_inventory_hosts = true;
        assert_eq!(ids(&config), ["a", "b"]);
    }
}
