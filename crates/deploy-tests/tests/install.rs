//! The install against the real control plane (RBAC enforced, the CRDs installed) with the real
//! Cluster API and BYOH managers: Helm installs the chart, every rendered object is accepted with
//! strict field validation, and both operators do their whole job, and the O2ims API serves it,
//! with nothing but the chart's ServiceAccounts and RBAC, on simulated hosts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use deploy_tests::{
    API_EXTERNAL_URL, api_for, apply, expect_refused, helm_template, kustomize, operator_binary,
    run,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use kube::{Client, ResourceExt};
use lcm_core::PROVISIONING_REQUEST_LABEL;
use lcm_core::capi::Kind;
use lcm_core::crd::{
    FocomProvisioningRequest, HostClaim, O2imsSubscription, O2imsSubscriptionSpec,
    ProvisioningRequest, ProvisioningRequestSpec, ProvisioningState, SubscribedApi, TemplateInfo,
};
use serde_json::{Value, json};
use testcluster::capi::{self, HOSTS_NAMESPACE};
use testcluster::{OperatorProcess, TestCluster, wait_for};

/// Long enough for a loaded CI machine and for Cluster API's ClusterCache, which retries a new
/// workload cluster it could not reach 30 s later.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Both tests install the chart's cluster-scoped RBAC, whose names are fixed: one at a time.
static CLUSTER_SCOPED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The release as mgmt.sh installs it.
const RELEASE: &str = "oran-lcm";
const RELEASE_NAMESPACE: &str = "oran-lcm-system";

/// mgmt.sh's `helm upgrade --install` (without `--wait`: no kubelet runs Pods here) installs the
/// chart; every rendered object passes a server-side dry run with strict field validation;
/// `helm uninstall` removes the release and keeps its namespaces; the dev overlay's objects pass
/// the dry run too.
#[tokio::test]
async fn helm_installs_the_chart_and_every_object_passes_strict_validation() -> anyhow::Result<()> {
    let _alone = CLUSTER_SCOPED.lock().await;
    let cluster = TestCluster::shared_with_managers().await?;
    let client = cluster.admin_client()?;
    let namespaces = Api::<Namespace>::all(client.clone());
    let created = ["focom-system", "o2ims-system", RELEASE_NAMESPACE];
    for name in created {
        ensure!(
            namespaces.get_opt(name).await?.is_none(),
            "namespace {name} exists: this test needs a cluster without an install"
        );
    }
    let kubeconfig = cluster.kubeconfig_path().to_str().context("kubeconfig")?;
    let helm = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kubeconfig, "--namespace", RELEASE_NAMESPACE]);
        run(&deploy_tests::helm()?, &all)
    };
    let chart_dir = deploy_tests::chart_dir();
    let chart_dir = chart_dir.to_str().context("chart path")?;
    let result = async {
        let inventory = "inventory.json=input.json";
        helm(&[
            "upgrade",
            "--install",
            RELEASE,
            chart_dir,
            "--create-namespace",
            "--set-file",
            inventory,
            "--set",
            &format!("api.externalUrl={API_EXTERNAL_URL}"),
        ])?;
        for (namespace, name) in [
            ("focom-system", "focom-operator"),
            ("o2ims-system", "o2ims-operator"),
            ("o2ims-system", "o2ims-api"),
        ] {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .get(name)
                .await?;
        }

        let chart = helm_template(&["--set-file", inventory])?;
        for object in &chart {
            apply(&client, object, true).await?;
        }
        // A misplaced field is refused, so the dry runs can fail.
        let mut wrong = deploy_tests::named(&chart, "Deployment", "o2ims-operator")?.clone();
        wrong["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = json!({});
        let refused = apply(&client, &wrong, true)
            .await
            .err()
            .context("a misplaced field was accepted")?;
        ensure!(
            format!("{refused:#}").contains(".livenessProbes: field not declared in schema"),
            "{refused:#}"
        );

        helm(&["uninstall", RELEASE])?;
        let deployments = Api::<Deployment>::namespaced(client.clone(), "o2ims-system");
        wait_for(
            "helm uninstall to remove the Deployments",
            TIMEOUT,
            || async {
                Ok(deployments
                    .get_opt("o2ims-operator")
                    .await?
                    .is_none()
                    .then_some(()))
            },
        )
        .await?;
        for name in ["focom-system", "o2ims-system"] {
            let namespace = namespaces.get(name).await?;
            ensure!(
                namespace.metadata.deletion_timestamp.is_none(),
                "namespace {name} is being deleted"
            );
        }
        // The dev overlay into the namespaces kept (its Recreate strategy cannot be applied
        // server-side over a live RollingUpdate Deployment: the API server keeps the defaulted
        // rollingUpdate).
        for object in kustomize("overlays/dev")? {
            apply(&client, &object, true).await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = helm(&["uninstall", RELEASE, "--ignore-not-found"]);
    for name in created {
        ignore_missing(namespaces.delete(name, &DeleteParams::default()).await)?;
    }
    result
}

/// The inventory of the end-to-end test: one cluster, a control-plane host and a worker.
const INVENTORY: &str = r#"{
  "defaults": {"kubernetesVersion": "v1.32.9", "cni": "calico", "hostPreparation": "auto"},
  "hosts": [
    {"id": "lp-h1", "hostname": "lp-node1", "address": "192.0.2.11", "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]},
    {"id": "lp-h2", "hostname": "lp-node2", "address": "192.0.2.12", "sshHostKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1xFkK3JrBEAWJ8qfusMvXIUw+xkDzE2wIlhxeSGkiB"]}
  ],
  "clusters": [
    {"name": "lp", "controlPlaneEndpoint": "172.25.0.100", "controlPlaneHosts": ["lp-h1"], "workerHosts": ["lp-h2"]}
  ]
}"#;
const CLUSTER: &str = "lp";
const CLUSTER_NAMESPACE: &str = "cluster-lp";
const REQUEST: &str = "lp";

/// What the end-to-end test made that `clean_up` removes.
struct Install {
    focom: String,
    o2ims: String,
    dir: PathBuf,
    /// Cluster-scoped objects and those outside the test namespaces, applied from the chart.
    shared: Vec<Value>,
}

/// With only the chart's RBAC: the inventory ConfigMap, a FocomProvisioningRequest choosing a
/// cluster on an OCloud reached through a kubeconfig Secret, FOCOM's ProvisioningRequest,
/// O2IMS's host-preparation Job, then its Cluster API objects; Cluster API status driven to
/// Ready until the request is Synced, when the O2ims API lists it to a caller bound to the
/// chart's reader role (and to no one else); a scale-in through FOCOM (the removed worker's
/// Machine marked for deletion); then deletion of it all. Neither operator nor the API logs a
/// refusal, the API's ServiceAccount can make each of its calls, and what the chart does not
/// grant is refused.
#[tokio::test]
async fn operators_run_end_to_end_with_only_the_charts_rbac() -> anyhow::Result<()> {
    let _alone = CLUSTER_SCOPED.lock().await;
    let binaries = [
        operator_binary("focom-operator")?,
        operator_binary("o2ims-operator")?,
        operator_binary("o2ims-api")?,
    ];
    let cluster = TestCluster::shared_with_managers().await?;
    let admin = cluster.admin_client()?;
    let mut install = Install {
        focom: cluster.namespace("lcm-focom").await?.name().to_string(),
        o2ims: cluster.namespace("lcm-o2ims").await?.name().to_string(),
        dir: std::env::temp_dir().join(format!("deploy-tests-{}", std::process::id())),
        shared: Vec::new(),
    };
    let result = run_end_to_end(cluster, &admin, &mut install, &binaries).await;
    let cleaned = clean_up(&admin, &install).await;
    result.and(cleaned)
}

async fn run_end_to_end(
    cluster: &TestCluster,
    admin: &Client,
    install: &mut Install,
    binaries: &[PathBuf; 3],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&install.dir)?;
    let inventory = install.dir.join("input.json");
    std::fs::write(&inventory, INVENTORY)?;
    let (focom, o2ims) = (install.focom.clone(), install.o2ims.clone());
    let objects = helm_template(&[
        "--set",
        &format!("createNamespaces=false,focom.namespace={focom},o2ims.namespace={o2ims}"),
        "--set-file",
        &format!("inventory.json={}", inventory.display()),
    ])?;
    // The chart's ServiceAccounts, RBAC, inventory, playbook and TemplateInfo, for real; the
    // operators run here as processes instead of its Deployments.
    for object in &objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "ServiceAccount"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "Role"
                | "RoleBinding"
                | "ConfigMap"
                | "TemplateInfo"
        ) {
            continue;
        }
        let namespace = object["metadata"]["namespace"].as_str();
        if namespace != Some(focom.as_str()) && namespace != Some(o2ims.as_str()) {
            install.shared.push(object.clone());
        }
        apply(admin, object, false).await?;
    }

    // What exists before the operators start: the hosts (simulated: their agents, and the Jobs
    // preparing them), of which the control-plane host is registered and the worker is left to
    // host preparation; the Calico manifest (the stand-in the workload clusters count as a CNI);
    // the SSH key host preparation mounts, as mgmt.sh installs it; and an OCloud whose kubeconfig
    // Secret reaches this cluster as the FOCOM ServiceAccount.
    let _hosts = simulate_hosts(cluster, &o2ims).await?;
    let calico = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "calico-manifest", "namespace": o2ims},
        "data": {"calico.yaml": byoh_sim::CALICO_STAND_IN}});
    apply(admin, &calico, false).await?;
    let key = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "o2ims-host-ssh-key", "namespace": o2ims},
        "stringData": {"ssh-privatekey": "stand-in: the simulated hosts take no SSH connection\n"}});
    apply(admin, &key, false).await?;
    let kubeconfigs = [
        install.dir.join("focom.kubeconfig"),
        install.dir.join("o2ims.kubeconfig"),
        install.dir.join("o2ims-api.kubeconfig"),
    ];
    cluster
        .write_service_account_kubeconfig(&focom, "focom-operator", &kubeconfigs[0])
        .await?;
    cluster
        .write_service_account_kubeconfig(&o2ims, "o2ims-operator", &kubeconfigs[1])
        .await?;
    cluster
        .write_service_account_kubeconfig(&o2ims, "o2ims-api", &kubeconfigs[2])
        .await?;
    // An SMO bound to the chart's reader role (cluster-wide: the roles grant non-resource URLs),
    // and one bound to nothing.
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": format!("{o2ims}-smo-o2ims-reader")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "oran-lcm-o2ims-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "smo", "namespace": o2ims}]});
    install.shared.push(binding.clone());
    apply(admin, &binding, false).await?;
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let rest = RestApi {
        base: format!("http://127.0.0.1:{api_port}"),
        reader: cluster.service_account_token(&o2ims, "smo").await?,
        stranger: cluster.service_account_token(&o2ims, "stranger").await?,
    };
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "o-cloud-kubeconfig", "namespace": focom},
        "stringData": {"kubeconfig": std::fs::read_to_string(&kubeconfigs[0])?}});
    apply(admin, &secret, false).await?;
    let ocloud = json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "OCloud",
        "metadata": {"name": "o-cloud", "namespace": focom},
        "spec": {"o2imsSecret": {"secretRef": {"name": "o-cloud-kubeconfig", "namespace": focom}}}});
    apply(admin, &ocloud, false).await?;

    let preparation = cluster.host_preparation_args();
    let preparation: Vec<&str> = preparation.iter().map(String::as_str).collect();
    let api_address = format!("127.0.0.1:{api_port}");
    let operators = [
        start(
            &binaries[0],
            &kubeconfigs[0],
            &focom,
            "focom-operator-0",
            &[],
        )
        .await?,
        start(
            &binaries[1],
            &kubeconfigs[1],
            &o2ims,
            "o2ims-operator-0",
            &preparation,
        )
        .await?,
        // Not leader-elected; plain HTTP on loopback (the chart serves HTTPS with its Secret).
        OperatorProcess::start(
            binaries[2].to_str().context("binary path")?,
            &kubeconfigs[2],
            &o2ims,
            &[
                "--pod-name",
                "o2ims-api-0",
                "--plain-http",
                "--api-addr",
                &api_address,
                "--external-url",
                &rest.base,
            ],
        )
        .await?,
    ];
    let flow = provision_and_delete(admin, &focom, &o2ims, &operators, &rest).await;
    let flow = flow.with_context(|| {
        operators
            .iter()
            .map(OperatorProcess::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    });
    for operator in &operators {
        operator.terminate().await?;
    }
    flow?;
    for operator in &operators {
        no_refusals(operator)?;
    }
    refuses_what_the_chart_does_not_grant(cluster, &focom, &o2ims).await?;
    the_api_can_make_its_calls_and_no_other(cluster, &o2ims).await?;
    for operator in &operators {
        std::fs::remove_file(&operator.log)?; // kept when the test fails
    }
    Ok(())
}

/// The inventory's hosts, simulated (with the Jobs preparing them in `o2ims`): `lp-h1` registered
/// from the start, `lp-h2` once prepared. They run until the returned value is dropped.
async fn simulate_hosts(cluster: &TestCluster, o2ims: &str) -> anyhow::Result<byoh_sim::Handle> {
    testcluster::diagnostics::trace_to_test_output("byoh_sim=info");
    let inventory = lcm_core::inventory::Inventory::parse("input.json", INVENTORY)?;
    let config = byoh_sim::SimConfig {
        hosts: byoh_sim::SimHost::from_inventory(&inventory),
        preregistered: ["lp-h1".to_string()].into(),
        namespace: Some(o2ims.to_string()),
        job_delay: Duration::from_millis(200),
        bootstrap_delay: Duration::from_millis(200),
        ..byoh_sim::SimConfig::default()
    };
    let url = cluster
        .workload_clusters_url()?
        .context("the stack runs no workload clusters")?;
    let hosts = byoh_sim::spawn(cluster.admin_config_as("byoh-sim")?, &url, config)?;
    let admin = cluster.admin_client()?;
    wait_for("the control-plane host to register", TIMEOUT, || async {
        capi::get(&admin, Kind::ByoHost, HOSTS_NAMESPACE, "lp-node1").await
    })
    .await?;
    Ok(hosts)
}

async fn start(
    binary: &Path,
    kubeconfig: &Path,
    namespace: &str,
    pod: &str,
    extra: &[&str],
) -> anyhow::Result<OperatorProcess> {
    let binary = binary.to_str().context("binary path")?;
    let mut args = vec!["--leader-elect", "--pod-name", pod];
    args.extend(extra);
    OperatorProcess::start(binary, kubeconfig, namespace, &args).await
}

async fn provision_and_delete(
    admin: &Client,
    focom: &str,
    o2ims: &str,
    operators: &[OperatorProcess; 3],
    rest: &RestApi,
) -> anyhow::Result<()> {
    for (operator, namespace, lease) in [
        (&operators[0], focom, "focom-operator"),
        (&operators[1], o2ims, "o2ims-operator"),
    ] {
        let leases = Api::<Lease>::namespaced(admin.clone(), namespace);
        let identity = format!("{lease}-0");
        wait_for(&format!("{lease} to hold its Lease"), TIMEOUT, || async {
            let holder = leases
                .get_opt(lease)
                .await?
                .and_then(|l| l.spec?.holder_identity);
            Ok((holder.as_deref() == Some(identity.as_str())).then_some(()))
        })
        .await
        .with_context(|| operator.log_tail())?;
    }
    // The API is Ready once its watches (requests, host ledger, ByoHosts, inventory) have listed
    // under its ServiceAccount.
    wait_for("the O2ims API's /readyz", TIMEOUT, || async {
        Ok(operators[2]
            .get("/readyz")
            .await
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(drop))
    })
    .await?;

    let request = json!({"apiVersion": "focom.nephio.org/v1alpha1", "kind": "FocomProvisioningRequest",
        "metadata": {"name": REQUEST, "namespace": focom},
        "spec": {"oCloudId": "o-cloud", "name": "least privilege", "templateName": "byoh-workload-cluster",
                 "templateVersion": "v1", "clusterNames": [CLUSTER]}});
    apply(admin, &request, false).await?;
    let pr_name = lcm_core::focom::request_name(focom, REQUEST, CLUSTER);
    let of_request =
        ListParams::default().labels(&format!("{PROVISIONING_REQUEST_LABEL}={pr_name}"));
    let jobs = Api::<Job>::namespaced(admin.clone(), o2ims);
    // BYOH issues the bootstrap kubeconfig the O2IMS operator asks for, the Job prepares the
    // worker, which registers.
    wait_for(
        "FOCOM's ProvisioningRequest, and O2IMS's Job preparing the worker",
        TIMEOUT,
        || async { Ok(jobs.list(&of_request).await?.items.into_iter().next()) },
    )
    .await?;
    wait_for("the Cluster API objects", TIMEOUT, || async {
        let all = exists(admin, Kind::Cluster, CLUSTER).await?
            && exists(admin, Kind::MachineDeployment, "lp-md-0").await?
            && exists(admin, Kind::ClusterResourceSet, "lp-calico").await?;
        Ok(all.then_some(()))
    })
    .await?;
    let calico = Api::<ConfigMap>::namespaced(admin.clone(), CLUSTER_NAMESPACE)
        .get_opt("lp-calico")
        .await?;
    ensure!(
        calico.is_some(),
        "the Calico manifest was not applied into {CLUSTER_NAMESPACE}"
    );

    let requests = Api::<FocomProvisioningRequest>::namespaced(admin.clone(), focom);
    let provisioning = Api::<ProvisioningRequest>::all(admin.clone());
    synced(&requests, &provisioning, &pr_name).await?;
    events_published(admin, focom, &pr_name).await?;
    rest.lists_the_request(&pr_name).await?;

    // Scale-in through FOCOM: the worker leaves the cluster in the inventory; O2IMS marks its
    // Machine for deletion, and Cluster API deletes that one.
    let removed = capi::machine_on(admin, "lp-node2").await?;
    let since = capi::resource_version(admin, Kind::Machine, CLUSTER_NAMESPACE).await?;
    let scaled = INVENTORY.replace(r#""workerHosts": ["lp-h2"]"#, r#""workerHosts": []"#);
    let inventory = json!({"data": {"input.json": scaled}});
    let params = PatchParams::default();
    Api::<ConfigMap>::namespaced(admin.clone(), focom)
        .patch("lcm-inventory", &params, &Patch::Merge(&inventory))
        .await?;
    requests
        .patch(
            REQUEST,
            &params,
            &Patch::Merge(json!({"spec": {"operation": "scale"}})),
        )
        .await?;
    let marks =
        capi::deletion_marks_until_gone(admin, CLUSTER_NAMESPACE, &since, &removed, TIMEOUT)
            .await?;
    ensure!(
        marks[&removed].contains(&json!("true")),
        "the removed worker's Machine {removed} was deleted unmarked: {marks:?}"
    );
    synced(&requests, &provisioning, &pr_name).await?;

    // An upgrade, asked on the ProvisioningRequest: one control-plane host has no spare to
    // surge onto, so it is refused up front and the control plane stays as it is.
    let upgrade = json!({"spec": {"templateParameters": {"kubernetesVersion": "v1.33.5"}}});
    provisioning
        .patch(&pr_name, &params, &Patch::Merge(&upgrade))
        .await?;
    wait_for("the upgrade to be refused", TIMEOUT, || async {
        let request = provisioning.get(&pr_name).await?;
        let refused = request
            .status
            .and_then(|s| s.provisioning_status)
            .filter(|s| {
                s.provisioning_state == ProvisioningState::Failed
                    && s.provisioning_message
                        .contains("cannot be upgraded in place")
            });
        Ok(refused.map(|_| ()))
    })
    .await?;
    let kcp = capi::api(admin, Kind::KubeadmControlPlane, CLUSTER_NAMESPACE)
        .get("lp-control-plane")
        .await?;
    ensure!(
        kcp.data.pointer("/spec/version") == Some(&json!("v1.32.9")),
        "the refused upgrade touched the control plane"
    );

    // `operation: delete` removes the cluster and reports Deleted; then the request goes.
    requests
        .patch(
            REQUEST,
            &params,
            &Patch::Merge(json!({"spec": {"operation": "delete"}})),
        )
        .await?;
    // Cluster API deletes the machines, BYOH's agents release the hosts.
    wait_for("the cluster to be deleted", TIMEOUT, || async {
        let deleted = requests
            .get_opt(REQUEST)
            .await?
            .and_then(|r| r.status?.phase)
            .is_some_and(|p| p.to_string() == "Deleted");
        let gone = provisioning.get_opt(&pr_name).await?.is_none();
        Ok((deleted && gone).then_some(()))
    })
    .await?;
    requests.delete(REQUEST, &DeleteParams::default()).await?;
    let config_maps = Api::<ConfigMap>::namespaced(admin.clone(), o2ims);
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin.clone(), o2ims);
    let bootstrap = capi::api(admin, Kind::BootstrapKubeconfig, o2ims);
    let namespaces = Api::<Namespace>::all(admin.clone());
    wait_for(
        "the request, its ProvisioningRequest, namespace and host-preparation objects to be gone",
        TIMEOUT,
        || async {
            let gone = requests.get_opt(REQUEST).await?.is_none()
                && provisioning.get_opt(&pr_name).await?.is_none()
                && namespaces.get_opt(CLUSTER_NAMESPACE).await?.is_none()
                && jobs.list(&of_request).await?.items.is_empty()
                && config_maps.list(&of_request).await?.items.is_empty()
                && secrets.list_metadata(&of_request).await?.items.is_empty()
                && bootstrap.list_metadata(&of_request).await?.items.is_empty();
            Ok(gone.then_some(()))
        },
    )
    .await
}

/// The O2ims API as an SMO calls it: `reader`'s token is bound to the chart's
/// oran-lcm-o2ims-reader, `stranger`'s to nothing.
struct RestApi {
    base: String,
    reader: String,
    stranger: String,
}

impl RestApi {
    /// GET of the ProvisioningRequests: 200 with a list holding `name` for the reader, 401
    /// without a token, 403 for a caller no role grants the API.
    async fn lists_the_request(&self, name: &str) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let url = format!(
            "{}{}/provisioningRequests",
            self.base,
            lcm_core::rest::PROVISIONING_PREFIX
        );
        wait_for(
            "the O2ims API to list the ProvisioningRequest",
            TIMEOUT,
            || async {
                let response = http.get(&url).bearer_auth(&self.reader).send().await?;
                let status = response.status();
                let body: Value = response.json().await?;
                ensure!(status == 200, "GET {url}: {status} {body}");
                let items = body
                    .as_array()
                    .with_context(|| format!("not a list: {body}"))?;
                Ok(items
                    .iter()
                    .any(|item| item["provisioningRequestData"]["provisioningRequestId"] == name)
                    .then_some(()))
            },
        )
        .await?;
        let anonymous = http.get(&url).send().await?.status();
        ensure!(anonymous == 401, "GET {url} without a token: {anonymous}");
        let stranger = http
            .get(&url)
            .bearer_auth(&self.stranger)
            .send()
            .await?
            .status();
        ensure!(stranger == 403, "GET {url} with no role: {stranger}");
        Ok(())
    }
}

/// Waits until the FocomProvisioningRequest is Synced and its ProvisioningRequest fulfilled, both
/// for their current spec (observedGeneration).
async fn synced(
    requests: &Api<FocomProvisioningRequest>,
    provisioning: &Api<ProvisioningRequest>,
    pr_name: &str,
) -> anyhow::Result<()> {
    let done = wait_for("the request to be Synced", TIMEOUT, || async {
        let (Some(request), Some(pr)) = (
            requests.get_opt(REQUEST).await?,
            provisioning.get_opt(pr_name).await?,
        ) else {
            return Ok(None);
        };
        let status = request.status.as_ref();
        let synced = status
            .and_then(|s| s.phase)
            .is_some_and(|p| p.to_string() == "Synced")
            && status.and_then(|s| s.observed_generation) == request.metadata.generation;
        let pr_status = pr.status.as_ref();
        let fulfilled = pr_status
            .and_then(|s| s.provisioning_status.as_ref())
            .is_some_and(|s| s.provisioning_state == ProvisioningState::Fulfilled)
            && pr_status.and_then(|s| s.observed_generation) == pr.metadata.generation;
        Ok((synced && fulfilled).then_some(()))
    })
    .await;
    if let Err(e) = done {
        let request = requests.get_opt(REQUEST).await?.and_then(|r| r.status);
        let pr = provisioning.get_opt(pr_name).await?.and_then(|r| r.status);
        bail!(
            "{e:#}\nFocomProvisioningRequest status: {request:?}\nProvisioningRequest status: {pr:?}"
        );
    }
    Ok(())
}

async fn exists(admin: &Client, kind: Kind, name: &str) -> anyhow::Result<bool> {
    Ok(capi::api(admin, kind, CLUSTER_NAMESPACE)
        .get_opt(name)
        .await?
        .is_some())
}

/// Each operator published Events: the FOCOM operator about its request, the O2IMS operator about
/// the ProvisioningRequest (cluster-scoped, so in `default`).
async fn events_published(admin: &Client, focom: &str, pr_name: &str) -> anyhow::Result<()> {
    for (namespace, regarding) in [(focom, REQUEST), ("default", pr_name)] {
        let events =
            Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), namespace);
        let found = events
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .any(|e| e.regarding.and_then(|r| r.name).as_deref() == Some(regarding));
        ensure!(found, "no Event about {regarding} in {namespace}");
    }
    Ok(())
}

/// No request of the operator was refused: its log has no `forbidden` and no status 403.
fn no_refusals(operator: &OperatorProcess) -> anyhow::Result<()> {
    let log = std::fs::read_to_string(&operator.log)?;
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.to_lowercase().contains("forbidden")
                || line
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == "403")
        })
        .collect();
    ensure!(!log.is_empty(), "empty log {}", operator.log.display());
    ensure!(
        refused.is_empty(),
        "refused requests in {}:\n{}",
        operator.log.display(),
        refused.join("\n")
    );
    Ok(())
}

/// Whether `result` is the API server's 403.
async fn refuses_what_the_chart_does_not_grant(
    cluster: &TestCluster,
    focom: &str,
    o2ims: &str,
) -> anyhow::Result<()> {
    let o2ims_client = cluster
        .service_account_client(o2ims, "o2ims-operator")
        .await?;
    let focom_client = cluster
        .service_account_client(focom, "focom-operator")
        .await?;
    // What they are granted works with these clients (so a refusal below is RBAC's).
    Api::<ProvisioningRequest>::all(o2ims_client.clone())
        .list(&ListParams::default())
        .await?;
    Api::<ConfigMap>::namespaced(focom_client.clone(), focom)
        .list(&ListParams::default().fields("metadata.name=lcm-inventory"))
        .await?;

    let o2ims_requests = Api::<ProvisioningRequest>::all(o2ims_client.clone());
    expect_refused(
        "o2ims lists Secrets cluster-wide",
        Api::<Secret>::all(o2ims_client.clone())
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "o2ims reads a Secret in its namespace",
        Api::<Secret>::namespaced(o2ims_client.clone(), o2ims)
            .get("any")
            .await,
    )?;
    expect_refused(
        "o2ims deletes a ProvisioningRequest",
        o2ims_requests.delete("any", &DeleteParams::default()).await,
    )?;
    let leases = Api::<Lease>::namespaced(o2ims_client, o2ims);
    expect_refused(
        "o2ims patches another Lease",
        leases
            .patch("other", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    )?;

    let config_maps = Api::<ConfigMap>::namespaced(focom_client.clone(), focom);
    expect_refused(
        "focom lists every ConfigMap of its namespace",
        config_maps.list(&ListParams::default()).await,
    )?;
    expect_refused(
        "focom reads another ConfigMap",
        config_maps.get("calico-manifest").await,
    )?;
    expect_refused(
        "focom reads a Secret of the O2IMS namespace",
        Api::<Secret>::namespaced(focom_client.clone(), o2ims)
            .get("any")
            .await,
    )?;
    expect_refused(
        "focom lists TemplateInfos outside the template namespace",
        Api::<TemplateInfo>::namespaced(focom_client.clone(), o2ims)
            .list(&ListParams::default())
            .await,
    )?;
    let clusters = capi::api(&focom_client, Kind::Cluster, CLUSTER_NAMESPACE);
    expect_refused(
        "focom lists Cluster API Clusters",
        clusters.list(&ListParams::default()).await,
    )?;
    Ok(())
}

/// The O2ims API's ServiceAccount can make every call the server makes (crates/o2ims-api/src:
/// auth.rs, stores.rs, provisioning.rs), and nothing else.
async fn the_api_can_make_its_calls_and_no_other(
    cluster: &TestCluster,
    o2ims: &str,
) -> anyhow::Result<()> {
    let client = cluster.service_account_client(o2ims, "o2ims-api").await?;
    let watch = WatchParams::default().timeout(1);

    // Every API call: the caller's token, then the caller's permission.
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: "not-a-token".into(),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("create a TokenReview")?;
    let access = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("smo".into()),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(format!(
                    "{}/provisioningRequests",
                    lcm_core::rest::PROVISIONING_PREFIX
                )),
                verb: Some("get".into()),
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &access)
        .await
        .context("create a SubjectAccessReview")?;

    // ProvisioningRequests: watched, created (POST), read and replaced (PUT), deleted (DELETE).
    let requests = Api::<ProvisioningRequest>::all(client.clone());
    requests.list(&ListParams::default()).await?;
    watched(requests.watch(&watch, "0").await).context("watch ProvisioningRequests")?;
    let name = format!("{o2ims}-api-rbac");
    let spec = ProvisioningRequestSpec {
        name: None,
        description: None,
        template_name: "byoh-workload-cluster".into(),
        template_version: "v1".into(),
        template_parameters: json!({}),
    };
    let created = requests
        .create(
            &PostParams::default(),
            &ProvisioningRequest::new(&name, spec),
        )
        .await
        .context("create a ProvisioningRequest")?;
    let mut replaced = requests.get(&name).await?;
    replaced.spec.description = Some("replaced".into());
    requests
        .replace(&name, &PostParams::default(), &replaced)
        .await
        .context("replace a ProvisioningRequest")?;
    expect_refused(
        "o2ims-api patches a ProvisioningRequest",
        requests
            .patch(&name, &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    )?;
    expect_refused(
        "o2ims-api writes a ProvisioningRequest's status",
        requests
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {}})),
            )
            .await,
    )?;
    requests
        .delete(&name, &DeleteParams::default())
        .await
        .context("delete a ProvisioningRequest")?;

    // The inventory: host ledger and ByoHosts watched everywhere, the inventory ConfigMap by
    // name, a cluster's Cluster read.
    let claims = Api::<HostClaim>::all(client.clone());
    claims.list(&ListParams::default()).await?;
    watched(claims.watch(&watch, "0").await).context("watch HostClaims")?;
    let byo_hosts = capi::api(&client, Kind::ByoHost, HOSTS_NAMESPACE);
    let all_byo_hosts: Api<kube::api::DynamicObject> =
        Api::all_with(client.clone(), &Kind::ByoHost.api_resource());
    all_byo_hosts.list(&ListParams::default()).await?;
    watched(all_byo_hosts.watch(&watch, "0").await).context("watch ByoHosts")?;
    capi::api(&client, Kind::Cluster, CLUSTER_NAMESPACE)
        .get_opt(CLUSTER)
        .await
        .context("get a Cluster")?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), o2ims);
    let inventory = ListParams::default().fields("metadata.name=lcm-inventory");
    config_maps.list(&inventory).await?;
    watched(
        config_maps
            .watch(&watch.clone().fields("metadata.name=lcm-inventory"), "0")
            .await,
    )
    .context("watch the inventory ConfigMap")?;

    // The subscriptions: watched, created (POST) with what the subscriber was told so far in
    // their status, read and deleted (DELETE); the notifier's Lease read and renewed.
    let subscriptions = Api::<O2imsSubscription>::namespaced(client.clone(), o2ims);
    subscriptions.list(&ListParams::default()).await?;
    watched(subscriptions.watch(&watch, "0").await).context("watch O2imsSubscriptions")?;
    let subscription = O2imsSubscription::new(
        "7a5a2f55-5a4e-4c8e-9d1b-9a55f3f0b7a1",
        O2imsSubscriptionSpec {
            api: SubscribedApi::Provisioning,
            callback: "https://smo.example.org/notify".into(),
            consumer_subscription_id: None,
            filter: None,
        },
    );
    let id = subscription.name_any();
    subscriptions
        .create(&PostParams::default(), &subscription)
        .await
        .context("create an O2imsSubscription")?;
    subscriptions
        .patch_status(
            &id,
            &PatchParams::apply("o2ims-api"),
            &Patch::Apply(json!({"apiVersion": "o2ims.provisioning.oran.org/v1alpha1",
                "kind": "O2imsSubscription", "status": {"delivered": {}}})),
        )
        .await
        .context("record what a subscriber was told")?;
    subscriptions.get(&id).await?;
    subscriptions
        .delete(&id, &DeleteParams::default())
        .await
        .context("delete an O2imsSubscription")?;
    // The alarms: watched, raised (create), cleared and acknowledged (read and replaced),
    // forgotten (delete); raised from the host-preparation Jobs, Clusters and Machines watched.
    let alarms = Api::<lcm_core::crd::O2imsAlarm>::namespaced(client.clone(), o2ims);
    alarms.list(&ListParams::default()).await?;
    watched(alarms.watch(&watch, "0").await).context("watch O2imsAlarms")?;
    let raised = lcm_core::rest::alarms::Raised::of(
        lcm_core::rest::alarms::cause("HostNotRegistered").context("a cause")?,
        "h1",
        "6c0f5b3e-3a39-4f51-9b7a-1f8e1d2c3b4a",
        "a test".into(),
    );
    let alarm = raised.alarm(
        "0b9c2f1e-8d7a-4c6b-9e5f-4a3b2c1d0e9f",
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
    );
    alarms
        .create(&PostParams::default(), &alarm)
        .await
        .context("raise an alarm")?;
    let mut acknowledged = alarms.get(&alarm.name_any()).await?;
    acknowledged.spec.acknowledged = true;
    alarms
        .replace(&alarm.name_any(), &PostParams::default(), &acknowledged)
        .await
        .context("acknowledge an alarm")?;
    alarms
        .delete(&alarm.name_any(), &DeleteParams::default())
        .await
        .context("forget an alarm")?;
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), o2ims);
    jobs.list(&ListParams::default()).await?;
    watched(jobs.watch(&watch, "0").await).context("watch the host-preparation Jobs")?;
    for kind in [Kind::Cluster, Kind::Machine] {
        let all: Api<kube::api::DynamicObject> =
            Api::all_with(client.clone(), &kind.api_resource());
        all.list(&ListParams::default()).await?;
        watched(all.watch(&watch, "0").await).with_context(|| format!("watch {kind:?}s"))?;
    }
    let leases = Api::<Lease>::namespaced(client.clone(), o2ims);
    leases
        .get("o2ims-api-notifier")
        .await
        .context("read the notifier's Lease")?;
    leases
        .patch(
            "o2ims-api-notifier",
            &PatchParams::default(),
            &Patch::Merge(json!({})),
        )
        .await
        .context("renew the notifier's Lease")?;

    expect_refused(
        "o2ims-api claims a host",
        claims
            .create(
                &PostParams::default(),
                &HostClaim::for_host(
                    "h1",
                    &name,
                    created.metadata.uid.as_deref().unwrap_or("uid"),
                    "c",
                ),
            )
            .await,
    )?;
    expect_refused(
        "o2ims-api reads a Secret in its namespace",
        Api::<Secret>::namespaced(client.clone(), o2ims)
            .get("o2ims-host-ssh-key")
            .await,
    )?;
    expect_refused(
        "o2ims-api lists Secrets cluster-wide",
        Api::<Secret>::all(client.clone())
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "o2ims-api lists every ConfigMap of its namespace",
        config_maps.list(&ListParams::default()).await,
    )?;
    expect_refused(
        "o2ims-api reads the playbook ConfigMap",
        config_maps.get("o2ims-host-preparation-playbook").await,
    )?;
    expect_refused("o2ims-api reads a ByoHost", byo_hosts.get("lp-node1").await)?;
    expect_refused(
        "o2ims-api deletes a Cluster API Cluster",
        capi::api(&client, Kind::Cluster, CLUSTER_NAMESPACE)
            .delete(CLUSTER, &DeleteParams::default())
            .await,
    )?;
    expect_refused(
        "o2ims-api lists Jobs of another namespace",
        Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "o2ims-api renews the O2IMS operator's Lease",
        Api::<Lease>::namespaced(client.clone(), o2ims)
            .patch(
                "o2ims-operator",
                &PatchParams::default(),
                &Patch::Merge(json!({})),
            )
            .await,
    )?;
    expect_refused(
        "o2ims-api lists subscriptions of another namespace",
        Api::<O2imsSubscription>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await,
    )?;
    expect_refused(
        "o2ims-api publishes an Event",
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), "default")
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "o2ims-api"}, "eventTime": "2025-01-01T00:00:00.000000Z", "reportingController": "o2ims-api", "reportingInstance": "o2ims-api-0", "action": "Listed", "reason": "Listed", "type": "Normal"}))?,
            )
            .await,
    )?;
    Ok(())
}

/// Removes what the test made, whatever state it stopped in: finalizers first, so nothing waits
/// for an operator that is gone.
async fn clean_up(admin: &Client, install: &Install) -> anyhow::Result<()> {
    let unfinalize = json!({"metadata": {"finalizers": null}});
    let params = PatchParams::default();
    let requests = Api::<FocomProvisioningRequest>::namespaced(admin.clone(), &install.focom);
    for request in requests.list(&ListParams::default()).await?.items {
        requests
            .patch(&request.name_any(), &params, &Patch::Merge(&unfinalize))
            .await?;
    }
    let provisioning = Api::<ProvisioningRequest>::all(admin.clone());
    for request in provisioning.list(&ListParams::default()).await?.items {
        if request
            .labels()
            .get(lcm_core::CLUSTER_NAME_LABEL)
            .map(String::as_str)
            == Some(CLUSTER)
        {
            provisioning
                .patch(&request.name_any(), &params, &Patch::Merge(&unfinalize))
                .await?;
            ignore_missing(
                provisioning
                    .delete(&request.name_any(), &DeleteParams::default())
                    .await,
            )?;
        }
    }
    if let Some(cluster) = capi::api(admin, Kind::Cluster, CLUSTER_NAMESPACE)
        .get_opt(CLUSTER)
        .await?
    {
        capi::api(admin, Kind::Cluster, CLUSTER_NAMESPACE)
            .patch(&cluster.name_any(), &params, &Patch::Merge(&unfinalize))
            .await?;
    }
    ignore_missing(
        provisioning
            .delete(
                &format!("{}-api-rbac", install.o2ims),
                &DeleteParams::default(),
            )
            .await,
    )?;
    let namespaces = Api::<Namespace>::all(admin.clone());
    for namespace in [CLUSTER_NAMESPACE, &install.focom, &install.o2ims] {
        ignore_missing(namespaces.delete(namespace, &DeleteParams::default()).await)?;
    }
    let hosts = capi::api(admin, Kind::ByoHost, HOSTS_NAMESPACE);
    for host in ["lp-node1", "lp-node2"] {
        ignore_missing(hosts.delete(host, &DeleteParams::default()).await)?;
    }
    for object in &install.shared {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        ignore_missing(
            api_for(admin, object)
                .await?
                .delete(name, &DeleteParams::default())
                .await,
        )?;
    }
    let _ = std::fs::remove_dir_all(&install.dir);
    Ok(())
}

/// A watch that the API server accepted (its events are not read).
fn watched<T>(result: kube::Result<T>) -> kube::Result<()> {
    result.map(drop)
}

fn ignore_missing<T>(result: kube::Result<T>) -> anyhow::Result<()> {
    match result {
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}
