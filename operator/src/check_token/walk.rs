//! The provider walk: each provider in config order, as Convex tries them, with the result
//! and the reason in words. Pure.

use serde::Serialize;

use super::source::{Provider, Providers};
use crate::convex::rules::{Audience, Mismatch, match_provider, normalize_issuer};
use crate::convex::verify::DecodedToken;

/// What happened to one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Match,
    Mismatch,
    /// An earlier provider matched, so Convex never looks at this one.
    NotTried,
}

/// One provider as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderStep {
    /// 1-based position in `providers`, as people count.
    pub number: usize,
    /// `customJwt` or `oidc`.
    pub kind: &'static str,
    /// The issuer (customJwt) or domain (OIDC), as written in the config.
    pub issuer: String,
    #[serde(rename = "applicationID")]
    pub application_id: Option<String>,
    pub algorithm: Option<String>,
    pub jwks: Option<String>,
    pub result: StepResult,
    pub reason: String,
}

/// The walk's outcome: every step, and the index (into `entries`) of the first match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    pub steps: Vec<ProviderStep>,
    pub matched: Option<usize>,
}

/// Tries every provider in order against the token's `iss` and `aud`. A token without `iss`
/// matches nothing (Convex refuses it before the walk).
pub fn walk(providers: &Providers, token: &DecodedToken) -> Walk {
    let audience = token.audience();
    let mut matched = None;
    let steps = providers
        .entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let (kind, issuer, application_id, algorithm, jwks) = match entry {
                Provider::CustomJwt(p) => (
                    "customJwt",
                    p.issuer.clone(),
                    p.application_id.clone(),
                    Some(p.algorithm.clone()),
                    Some(p.jwks.clone()),
                ),
                Provider::Oidc {
                    domain,
                    application_id,
                } => (
                    "oidc",
                    domain.clone(),
                    Some(application_id.clone()),
                    None,
                    None,
                ),
            };
            let (result, reason) = match (matched, token.issuer()) {
                (Some(first), _) => (
                    StepResult::NotTried,
                    format!("not tried: provider {} matched first", first + 1),
                ),
                (None, None) => (StepResult::Mismatch, "the token has no iss".to_string()),
                (None, Some(iss)) => {
                    match match_provider(&issuer, application_id.as_deref(), iss, &audience) {
                        Ok(()) => {
                            matched = Some(i);
                            (StepResult::Match, match_reason(entry, &audience))
                        }
                        Err(m) => (StepResult::Mismatch, mismatch_reason(&m)),
                    }
                }
            };
            ProviderStep {
                number: i + 1,
                kind,
                issuer,
                application_id,
                algorithm,
                jwks,
                result,
                reason,
            }
        })
        .collect();
    Walk { steps, matched }
}

fn match_reason(entry: &Provider, audience: &Audience) -> String {
    match entry {
        Provider::Oidc { .. } => "issuer and aud match; Convex verifies OIDC providers by discovery, which check-token does not do".into(),
        Provider::CustomJwt(p) => match &p.application_id {
            Some(app) => format!("issuer matches; aud {} contains applicationID {app}", show_audience(audience)),
            None => "issuer matches; aud not checked (no applicationID)".into(),
        },
    }
}

/// The precise reason a provider does not match, with the near misses people make spelled out.
pub fn mismatch_reason(m: &Mismatch) -> String {
    match m {
        Mismatch::Issuer { provider, token } => {
            let hint = if provider.eq_ignore_ascii_case(token) {
                " (only letter case differs; Convex compares case-sensitively)"
            } else if strip_scheme(provider) == strip_scheme(token) {
                " (only the scheme differs)"
            } else {
                ""
            };
            format!("issuer differs: provider {provider}, token {token}{hint}")
        }
        Mismatch::Audience {
            application_id,
            token: Audience::Absent,
        } => format!(
            "issuer matches, but applicationID {application_id} is set and the token has no aud"
        ),
        Mismatch::Audience {
            application_id,
            token,
        } => format!(
            "issuer matches, but aud {} does not contain applicationID {application_id}",
            show_audience(token)
        ),
    }
}

/// `"x"`, `["x", "y"]` or `(absent)`.
pub fn show_audience(audience: &Audience) -> String {
    match audience {
        Audience::Absent => "(absent)".into(),
        Audience::One(s) => format!("{s:?}"),
        Audience::Many(list) => format!("{list:?}"),
    }
}

pub(super) fn strip_scheme(issuer: &str) -> &str {
    issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer)
}

/// The normalised issuer's host and path (path without leading `/`, maybe empty).
pub(super) fn host_and_path(issuer: &str) -> (String, String) {
    let normalised = normalize_issuer(issuer);
    let rest = strip_scheme(&normalised);
    match rest.split_once('/') {
        Some((host, path)) => (host.to_string(), path.to_string()),
        None => (rest.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_named() {
        let r = mismatch_reason(&Mismatch::Issuer {
            provider: "https://api.workos.com".into(),
            token: "https://API.workos.com".into(),
        });
        assert!(
            r.ends_with("(only letter case differs; Convex compares case-sensitively)"),
            "{r}"
        );
        let r = mismatch_reason(&Mismatch::Issuer {
            provider: "https://a.com".into(),
            token: "http://a.com".into(),
        });
        assert!(r.ends_with("(only the scheme differs)"), "{r}");
        let r = mismatch_reason(&Mismatch::Audience {
            application_id: "client_1".into(),
            token: Audience::Many(vec!["x".into()]),
        });
        assert_eq!(
            r,
            "issuer matches, but aud [\"x\"] does not contain applicationID client_1"
        );
    }

    #[test]
    fn splits_host_and_path_after_normalising() {
        assert_eq!(
            host_and_path("acme.authkit.app/"),
            ("acme.authkit.app".into(), String::new())
        );
        assert_eq!(
            host_and_path("https://api.workos.com/user_management/client_1"),
            ("api.workos.com".into(), "user_management/client_1".into())
        );
    }
}
