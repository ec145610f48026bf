//! The FOCOM operator: turns the SMO's FocomProvisioningRequests into ProvisioningRequests.

mod cache;
mod config;
mod context;
mod controller;
mod error;
mod kubeconfig;
mod o2ims;
mod ocloud;
mod ocloud_in_use;
mod reconcile;
mod render;
mod rest;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "FOCOM operator: FocomProvisioningRequest -> ProvisioningRequests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster).
    Run(Box<config::Config>),
    /// Print the ProvisioningRequests a FocomProvisioningRequest becomes, as YAML.
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
