//! The user's cluster, for the commands people run from a laptop (`check-token --resource`,
//! `status`): an explicit kubeconfig, or whatever kubectl would use.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// The cluster could not be reached with the kubeconfig given or found.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the cluster: {0}; pass --kubeconfig or check your current context")]
pub struct ClusterError(pub String);

/// A client from `path`, or when unset from `$KUBECONFIG`, `~/.kube/config` or in-cluster (as
/// kubectl finds its config; a kubectl plugin gets no other hint from kubectl).
pub async fn client(path: Option<&Path>) -> Result<kube::Client, ClusterError> {
    let cluster = |e: &dyn std::fmt::Display| ClusterError(e.to_string());
    let config = match path {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| cluster(&e))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| cluster(&e))?
        }
        None => kube::Config::infer().await.map_err(|e| cluster(&e))?,
    };
    kube::Client::try_from(config).map_err(|e| cluster(&e))
}
