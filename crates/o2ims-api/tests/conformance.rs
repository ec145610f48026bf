//! Conformance as an SMO's tooling tests it: Schemathesis, a property-based API tester this
//! project did not write, generates requests from the O2ims OpenAPI documents (every operation,
//! parameters and bodies valid and invalid, methods a path does not take) against the real
//! server on the real control plane, and checks every response against its document: a
//! documented status, the documented content type (problem+json on errors), a body valid
//! against its schema, no server error, invalid input refused, 405 with `Allow`.
//!
//! The tool is pinned and installed by the test into `.cache/schemathesis` (a Python venv) on
//! first use; the run is bounded (examples per operation), about a minute on 2 cores.

mod support;

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use serde_json::json;
use support::*;
use testcluster::TestCluster;

/// The Schemathesis release the test runs (a new one may check more: bump it deliberately).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// Examples generated per operation and phase.
const MAX_EXAMPLES: &str = "100";

/// What every response is held to (Schemathesis' names).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance,negative_data_rejection,\
unsupported_method,allow_header_conformance";

/// `.cache/schemathesis/bin/st`, installed when missing or of another version.
fn schemathesis() -> anyhow::Result<PathBuf> {
    let venv = testcluster::repo_root().join(".cache/schemathesis");
    let st = venv.join("bin/st");
    let stamp = venv.join(".installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(SCHEMATHESIS) && st.exists() {
        return Ok(st);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let run = |program: &std::path::Path, args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "{} {args:?} failed (python3 and python3-venv are needed):\n{}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    run(
        "python3".as_ref(),
        &["-m", "venv", venv.to_str().context("path")?],
    )?;
    run(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ],
    )?;
    std::fs::write(&stamp, SCHEMATHESIS)?;
    Ok(st)
}

#[tokio::test]
async fn every_operation_answers_as_its_document_says() -> anyhow::Result<()> {
    let st = schemathesis()?;
    let cluster = TestCluster::shared().await?;
    let client = cluster.admin_client()?;
    let namespace = cluster
        .namespace("o2ims-api-conformance")
        .await?
        .name()
        .to_string();
    write_inventory(
        &client,
        &namespace,
        &json!({"hosts": [
            {"id": "cf-h1", "hostname": "cf-node-1", "address": "10.6.0.1", "labels": {"site": "lab"}},
            {"id": "cf-h2", "hostname": "cf-node-2", "address": "10.6.0.2"}
        ], "clusters": [],
        "sites": [{"name": "lab", "globalLocationId": "lab-1"}],
        "locations": [{"globalLocationId": "lab-1", "name": "Lab", "address": "1 Lab Road"}]}),
    )
    .await?;
    let server = start_with(cluster, &namespace, &["--page-size", "5"]).await?;
    let token = token_with_roles(
        cluster,
        &namespace,
        "conformance",
        &[
            "oran-lcm-o2ims-provisioner",
            "oran-lcm-o2ims-subscriber",
            "oran-lcm-o2ims-maintainer",
            "oran-lcm-o2ims-alertmanager",
        ],
    )
    .await?;
    // Something to list: a request and an alarm.
    let request = server
        .call(
            "POST",
            &format!("{PROVISIONING}/provisioningRequests"),
            Some(&token),
            Some(&json!({
                "provisioningRequestId": "5f0c9a3e-7b1d-4e2a-9c8b-1a2b3c4d5e6f",
                "name": "conformance", "description": "", "templateName": "byoh-workload-cluster",
                "templateVersion": "v1",
                "templateParameters": {"clusterName": "cf", "kubernetesVersion": "v1.33.5",
                    "controlPlaneEndpoint": {"host": "10.6.1.1"},
                    "hosts": {"controlPlane": ["cf-h1"], "workers": []}, "cni": "none"}
            })),
        )
        .await?;
    anyhow::ensure!(request.status == 201, "{request:?}");
    let alert = server
        .0
        .http()?
        .post(format!("{}/internal/v1/alertmanager", server.0.base))
        .bearer_auth(&token)
        .json(&json!({"version": "4", "groupKey": "g", "status": "firing", "receiver": "o2ims",
            "alerts": [{"status": "firing", "labels": {"alertname": "ConformanceAlert", "severity": "warning"},
                "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}]}))
        .send()
        .await?;
    anyhow::ensure!(alert.status() == 200, "{}", alert.status());

    // The GETs of one object reach real ones (every other operation's ids are generated).
    let first = |path: String, id: &'static str| {
        let server = &server;
        let token = &token;
        async move {
            let reply = server.call("GET", &path, Some(token), None).await?;
            reply
                .body
                .as_ref()
                .and_then(|b| b[0][id].as_str())
                .map(String::from)
                .with_context(|| format!("no {id} in {path}: {reply:?}"))
        }
    };
    let pool = first(format!("{INVENTORY}/resourcePools"), "resourcePoolId").await?;
    let known = [
        (
            "resources",
            "getResourcePool",
            "resourcePoolId",
            pool.clone(),
        ),
        ("resources", "getResources", "resourcePoolId", pool.clone()),
        (
            "resources",
            "getResourceType",
            "resourceTypeId",
            first(format!("{INVENTORY}/resourceTypes"), "resourceTypeId").await?,
        ),
        (
            "resources",
            "getResourceTypeAlarmDictionary",
            "resourceTypeId",
            first(format!("{INVENTORY}/resourceTypes"), "resourceTypeId").await?,
        ),
        (
            "resources",
            "getAlarmDictionary",
            "alarmDictionaryId",
            first(
                format!("{INVENTORY}/alarmDictionaries"),
                "alarmDictionaryId",
            )
            .await?,
        ),
        (
            "resources",
            "getOCloudSite",
            "oCloudSiteId",
            first(format!("{INVENTORY}/oCloudSites"), "oCloudSiteId").await?,
        ),
        (
            "resources",
            "getLocation",
            "globalLocationId",
            first(format!("{INVENTORY}/locations"), "globalLocationId").await?,
        ),
        (
            "alarms",
            "GetAlarm",
            "alarmEventRecordId",
            first(format!("{MONITORING}/alarms"), "alarmEventRecordId").await?,
        ),
        (
            "provisioning",
            "getProvisioningRequest",
            "provisioningRequestId",
            "5f0c9a3e-7b1d-4e2a-9c8b-1a2b3c4d5e6f".to_string(),
        ),
    ];
    let shared = testcluster::shared_dir().join("o2ims-openapi");
    let documents = [
        shared.join("resources/api/openapi.yaml"),
        shared.join("provisioning/api/openapi.yaml"),
        shared.join("alarms/api/openapi.yaml"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("openapi/provisioning-subscriptions.yaml"),
    ];
    let work = testcluster::repo_root().join(".cache/conformance");
    std::fs::create_dir_all(&work)?;
    let hooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut failed = Vec::new();
    for document in &documents {
        let started = std::time::Instant::now();
        let name = document
            .ancestors()
            .nth(2)
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config = work.join(format!("{name}.toml"));
        let operations: String = known
            .iter()
            .filter(|(doc, ..)| *doc == name)
            .map(|(_, operation, parameter, value)| {
                format!(
                    "[[operations]]\ninclude-operation-id = \"{operation}\"\nparameters = {{ \"path.{parameter}\" = \"{value}\" }}\n\n"
                )
            })
            .collect();
        std::fs::write(&config, operations)?;
        let output = tokio::process::Command::new(&st)
            .arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(document)
            .args(["--url", &server.0.base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--tls-verify", server.0.ca_file.to_str().context("path")?])
            .args(["--checks", CHECKS])
            .args(["--max-examples", MAX_EXAMPLES])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--seed", "20261207"])
            // One worker: Python 3.11 parsing in threads fails now and then ("AST constructor
            // recursion depth mismatch").
            .args(["--workers", "1"])
            .args(["--request-timeout", "10"])
            .args(["--suppress-health-check", "all"])
            .args(["--no-color"])
            // Its cache and reports stay in .cache, not in the crate.
            .current_dir(&work)
            .env("SCHEMATHESIS_HOOKS", "o2ims_hooks")
            .env("PYTHONPATH", &hooks)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", st.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        eprintln!(
            "{}: {summary} ({:.0?})",
            document.display(),
            started.elapsed()
        );
        // CONFORMANCE_VERBOSE=1: the whole report, warnings included.
        if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
            eprintln!("{text}");
        }
        if !output.status.success() {
            failed.push(format!("{}:\n{text}", document.display()));
        }
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n\n"));
    Ok(())
}
