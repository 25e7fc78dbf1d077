//! The generator: which `customJwt` providers Convex needs for a WorkOS client.
//! Pure and deterministic: the same input gives byte-identical output.

use super::config::{AuthConfig, CustomJwtProvider};
use super::rules::normalize_issuer;
use crate::api::{Algorithm, ExtraIssuer};

/// The WorkOS API host; an issuer there without `applicationID` matches every WorkOS customer's
/// tokens, so Convex refuses such a config as insecure.
pub const WORKOS_API_HOST: &str = "api.workos.com";

/// Everything the generator needs, with the JWKS URLs already resolved for the mode.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorInput<'a> {
    pub client_id: &'a str,
    pub auth_domain: Option<&'a str>,
    pub authkit_domain: Option<&'a str>,
    pub algorithm: Algorithm,
    pub extra_issuers: &'a [ExtraIssuer],
    /// Where Convex fetches the WorkOS keys (the mirror, WorkOS, or a data: URL).
    pub jwks_url: &'a str,
    /// Where Convex fetches the AuthKit domain's keys; required when `authkit_domain` is set.
    pub authkit_jwks_url: Option<&'a str>,
}

/// A spec value the generator refuses, with the field path, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}; {fix}")]
pub struct InvalidField {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl InvalidField {
    pub fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Builds the provider list in the order Convex should try them.
pub fn generate(input: &GeneratorInput<'_>) -> Result<AuthConfig, InvalidField> {
    check_client_id("spec.clientId", input.client_id)?;
    let alg = input.algorithm.as_str();
    let cid = input.client_id;
    let mut providers = workos_pair(WORKOS_API_HOST, cid, alg, input.jwks_url);

    if let Some(domain) = input.auth_domain {
        check_hostname("spec.authDomain", domain)?;
        providers.extend(workos_pair(domain, cid, alg, input.jwks_url));
    }
    if let Some(domain) = input.authkit_domain {
        check_hostname("spec.authkitDomain", domain)?;
        let jwks = input.authkit_jwks_url.ok_or_else(|| {
            InvalidField::new(
                "spec.authkitDomain",
                "no JWKS URL was resolved for the AuthKit domain",
                "report this as a bug",
            )
        })?;
        providers.push(CustomJwtProvider::new(
            format!("https://{domain}"),
            alg,
            jwks,
            Some(cid),
        ));
    }
    for (i, extra) in input.extra_issuers.iter().enumerate() {
        let field = format!("spec.extraIssuers[{i}]");
        check_extra_issuer(&field, extra)?;
        providers.push(CustomJwtProvider::new(
            extra.issuer.clone(),
            alg,
            input.jwks_url,
            extra.application_id.as_deref(),
        ));
    }
    check_no_duplicates(&providers, input)?;
    Ok(AuthConfig { providers })
}

/// WorkOS mints two issuer shapes per host: the bare host (needs `aud`, so `applicationID`)
/// and `/user_management/<clientId>` (no `aud` by default, so no `applicationID`).
fn workos_pair(host: &str, client_id: &str, alg: &str, jwks: &str) -> Vec<CustomJwtProvider> {
    vec![
        CustomJwtProvider::new(format!("https://{host}/"), alg, jwks, Some(client_id)),
        CustomJwtProvider::new(
            format!("https://{host}/user_management/{client_id}"),
            alg,
            jwks,
            None,
        ),
    ]
}

/// `client_` followed by letters and digits, as the CRD's pattern says.
pub fn is_client_id(value: &str) -> bool {
    value
        .strip_prefix("client_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Refuses a client id written in the resource itself, quoting it (whoever reads the resource
/// reads it anyway). A value read from a Secret or ConfigMap is checked by `validate` instead,
/// which never quotes it.
pub fn check_client_id(field: &str, client_id: &str) -> Result<(), InvalidField> {
    if is_client_id(client_id) {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            format!("{client_id:?} is not a WorkOS client id"),
            "copy the client id (client_…) from the WorkOS dashboard's API keys page",
        ))
    }
}

/// A bare host name: no scheme, no path, no port, lower-case labels, and a dot (Convex needs a
/// real top-level domain) unless it is `localhost`.
pub fn check_hostname(field: &str, host: &str) -> Result<(), InvalidField> {
    if let Some((scheme, _)) = host.split_once("://") {
        return Err(InvalidField::new(
            field,
            format!("{host:?} has a scheme ({scheme}://)"),
            "give the host name only, e.g. auth.example.com",
        ));
    }
    if host.contains('/') {
        return Err(InvalidField::new(
            field,
            format!("{host:?} has a path"),
            "give the host name only, e.g. auth.example.com",
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(InvalidField::new(
            field,
            format!("{host:?} is not a valid host name"),
            "use lower-case letters, digits, '-' and '.', e.g. auth.example.com",
        ));
    }
    if !host.contains('.') && host != "localhost" {
        return Err(InvalidField::new(
            field,
            format!("{host:?} has no top-level domain"),
            "Convex only accepts issuers on a real domain: use the fully qualified name",
        ));
    }
    Ok(())
}

fn check_extra_issuer(field: &str, extra: &ExtraIssuer) -> Result<(), InvalidField> {
    let issuer = &extra.issuer;
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| {
            InvalidField::new(
                format!("{field}.issuer"),
                format!("{issuer:?} has no http:// or https:// scheme"),
                "write the issuer exactly as the token's iss claim, e.g. https://auth.example.com",
            )
        })?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    check_hostname(&format!("{field}.issuer"), host)?;
    if extra.application_id.is_none()
        && host == WORKOS_API_HOST
        && rest.trim_end_matches('/') == WORKOS_API_HOST
    {
        return Err(InvalidField::new(
            format!("{field}.applicationID"),
            format!(
                "issuer {issuer} without applicationID matches every WorkOS customer's tokens, and Convex rejects it as insecure"
            ),
            "set applicationID to your client id (and add aud to the tokens with a WorkOS JWT template)",
        ));
    }
    Ok(())
}

fn check_no_duplicates(
    providers: &[CustomJwtProvider],
    input: &GeneratorInput<'_>,
) -> Result<(), InvalidField> {
    for (i, p) in providers.iter().enumerate() {
        let key = (normalize_issuer(&p.issuer), &p.application_id);
        if let Some(j) = providers[..i]
            .iter()
            .position(|q| (normalize_issuer(&q.issuer), &q.application_id) == key)
        {
            let first = field_of_provider(j, input);
            return Err(InvalidField::new(
                field_of_provider(i, input),
                format!(
                    "issuer {} with the same applicationID is already provided by {first}",
                    p.issuer
                ),
                "remove the duplicate: Convex would never reach it",
            ));
        }
    }
    Ok(())
}

/// Which spec field produced provider `i` (for error messages).
fn field_of_provider(i: usize, input: &GeneratorInput<'_>) -> String {
    let mut fields = vec!["spec.clientId"; 2];
    if input.auth_domain.is_some() {
        fields.extend(["spec.authDomain"; 2]);
    }
    if input.authkit_domain.is_some() {
        fields.push("spec.authkitDomain");
    }
    match fields.get(i) {
        Some(f) => (*f).to_string(),
        None => format!("spec.extraIssuers[{}].issuer", i - fields.len()),
    }
}

#[cfg(test)]
mod tests;
