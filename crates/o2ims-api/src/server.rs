//! The server: configuration, watches, routes, authentication in front of every route, TLS.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use lcm_core::crd::SubscribedApi;
use lcm_core::rest::inventory::Cloud;
use lcm_core::rest::selection::Selection;
use lcm_core::rest::{INVENTORY_PREFIX, PROVISIONING_PREFIX};

use crate::config::Config;
use crate::problem::Problem;
use crate::stores::Stores;
use crate::{auth, inventory, provisioning, subscriptions};

/// What every handler shares.
#[derive(Clone)]
pub struct Shared {
    pub client: kube::Client,
    pub stores: Stores,
    pub cloud: Arc<Cloud>,
    pub config: Arc<Config>,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let tls = match (
        &config.tls_cert_file,
        &config.tls_key_file,
        config.plain_http,
    ) {
        (Some(cert), Some(key), _) => Some((cert.clone(), key.clone())),
        (None, None, true) => None,
        _ => anyhow::bail!(
            "the API carries bearer tokens: give --tls-cert-file and --tls-key-file, or --plain-http behind a TLS-terminating proxy"
        ),
    };
    let runtime = operator_kit::runtime::start("o2ims-api", "o2ims_api", &config.runtime).await?;
    let stores = Stores::start(
        &runtime.client,
        &config.runtime.pod_namespace,
        &config.host_inventory_configmap,
    );
    let readiness = runtime.readiness.clone();
    let listed = stores.listed.clone();
    tokio::spawn(async move {
        listed.wait().await;
        readiness.set(true);
    });
    let shared = Shared {
        client: runtime.client.clone(),
        stores,
        cloud: Arc::new(config.cloud()),
        config: Arc::new(config.clone()),
    };
    tokio::spawn(crate::notifier::run(
        shared.clone(),
        runtime.identity.clone(),
    ));
    let app = routes(shared.clone());
    let address = config.api_addr;
    tracing::info!(%address, tls = tls.is_some(), "serving the O2ims API");
    match tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key)
                .await
                .with_context(|| format!("reading {} and {}", cert.display(), key.display()))?;
            // No Nagle: a list's last TLS record would otherwise wait out the client's
            // delayed ACK (40 ms on Linux).
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .acceptor(axum_server::accept::NoDelayAcceptor::new());
            axum_server::bind(address)
                .acceptor(acceptor)
                .serve(app.into_make_service())
                .await?;
        }
        None => {
            let listener = tokio::net::TcpListener::bind(address).await?.tap_io(|tcp| {
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::warn!(%error, "cannot turn Nagle off on a connection");
                }
            });
            axum::serve(listener, app).await?;
        }
    }
    Ok(())
}

/// Every route, each behind authentication and authorization.
fn routes(shared: Shared) -> Router {
    let p = PROVISIONING_PREFIX;
    let i = INVENTORY_PREFIX;
    Router::new()
        .route(
            "/o2ims-infrastructureProvisioning/api_versions",
            get(provisioning::all_versions),
        )
        .route(
            &format!("{p}/api_versions"),
            get(provisioning::all_versions),
        )
        .route(
            &format!("{p}/provisioningRequests"),
            get(provisioning::list).post(provisioning::create),
        )
        .route(
            &format!("{p}/provisioningRequests/{{id}}"),
            get(provisioning::get)
                .put(provisioning::replace)
                .delete(provisioning::delete),
        )
        .route(
            "/o2ims-infrastructureInventory/api_versions",
            get(inventory::all_versions),
        )
        .route(i, get(inventory::cloud))
        .route(&format!("{i}/api_versions"), get(inventory::all_versions))
        .route(
            &format!("{i}/resourceTypes"),
            get(inventory::resource_types),
        )
        .route(
            &format!("{i}/resourceTypes/{{id}}"),
            get(inventory::resource_type),
        )
        .route(
            &format!("{i}/resourcePools"),
            get(inventory::resource_pools),
        )
        .route(
            &format!("{i}/resourcePools/{{id}}"),
            get(inventory::resource_pool),
        )
        .route(
            &format!("{i}/resourcePools/{{pool}}/resources"),
            get(inventory::resources),
        )
        .route(
            &format!("{i}/resourcePools/{{pool}}/resources/{{id}}"),
            get(inventory::resource),
        )
        .route(
            &format!("{i}/deploymentManagers"),
            get(inventory::deployment_managers),
        )
        .route(
            &format!("{i}/deploymentManagers/{{id}}"),
            get(inventory::deployment_manager),
        )
        .merge(subscriptions::routes(SubscribedApi::Inventory))
        .merge(subscriptions::routes(SubscribedApi::Provisioning))
        .fallback(|uri: axum::http::Uri| async move {
            Problem::new(
                StatusCode::NOT_FOUND,
                format!("no such path: {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this path",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::authorize,
        ))
        .with_state(shared)
}

/// A list filtered and projected as the query's `filter`, `fields`, `exclude_fields` and
/// `all_fields` say.
pub fn list_response<T: Serialize>(
    query: Option<String>,
    items: impl IntoIterator<Item = T>,
) -> Response {
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(query.as_deref().unwrap_or_default()) {
            Ok(pairs) => pairs,
            Err(error) => return Problem::bad_request(format!("query: {error}")).into_response(),
        };
    let selection = match Selection::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(selection) => selection,
        Err(error) => return Problem::bad_request(error.to_string()).into_response(),
    };
    let values = items
        .into_iter()
        .filter_map(|item| serde_json::to_value(item).ok());
    axum::Json(selection.apply(values)).into_response()
}

/// A JSON body, or a 400 naming the field that does not fit.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        Problem::bad_request(format!("body: at {path}: {}", e.into_inner()))
    })
}
