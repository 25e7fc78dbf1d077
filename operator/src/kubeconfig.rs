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
    client_in(path, None).await
}

/// As [`client`], in the kubeconfig's context `context` when given (kubectl's `--context`).
pub async fn client_in(
    path: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ClusterError> {
    let cluster = |e: &dyn std::fmt::Display| ClusterError(e.to_string());
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config = match (path, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|e| cluster(&e))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| cluster(&e))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| cluster(&e))?,
        (None, None) => kube::Config::infer().await.map_err(|e| cluster(&e))?,
    };
    kube::Client::try_from(config).map_err(|e| cluster(&e))
}

/// Where the commands people run from a laptop find the cluster: kubectl's flags (kubectl hands
/// a plugin none of its own, so the plugin takes them itself, after its subcommand).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// Kubeconfig. Unset: `$KUBECONFIG`, `~/.kube/config` or in-cluster.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use. Unset: the current context.
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
}

impl ClusterArgs {
    pub async fn client(&self) -> Result<kube::Client, ClusterError> {
        client_in(self.kubeconfig.as_deref(), self.context.as_deref()).await
    }
}
