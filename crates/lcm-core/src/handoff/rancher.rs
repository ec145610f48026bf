//! Rancher Turtles imports a Cluster API cluster into Rancher when the Cluster (or its
//! namespace) carries its auto-import label.

use serde_json::json;

use crate::capi::Generated;
use crate::template::ClusterParameters;

/// The label Rancher Turtles' import controller selects Clusters by.
pub const AUTO_IMPORT_LABEL: &str = "cluster-api.cattle.io/rancher-auto-import";

/// Labels the Cluster for Rancher Turtles' auto-import, unless the cluster opted out.
pub fn import(generated: &mut Generated, params: &ClusterParameters) {
    if !params.handoff.rancher {
        return;
    }
    for object in generated
        .objects
        .iter_mut()
        .filter(|o| o["kind"] == "Cluster")
    {
        object["metadata"]["labels"][AUTO_IMPORT_LABEL] = json!("true");
    }
}
