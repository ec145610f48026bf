//! The O2ims REST server: a thin, authenticated view over the O-Cloud's custom resources.

mod alarms;
mod auth;
mod callback;
mod config;
mod inventory;
mod lists;
mod marker;
mod notifier;
mod problem;
mod provisioning;
mod server;
mod shared;
mod stores;
mod subscriptions;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "O2ims REST interface over the O-Cloud's custom resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API for the cluster of the current kubeconfig (or in-cluster).
    Run(Box<config::Config>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    operator_kit::runtime::exit_code(match cli.command {
        Command::Run(config) => server::run(*config).await,
    })
}
