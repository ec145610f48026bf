//! Leader election on a coordination.k8s.io Lease (kube-lease-manager): only the holder
//! reconciles; a replica that loses the Lease stops acting.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds a Lease is valid without renewal, and how long before expiry it is renewed.
const LEASE_SECONDS: u64 = 15;
const GRACE_SECONDS: u64 = 5;

/// The held Lease.
pub struct Leadership {
    is_leader: watch::Receiver<bool>,
    manager: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Waits until `identity` holds the Lease `namespace/name`.
pub async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
    identity: &str,
) -> Result<Leadership, LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await?;
    let (mut is_leader, manager) = manager.watch().await;
    while !*is_leader.borrow_and_update() {
        if is_leader.changed().await.is_err() {
            break;
        }
    }
    Ok(Leadership { is_leader, manager })
}

impl Leadership {
    /// Resolves when the Lease is lost.
    pub async fn lost(&mut self) {
        while *self.is_leader.borrow_and_update() {
            if self.is_leader.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the Lease up, so a standby takes over at once instead of after expiry.
    pub async fn release(self) {
        drop(self.is_leader);
        match self.manager.await {
            Ok(Ok(_)) => tracing::info!("released the Lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the Lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease manager task failed"),
        }
    }
}
