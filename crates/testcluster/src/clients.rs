//! Clients with other identities than the admin, to test RBAC as the API server enforces it.

use anyhow::Context;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::AuthInfo;
use kube::{Client, Config};

/// One hour: more than any test runs (the API server's minimum is ten minutes).
const TOKEN_SECONDS: i64 = 3600;

/// A client authenticated as ServiceAccount `namespace/name` with a token from the TokenRequest
/// API; the ServiceAccount is created when missing.
pub(crate) async fn service_account_client(
    admin: Client,
    admin_config: &Config,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Client> {
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
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|status| status.token)
        .context("TokenRequest without a token")?;

    let mut config = admin_config.clone();
    config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..AuthInfo::default()
    };
    config.default_namespace = namespace.into();
    Ok(Client::try_from(config)?)
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
