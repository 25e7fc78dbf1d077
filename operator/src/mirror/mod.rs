//! The JWKS mirror (`workos-convex-auth proxy`).
//!
//! One refresher task per mirrored document fetches from its upstream and swaps a
//! pre-serialised body into a [`cache::Slot`]; the axum server only reads those slots. Client
//! requests therefore never reach an upstream, and unknown paths are 404.
pub mod cache;
mod cli;
pub mod metrics;
mod refresher;
mod server;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use cli::{
    ConfigError, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES,
    MirrorArgs, MirrorConfig, MirrorSpec, upstream_rules,
};

use crate::jwks::{FetchError, Fetcher};

/// Why the mirror could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The command line does not make a valid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Fetcher(#[from] FetchError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `--listen`.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Runs `workos-convex-auth proxy` until SIGTERM or Ctrl-C.
pub async fn run(args: MirrorArgs) -> Result<(), MirrorError> {
    let addr = args.listen;
    let config = args.into_config()?;
    let listener =
        crate::http_serve::bind(addr).map_err(|source| MirrorError::Bind { addr, source })?;
    tracing::info!(
        %addr,
        mirrors = ?config.mirrors.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(),
        refresh_s = config.refresh.as_secs_f64(),
        max_stale_s = config.max_stale.as_secs_f64(),
        header_read_timeout_s = config.server.header_read_timeout().as_secs_f64(),
        max_connections = config.server.max_connections(),
        max_header_bytes = config.server.max_header_bytes(),
        "JWKS mirror listening"
    );
    serve(listener, config, shutdown_signal()).await
}

/// Serves `config` on `listener` until `shutdown` completes, then drains in-flight requests.
/// Clients are held to `config.server` (see [`crate::http_serve`]).
/// Refreshers start at once; the mirror answers 503 (and `/readyz` fails) until each document
/// has been fetched.
pub async fn serve<F>(
    listener: TcpListener,
    config: MirrorConfig,
    shutdown: F,
) -> Result<(), MirrorError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let fetcher = Fetcher::new(config.limits.clone(), config.upstream.clone())?;
    let shared = Arc::new(server::Shared::new(&config));
    let mut refreshers = JoinSet::new();
    for index in 0..shared.mirrors.len() {
        refreshers.spawn(refresher::run(
            Arc::clone(&shared),
            index,
            fetcher.clone(),
            config.refresh,
        ));
    }
    let connections = Arc::clone(&shared.connections);
    crate::http_serve::serve(
        listener,
        server::router(shared),
        config.server,
        connections,
        shutdown,
    )
    .await;
    refreshers.abort_all();
    tracing::info!("JWKS mirror stopped");
    Ok(())
}

/// Completes on SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; draining");
}
