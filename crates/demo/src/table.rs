//! The live table: per cluster, the FocomProvisioningRequest phase, the ProvisioningRequest
//! state, the Cluster API phase and the hosts it runs on.

use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use lcm_core::capi::{CAPI_CLUSTER_NAME_LABEL, Kind};
use lcm_core::crd::{FocomProvisioningRequest, ProvisioningRequest};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub cluster: String,
    pub request_phase: String,
    pub provisioning_state: String,
    pub capi: String,
    pub hosts: String,
    pub message: String,
}

async fn dynamic(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
    Ok(api
        .get_opt(name)
        .await?
        .map(|o| serde_json::to_value(o).unwrap_or_default()))
}

fn ready(object: &Option<serde_json::Value>) -> String {
    object.as_ref().map_or("-".into(), |o| {
        format!(
            "{}/{}",
            o["status"]["readyReplicas"].as_i64().unwrap_or(0),
            o["spec"]["replicas"].as_i64().unwrap_or(0)
        )
    })
}

/// One row per cluster of the request `namespace/name`.
pub async fn rows(client: &Client, namespace: &str, name: &str) -> anyhow::Result<Vec<Row>> {
    let Some(request) = Api::<FocomProvisioningRequest>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        return Ok(Vec::new());
    };
    let status = request.status.unwrap_or_default();
    let phase = status
        .phase
        .map(|p| p.to_string())
        .unwrap_or_else(|| "Pending".into());
    let hosts: Api<DynamicObject> = Api::all_with(client.clone(), &Kind::ByoHost.api_resource());
    let mut rows = Vec::new();
    for cluster in status.clusters {
        let pr = match &cluster.provisioning_request {
            Some(pr) => {
                Api::<ProvisioningRequest>::all(client.clone())
                    .get_opt(pr)
                    .await?
            }
            None => None,
        };
        let (state, message) = pr
            .as_ref()
            .and_then(|r| r.status.as_ref()?.provisioning_status.clone())
            .map(|s| (s.provisioning_state.to_string(), s.provisioning_message))
            .unwrap_or_else(|| {
                (
                    cluster.state.clone().unwrap_or_else(|| "-".into()),
                    String::new(),
                )
            });
        let capi_namespace = format!("cluster-{}", cluster.name);
        let capi = match dynamic(client, Kind::Cluster, &capi_namespace, &cluster.name).await? {
            None => "-".to_string(),
            Some(object) => {
                let kcp = dynamic(
                    client,
                    Kind::KubeadmControlPlane,
                    &capi_namespace,
                    &format!("{}-control-plane", cluster.name),
                )
                .await?;
                let md = dynamic(
                    client,
                    Kind::MachineDeployment,
                    &capi_namespace,
                    &format!("{}-md-0", cluster.name),
                )
                .await?;
                let phase = object["status"]["phase"].as_str().unwrap_or("Pending");
                format!("{phase} cp {} workers {}", ready(&kcp), ready(&md))
            }
        };
        let claimed = hosts
            .list(
                &ListParams::default()
                    .labels(&format!("{CAPI_CLUSTER_NAME_LABEL}={}", cluster.name)),
            )
            .await?;
        let mut ids: Vec<String> = claimed
            .items
            .iter()
            .filter_map(|h| h.labels().get(lcm_core::HOST_ID_LABEL).cloned())
            .collect();
        ids.sort();
        rows.push(Row {
            cluster: cluster.name,
            request_phase: phase.clone(),
            provisioning_state: state,
            capi,
            hosts: if ids.is_empty() {
                "-".into()
            } else {
                ids.join(",")
            },
            message,
        });
    }
    Ok(rows)
}

/// The rows as an aligned text table.
pub fn render(rows: &[Row]) -> String {
    let header = [
        "CLUSTER",
        "REQUEST",
        "PROVISIONING",
        "CLUSTER API",
        "HOSTS",
        "MESSAGE",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.cluster.clone(),
                r.request_phase.clone(),
                r.provisioning_state.clone(),
                r.capi.clone(),
                r.hosts.clone(),
                r.message.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |cols: [&str; 6]| {
        let mut text = String::new();
        for (i, col) in cols.iter().enumerate().take(5) {
            text.push_str(&format!("{col:<w$}  ", w = widths[i]));
        }
        text.push_str(cols[5]);
        text.trim_end().to_string()
    };
    let mut out = vec![line(header)];
    out.extend(
        cells
            .iter()
            .map(|c| line([&c[0], &c[1], &c[2], &c[3], &c[4], &c[5]])),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let row = |c: &str| Row {
            cluster: c.into(),
            request_phase: "Creating".into(),
            provisioning_state: "progressing".into(),
            capi: "Provisioned cp 0/1 workers 0/1".into(),
            hosts: "host-1".into(),
            message: "waiting".into(),
        };
        let table = render(&[row("core"), row("edge-cluster")]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let column = |l: &str| l.find("Creating").or_else(|| l.find("REQUEST"));
        assert_eq!(column(lines[1]), column(lines[2]));
        assert_eq!(column(lines[0]), column(lines[1]));
    }
}
