//! The server: configuration, watches, routes, authentication in front of every route, TLS.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use axum::serve::ListenerExt as _;
use tower::Layer as _;

use lcm_core::crd::SubscribedApi;
use lcm_core::rest::alarms::ALARMS_PREFIX;
use lcm_core::rest::{INVENTORY_PREFIX, PROVISIONING_PREFIX};

use crate::config::Config;
use crate::marker::MarkerKey;
use crate::problem::Problem;
use crate::shared::Shared;
use crate::stores::Stores;
use crate::{alarms, auth, inventory, provisioning, subscriptions};

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
    // Replicas share the TLS key, so they agree on markers; without TLS a marker holds for the
    // replica that made it.
    let marker_key = match &tls {
        Some((_, key)) => MarkerKey::derived(
            &std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        ),
        None => MarkerKey::random()?,
    };
    let shared = Shared {
        client: runtime.client.clone(),
        stores,
        cloud: Arc::new(config.cloud()),
        config: Arc::new(config.clone()),
        marker_key: Arc::new(marker_key),
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

/// Every route, each behind authentication and authorization; a path with a trailing `/` is
/// the path without it (SMOs written against v1 call the O-Cloud's root as `.../v2/`).
fn routes(shared: Shared) -> Router {
    // Around the whole router: routing sees the trimmed path.
    Router::new()
        .fallback_service(axum::middleware::from_fn(trim_trailing_slash).layer(router(shared)))
}

fn router(shared: Shared) -> Router {
    // Authorization on each path's methods only (not on its fallback), so an authenticated
    // caller gets a 404 or 405 for what is not served rather than a 403.
    let authorized = axum::middleware::from_fn_with_state(shared.clone(), auth::authorize);
    let mut router = Router::new();
    for (path, methods) in endpoints() {
        router = router.route(&path, methods.route_layer(authorized.clone()));
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            Problem::new(
                StatusCode::NOT_FOUND,
                format!("no such path: {}", uri.path()),
            )
        })
        // axum adds the `Allow` header of the path's methods.
        .method_not_allowed_fallback(|request: Request| async move {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not a method of {} (the Allow header lists its methods)",
                    request.method(),
                    request.uri().path()
                ),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::authenticate,
        ))
        .with_state(shared)
}

/// Every path the API serves, with its methods.
fn endpoints() -> Vec<(String, MethodRouter<Shared>)> {
    let p = PROVISIONING_PREFIX;
    let i = INVENTORY_PREFIX;
    let mut endpoints = vec![
        (
            "/o2ims-infrastructureProvisioning/api_versions".to_string(),
            get(provisioning::all_versions),
        ),
        (format!("{p}/api_versions"), get(provisioning::all_versions)),
        (
            format!("{p}/provisioningRequests"),
            get(provisioning::list).post(provisioning::create),
        ),
        (
            format!("{p}/provisioningRequests/{{id}}"),
            get(provisioning::get)
                .put(provisioning::replace)
                .delete(provisioning::delete),
        ),
        (
            "/o2ims-infrastructureInventory/api_versions".to_string(),
            get(inventory::all_versions),
        ),
        (i.to_string(), get(inventory::cloud)),
        (format!("{i}/api_versions"), get(inventory::all_versions)),
        (format!("{i}/resourceTypes"), get(inventory::resource_types)),
        (
            format!("{i}/resourceTypes/{{id}}"),
            get(inventory::resource_type),
        ),
        (format!("{i}/resourcePools"), get(inventory::resource_pools)),
        (
            format!("{i}/resourcePools/{{id}}"),
            get(inventory::resource_pool),
        ),
        (
            format!("{i}/resourcePools/{{pool}}/resources"),
            get(inventory::resources),
        ),
        (
            format!("{i}/resourcePools/{{pool}}/resources/{{id}}"),
            get(inventory::resource),
        ),
        (format!("{i}/locations"), get(inventory::locations)),
        (format!("{i}/locations/{{id}}"), get(inventory::location)),
        (format!("{i}/oCloudSites"), get(inventory::sites)),
        (format!("{i}/oCloudSites/{{id}}"), get(inventory::site)),
        (
            format!("{i}/deploymentManagers"),
            get(inventory::deployment_managers),
        ),
        (
            format!("{i}/deploymentManagers/{{id}}"),
            get(inventory::deployment_manager),
        ),
    ];
    let a = ALARMS_PREFIX;
    endpoints.extend([
        (format!("{i}/alarmDictionaries"), get(alarms::dictionaries)),
        (
            format!("{i}/alarmDictionaries/{{id}}"),
            get(alarms::dictionary),
        ),
        (
            format!("{i}/resourceTypes/{{id}}/alarmDictionary"),
            get(alarms::resource_type_dictionary),
        ),
        (
            "/o2ims-infrastructureMonitoring/api_versions".to_string(),
            get(alarms::all_versions),
        ),
        (format!("{a}/api_versions"), get(alarms::all_versions)),
        (format!("{a}/alarms"), get(alarms::list)),
        (
            format!("{a}/alarms/{{id}}"),
            get(alarms::get).patch(alarms::patch),
        ),
        (
            format!("{a}/alarmServiceConfiguration"),
            get(alarms::service_configuration)
                .put(alarms::service_configuration_refused)
                .patch(alarms::service_configuration_refused),
        ),
        (format!("{a}/probableCauses"), get(alarms::probable_causes)),
        (
            format!("{a}/probableCauses/{{id}}"),
            get(alarms::probable_cause),
        ),
        (ALERTMANAGER_PATH.to_string(), post(alarms::alertmanager)),
    ]);
    for api in [
        SubscribedApi::Inventory,
        SubscribedApi::Provisioning,
        SubscribedApi::Alarms,
    ] {
        endpoints.extend(subscriptions::endpoints(api));
    }
    endpoints
}

/// Where Alertmanager's webhook receiver posts (not an O2ims path: the chart's
/// `oran-lcm-o2ims-alertmanager` role grants it alone).
pub const ALERTMANAGER_PATH: &str = "/internal/v1/alertmanager";

async fn trim_trailing_slash(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            trimmed => trimmed,
        };
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Ok(uri) = format!("{trimmed}{query}").parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}
