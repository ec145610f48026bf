//! The FOCOM operator: turns the SMO's FocomProvisioningRequests into ProvisioningRequests.
//!
//! Its modules in layers, each using only the layers below it (`layers_hold` checks it):
//!
//! 1. `config`, `error`, `kubeconfig` (a remote O-Cloud's kubeconfig, checked), `render` (the
//!    `render` command);
//! 2. `rest` (an O-Cloud's O2ims REST API), `validation` (a request's spec against the
//!    inventory and its template, reused while they are unchanged);
//! 3. `o2ims` (writing ProvisioningRequests, over Kubernetes or REST);
//! 4. `cache` (an O-Cloud's ProvisioningRequests and host ledger, watched or polled);
//! 5. `context` (what every reconcile shares);
//! 6. `ocloud` (reaching a request's O-Cloud);
//! 7. `ocloud_in_use` (an OCloud's finalizer), `status` (the request's status and its write);
//! 8. `reconcile` (reach, read the inventory, select, check feasibility, write, report);
//! 9. `controller` (the watches and the caches' triggers waking reconcile).

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
mod validation;

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

#[cfg(test)]
mod tests {
    /// The layers of the crate's doc, lowest first.
    const LAYERS: &[&[&str]] = &[
        &["config", "error", "kubeconfig", "render"],
        &["rest", "validation"],
        &["o2ims"],
        &["cache"],
        &["context"],
        &["ocloud"],
        &["ocloud_in_use", "status"],
        &["reconcile"],
        &["controller"],
    ];

    #[test]
    fn layers_hold() -> anyhow::Result<()> {
        testcluster::check_layers(env!("CARGO_MANIFEST_DIR").as_ref(), LAYERS)
    }
}
