//! The command line of `check-token`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, ValueEnum};

/// Explain whether Convex would accept a token, and why not.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("providers").required(true).args(["config", "file", "resource"])))]
pub struct CheckTokenArgs {
    /// The access token, or `-` (the default) to read it from standard input. A leading
    /// `Bearer ` is ignored. Prefer `-`: a token on the command line lands in shell history.
    #[arg(value_name = "TOKEN", default_value = "-")]
    pub token: String,

    /// A Convex auth config as JSON: the generated `auth.config.json`, or any exported
    /// `{ "providers": [...] }` (the generated `auth.config.ts` is read too).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A YAML file with one WorkOSConvexAuth resource; its config is rendered offline.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// A live WorkOSConvexAuth: its ConfigMap's `auth.config.json` is read from the cluster.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub resource: Option<String>,

    /// Client id for a resource with `spec.clientIdFrom` (with `-f`; a Secret cannot be read offline).
    #[arg(long, value_name = "client_…")]
    pub client_id: Option<String>,

    /// Use this JWKS document for the matching provider instead of fetching its `jwks` URL
    /// (also supplies the keys of a `-f` resource in mode Inline).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,

    /// `text` for people, `json` for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Where `--resource` is read: `--kubeconfig` and `--context`, as kubectl takes them.
    #[command(flatten)]
    pub cluster: crate::kubeconfig::ClusterArgs,

    /// Check the time claims as of this Unix time (seconds) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub now: Option<i64>,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned, human-readable lines ending in the verdict and the fix.
    Text,
    /// One JSON object (`verdict`, `fix`, `token`, `providers`, `jwks`, `checks`, `identity`).
    Json,
}
