use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `workos-convex-auth run`: the controller.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; unset: $KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "WCA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace; unset: all namespaces.
    #[arg(long, env = "WCA_NAMESPACE")]
    pub namespace: Option<String>,
    /// Image of the JWKS mirror when a resource does not set spec.proxy.image.
    #[arg(long, env = "WCA_PROXY_IMAGE", default_value = crate::DEFAULT_IMAGE)]
    pub proxy_image: String,
    /// Address of the admin server (/healthz, /readyz, /metrics).
    #[arg(long, env = "WCA_ADMIN_ADDR", default_value = "0.0.0.0:8081")]
    pub admin_addr: SocketAddr,
    /// How often resources with spec.clientIdFrom.secretKeyRef re-read their Secret. Secrets are
    /// read by name only (least privilege), not watched.
    #[arg(long, env = "WCA_SECRET_RESYNC", default_value = "60s", value_parser = parse_duration_arg)]
    pub secret_resync: std::time::Duration,
    /// Log format.
    #[arg(long, env = "WCA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_duration(s).map_err(|e| e.to_string())
}
