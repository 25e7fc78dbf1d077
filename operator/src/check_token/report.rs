//! Everything the tool found, as one serialisable value: the JSON output is this struct, and
//! the text output is rendered from it. Assembled purely from the walk and verify's result.

use serde::Serialize;
use serde_json::Value;

use super::clock::{relative, utc};
use super::fix::{Evidence, Explanation, explain};
use super::identity::{Identity, identity};
use super::jwks_source::{JwksProblem, Keys};
use super::source::Providers;
use super::walk::{ProviderStep, Walk};
use crate::convex::verify::{DecodedToken, Rejection};

/// The verdict, and the exit code that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Convex would accept the token (exit 0).
    Accepted,
    /// Convex would reject the token (exit 1).
    Rejected,
    /// An OIDC provider matched first; check-token cannot verify those (exit 2).
    Unchecked,
}

impl Verdict {
    /// 0 accepted, 1 rejected, 2 cannot tell.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Rejected => 1,
            Verdict::Unchecked => 2,
        }
    }
}

/// The full result of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// The 1-based number of the provider that accepted (or matched) the token.
    pub provider: Option<usize>,
    /// Why the token is rejected (or unchecked).
    pub reason: Option<String>,
    /// What to change.
    pub fix: Option<String>,
    /// `<raw iss>|<sub>`: what `ctx.auth.getUserIdentity()` reports, when accepted.
    pub token_identifier: Option<String>,
    /// What `ctx.auth.getUserIdentity()` returns, when accepted: the named fields and the
    /// custom claims, as Convex builds them (`identity.rs`). Absent for a rejected token, for
    /// which Convex builds no identity at all.
    pub identity: Option<Identity>,
    /// Where the providers were read from.
    pub source: String,
    /// The time the claims were checked against (Unix seconds).
    pub now: i64,
    pub token: TokenSummary,
    pub providers: Vec<ProviderStep>,
    pub jwks: Option<JwksSummary>,
    /// The checks after the provider match, in Convex's order, up to the first failure.
    pub checks: Vec<Check>,
}

/// The header fields and claims that decide acceptance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenSummary {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub iss: Option<String>,
    /// As in the token: a string, a list, or null.
    pub aud: Value,
    pub sub: Option<String>,
    pub iat: Option<TimeClaim>,
    pub nbf: Option<TimeClaim>,
    pub exp: Option<TimeClaim>,
}

/// A time claim in three readings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeClaim {
    pub unix: i64,
    pub utc: String,
    pub relative: String,
}

/// The key set of the matched provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwksSummary {
    pub provider: usize,
    /// The URL, `data: URL` or `--jwks <file>`.
    pub source: String,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub kids: Vec<String>,
    pub error: Option<String>,
}

/// One check after the match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// What was found, ready to be assembled into a [`Report`].
#[derive(Debug)]
pub struct Findings<'a> {
    pub providers: &'a Providers,
    pub token: &'a DecodedToken,
    pub walk: Walk,
    /// For each provider `verify` saw, its index in `providers.entries`.
    pub positions: &'a [usize],
    /// The matched provider's keys, when a customJwt provider matched.
    pub keys: Option<&'a Result<Keys, JwksProblem>>,
    pub jwks_source: Option<String>,
    /// verify's result; `None` when an OIDC provider matched first.
    pub outcome: Option<Result<usize, Rejection>>,
    pub now: i64,
}

const STEPS: [&str; 8] = [
    "jwks",
    "kid",
    "alg",
    "signature",
    "claims",
    "exp",
    "nbf",
    "iat",
];

/// Builds the report: verdict, explanation and fix, and the check list.
pub fn assemble(f: Findings<'_>) -> Report {
    let token = summary(f.token, f.now);
    let jwks = jwks_summary(&f);
    let mut report = Report {
        verdict: Verdict::Unchecked,
        provider: f.walk.matched.map(|i| i + 1),
        reason: None,
        fix: None,
        token_identifier: None,
        identity: None,
        source: f.providers.origin.clone(),
        now: f.now,
        checks: Vec::new(),
        token,
        providers: f.walk.steps.clone(),
        jwks,
    };
    match &f.outcome {
        None => {
            let n = report.provider.unwrap_or_default();
            report.reason = Some(format!(
                "provider {n} is an OIDC provider and matches first; Convex verifies it by OIDC discovery, which check-token does not do"
            ));
            report.fix = Some(format!(
                "if this is a WorkOS token, add a customJwt provider for its issuer before provider {n}"
            ));
        }
        Some(Ok(_)) => {
            report.verdict = Verdict::Accepted;
            report.token_identifier = Some(format!(
                "{}|{}",
                f.token.issuer().unwrap_or_default(),
                f.token.claims.get("sub").map_or_else(String::new, plain)
            ));
            report.identity = identity(&f.token.claims);
            report.checks = passed_checks(&f, &report, STEPS.len());
        }
        Some(Err(rejection)) => rejected(&f, &mut report, rejection),
    }
    report
}

/// How the matching provider's JWKS was served: status, Content-Type, key ids or the error.
fn jwks_summary(f: &Findings<'_>) -> Option<JwksSummary> {
    f.walk.matched.zip(f.keys).map(|(i, keys)| JwksSummary {
        provider: i + 1,
        source: f.jwks_source.clone().unwrap_or_default(),
        status: keys.as_ref().ok().and_then(|k| k.status),
        content_type: match keys {
            Ok(k) => k.content_type.clone(),
            Err(JwksProblem::ContentType { content_type, .. }) => content_type.clone(),
            Err(_) => None,
        },
        kids: keys
            .as_ref()
            .map(|k| {
                k.set
                    .keys
                    .iter()
                    .filter_map(|k| k.common.key_id.clone())
                    .collect()
            })
            .unwrap_or_default(),
        error: keys.as_ref().err().map(ToString::to_string),
    })
}

/// A rejected token: why and the fix, and the checks up to the one that failed.
fn rejected(f: &Findings<'_>, report: &mut Report, rejection: &Rejection) {
    let Explanation { reason, fix } = explain(
        rejection,
        &Evidence {
            token: f.token,
            providers: f.providers,
            positions: f.positions,
            jwks_problem: f.keys.and_then(|k| k.as_ref().err()),
            jwks_source: f.jwks_source.as_deref(),
        },
    );
    report.verdict = Verdict::Rejected;
    if let Some(step) = failed_step(rejection) {
        report.checks = passed_checks(f, report, step);
        report.checks.push(Check {
            name: STEPS[step],
            ok: false,
            detail: reason.clone(),
        });
    }
    report.reason = Some(reason);
    report.fix = Some(fix);
}

/// The index in [`STEPS`] a rejection stops at; `None` when it happens before any of them.
fn failed_step(rejection: &Rejection) -> Option<usize> {
    Some(match rejection {
        Rejection::NoIssuer | Rejection::NoProviderMatched(_) => return None,
        Rejection::JwksUnavailable { .. } => 0,
        Rejection::MissingKid { .. } | Rejection::UnknownKid { .. } => 1,
        Rejection::AlgorithmMismatch { .. } => 2,
        Rejection::BadSignature { .. } => 3,
        Rejection::MissingClaim { .. } => 4,
        Rejection::Expired { .. } => 5,
        Rejection::NotYetValid { .. } => 6,
        Rejection::IssuedInFuture { .. } => 7,
    })
}

fn passed_checks(f: &Findings<'_>, report: &Report, upto: usize) -> Vec<Check> {
    let time = |c: &Option<TimeClaim>| {
        c.as_ref().map_or("absent".to_string(), |t| {
            format!("{} ({})", t.utc, t.relative)
        })
    };
    STEPS[..upto]
        .iter()
        .map(|&name| {
            let detail = match name {
                "jwks" => report.jwks.as_ref().map_or(String::new(), |j| {
                    format!("{} key(s): {}", j.kids.len(), j.kids.join(", "))
                }),
                "kid" => format!("{} is in the JWKS", f.token.kid().unwrap_or_default()),
                "alg" => format!(
                    "{} agrees with the key and the provider",
                    f.token.alg().unwrap_or_default()
                ),
                "signature" => "valid".to_string(),
                "claims" => "sub and exp present".to_string(),
                "exp" => time(&report.token.exp),
                "nbf" => time(&report.token.nbf),
                _ => time(&report.token.iat),
            };
            Check {
                name,
                ok: true,
                detail,
            }
        })
        .collect()
}

fn summary(token: &DecodedToken, now: i64) -> TokenSummary {
    let text = |v: &Value, key: &str| v.get(key).map(plain);
    let time = |key: &str| {
        token
            .claims
            .get(key)
            .and_then(Value::as_i64)
            .map(|unix| TimeClaim {
                unix,
                utc: utc(unix),
                relative: relative(unix, now),
            })
    };
    TokenSummary {
        alg: text(&token.header, "alg"),
        kid: text(&token.header, "kid"),
        typ: text(&token.header, "typ"),
        iss: text(&token.claims, "iss"),
        aud: token.claims.get("aud").cloned().unwrap_or(Value::Null),
        sub: text(&token.claims, "sub"),
        iat: time("iat"),
        nbf: time("nbf"),
        exp: time("exp"),
    }
}

/// A claim as text: strings without quotes, anything else as JSON.
fn plain(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}
