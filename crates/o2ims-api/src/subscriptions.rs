//! `.../subscriptions` of the inventory and provisioning APIs and `.../alarmSubscriptions`: a
//! subscription is an O2imsSubscription in the server's namespace. Its callback must be on a
//! host the admin allows (no request forgery through the server) and must answer a GET with 204
//! before the subscription exists.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use lcm_core::crd::{O2imsSubscription, O2imsSubscriptionSpec, SubscribedApi};
use lcm_core::rest::alarms::{ALARMS_PREFIX, AlarmSubscriptionInfo, EventType};
use lcm_core::rest::selection::{Listed, Selection};
use lcm_core::rest::{INVENTORY_PREFIX, PROVISIONING_PREFIX, is_object_uuid};

use lcm_core::rest::notifications::fingerprint;
use operator_kit::fresh;

use crate::lists;
use crate::problem::Problem;
use crate::shared::{Shared, parse_body};
use crate::{callback, notifier};

/// A subscription as the API shows and takes it (`Subscription` of the inventory document).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Assigned by the server; ignored in a POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub callback: String,
}

impl Listed for Subscription {
    const NAME: &'static str = "Subscription";
    const IDENTIFIERS: &'static [&'static str] = &["subscriptionId"];
    const DEFAULT_EXCLUDED: &'static [&'static str] = &[];
}

/// The path of an API's subscriptions.
fn list_path(api: SubscribedApi) -> String {
    match api {
        SubscribedApi::Inventory => format!("{INVENTORY_PREFIX}/subscriptions"),
        SubscribedApi::Provisioning => format!("{PROVISIONING_PREFIX}/subscriptions"),
        SubscribedApi::Alarms => format!("{ALARMS_PREFIX}/alarmSubscriptions"),
    }
}

fn view(subscription: &O2imsSubscription) -> Subscription {
    Subscription {
        subscription_id: Some(subscription.name_any()),
        consumer_subscription_id: subscription.spec.consumer_subscription_id.clone(),
        filter: subscription.spec.filter.clone(),
        callback: subscription.spec.callback.clone(),
    }
}

fn alarm_view(subscription: &O2imsSubscription) -> AlarmSubscriptionInfo {
    AlarmSubscriptionInfo {
        alarm_subscription_id: Some(subscription.name_any()),
        consumer_subscription_id: subscription.spec.consumer_subscription_id.clone(),
        filter: subscription
            .spec
            .filter
            .as_deref()
            .and_then(EventType::parse),
        callback: subscription.spec.callback.clone(),
    }
}

/// A subscription as its API shows it.
fn shown(subscription: &O2imsSubscription) -> Response {
    match subscription.spec.api {
        SubscribedApi::Alarms => Json(alarm_view(subscription)).into_response(),
        _ => Json(view(subscription)).into_response(),
    }
}

/// What a POST asks for, in its API's shape: the spec it makes.
fn requested(api: SubscribedApi, body: &[u8]) -> Result<O2imsSubscriptionSpec, Problem> {
    let (callback, consumer_subscription_id, filter) = match api {
        SubscribedApi::Alarms => {
            let body: AlarmSubscriptionInfo = parse_body(body)?;
            let filter = body.filter.map(|f| f.as_str().to_string());
            (body.callback, body.consumer_subscription_id, filter)
        }
        _ => {
            let body: Subscription = parse_body(body)?;
            // An empty filter is no filter.
            let filter = body.filter.filter(|f| !f.trim().is_empty());
            if let Some(filter) = &filter {
                Selection::parse([("filter", filter.as_str())])
                    .map_err(|e| Problem::bad_request(e.to_string()))?;
            }
            (body.callback, body.consumer_subscription_id, filter)
        }
    };
    if let Some(consumer) = &consumer_subscription_id
        && uuid::Uuid::try_parse(consumer).is_err()
    {
        return Err(Problem::bad_request(format!(
            "consumerSubscriptionId: `{consumer}` is not a UUID"
        )));
    }
    Ok(O2imsSubscriptionSpec {
        api,
        callback,
        consumer_subscription_id,
        filter,
    })
}

fn of_api(shared: &Shared, api: SubscribedApi) -> Vec<O2imsSubscription> {
    let mut all: Vec<O2imsSubscription> = shared
        .stores
        .subscriptions
        .state()
        .iter()
        .filter(|s| s.spec.api == api)
        .map(|s| s.as_ref().clone())
        .collect();
    all.sort_by_key(|s| s.name_any());
    all
}

pub async fn list(shared: Shared, api: SubscribedApi, uri: Uri) -> Response {
    let subscriptions = of_api(&shared, api);
    match api {
        SubscribedApi::Alarms => {
            lists::respond(&shared, &uri, subscriptions.iter().map(alarm_view))
        }
        _ => lists::respond(&shared, &uri, subscriptions.iter().map(view)),
    }
}

pub async fn get(shared: Shared, api: SubscribedApi, id: String) -> Result<Response, Problem> {
    shared
        .stores
        .subscriptions
        .get(&ObjectRef::new(&id).within(&shared.config.runtime.pod_namespace))
        .filter(|s| s.spec.api == api)
        .map(|s| shown(&s))
        .ok_or_else(|| Problem::not_found("subscription", &id))
}

pub async fn create(shared: Shared, api: SubscribedApi, body: Bytes) -> Result<Response, Problem> {
    let spec = requested(api, &body)?;
    callback::verify(&shared.config, &spec.callback)
        .await
        .map_err(Problem::bad_request)?;
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    let subscription = O2imsSubscription::new(&id, spec);
    let created = subscriptions(&shared)
        .create(&PostParams::default(), &subscription)
        .await
        .map_err(Problem::internal)?;
    // What exists now is what the subscriber starts from: only later changes are notified.
    let baseline = notifier::current(&shared, &created)
        .map_err(Problem::bad_request)?
        .iter()
        .map(|(path, state)| (path.clone(), fingerprint(state)))
        .collect();
    if let Err(error) = notifier::write_status(&shared, &id, &baseline, None).await {
        let _ = subscriptions(&shared)
            .delete(&id, &DeleteParams::default())
            .await;
        return Err(Problem::internal(error));
    }
    fresh::written(
        &shared.stores.changed,
        &shared.stores.subscriptions,
        &created,
    )
    .await;
    let mut response = shown(&created);
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) = format!("{}/{id}", list_path(api)).parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn delete(shared: Shared, api: SubscribedApi, id: String) -> Result<Response, Problem> {
    let found = match is_object_uuid(&id) {
        true => subscriptions(&shared)
            .get_opt(&id)
            .await
            .map_err(Problem::internal)?
            .filter(|s| s.spec.api == api),
        false => None,
    };
    let Some(found) = found else {
        return Err(Problem::not_found("subscription", &id));
    };
    match subscriptions(&shared)
        .delete(&id, &DeleteParams::default())
        .await
    {
        Ok(_) => {
            let stores = &shared.stores;
            let key = ObjectRef::from_obj(&found);
            fresh::deleted(
                &stores.changed,
                &stores.subscriptions,
                &key,
                found.uid().as_deref(),
            )
            .await;
            Ok(StatusCode::OK.into_response())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Problem::not_found("subscription", &id)),
        Err(other) => Err(Problem::internal(other)),
    }
}

fn subscriptions(shared: &Shared) -> Api<O2imsSubscription> {
    Api::namespaced(shared.client.clone(), &shared.config.runtime.pod_namespace)
}

/// The paths of one API's subscriptions, with their methods.
pub fn endpoints(api: SubscribedApi) -> Vec<(String, axum::routing::MethodRouter<Shared>)> {
    use axum::routing::get as route;
    let list_path = list_path(api);
    let item_path = format!("{list_path}/{{id}}");
    vec![
        (
            list_path,
            route(move |State(s): State<Shared>, uri: Uri| list(s, api, uri))
                .post(move |State(s): State<Shared>, body: Bytes| create(s, api, body)),
        ),
        (
            item_path,
            route(move |State(s): State<Shared>, Path(id): Path<String>| get(s, api, id))
                .delete(move |State(s): State<Shared>, Path(id): Path<String>| delete(s, api, id)),
        ),
    ]
}
