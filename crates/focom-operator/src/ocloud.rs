//! Where a request's ProvisioningRequests live: this cluster, a remote O-Cloud reached through
//! the kubeconfig in its OCloud's Secret (its objects watched), or one reached through its O2ims
//! REST API with the token in its OCloud's Secret (listed every poll interval).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};

use lcm_core::conditions::Desired;
use lcm_core::crd::{FocomProvisioningRequest, OCloud, SecretReference};

use crate::cache::OCloudCache;
use crate::context::Context;
use crate::error::Result;
use crate::rest::RestClient;

pub const OCLOUD_REACHABLE: &str = "OCloudReachable";
/// Reason of `OCloudReachable=False` for an OCloud of a namespace the request may not use: a
/// spec error, so the request fails instead of retrying.
pub const OCLOUD_NOT_ALLOWED: &str = "OCloudNotAllowed";

/// The O-Cloud a request provisions on.
pub struct Target {
    /// Its ProvisioningRequests and host ledger, and how to write there.
    pub cache: Arc<OCloudCache>,
    /// For messages: `this cluster` or `OCloud <namespace>/<name>`.
    pub description: String,
    /// The OCloud it was reached through, if any.
    pub ocloud: Option<Arc<OCloud>>,
}

/// The OCloud `request` names: its `oCloudId`, in `oCloudNamespace` or its own namespace.
pub fn ocloud_of(request: &FocomProvisioningRequest) -> Option<ObjectRef<OCloud>> {
    let id = request.spec.o_cloud_id.as_deref()?;
    let namespace = request
        .spec
        .o_cloud_namespace
        .clone()
        .or_else(|| request.namespace())
        .unwrap_or_default();
    Some(ObjectRef::new(id).within(&namespace))
}

/// The request's target, or the condition saying why it cannot be reached.
pub async fn target(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<Result<Target, Desired>> {
    let local = |ocloud| Target {
        cache: ctx.local.clone(),
        description: "this cluster".into(),
        ocloud,
    };
    let Some(reference) = ocloud_of(request) else {
        return Ok(Ok(local(None)));
    };
    let (id, namespace) = (
        &reference.name,
        reference.namespace.clone().unwrap_or_default(),
    );
    let own = request.namespace().unwrap_or_default();
    // Checked before the OCloud is read: another namespace's OClouds are not even looked at.
    if !ctx.config.ocloud_allowed(&own, &namespace) {
        return unreachable(
            OCLOUD_NOT_ALLOWED,
            format!(
                "spec.oCloudNamespace: a request in namespace {own} may not use the OClouds of namespace {namespace} (only its own, or those the admin allows with --allowed-ocloud-namespaces)"
            ),
        );
    }
    let Some(ocloud) = ctx.inputs.oclouds.get(&reference) else {
        return unreachable(
            "OCloudNotFound",
            format!("OCloud {namespace}/{id} does not exist"),
        );
    };
    let description = format!("OCloud {namespace}/{id}");
    let (secret_ref, api, field) = match (&ocloud.spec.o2ims_secret, &ocloud.spec.o2ims_api) {
        (Some(kubeconfig), _) => (kubeconfig.secret_ref.clone(), None, "o2imsSecret"),
        (None, Some(api)) => (api.secret_ref.clone(), Some(api.url.clone()), "o2imsApi"),
        (None, None) => return Ok(Ok(local(Some(ocloud)))),
    };
    let secret = match read_secret(ctx, &description, field, &namespace, &secret_ref).await? {
        Ok(secret) => secret,
        Err(unreachable) => return Ok(Err(unreachable)),
    };
    let where_ = format!("Secret {}/{}", secret_ref.namespace, secret_ref.name);
    let data = secret.data.clone().unwrap_or_default();
    let version = format!(
        "{}/{}@{}",
        secret_ref.namespace,
        secret_ref.name,
        secret.resource_version().unwrap_or_default()
    );
    let cached = match api {
        None => {
            let Some(kubeconfig) = data.get("kubeconfig") else {
                return unreachable(
                    "KubeconfigMissing",
                    format!("{where_} has no `kubeconfig` key"),
                );
            };
            let kubeconfig = kubeconfig.0.clone();
            cached(ctx, version, "kubeconfig".into(), || async move {
                match remote_client(&kubeconfig).await {
                    Ok(client) => Ok(OCloudCache::watch(client, ctx.triggers.clone())),
                    Err(e) => Err(Desired::false_(
                        OCLOUD_REACHABLE,
                        "InvalidKubeconfig",
                        format!("the kubeconfig in {where_} is unusable: {e}"),
                    )),
                }
            })
            .await
        }
        Some(url) => {
            let Some(token) = data.get("token") else {
                return unreachable(
                    "TokenMissing",
                    format!(
                        "{where_} has no `token` key (the bearer token of the O2ims API at {url})"
                    ),
                );
            };
            let (token, ca) = (token.0.clone(), data.get("ca.crt").map(|c| c.0.clone()));
            let interval = Duration::from_secs(ctx.config.ocloud_poll_seconds);
            cached(ctx, version, url.clone(), || async move {
                let token = String::from_utf8(token).map_err(anyhow::Error::from);
                match token.and_then(|t| RestClient::new(&url, &t, ca.as_deref())) {
                    Ok(rest) => Ok(OCloudCache::poll(
                        Arc::new(rest),
                        interval,
                        ctx.triggers.clone(),
                    )),
                    Err(e) => Err(Desired::false_(
                        OCLOUD_REACHABLE,
                        "InvalidSecret",
                        format!("the token or `ca.crt` in {where_} is unusable: {e}"),
                    )),
                }
            })
            .await
        }
    };
    Ok(cached.map(|cache| Target {
        cache,
        description,
        ocloud: Some(ocloud),
    }))
}

fn unreachable<T>(reason: &str, message: String) -> Result<Result<T, Desired>> {
    Ok(Err(Desired::false_(OCLOUD_REACHABLE, reason, message)))
}

/// The Secret an OCloud of `namespace` names in `spec.<field>.secretRef`, or why it cannot be
/// used.
async fn read_secret(
    ctx: &Context,
    description: &str,
    field: &str,
    namespace: &str,
    secret_ref: &SecretReference,
) -> Result<Result<Secret, Desired>> {
    // Else anyone who may create an OCloud could use any Secret the operator can read.
    if secret_ref.namespace != namespace {
        return unreachable(
            "SecretNotAllowed",
            format!(
                "{description}: spec.{field}.secretRef.namespace {} is not the OCloud's namespace: an OCloud may only use Secrets of its own namespace",
                secret_ref.namespace
            ),
        );
    }
    match Api::<Secret>::namespaced(ctx.client.clone(), &secret_ref.namespace)
        .get_opt(&secret_ref.name)
        .await?
    {
        Some(secret) => Ok(Ok(secret)),
        None => unreachable(
            "SecretNotFound",
            format!(
                "Secret {}/{} of {description} does not exist",
                secret_ref.namespace, secret_ref.name
            ),
        ),
    }
}

/// The cache of the O-Cloud reached at `endpoint` (`kubeconfig`, or the REST API's URL) with
/// Secret version `version` (`<namespace>/<name>@<rv>`), made by `make` when there is none; a
/// new Secret version replaces the old cache and stops its watches.
async fn cached<F, Fut>(
    ctx: &Context,
    version: String,
    endpoint: String,
    make: F,
) -> Result<Arc<OCloudCache>, Desired>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<OCloudCache, Desired>>,
{
    let key = format!("{endpoint} {version}");
    let mut remotes = ctx.remotes.lock().await;
    if let Some(cache) = remotes.get(&key) {
        return Ok(cache.clone());
    }
    let cache = Arc::new(make().await?);
    let secret = version.split_once('@').map_or(version.as_str(), |(s, _)| s);
    remotes.retain(|k, _| !k.starts_with(&format!("{endpoint} {secret}@")));
    remotes.insert(key, cache.clone());
    Ok(cache)
}

async fn remote_client(kubeconfig: &[u8]) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(std::str::from_utf8(kubeconfig)?)?;
    let forbidden = crate::kubeconfig::forbidden_fields(&kubeconfig);
    if !forbidden.is_empty() {
        anyhow::bail!(
            "{} not allowed: a remote O-Cloud's kubeconfig must hold its credentials and certificates inline (token, client-certificate-data, client-key-data, certificate-authority-data), not run a command or read a file",
            forbidden.join(", ")
        );
    }
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}
