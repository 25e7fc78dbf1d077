//! `check-token`: explains whether Convex accepts a token and, when it does not, why and what
//! to change. It replays Convex's own checks (`convex::verify`) against a config read from a
//! file, a resource rendered offline, or a live resource's ConfigMap.
//!
//! Pipeline: `source` (providers) → `walk` (the match, in words) → `jwks_source` (the keys, as
//! Convex fetches them) → `verify` → `report` + `fix` + `identity` (pure) → `output`.

mod args;
mod clock;
mod fix;
mod identity;
mod jwks_source;
mod output;
mod report;
mod source;
mod walk;

use std::io::Read;
use std::path::PathBuf;

pub use args::{CheckTokenArgs, OutputFormat};
pub use fix::{Evidence, Explanation, explain};
pub use identity::{Identity, JsonType, identity};
pub use jwks_source::{JwksProblem, Keys};
pub use output::render;
pub use report::{Check, JwksSummary, Report, TimeClaim, TokenSummary, Verdict};
pub use source::{Provider, Providers, SourceError, parse_config};
pub use walk::{ProviderStep, StepResult};

use crate::convex::verify::{MAX_TOKEN_BYTES, MalformedToken, decode, verify};

/// Exit code for a usage or input error (the others come from [`Verdict::exit_code`]).
pub const EXIT_INPUT_ERROR: u8 = 2;

/// The input could not be used: nothing was checked. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CheckTokenError {
    #[error("no token given: pass it as the argument, or on standard input with `-`")]
    NoToken,
    #[error("cannot read the token from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("the token is not a JWT: {0}")]
    Token(#[from] MalformedToken),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot read --jwks {0}: {1}")]
    JwksFile(PathBuf, std::io::Error),
    #[error("--jwks {0} is not a JWK set ({{\"keys\": [...]}}): {1}")]
    JwksFileInvalid(PathBuf, String),
}

/// Runs the command for the binary: prints the report (or the error) and returns the exit code:
/// 0 accepted, 1 rejected, 2 usage or input error.
pub async fn run(args: CheckTokenArgs) -> std::process::ExitCode {
    let format = args.output;
    let code = match check(&args).await {
        Ok(report) => {
            print!("{}", render(&report, format));
            report.verdict.exit_code()
        }
        Err(e) => {
            match format {
                OutputFormat::Json => print!("{}", output::json_error(&e.to_string())),
                OutputFormat::Text => eprintln!("error: {e}"),
            }
            EXIT_INPUT_ERROR
        }
    };
    std::process::ExitCode::from(code)
}

/// Checks the token the arguments name (reading standard input for `-`) and returns the report.
pub async fn check(args: &CheckTokenArgs) -> Result<Report, CheckTokenError> {
    let raw = if args.token == "-" {
        read_stdin()?
    } else {
        args.token.clone()
    };
    check_token(&raw, args).await
}

/// Checks `raw` (the token text) against the providers the arguments name.
pub async fn check_token(raw: &str, args: &CheckTokenArgs) -> Result<Report, CheckTokenError> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
    if raw.is_empty() {
        return Err(CheckTokenError::NoToken);
    }
    let token = decode(raw)?;
    let override_keys = args.jwks.as_deref().map(read_jwks_file).transpose()?;
    let providers = load_providers(args).await?;
    let now = args.now.unwrap_or_else(unix_now);

    let walk = walk::walk(&providers, &token);
    let (config, positions) = providers.custom_jwt();
    let matched_custom = walk
        .matched
        .and_then(|i| positions.iter().position(|p| *p == i));
    let (keys, jwks_source) = match (walk.matched, matched_custom) {
        (Some(_), Some(c)) => {
            let url = &config.providers[c].jwks;
            match (&override_keys, &args.jwks) {
                (Some(set), Some(path)) => (
                    Some(Ok(Keys {
                        set: set.clone(),
                        status: None,
                        content_type: None,
                    })),
                    Some(format!("--jwks {}", path.display())),
                ),
                _ => (
                    Some(jwks_source::load(url).await),
                    Some(if url.starts_with("data:") {
                        "data: URL in the config".to_string()
                    } else {
                        url.clone()
                    }),
                ),
            }
        }
        _ => (None, None),
    };
    // An OIDC provider matching first means Convex never reaches a customJwt one.
    let oidc_first = walk.matched.is_some() && matched_custom.is_none();
    let outcome = (!oidc_first).then(|| {
        verify(
            &config,
            raw,
            &token,
            &mut |_| match &keys {
                Some(Ok(k)) => Ok(k.set.clone()),
                Some(Err(problem)) => Err(problem.to_string()),
                None => Err("no keys were loaded".to_string()),
            },
            now,
        )
        .map(|i| positions[i])
    });
    Ok(report::assemble(report::Findings {
        providers: &providers,
        token: &token,
        walk,
        positions: &positions,
        keys: keys.as_ref(),
        jwks_source,
        outcome,
        now,
    }))
}

async fn load_providers(args: &CheckTokenArgs) -> Result<Providers, SourceError> {
    if let Some(path) = &args.config {
        source::from_config_file(path)
    } else if let Some(path) = &args.file {
        source::from_resource_file(path, args.client_id.as_deref(), args.jwks.as_deref())
    } else {
        // clap's required group guarantees one of the three; an empty name is refused below.
        let resource = args.resource.as_deref().unwrap_or_default();
        source::from_cluster(resource, &args.cluster).await
    }
}

fn read_jwks_file(path: &std::path::Path) -> Result<jsonwebtoken::jwk::JwkSet, CheckTokenError> {
    let raw = std::fs::read(path).map_err(|e| CheckTokenError::JwksFile(path.to_path_buf(), e))?;
    jwks_source::parse_set(&raw, &path.display().to_string())
        .map_err(|e| CheckTokenError::JwksFileInvalid(path.to_path_buf(), e.to_string()))
}

/// Reads at most a little more than any token can be, so a huge input fails fast.
fn read_stdin() -> Result<String, CheckTokenError> {
    let limit = (MAX_TOKEN_BYTES * 4) as u64;
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(CheckTokenError::Stdin)?;
    if bytes.len() as u64 > limit {
        return Err(MalformedToken::TooLong(bytes.len()).into());
    }
    String::from_utf8(bytes).map_err(|_| {
        CheckTokenError::Stdin(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "standard input is not UTF-8 text",
        ))
    })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
