//! The O2IMS operator: turns ProvisioningRequests into BYOH Cluster API clusters.

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
mod observe;
mod preparation;
mod reconcile;
mod render;
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
