//! `byoh-sim`: plays bare-metal hosts with their BYOH agents and host-preparation Jobs against
//! the cluster of the current kubeconfig, where the real Cluster API and BYOH managers run, and
//! the workload clusters of `tools/workload-clusters`. A simulator, for laptops and CI only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use byoh_sim::{Faults, SimConfig, SimHost, parse_duration};
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use lcm_core::inventory::Inventory;
use operator_kit::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    version,
    about = "Simulates bare-metal hosts (BYOH agents) and host-preparation Jobs, for laptops and CI"
)]
struct Cli {
    /// Kubeconfig of the management cluster's administrator, who impersonates each host's
    /// agent (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The control API of the workload clusters (`workloadClusters.controlURL` of
    /// `testcluster up --managers`' managers.json), which the hosts' kubeadm reaches.
    #[arg(long)]
    workload_clusters: String,
    /// The inventory (input.json) whose hosts the simulated world has.
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// Namespace agents register ByoHosts in (a Job's inventory may name another).
    #[arg(long, default_value = lcm_core::ansible::DEFAULT_BYOH_NAMESPACE)]
    byoh_namespace: String,
    /// Register every inventory host at start instead of after a host-preparation Job.
    #[arg(long)]
    register_inventory_hosts: bool,
    /// Inventory hosts (ids or hostnames) registered at start although no Job prepared them.
    #[arg(long, value_delimiter = ',')]
    preregistered: Vec<String>,
    /// Run the host-preparation Jobs of this namespace only (default: all).
    #[arg(long)]
    namespace: Option<String>,
    /// Run only the host-preparation Jobs this label selector matches (default: every Job
    /// labelled with a ProvisioningRequest).
    #[arg(long)]
    job_selector: Option<String>,
    /// How long a host-preparation Job runs, e.g. 500ms, 2s, 1m [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    job_delay: Option<Duration>,
    /// How long a claimed host takes to bootstrap its node [default: 3s].
    #[arg(long, value_parser = parse_duration)]
    bootstrap_delay: Option<Duration>,
    /// Fault: hosts whose agent never registers.
    #[arg(long, value_delimiter = ',')]
    never_register: Vec<String>,
    /// Fault: every Job preparing one of these hosts fails.
    #[arg(long, value_delimiter = ',')]
    fail_job_for: Vec<String>,
    /// Fault: bootstrapping the node fails on these hosts (CloudInitExecutionFailed).
    #[arg(long, value_delimiter = ',')]
    fail_bootstrap: Vec<String>,
    /// Fault: a PodDisruptionBudget no eviction satisfies protects a pod on these hosts'
    /// nodes, so draining them ends only at the machine's nodeDrainTimeout.
    #[arg(long, value_delimiter = ',')]
    pdb_blocks_drain: Vec<String>,
    /// Every cluster's owner brings its CNI: nodes are Ready without a ClusterResourceSet
    /// applying one; otherwise they stay NotReady until one does.
    #[arg(long)]
    cni_by_cluster_owner: bool,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

impl Cli {
    fn config(self) -> anyhow::Result<SimConfig> {
        let hosts = match &self.inventory {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                SimHost::from_inventory(&Inventory::parse(&path.display().to_string(), &text)?)
            }
            None if self.register_inventory_hosts || !self.preregistered.is_empty() => {
                anyhow::bail!("--register-inventory-hosts and --preregistered need --inventory")
            }
            None => Vec::new(),
        };
        let defaults = SimConfig::default();
        let config = SimConfig {
            hosts,
            byoh_namespace: self.byoh_namespace,
            register_inventory_hosts: self.register_inventory_hosts,
            cni_by_cluster_owner: self.cni_by_cluster_owner,
            preregistered: self.preregistered.into_iter().collect(),
            namespace: self.namespace,
            job_selector: self.job_selector,
            job_delay: self.job_delay.unwrap_or(defaults.job_delay),
            bootstrap_delay: self.bootstrap_delay.unwrap_or(defaults.bootstrap_delay),
            faults: Faults {
                never_register: self.never_register.into_iter().collect(),
                fail_job_for: self.fail_job_for.into_iter().collect(),
                fail_bootstrap: self.fail_bootstrap.into_iter().collect(),
                pdb_blocks_drain: self.pdb_blocks_drain.into_iter().collect(),
            },
        };
        let unknown: Vec<&String> = config
            .preregistered
            .iter()
            .filter(|name| {
                !config
                    .hosts
                    .iter()
                    .any(|h| h.id == **name || h.hostname == **name)
            })
            .collect();
        if !unknown.is_empty() {
            anyhow::bail!("--preregistered names hosts the inventory does not have: {unknown:?}");
        }
        Ok(config)
    }
}

async fn admin_config(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Config> {
    Ok(match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    })
}

async fn shutdown() {
    #[cfg(unix)]
    if let Ok(mut terminate) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn main_result(cli: Cli) -> anyhow::Result<()> {
    let admin = admin_config(cli.kubeconfig.as_ref()).await?;
    let workload_clusters = cli.workload_clusters.clone();
    let config = cli.config()?;
    tokio::select! {
        result = byoh_sim::run(admin, &workload_clusters, config) => result,
        () = shutdown() => {
            tracing::info!("byoh-sim stopping");
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match main_result(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
