//! What Convex does with a token, step by step, as a pure function: decode, pick the first
//! matching provider in config order, check kid/alg/signature against that provider's keys,
//! then the time claims with ±5 s skew. The conformance tests and `check-token` both use it.

use base64::Engine;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::config::{AuthConfig, CustomJwtProvider};
use super::rules::{Audience, CLOCK_SKEW_SECS, Mismatch, match_provider};

/// A token split and decoded, not yet trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedToken {
    pub header: Value,
    pub claims: Value,
}

impl DecodedToken {
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }
    pub fn audience(&self) -> Audience {
        Audience::from_claims(&self.claims)
    }
    fn time(&self, claim: &str) -> Option<i64> {
        self.claims.get(claim).and_then(Value::as_i64)
    }
}

/// Input that is not a JWT at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedToken {
    #[error("the token is {0} bytes long; a JWT is a few kilobytes at most")]
    TooLong(usize),
    #[error("a JWT has three dot-separated parts; this has {0}")]
    Parts(usize),
    #[error("the {0} is not base64url: {1}")]
    Base64(&'static str, String),
    #[error("the {0} is not a JSON object")]
    NotJson(&'static str),
}

/// Longest token accepted; WorkOS access tokens are about 1 KB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Splits and decodes a JWT without verifying anything.
pub fn decode(token: &str) -> Result<DecodedToken, MalformedToken> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(MalformedToken::TooLong(token.len()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(MalformedToken::Parts(parts.len()));
    }
    let part = |raw: &str, name: &'static str| -> Result<Value, MalformedToken> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .map_err(|e| MalformedToken::Base64(name, e.to_string()))?;
        match serde_json::from_slice(&bytes) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(MalformedToken::NotJson(name)),
        }
    };
    Ok(DecodedToken {
        header: part(parts[0], "header")?,
        claims: part(parts[1], "payload")?,
    })
}

/// Why Convex rejects a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The token has no `iss` claim.
    NoIssuer,
    /// No provider matched; one reason per provider, in config order.
    NoProviderMatched(Vec<Mismatch>),
    /// The matched provider's JWKS could not be had (fetch failed, bad content type, …).
    JwksUnavailable {
        provider: usize,
        reason: String,
    },
    MissingKid {
        provider: usize,
    },
    UnknownKid {
        provider: usize,
        kid: String,
        known: Vec<String>,
    },
    /// The JWK's `alg`, the token's `alg` and the provider's `algorithm` disagree.
    AlgorithmMismatch {
        provider: usize,
        token: String,
        key: Option<String>,
        configured: String,
    },
    BadSignature {
        provider: usize,
        reason: String,
    },
    MissingClaim {
        claim: &'static str,
    },
    Expired {
        exp: i64,
        now: i64,
    },
    NotYetValid {
        nbf: i64,
        now: i64,
    },
    IssuedInFuture {
        iat: i64,
        now: i64,
    },
}

/// The provider that accepted the token (0-based index into `providers`).
pub type Accepted = usize;

/// Applies Convex's checks. `keys` yields the JWKS for a provider (fetching is the caller's
/// business, so this stays pure); `now` is Unix seconds.
pub fn verify(
    config: &AuthConfig,
    raw_token: &str,
    token: &DecodedToken,
    keys: &mut dyn FnMut(&CustomJwtProvider) -> Result<JwkSet, String>,
    now: i64,
) -> Result<Accepted, Rejection> {
    let issuer = token.issuer().ok_or(Rejection::NoIssuer)?;
    let audience = token.audience();
    let mut mismatches = Vec::new();
    let mut matched = None;
    for (i, p) in config.providers.iter().enumerate() {
        match match_provider(&p.issuer, p.application_id.as_deref(), issuer, &audience) {
            Ok(()) => {
                matched = Some(i);
                break;
            }
            Err(m) => mismatches.push(m),
        }
    }
    let provider = matched.ok_or(Rejection::NoProviderMatched(mismatches))?;
    let p = &config.providers[provider];

    let set = keys(p).map_err(|reason| Rejection::JwksUnavailable { provider, reason })?;
    let kid = token.kid().ok_or(Rejection::MissingKid { provider })?;
    let jwk = set.find(kid).ok_or_else(|| Rejection::UnknownKid {
        provider,
        kid: kid.to_string(),
        known: set
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect(),
    })?;
    let token_alg = token.alg().unwrap_or_default().to_string();
    let key_alg = jwk.common.key_algorithm.map(|a| a.to_string());
    let agrees = token_alg == p.algorithm && key_alg.as_deref().is_none_or(|a| a == token_alg);
    if !agrees {
        return Err(Rejection::AlgorithmMismatch {
            provider,
            token: token_alg,
            key: key_alg,
            configured: p.algorithm.clone(),
        });
    }
    check_signature(raw_token, jwk, &p.algorithm)
        .map_err(|reason| Rejection::BadSignature { provider, reason })?;

    for claim in ["sub", "exp"] {
        if token.claims.get(claim).is_none() {
            return Err(Rejection::MissingClaim { claim });
        }
    }
    let exp = token
        .time("exp")
        .ok_or(Rejection::MissingClaim { claim: "exp" })?;
    // Claims are untrusted numbers: saturate instead of overflowing at the extremes.
    if now > exp.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Rejection::Expired { exp, now });
    }
    if let Some(nbf) = token
        .time("nbf")
        .filter(|nbf| now.saturating_add(CLOCK_SKEW_SECS) < *nbf)
    {
        return Err(Rejection::NotYetValid { nbf, now });
    }
    if let Some(iat) = token
        .time("iat")
        .filter(|iat| now.saturating_add(CLOCK_SKEW_SECS) < *iat)
    {
        return Err(Rejection::IssuedInFuture { iat, now });
    }
    Ok(provider)
}

fn check_signature(
    raw_token: &str,
    jwk: &jsonwebtoken::jwk::Jwk,
    algorithm: &str,
) -> Result<(), String> {
    let alg: jsonwebtoken::Algorithm = algorithm
        .parse()
        .map_err(|_| format!("unsupported algorithm {algorithm}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("the JWK is unusable: {e}"))?;
    // Only the signature over the first two parts as sent: claims are checked above with
    // Convex's own rules. Not `jsonwebtoken::decode`, which also parses the claims and reported
    // a validly signed token with, say, `"nbf": [1]` as a bad signature.
    let (message, signature) = raw_token
        .trim()
        .rsplit_once('.')
        .ok_or_else(|| "the token has no signature part".to_string())?;
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err("InvalidSignature".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_garbage_with_a_reason() {
        assert_eq!(decode("abc"), Err(MalformedToken::Parts(1)));
        assert!(matches!(
            decode("a!.b.c"),
            Err(MalformedToken::Base64("header", _))
        ));
        assert_eq!(
            decode("bm90IGpzb24.e30.x"),
            Err(MalformedToken::NotJson("header"))
        );
        assert_eq!(
            decode(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(MalformedToken::TooLong(MAX_TOKEN_BYTES + 1))
        );
    }

    /// Found by tests/it/properties.rs: a token signed with the EC test key whose `nbf` is not a
    /// number was reported as "the signature does not verify", because the signature check
    /// also parsed the claims. The signature is valid; the claim rules alone decide.
    #[test]
    fn a_valid_signature_verifies_whatever_the_claims_hold() {
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_slice(include_bytes!("../../../tests/fixtures/keys/ec-a.jwk.json"))
                .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!(
            "../../../tests/fixtures/keys/ec-a.pem"
        ))
        .unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        for claims in [
            serde_json::json!({"sub": "u", "nbf": [1]}),
            serde_json::json!({"sub": "u", "exp": "soon", "iat": {"t": 1}}),
        ] {
            let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
            assert_eq!(check_signature(&token, &jwk, "ES256"), Ok(()), "{claims}");
            let (signed, _) = token.rsplit_once('.').unwrap();
            let forged = format!("{signed}.{}", "A".repeat(86));
            assert!(check_signature(&forged, &jwk, "ES256").is_err());
        }
    }

    #[test]
    fn decode_reads_header_and_claims() {
        let t = decode("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2EuY29tIn0.sig")
            .unwrap();
        assert_eq!(
            (t.alg(), t.kid(), t.issuer()),
            (Some("RS256"), Some("k1"), Some("https://a.com"))
        );
    }
}
