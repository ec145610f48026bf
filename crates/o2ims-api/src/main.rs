//! The O2ims REST server: a thin, authenticated view over the O-Cloud's custom resources.
//!
//! Its modules in layers, each using only the layers below it (`layers_hold` checks it):
//!
//! 1. `config`, `problem` (error answers), `stores` (the watched custom resources);
//! 2. `marker` (sealed paging markers), `callback` (the SMOs' callback URLs, checked);
//! 3. `shared` (what every handler shares);
//! 4. `lists` (filtering, selecting and paging every list), `auth`;
//! 5. the handlers of each API: `inventory`, `provisioning`, `alarms`;
//! 6. `notifier` (notifying subscribers of changes);
//! 7. `subscriptions` (their handlers);
//! 8. `server` (the routes, TLS, and the notifier started beside them).

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

#[cfg(test)]
mod tests {
    /// The layers of the crate's doc, lowest first.
    const LAYERS: &[&[&str]] = &[
        &["config", "problem", "stores"],
        &["marker", "callback"],
        &["shared"],
        &["lists", "auth"],
        &["inventory", "provisioning", "alarms"],
        &["notifier"],
        &["subscriptions"],
        &["server"],
    ];

    #[test]
    fn layers_hold() -> anyhow::Result<()> {
        testcluster::check_layers(env!("CARGO_MANIFEST_DIR").as_ref(), LAYERS)
    }
}
