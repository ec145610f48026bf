//! Creating objects with strict field validation.

use kube::api::PostParams;
use kube::core::Request;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Creates `object` with `fieldValidation=Strict`: the API server rejects unknown and duplicate
/// fields instead of silently dropping them (kube's `PostParams` has no such option).
/// `namespace` is `None` for cluster-scoped resources.
pub async fn create_strict<K>(
    client: &Client,
    dyntype: &K::DynamicType,
    namespace: Option<&str>,
    object: &K,
) -> kube::Result<K>
where
    K: Resource + Serialize + DeserializeOwned,
{
    let params = PostParams {
        field_manager: Some("testcluster".into()),
        ..PostParams::default()
    };
    let body = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
    let mut request = Request::new(K::url_path(dyntype, namespace))
        .create(&params, body)
        .map_err(kube::Error::BuildRequest)?;
    // The query already carries fieldManager, so the parameter is appended with '&'.
    let uri = format!("{}&fieldValidation=Strict", request.uri());
    *request.uri_mut() = uri.parse().map_err(|e| {
        kube::Error::BuildRequest(kube::core::request::Error::Validation(format!("{e}")))
    })?;
    client.request(request).await
}
