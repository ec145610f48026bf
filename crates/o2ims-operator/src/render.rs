//! `o2ims-operator render`: the CAPI objects of a ProvisioningRequest, without a cluster.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kube::ResourceExt;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::{capi, template, yaml};

#[derive(clap::Args)]
pub struct Args {
    /// ProvisioningRequest YAML file.
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    /// Calico manifest to embed in the CNI ConfigMap (otherwise only the ClusterResourceSet is printed).
    #[arg(long)]
    calico_manifest: Option<PathBuf>,
    /// Accept `templateParameters.hostAccess`, as the operator does with this flag.
    #[arg(long)]
    allow_request_host_access: bool,
    /// `nodeDrainTimeout` of control plane and workers, as the operator's flag.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    node_drain_timeout_seconds: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let request: ProvisioningRequest = yaml::from_str(&text)
        .with_context(|| format!("{} is not a ProvisioningRequest", args.file.display()))?;
    let spec = &request.spec;
    let params = lcm_core::template::refuse_request_host_access(
        args.allow_request_host_access,
        "--host-inventory-configmap",
        None,
        &spec.template_parameters,
        template::validate_request(
            &spec.template_name,
            &spec.template_version,
            &spec.template_parameters,
        ),
    )
    .map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!(
            "{}: invalid ProvisioningRequest:\n{}",
            args.file.display(),
            lines.join("\n")
        )
    })?;
    let manifest = match &args.calico_manifest {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let mut generated = capi::generate(&request.name_any(), &params, manifest.as_deref());
    capi::drain_within(
        &mut generated,
        std::time::Duration::from_secs(args.node_drain_timeout_seconds),
    );
    if generated.objects.is_empty() {
        bail!("nothing generated");
    }
    print!("{}", yaml::to_multi_string(&generated.objects)?);
    Ok(())
}
