//! The host ledger against the real control plane with the real Cluster API and BYOH managers:
//! requests racing for hosts, decided by two operator processes that both act (no leader
//! election), never share a host; a running cluster keeps its hosts whatever happens to its spec.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::try_join_all;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{HostClaim, ProvisioningRequest, ProvisioningState};
use serde_json::{Value, json};
use support::capi;
use support::*;
use testcluster::OperatorProcess;
use tokio::sync::OnceCell;

/// Two O2IMS operators without leader election, both reconciling every request.
struct Fixture {
    _operators: [OperatorProcess; 2],
    site: Site,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn setup() -> anyhow::Result<(Client, &'static Site)> {
    let cluster = testcluster::TestCluster::shared_with_managers().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("o2ims-system").await?.name().to_string();
            let start = || {
                OperatorProcess::start(
                    env!("CARGO_BIN_EXE_o2ims-operator"),
                    cluster.kubeconfig_path(),
                    &namespace,
                    &[],
                )
            };
            anyhow::Ok(Fixture {
                _operators: [start().await?, start().await?],
                site: Site::new(cluster, &namespace)?,
            })
        })
        .await?;
    Ok((client, &fixture.site))
}

/// Whether a request has settled: failed, or its Cluster API objects exist.
fn settled(request: &ProvisioningRequest) -> bool {
    state(request) == Some(ProvisioningState::Failed)
        || condition(request, "ClusterResourcesCreated")
            .is_some_and(|(status, _, _)| status == "True")
}

/// The hosts the ByoMachineTemplates of `namespace` select.
async fn selected_hosts(client: &Client, namespace: &str) -> anyhow::Result<Vec<String>> {
    let templates = capi::api(client, Kind::ByoMachineTemplate, namespace)
        .list(&ListParams::default())
        .await?;
    let mut hosts = Vec::new();
    for template in templates {
        hosts.extend(capi::selected_hosts(&serde_json::to_value(template)?));
    }
    Ok(hosts)
}

/// 20 requests for 12 hosts, each wanting two that others want too, created at once: every
/// host is in at most one cluster's ByoMachineTemplates, its HostClaim names that cluster's
/// request, and every other request failed naming a host it wanted and the request holding it.
#[tokio::test]
async fn twenty_requests_racing_for_twelve_hosts_never_share_one() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let pool = site.scenario("pool");
    pool.register(&(1..=12).collect::<Vec<_>>()).await?;
    let clusters: Vec<Scenario> = (0..20).map(|_| site.scenario("race")).collect();
    let wanted = |k: usize| [pool.host(k % 12 + 1), pool.host((k * 5 + 3) % 12 + 1)];
    let requests: Vec<ProvisioningRequest> = clusters
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let [control_plane, worker] = wanted(k);
            let mut parameters = c.parameters(&[], &[]);
            parameters["hosts"] = json!({"controlPlane": [control_plane], "workers": [worker]});
            request(&c.request, parameters)
        })
        .collect();
    try_join_all(requests.iter().map(|r| create(&client, r))).await?;

    let api = Api::<ProvisioningRequest>::all(client.clone());
    let claims_api = Api::<HostClaim>::all(client.clone());
    let names: BTreeSet<String> = clusters.iter().map(|c| c.request.clone()).collect();
    // Settled: every request failed or created its cluster, and no failed one holds a claim
    // (the other operator may be a step behind in withdrawing one).
    let (settled_requests, claims) = testcluster::wait_for(
        "every racing request to settle",
        Duration::from_secs(120),
        || async {
            let all: Vec<ProvisioningRequest> = api
                .list(&ListParams::default())
                .await?
                .into_iter()
                .filter(|r| names.contains(&r.name_any()))
                .collect();
            let claims: BTreeMap<String, HostClaim> = claims_api
                .list(&ListParams::default())
                .await?
                .into_iter()
                .filter(|c| c.spec.host_id.starts_with(&pool.name))
                .map(|c| (c.spec.host_id.clone(), c))
                .collect();
            let failed_holds = claims.values().any(|c| {
                all.iter().any(|r| {
                    r.name_any() == c.spec.request_name
                        && state(r) == Some(ProvisioningState::Failed)
                })
            });
            let done = all.len() == names.len() && all.iter().all(settled) && !failed_holds;
            Ok(done.then_some((all, claims)))
        },
    )
    .await?;

    let mut used_by: BTreeMap<String, String> = BTreeMap::new();
    let mut winners = 0;
    for (k, (c, r)) in clusters.iter().zip(&requests).enumerate() {
        let live = settled_requests
            .iter()
            .find(|l| l.name_any() == r.name_any())
            .expect("listed");
        let wants = wanted(k);
        if state(live) == Some(ProvisioningState::Failed) {
            let (_, reason, text) =
                condition(live, "ProvisioningRequestValidated").expect("validated condition");
            assert_eq!(reason, "HostConflict", "{}: {text}", c.request);
            let named = wants
                .iter()
                .find(|h| text.contains(&format!("host `{h}` is held by ProvisioningRequest")))
                .unwrap_or_else(|| panic!("{} names no host it wanted: {text}", c.request));
            let holder = &claims.get(named).expect("the named host is claimed").spec;
            assert!(
                text.contains(&format!("ProvisioningRequest {} ", holder.request_name)),
                "{} does not name {}'s holder {}: {text}",
                c.request,
                named,
                holder.request_name
            );
            assert!(
                selected_hosts(&client, &c.namespace()).await?.is_empty(),
                "{} failed but its cluster selects hosts",
                c.request
            );
            continue;
        }
        winners += 1;
        for host in selected_hosts(&client, &c.namespace()).await? {
            let claim = claims.get(&host).expect("a selected host is claimed");
            assert_eq!(claim.spec.request_name, c.request, "claim of {host}");
            assert!(
                claim.spec.in_use,
                "{host} is selected but its claim is not in use"
            );
            if let Some(other) = used_by.insert(host.clone(), c.request.clone()) {
                panic!(
                    "{host} is selected by the clusters of {other} and {}",
                    c.request
                );
            }
        }
    }
    assert!(
        winners >= 6,
        "12 hosts, two per cluster: only {winners} clusters won"
    );
    for claim in claims
        .values()
        .filter(|c| c.spec.host_id.starts_with(&pool.name))
    {
        assert_eq!(
            used_by.get(&claim.spec.host_id),
            Some(&claim.spec.request_name),
            "HostClaim of {} is held by a request whose cluster does not select it",
            claim.spec.host_id
        );
    }
    Ok(())
}

/// A fulfilled cluster whose spec is then edited into something that does not parse keeps its
/// hosts: a request for one of them fails naming the running cluster's request.
#[tokio::test]
async fn a_running_cluster_whose_spec_breaks_keeps_its_hosts() -> anyhow::Result<()> {
    let (client, site) = setup().await?;
    let running = site.scenario("keeps");
    running.register(&[1, 2]).await?;
    create(
        &client,
        &request(&running.request, running.parameters(&[1], &[2])),
    )
    .await?;
    wait_state(&client, &running.request, ProvisioningState::Fulfilled).await?;

    let broken = json!({"spec": {"templateParameters": {"clusterName": 7, "hosts": "none"}}});
    Api::<ProvisioningRequest>::all(client.clone())
        .patch(
            &running.request,
            &PatchParams::default(),
            &Patch::Merge(&broken),
        )
        .await?;
    wait_request(
        &client,
        &running.request,
        "the broken spec to be refused",
        |r| {
            condition(r, "ProvisioningRequestValidated")
                .is_some_and(|(_, reason, _)| reason == "ChangeRefused")
        },
    )
    .await?;

    let other = site.scenario("wants");
    let mut parameters: Value = other.parameters(&[], &[]);
    parameters["hosts"] = json!({"controlPlane": [running.host(2)], "workers": []});
    create(&client, &request(&other.request, parameters)).await?;
    let failed = wait_state(&client, &other.request, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&failed, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "HostConflict", "{text}");
    assert!(
        text.contains(&format!(
            "host `{}` is held by ProvisioningRequest {} ",
            running.host(2),
            running.request
        )),
        "{text}"
    );
    assert!(
        selected_hosts(&client, &other.namespace())
            .await?
            .is_empty()
    );
    Ok(())
}
