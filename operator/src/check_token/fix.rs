//! Why a token is rejected, in one sentence, and the concrete change that fixes it. Pure: it
//! reads the rejection, the token and the config, and nothing else.

use serde::Serialize;

use super::clock::{relative, utc};
use super::jwks_source::JwksProblem;
use super::source::{Provider, Providers};
use super::walk::{host_and_path, show_audience, strip_scheme};
use crate::convex::generate::WORKOS_API_HOST;
use crate::convex::rules::{Audience, CLOCK_SKEW_SECS, Mismatch, match_provider, normalize_issuer};
use crate::convex::verify::{DecodedToken, Rejection};

/// A rejection in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// What Convex objects to.
    pub reason: String,
    /// What to change.
    pub fix: String,
}

/// What `explain` may look at besides the rejection.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub token: &'a DecodedToken,
    pub providers: &'a Providers,
    /// For each provider `verify` saw (the customJwt ones), its index in `providers.entries`.
    pub positions: &'a [usize],
    /// The structured cause when the JWKS could not be had.
    pub jwks_problem: Option<&'a JwksProblem>,
    /// The matched provider's `jwks` URL, or `--jwks FILE`.
    pub jwks_source: Option<&'a str>,
}

impl Evidence<'_> {
    /// The 1-based number people see for a provider `verify` numbered.
    fn number(&self, verify_index: usize) -> usize {
        self.positions
            .get(verify_index)
            .map_or(verify_index, |i| *i)
            + 1
    }
}

/// Explains a rejection and proposes the fix.
pub fn explain(rejection: &Rejection, cx: &Evidence<'_>) -> Explanation {
    let (reason, fix) = match rejection {
        Rejection::NoIssuer => (
            "the token has no iss claim, so Convex cannot match it to a provider".into(),
            "send the access token AuthKit issues (getAccessToken()), not an ID token or another JWT".into(),
        ),
        Rejection::NoProviderMatched(_) => no_provider(cx),
        Rejection::JwksUnavailable { provider, reason } => {
            let n = cx.number(*provider);
            (
                format!("provider {n}'s JWKS is unusable: {reason}"),
                jwks_fix(cx.jwks_problem),
            )
        }
        Rejection::MissingKid { provider } => (
            format!("the token header has no kid (provider {} matched)", cx.number(*provider)),
            "Convex needs a kid naming a key of the JWKS; WorkOS always sets one, so this token was not minted by WorkOS as is".into(),
        ),
        Rejection::UnknownKid { provider, kid, known } => (
            format!(
                "kid {kid} is not in provider {}'s JWKS ({})",
                cx.number(*provider),
                if known.is_empty() { "it has no keys".to_string() } else { format!("it has {}", known.join(", ")) }
            ),
            format!(
                "kid {kid} not in the JWKS: the keys rotated or the JWKS URL points at another client; check that {} serves the keys of the client whose iss the token carries (a mirror picks up new keys at its next refresh; mode Inline needs a new npx convex deploy)",
                cx.jwks_source.unwrap_or("the jwks URL")
            ),
        ),
        Rejection::AlgorithmMismatch { provider, token, key, configured } => {
            let n = cx.number(*provider);
            match key.as_deref().filter(|k| k != token) {
                Some(key) => (
                    format!("the key {} is for {key} but the token header says alg {token}", cx.token.kid().unwrap_or("?")),
                    "the token was not signed with this key set: check that the jwks URL belongs to the token's issuer".into(),
                ),
                None if token == "RS256" || token == "ES256" => (
                    format!("the token is signed with {token} but provider {n} expects algorithm {configured}"),
                    format!("set provider {n}'s algorithm to {token} (spec.algorithm: {token})"),
                ),
                None => (
                    format!("the token is signed with {token:?} but provider {n} expects algorithm {configured}"),
                    "Convex accepts only RS256 and ES256 tokens: issue the token with one of them (WorkOS uses RS256)".into(),
                ),
            }
        }
        Rejection::BadSignature { provider, reason } => {
            let kid = cx.token.kid().unwrap_or("?");
            (
                format!("the signature does not verify with key {kid} of provider {} ({reason})", cx.number(*provider)),
                format!("the token was altered (copy it whole), or signed by another key reusing kid {kid}: check that the JWKS belongs to the token's issuer"),
            )
        }
        Rejection::MissingClaim { claim } => (
            format!("the token has no {claim} claim"),
            "Convex requires sub and exp; WorkOS access tokens carry both, so send the access token (getAccessToken())".into(),
        ),
        Rejection::Expired { exp, now } => (
            format!("the token expired at {} ({}; Convex allows {CLOCK_SKEW_SECS} s of skew)", utc(*exp), relative(*exp, *now)),
            "get a fresh access token: AuthKit tokens live about 5 minutes and the client must refresh them (ConvexProviderWithAuthKit does, through getAccessToken()); if it was just issued, a clock is wrong: sync it with NTP".into(),
        ),
        Rejection::NotYetValid { nbf, now } => (
            format!("the token is not valid before {} (nbf, {}, beyond Convex's {CLOCK_SKEW_SECS} s skew)", utc(*nbf), relative(*nbf, *now)),
            "a clock is wrong: sync the issuing machine, this one and the Convex backend with NTP".into(),
        ),
        Rejection::IssuedInFuture { iat, now } => (
            format!("the token was issued at {} (iat, {}, beyond Convex's {CLOCK_SKEW_SECS} s skew)", utc(*iat), relative(*iat, *now)),
            "a clock is wrong (no token is issued in the future): sync the issuing machine, this one and the Convex backend with NTP".into(),
        ),
    };
    Explanation { reason, fix }
}

fn jwks_fix(problem: Option<&JwksProblem>) -> String {
    match problem {
        Some(JwksProblem::Status { url, status }) => format!(
            "make {url} answer 200 with the key set (it answered {status}): check the client id in the URL, or the mirror's Service and Ingress"
        ),
        Some(JwksProblem::ContentType { content_type, .. }) => format!(
            "serve the JWKS as Content-Type application/json (it is {}); the workos-convex-auth mirror does, and jwks.mode Inline (a data: URL) skips the check",
            content_type.as_deref().unwrap_or("missing")
        ),
        Some(JwksProblem::Unreachable { url, .. }) => format!(
            "the Convex backend must reach {url}: check DNS, TLS and egress; a *.svc URL only resolves inside the cluster, so run check-token there, or save the key set and pass --jwks FILE"
        ),
        Some(JwksProblem::TooLarge { url }) | Some(JwksProblem::NotJwks { url, .. }) => format!(
            "point jwks at a JWK set ({{\"keys\": [...]}}) such as https://{WORKOS_API_HOST}/sso/jwks/<clientId>; {url} is not one"
        ),
        Some(JwksProblem::DataUrl(_)) => {
            "regenerate the config: jwks.mode Inline writes a valid data:application/json;base64 URL".into()
        }
        Some(JwksProblem::Scheme(_)) => "use an https://, http:// or data: URL for jwks".into(),
        None => "pass --jwks FILE with the key set to check the rest".into(),
    }
}

/// No provider matched: find the nearest miss and say what would make it match.
fn no_provider(cx: &Evidence<'_>) -> (String, String) {
    let raw_iss = cx.token.issuer().unwrap_or_default();
    let iss = normalize_issuer(raw_iss);
    let audience = cx.token.audience();
    let reason = format!(
        "no provider matches iss {raw_iss} (Convex: \"No auth provider found matching the given token\")"
    );
    let providers: Vec<(usize, String, Option<&str>)> = cx
        .providers
        .entries
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Provider::CustomJwt(c) => (i + 1, c.issuer.clone(), c.application_id.as_deref()),
            Provider::Oidc {
                domain,
                application_id,
            } => (i + 1, domain.clone(), Some(application_id.as_str())),
        })
        .collect();

    for (n, issuer, app) in &providers {
        if let Err(Mismatch::Audience { application_id, .. }) =
            match_provider(issuer, *app, raw_iss, &audience)
        {
            let fix = match &audience {
                Audience::Absent
                    if normalize_issuer(issuer) == format!("https://{WORKOS_API_HOST}") =>
                {
                    format!(
                        "provider {n} sets applicationID but the token has no aud: add aud = {application_id} via a WorkOS JWT template (Convex refuses issuer https://{WORKOS_API_HOST} without applicationID)"
                    )
                }
                Audience::Absent => format!(
                    "provider {n} sets applicationID but the token has no aud: remove it or add aud via a WorkOS JWT template"
                ),
                other => format!(
                    "provider {n} requires aud {application_id} but the token's aud is {}: the token was minted for another client; send a token of client {application_id}, or set applicationID to the token's aud",
                    show_audience(other)
                ),
            };
            return (reason, fix);
        }
    }
    for (n, issuer, _) in &providers {
        let theirs = normalize_issuer(issuer);
        if theirs.eq_ignore_ascii_case(&iss) {
            return (
                reason,
                format!(
                    "token iss {raw_iss} differs from provider {n}'s issuer {issuer} only in letter case, and Convex compares case-sensitively: write the issuer exactly as {iss}"
                ),
            );
        }
        if strip_scheme(&theirs) == strip_scheme(&iss) {
            return (
                reason,
                format!(
                    "token iss {raw_iss} and provider {n}'s issuer {issuer} differ in scheme: write the issuer exactly as {iss}"
                ),
            );
        }
    }
    (reason, issuer_fix(raw_iss, &iss, &providers))
}

/// Which resource field adds the token's issuer, from the shape of the issuer.
fn issuer_fix(raw_iss: &str, iss: &str, providers: &[(usize, String, Option<&str>)]) -> String {
    let (host, path) = host_and_path(iss);
    let generic = format!(
        "add it to spec.extraIssuers (issuer: {iss}), or add a customJwt provider with issuer {iss}"
    );
    if let Some(client) = path
        .strip_prefix("user_management/")
        .filter(|c| !c.contains('/'))
    {
        let other_client = providers.iter().find_map(|(_, issuer, _)| {
            let (h, p) = host_and_path(issuer);
            p.strip_prefix("user_management/")
                .filter(|c| h == host && c != &client)
                .map(str::to_string)
        });
        return match other_client {
            Some(other) => format!(
                "token iss is {raw_iss}: it was minted for client {client}, but the config is for client {other}; set spec.clientId: {client}, or send tokens of client {other}"
            ),
            None if host == WORKOS_API_HOST => format!(
                "token iss is {raw_iss}; set spec.clientId: {client} (the generator adds this issuer), or {generic}"
            ),
            None => format!(
                "token iss is {raw_iss}; add spec.authDomain: {host} (with spec.clientId: {client}), or {generic}"
            ),
        };
    }
    if !path.is_empty() {
        return format!("token iss is {raw_iss}; {generic}");
    }
    if host.ends_with(".authkit.app") {
        return format!(
            "token iss is {raw_iss}; add spec.authkitDomain: {host} (or a customJwt provider with issuer {iss}, jwks {iss}/oauth2/jwks and applicationID = your client id)"
        );
    }
    if host == WORKOS_API_HOST {
        return format!(
            "token iss is {raw_iss}; add a provider with issuer {iss}/ and applicationID = your client id (spec.clientId does), and give the tokens aud via a WorkOS JWT template"
        );
    }
    format!(
        "token iss is {raw_iss}; if {host} is your WorkOS custom authentication domain, add spec.authDomain: {host}; otherwise {generic}"
    )
}
