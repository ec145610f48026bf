//! The O2IMS operator against the real control plane with the real Cluster API and BYOH
//! managers: one operator process for all tests here, each test with its own cluster, simulated
//! hosts and endpoint.

mod support;

use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::Kind;
use lcm_core::crd::{HostClaim, ProvisioningRequest, ProvisioningState, ResourceProvisioningPhase};
use serde_json::{Value, json};
use support::capi::{self, HOSTS_NAMESPACE};
use support::*;
use testcluster::OperatorProcess;
use tokio::sync::OnceCell;

struct Fixture {
    // Kept alive for every test of this binary.
    _operator: OperatorProcess,
    namespace: String,
    site: Site,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();
/// The operator's configuration for host preparation, which its Jobs must use.
const HOST_PREPARATION_IMAGE: &str = testcluster::HOST_PREPARATION_IMAGE;
const SSH_KEY_SECRET: &str = "site-ssh-key";

async fn setup() -> anyhow::Result<(Client, &'static Fixture)> {
    let cluster = testcluster::TestCluster::shared_with_managers().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let namespace = cluster.namespace("o2ims-system").await?.name().to_string();
            // The playbook host-preparation Jobs mount, as the chart installs it (a stand-in:
            // the simulated Jobs do not run it).
            let playbook = json!({"metadata": {"name": "o2ims-host-preparation-playbook"},
                "data": {"site.yaml": "# the chart's playbook\n"}});
            Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &namespace)
                .create(&PostParams::default(), &serde_json::from_value(playbook)?)
                .await?;
            let preparation = cluster.host_preparation_args();
            let mut args = vec!["--ssh-key-secret", SSH_KEY_SECRET];
            args.extend(preparation.iter().map(String::as_str));
            let operator = OperatorProcess::start(
                env!("CARGO_BIN_EXE_o2ims-operator"),
                cluster.kubeconfig_path(),
                &namespace,
                &args,
            )
            .await?;
            anyhow::Ok(Fixture {
                _operator: operator,
                site: Site::new(cluster, &namespace)?,
                namespace,
            })
        })
        .await?;
    Ok((client, fixture))
}

async fn update_parameters(
    client: &Client,
    request: &str,
    parameters: serde_json::Value,
) -> anyhow::Result<()> {
    let api = Api::<ProvisioningRequest>::all(client.clone());
    api.patch(
        request,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"templateParameters": parameters}})),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn creates_pinned_capi_objects_and_reports_progress() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    // The hosts take an hour to bootstrap: the control plane waits for kubeadm init.
    let s = f
        .site
        .scenario("shape")
        .with(|sim| sim.bootstrap_delay = Duration::from_secs(3600));
    s.register(&[1, 2, 3]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[2, 3]))).await?;
    let pr = wait_state(&client, &s.request, ProvisioningState::Progressing).await?;
    assert_eq!(
        condition(&pr, "ClusterResourcesCreated").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        condition(&pr, "HostsPrepared").map(|c| c.1),
        Some("HostsRegistered".into())
    );
    assert_eq!(
        pr.status.as_ref().and_then(|s| s.observed_generation),
        pr.metadata.generation
    );

    let ns = s.namespace();
    let template = capi::get(
        &client,
        Kind::ByoMachineTemplate,
        &ns,
        &format!("{}-md-0", s.name),
    )
    .await?
    .expect("template");
    let values = &template["spec"]["template"]["spec"]["selector"]["matchExpressions"][0]["values"];
    assert_eq!(
        values,
        &json!([s.host(2), s.host(3)]),
        "workers are pinned to their hosts"
    );
    let md = capi::get(
        &client,
        Kind::MachineDeployment,
        &ns,
        &format!("{}-md-0", s.name),
    )
    .await?
    .expect("md");
    assert_eq!(md["spec"]["replicas"], 2);
    for kind in [
        Kind::Cluster,
        Kind::ByoCluster,
        Kind::KubeadmControlPlane,
        Kind::MachineDeployment,
        Kind::KubeadmConfigTemplate,
    ] {
        let list = capi::api(&client, kind, &ns)
            .list(&ListParams::default())
            .await?;
        assert_eq!(list.items.len(), 1, "{kind:?}");
        let object = &list.items[0];
        assert_eq!(
            object.labels().get(lcm_core::PROVISIONING_REQUEST_LABEL),
            Some(&s.request),
            "{kind:?} is labelled"
        );
        let owner = object
            .owner_references()
            .iter()
            .find(|o| o.kind == "ProvisioningRequest")
            .expect("owned");
        assert_eq!(Some(&owner.uid), pr.metadata.uid.as_ref());
    }

    // Phase Provisioned is only the infrastructure: still progressing, waiting for kubeadm init.
    testcluster::wait_for("the Cluster's phase Provisioned", TIMEOUT, || async {
        let cluster = capi::get(&client, Kind::Cluster, &ns, &s.name).await?;
        Ok(cluster.filter(|c| c["status"]["phase"] == "Provisioned"))
    })
    .await?;
    let pr = wait_request(&client, &s.request, "the Cluster's phase to be seen", |r| {
        condition(r, "ControlPlaneReady").is_some_and(|c| c.1 == "Initializing")
    })
    .await?;
    assert_eq!(state(&pr), Some(ProvisioningState::Progressing));
    assert!(
        message(&pr).contains("waiting for kubeadm init"),
        "{}",
        message(&pr)
    );
    Ok(())
}

#[tokio::test]
async fn fulfilled_only_when_every_node_is_ready_with_real_ids() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("ready");
    let uids = s.register(&[1, 2]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[2]))).await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;
    let pr = wait_hosts_provisioned(&client, &s.request).await?;
    let status = pr.status.clone().expect("status");
    let cluster = capi::get(&client, Kind::Cluster, &s.namespace(), &s.name)
        .await?
        .expect("cluster");
    let set = status.provisioned_resource_set.expect("resource set");
    assert_eq!(
        set.o_cloud_node_cluster_id.as_deref(),
        cluster["metadata"]["uid"].as_str()
    );
    assert_eq!(
        set.o_cloud_infrastructure_resource_ids, uids,
        "the ByoHosts' UIDs"
    );
    let phases: Vec<_> = status
        .infrastructure_resource_provisioning_status
        .iter()
        .map(|h| h.resource_provisioning_phase)
        .collect();
    assert_eq!(phases, [ResourceProvisioningPhase::Provisioned; 2]);
    let secret = status.kubeconfig_secret.expect("kubeconfig secret");
    assert_eq!(
        (secret.name.as_str(), secret.namespace.as_str()),
        (
            format!("{}-kubeconfig", s.name).as_str(),
            s.namespace().as_str()
        )
    );
    assert!(message(&pr).contains(&format!(
        "kubeconfig in Secret {}/{}-kubeconfig",
        s.namespace(),
        s.name
    )));
    Ok(())
}

fn admission(client: &Client, kind: &str) -> Api<kube::api::DynamicObject> {
    let resource = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        kind,
    ));
    Api::all_with(client.clone(), &resource)
}

/// A ValidatingAdmissionPolicy refusing Clusters labelled for `cluster`, with its binding
/// (named `binding`), effective once a dry-run create of such a Cluster is refused.
async fn refuse_clusters(client: &Client, cluster: &str, binding: &str) -> anyhow::Result<()> {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": binding},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": ["cluster.x-k8s.io"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"], "resources": ["clusters"]}]},
            "validations": [{"expression": "false", "message": "Clusters are frozen by policy"}],
        },
    });
    let binding_object = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": binding},
        "spec": {"policyName": binding, "validationActions": ["Deny"],
            "matchResources": {"objectSelector": {"matchLabels": {lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: cluster}}}},
    });
    for object in [policy, binding_object] {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        admission(client, &kind)
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(object)?,
            )
            .await?;
    }
    let probe = json!({"apiVersion": lcm_core::capi::CLUSTER_API, "kind": "Cluster",
        "metadata": {"name": "probe", "namespace": "default",
            "labels": {lcm_core::capi::CAPI_CLUSTER_NAME_LABEL: cluster}}, "spec": {}});
    let clusters = capi::api(client, Kind::Cluster, "default");
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    testcluster::wait_for("the policy to take effect", TIMEOUT, || async {
        let created = clusters
            .create(&dry_run, &serde_json::from_value(probe.clone())?)
            .await;
        let refused = created.is_err_and(|e| e.to_string().contains("frozen by policy"));
        Ok(refused.then_some(()))
    })
    .await
}

#[tokio::test]
async fn an_object_the_api_server_refuses_fails_the_request_with_its_message() -> anyhow::Result<()>
{
    let (client, f) = setup().await?;
    let s = f.site.scenario("refused");
    let binding = format!("freeze-{}", s.name);
    refuse_clusters(&client, &s.name, &binding).await?;
    s.register(&[1]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[]))).await?;
    let pr = wait_request(&client, &s.request, "the refusal in the status", |r| {
        condition(r, "ClusterResourcesCreated").is_some_and(|c| c.1 == "ApplyRefused")
    })
    .await?;
    assert_eq!(state(&pr), Some(ProvisioningState::Failed));
    let text = message(&pr);
    assert!(
        text.contains("refused Cluster") && text.contains("Clusters are frozen by policy"),
        "{text}"
    );
    let events = Api::<k8s_openapi::api::events::v1::Event>::all(client.clone());
    testcluster::wait_for("a Warning Event saying why", TIMEOUT, || async {
        let listed = events.list(&ListParams::default()).await?.items;
        Ok(listed.into_iter().find(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(s.request.as_str())
                && e.type_.as_deref() == Some("Warning")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("frozen by policy"))
        }))
    })
    .await?;

    // Once the policy goes, the next try goes on.
    for kind in [
        "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy",
    ] {
        admission(&client, kind)
            .delete(&binding, &DeleteParams::default())
            .await?;
    }
    wait_state(&client, &s.request, ProvisioningState::Progressing).await?;
    Ok(())
}

#[tokio::test]
async fn invalid_requests_fail_and_create_nothing() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("invalid");
    let since = resource_version_now(&client).await?;
    create(&client, &request(&s.request, s.parameters(&[1, 2], &[3]))).await?;
    assert_eq!(
        states_since(&client, &s.request, &since, ProvisioningState::Failed).await?,
        [ProvisioningState::Failed],
        "judged in its first status: no other state before it"
    );
    let pr = wait_state(&client, &s.request, ProvisioningState::Failed).await?;
    let (status, reason, text) = condition(&pr, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert!(
        text.contains("templateParameters.hosts.controlPlane"),
        "{text}"
    );

    // A template version this O-Cloud does not provide, with otherwise valid parameters.
    let unknown = f.site.scenario("unknown-version");
    let mut pr = request(&unknown.request, unknown.parameters(&[1], &[]));
    pr.spec.template_version = "v9".into();
    create(&client, &pr).await?;
    let pr = wait_state(&client, &unknown.request, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&pr, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "InvalidParameters");
    assert!(
        text.contains("templateVersion") && text.contains("v9"),
        "{text}"
    );

    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    for namespace in [s.namespace(), unknown.namespace()] {
        assert!(
            namespaces.get_opt(&namespace).await?.is_none(),
            "nothing is created"
        );
    }

    // Deleting a request that created nothing finishes at once.
    Api::<ProvisioningRequest>::all(client.clone())
        .delete(&s.request, &DeleteParams::default())
        .await?;
    testcluster::wait_for("the request to be gone", TIMEOUT, || async {
        Ok(Api::<ProvisioningRequest>::all(client.clone())
            .get_opt(&s.request)
            .await?
            .is_none()
            .then_some(()))
    })
    .await
}

#[tokio::test]
async fn the_older_request_keeps_a_contested_host() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let first = f.site.scenario("first");
    let second = f.site.scenario("second");
    first.register(&[1]).await?;
    create(
        &client,
        &request(&first.request, first.parameters(&[1], &[])),
    )
    .await?;
    let mut contested = second.parameters(&[1], &[]);
    contested["hosts"]["controlPlane"] = json!([first.host(1)]);
    create(&client, &request(&second.request, contested)).await?;
    let loser = wait_state(&client, &second.request, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&loser, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(reason, "HostConflict");
    assert!(
        text.contains(&format!(
            "host `{}` is held by ProvisioningRequest {}",
            first.host(1),
            first.request
        )),
        "{text}"
    );
    let winner = wait_state(&client, &first.request, ProvisioningState::Progressing).await?;
    assert_eq!(
        condition(&winner, "ProvisioningRequestValidated").map(|c| c.0),
        Some("True".into())
    );
    Ok(())
}

#[tokio::test]
async fn host_preparation_runs_a_job_for_exactly_the_missing_hosts() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    // Preparing host 3 fails, as Ansible does on a host it cannot set up.
    let s = f.site.scenario("prep");
    let failing = s.host(3);
    let s = s.with(|sim| sim.faults.fail_job_for = [failing].into());
    s.register(&[1]).await?;
    // How the hosts are reached is the O-Cloud's to say: its host inventory, not the request.
    let hosts: Vec<_> = [1, 2, 3].iter().map(|i| s.inventory_host(*i)).collect();
    add_to_host_inventory(&client, &f.namespace, &hosts).await?;
    let mut parameters = s.parameters(&[1], &[2, 3]);
    parameters["hostPreparation"] = json!("auto");
    create(&client, &request(&s.request, parameters)).await?;
    let selector = format!("{}={}", lcm_core::PROVISIONING_REQUEST_LABEL, s.request);

    // First BYOH issues a bootstrap kubeconfig for the API server and CA the operator is given.
    let cluster = testcluster::TestCluster::shared_with_managers().await?;
    let asked = issued_bootstrap_kubeconfig(&client, &f.namespace, &s.request).await?;
    assert_eq!(
        asked["spec"]["apiserver"].as_str(),
        Some(cluster.api_server_url().as_str())
    );
    let ca: k8s_openapi::ByteString =
        serde_json::from_value(asked["spec"]["certificate-authority-data"].clone())?;
    assert_eq!(
        ca.0,
        std::fs::read(cluster.ca_file())?,
        "the CA of the API server"
    );

    let pr = wait_request(&client, &s.request, "host preparation to start", |r| {
        condition(r, "HostsPrepared").is_some_and(|c| c.1 == "Preparing")
    })
    .await?;
    assert_eq!(state(&pr), Some(ProvisioningState::Progressing));
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), &f.namespace);
    let job = jobs
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .remove(0);
    let pod = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod spec");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some(HOST_PREPARATION_IMAGE)
    );
    let secrets: Vec<String> = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.secret?.secret_name)
        .collect();
    assert!(secrets.iter().any(|s| s == SSH_KEY_SECRET), "{secrets:?}");
    // The issued kubeconfig, in a Secret of the Job's own.
    assert!(secrets.contains(&job.name_any()), "{secrets:?}");
    let issued =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &f.namespace)
            .get(&job.name_any())
            .await?;
    let data = issued.data.unwrap_or_default();
    let kubeconfig = String::from_utf8(data["bootstrap-kubeconfig"].0.clone())?;
    assert!(
        kubeconfig.contains(asked["spec"]["apiserver"].as_str().unwrap_or("?")),
        "{kubeconfig}"
    );
    let config_maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &f.namespace);
    let mut data = config_maps.get(&job.name_any()).await?.data.expect("data");
    let inventory = data.remove("inventory.yaml").expect("inventory");
    let inventory: serde_json::Value = lcm_core::yaml::from_str(&inventory)?;
    let hosts = inventory["all"]["children"][lcm_core::ansible::GROUP]["hosts"]
        .as_object()
        .expect("hosts");
    let mut prepared: Vec<&String> = hosts.keys().collect();
    prepared.sort();
    assert_eq!(
        prepared,
        [&s.host(2), &s.host(3)],
        "only hosts without a ByoHost are prepared"
    );
    // As the host inventory says (its default SSH user), each host verified against its key.
    assert_eq!(hosts[&s.host(2)]["ansible_host"], "192.0.2.2");
    assert_eq!(hosts[&s.host(2)]["ansible_user"], "ubuntu");
    assert_eq!(hosts[&s.host(3)]["byoh_hostname"], json!(s.hostname(3)));
    assert_eq!(
        data.remove("known_hosts").as_deref(),
        Some(format!("192.0.2.2 {HOST_KEY}\n192.0.2.3 {HOST_KEY}\n").as_str())
    );
    let env: Vec<(String, Option<String>)> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    for (name, value) in [
        ("ANSIBLE_HOST_KEY_CHECKING", "True"),
        (
            "ANSIBLE_SSH_ARGS",
            "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/lcm/inventory/known_hosts",
        ),
    ] {
        assert!(
            env.contains(&(name.into(), Some(value.into()))),
            "{name}={value} in {env:?}"
        );
    }
    assert!(
        capi::get(&client, Kind::Cluster, &s.namespace(), &s.name)
            .await?
            .is_none(),
        "CAPI objects wait for the hosts"
    );

    // One host registers while the Job runs: the same Job is followed, no second one is made.
    s.register(&[2]).await?;
    wait_request(
        &client,
        &s.request,
        "the remaining host to be awaited",
        |r| {
            condition(r, "HostsPrepared")
                .is_some_and(|c| c.2.ends_with(&format!("is preparing {}", s.host(3))))
        },
    )
    .await?;
    assert_eq!(
        jobs.list(&ListParams::default().labels(&selector))
            .await?
            .items
            .len(),
        1
    );

    // The Job's pod waits for the SSH key it mounts; once it exists, the Job runs and fails
    // preparing host 3, as the Job controller reports an exhausted backoff limit.
    let key = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": SSH_KEY_SECRET, "namespace": f.namespace},
        "stringData": {"ssh-privatekey": "stand-in: the simulated hosts take no SSH connection\n"}});
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &f.namespace)
        .create(&PostParams::default(), &serde_json::from_value(key)?)
        .await?;
    let pr = wait_state(&client, &s.request, ProvisioningState::Failed).await?;
    let (_, reason, text) = condition(&pr, "HostsPrepared").expect("condition");
    assert_eq!(reason, "HostPreparationFailed");
    assert!(text.contains("BackoffLimitExceeded"), "{text}");

    // Recovery: the hosts are registered by hand and the failed Job deleted.
    s.register(&[2, 3]).await?;
    jobs.delete(&job.name_any(), &DeleteParams::background())
        .await?;
    let pr = wait_state(&client, &s.request, ProvisioningState::Progressing).await?;
    assert_eq!(
        condition(&pr, "HostsPrepared").map(|c| c.1),
        Some("HostsRegistered".into())
    );
    Ok(())
}

/// Request-supplied host access would aim the fleet's SSH key where the request says: refused by
/// default, even for hosts the host inventory has, and nothing is created.
#[tokio::test]
async fn host_access_in_a_request_is_refused_by_default() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("given-access");
    add_to_host_inventory(&client, &f.namespace, &[s.inventory_host(1)]).await?;
    let mut parameters = s.parameters(&[1], &[]);
    parameters["hostPreparation"] = json!("auto");
    parameters["hostAccess"] = json!([{"id": s.host(1), "address": "198.51.100.66", "sshUser": "ubuntu", "sshHostKeys": [HOST_KEY]}]);
    create(&client, &request(&s.request, parameters)).await?;
    let pr = wait_state(&client, &s.request, ProvisioningState::Failed).await?;
    let (status, reason, text) = condition(&pr, "ProvisioningRequestValidated").expect("condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidParameters")
    );
    assert!(
        text.starts_with("templateParameters.hostAccess: ")
            && text.contains("not allowed on this O-Cloud")
            && text.contains(&format!("ConfigMap {}/{HOST_INVENTORY}", f.namespace))
            && text.contains("--allow-request-host-access"),
        "{text}"
    );
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    assert!(
        namespaces.get_opt(&s.namespace()).await?.is_none(),
        "nothing is created"
    );
    assert_no_preparation(&client, f, &s).await
}

/// A host the host inventory lacks, or has without a pinned SSH host key, is not prepared: the
/// request fails naming the host and what to add, and no Job runs.
#[tokio::test]
async fn hosts_the_inventory_does_not_pin_are_not_prepared() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let unknown = f.site.scenario("unknown-host");
    let unpinned = f.site.scenario("unpinned");
    let mut host = unpinned.inventory_host(1);
    host.as_object_mut().expect("host").remove("sshHostKeys");
    add_to_host_inventory(&client, &f.namespace, &[host]).await?;
    let inventory = format!("ConfigMap {}/{HOST_INVENTORY} (input.json)", f.namespace);
    for (s, expected) in [
        (
            &unknown,
            format!(
                "{} need preparation but are not in the host inventory, {inventory}",
                unknown.host(1)
            ),
        ),
        (
            &unpinned,
            format!(
                "no SSH host key is pinned for {}: give their sshHostKeys",
                unpinned.host(1)
            ),
        ),
    ] {
        let mut parameters = s.parameters(&[1], &[]);
        parameters["hostPreparation"] = json!("auto");
        create(&client, &request(&s.request, parameters)).await?;
        let pr = wait_state(&client, &s.request, ProvisioningState::Failed).await?;
        let (status, reason, text) = condition(&pr, "HostsPrepared").expect("condition");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "HostPreparationFailed")
        );
        assert!(
            text.contains(&expected) && text.contains(&inventory),
            "{text}"
        );
        assert_no_preparation(&client, f, s).await?;
    }
    Ok(())
}

/// Nothing prepares the hosts of `s`: no Job, inventory or bootstrap kubeconfig in the operator's
/// namespace.
async fn assert_no_preparation(client: &Client, f: &Fixture, s: &Scenario) -> anyhow::Result<()> {
    let selector = format!("{}={}", lcm_core::PROVISIONING_REQUEST_LABEL, s.request);
    let params = ListParams::default().labels(&selector);
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), &f.namespace);
    let config_maps =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &f.namespace);
    let bootstrap = capi::api(client, Kind::BootstrapKubeconfig, &f.namespace);
    assert!(jobs.list(&params).await?.items.is_empty(), "no Job");
    assert!(
        config_maps.list(&params).await?.items.is_empty(),
        "no inventory"
    );
    assert!(
        bootstrap.list(&params).await?.items.is_empty(),
        "no bootstrap kubeconfig"
    );
    Ok(())
}

#[tokio::test]
async fn workers_scale_out_and_in_and_control_plane_changes_are_refused() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("scale");
    s.register(&[1, 2, 3, 4]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[2, 3]))).await?;
    wait_state(&client, &s.request, ProvisioningState::Progressing).await?;

    // While provisioning, a change is refused, not half-applied.
    update_parameters(&client, &s.request, s.parameters(&[1], &[2, 3, 4])).await?;
    let pr = wait_request(&client, &s.request, "the change to be refused", |r| {
        condition(r, "ProvisioningRequestValidated").is_some_and(|c| c.1 == "ChangeRefused")
    })
    .await?;
    assert!(
        condition(&pr, "ProvisioningRequestValidated")
            .expect("c")
            .2
            .contains("change it once it is fulfilled")
    );
    let md_name = format!("{}-md-0", s.name);
    let md = capi::get(&client, Kind::MachineDeployment, &s.namespace(), &md_name)
        .await?
        .expect("md");
    assert_eq!(md["spec"]["replicas"], 2);

    // Once fulfilled, the same change applies: scale out to three workers.
    let md = testcluster::wait_for("the MachineDeployment to scale out", TIMEOUT, || async {
        let md = capi::get(&client, Kind::MachineDeployment, &s.namespace(), &md_name).await?;
        Ok(md.filter(|m| m["spec"]["replicas"] == 3))
    })
    .await?;
    assert_eq!(md["spec"]["replicas"], 3);
    let template = capi::get(&client, Kind::ByoMachineTemplate, &s.namespace(), &md_name)
        .await?
        .expect("template");
    assert_eq!(
        template["spec"]["template"]["spec"]["selector"]["matchExpressions"][0]["values"],
        json!([s.host(2), s.host(3), s.host(4)])
    );
    wait_state(&client, &s.request, ProvisioningState::Progressing).await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;

    // Scale in: exactly the removed host's machine is marked for deletion first, so the
    // MachineSet deletes that one.
    let removed = capi::machine_on(&client, &s.hostname(3)).await?;
    let kept = [
        capi::machine_on(&client, &s.hostname(2)).await?,
        capi::machine_on(&client, &s.hostname(4)).await?,
    ];
    let since = capi::resource_version(&client, Kind::Machine, &s.namespace()).await?;
    update_parameters(&client, &s.request, s.parameters(&[1], &[2, 4])).await?;
    let md = testcluster::wait_for("the MachineDeployment to scale in", TIMEOUT, || async {
        let md = capi::get(&client, Kind::MachineDeployment, &s.namespace(), &md_name).await?;
        Ok(md.filter(|m| m["spec"]["replicas"] == 2))
    })
    .await?;
    assert_eq!(md["spec"]["replicas"], 2);
    let template = capi::get(&client, Kind::ByoMachineTemplate, &s.namespace(), &md_name)
        .await?
        .expect("template");
    assert_eq!(
        template["spec"]["template"]["spec"]["selector"]["matchExpressions"][0]["values"],
        json!([s.host(2), s.host(4)]),
        "the removed host can no longer be chosen"
    );
    let marks =
        capi::deletion_marks_until_gone(&client, &s.namespace(), &since, &removed, TIMEOUT).await?;
    assert!(marks[&removed].contains(&json!("true")), "{marks:?}");
    for machine in &kept {
        assert!(
            marks.get(machine).into_iter().flatten().all(Value::is_null),
            "machine {machine} is kept: {marks:?}"
        );
        let live = capi::get(&client, Kind::Machine, &s.namespace(), machine).await?;
        assert!(
            live.is_some_and(|m| m["metadata"]["deletionTimestamp"].is_null()),
            "machine {machine} is kept"
        );
    }

    // Control-plane changes are refused and change nothing.
    update_parameters(&client, &s.request, s.parameters(&[3], &[2, 4])).await?;
    let pr = wait_request(
        &client,
        &s.request,
        "the control-plane change to be refused",
        |r| {
            condition(r, "ProvisioningRequestValidated")
                .is_some_and(|c| c.2.contains("hosts.controlPlane cannot change"))
        },
    )
    .await?;
    assert_eq!(
        condition(&pr, "ProvisioningRequestValidated").map(|c| c.1),
        Some("ChangeRefused".into())
    );
    let kcp = capi::get(
        &client,
        Kind::ByoMachineTemplate,
        &s.namespace(),
        &format!("{}-control-plane", s.name),
    )
    .await?
    .expect("t");
    assert_eq!(
        kcp["spec"]["template"]["spec"]["selector"]["matchExpressions"][0]["values"],
        json!([s.host(1)])
    );
    Ok(())
}

#[tokio::test]
async fn a_single_control_plane_upgrade_is_refused_and_a_newer_bootstrap_does_not_roll_it()
-> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("single");
    s.register(&[1, 2, 3]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[2]))).await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;
    let (ns, kcp, md) = (
        s.namespace(),
        format!("{}-control-plane", s.name),
        format!("{}-md-0", s.name),
    );

    // As an older release of the operator left it: another bootstrap than this one generates,
    // in the join configuration (which the one machine, made by kubeadm init, is not rolled
    // for: the KubeadmControlPlane compares a machine only with what it was made from).
    let older = json!({"nodeRegistration": {"kubeletExtraArgs": {"node-labels": "release=older"}}});
    capi::api(&client, Kind::KubeadmControlPlane, &ns)
        .patch(
            &kcp,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kubeadmConfigSpec": {"joinConfiguration": older}}})),
        )
        .await?;
    // A scale applies every object again; the control plane keeps its bootstrap (no rollout).
    update_parameters(&client, &s.request, s.parameters(&[1], &[2, 3])).await?;
    testcluster::wait_for("the MachineDeployment to scale out", TIMEOUT, || async {
        let md = capi::get(&client, Kind::MachineDeployment, &ns, &md).await?;
        Ok(md.filter(|m| m["spec"]["replicas"] == 2))
    })
    .await?;
    let live = capi::get(&client, Kind::KubeadmControlPlane, &ns, &kcp)
        .await?
        .expect("kcp");
    assert_eq!(
        live["spec"]["kubeadmConfigSpec"]["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"],
        older["nodeRegistration"]["kubeletExtraArgs"]
    );
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;

    // One control-plane host has no spare to surge onto: refused up front, nothing touched.
    let mut upgraded = s.parameters(&[1], &[2, 3]);
    upgraded["kubernetesVersion"] = json!("v1.33.5");
    update_parameters(&client, &s.request, upgraded).await?;
    let pr = wait_request(&client, &s.request, "the upgrade to be refused", |r| {
        condition(r, "ProvisioningRequestValidated")
            .is_some_and(|c| c.2.contains("cannot be upgraded in place"))
    })
    .await?;
    assert_eq!(state(&pr), Some(ProvisioningState::Failed));
    let live = capi::get(&client, Kind::KubeadmControlPlane, &ns, &kcp)
        .await?
        .expect("kcp");
    assert_eq!(live["spec"]["version"], "v1.32.9");
    Ok(())
}

#[tokio::test]
async fn upgrades_roll_the_control_plane_then_the_workers() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("upgrade");
    s.register(&[1, 2, 3, 4]).await?;
    create(
        &client,
        &request(&s.request, s.parameters(&[1, 3, 4], &[2])),
    )
    .await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;

    let mut upgraded = s.parameters(&[1, 3, 4], &[2]);
    upgraded["kubernetesVersion"] = json!("v1.33.5");
    update_parameters(&client, &s.request, upgraded.clone()).await?;
    let (ns, kcp, md) = (
        s.namespace(),
        format!("{}-control-plane", s.name),
        format!("{}-md-0", s.name),
    );
    testcluster::wait_for(
        "the control plane to be asked for v1.33.5",
        TIMEOUT,
        || async {
            Ok(capi::get(&client, Kind::KubeadmControlPlane, &ns, &kcp)
                .await?
                .filter(|o| o["spec"]["version"] == "v1.33.5"))
        },
    )
    .await?;
    let workers = capi::get(&client, Kind::MachineDeployment, &ns, &md)
        .await?
        .expect("md");
    assert_eq!(
        workers["spec"]["template"]["spec"]["version"], "v1.32.9",
        "workers wait for the control plane"
    );
    let pr = wait_request(&client, &s.request, "the rollout to be reported", |r| {
        message(r).contains("rolling out v1.33.5")
    })
    .await?;
    assert_eq!(state(&pr), Some(ProvisioningState::Progressing));

    // The control plane reports the new version: now the workers roll.
    testcluster::wait_for("the control plane to report v1.33.5", TIMEOUT, || async {
        Ok(capi::get(&client, Kind::KubeadmControlPlane, &ns, &kcp)
            .await?
            .filter(|o| o["status"]["version"] == "v1.33.5"))
    })
    .await?;
    testcluster::wait_for("the workers to be asked for v1.33.5", TIMEOUT, || async {
        let md = capi::get(&client, Kind::MachineDeployment, &ns, &md).await?;
        Ok(md.filter(|o| o["spec"]["template"]["spec"]["version"] == "v1.33.5"))
    })
    .await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;

    // Downgrades are refused.
    update_parameters(&client, &s.request, s.parameters(&[1, 3, 4], &[2])).await?;
    let pr = wait_request(&client, &s.request, "the downgrade to be refused", |r| {
        condition(r, "ProvisioningRequestValidated")
            .is_some_and(|c| c.2.contains("downgrade from v1.33.5 to v1.32.9"))
    })
    .await?;
    // The spec is not what runs, so the request does not read fulfilled.
    assert_eq!(state(&pr), Some(ProvisioningState::Failed));
    assert!(
        message(&pr).contains("keeps running as it was"),
        "{}",
        message(&pr)
    );
    Ok(())
}

#[tokio::test]
async fn deletion_removes_the_cluster_first_then_the_rest() -> anyhow::Result<()> {
    let (client, f) = setup().await?;
    let s = f.site.scenario("delete");
    s.register(&[1]).await?;
    create(&client, &request(&s.request, s.parameters(&[1], &[]))).await?;
    wait_state(&client, &s.request, ProvisioningState::Fulfilled).await?;
    // Cluster API holds a finalizer on the Cluster until it has torn the machines down; paused,
    // it tears nothing down yet.
    let ns = s.namespace();
    pause(&client, &ns, &s.name, true).await?;

    Api::<ProvisioningRequest>::all(client.clone())
        .delete(&s.request, &DeleteParams::default())
        .await?;
    let pr = wait_state(&client, &s.request, ProvisioningState::Deleting).await?;
    assert!(
        message(&pr).contains("waiting for Cluster API to tear down"),
        "{}",
        message(&pr)
    );
    let cluster = capi::get(&client, Kind::Cluster, &ns, &s.name)
        .await?
        .expect("still there");
    assert!(
        !cluster["metadata"]["deletionTimestamp"].is_null(),
        "the Cluster is deleted first"
    );
    let kcp = capi::get(
        &client,
        Kind::KubeadmControlPlane,
        &ns,
        &format!("{}-control-plane", s.name),
    )
    .await?;
    assert!(
        kcp.is_some_and(|k| k["metadata"]["deletionTimestamp"].is_null()),
        "the rest waits for the Cluster"
    );

    // The Cluster goes while BYOH has not released the host yet (its agent is down): the
    // request keeps holding it.
    s.stop_agents().await;
    pause(&client, &ns, &s.name, false).await?;
    let claims = Api::<HostClaim>::all(client.clone());
    let waiting = wait_request(&client, &s.request, "the request to wait for BYOH", |r| {
        message(r).contains(&format!("waiting for BYOH to release hosts {}", s.host(1)))
    })
    .await?;
    assert_eq!(state(&waiting), Some(ProvisioningState::Deleting));
    assert!(
        claims.get_opt(&s.host(1)).await?.is_some(),
        "the host stays claimed until BYOH releases it"
    );
    s.start_agents().await?;
    testcluster::wait_for(
        "the request and its namespace to be gone",
        TIMEOUT,
        || async {
            let request = Api::<ProvisioningRequest>::all(client.clone())
                .get_opt(&s.request)
                .await?;
            let namespace = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
                .get_opt(&ns)
                .await?;
            Ok((request.is_none() && namespace.is_none()).then_some(()))
        },
    )
    .await?;
    let host = capi::get(&client, Kind::ByoHost, HOSTS_NAMESPACE, &s.hostname(1)).await?;
    assert!(host.is_some(), "hosts are not the operator's to delete");
    assert!(
        claims.get_opt(&s.host(1)).await?.is_none(),
        "the released host is back in the ledger"
    );
    Ok(())
}
