//! No anonymous access: every request carries a bearer token, which the API server
//! authenticates (TokenReview), and is authorized by Kubernetes RBAC (SubjectAccessReview) on
//! its path as a non-resource URL with the HTTP method as verb, so ClusterRoles grant the API
//! as `nonResourceURLs` (the chart's reader, provisioner, subscriber, maintainer and
//! Alertmanager roles).
//!
//! Authentication runs on every request, authorization only on a path and method the API
//! serves: an authenticated caller learns that a path does not exist (404) or does not take
//! the method (405 with `Allow`), rather than a 403 that cannot tell "not for you" from "not a
//! thing"; an anonymous one learns nothing.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::problem::Problem;
use crate::shared::Shared;

/// Authenticates the caller; the routes' [`authorize`] finds its user in the request.
pub async fn authenticate(
    State(shared): State<Shared>,
    mut request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "no bearer token: send `Authorization: Bearer <token>`",
            )
        })?;
    let user = review_token(&shared.client, token).await?;
    request.extensions_mut().insert(user);
    Ok(next.run(request).await)
}

/// Authorizes the authenticated caller for the path and method of a route the API serves.
pub async fn authorize(
    State(shared): State<Shared>,
    request: Request,
    next: Next,
) -> Result<Response, Problem> {
    let user = request
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .ok_or_else(|| Problem::internal("a route was reached without authentication"))?;
    let path = request.uri().path().to_string();
    let verb = request.method().as_str().to_ascii_lowercase();
    if !allowed(&shared.client, &user, &path, &verb).await? {
        let name = user.username.unwrap_or_default();
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "{name} may not {verb} {path}: no ClusterRole bound to it grants nonResourceURL {path} with verb {verb}"
            ),
        ));
    }
    Ok(next.run(request).await)
}

async fn review_token(client: &kube::Client, token: &str) -> Result<UserInfo, Problem> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_string(),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(Problem::internal)?;
    let status = reviewed.status.unwrap_or_default();
    match (status.authenticated, status.user) {
        (Some(true), Some(user)) => Ok(user),
        _ => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "the bearer token is not valid{}",
                status.error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
        )),
    }
}

async fn allowed(
    client: &kube::Client,
    user: &UserInfo,
    path: &str,
    verb: &str,
) -> Result<bool, Problem> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.to_string()),
                verb: Some(verb.to_string()),
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviewed = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(Problem::internal)?;
    Ok(reviewed.status.is_some_and(|s| s.allowed))
}
