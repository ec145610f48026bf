use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use lcm_core::crd::FocomProvisioningRequest;
use lcm_core::inventory::Inventory;
use serde_json::{Value, json};
use testcluster::{OperatorProcess, TestCluster};

pub const FOCOM_NAMESPACE: &str = "focom-system";
pub const O2IMS_NAMESPACE: &str = "o2ims-system";
/// Where ArgoCD would run: the demo registers its clusters there (`--argocd-namespace`).
pub const ARGOCD_NAMESPACE: &str = "argocd";
const FIELD_MANAGER: &str = "lcm-demo";

/// How the world is set up.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// The inventory (`input.json`'s content).
    pub inventory: String,
    pub simulator: byoh_sim::SimConfig,
    /// Extra flags of the O2IMS operator (e.g. short timeouts).
    pub o2ims_args: Vec<String>,
    /// Extra flags of the FOCOM operator.
    pub focom_args: Vec<String>,
    /// A directory for the API server's audit log, to count requests by client.
    pub audit_dir: Option<std::path::PathBuf>,
    /// Extra flags of the Cluster API and BYOH managers, `<manager>=<flag>` (e.g. raised
    /// concurrency for a benchmark), as `testcluster up --manager-arg` takes them.
    pub manager_args: Vec<String>,
}

impl WorldOptions {
    /// The shipped inventory and a simulator that prepares hosts only when a Job asks for it.
    pub fn from_inventory(text: &str) -> anyhow::Result<Self> {
        let inventory = Inventory::parse("input.json", text)?;
        let simulator = byoh_sim::SimConfig {
            hosts: byoh_sim::SimHost::from_inventory(&inventory),
            job_delay: Duration::from_secs(1),
            bootstrap_delay: Duration::from_secs(2),
            ..Default::default()
        };
        Ok(Self {
            inventory: text.to_string(),
            simulator,
            o2ims_args: Vec::new(),
            focom_args: Vec::new(),
            audit_dir: None,
            manager_args: Vec::new(),
        })
    }

    /// Adds a simulated host (hostname = id) for every host `request`'s template parameters
    /// name that the inventory lacks. No host-preparation Job knows how to reach them, so
    /// their agents run from the start, as on hosts their owner prepared.
    pub fn simulate_hosts_named_by(&mut self, request: &FocomProvisioningRequest) {
        let Some(parameters) = &request.spec.template_parameters else {
            return;
        };
        let hosts = &parameters["hosts"];
        let named = ["controlPlane", "workers"]
            .iter()
            .filter_map(|role| hosts[role].as_array())
            .flatten()
            .filter_map(|id| id.as_str());
        for id in named {
            if !self.simulator.hosts.iter().any(|h| h.id == id) {
                self.simulator.preregistered.insert(id.to_string());
                self.simulator.hosts.push(byoh_sim::SimHost {
                    id: id.to_string(),
                    hostname: id.to_string(),
                    address: None,
                });
            }
        }
    }
}

/// The host-preparation playbook ConfigMap the chart installs: `ansible/` with `/` written as `__`.
fn playbook_config_map() -> anyhow::Result<Value> {
    let root = testcluster::repo_root().join("ansible");
    let mut data = serde_json::Map::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let key = path
                .strip_prefix(&root)?
                .to_string_lossy()
                .replace('/', "__");
            data.insert(key, Value::String(std::fs::read_to_string(&path)?));
        }
    }
    Ok(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "o2ims-host-preparation-playbook", "namespace": O2IMS_NAMESPACE},
        "data": data}))
}

/// One of the two operators of a world.
#[derive(Clone, Copy, Debug)]
pub enum Operator {
    O2ims,
    Focom,
}

impl Operator {
    /// Starts one more process of this operator (as a second replica without leader election).
    pub async fn start(
        self,
        cluster: &TestCluster,
        options: &WorldOptions,
    ) -> anyhow::Result<OperatorProcess> {
        let (binary, namespace, args) = match self {
            // The hosts the operator prepares register at this API server.
            Operator::O2ims => {
                let mut args = cluster.host_preparation_args();
                args.extend(options.o2ims_args.iter().cloned());
                ("o2ims-operator", O2IMS_NAMESPACE, args)
            }
            Operator::Focom => (
                "focom-operator",
                FOCOM_NAMESPACE,
                options.focom_args.clone(),
            ),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        OperatorProcess::start(
            &testcluster::workspace_binary(binary)?.to_string_lossy(),
            cluster.kubeconfig_path(),
            namespace,
            &args,
        )
        .await
    }
}

/// A running installation; dropping it stops everything.
pub struct World {
    pub cluster: TestCluster,
    /// The API server's audit log, when [`WorldOptions::audit_dir`] asked for one.
    pub audit: Option<testcluster::AuditLog>,
    pub o2ims: OperatorProcess,
    pub focom: OperatorProcess,
    /// The O2ims REST API over this world's custom resources.
    pub api: testcluster::api_server::ApiServer,
    _simulator: byoh_sim::Handle,
    options: WorldOptions,
}

impl World {
    pub async fn start(options: WorldOptions) -> anyhow::Result<Self> {
        // In a test, what the simulated hosts do shows with its output when it fails (a binary
        // that set up its own tracing keeps it).
        testcluster::diagnostics::trace_to_test_output("byoh_sim=info");
        let manager_args: Vec<&str> = options.manager_args.iter().map(String::as_str).collect();
        let (cluster, audit) = match &options.audit_dir {
            Some(dir) => {
                let (cluster, audit) =
                    TestCluster::start_with_managers_audited(dir, &manager_args).await?;
                (cluster, Some(audit))
            }
            None => (TestCluster::start_with_managers(&manager_args).await?, None),
        };
        let client = cluster.admin_client()?;
        for namespace in [
            FOCOM_NAMESPACE,
            O2IMS_NAMESPACE,
            ARGOCD_NAMESPACE,
            &options.simulator.byoh_namespace,
        ] {
            apply(
                &client,
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            )
            .await?;
        }
        for config_map in inventory_config_maps(&options.inventory) {
            apply(&client, &config_map).await?;
        }
        // What the ClusterResourceSet applies to each cluster with `cni: calico`.
        apply(
            &client,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "calico-manifest", "namespace": O2IMS_NAMESPACE},
            "data": {"calico.yaml": byoh_sim::CALICO_STAND_IN}}),
        )
        .await?;
        // What host-preparation Jobs mount, as the chart and mgmt.sh install it: the playbook,
        // and an SSH key (a stand-in: the simulated hosts take no SSH connection).
        apply(&client, &playbook_config_map()?).await?;
        apply(&client, &json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "o2ims-host-ssh-key", "namespace": O2IMS_NAMESPACE},
            "stringData": {"ssh-privatekey": "stand-in: the simulated hosts take no SSH connection\n"}}))
        .await?;
        for example in ["examples/ocloud.yaml", "examples/template-info.yaml"] {
            let text = std::fs::read_to_string(testcluster::repo_root().join(example))?;
            let documents: Vec<Value> = lcm_core::yaml::from_multi_str(&text)?;
            // Only the local OCloud: the remote one of the example has no Secret here.
            for document in documents
                .iter()
                .filter(|d| d["spec"]["o2imsSecret"].is_null())
            {
                apply(&client, document).await?;
            }
        }
        let o2ims = Operator::O2ims.start(&cluster, &options).await?;
        let focom = Operator::Focom.start(&cluster, &options).await?;
        let api = testcluster::api_server::ApiServer::start(
            &cluster,
            &testcluster::workspace_binary("o2ims-api")?.to_string_lossy(),
            O2IMS_NAMESPACE,
            &["--ocloud-name", "demo"],
        )
        .await?;
        let workload_clusters = cluster
            .workload_clusters_url()?
            .context("the control plane runs no workload-cluster simulator")?;
        let simulator = byoh_sim::spawn(
            cluster.admin_config_as("byoh-sim")?,
            &workload_clusters,
            options.simulator.clone(),
        )?;
        Ok(Self {
            audit,
            cluster,
            o2ims,
            focom,
            api,
            _simulator: simulator,
            options,
        })
    }

    /// Kills an operator (as a crash would) and starts a new one.
    pub async fn restart(&mut self, operator: Operator) -> anyhow::Result<()> {
        let process = match operator {
            Operator::O2ims => &mut self.o2ims,
            Operator::Focom => &mut self.focom,
        };
        process.kill().await?;
        *process = operator.start(&self.cluster, &self.options).await?;
        Ok(())
    }

    /// A client of the demo's own (User-Agent `lcm-demo`).
    pub fn client(&self) -> anyhow::Result<Client> {
        self.cluster.admin_client_as("lcm-demo")
    }

    pub fn options(&self) -> &WorldOptions {
        &self.options
    }

    /// Replaces the inventory (`input.json`'s content) of both operators.
    pub async fn set_inventory(&self, inventory: &str) -> anyhow::Result<()> {
        let client = self.client()?;
        for config_map in inventory_config_maps(inventory) {
            apply(&client, &config_map).await?;
        }
        Ok(())
    }

    /// Applies a manifest (one or more YAML documents), in `focom-system` when it names no namespace.
    pub async fn apply_manifest(&self, text: &str) -> anyhow::Result<()> {
        let client = self.client()?;
        for mut document in lcm_core::yaml::from_multi_str::<Value>(text)? {
            if document["metadata"]["namespace"].is_null()
                && document["kind"] == "FocomProvisioningRequest"
            {
                document["metadata"]["namespace"] = json!(FOCOM_NAMESPACE);
            }
            apply(&client, &document).await?;
        }
        Ok(())
    }
}

/// Server-side apply of one object (plural = lower-case kind + "s", or "templateinfoes").
pub async fn apply(client: &Client, object: &Value) -> anyhow::Result<()> {
    let api_version = object["apiVersion"].as_str().context("apiVersion")?;
    let kind = object["kind"].as_str().context("kind")?;
    let name = object["metadata"]["name"]
        .as_str()
        .context("metadata.name")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = if kind == "TemplateInfo" {
        "templateinfoes".to_string()
    } else {
        format!("{}s", kind.to_lowercase())
    };
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural);
    let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {kind} {name}"))?;
    Ok(())
}

/// As the chart installs it: FOCOM's inventory, and O2IMS's copy saying how hosts are reached.
fn inventory_config_maps(inventory: &str) -> [Value; 2] {
    [FOCOM_NAMESPACE, O2IMS_NAMESPACE].map(|namespace| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "lcm-inventory", "namespace": namespace},
            "data": {"input.json": inventory}})
    })
}
