//! An SMO's notification endpoint: answers the verifying GET with 204 and keeps every POSTed
//! notification, each checked against its schema; it can be told to refuse for a while.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

#[derive(Clone, Default)]
pub struct Receiver {
    pub received: Arc<Mutex<Vec<Value>>>,
    /// While set, notifications are answered 503 (and not kept).
    pub refusing: Arc<AtomicBool>,
    pub url: String,
    /// (document, schema) notifications are checked against.
    schema: (&'static str, &'static str),
}

impl Receiver {
    /// Serves on a free port of 127.0.0.1 until the test ends.
    pub async fn start(document: &'static str, schema: &'static str) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let receiver = Receiver {
            url: format!("http://{}/notify", listener.local_addr()?),
            schema: (document, schema),
            ..Receiver::default()
        };
        let app = axum::Router::new()
            .route(
                "/notify",
                get(|| async { StatusCode::NO_CONTENT }).post(keep),
            )
            .route("/ok", get(|| async { StatusCode::OK }))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(receiver)
    }

    /// Waits for a notification `matches` selects, returning it.
    pub async fn wait_for(
        &self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        testcluster::wait_for(what, Duration::from_secs(60), || async {
            let received = self.received.lock().expect("lock");
            Ok(received.iter().find(|n| matches(n)).cloned())
        })
        .await
        .map_err(|e| {
            e.context(format!(
                "received: {:#?}",
                self.received.lock().map(|r| r.clone())
            ))
        })
    }
}

async fn keep(State(receiver): State<Receiver>, Json(notification): Json<Value>) -> StatusCode {
    if receiver.refusing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let (document, schema) = receiver.schema;
    if let Err(e) = super::documents().check_schema(document, schema, &notification) {
        panic!("a notification that is not a {schema}: {e}\n{notification:#}");
    }
    receiver.received.lock().expect("lock").push(notification);
    StatusCode::NO_CONTENT
}
