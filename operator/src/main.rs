//! Wiring only: parse the command line, set up logging, hand over to the library.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use workos_convex_auth::cli::{Cli, Command, RenderArgs};
use workos_convex_auth::controller::{self, LogFormat};
use workos_convex_auth::reconcile::InlineKeys;
use workos_convex_auth::render::{RenderOptions, render};
use workos_convex_auth::{api, jwks, mirror};

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    // The same commands under either name; as `kubectl-wca` help and usage say `kubectl wca`.
    let cli = Cli::parse_invocation();
    match cli.command {
        Command::Crd => print!("{}", api::crd_yaml()),
        Command::CheckToken(args) => return Ok(workos_convex_auth::check_token::run(args).await),
        Command::Render(args) => print!("{}", render_command(&args)?),
        Command::Status(args) => workos_convex_auth::status_table::run(&args).await?,
        Command::Config(args) => workos_convex_auth::generated::run(&args).await?,
        Command::Probe(args) => return Ok(workos_convex_auth::probe::run(args).await),
        Command::Proxy(args) => {
            init_logging(LogFormat::Json);
            mirror::run(args).await?;
        }
        Command::Run(args) => {
            init_logging(args.log_format);
            controller::run(*args).await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn render_command(args: &RenderArgs) -> anyhow::Result<String> {
    let input = read_input(&args.file)?;
    let keys = |path: &Path| -> anyhow::Result<String> {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let doc = jwks::sanitize(&raw)
            .with_context(|| format!("{} is not a usable JWKS", path.display()))?;
        String::from_utf8(doc.body.to_vec()).context("sanitised JWKS is UTF-8")
    };
    let inline_keys = match &args.jwks {
        Some(path) => Some(InlineKeys {
            workos: keys(path)?,
            authkit: args.authkit_jwks.as_deref().map(keys).transpose()?,
        }),
        None => None,
    };
    let options = RenderOptions {
        client_id: args.client_id.clone(),
        context: workos_convex_auth::reconcile::BuildContext {
            default_image: args.image.clone(),
            cluster_domain: args.cluster_domain.clone(),
            ..Default::default()
        },
        inline_keys,
        admit: true,
    };
    Ok(render(&input, &options)?)
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}
