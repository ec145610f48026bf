//! The `kubeadm reset` every bootstrap starts with. BYOH's agent, run with
//! `--skip-installation`, gives a host back without `kubeadm reset` (`hostCleanUp` in
//! agent/reconciler/host_reconciler.go), so a host released by scale-in, rollout or deletion
//! still runs kubelet and its static pods, and kubeadm would fail on it; on a clean host the
//! reset does nothing.
//!
//! On a control-plane machine Cluster API's kubeadm bootstrap provider has already written the
//! cluster's certificate authorities and service-account key into /etc/kubernetes/pki when the
//! commands run (its cloud-config's `write_files` come first; util/secret/certificates.go names
//! the files), and `kubeadm reset` empties that directory
//! (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go): kubeadm would then make a cluster of new
//! authorities that Cluster API's kubeconfig and the other control-plane machines do not trust.
//! So a control-plane bootstrap keeps exactly those files across the reset; anything else there
//! (an earlier cluster's serving certificates) goes. Workers get no such files, and keep none.

const RESET: &str = "kubeadm reset --force";
const PKI: &str = "/etc/kubernetes/pki";
/// Where the files wait during the reset: tmpfs, readable by root only, removed after.
const KEPT: &str = "/run/lcm/pki";
/// What the bootstrap provider writes into the PKI directory of a control-plane machine with
/// local etcd: the cluster, etcd and front-proxy authorities and the service-account key pair.
const SHARED_FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "sa.pub",
    "sa.key",
];

/// A worker's reset.
pub fn worker() -> Vec<String> {
    vec![RESET.to_string()]
}

/// A control-plane machine's reset, keeping the files the bootstrap provider wrote.
pub fn control_plane() -> Vec<String> {
    copy(PKI, KEPT)
        .chain([RESET.to_string()])
        .chain(copy(KEPT, PKI))
        .chain([format!("rm -rf {KEPT}")])
        .collect()
}

fn copy(from: &'static str, to: &'static str) -> impl Iterator<Item = String> {
    SHARED_FILES
        .iter()
        .map(move |file| format!("install -D -m 0600 {from}/{file} {to}/{file}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_plane_keeps_the_shared_authorities_across_the_reset() {
        let commands = control_plane();
        let reset = commands.iter().position(|c| c == RESET).expect("the reset");
        for file in SHARED_FILES {
            let kept = format!("install -D -m 0600 {PKI}/{file} {KEPT}/{file}");
            let restored = format!("install -D -m 0600 {KEPT}/{file} {PKI}/{file}");
            assert!(commands[..reset].contains(&kept), "{file} kept");
            assert!(commands[reset..].contains(&restored), "{file} restored");
        }
        assert_eq!(
            commands.last().map(String::as_str),
            Some("rm -rf /run/lcm/pki")
        );
        assert_eq!(worker(), [RESET]);
    }
}
