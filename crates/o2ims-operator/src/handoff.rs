//! Day 2: a cluster handed to the tools workloads reach it through. Once fulfilled it is
//! registered in ArgoCD (kept up to date with its labels and kubeconfig while it exists, whatever
//! its later state: a scale or upgrade in progress must not pull its workloads), Config Sync is
//! bootstrapped on it as soon as its objects exist, and on teardown the registration goes first.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use lcm_core::conditions::Desired;
use lcm_core::crd::ProvisioningRequest;
use lcm_core::handoff::{argocd, config_sync};
use lcm_core::template::ClusterParameters;

use crate::children;
use crate::context::Context;
use crate::error::Result;
use crate::snapshot::{HandoffSecrets, Snapshot};

pub const ARGOCD_REGISTERED: &str = "ArgoCDRegistered";
pub const CONFIG_SYNC_APPLIED: &str = "ConfigSyncApplied";

/// Brings the cluster's hand-offs to what the admin enabled and the cluster chose; returns a
/// condition for each enabled one.
pub async fn keep(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    fulfilled: bool,
    world: &Snapshot,
) -> Result<Vec<Desired>> {
    let (mut conditions, secrets) = (Vec::new(), &world.handoff);
    if let Some(namespace) = &ctx.config.handoff.argocd_namespace {
        conditions.push(register(ctx, request, params, namespace, fulfilled, secrets).await?);
    }
    if let Some(repo) = &ctx.config.handoff.config_sync_repo {
        conditions.push(bootstrap_config_sync(ctx, request, params, repo, secrets).await?);
    }
    Ok(conditions)
}

/// Removes the registration in ArgoCD of the cluster `cluster_name`; true once `world` shows
/// none (so that ArgoCD stops deploying to the cluster before Cluster API tears it down).
pub async fn withdraw(ctx: &Context, cluster_name: &str, world: &Snapshot) -> Result<bool> {
    let Some(namespace) = &ctx.config.handoff.argocd_namespace else {
        return Ok(true);
    };
    let Some(registered) = &world.handoff.registration else {
        return Ok(true);
    };
    if registered.metadata.deletion_timestamp.is_none() {
        delete_registration(ctx, namespace, &argocd::secret_name(cluster_name)).await?;
    }
    Ok(false)
}

async fn delete_registration(ctx: &Context, namespace: &str, name: &str) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        deleted => deleted.map(drop).map_err(Into::into),
    }
}

async fn register(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    namespace: &str,
    fulfilled: bool,
    secrets: &HandoffSecrets,
) -> Result<Desired> {
    let name = argocd::secret_name(&params.cluster_name);
    let registered = &secrets.registration;
    let at = format!("Secret {namespace}/{name}");
    if !params.handoff.argocd {
        if registered.is_some() {
            delete_registration(ctx, namespace, &name).await?;
        }
        return Ok(Desired::false_(
            ARGOCD_REGISTERED,
            "OptedOut",
            "the cluster opted out of ArgoCD (templateParameters.handoff.argocd: false)",
        ));
    }
    if !fulfilled && registered.is_none() {
        return Ok(Desired::false_(
            ARGOCD_REGISTERED,
            "WaitingForFulfilled",
            format!("the cluster is registered in ArgoCD ({at}) once fulfilled"),
        ));
    }
    let kubeconfig_name = argocd::kubeconfig_secret_name(&params.cluster_name);
    let cluster_namespace = params.namespace();
    let Some(kubeconfig) = &secrets.kubeconfig else {
        return Ok(Desired::false_(
            ARGOCD_REGISTERED,
            "WaitingForKubeconfig",
            format!("Cluster API has not written Secret {cluster_namespace}/{kubeconfig_name} yet"),
        ));
    };
    let version = kubeconfig.resource_version().unwrap_or_default();
    let fingerprint = argocd::fingerprint(&request.name_any(), params, &version);
    let current = registered
        .as_ref()
        .and_then(|r| r.annotations().get(argocd::FINGERPRINT_ANNOTATION).cloned());
    let registered_message = format!("registered in ArgoCD as {at}");
    if current.as_deref() == Some(fingerprint.as_str()) {
        return Ok(Desired::true_(
            ARGOCD_REGISTERED,
            "Registered",
            registered_message,
        ));
    }
    // Read only when the kubeconfig (or the registration's labels) changed.
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &cluster_namespace);
    let text = secrets
        .get_opt(&kubeconfig_name)
        .await?
        .and_then(|s| s.data?.remove("value"))
        .and_then(|value| String::from_utf8(value.0).ok());
    let Some(text) = text else {
        return Ok(Desired::false_(
            ARGOCD_REGISTERED,
            "InvalidKubeconfig",
            format!("Secret {cluster_namespace}/{kubeconfig_name} has no UTF-8 key `value`"),
        ));
    };
    match argocd::cluster_secret(&request.name_any(), params, namespace, &text, &version) {
        Err(why) => Ok(Desired::false_(
            ARGOCD_REGISTERED,
            "InvalidKubeconfig",
            format!("Secret {cluster_namespace}/{kubeconfig_name}: {why}"),
        )),
        Ok(mut secret) => {
            secret["metadata"]["ownerReferences"] =
                json!([children::owner_reference(request, true)]);
            children::apply_secret(ctx, &secret).await?;
            tracing::info!(request = %request.name_any(), secret = %at, "registered the cluster in ArgoCD");
            Ok(Desired::true_(
                ARGOCD_REGISTERED,
                "Registered",
                registered_message,
            ))
        }
    }
}

async fn bootstrap_config_sync(
    ctx: &Context,
    request: &ProvisioningRequest,
    params: &ClusterParameters,
    repo: &str,
    secrets: &HandoffSecrets,
) -> Result<Desired> {
    let handoff = &ctx.config.handoff;
    let credentials = match &handoff.config_sync_secret {
        None => None,
        Some(name) => match credentials(ctx.config.namespace(), name, secrets) {
            Ok(credentials) => Some(credentials),
            Err(why) => {
                return Ok(Desired::false_(
                    CONFIG_SYNC_APPLIED,
                    "CredentialsMissing",
                    why,
                ));
            }
        },
    };
    let source = config_sync::Source {
        repo: repo.to_string(),
        branch: handoff.config_sync_branch.clone(),
        credentials,
    };
    let objects = config_sync::objects(&request.name_any(), params, &source);
    children::apply_owned(ctx, request, objects, false).await?;
    Ok(Desired::true_(
        CONFIG_SYNC_APPLIED,
        "ResourceSetApplied",
        format!(
            "ClusterResourceSet {}/{} applies RootSync {}/{} ({repo}, branch {}, directory {}) once the cluster's API server answers; Config Sync must be installed on the cluster",
            params.namespace(),
            config_sync::resource_set_name(&params.cluster_name),
            config_sync::NAMESPACE,
            config_sync::ROOT_SYNC,
            source.branch,
            config_sync::directory(params),
        ),
    ))
}

/// The repository credentials of the admin's Secret `name` in `namespace`, as its `data` holds
/// them.
fn credentials(
    namespace: &str,
    name: &str,
    secrets: &HandoffSecrets,
) -> std::result::Result<config_sync::Credentials, String> {
    let secret = secrets.git_credentials.as_ref().ok_or_else(|| {
        format!(
            "Secret {namespace}/{name} with the Config Sync repository's credentials does not exist"
        )
    })?;
    let field = |key: &str| {
        let value = secret.data.as_ref().and_then(|d| d.get(key));
        value
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| format!("Secret {namespace}/{name} has no key `{key}`"))
    };
    Ok(config_sync::Credentials {
        username: field("username")?,
        token: field("token")?,
    })
}
