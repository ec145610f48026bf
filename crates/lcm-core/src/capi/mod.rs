//! Cluster API and BYOH: the objects a ProvisioningRequest becomes, and how
//! their status is read back.

mod generate;
mod kube_vip;
pub mod observe;
mod packages;
pub mod read;
pub mod reset;

pub(crate) use generate::object_metadata;
pub use generate::{
    Generated, MANAGED_BY, applied_parameters, drain_within, generate, hold_worker_version,
    keep_control_plane_bootstrap, namespace_object,
};

use kube::core::{ApiResource, GroupVersionKind};

pub const CLUSTER_API: &str = "cluster.x-k8s.io/v1beta1";
pub const CONTROL_PLANE_API: &str = "controlplane.cluster.x-k8s.io/v1beta1";
pub const BOOTSTRAP_API: &str = "bootstrap.cluster.x-k8s.io/v1beta1";
pub const INFRASTRUCTURE_API: &str = "infrastructure.cluster.x-k8s.io/v1beta1";
pub const ADDONS_API: &str = "addons.cluster.x-k8s.io/v1beta1";

/// Label Cluster API puts on objects of a cluster.
pub const CAPI_CLUSTER_NAME_LABEL: &str = "cluster.x-k8s.io/cluster-name";

/// Annotation on a host-preparation Job listing the hosts it prepares.
pub const HOSTS_ANNOTATION: &str = "o2ims.provisioning.oran.org/hosts";

/// The hosts a host-preparation Job prepares.
pub fn prepared_hosts(job: &serde_json::Value) -> Vec<&str> {
    job["metadata"]["annotations"][HOSTS_ANNOTATION]
        .as_str()
        .map(|h| h.split(',').collect())
        .unwrap_or_default()
}
/// Label Cluster API puts on control-plane Machines (and their infrastructure machines).
pub const CONTROL_PLANE_LABEL: &str = "cluster.x-k8s.io/control-plane";
/// Annotation that makes a MachineSet delete that Machine first on scale-in.
pub const DELETE_MACHINE_ANNOTATION: &str = "cluster.x-k8s.io/delete-machine";

/// The Cluster API kinds the operators read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cluster,
    MachineDeployment,
    Machine,
    KubeadmControlPlane,
    KubeadmConfigTemplate,
    KubeadmConfig,
    ByoCluster,
    ByoMachineTemplate,
    ByoMachine,
    ByoHost,
    BootstrapKubeconfig,
    ClusterResourceSet,
}

impl Kind {
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Cluster | Self::MachineDeployment | Self::Machine => CLUSTER_API,
            Self::KubeadmControlPlane => CONTROL_PLANE_API,
            Self::KubeadmConfigTemplate | Self::KubeadmConfig => BOOTSTRAP_API,
            Self::ByoCluster
            | Self::ByoMachineTemplate
            | Self::ByoMachine
            | Self::ByoHost
            | Self::BootstrapKubeconfig => INFRASTRUCTURE_API,
            Self::ClusterResourceSet => ADDONS_API,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cluster => "Cluster",
            Self::MachineDeployment => "MachineDeployment",
            Self::Machine => "Machine",
            Self::KubeadmControlPlane => "KubeadmControlPlane",
            Self::KubeadmConfigTemplate => "KubeadmConfigTemplate",
            Self::KubeadmConfig => "KubeadmConfig",
            Self::ByoCluster => "ByoCluster",
            Self::ByoMachineTemplate => "ByoMachineTemplate",
            Self::ByoMachine => "ByoMachine",
            Self::ByoHost => "ByoHost",
            Self::BootstrapKubeconfig => "BootstrapKubeconfig",
            Self::ClusterResourceSet => "ClusterResourceSet",
        }
    }

    /// The dynamic API resource (plural = lower-case kind + "s", true for every kind here).
    pub fn api_resource(self) -> ApiResource {
        let (group, version) = self
            .api_version()
            .split_once('/')
            .unwrap_or(("", self.api_version()));
        let gvk = GroupVersionKind::gvk(group, version, self.name());
        ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", self.name().to_lowercase()))
    }
}
