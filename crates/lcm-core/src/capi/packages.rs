//! The Kubernetes packages a bootstrap installs before kubeadm runs, so that a node joins (or
//! rolls to) the version its machine asks for: host preparation installs the version a cluster
//! was created with, and BYOH run with `--skip-installation` installs nothing, so without this
//! an upgrade would replace machines with nodes still running the old kubelet.

use serde_json::{Value, json};

use crate::template::KubernetesVersion;

/// Where the script is written, outside the directories `kubeadm reset` empties.
pub const SCRIPT: &str = "/etc/lcm/install-kubernetes.sh";

/// The command the bootstrap runs.
pub fn command() -> String {
    format!("sh {SCRIPT}")
}

/// The script installing kubelet, kubeadm and kubectl at `version` from pkgs.k8s.io (the
/// repository of its minor, as the project's playbook uses), held at that version; it does
/// nothing when both already are. `version` is validated (`vMAJOR.MINOR.PATCH`): only its
/// numbers reach the script. The BYOH agent renders written files as Go templates, so the
/// script has no `{{`.
pub fn script_file(version: &str) -> Value {
    let version: KubernetesVersion = version.parse().unwrap_or(KubernetesVersion::new(0, 0, 0));
    let minor = format!("v{}.{}", version.major, version.minor);
    let plain = format!("{}.{}.{}", version.major, version.minor, version.patch);
    let content = format!(
        r#"#!/bin/sh
# Kubernetes packages of this node's version (written by the O2IMS operator).
set -eu
kubernetes_version={version}
if [ "$(kubeadm version -o short 2>/dev/null)" = "$kubernetes_version" ] &&
  [ "$(kubelet --version 2>/dev/null)" = "Kubernetes $kubernetes_version" ]; then
  exit 0
fi
repository=https://pkgs.k8s.io/core:/stable:/{minor}/deb/
key=/etc/apt/keyrings/kubernetes-{minor}-apt-keyring.gpg
mkdir -p /etc/apt/keyrings
curl -fsSL "${{repository}}Release.key" | gpg --dearmor --yes -o "$key"
echo "deb [signed-by=$key] $repository /" > /etc/apt/sources.list.d/kubernetes.list
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-change-held-packages --allow-downgrades \
  "kubelet={plain}-*" "kubeadm={plain}-*" "kubectl={plain}-*"
apt-mark hold kubelet kubeadm kubectl
"#
    );
    json!({"path": SCRIPT, "owner": "root:root", "permissions": "0755", "content": content})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_the_exact_version_from_its_minors_repository() {
        let file = script_file("v1.33.5");
        let content = file["content"].as_str().expect("content");
        assert!(
            content.contains("kubernetes_version=v1.33.5\n"),
            "{content}"
        );
        assert!(
            content.contains("pkgs.k8s.io/core:/stable:/v1.33/deb/"),
            "{content}"
        );
        assert!(content.contains("\"kubeadm=1.33.5-*\""), "{content}");
        assert!(
            !content.contains("{{"),
            "the agent renders files as templates"
        );
    }
}
