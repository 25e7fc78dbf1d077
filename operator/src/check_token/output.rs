//! Rendering a [`Report`] as text for people or JSON for scripts.

use std::fmt::Write;

use serde_json::Value;

use super::args::OutputFormat;
use super::identity::{Identity, JsonType};
use super::report::{JwksSummary, Report, TimeClaim, Verdict};
use super::walk::StepResult;

/// Renders the report in the chosen format, ending with a newline.
pub fn render(report: &Report, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => text(report),
        OutputFormat::Json => json(report),
    }
}

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    // A Report holds only strings, numbers and JSON values, which always serialise.
    let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
    out.push('\n');
    out
}

/// An input error as JSON, so scripts using `--output json` always get an object.
pub fn json_error(message: &str) -> String {
    let mut out = serde_json::to_string_pretty(&serde_json::json!({
        "verdict": "error",
        "error": message,
    }))
    .unwrap_or_default();
    out.push('\n');
    out
}

/// The report as aligned text, ending with the verdict and the fix.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    token_text(&mut out, r);
    providers_text(&mut out, r);
    if let Some(j) = &r.jwks {
        jwks_text(&mut out, j);
    }
    if !r.checks.is_empty() {
        let _ = writeln!(out, "\nChecks");
        for c in &r.checks {
            let mark = if c.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {mark} {:<9} {}", c.name, c.detail);
        }
    }
    out.push('\n');
    verdict_text(&mut out, r);
    out
}

fn or_absent(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(absent)".into())
}

/// The token's claims, decoded and not yet trusted.
fn token_text(out: &mut String, r: &Report) {
    let t = &r.token;
    let time = |c: &Option<TimeClaim>| {
        c.as_ref().map_or("(absent)".into(), |c| {
            format!("{}  {} ({})", c.unix, c.utc, c.relative)
        })
    };
    let aud = match &t.aud {
        Value::Null => "(absent)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let _ = writeln!(out, "Token (decoded, not yet trusted)");
    for (name, value) in [
        ("alg", or_absent(&t.alg)),
        ("kid", or_absent(&t.kid)),
        ("iss", or_absent(&t.iss)),
        ("aud", aud),
        ("sub", or_absent(&t.sub)),
        ("iat", time(&t.iat)),
        ("nbf", time(&t.nbf)),
        ("exp", time(&t.exp)),
    ] {
        let _ = writeln!(out, "  {name}  {value}");
    }
}

/// The providers in the order Convex tries them, each with what it made of the token.
fn providers_text(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "\nProviders, in the order Convex tries them: {}",
        r.source
    );
    if r.providers.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for p in &r.providers {
        let app = p
            .application_id
            .as_ref()
            .map_or(String::new(), |a| format!("  applicationID {a}"));
        let _ = writeln!(out, "  {}. {} {}{app}", p.number, p.kind, p.issuer);
        let label = match p.result {
            StepResult::Match => "MATCH",
            StepResult::Mismatch => "no match",
            StepResult::NotTried => "-",
        };
        let _ = writeln!(out, "     {label}: {}", p.reason);
    }
}

/// How the matching provider's JWKS was served, and its key ids or the error.
fn jwks_text(out: &mut String, j: &JwksSummary) {
    let _ = writeln!(out, "\nJWKS of provider {}: {}", j.provider, j.source);
    let mut served = Vec::new();
    if let Some(status) = j.status {
        served.push(format!("HTTP {status}"));
    }
    if let Some(ct) = &j.content_type {
        served.push(format!("Content-Type {ct}"));
    }
    if !served.is_empty() {
        let _ = writeln!(out, "  {}", served.join(", "));
    }
    match &j.error {
        Some(e) => {
            let _ = writeln!(out, "  error: {e}");
        }
        None => {
            let _ = writeln!(out, "  kids: {}", j.kids.join(", "));
        }
    }
}

/// The verdict: the identity Convex would see, or why not and the fix.
fn verdict_text(out: &mut String, r: &Report) {
    match r.verdict {
        Verdict::Accepted => {
            let _ = writeln!(
                out,
                "ACCEPTED by provider {}",
                r.provider.unwrap_or_default()
            );
            if let Some(id) = &r.token_identifier {
                let _ = writeln!(out, "tokenIdentifier: {id}");
            }
            if let Some(identity) = &r.identity {
                out.push_str(&identity_text(identity));
            }
        }
        Verdict::Rejected | Verdict::Unchecked => {
            let word = if r.verdict == Verdict::Rejected {
                "REJECTED"
            } else {
                "UNCHECKED"
            };
            let _ = writeln!(out, "{word}: {}", or_absent(&r.reason));
            if let Some(fix) = &r.fix {
                let _ = writeln!(out, "Fix: {fix}");
            }
        }
    }
}

/// The identity as aligned `name  type  value` lines; values as compact JSON, so strings are
/// quoted and escaped (a claim cannot write control characters to the terminal).
pub fn identity_text(identity: &Identity) -> String {
    let named = [
        (
            "tokenIdentifier",
            Value::String(identity.token_identifier.clone()),
        ),
        ("issuer", Value::String(identity.issuer.clone())),
        ("subject", Value::String(identity.subject.clone())),
    ];
    let rows: Vec<(&str, &Value)> = named
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(identity.custom_claims.iter().map(|(k, v)| (k.as_str(), v)))
        .collect();
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("\nIdentity Convex will see (ctx.auth.getUserIdentity())\n");
    for (key, value) in rows {
        let _ = writeln!(
            out,
            "  {key:<width$}  {:<7}  {}",
            JsonType::of(value).name(),
            serde_json::to_string(value).unwrap_or_default()
        );
    }
    out
}
