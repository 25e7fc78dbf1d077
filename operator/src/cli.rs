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
    /// Show every WorkOSConvexAuth's conditions and JWKS URL as a table.
    Status(crate::status_table::StatusArgs),
    /// Print one WorkOSConvexAuth's generated Convex auth config (auth.config.ts by default).
    Config(crate::generated::ConfigArgs),
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
    /// The cluster's DNS domain, for the in-cluster JWKS URL (as `run --cluster-domain`).
    #[arg(long, env = "WCA_CLUSTER_DOMAIN", default_value = crate::reconcile::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::reconcile::names::parse_cluster_domain)]
    pub cluster_domain: String,
}

/// The file name kubectl runs the binary under as a plugin: `kubectl wca …` execs
/// `kubectl-wca` from `PATH` (a symlink to or a copy of this binary; krew installs one).
pub const PLUGIN_FILE: &str = "kubectl-wca";

/// The program name in help and usage when run as the plugin.
pub const PLUGIN_NAME: &str = "kubectl wca";

impl Cli {
    /// Parses the process's arguments, exiting with clap's message on an error (as `parse`).
    pub fn parse_invocation() -> Self {
        Self::parse_args(std::env::args_os())
    }

    /// Parses `args` (program name first). Under the plugin's file name the commands are the
    /// same and only the program name changes, so help and usage say `kubectl wca`.
    pub fn parse_args<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let command = match args.first() {
            Some(program) if invoked_as_plugin(program) => Self::plugin_command(),
            _ => Self::command(),
        };
        let matches = command.get_matches_from(args);
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The command line as the plugin shows it.
    pub fn plugin_command() -> clap::Command {
        use clap::CommandFactory;
        Self::command().name(PLUGIN_NAME).bin_name(PLUGIN_NAME)
    }
}

/// Whether argv[0]'s file name is the plugin's (`kubectl-wca`, or `kubectl-wca.exe` on
/// Windows), whatever directory it is in: kubectl passes the full path it found on `PATH`.
pub fn invoked_as_plugin(program: &std::ffi::OsStr) -> bool {
    std::path::Path::new(program)
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.strip_suffix(".exe").unwrap_or(name) == PLUGIN_FILE)
}

#[cfg(test)]
mod tests {
    /// clap checks the whole command line (unique argument ids, valid defaults) only when asked:
    /// a collision would otherwise surface as a panic at start-up.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
        super::Cli::plugin_command().debug_assert();
    }

    #[test]
    fn the_plugin_is_recognised_by_its_file_name_only() {
        use std::ffi::OsStr;
        for (program, plugin) in [
            ("kubectl-wca", true),
            ("/home/me/.krew/bin/kubectl-wca", true),
            ("C:\\krew\\bin\\kubectl-wca.exe", cfg!(windows)),
            ("kubectl-wca.exe", true),
            ("/usr/local/bin/workos-convex-auth", false),
            ("/opt/kubectl-wca/workos-convex-auth", false),
            ("kubectl-wcax", false),
        ] {
            assert_eq!(
                super::invoked_as_plugin(OsStr::new(program)),
                plugin,
                "{program}"
            );
        }
    }
}
