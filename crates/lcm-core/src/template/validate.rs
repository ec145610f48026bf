//! Validation of `byoh-workload-cluster` parameters, with messages that name
//! the field and say what to do.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    ClusterParameters, HostAccess, KubernetesVersion, MIN_KUBERNETES, UNSUPPORTED_KUBERNETES,
};

/// Longest cluster name: derived object names (`<name>-control-plane`, the
/// namespace `cluster-<name>`) must stay within 63 characters.
const MAX_CLUSTER_NAME: usize = 40;

/// One problem with one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, as in `templateParameters.hosts.controlPlane`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a set of parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParameterErrors(pub Vec<FieldError>);

impl fmt::Display for ParameterErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join("; "))
    }
}

const ROOT: &str = "templateParameters";

/// Parses and validates template parameters; every error names its field.
pub fn validate(value: &serde_json::Value) -> Result<ClusterParameters, ParameterErrors> {
    let params: ClusterParameters = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            ROOT.to_string()
        } else {
            format!("{ROOT}.{path}")
        };
        ParameterErrors(vec![FieldError {
            path,
            message: e.into_inner().to_string(),
        }])
    })?;
    let mut errors = Errors::default();
    check_cluster_name(&params.cluster_name, &mut errors);
    check_version(&params.kubernetes_version, &mut errors);
    check_endpoint(&params, &mut errors);
    check_hosts(&params, &mut errors);
    check_networks(&params, &mut errors);
    check_host_access(&params, &mut errors);
    check_labels(&params, &mut errors);
    check_handoff(&params, &mut errors);
    if errors.0.is_empty() {
        Ok(params)
    } else {
        Err(ParameterErrors(errors.0))
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            path: format!("{ROOT}.{field}"),
            message: message.into(),
        });
    }
}

/// Whether `s` is an RFC 1123 DNS label (lower-case alphanumerics and `-`).
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is a valid Kubernetes label value (it becomes the ByoHost `host-id` label).
pub(crate) fn is_label_value(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// What is wrong with each field of `access`, by field name. These values reach SSH and Ansible,
/// so each must be exactly what it claims to be: nothing that a shell, an SSH option or a
/// template could read as more.
pub(crate) fn host_access_problems(access: &HostAccess) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if !is_label_value(&access.id) {
        problems.push((
            "id".into(),
            format!("`{}` is not a valid host id (a label value)", access.id),
        ));
    }
    if let Some(hostname) = &access.hostname
        && !is_dns_label(hostname)
    {
        problems.push((
            "hostname".into(),
            format!(
                "`{hostname}` is not a DNS label (lower-case letters, digits and '-', at most 63)"
            ),
        ));
    }
    if !is_address(&access.address) {
        problems.push((
            "address".into(),
            format!(
                "`{}` is neither an IP address nor a DNS name",
                access.address
            ),
        ));
    }
    if !is_user_name(&access.ssh_user) {
        problems.push(("sshUser".into(), format!("`{}` is not a user name (lower-case letters, digits, '_' and '-', at most 32, not starting with a digit or '-')", access.ssh_user)));
    }
    for (k, key) in access.ssh_host_keys.iter().enumerate() {
        if !is_public_key(key) {
            problems.push((format!("sshHostKeys[{k}]"), "is not an OpenSSH public key (`<type> <base64>`, e.g. as ssh-keyscan prints it without the host)".into()));
        }
    }
    problems
}

/// An IP address, or a DNS name (RFC 1123: dot-separated labels, at most 253 characters).
pub(crate) fn is_address(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
        || (s.len() <= 253
            && s.split('.').all(is_dns_label)
            && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// A POSIX-portable user name as useradd accepts it.
pub(crate) fn is_user_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// An OpenSSH public host key: a known key type and its base64 blob, nothing else.
pub(crate) fn is_public_key(s: &str) -> bool {
    const TYPES: [&str; 5] = [
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    ];
    let mut parts = s.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(kind), Some(blob), None) => {
            TYPES.contains(&kind)
                && blob.len() >= 16
                && blob
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        }
        _ => false,
    }
}

fn check_cluster_name(name: &str, errors: &mut Errors) {
    if !is_dns_label(name) || name.len() > MAX_CLUSTER_NAME {
        errors.add(
            "clusterName",
            format!(
                "`{name}` must be a DNS label (lower-case letters, digits and '-') of at most {MAX_CLUSTER_NAME} characters"
            ),
        );
    }
}

fn check_version(version: &str, errors: &mut Errors) {
    match version.parse::<KubernetesVersion>() {
        Err(e) => errors.add("kubernetesVersion", e),
        Ok(v) if v < MIN_KUBERNETES || v >= UNSUPPORTED_KUBERNETES => errors.add(
            "kubernetesVersion",
            format!(
                "{v} is outside the range Cluster API v1.10 supports for workload clusters: at least {MIN_KUBERNETES} and below {UNSUPPORTED_KUBERNETES}"
            ),
        ),
        Ok(_) => {}
    }
}

fn check_endpoint(params: &ClusterParameters, errors: &mut Errors) {
    let endpoint = &params.control_plane_endpoint;
    if endpoint.host.parse::<IpAddr>().is_err() {
        errors.add(
            "controlPlaneEndpoint.host",
            format!(
                "`{}` is not an IP address: give the free virtual IP kube-vip will serve",
                endpoint.host
            ),
        );
    }
    if !(1..=65535).contains(&endpoint.port) {
        errors.add(
            "controlPlaneEndpoint.port",
            format!("{} is not a TCP port (1-65535)", endpoint.port),
        );
    }
}

fn check_hosts(params: &ClusterParameters, errors: &mut Errors) {
    let control_plane = &params.hosts.control_plane;
    if control_plane.is_empty() || control_plane.len().is_multiple_of(2) {
        errors.add(
            "hosts.controlPlane",
            format!(
                "needs an odd number of hosts (1, 3, 5...) for etcd quorum, got {}",
                control_plane.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (role, hosts) in [
        ("controlPlane", control_plane),
        ("workers", &params.hosts.workers),
    ] {
        for (i, host) in hosts.iter().enumerate() {
            if !is_label_value(host) {
                errors.add(
                    &format!("hosts.{role}[{i}]"),
                    format!("`{host}` is not a valid host id (a label value)"),
                );
            }
            if !seen.insert(host.as_str()) {
                errors.add(
                    &format!("hosts.{role}[{i}]"),
                    format!("host `{host}` is listed more than once"),
                );
            }
        }
    }
}

fn check_networks(params: &ClusterParameters, errors: &mut Errors) {
    let network = &params.network;
    let mut parsed: Vec<(String, IpNet)> = Vec::new();
    for (field, cidrs) in [
        ("podCIDRs", &network.pod_cidrs),
        ("serviceCIDRs", &network.service_cidrs),
    ] {
        if cidrs.is_empty() {
            errors.add(&format!("network.{field}"), "needs at least one CIDR");
        }
        for (i, cidr) in cidrs.iter().enumerate() {
            let path = format!("network.{field}[{i}]");
            match cidr.parse::<IpNet>() {
                Ok(net) if net.trunc() == net => parsed.push((path, net)),
                Ok(net) => errors.add(
                    &path,
                    format!("`{cidr}` has host bits set; did you mean {}?", net.trunc()),
                ),
                Err(_) => errors.add(
                    &path,
                    format!("`{cidr}` is not a CIDR such as 10.128.0.0/12"),
                ),
            }
        }
    }
    for (i, (path_a, a)) in parsed.iter().enumerate() {
        for (path_b, b) in &parsed[i + 1..] {
            if a.contains(b) || b.contains(a) {
                errors.add(path_b, format!("{b} overlaps {a} ({ROOT}.{path_a}); pod and service networks must be disjoint"));
            }
        }
    }
    if let Ok(vip) = params.control_plane_endpoint.host.parse::<IpAddr>()
        && let Some((path, net)) = parsed.iter().find(|(_, net)| net.contains(&vip))
    {
        errors.add(
            "controlPlaneEndpoint.host",
            format!("{vip} lies inside {net} ({ROOT}.{path}); the endpoint must be on the hosts' network"),
        );
    }
    if !network.service_domain.split('.').all(is_dns_label) {
        errors.add(
            "network.serviceDomain",
            format!("`{}` is not a DNS domain", network.service_domain),
        );
    }
}

fn check_host_access(params: &ClusterParameters, errors: &mut Errors) {
    let cluster_hosts: HashSet<&String> = params.all_hosts().collect();
    for (i, access) in params.host_access.iter().enumerate() {
        if !cluster_hosts.contains(&access.id) {
            errors.add(
                &format!("hostAccess[{i}].id"),
                format!("`{}` is not a host of this cluster", access.id),
            );
        }
        for (field, problem) in host_access_problems(access) {
            errors.add(&format!("hostAccess[{i}].{field}"), problem);
        }
    }
    // hostPreparation: auto needs no hostAccess here: the O2IMS operator reads how hosts are
    // reached from the O-Cloud's own inventory, and reports the hosts it cannot reach.
}

/// Label prefixes that steer the tools a cluster is handed to, or belong to Kubernetes: a
/// tenant's label must not register, import or route a cluster on its own.
const RESERVED_LABEL_PREFIXES: [&str; 6] = [
    "kubernetes.io",
    "k8s.io",
    "argocd.argoproj.io",
    "cluster.x-k8s.io",
    "cluster-api.cattle.io",
    "o2ims.provisioning.oran.org",
];

/// Whether `key` is a Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name.
pub(crate) fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    is_label_value(name) && prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_dns_label))
}

/// The reserved prefix `key` uses, if any (the prefix itself or a subdomain of it).
fn reserved_prefix(key: &str) -> Option<&'static str> {
    let prefix = key.split_once('/')?.0;
    RESERVED_LABEL_PREFIXES
        .into_iter()
        .find(|r| prefix == *r || prefix.ends_with(&format!(".{r}")))
}

/// Problems of labels a tenant gives a cluster, as (path under `at`, message).
pub(crate) fn label_problems(
    labels: &std::collections::BTreeMap<String, String>,
    at: &str,
) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (key, value) in labels {
        let path = format!("{at}.{key}");
        if !is_label_key(key) {
            problems.push((path, format!("`{key}` is not a Kubernetes label key")));
        } else if let Some(prefix) = reserved_prefix(key) {
            problems.push((path, format!("the label prefix `{prefix}` is reserved")));
        } else if !value.is_empty() && !is_label_value(value) {
            problems.push((
                path,
                format!("`{value}` is not a label value (at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)"),
            ));
        }
    }
    problems
}

fn check_labels(params: &ClusterParameters, errors: &mut Errors) {
    for (path, message) in label_problems(&params.labels, "labels") {
        errors.add(&path, message);
    }
}

/// A relative path inside a repository: segments of letters, digits, '.', '_' and '-', none
/// of them `.` or `..`.
pub(crate) fn is_relative_path(path: &str) -> bool {
    path.len() <= 253
        && !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn check_handoff(params: &ClusterParameters, errors: &mut Errors) {
    if let Some(directory) = &params.handoff.config_sync_directory
        && !is_relative_path(directory)
    {
        errors.add(
            "handoff.configSyncDirectory",
            format!("`{directory}` is not a relative path of letters, digits, '.', '_' and '-' without `.` or `..` segments"),
        );
    }
}

/// Validates a whole request for this template: template name and version and the parameters.
/// Any name the API server accepts will do: labels carry [`crate::names::label_value`] of it.
pub fn validate_request(
    template_name: &str,
    template_version: &str,
    parameters: &serde_json::Value,
) -> Result<ClusterParameters, ParameterErrors> {
    let mut errors = Vec::new();
    if template_name != super::NAME {
        errors.push(FieldError {
            path: "templateName".into(),
            message: format!(
                "unknown template `{template_name}`; this O-Cloud provides `{}`",
                super::NAME
            ),
        });
    } else if template_version != super::VERSION {
        errors.push(FieldError {
            path: "templateVersion".into(),
            message: format!(
                "unknown version `{template_version}` of {}; available: {}",
                super::NAME,
                super::VERSION
            ),
        });
    }
    match validate(parameters) {
        Ok(params) if errors.is_empty() => Ok(params),
        Ok(_) => Err(ParameterErrors(errors)),
        Err(ParameterErrors(more)) => {
            errors.extend(more);
            Err(ParameterErrors(errors))
        }
    }
}
