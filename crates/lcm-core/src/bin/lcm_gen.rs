//! Writes the artefacts generated from the Rust types: the CRD YAML in `crds/`
//! and the built-in template's TemplateInfo. `--check` fails when the files on
//! disk differ from what the types generate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use kube::ResourceExt;
use lcm_core::crd::{self, TemplateInfo, TemplateInfoSpec};
use lcm_core::{template, yaml};

#[derive(Parser)]
#[command(about = "Generate (or check) the CRD YAML and the built-in TemplateInfo")]
struct Args {
    /// Directory of the CRD YAML files.
    #[arg(long, default_value = "crds")]
    crds: PathBuf,
    /// File of the built-in template's TemplateInfo.
    #[arg(long, default_value = "examples/template-info.yaml")]
    template_info: PathBuf,
    /// Compare instead of writing; exit 1 on any difference.
    #[arg(long)]
    check: bool,
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for crd in crd::all() {
        let path = args.crds.join(format!("{}.yaml", crd.name_any()));
        files.push((path, yaml::to_string(&crd)?));
    }
    files.push((
        args.template_info.clone(),
        yaml::to_string(&builtin_template_info()?)?,
    ));

    let mut stale = Vec::new();
    for (path, content) in &files {
        if args.check {
            if std::fs::read_to_string(path).ok().as_deref() != Some(content.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            write(path, content)?;
        }
    }
    if stale.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "generated files differ from the Rust types: {}\nrun `make crds` and commit the result",
        stale.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

fn write(path: &Path, content: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

/// The TemplateInfo publishing the built-in template's parameter schema (the name
/// `<templateName>-<templateVersion>` is the one Nephio looks up).
fn builtin_template_info() -> Result<TemplateInfo> {
    let schema = serde_json::to_string_pretty(&template::parameter_schema())?;
    let mut info = TemplateInfo::new(
        &format!("{}-{}", template::NAME, template::VERSION),
        TemplateInfoSpec {
            template_name: template::NAME.into(),
            template_version: template::VERSION.into(),
            template_parameter_schema: schema,
        },
    );
    info.metadata.namespace = Some("focom-system".into());
    Ok(info)
}
