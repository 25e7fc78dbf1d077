//! `workos-convex-auth proxy` as a stand-alone process, for benchmarking the library before (or
//! independently of) the binary's subcommand wiring. Same arguments and environment variables.

use clap::Parser;
use workos_convex_auth::proxy::{ProxyArgs, run};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(error) = run(Cli::parse().proxy).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
