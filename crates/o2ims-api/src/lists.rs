//! Every list answer: the query's `filter`, `fields`, `exclude_fields`, `exclude_default` and
//! `all_fields` applied against the items' type, then one page of at most `--page-size` items
//! with a `Link: <...>; rel="next"` header while more follow. The next page's
//! `nextpage_opaque_marker` is sealed (`marker`).

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use lcm_core::rest::paging::{self, MARKER};
use lcm_core::rest::selection::{Listed, Model, Selection};

use crate::problem::Problem;
use crate::shared::Shared;

/// The list answer for `items` of type `T`, at the request's `uri`.
pub fn respond<T: Listed>(
    shared: &Shared,
    uri: &Uri,
    items: impl IntoIterator<Item = T>,
) -> Response {
    match page::<T>(shared, uri, items) {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

fn page<T: Listed>(
    shared: &Shared,
    uri: &Uri,
    items: impl IntoIterator<Item = T>,
) -> Result<Response, Problem> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or_default())
        .map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let (markers, selecting): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(k, _)| k == MARKER);
    let model = Model::of::<T>();
    let selection = Selection::parse(selecting.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .and_then(|s| s.check(&model).map(|()| s))
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let query = serde_urlencoded::to_string(&selecting).unwrap_or_default();
    let path = uri.path();
    let key = &shared.marker_key;
    let start = match markers.as_slice() {
        [] => None,
        [(_, marker)] => Some(key.open(path, &query, marker)?),
        _ => {
            return Err(Problem::bad_request(format!(
                "{MARKER}: given more than once"
            )));
        }
    };
    let keyed = items
        .into_iter()
        .filter_map(|item| serde_json::to_value(item).ok())
        .filter(|item| selection.matches(item))
        .map(|item| {
            (
                model.key(&item).unwrap_or_default(),
                selection.project(&model, item),
            )
        })
        .collect();
    let (items, next) = paging::page(keyed, start.as_ref(), usize::from(shared.config.page_size));
    let mut response = axum::Json(items).into_response();
    if let Some(next) = next {
        let marker = key.seal(path, &query, &next);
        let separator = if query.is_empty() { "" } else { "&" };
        let link = format!(
            "<{}{path}?{query}{separator}{MARKER}={marker}>; rel=\"next\"",
            shared.cloud.service_uri
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
    Ok(response)
}
