//! What running bootstrap data does to a simulated host, as BYOH's agent runs it
//! (agent/cloudinit/cloudinit.go: every `write_files` entry, then each `runcmd` entry in a
//! shell, stopping at the first failure) and as kubeadm then behaves.
//!
//! A host remembers its files and whether Kubernetes runs on it, and for which cluster.
//! Modelled commands:
//! - `kubeadm reset`: stops everything and deletes the static pod manifests, the PKI, the
//!   kubeconfigs and the kubelet's and etcd's data; the node leaves its workload cluster;
//! - `kubeadm init` / `kubeadm join`: their preflight fails while Kubernetes runs (ports 10250,
//!   6443 and 2379 in use); then the workload cluster is created or joined as the configuration
//!   they read says (see [`crate::kubeadm`]);
//! - `install [-D] -m MODE SOURCE TARGET`, `if [ -f FILE ]; then COMMAND; fi`, `echo ... > FILE`
//!   and `&&`;
//! - `sh FILE`: a FILE with a line `kubernetes_version=vX.Y.Z` installs kubelet and kubeadm at
//!   that version, as the project's package script does.
//!
//! Any other command succeeds and changes nothing. A host no script installed packages on runs
//! the version it was prepared for (by the playbook, for the first machine that claims it);
//! `kubeadm reset` uninstalls nothing, so the kubelet version stays until a script changes it.
//!
//! `kubeadm init` also needs the control-plane endpoint served while it runs: a kube-vip
//! manifest in /etc/kubernetes/manifests, using super-admin.conf from Kubernetes 1.29 (with
//! admin.conf kube-vip gets no lease until init has bound its rights: kube-vip issue 684).

use std::collections::BTreeMap;

use serde_json::Value;

use lcm_core::template::KubernetesVersion;

use crate::kubeadm::{self, HostFacts, INIT_CONFIG};
use crate::workload::{ClusterKey, WorkloadClusters};

const KUBE_VIP_MANIFEST: &str = "/etc/kubernetes/manifests/kube-vip.yaml";
const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";
/// What `kubeadm reset` deletes (cmd/kubeadm/app/cmd/phases/reset/cleanupnode.go, and the etcd
/// data of removeetcdmember.go): the contents of these directories, and these files.
const RESET_PATHS: [&str; 10] = [
    "/etc/kubernetes/manifests/",
    "/etc/kubernetes/pki/",
    "/var/lib/kubelet/",
    "/var/lib/etcd/",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/super-admin.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/etc/kubernetes/controller-manager.conf",
    "/etc/kubernetes/scheduler.conf",
];
/// Emptied by the agent before every bootstrap (`cleank8sdirectories` in
/// agent/reconciler/host_reconciler.go).
pub const AGENT_CLEANED_DIRECTORIES: [&str; 2] = ["/run/kubeadm/", "/etc/cni/net.d/"];

/// The state of one simulated host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    files: BTreeMap<String, String>,
    /// What kubeadm started here and still runs, if anything.
    running: Option<Running>,
    /// The version of the installed kubelet and kubeadm packages.
    kubelet: Option<String>,
}

/// A kubelet (and on control planes the static pods) kubeadm started for a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Running {
    cluster: ClusterKey,
    /// The Node's name.
    node: String,
    control_plane: bool,
}

/// A bootstrap run on a host: what the host knows besides the cloud-config.
pub struct Bootstrap<'a> {
    /// The host's name: the name of its Node.
    pub node: &'a str,
    pub address: Option<&'a str>,
    /// The cluster of the machine that claimed the host.
    pub cluster: &'a ClusterKey,
    /// The Kubernetes version host preparation installed (for the first machine claiming it).
    pub prepared_for: &'a str,
    /// The cluster's owner brings its CNI.
    pub cni_preinstalled: bool,
}

impl Host {
    /// Whether kubelet and static pods left by an earlier bootstrap still run.
    #[cfg(test)]
    fn is_dirty(&self) -> bool {
        self.running.is_some()
    }

    /// `kubeadm reset --force`: the node leaves the cluster it ran for.
    pub async fn reset(&mut self, clusters: &impl WorkloadClusters) -> Result<(), String> {
        if let Some(running) = &self.running {
            clusters.reset(&running.cluster, &running.node).await?;
        }
        self.running = None;
        self.remove_under(&RESET_PATHS);
        Ok(())
    }

    pub fn remove_under(&mut self, directories: &[&str]) {
        self.files
            .retain(|path, _| !directories.iter().any(|d| path.starts_with(d)));
    }

    /// The kubelet version the host's Node reports.
    #[cfg(test)]
    fn kubelet_version(&self) -> Option<&str> {
        self.kubelet.as_deref()
    }

    /// Runs a cloud-config: its files, then its commands. The error is what the failing command
    /// printed.
    pub async fn run(
        &mut self,
        cloud_config: &str,
        on: &Bootstrap<'_>,
        clusters: &impl WorkloadClusters,
    ) -> Result<(), String> {
        let config: Value = lcm_core::yaml::from_str(cloud_config)
            .map_err(|e| format!("cloud-config is not valid YAML: {e}"))?;
        self.kubelet
            .get_or_insert_with(|| on.prepared_for.to_string());
        for file in config["write_files"].as_array().into_iter().flatten() {
            let (Some(path), content) = (file["path"].as_str(), &file["content"]) else {
                return Err("a write_files entry has no path".into());
            };
            self.files
                .insert(path.into(), content.as_str().unwrap_or_default().into());
        }
        for line in config["runcmd"].as_array().into_iter().flatten() {
            let line = line
                .as_str()
                .ok_or_else(|| format!("runcmd entry {line} is not a string"))?;
            for command in line.split("&&").map(str::trim) {
                // `if [ -f FILE ]; then COMMAND; fi`
                let command = match conditional(command) {
                    Some((file, _)) if !self.files.contains_key(file) => continue,
                    Some((_, then)) => then,
                    None => command,
                };
                self.command(command, on, clusters).await?;
            }
        }
        Ok(())
    }

    async fn command(
        &mut self,
        command: &str,
        on: &Bootstrap<'_>,
        clusters: &impl WorkloadClusters,
    ) -> Result<(), String> {
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["kubeadm", "reset", ..] => self.reset(clusters).await,
            ["kubeadm", verb @ ("init" | "join"), rest @ ..] => {
                self.preflight()?;
                let init = *verb == "init";
                if init {
                    self.endpoint_served()?;
                }
                let config = config_argument(rest)
                    .and_then(|path| self.files.get(path))
                    .ok_or_else(|| format!("kubeadm {verb}: no configuration file given"))?;
                let facts = HostFacts {
                    kubelet_version: self.kubelet.as_deref().unwrap_or(on.prepared_for),
                    node_ip: on.address,
                    cni_preinstalled: on.cni_preinstalled,
                    files: &self.files,
                };
                let request = match init {
                    true => kubeadm::init(config, &facts)?,
                    false => kubeadm::join(config, &facts)?,
                };
                clusters.start(on.cluster, on.node, &request).await?;
                self.running = Some(Running {
                    cluster: on.cluster.clone(),
                    node: on.node.into(),
                    control_plane: request.control_plane,
                });
                Ok(())
            }
            ["install", "-m", _, source, target] | ["install", "-D", "-m", _, source, target] => {
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
        match &self.running {
            Some(running) => Err(format!(
                "[preflight] Some fatal errors occurred: [ERROR Port-10250]: Port 10250 is in use \
                 (a {} of cluster {} still runs here from an earlier bootstrap)",
                if running.control_plane {
                    "control plane"
                } else {
                    "node"
                },
                running.cluster
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

/// The file after `--config` among kubeadm's arguments.
fn config_argument<'a>(arguments: &[&'a str]) -> Option<&'a str> {
    let at = arguments.iter().position(|a| *a == "--config")?;
    arguments.get(at + 1).copied()
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
    use std::sync::Mutex;

    use super::*;
    use crate::workload::NodeRequest;

    /// Workload clusters that record what kubeadm told them.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Recorded {
        fn calls(&self) -> Vec<String> {
            self.0.lock().expect("lock").clone()
        }
    }

    impl WorkloadClusters for Recorded {
        async fn start(
            &self,
            cluster: &ClusterKey,
            node: &str,
            request: &NodeRequest,
        ) -> Result<(), String> {
            let call = format!(
                "start {cluster} {node} init={} kubelet={}",
                request.init, request.kubelet_version
            );
            self.0.lock().expect("lock").push(call);
            Ok(())
        }

        async fn reset(&self, cluster: &ClusterKey, node: &str) -> Result<(), String> {
            self.0
                .lock()
                .expect("lock")
                .push(format!("reset {cluster} {node}"));
            Ok(())
        }
    }

    fn cluster() -> ClusterKey {
        ClusterKey {
            namespace: "ns".into(),
            name: "demo".into(),
        }
    }

    /// Runs `config` on `host`, node `h1` of cluster ns/demo, prepared for `prepared_for`.
    async fn run(
        host: &mut Host,
        config: &str,
        prepared_for: &str,
        clusters: &Recorded,
    ) -> Result<(), String> {
        let on = Bootstrap {
            node: "h1",
            address: Some("10.0.0.1"),
            cluster: &cluster(),
            prepared_for,
            cni_preinstalled: false,
        };
        host.run(config, &on, clusters).await
    }

    /// A control-plane cloud-config as Cluster API writes it: the cluster's authorities, then
    /// `files`; `pre`, then `kubeadm init`.
    fn init_config(version: &str, pre: &[&str], files: &[(&str, &str)]) -> String {
        let shared = [
            "ca.crt",
            "ca.key",
            "etcd/ca.crt",
            "etcd/ca.key",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "sa.pub",
            "sa.key",
        ];
        let authorities =
            shared.map(|file| (format!("/etc/kubernetes/pki/{file}"), "PEM".to_string()));
        let mut write_files: Vec<Value> = authorities
            .iter()
            .map(|(path, content)| (path.as_str(), content.as_str()))
            .chain(files.iter().copied())
            .map(|(path, content)| serde_json::json!({"path": path, "content": content}))
            .collect();
        let kubeadm = format!(
            "---\nkind: ClusterConfiguration\nkubernetesVersion: {version}\n\
             controlPlaneEndpoint: 172.20.10.100:6443\n---\nkind: InitConfiguration\n"
        );
        write_files.push(serde_json::json!({"path": INIT_CONFIG, "content": kubeadm}));
        let mut runcmd: Vec<String> = pre.iter().map(|c| c.to_string()).collect();
        runcmd.push("kubeadm init --config /run/kubeadm/kubeadm.yaml  && echo success > /run/cluster-api/bootstrap-success.complete".into());
        lcm_core::yaml::to_string(
            &serde_json::json!({"write_files": write_files, "runcmd": runcmd}),
        )
        .expect("YAML")
    }

    const ADMIN_VIP: (&str, &str) = (KUBE_VIP_MANIFEST, "path: /etc/kubernetes/admin.conf");

    #[tokio::test]
    async fn a_second_init_fails_until_the_host_is_reset() {
        let clusters = Recorded::default();
        let mut host = Host::default();
        let config = init_config("v1.28.15", &[], &[ADMIN_VIP]);
        run(&mut host, &config, "v1.28.15", &clusters)
            .await
            .expect("clean host");
        assert!(host.is_dirty());
        let error = run(&mut host, &config, "v1.28.15", &clusters)
            .await
            .expect_err("dirty host");
        assert!(error.contains("Port 10250 is in use"), "{error}");
        host.reset(&clusters).await.expect("reset");
        run(&mut host, &config, "v1.28.15", &clusters)
            .await
            .expect("reset host");
        assert_eq!(
            clusters.calls(),
            [
                "start ns/demo h1 init=true kubelet=v1.28.15",
                "reset ns/demo h1",
                "start ns/demo h1 init=true kubelet=v1.28.15",
            ]
        );
    }

    /// The generated control-plane reset, then `then`.
    fn after_reset<'a>(reset: &'a [String], then: &[&'a str]) -> Vec<&'a str> {
        reset
            .iter()
            .map(String::as_str)
            .chain(then.iter().copied())
            .collect()
    }

    #[tokio::test]
    async fn a_plain_reset_after_the_bootstrap_wrote_the_authorities_loses_them() {
        let clusters = Recorded::default();
        let staged = [(
            "/etc/kube-vip/kube-vip.yaml",
            "path: /etc/kubernetes/admin.conf",
        )];
        let install =
            "install -m 0644 /etc/kube-vip/kube-vip.yaml /etc/kubernetes/manifests/kube-vip.yaml";
        let plain = init_config("v1.28.15", &["kubeadm reset --force", install], &staged);
        let error = run(&mut Host::default(), &plain, "v1.28.15", &clusters)
            .await
            .expect_err("the authorities are gone");
        assert!(
            error.contains("/etc/kubernetes/pki/ca.crt is missing"),
            "{error}"
        );
        let reset = lcm_core::capi::reset::control_plane();
        let keeping = init_config("v1.28.15", &after_reset(&reset, &[install]), &staged);
        run(&mut Host::default(), &keeping, "v1.28.15", &clusters)
            .await
            .expect("the generated reset keeps them");
    }

    #[tokio::test]
    async fn a_reset_in_the_bootstrap_makes_a_dirty_host_clean_but_empties_the_manifests() {
        let clusters = Recorded::default();
        let mut host = Host::default();
        run(
            &mut host,
            &init_config("v1.28.15", &[], &[ADMIN_VIP]),
            "v1.28.15",
            &clusters,
        )
        .await
        .expect("first");
        let reset = lcm_core::capi::reset::control_plane();
        let written_before_reset = init_config("v1.28.15", &after_reset(&reset, &[]), &[ADMIN_VIP]);
        let error = run(&mut host, &written_before_reset, "v1.28.15", &clusters)
            .await
            .expect_err("no kube-vip");
        assert!(
            error.contains("no /etc/kubernetes/manifests/kube-vip.yaml"),
            "{error}"
        );
        let staged = init_config(
            "v1.28.15",
            &after_reset(
                &reset,
                &[
                    "install -m 0644 /etc/kube-vip/kube-vip.yaml /etc/kubernetes/manifests/kube-vip.yaml",
                ],
            ),
            &[(
                "/etc/kube-vip/kube-vip.yaml",
                "path: /etc/kubernetes/admin.conf",
            )],
        );
        run(&mut host, &staged, "v1.28.15", &clusters)
            .await
            .expect("reset, then kube-vip installed");
    }

    #[tokio::test]
    async fn from_1_29_init_needs_kube_vip_on_super_admin_conf() {
        let clusters = Recorded::default();
        let error = run(
            &mut Host::default(),
            &init_config("v1.29.0", &[], &[ADMIN_VIP]),
            "v1.29.0",
            &clusters,
        )
        .await
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
        run(&mut Host::default(), &config, "v1.33.5", &clusters)
            .await
            .expect("super-admin.conf");
    }

    #[tokio::test]
    async fn a_host_keeps_its_kubelet_until_a_package_script_installs_another() {
        let clusters = Recorded::default();
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
        let reset = lcm_core::capi::reset::control_plane();
        let config = |version: &str, then: &[&str]| {
            init_config(version, &after_reset(&reset, then), &[staged, script])
        };
        run(
            &mut host,
            &config("v1.28.14", &[install]),
            "v1.28.14",
            &clusters,
        )
        .await
        .expect("prepared for v1.28.14");
        assert_eq!(host.kubelet_version(), Some("v1.28.14"));
        // Claimed again for v1.28.15: a reset uninstalls nothing.
        run(
            &mut host,
            &config("v1.28.15", &[install]),
            "v1.28.15",
            &clusters,
        )
        .await
        .expect("reset first");
        assert_eq!(host.kubelet_version(), Some("v1.28.14"));
        let upgraded = config("v1.28.15", &["sh /etc/lcm/install.sh", install]);
        run(&mut host, &upgraded, "v1.28.15", &clusters)
            .await
            .expect("packages installed");
        assert_eq!(host.kubelet_version(), Some("v1.28.15"));
        assert_eq!(
            clusters.calls().last().map(String::as_str),
            Some("start ns/demo h1 init=true kubelet=v1.28.15"),
            "kubeadm runs with the installed kubelet"
        );
    }
}
