//! The generator: which `customJwt` providers Convex needs for a WorkOS client.
//! Pure and deterministic: the same input gives byte-identical output.

use super::config::{AuthConfig, CustomJwtProvider, EnvDrivenConfig, EnvProvider, Expr, Variable};
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

/// The fields that decide which issuers Convex must accept: a [`GeneratorInput`] without the
/// JWKS URLs, which depend on the mode (and in mode Inline on keys fetched later).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IssuerInput<'a> {
    pub client_id: &'a str,
    pub auth_domain: Option<&'a str>,
    pub authkit_domain: Option<&'a str>,
    pub algorithm: Algorithm,
    pub extra_issuers: &'a [ExtraIssuer],
}

impl<'a> GeneratorInput<'a> {
    fn issuer_input(&self) -> IssuerInput<'a> {
        IssuerInput {
            client_id: self.client_id,
            auth_domain: self.auth_domain,
            authkit_domain: self.authkit_domain,
            algorithm: self.algorithm,
            extra_issuers: self.extra_issuers,
        }
    }
}

/// Whose keys verify a provider's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySet {
    WorkOS,
    AuthKit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedProvider {
    issuer: String,
    application_id: Option<String>,
    keys: KeySet,
    /// Where the client id appears, so the env-driven file can read it from a variable.
    client_id_in: ClientIdUse,
}

/// Where a provider carries the client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientIdUse {
    /// Nowhere (an extra issuer, written in the spec as it is).
    Nowhere,
    /// As `applicationID` (the bare WorkOS host, the AuthKit domain).
    ApplicationId,
    /// At the end of the issuer (`…/user_management/<clientId>`).
    IssuerSuffix,
}

/// The providers Convex needs, checked, in the order Convex should try them; only the JWKS
/// URLs are missing. Turning it into a config ([`ProviderPlan::with_jwks`]) cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPlan {
    algorithm: &'static str,
    client_id: String,
    providers: Vec<PlannedProvider>,
}

impl ProviderPlan {
    /// The config, with `workos_jwks` for the WorkOS issuers and the extra issuers and
    /// `authkit_jwks` for the AuthKit domain (the WorkOS URL if none is given: callers resolve
    /// one whenever the plan has an AuthKit domain).
    pub fn with_jwks(&self, workos_jwks: &str, authkit_jwks: Option<&str>) -> AuthConfig {
        let providers = self
            .providers
            .iter()
            .map(|p| {
                let jwks = match p.keys {
                    KeySet::WorkOS => workos_jwks,
                    KeySet::AuthKit => authkit_jwks.unwrap_or(workos_jwks),
                };
                CustomJwtProvider::new(
                    p.issuer.clone(),
                    self.algorithm,
                    jwks,
                    p.application_id.as_deref(),
                )
            })
            .collect();
        AuthConfig { providers }
    }

    /// Issuers in provider order, for status.
    pub fn issuers(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.issuer.clone()).collect()
    }

    /// The same providers with the client id and the JWKS URLs read from the Convex
    /// deployment's environment variables: the file depends on the shape of the providers (hosts,
    /// extra issuers, algorithm), never on those values.
    pub fn env_driven(&self) -> EnvDrivenConfig {
        let providers = self
            .providers
            .iter()
            .map(|p| {
                let issuer = match p.client_id_in {
                    ClientIdUse::IssuerSuffix => {
                        let prefix = p.issuer.strip_suffix(self.client_id.as_str());
                        // The planner builds the issuer as prefix + client id.
                        Expr::TextThen(prefix.unwrap_or(&p.issuer).to_string(), Variable::ClientId)
                    }
                    _ => Expr::Text(p.issuer.clone()),
                };
                let application_id = match p.client_id_in {
                    ClientIdUse::ApplicationId => Some(Expr::Variable(Variable::ClientId)),
                    _ => p.application_id.clone().map(Expr::Text),
                };
                EnvProvider {
                    issuer,
                    algorithm: self.algorithm,
                    jwks: Expr::Variable(match p.keys {
                        KeySet::WorkOS => Variable::JwksUrl,
                        KeySet::AuthKit => Variable::AuthkitJwksUrl,
                    }),
                    application_id,
                }
            })
            .collect();
        EnvDrivenConfig { providers }
    }
}

/// Checks the fields and plans the providers in the order Convex should try them.
pub fn plan(input: &IssuerInput<'_>) -> Result<ProviderPlan, InvalidField> {
    check_client_id("spec.clientId", input.client_id)?;
    let cid = input.client_id;
    let mut providers = workos_pair(WORKOS_API_HOST, cid);

    if let Some(domain) = input.auth_domain {
        check_hostname("spec.authDomain", domain)?;
        providers.extend(workos_pair(domain, cid));
    }
    if let Some(domain) = input.authkit_domain {
        check_hostname("spec.authkitDomain", domain)?;
        providers.push(PlannedProvider {
            issuer: format!("https://{domain}"),
            application_id: Some(cid.to_string()),
            keys: KeySet::AuthKit,
            client_id_in: ClientIdUse::ApplicationId,
        });
    }
    for (i, extra) in input.extra_issuers.iter().enumerate() {
        let field = format!("spec.extraIssuers[{i}]");
        check_extra_issuer(&field, extra)?;
        providers.push(PlannedProvider {
            issuer: extra.issuer.clone(),
            application_id: extra.application_id.clone(),
            keys: KeySet::WorkOS,
            client_id_in: ClientIdUse::Nowhere,
        });
    }
    check_no_duplicates(&providers, input)?;
    Ok(ProviderPlan {
        algorithm: input.algorithm.as_str(),
        client_id: cid.to_string(),
        providers,
    })
}

/// Builds the provider list in the order Convex should try them.
pub fn generate(input: &GeneratorInput<'_>) -> Result<AuthConfig, InvalidField> {
    let plan = plan(&input.issuer_input())?;
    if input.authkit_domain.is_some() && input.authkit_jwks_url.is_none() {
        return Err(InvalidField::new(
            "spec.authkitDomain",
            "no JWKS URL was resolved for the AuthKit domain",
            "report this as a bug",
        ));
    }
    Ok(plan.with_jwks(input.jwks_url, input.authkit_jwks_url))
}

/// WorkOS mints two issuer shapes per host: the bare host (needs `aud`, so `applicationID`)
/// and `/user_management/<clientId>` (no `aud` by default, so no `applicationID`).
fn workos_pair(host: &str, client_id: &str) -> Vec<PlannedProvider> {
    vec![
        PlannedProvider {
            issuer: format!("https://{host}/"),
            application_id: Some(client_id.to_string()),
            keys: KeySet::WorkOS,
            client_id_in: ClientIdUse::ApplicationId,
        },
        PlannedProvider {
            issuer: format!("https://{host}/user_management/{client_id}"),
            application_id: None,
            keys: KeySet::WorkOS,
            client_id_in: ClientIdUse::IssuerSuffix,
        },
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
/// An RFC 1123 DNS name (a DNS-1123 subdomain, as Kubernetes says): at most 253 characters,
/// dot-separated labels of 1–63 lower-case letters, digits and '-', not starting or ending
/// with '-'.
pub fn is_dns_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

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
    if !is_dns_name(host) {
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
    providers: &[PlannedProvider],
    input: &IssuerInput<'_>,
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
fn field_of_provider(i: usize, input: &IssuerInput<'_>) -> String {
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
