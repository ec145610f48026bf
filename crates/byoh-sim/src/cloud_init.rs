//! What running bootstrap data does to a simulated host, as BYOH's agent runs it
//! (agent/cloudinit/cloudinit.go: every `write_files` entry, then each `runcmd` entry in a
//! shell, stopping at the first failure) and as kubeadm then behaves.
//!
//! A host remembers its files and whether Kubernetes runs on it. Modelled commands:
//! `kubeadm reset` (stops everything, empties /etc/kubernetes and /var/lib/etcd),
//! `kubeadm init` / `kubeadm join` (their preflight fails while Kubernetes runs: ports 10250,
//! 6443 and 2379 in use), `install -m MODE SOURCE TARGET`, `if [ -f FILE ]; then COMMAND; fi`,
//! `echo ... > FILE`, `sh FILE` (a FILE with a line `kubernetes_version=vX.Y.Z` installs
//! kubelet and kubeadm at that version, as the project's package script does) and `&&`. Any
//! other command succeeds and changes nothing. A host no script installed packages on runs
//! the version it was prepared for (by the playbook, for the first machine that claims it);
//! `kubeadm reset` uninstalls nothing, so the kubelet version stays until a script changes it.
//!
//! `kubeadm init` also needs the control-plane endpoint served while it runs: a kube-vip
//! manifest in /etc/kubernetes/manifests, using super-admin.conf from Kubernetes 1.29 (with
//! admin.conf kube-vip gets no lease until init has bound its rights: kube-vip issue 684).

use std::collections::BTreeMap;

use serde_json::Value;

use lcm_core::template::KubernetesVersion;

use crate::kubeadm_bootstrap::INIT_CONFIG;

const KUBE_VIP_MANIFEST: &str = "/etc/kubernetes/manifests/kube-vip.yaml";
const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";
/// Emptied by `kubeadm reset`.
const RESET_DIRECTORIES: [&str; 3] = ["/etc/kubernetes/", "/var/lib/etcd/", "/var/lib/kubelet/"];
/// Emptied by the agent before every bootstrap (`cleank8sdirectories` in
/// agent/reconciler/host_reconciler.go).
pub const AGENT_CLEANED_DIRECTORIES: [&str; 2] = ["/run/kubeadm/", "/etc/cni/net.d/"];

/// The state of one simulated host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    files: BTreeMap<String, String>,
    /// What kubeadm started here and still runs, if anything.
    running: Option<&'static str>,
    /// The version of the installed kubelet and kubeadm packages.
    kubelet: Option<String>,
}

impl Host {
    /// Whether kubelet and static pods left by an earlier bootstrap still run.
    #[cfg(test)]
    fn is_dirty(&self) -> bool {
        self.running.is_some()
    }

    /// `kubeadm reset --force`.
    pub fn reset(&mut self) {
        self.running = None;
        self.remove_under(&RESET_DIRECTORIES);
    }

    pub fn remove_under(&mut self, directories: &[&str]) {
        self.files
            .retain(|path, _| !directories.iter().any(|d| path.starts_with(d)));
    }

    /// The kubelet version the host's Node reports.
    pub fn kubelet_version(&self) -> Option<&str> {
        self.kubelet.as_deref()
    }

    /// Runs a cloud-config on a host prepared for `prepared_for`: its files, then its
    /// commands. The error is what the failing command printed.
    pub fn run(&mut self, cloud_config: &str, prepared_for: &str) -> Result<(), String> {
        let config: Value = lcm_core::yaml::from_str(cloud_config)
            .map_err(|e| format!("cloud-config is not valid YAML: {e}"))?;
        self.kubelet.get_or_insert_with(|| prepared_for.to_string());
        for file in config["write_files"].as_array().into_iter().flatten() {
            let (Some(path), content) = (file["path"].as_str(), &file["content"]) else {
                return Err("a write_files entry has no path".into());
            };
            self.files
                .insert(path.into(), content.as_str().unwrap_or_default().into());
        }
        for command in config["runcmd"].as_array().into_iter().flatten() {
            let command = command
                .as_str()
                .ok_or_else(|| format!("runcmd entry {command} is not a string"))?;
            self.shell(command)?;
        }
        Ok(())
    }

    fn shell(&mut self, line: &str) -> Result<(), String> {
        for command in line.split("&&").map(str::trim) {
            self.command(command)?;
        }
        Ok(())
    }

    fn command(&mut self, command: &str) -> Result<(), String> {
        if let Some((file, then)) = conditional(command) {
            return match self.files.contains_key(file) {
                true => self.shell(then),
                false => Ok(()),
            };
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["kubeadm", "reset", ..] => {
                self.reset();
                Ok(())
            }
            ["kubeadm", "init", ..] => {
                self.preflight()?;
                self.endpoint_served()?;
                self.running = Some("control plane");
                Ok(())
            }
            ["kubeadm", "join", ..] => {
                self.preflight()?;
                self.running = Some("node");
                Ok(())
            }
            ["install", "-m", _, source, target] => {
                let content = self.files.get(*source).cloned().ok_or_else(|| {
                    format!("install: cannot stat '{source}': No such file or directory")
                })?;
                self.files.insert((*target).into(), content);
                Ok(())
            }
            ["sh", script] => {
                let installed = self.files.get(*script).and_then(|content| {
                    content
                        .lines()
                        .find_map(|l| l.strip_prefix("kubernetes_version="))
                        .map(String::from)
                });
                if installed.is_some() {
                    self.kubelet = installed;
                }
                Ok(())
            }
            ["echo", .., ">", target] => {
                self.files.insert((*target).into(), String::new());
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn preflight(&self) -> Result<(), String> {
        match self.running {
            Some(what) => Err(format!(
                "[preflight] Some fatal errors occurred: [ERROR Port-10250]: Port 10250 is in use \
                 (a {what} of an earlier bootstrap still runs here)"
            )),
            None => Ok(()),
        }
    }

    fn endpoint_served(&self) -> Result<(), String> {
        let manifest = self.files.get(KUBE_VIP_MANIFEST).ok_or_else(|| {
            format!("the control-plane endpoint never answered: no {KUBE_VIP_MANIFEST}")
        })?;
        let version = self
            .files
            .get(INIT_CONFIG)
            .and_then(|c| kubernetes_version(c));
        let needs_super_admin = version.is_some_and(|v| v >= KubernetesVersion::new(1, 29, 0));
        if needs_super_admin && !manifest.contains(SUPER_ADMIN_CONF) {
            return Err(format!(
                "the control-plane endpoint never answered: kube-vip has no rights with admin.conf \
                 during kubeadm init of {}; it needs {SUPER_ADMIN_CONF}",
                version.map(|v| v.to_string()).unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// `if [ -f FILE ]; then COMMAND; fi` as (FILE, COMMAND).
fn conditional(command: &str) -> Option<(&str, &str)> {
    let rest = command.strip_prefix("if [ -f ")?;
    let (file, rest) = rest.split_once(" ]; then ")?;
    let then = rest.strip_suffix("; fi")?;
    Some((file, then))
}

/// The `kubernetesVersion` a kubeadm configuration names.
fn kubernetes_version(kubeadm_config: &str) -> Option<KubernetesVersion> {
    kubeadm_config
        .lines()
        .find_map(|l| l.trim().strip_prefix("kubernetesVersion:"))
        .and_then(|v| v.trim().trim_matches('"').parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_config(version: &str, pre: &[&str], files: &[(&str, &str)]) -> String {
        let mut write_files: Vec<Value> = files
            .iter()
            .map(|(path, content)| serde_json::json!({"path": path, "content": content}))
            .collect();
        write_files.push(serde_json::json!({"path": INIT_CONFIG,
            "content": format!("kind: ClusterConfiguration\nkubernetesVersion: {version}\n")}));
        let mut runcmd: Vec<String> = pre.iter().map(|c| c.to_string()).collect();
        runcmd.push("kubeadm init --config /run/kubeadm/kubeadm.yaml && echo success > /run/cluster-api/bootstrap-success.complete".into());
        lcm_core::yaml::to_string(
            &serde_json::json!({"write_files": write_files, "runcmd": runcmd}),
        )
        .expect("YAML")
    }

    const ADMIN_VIP: (&str, &str) = (KUBE_VIP_MANIFEST, "path: /etc/kubernetes/admin.conf");

    #[test]
    fn a_second_init_fails_until_the_host_is_reset() {
        let mut host = Host::default();
        let config = init_config("v1.28.15", &[], &[ADMIN_VIP]);
        host.run(&config, "v1.28.15").expect("clean host");
        assert!(host.is_dirty());
        let error = host.run(&config, "v1.28.15").expect_err("dirty host");
        assert!(error.contains("Port 10250 is in use"), "{error}");
        host.reset();
        host.run(&config, "v1.28.15").expect("reset host");
    }

    #[test]
    fn a_reset_in_the_bootstrap_makes_a_dirty_host_clean_but_empties_the_manifests() {
        let mut host = Host::default();
        host.run(&init_config("v1.28.15", &[], &[ADMIN_VIP]), "v1.28.15")
            .expect("first");
        let written_before_reset =
            init_config("v1.28.15", &["kubeadm reset --force"], &[ADMIN_VIP]);
        let error = host
            .run(&written_before_reset, "v1.28.15")
            .expect_err("no kube-vip");
        assert!(
            error.contains("no /etc/kubernetes/manifests/kube-vip.yaml"),
            "{error}"
        );
        let staged = init_config(
            "v1.28.15",
            &[
                "kubeadm reset --force",
                "install -m 0644 /etc/kube-vip/kube-vip.yaml /etc/kubernetes/manifests/kube-vip.yaml",
            ],
            &[(
                "/etc/kube-vip/kube-vip.yaml",
                "path: /etc/kubernetes/admin.conf",
            )],
        );
        host.run(&staged, "v1.28.15")
            .expect("reset, then kube-vip installed");
    }

    #[test]
    fn from_1_29_init_needs_kube_vip_on_super_admin_conf() {
        let error = Host::default()
            .run(&init_config("v1.29.0", &[], &[ADMIN_VIP]), "v1.29.0")
            .expect_err("admin.conf");
        assert!(error.contains("super-admin.conf"), "{error}");
        let conditional = format!(
            "if [ -f {INIT_CONFIG} ]; then install -m 0644 /etc/kube-vip/init.yaml {KUBE_VIP_MANIFEST}; fi"
        );
        let config = init_config(
            "v1.33.5",
            &[&conditional],
            &[
                ADMIN_VIP,
                (
                    "/etc/kube-vip/init.yaml",
                    "path: /etc/kubernetes/super-admin.conf",
                ),
            ],
        );
        Host::default()
            .run(&config, "v1.33.5")
            .expect("super-admin.conf");
    }

    #[test]
    fn a_host_keeps_its_kubelet_until_a_package_script_installs_another() {
        let staged = (
            "/etc/kube-vip/kube-vip.yaml",
            "path: /etc/kubernetes/admin.conf",
        );
        let install =
            "install -m 0644 /etc/kube-vip/kube-vip.yaml /etc/kubernetes/manifests/kube-vip.yaml";
        let script = (
            "/etc/lcm/install.sh",
            "#!/bin/sh\nkubernetes_version=v1.28.15\n",
        );
        let mut host = Host::default();
        let config = |version: &str, pre: &[&str]| init_config(version, pre, &[staged, script]);
        host.run(
            &config("v1.28.14", &["kubeadm reset --force", install]),
            "v1.28.14",
        )
        .expect("prepared for v1.28.14");
        assert_eq!(host.kubelet_version(), Some("v1.28.14"));
        // Claimed again for v1.28.15: a reset uninstalls nothing.
        host.run(
            &config("v1.28.15", &["kubeadm reset --force", install]),
            "v1.28.15",
        )
        .expect("reset first");
        assert_eq!(host.kubelet_version(), Some("v1.28.14"));
        let upgraded = config(
            "v1.28.15",
            &["kubeadm reset --force", "sh /etc/lcm/install.sh", install],
        );
        host.run(&upgraded, "v1.28.15").expect("packages installed");
        assert_eq!(host.kubelet_version(), Some("v1.28.15"));
    }
}
