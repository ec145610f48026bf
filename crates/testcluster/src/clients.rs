//! Clients with other identities than the admin, to test RBAC as the API server enforces it.

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::AuthInfo;
use kube::{Client, Config};

/// One hour: more than any test runs (the API server's minimum is ten minutes).
const TOKEN_SECONDS: i64 = 3600;

/// A token of ServiceAccount `namespace/name` from the TokenRequest API; the ServiceAccount
/// is created when missing.
pub(crate) async fn service_account_token(
    admin: Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin, namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_already_exists() => {}
        Err(err) => return Err(err).context(format!("create ServiceAccount {namespace}/{name}")),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|status| status.token)
        .context("TokenRequest without a token")
}

/// A client authenticated as ServiceAccount `namespace/name` (see [`service_account_token`]).
pub(crate) async fn service_account_client(
    admin: Client,
    admin_config: &Config,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Client> {
    let token = service_account_token(admin, namespace, name).await?;
    let mut config = admin_config.clone();
    config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..AuthInfo::default()
    };
    config.default_namespace = namespace.into();
    Ok(Client::try_from(config)?)
}

/// Writes to `path` a kubeconfig of the cluster `admin_kubeconfig` describes, authenticated as
/// ServiceAccount `namespace/name`: a process using it is authorized by RBAC exactly as the
/// same program in a pod with that ServiceAccount.
pub(crate) async fn write_service_account_kubeconfig(
    admin: Client,
    admin_kubeconfig: &std::path::Path,
    namespace: &str,
    name: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let token = service_account_token(admin, namespace, name).await?;
    let mut kubeconfig = kube::config::Kubeconfig::read_from(admin_kubeconfig)?;
    for user in &mut kubeconfig.auth_infos {
        user.auth_info = Some(AuthInfo {
            token: Some(token.clone().into()),
            ..AuthInfo::default()
        });
    }
    for context in &mut kubeconfig.contexts {
        if let Some(context) = context.context.as_mut() {
            context.namespace = Some(namespace.into());
        }
    }
    let yaml = serde_saphyr::to_string(&kubeconfig)?;
    std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

/// A client that acts as `user` in `groups` through impersonation by the admin (who may
/// impersonate anyone), so the API server authorizes each request as that user.
pub(crate) fn impersonating_client(
    admin_config: &Config,
    user: &str,
    groups: &[&str],
) -> anyhow::Result<Client> {
    let mut config = admin_config.clone();
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    Ok(Client::try_from(config)?)
}
