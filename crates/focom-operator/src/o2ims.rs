//! How FOCOM writes to an O-Cloud: through its Kubernetes API (this cluster, or a kubeconfig),
//! or through its O2ims REST API. Both take the same ProvisioningRequests and answer with them
//! as the O-Cloud now has them.

use std::sync::Arc;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use lcm_core::crd::ProvisioningRequest;
use lcm_core::rest::provisioning::{data, request_of};

use crate::error::Result;
use crate::rest::RestClient;

#[derive(Clone)]
pub enum O2ims {
    Kube(Client),
    Rest(Arc<RestClient>),
}

impl O2ims {
    /// Creates `desired`; `None` when it exists already (the cache had not seen it yet).
    pub async fn create(
        &self,
        desired: &ProvisioningRequest,
    ) -> Result<Option<ProvisioningRequest>> {
        match self {
            Self::Kube(client) => match api(client).create(&PostParams::default(), desired).await {
                Ok(created) => Ok(Some(created)),
                Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(None),
                Err(e) => Err(e.into()),
            },
            Self::Rest(rest) => Ok(rest.create(&data(desired)).await?.map(|i| request_of(&i))),
        }
    }

    /// Sets the worker hosts of `current` (over REST: the whole request is replaced, as PUT has it).
    pub async fn set_workers(
        &self,
        current: &ProvisioningRequest,
        workers: Value,
    ) -> Result<ProvisioningRequest> {
        match self {
            Self::Kube(client) => {
                let patch =
                    json!({"spec": {"templateParameters": {"hosts": {"workers": workers}}}});
                Ok(api(client)
                    .patch(
                        &current.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?)
            }
            Self::Rest(rest) => {
                let mut replaced = data(current);
                replaced.template_parameters["hosts"]["workers"] = workers;
                Ok(request_of(&rest.replace(&replaced).await?))
            }
        }
    }

    /// Deletes the request `name`; one already gone is no error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self {
            Self::Kube(client) => match api(client).delete(name, &DeleteParams::background()).await
            {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
                Err(e) => Err(e.into()),
            },
            Self::Rest(rest) => rest.delete(name).await,
        }
    }
}

fn api(client: &Client) -> Api<ProvisioningRequest> {
    Api::all(client.clone())
}
