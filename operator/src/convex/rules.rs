//! Convex's own rules for matching a token to a `customJwt` provider, as its backend applies
//! them (see ../shared/reference/convex-workos.md). Used by the conformance tests and by
//! `check-token`, so both agree with the backend by construction.

/// Normalises an issuer the way Convex does before comparing: prefix `https://` when there is
/// no `http(s)://` scheme, then strip every trailing `/`. Comparison stays case-sensitive.
pub fn normalize_issuer(issuer: &str) -> String {
    let with_scheme = if issuer.starts_with("https://") || issuer.starts_with("http://") {
        issuer.to_string()
    } else {
        format!("https://{issuer}")
    };
    with_scheme.trim_end_matches('/').to_string()
}

/// Whether a token issuer matches a provider issuer under Convex's rule.
pub fn issuers_match(provider_issuer: &str, token_issuer: &str) -> bool {
    normalize_issuer(provider_issuer) == normalize_issuer(token_issuer)
}

/// The `aud` claim: absent, one string, or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Absent,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Reads `aud` from decoded claims; anything that is not a string or list of strings counts
    /// as absent, as it can never contain an application id.
    pub fn from_claims(claims: &serde_json::Value) -> Self {
        match claims.get("aud") {
            Some(serde_json::Value::String(s)) => Audience::One(s.clone()),
            Some(serde_json::Value::Array(items)) => Audience::Many(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => Audience::Absent,
        }
    }

    pub fn contains(&self, application_id: &str) -> bool {
        match self {
            Audience::Absent => false,
            Audience::One(s) => s == application_id,
            Audience::Many(list) => list.iter().any(|s| s == application_id),
        }
    }
}

/// Why a provider does not match a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The normalised issuers differ.
    Issuer { provider: String, token: String },
    /// The provider requires `aud` to contain its applicationID and the token's does not.
    Audience {
        application_id: String,
        token: Audience,
    },
}

/// Applies the match rule of one provider to a token's `iss` and `aud`.
pub fn match_provider(
    provider_issuer: &str,
    application_id: Option<&str>,
    token_issuer: &str,
    audience: &Audience,
) -> Result<(), Mismatch> {
    if !issuers_match(provider_issuer, token_issuer) {
        return Err(Mismatch::Issuer {
            provider: normalize_issuer(provider_issuer),
            token: normalize_issuer(token_issuer),
        });
    }
    match application_id {
        Some(app) if !audience.contains(app) => Err(Mismatch::Audience {
            application_id: app.to_string(),
            token: audience.clone(),
        }),
        _ => Ok(()),
    }
}

/// Convex's clock skew allowance for `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_SECS: i64 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_prefixes_https_and_strips_all_trailing_slashes() {
        assert_eq!(normalize_issuer("api.workos.com"), "https://api.workos.com");
        assert_eq!(
            normalize_issuer("https://api.workos.com///"),
            "https://api.workos.com"
        );
        assert_eq!(
            normalize_issuer("http://localhost:3000/"),
            "http://localhost:3000"
        );
    }

    #[test]
    fn issuer_comparison_is_case_sensitive() {
        assert!(issuers_match(
            "https://api.workos.com/",
            "https://api.workos.com"
        ));
        assert!(!issuers_match(
            "https://api.workos.com/",
            "https://API.workos.com"
        ));
        assert!(!issuers_match(
            "https://api.workos.com/user_management/client_A",
            "https://api.workos.com/user_management/client_a"
        ));
    }

    #[test]
    fn audience_is_checked_only_when_application_id_is_set() {
        let iss = "https://api.workos.com/";
        assert_eq!(match_provider(iss, None, iss, &Audience::Absent), Ok(()));
        assert!(matches!(
            match_provider(iss, Some("client_1"), iss, &Audience::Absent),
            Err(Mismatch::Audience { .. })
        ));
        assert_eq!(
            match_provider(
                iss,
                Some("client_1"),
                iss,
                &Audience::One("client_1".into())
            ),
            Ok(())
        );
        let many = Audience::Many(vec!["x".into(), "client_1".into()]);
        assert_eq!(match_provider(iss, Some("client_1"), iss, &many), Ok(()));
    }

    #[test]
    fn audience_reads_string_array_or_nothing() {
        let claims = serde_json::json!({"aud": ["a", 3, "b"]});
        assert_eq!(
            Audience::from_claims(&claims),
            Audience::Many(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Audience::from_claims(&serde_json::json!({"aud": 7})),
            Audience::Absent
        );
        assert_eq!(
            Audience::from_claims(&serde_json::json!({})),
            Audience::Absent
        );
    }
}
