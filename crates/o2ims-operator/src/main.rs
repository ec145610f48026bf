//! The O2IMS operator: turns ProvisioningRequests into BYOH Cluster API clusters.
//!
//! Its modules in layers, each using only the layers below it (`layers_hold` checks it):
//!
//! 1. `config`, `error`, `index` (the watched stores), `report` (a pass's conclusion as the
//!    request's status, pure), `render` (the `render` command);
//! 2. `snapshot` (one read of the index for a request), `hostprep` (host-preparation objects,
//!    pure), `metrics`, and the pipeline's `provision::step` (what a step gives) and
//!    `provision::host_access` (how hosts are reached, pure);
//! 3. `conflicts` (who comes first for a host, pure), `context` (what every reconcile shares);
//! 4. the edges: `status` (the status write), `children` (the owned objects' writes), `ledger`
//!    (the HostClaims), and `provision::validate` (pure);
//! 5. `handoff` and the I/O steps `provision::{hold, prepare, apply, conclude}`;
//! 6. `provision::observe` (the cluster's report, pure);
//! 7. `provision` (the steps in order), `cleanup` (ordered deletion);
//! 8. `reconcile` (finalizer, then provision or clean up);
//! 9. `controller` (the watches feeding the index and waking reconcile).

mod children;
mod cleanup;
mod config;
mod conflicts;
mod context;
mod controller;
mod error;
mod handoff;
mod hostprep;
mod index;
mod ledger;
mod metrics;
mod provision;
mod reconcile;
mod render;
mod report;
mod snapshot;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "O2IMS operator: ProvisioningRequest -> BYOH Cluster API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster).
    Run(Box<config::Config>),
    /// Print the Cluster API objects a ProvisioningRequest becomes, as YAML.
    Render(render::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    operator_kit::runtime::exit_code(match cli.command {
        Command::Run(config) => controller::run(*config).await,
        Command::Render(args) => render::run(&args),
    })
}

#[cfg(test)]
mod tests {
    /// The layers of the crate's doc, lowest first.
    const LAYERS: &[&[&str]] = &[
        &["config", "error", "index", "report", "render"],
        &[
            "snapshot",
            "hostprep",
            "metrics",
            "provision::step",
            "provision::host_access",
        ],
        &["conflicts", "context"],
        &["status", "children", "ledger", "provision::validate"],
        &[
            "handoff",
            "provision::hold",
            "provision::prepare",
            "provision::apply",
            "provision::conclude",
        ],
        &["provision::observe"],
        &["provision", "cleanup"],
        &["reconcile"],
        &["controller"],
    ];

    #[test]
    fn layers_hold() -> anyhow::Result<()> {
        testcluster::check_layers(env!("CARGO_MANIFEST_DIR").as_ref(), LAYERS)
    }
}
