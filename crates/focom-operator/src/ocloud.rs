//! Where a request's ProvisioningRequests live: this cluster, or a remote O-Cloud reached
//! through the kubeconfig in its OCloud's Secret (its objects watched, not polled).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};

use lcm_core::conditions::Desired;
use lcm_core::crd::{FocomProvisioningRequest, OCloud, ProvisioningRequest};

use crate::cache::OCloudCache;
use crate::context::Context;
use crate::error::Result;

pub const OCLOUD_REACHABLE: &str = "OCloudReachable";
/// Reason of `OCloudReachable=False` for an OCloud of a namespace the request may not use: a
/// spec error, so the request fails instead of retrying.
pub const OCLOUD_NOT_ALLOWED: &str = "OCloudNotAllowed";

/// The O-Cloud a request provisions on.
pub struct Target {
    pub client: Client,
    /// Its ProvisioningRequests and host ledger.
    pub cache: Arc<OCloudCache>,
    /// For messages: `this cluster` or `OCloud <namespace>/<name>`.
    pub description: String,
    /// The OCloud it was reached through, if any.
    ocloud: Option<Arc<OCloud>>,
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

/// The request's target, or the condition saying why it cannot be reached. An OCloud it
/// reaches is held until no request uses it (one it never reached has nothing of it).
pub async fn target(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<Result<Target, Desired>> {
    let reached = locate(ctx, request).await?;
    if let Ok(Target {
        ocloud: Some(ocloud),
        ..
    }) = &reached
    {
        crate::ocloud_in_use::hold(ctx, ocloud).await?;
    }
    Ok(reached)
}

async fn locate(
    ctx: &Context,
    request: &FocomProvisioningRequest,
) -> Result<Result<Target, Desired>> {
    let local = |ocloud| Target {
        client: ctx.client.clone(),
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
    let unreachable =
        |reason: &str, message: String| Ok(Err(Desired::false_(OCLOUD_REACHABLE, reason, message)));
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
    let Some(secret_ref) = ocloud
        .spec
        .o2ims_secret
        .as_ref()
        .map(|s| s.secret_ref.clone())
    else {
        return Ok(Ok(local(Some(ocloud))));
    };
    // Else anyone who may create an OCloud could use any Secret the operator can read.
    if secret_ref.namespace != namespace {
        return unreachable(
            "SecretNotAllowed",
            format!(
                "OCloud {namespace}/{id}: spec.o2imsSecret.secretRef.namespace {} is not the OCloud's namespace: an OCloud may only use Secrets of its own namespace",
                secret_ref.namespace
            ),
        );
    }
    let where_ = format!("Secret {}/{}", secret_ref.namespace, secret_ref.name);
    let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), &secret_ref.namespace)
        .get_opt(&secret_ref.name)
        .await?
    else {
        return unreachable(
            "SecretNotFound",
            format!("{where_} of OCloud {namespace}/{id} does not exist"),
        );
    };
    let Some(kubeconfig) = secret.data.as_ref().and_then(|d| d.get("kubeconfig")) else {
        return unreachable(
            "KubeconfigMissing",
            format!("{where_} has no `kubeconfig` key"),
        );
    };
    let key = format!(
        "{}/{}@{}",
        secret_ref.namespace,
        secret_ref.name,
        secret.resource_version().unwrap_or_default()
    );
    let description = format!("OCloud {namespace}/{id}");
    let mut remotes = ctx.remotes.lock().await;
    if let Some(cache) = remotes.get(&key) {
        return Ok(Ok(Target {
            client: cache.client().clone(),
            cache: cache.clone(),
            description,
            ocloud: Some(ocloud),
        }));
    }
    let client = match remote_client(&kubeconfig.0).await {
        Ok(client) => client,
        Err(e) => {
            return unreachable(
                "InvalidKubeconfig",
                format!("the kubeconfig in {where_} is unusable: {e}"),
            );
        }
    };
    // A new Secret version replaces the old client and stops its watch.
    remotes
        .retain(|k, _| !k.starts_with(&format!("{}/{}@", secret_ref.namespace, secret_ref.name)));
    let cache = Arc::new(OCloudCache::watch(client.clone(), ctx.triggers.clone()));
    remotes.insert(key, cache.clone());
    Ok(Ok(Target {
        client,
        cache,
        description,
        ocloud: Some(ocloud),
    }))
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

/// Which FocomProvisioningRequest a ProvisioningRequest was created for.
pub fn owner_of(request: &ProvisioningRequest) -> Option<ObjectRef<FocomProvisioningRequest>> {
    let (namespace, name) = lcm_core::focom::owner_of(request)?;
    Some(ObjectRef::new(&name).within(&namespace))
}
