//! Step 2, pure: the objects to apply for a validated resource.

mod config_map;
mod ingress;
mod meta;
mod mirror;

use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::Valid;
use super::names;
use crate::api::JwksMode;
use crate::convex::config::AuthConfig;
use crate::convex::generate::{GeneratorInput, InvalidField, generate};
use crate::jwks::UpstreamRules;

/// What `build` needs besides the resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildContext {
    /// Image of the mirror when `spec.proxy.image` is unset (the operator's own image).
    pub default_image: String,
    /// The keys to embed in mode Inline, already fetched and sanitised.
    pub inline_keys: Option<InlineKeys>,
    /// The upstream rules the mirror's fetcher applies, passed to it as flags (empty by default).
    pub mirror_upstream: UpstreamRules,
}

/// Public JWKS documents (serialised JSON) for mode Inline.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineKeys {
    pub workos: String,
    pub authkit: Option<String>,
}

/// Everything the controller applies for one resource, plus what status reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub config: AuthConfig,
    pub config_map: ConfigMap,
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    pub ingress: Option<Ingress>,
    /// The JWKS URL the WorkOS providers use.
    pub jwks_url: String,
    /// Set when the URL is the in-cluster Service URL: only a Convex backend inside the cluster
    /// can reach it.
    pub cluster_internal_url: bool,
}

impl Children {
    /// Issuers in provider order, for status.
    pub fn issuers(&self) -> Vec<String> {
        self.config
            .providers
            .iter()
            .map(|p| p.issuer.clone())
            .collect()
    }
}

/// The URLs Convex will fetch keys from, and where the mirror fetches them.
struct JwksUrls {
    workos: String,
    authkit: Option<String>,
    cluster_internal: bool,
}

pub fn build(valid: &Valid, ctx: &BuildContext) -> Result<Children, InvalidField> {
    let urls = jwks_urls(valid, ctx)?;
    let spec = &valid.spec;
    let config = generate(&GeneratorInput {
        client_id: &valid.client_id,
        auth_domain: spec.auth_domain.as_deref(),
        authkit_domain: spec.authkit_domain.as_deref(),
        algorithm: spec.algorithm,
        extra_issuers: &spec.extra_issuers,
        jwks_url: &urls.workos,
        authkit_jwks_url: urls.authkit.as_deref(),
    })?;
    let proxy = valid.mode() == JwksMode::Proxy;
    let ingress_enabled = proxy && spec.ingress.enabled;
    let config_map = config_map::config_map(valid, &config, &urls.workos);
    let size = config_map::data_bytes(&config_map);
    if size > config_map::MAX_DATA_BYTES {
        return Err(InvalidField::new(
            if valid.mode() == JwksMode::Inline {
                "spec.jwks.mode"
            } else {
                "spec.extraIssuers"
            },
            format!(
                "the generated ConfigMap would hold {size} bytes, over Kubernetes' limit of {} (1 MiB)",
                config_map::MAX_DATA_BYTES
            ),
            "use mode Proxy (keys are fetched, not embedded) or fewer extraIssuers",
        ));
    }
    Ok(Children {
        config_map,
        deployment: proxy.then(|| mirror::deployment(valid, ctx)),
        service: proxy.then(|| mirror::service(valid)),
        pod_disruption_budget: (proxy && spec.proxy.replicas > 1)
            .then(|| mirror::pod_disruption_budget(valid)),
        ingress: ingress_enabled.then(|| ingress::ingress(valid)),
        config,
        jwks_url: urls.workos,
        cluster_internal_url: urls.cluster_internal,
    })
}

/// WorkOS's JWKS path for a client.
pub fn workos_jwks_path(client_id: &str) -> String {
    format!("/sso/jwks/{client_id}")
}

/// The AuthKit domain's JWKS path.
pub const AUTHKIT_JWKS_PATH: &str = "/oauth2/jwks";

/// Path prefix under which the mirror serves its documents ("" or "/prefix").
fn mirror_prefix(valid: &Valid) -> String {
    let ingress = &valid.spec.ingress;
    match ingress.path.as_deref() {
        Some(p) if ingress.enabled => p.trim_end_matches('/').to_string(),
        _ => String::new(),
    }
}

/// `(path served by the mirror, upstream URL)` for each mirrored document.
pub fn mirror_routes(valid: &Valid) -> Vec<(String, String)> {
    let prefix = mirror_prefix(valid);
    let path = workos_jwks_path(&valid.client_id);
    let upstream = format!(
        "{}{path}",
        valid.spec.jwks.upstream_base.trim_end_matches('/')
    );
    let mut routes = vec![(format!("{prefix}{path}"), upstream)];
    if let Some(domain) = &valid.spec.authkit_domain {
        routes.push((
            format!("{prefix}{AUTHKIT_JWKS_PATH}"),
            format!("https://{domain}{AUTHKIT_JWKS_PATH}"),
        ));
    }
    routes
}

fn jwks_urls(valid: &Valid, ctx: &BuildContext) -> Result<JwksUrls, InvalidField> {
    let spec = &valid.spec;
    let authkit_direct = spec
        .authkit_domain
        .as_ref()
        .map(|d| format!("https://{d}{AUTHKIT_JWKS_PATH}"));
    match spec.jwks.mode {
        JwksMode::Direct => Ok(JwksUrls {
            workos: format!(
                "{}{}",
                spec.jwks.upstream_base.trim_end_matches('/'),
                workos_jwks_path(&valid.client_id)
            ),
            authkit: authkit_direct,
            cluster_internal: false,
        }),
        JwksMode::Proxy => {
            let (base, cluster_internal) = match (&spec.jwks.public_url, &spec.ingress) {
                (Some(url), _) => (url.trim_end_matches('/').to_string(), false),
                (None, ingress) if ingress.enabled => (
                    format!("https://{}", ingress.host.as_deref().unwrap_or_default()),
                    false,
                ),
                (None, _) => (
                    format!(
                        "http://{}.{}.svc.cluster.local",
                        names::mirror_name(&valid.name),
                        valid.namespace
                    ),
                    true,
                ),
            };
            let mut routes = mirror_routes(valid)
                .into_iter()
                .map(|(path, _)| format!("{base}{path}"));
            let workos = routes.next().unwrap_or_default();
            Ok(JwksUrls {
                workos,
                authkit: routes.next(),
                cluster_internal,
            })
        }
        JwksMode::Inline => {
            let keys = ctx.inline_keys.as_ref().ok_or_else(|| {
                InvalidField::new(
                    "spec.jwks.mode",
                    "mode Inline needs the signing keys, which have not been fetched",
                    "pass the keys (render --jwks FILE) or let the operator fetch them",
                )
            })?;
            let authkit = match (&spec.authkit_domain, &keys.authkit) {
                (None, _) => None,
                (Some(_), Some(doc)) => Some(data_url(doc)),
                (Some(_), None) => {
                    return Err(InvalidField::new(
                        "spec.authkitDomain",
                        "mode Inline needs the AuthKit domain's keys too",
                        "pass them (render --authkit-jwks FILE) or use mode Proxy",
                    ));
                }
            };
            Ok(JwksUrls {
                workos: data_url(&keys.workos),
                authkit,
                cluster_internal: false,
            })
        }
    }
}

/// `data:application/json;base64,…`: Convex skips the HTTP fetch for it.
pub fn data_url(document: &str) -> String {
    format!(
        "data:application/json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(document)
    )
}

#[cfg(test)]
mod tests;
