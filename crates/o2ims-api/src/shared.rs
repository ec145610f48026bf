//! What every handler shares, and how it reads a request's body.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use lcm_core::rest::inventory::Cloud;

use crate::config::Config;
use crate::marker::MarkerKey;
use crate::problem::Problem;
use crate::stores::Stores;

/// What every handler shares.
#[derive(Clone)]
pub struct Shared {
    pub client: kube::Client,
    pub stores: Stores,
    pub cloud: Arc<Cloud>,
    pub config: Arc<Config>,
    /// Seals the lists' `nextpage_opaque_marker`s.
    pub marker_key: Arc<MarkerKey>,
}

/// A JSON body, or a 400 naming the field that does not fit.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        Problem::bad_request(format!("body: at {path}: {}", e.into_inner()))
    })
}
