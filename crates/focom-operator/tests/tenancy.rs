//! Tenants against the real control plane: a request uses only OClouds of its own namespace or
//! of those the admin allows, an OCloud only Secrets of its own namespace, a kubeconfig only
//! inline credentials, and the template catalogue comes from the admin's namespace only. One
//! operator for all tests here, with `--allowed-ocloud-namespaces` and `--template-namespace`.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use lcm_core::crd::{
    FocomPhase, FocomProvisioningRequest, O2imsSecret, OCloud, OCloudSpec, SecretReference,
};
use serde_json::{Value, json};
use support::*;
use testcluster::{OperatorProcess, TestCluster};
use tokio::sync::OnceCell;

struct Fixture {
    /// Where the tenant's requests and OClouds are.
    tenant: String,
    /// Another tenant's namespace.
    other: String,
    /// A namespace the admin lists in `--allowed-ocloud-namespaces`.
    allowed: String,
    /// The operator's namespace (its Secrets are not the tenant's).
    operator_namespace: String,
    /// `--template-namespace`.
    catalogue: String,
    _operator: OperatorProcess,
}

static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();

async fn setup() -> anyhow::Result<(&'static TestCluster, Client, &'static Fixture)> {
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let fixture = FIXTURE
        .get_or_try_init(|| async {
            let mut names = Vec::new();
            for prefix in ["tenant", "other", "allowed", "focom", "catalogue"] {
                names.push(cluster.namespace(prefix).await?.name().to_string());
            }
            let [tenant, other, allowed, operator_namespace, catalogue] =
                <[String; 5]>::try_from(names).expect("five namespaces");
            let allowed_list = format!("{allowed},not-a-namespace");
            let operator = OperatorProcess::start(
                BINARY,
                cluster.kubeconfig_path(),
                &operator_namespace,
                &[
                    "--allowed-ocloud-namespaces",
                    &allowed_list,
                    "--template-namespace",
                    &catalogue,
                ],
            )
            .await?;
            anyhow::Ok(Fixture {
                tenant,
                other,
                allowed,
                operator_namespace,
                catalogue,
                _operator: operator,
            })
        })
        .await?;
    Ok((cluster, client, fixture))
}

async fn ocloud(
    client: &Client,
    namespace: &str,
    name: &str,
    secret: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let spec = OCloudSpec {
        o2ims_secret: secret.map(|(namespace, name)| O2imsSecret {
            secret_ref: SecretReference {
                name: name.into(),
                namespace: namespace.into(),
            },
        }),
        o2ims_api: None,
    };
    Api::<OCloud>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &OCloud::new(name, spec))
        .await?;
    Ok(())
}

async fn kubeconfig_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    kubeconfig: &str,
) -> anyhow::Result<()> {
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": name}, "stringData": {"kubeconfig": kubeconfig}}),
    )?;
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// A request for one cluster on OCloud `ocloud` (of `ocloud_namespace`, if given).
fn on(
    name: &str,
    ocloud: &str,
    ocloud_namespace: Option<&str>,
    endpoint: &str,
) -> FocomProvisioningRequest {
    let mut spec = one_cluster(name, endpoint);
    spec.o_cloud_id = Some(ocloud.into());
    spec.o_cloud_namespace = ocloud_namespace.map(Into::into);
    request(name, spec)
}

/// Waits for `OCloudReachable=False/<reason>`; returns the request and the condition's message.
async fn refused(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &str,
) -> anyhow::Result<(FocomProvisioningRequest, String)> {
    let fpr = wait_request(client, namespace, name, reason, |r| {
        condition(r, "OCloudReachable").is_some_and(|c| c.0 == "False" && c.1 == reason)
    })
    .await?;
    let text = condition(&fpr, "OCloudReachable").unwrap_or_default().2;
    Ok((fpr, text))
}

#[tokio::test]
async fn a_request_uses_only_oclouds_of_its_namespace_or_of_allowed_ones() -> anyhow::Result<()> {
    let (_, client, f) = setup().await?;
    let ns = f.tenant.as_str();
    for namespace in [&f.tenant, &f.other, &f.allowed] {
        ocloud(&client, namespace, "local", None).await?;
    }

    // Another tenant's OCloud: failed at once (a spec error, not retried), nothing created.
    create(
        &client,
        ns,
        &on("theirs", "local", Some(&f.other), "10.20.0.1"),
    )
    .await?;
    let (fpr, text) = refused(&client, ns, "theirs", "OCloudNotAllowed").await?;
    assert_eq!(phase(&fpr), Some(FocomPhase::Failed));
    assert!(
        text.contains("spec.oCloudNamespace") && text.contains(&f.other),
        "{text}"
    );
    assert!(
        message(&fpr).contains("spec.oCloudNamespace"),
        "{}",
        message(&fpr)
    );
    assert!(
        owned(&client, ns, "theirs").await?.is_empty(),
        "nothing is created"
    );
    // Its deletion does not wait for an O-Cloud it may not use.
    let requests = Api::<FocomProvisioningRequest>::namespaced(client.clone(), ns);
    requests.delete("theirs", &DeleteParams::default()).await?;
    testcluster::wait_for("the refused request to go", TIMEOUT, || async {
        Ok(requests.get_opt("theirs").await?.is_none().then_some(()))
    })
    .await?;

    // Its own namespace's OCloud (named explicitly or not) and an allowed namespace's work.
    create(&client, ns, &on("own", "local", None, "10.20.0.2")).await?;
    create(&client, ns, &on("explicit", "local", Some(ns), "10.20.0.3")).await?;
    create(
        &client,
        ns,
        &on("allowed", "local", Some(&f.allowed), "10.20.0.4"),
    )
    .await?;
    for name in ["own", "explicit", "allowed"] {
        wait_owned(&client, ns, name, 1).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_ocloud_uses_only_secrets_of_its_namespace() -> anyhow::Result<()> {
    let (cluster, client, f) = setup().await?;
    let ns = f.tenant.as_str();
    // A working kubeconfig, but in the operator's namespace.
    let admin = std::fs::read_to_string(cluster.kubeconfig_path())?;
    kubeconfig_secret(&client, &f.operator_namespace, "admin-kubeconfig", &admin).await?;
    ocloud(
        &client,
        ns,
        "borrowed",
        Some((&f.operator_namespace, "admin-kubeconfig")),
    )
    .await?;
    create(&client, ns, &on("borrowed", "borrowed", None, "10.21.0.1")).await?;
    let (_, text) = refused(&client, ns, "borrowed", "SecretNotAllowed").await?;
    assert!(
        text.contains("spec.o2imsSecret.secretRef.namespace")
            && text.contains(&f.operator_namespace),
        "{text}"
    );
    assert!(
        owned(&client, ns, "borrowed").await?.is_empty(),
        "nothing is created"
    );
    Ok(())
}

#[tokio::test]
async fn kubeconfigs_that_run_commands_or_read_files_are_refused_before_use() -> anyhow::Result<()>
{
    let (cluster, client, f) = setup().await?;
    let ns = f.tenant.as_str();
    // Variants of the admin kubeconfig that would work if they were used.
    let admin: Value =
        lcm_core::yaml::from_str(&std::fs::read_to_string(cluster.kubeconfig_path())?)?;
    let token = admin["users"][0]["user"]["token"]
        .as_str()
        .expect("the admin kubeconfig has a token")
        .to_string();
    let files = std::env::temp_dir().join(format!("focom-{ns}"));
    std::fs::create_dir_all(&files)?;
    let token_file = files.join("token");
    std::fs::write(&token_file, &token)?;
    let marker = files.join("exec-ran");
    let credential = json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": token}});
    let script = format!("touch '{}'; echo '{credential}'", marker.display());
    let user = |user: Value| {
        let mut kubeconfig = admin.clone();
        kubeconfig["users"][0]["user"] = user;
        kubeconfig
    };
    let mut with_ca_file = admin.clone();
    let cluster_entry = &mut with_ca_file["clusters"][0]["cluster"];
    cluster_entry
        .as_object_mut()
        .expect("cluster")
        .remove("certificate-authority-data");
    cluster_entry["certificate-authority"] = json!(cluster.ca_file());
    let user_name = admin["users"][0]["name"].as_str().unwrap_or_default();
    let cluster_name = admin["clusters"][0]["name"].as_str().unwrap_or_default();
    let cases = [
        (
            "exec",
            user(
                json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
                "args": ["-c", script], "interactiveMode": "Never"}}),
            ),
            format!("users[{user_name}].user.exec"),
        ),
        (
            "token-file",
            user(json!({"tokenFile": token_file})),
            format!("users[{user_name}].user.tokenFile"),
        ),
        (
            "auth-provider",
            user(json!({"auth-provider": {"name": "oidc", "config": {"id-token": token}}})),
            format!("users[{user_name}].user.auth-provider"),
        ),
        (
            "key-file",
            user(
                json!({"client-certificate": files.join("admin.crt"), "client-key": files.join("admin.key")}),
            ),
            format!("users[{user_name}].user.client-key"),
        ),
        (
            "ca-file",
            with_ca_file,
            format!("clusters[{cluster_name}].cluster.certificate-authority"),
        ),
    ];
    for (i, (name, kubeconfig, _)) in cases.iter().enumerate() {
        kubeconfig_secret(&client, ns, name, &kubeconfig.to_string()).await?;
        ocloud(&client, ns, name, Some((ns, name))).await?;
        create(
            &client,
            ns,
            &on(name, name, None, &format!("10.22.0.{}", i + 1)),
        )
        .await?;
    }
    for (name, _, field) in &cases {
        let (fpr, text) = refused(&client, ns, name, "InvalidKubeconfig").await?;
        assert!(
            text.contains(field) && text.contains(&format!("Secret {ns}/{name}")),
            "{name}: {text}"
        );
        assert_eq!(
            phase(&fpr),
            Some(FocomPhase::Pending),
            "{name}: the admin may fix the Secret"
        );
        assert!(
            owned(&client, ns, name).await?.is_empty(),
            "{name}: nothing is created"
        );
    }
    assert!(!marker.exists(), "the exec command never ran");
    std::fs::remove_dir_all(&files)?;
    Ok(())
}

#[tokio::test]
async fn a_tenants_template_info_cannot_shadow_the_admins() -> anyhow::Result<()> {
    let (_, client, f) = setup().await?;
    let ns = f.tenant.as_str();
    // The admin's catalogue requires a `site`; the tenant's copy (same template, and Nephio's
    // name) accepts anything, and so does one in the operator's own namespace.
    template_info(
        &client,
        &f.catalogue,
        "admins",
        "catalogued",
        "v1",
        json!({"type": "object", "required": ["site"]}),
    )
    .await?;
    for namespace in [ns, f.operator_namespace.as_str()] {
        template_info(
            &client,
            namespace,
            "catalogued-v1",
            "catalogued",
            "v1",
            json!({"type": "object"}),
        )
        .await?;
    }
    let mut spec = one_cluster("shadowed", "10.23.0.1");
    spec.template_name = "catalogued".into();
    spec.template_version = "v1".into();
    create(&client, ns, &request("shadowed", spec)).await?;
    let fpr = wait_phase(&client, ns, "shadowed", FocomPhase::Failed).await?;
    let (_, reason, text) = condition(&fpr, "Validated").expect("condition");
    assert_eq!(reason, "InvalidRequest");
    assert!(
        text.contains("spec.templateParameters: \"site\" is a required property"),
        "the admin's schema decides: {text}"
    );
    assert!(
        owned(&client, ns, "shadowed").await?.is_empty(),
        "nothing is created"
    );
    Ok(())
}
