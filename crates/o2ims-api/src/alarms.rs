//! `/o2ims-infrastructureMonitoring/v1`: the alarms (O2imsAlarms in the server's namespace),
//! their acknowledgement, the alarm service configuration and the probable causes; the alarm
//! dictionaries of the inventory; the Alertmanager webhook; and the loop that raises and clears
//! alarms from what the watches show, level-based, so nothing is lost while the server is down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Map, Value};

use lcm_core::crd::O2imsAlarm;
use lcm_core::rest::alarms::{
    self, ALARMS_PREFIX, ALARMS_VERSION, ALERT_KEY_PREFIX, Action, AlarmDictionary,
    AlarmEventRecord, AlarmModifications, AlarmServiceConfiguration, AlertmanagerNotification,
    ClusterObservations, HostObservations, ProbableCause, Raised,
};
use lcm_core::rest::{ApiVersions, inventory};
use operator_kit::fresh;

use crate::lists;
use crate::problem::Problem;
use crate::shared::{Shared, parse_body};
use crate::stores::{self, values};

/// How often the raiser looks again without a change (stage clocks run on their own).
const RESCAN: Duration = Duration::from_secs(30);

pub async fn all_versions() -> Json<ApiVersions> {
    Json(ApiVersions::of(ALARMS_PREFIX, ALARMS_VERSION))
}

pub async fn list(State(shared): State<Shared>, uri: Uri) -> Response {
    let mut alarms = stored(&shared);
    alarms.sort_by(|a, b| {
        (&a.spec.raised_time.0, a.name_any()).cmp(&(&b.spec.raised_time.0, b.name_any()))
    });
    lists::respond(
        &shared,
        &uri,
        alarms.iter().map(|a| alarms::record(&shared.cloud, a)),
    )
}

pub async fn get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AlarmEventRecord>, Problem> {
    find(&shared, &id).map(|a| Json(alarms::record(&shared.cloud, &a)))
}

/// `PATCH` with `{"alarmAcknowledged": true}` acknowledges; clearing is the system's.
pub async fn patch(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let change: AlarmModifications = parse_body(&body)?;
    if change.perceived_severity.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "perceivedSeverity: the O-Cloud clears its alarms itself (clearingType AUTOMATIC) when their cause is no longer observed",
        ));
    }
    match change.alarm_acknowledged {
        Some(true) => {}
        Some(false) => {
            return Err(Problem::bad_request(
                "alarmAcknowledged: an acknowledgement is not withdrawn; only true is accepted",
            ));
        }
        None => return Err(Problem::bad_request("alarmAcknowledged: required (true)")),
    }
    let alarm = find(&shared, &id)?;
    if !alarm.spec.acknowledged {
        let now = now();
        let written = update(&shared, &id, |spec| {
            spec.acknowledged = true;
            spec.acknowledged_time = Some(now.clone());
            spec.changed_time = now.clone();
        })
        .await?;
        fresh::written(&shared.stores.changed, &shared.stores.alarms, &written).await;
    }
    Ok(Json(serde_json::json!({"alarmAcknowledged": true})).into_response())
}

pub async fn service_configuration(
    State(shared): State<Shared>,
) -> Json<AlarmServiceConfiguration> {
    Json(AlarmServiceConfiguration {
        retention_period: shared.config.alarm_retention_days,
        extensions: Map::from_iter([(
            "maxAlarms".to_string(),
            Value::from(shared.config.alarm_history_max),
        )]),
    })
}

/// `PUT` and `PATCH` of the configuration: it is the O-Cloud admin's.
pub async fn service_configuration_refused() -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "the alarm service configuration is the O-Cloud admin's: the retention is set with --alarm-retention-days (chart value api.alarms.retentionDays)",
    )
}

pub async fn probable_causes(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, causes(&shared))
}

pub async fn probable_cause(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ProbableCause>, Problem> {
    causes(&shared)
        .into_iter()
        .find(|c| c.probable_cause_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("probable cause", &id))
}

pub async fn dictionaries(State(shared): State<Shared>, uri: Uri) -> Response {
    lists::respond(&shared, &uri, all_dictionaries(&shared))
}

pub async fn dictionary(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AlarmDictionary>, Problem> {
    all_dictionaries(&shared)
        .into_iter()
        .find(|d| d.alarm_dictionary_id == id)
        .map(Json)
        .ok_or_else(|| Problem::not_found("alarm dictionary", &id))
}

/// The dictionary of a resource type (the hosts').
pub async fn resource_type_dictionary(
    State(shared): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AlarmDictionary>, Problem> {
    if id != inventory::resource_type_id(&shared.cloud) {
        return Err(Problem::not_found("resource type", &id));
    }
    let host = alarms::dictionary_id(&shared.cloud, lcm_core::crd::AlarmEntity::Host);
    dictionary(State(shared), Path(host)).await
}

/// Alertmanager's webhook: a firing alert raises its alarm (once per occurrence, whichever
/// replica gets it and however often Alertmanager repeats it), a resolved one clears it.
pub async fn alertmanager(
    State(shared): State<Shared>,
    body: Bytes,
) -> Result<StatusCode, Problem> {
    let notification: AlertmanagerNotification = parse_body(&body)?;
    for alert in &notification.alerts {
        let id = alert.alarm_id(&shared.cloud);
        if alert.firing() {
            let mut alarm = alert
                .raised(&shared.cloud)
                .alarm(&id, &Time(alert.starts_at));
            alarm.spec.changed_time = now();
            match api(&shared).create(&PostParams::default(), &alarm).await {
                Ok(created) => {
                    fresh::written(&shared.stores.changed, &shared.stores.alarms, &created).await
                }
                Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                Err(other) => return Err(Problem::internal(other)),
            }
        } else {
            // Read from the API server, not the watch: another replica may have raised it a
            // moment ago.
            let now = now();
            let cleared = update(&shared, &id, |spec| {
                if spec.cleared_time.is_none() {
                    spec.cleared_time = Some(now.clone());
                    spec.changed_time = now.clone();
                }
            })
            .await;
            match cleared {
                Ok(written) => {
                    fresh::written(&shared.stores.changed, &shared.stores.alarms, &written).await
                }
                // Resolved before it was ever raised here: nothing to clear.
                Err(problem) if problem.status == StatusCode::NOT_FOUND => {}
                Err(problem) => return Err(problem),
            }
        }
    }
    Ok(StatusCode::OK)
}

/// Every alarm by its URL path: what alarm subscribers are told.
pub fn objects(shared: &Shared) -> BTreeMap<String, Value> {
    stored(shared)
        .iter()
        .filter_map(|a| {
            let record = serde_json::to_value(alarms::record(&shared.cloud, a)).ok()?;
            Some((format!("{ALARMS_PREFIX}/alarms/{}", a.name_any()), record))
        })
        .collect()
}

/// Raises and clears alarms while holding the notifier Lease: after every change the watches
/// bring, and every RESCAN (a stage's clock runs without one). Runs until the Lease is lost.
pub async fn raise(shared: &Shared) {
    shared.stores.listed.wait().await;
    let mut changes = shared.stores.changed.subscribe();
    loop {
        let started = Instant::now();
        changes.borrow_and_update();
        if let Err(error) = pass(shared).await {
            tracing::warn!(error = %error.detail, "raising or clearing alarms failed; retrying");
        }
        stores::next_pass(&mut changes, started, RESCAN).await;
    }
}

/// One pass: the stored alarms made level with what is observed, then retention.
async fn pass(shared: &Shared) -> Result<(), Problem> {
    let stored = stored(shared);
    let desired = observed(shared);
    let owned = |key: &str| !key.starts_with(ALERT_KEY_PREFIX);
    let now = now();
    for action in alarms::plan(&desired, &stored, owned) {
        let written = match &action {
            Action::Raise(raised) => {
                tracing::info!(alarm = %raised.key, "raising");
                let id = uuid::Uuid::new_v4().hyphenated().to_string();
                api(shared)
                    .create(&PostParams::default(), &raised.alarm(&id, &now))
                    .await
                    .map_err(Problem::internal)?
            }
            Action::Clear(name) => {
                tracing::info!(alarm = %name, "clearing");
                update(shared, name, |spec| {
                    spec.cleared_time = Some(now.clone());
                    spec.changed_time = now.clone();
                })
                .await?
            }
            Action::Change(name, raised) => {
                update(shared, name, |spec| {
                    spec.severity = raised.severity;
                    spec.extensions = raised.extensions.clone();
                    spec.changed_time = now.clone();
                })
                .await?
            }
        };
        // The next pass must see this write, or it would raise the same alarm again.
        fresh::written(&shared.stores.changed, &shared.stores.alarms, &written).await;
    }
    let retention = Duration::from_secs(shared.config.alarm_retention_days * 86_400);
    let cap = usize::try_from(shared.config.alarm_history_max).unwrap_or(usize::MAX);
    for name in alarms::expired(&stored, now.0, retention, cap) {
        match api(shared).delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(other) => return Err(Problem::internal(other)),
        }
    }
    Ok(())
}

/// The alarms what the watches show calls for.
fn observed(shared: &Shared) -> Vec<Raised> {
    let stores = &shared.stores;
    let hosts = stores.hosts();
    let inventory: Vec<String> = stores
        .inventory()
        .map(|i| i.hosts.into_iter().map(|h| h.id).collect())
        .unwrap_or_default();
    let (byo_hosts, jobs, machines, clusters) = (
        values(&stores.byo_hosts),
        values(&stores.jobs),
        values(&stores.machines),
        values(&stores.clusters),
    );
    let requests: Vec<_> = stores
        .requests
        .state()
        .iter()
        .map(|r| r.as_ref().clone())
        .collect();
    let mut raised = alarms::host_alarms(
        &shared.cloud,
        &HostObservations {
            hosts: &hosts,
            inventory: &inventory,
            byo_hosts: &byo_hosts,
            jobs: &jobs,
            machines: &machines,
        },
    );
    raised.extend(alarms::cluster_alarms(&ClusterObservations {
        requests: &requests,
        clusters: &clusters,
        machines: &machines,
        timeouts: &shared.config.timeouts,
        warning_fraction: shared.config.stage_timeout_warning_fraction,
        now: jiff::Timestamp::now(),
    }));
    raised
}

fn causes(shared: &Shared) -> Vec<ProbableCause> {
    alarms::probable_causes(&shared.cloud, &alarms::definitions(&stored(shared)))
}

fn all_dictionaries(shared: &Shared) -> Vec<AlarmDictionary> {
    alarms::dictionaries(&shared.cloud, &alarms::definitions(&stored(shared)))
}

fn stored(shared: &Shared) -> Vec<O2imsAlarm> {
    shared
        .stores
        .alarms
        .state()
        .iter()
        .map(|a| a.as_ref().clone())
        .collect()
}

fn find(shared: &Shared, id: &str) -> Result<O2imsAlarm, Problem> {
    shared
        .stores
        .alarms
        .get(&ObjectRef::new(id).within(&shared.config.runtime.pod_namespace))
        .map(|a| a.as_ref().clone())
        .ok_or_else(|| Problem::not_found("alarm", id))
}

/// Changes an alarm's spec, read fresh and replaced under its resourceVersion (retried when
/// another write came between).
async fn update(
    shared: &Shared,
    name: &str,
    change: impl Fn(&mut lcm_core::crd::O2imsAlarmSpec),
) -> Result<O2imsAlarm, Problem> {
    let api = api(shared);
    for _ in 0..3 {
        let mut alarm = match api.get_opt(name).await.map_err(Problem::internal)? {
            Some(alarm) => alarm,
            None => return Err(Problem::not_found("alarm", name)),
        };
        let before = alarm.spec.clone();
        change(&mut alarm.spec);
        if alarm.spec == before {
            return Ok(alarm);
        }
        match api.replace(name, &PostParams::default(), &alarm).await {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(other) => return Err(Problem::internal(other)),
        }
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        format!("alarm {name} kept changing while it was written; try again"),
    ))
}

fn api(shared: &Shared) -> Api<O2imsAlarm> {
    Api::namespaced(shared.client.clone(), &shared.config.runtime.pod_namespace)
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}
