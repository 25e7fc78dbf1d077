//! The command line: one binary, one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Wires WorkOS AuthKit tokens into Convex on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "workos-convex-auth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: reconcile WorkOSConvexAuth resources.
    Run(Box<crate::controller::RunArgs>),
    /// Run the JWKS mirror: serve WorkOS's signing keys from memory.
    Proxy(crate::mirror::MirrorArgs),
    /// Print the WorkOSConvexAuth CustomResourceDefinition as YAML.
    Crd,
    /// Explain whether Convex accepts a token, and what to change when it does not.
    CheckToken(crate::check_token::CheckTokenArgs),
    /// Print, offline, the objects the operator would apply for each resource in a file.
    Render(RenderArgs),
    /// GET a URL once; exit 0 on a 2xx answer (the chart's `helm test` checks /readyz with it).
    Probe(crate::probe::ProbeArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// YAML file with one or more WorkOSConvexAuth documents; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Client id to use for resources with `spec.clientIdFrom` (a Secret cannot be read offline).
    #[arg(long, value_name = "client_…")]
    pub client_id: Option<String>,
    /// JWKS document to embed in mode Inline (e.g. saved from https://api.workos.com/sso/jwks/<clientId>).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// The AuthKit domain's JWKS document, for mode Inline with `spec.authkitDomain`.
    #[arg(long, value_name = "FILE")]
    pub authkit_jwks: Option<PathBuf>,
    /// Image of the mirror when `spec.proxy.image` is unset.
    #[arg(long, env = "WCA_PROXY_IMAGE", default_value = crate::DEFAULT_IMAGE)]
    pub image: String,
}

#[cfg(test)]
mod tests {
    /// clap checks the whole command line (unique argument ids, valid defaults) only when asked:
    /// a collision would otherwise surface as a panic at start-up.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
