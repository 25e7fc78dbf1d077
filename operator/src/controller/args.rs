use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::http_serve::{LimitsError, ServerLimits};

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
    /// Limits on the admin server's clients.
    #[command(flatten)]
    pub admin_limits: AdminLimitsArgs,
    /// How often resources with spec.clientIdFrom.secretKeyRef re-read their Secret. Secrets are
    /// read by name only (least privilege), not watched.
    #[arg(long, env = "WCA_SECRET_RESYNC", default_value = "60s", value_parser = parse_duration_arg)]
    pub secret_resync: std::time::Duration,
    /// Log format.
    #[arg(long, env = "WCA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// Default `--admin-header-read-timeout`.
const DEFAULT_ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--admin-max-connections`: the admin server's clients are the kubelet's probes and a
/// few Prometheus scrapers.
const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 128;
/// Default `--admin-max-header-bytes`.
const DEFAULT_ADMIN_MAX_HEADER_BYTES: usize = 16 * 1024;

/// How far the admin server's clients are trusted (see [`crate::http_serve`]).
#[derive(Debug, Clone, Args)]
pub struct AdminLimitsArgs {
    /// Time an admin client has to send a complete request head, counted from accept or from
    /// the end of its previous response; so also how long an idle keep-alive connection stays.
    #[arg(
        long = "admin-header-read-timeout",
        env = "WCA_ADMIN_HEADER_READ_TIMEOUT",
        default_value = "5s",
        value_name = "DURATION",
        value_parser = parse_duration_arg
    )]
    pub header_read_timeout: Duration,
    /// Most admin connections open at once; further ones are closed at accept.
    #[arg(
        long = "admin-max-connections",
        env = "WCA_ADMIN_MAX_CONNECTIONS",
        default_value_t = DEFAULT_ADMIN_MAX_CONNECTIONS,
        value_name = "N"
    )]
    pub max_connections: usize,
    /// Largest admin request head (start line and headers) in bytes; larger ones get 431.
    #[arg(
        long = "admin-max-header-bytes",
        env = "WCA_ADMIN_MAX_HEADER_BYTES",
        default_value_t = DEFAULT_ADMIN_MAX_HEADER_BYTES,
        value_name = "BYTES"
    )]
    pub max_header_bytes: usize,
}

impl Default for AdminLimitsArgs {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_ADMIN_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_ADMIN_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_ADMIN_MAX_HEADER_BYTES,
        }
    }
}

impl AdminLimitsArgs {
    /// Checks the values.
    pub fn to_limits(&self) -> Result<ServerLimits, LimitsError> {
        ServerLimits::new(
            self.header_read_timeout,
            self.max_connections,
            self.max_header_bytes,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn admin_limits_default_to_the_documented_values() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let limits = cli.run.admin_limits.to_limits().unwrap();
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(5));
        assert_eq!(limits.max_connections(), 128);
        assert_eq!(limits.max_header_bytes(), 16 * 1024);
        assert_eq!(
            AdminLimitsArgs::default().to_limits(),
            Ok(limits),
            "Default matches the flags"
        );
    }

    #[test]
    fn admin_limits_are_parsed_and_checked() {
        let cli = Cli::try_parse_from([
            "x",
            "--admin-header-read-timeout",
            "1500ms",
            "--admin-max-connections",
            "3",
            "--admin-max-header-bytes",
            "2048",
        ])
        .unwrap();
        let limits = cli.run.admin_limits.to_limits().unwrap();
        assert_eq!(limits.header_read_timeout(), Duration::from_millis(1500));
        assert_eq!(limits.max_connections(), 3);
        assert_eq!(limits.max_header_bytes(), 2048);
        let cli = Cli::try_parse_from(["x", "--admin-header-read-timeout", "0s"]).unwrap();
        assert_eq!(
            cli.run.admin_limits.to_limits(),
            Err(LimitsError::ZeroHeaderReadTimeout)
        );
    }
}
