//! Step 2, pure: the objects to apply for a validated resource.

mod config_map;
mod http_route;
mod ingress;
mod meta;
mod mirror;

use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::pod_template::MirrorPodDefaults;
use super::urls::JwksUrls;
use super::validate::Valid;
use crate::convex::config::AuthConfig;
use crate::convex::generate::InvalidField;
use crate::gateway::HTTPRoute;
use crate::jwks::UpstreamRules;

/// What `build` needs besides the resource.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildContext {
    /// Image of the mirror when `spec.proxy.image` is unset (the operator's own image).
    pub default_image: String,
    /// The upstream rules the mirror's fetcher applies, passed to it as flags (empty by default).
    pub mirror_upstream: UpstreamRules,
    /// With `Some`, each mirror gets a NetworkPolicy admitting its own namespace and these
    /// (`--mirror-network-policy`); `None`: no policy (the default).
    pub mirror_network_policy: Option<Vec<String>>,
    /// What every mirror pod gets besides its resource's `spec.proxy.podTemplate` (pull
    /// secrets, node selector, tolerations, priority class; chart values `mirror.*`).
    pub mirror_pod: MirrorPodDefaults,
    /// The operator's egress proxy, passed to every mirror as its environment.
    pub egress: crate::jwks::EgressProxy,
    /// The cluster's DNS domain, for the mirror's in-cluster URL (`--cluster-domain`).
    pub cluster_domain: String,
}

impl Default for BuildContext {
    fn default() -> Self {
        Self {
            default_image: String::new(),
            mirror_upstream: UpstreamRules::default(),
            mirror_network_policy: None,
            mirror_pod: MirrorPodDefaults::default(),
            egress: crate::jwks::EgressProxy::default(),
            cluster_domain: super::names::DEFAULT_CLUSTER_DOMAIN.to_string(),
        }
    }
}

/// Public JWKS documents (serialised JSON) for mode Inline.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineKeys {
    pub workos: String,
    pub authkit: Option<String>,
}

/// Largest JWKS document mode Inline embeds: a key set of a few keys is 1–5 KiB, and whatever is
/// embedded lands in the ConfigMap, the Convex variable and the operator's memory.
pub const MAX_INLINE_DOCUMENT_BYTES: usize = 64 * 1024;

impl JwksUrls {
    /// Mode Inline: the fetched documents as `data:` URLs, checked to fit the ConfigMap they are
    /// embedded in (three times, once per rendering, and once per provider).
    pub fn embedded(valid: &Valid, keys: &InlineKeys) -> Result<JwksUrls, InvalidField> {
        for document in std::iter::once(&keys.workos).chain(&keys.authkit) {
            if document.len() > MAX_INLINE_DOCUMENT_BYTES {
                return Err(InvalidField::new(
                    "spec.jwks.mode",
                    format!(
                        "the upstream's JWKS is {} bytes, over the {MAX_INLINE_DOCUMENT_BYTES} a mode-Inline config may embed (WorkOS's is about 1 KiB)",
                        document.len()
                    ),
                    "use mode Proxy (keys are fetched, not embedded), or check spec.jwks.upstreamBase",
                ));
            }
        }
        let authkit = match (valid.routes.len() > 1, &keys.authkit) {
            (false, _) => None,
            (true, Some(doc)) => Some(data_url(doc)),
            (true, None) => {
                return Err(InvalidField::new(
                    "spec.authkitDomain",
                    "mode Inline needs the AuthKit domain's keys too",
                    "pass them (render --authkit-jwks FILE) or use mode Proxy",
                ));
            }
        };
        let urls = JwksUrls {
            workos: data_url(&keys.workos),
            authkit,
            cluster_internal: false,
        };
        let config = valid
            .providers
            .with_jwks(&urls.workos, urls.authkit.as_deref());
        let size = config_map::data_bytes(&config_map::config_map(valid, &config, &urls.workos));
        if size > config_map::MAX_DATA_BYTES {
            return Err(InvalidField::new(
                "spec.jwks.mode",
                format!(
                    "the generated ConfigMap would hold {size} bytes, over Kubernetes' limit of {} (1 MiB)",
                    config_map::MAX_DATA_BYTES
                ),
                "use mode Proxy (keys are fetched, not embedded) or fewer extraIssuers",
            ));
        }
        Ok(urls)
    }
}

/// Everything the controller applies for one resource, plus what status reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub config: AuthConfig,
    pub config_map: ConfigMap,
    pub mirror: MirrorChildren,
    /// The JWKS URL the WorkOS providers use.
    pub jwks_url: String,
    /// Set when the URL is the in-cluster Service URL: only a Convex backend inside the cluster
    /// can reach it.
    pub cluster_internal_url: bool,
}

/// The JWKS mirror's objects, each absent where this resource wants none. The default, every
/// part absent, is what a refused resource gets: the apply then removes whatever of them it
/// controls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirrorChildren {
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub pod_disruption_budget: Option<PodDisruptionBudget>,
    pub ingress: Option<Ingress>,
    pub http_route: Option<HTTPRoute>,
    pub network_policy: Option<NetworkPolicy>,
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

/// The objects for a validated resource whose keys are served at (or embedded as) `urls`.
pub fn build(valid: &Valid, urls: &JwksUrls, ctx: &BuildContext) -> Children {
    let config = valid
        .providers
        .with_jwks(&urls.workos, urls.authkit.as_deref());
    let mirror = valid.mirror.as_ref();
    Children {
        config_map: config_map::config_map(valid, &config, &urls.workos),
        mirror: MirrorChildren {
            deployment: mirror.map(|m| mirror::deployment(valid, m, ctx)),
            service: mirror.map(|_| mirror::service(valid)),
            pod_disruption_budget: mirror
                .filter(|m| m.replicas > 1)
                .map(|_| mirror::pod_disruption_budget(valid)),
            ingress: valid.ingress().map(|i| ingress::ingress(valid, i)),
            http_route: valid.route().map(|r| http_route::http_route(valid, r)),
            network_policy: mirror
                .and(ctx.mirror_network_policy.as_deref())
                .map(|from| mirror::network_policy(valid, from)),
        },
        config,
        jwks_url: urls.workos.clone(),
        cluster_internal_url: urls.cluster_internal,
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
