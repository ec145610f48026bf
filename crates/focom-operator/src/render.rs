//! `focom-operator render`: the ProvisioningRequests of a FocomProvisioningRequest, without a cluster.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use lcm_core::crd::FocomProvisioningRequest;
use lcm_core::focom::{self, Problem};
use lcm_core::inventory::Inventory;
use lcm_core::yaml;

#[derive(clap::Args)]
pub struct Args {
    /// FocomProvisioningRequest YAML file.
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    /// Inventory file (input.json).
    #[arg(long, default_value = "input.json")]
    inventory: PathBuf,
}

pub fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let request: FocomProvisioningRequest = yaml::from_str(&text)
        .with_context(|| format!("{} is not a FocomProvisioningRequest", args.file.display()))?;
    let inventory_text = std::fs::read_to_string(&args.inventory)
        .with_context(|| format!("reading {}", args.inventory.display()))?;
    let inventory = Inventory::parse(&args.inventory.display().to_string(), &inventory_text)?;
    let fail = |problems: Vec<Problem>| -> anyhow::Error {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        anyhow::anyhow!(
            "{}: cannot be provisioned:\n{}",
            args.file.display(),
            lines.join("\n")
        )
    };
    let selected = focom::select(&request, Some(&inventory)).map_err(fail)?;
    let problems = focom::feasibility(&selected, &[], &[], &[]).conflicts;
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    if selected.is_empty() {
        bail!("{}: selects no cluster", args.file.display());
    }
    let requests: Vec<_> = selected
        .iter()
        .map(|cluster| focom::provisioning_request(&request, cluster))
        .collect();
    print!("{}", yaml::to_multi_string(&requests)?);
    Ok(())
}
