//! Pure: checks a resource and its resolved client id against everything the apiserver, the
//! generator or the mirror would refuse later, and resolves every derived value (providers,
//! durations, names, routes, URLs), so `build` cannot fail.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::ResourceExt;

use super::urls::{AUTHKIT_JWKS_PATH, JwksUrls, workos_jwks_path};
use super::{names, pod_template};
use crate::api::{ClientIdSource, ConvexSpec, HttpRouteSpec, KeyRef, MirrorPodTemplate};
use crate::api::{JwksMode, WorkOSConvexAuth, WorkOSConvexAuthSpec};
use crate::convex::generate::{
    InvalidField, IssuerInput, ProviderPlan, check_client_id, check_hostname, is_client_id, plan,
};
use crate::duration::parse_duration;
use crate::mirror::{ConfigError, MirrorSpec};

/// A resource that passed validation: resolved values only, everything `build` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub name: String,
    pub namespace: String,
    /// Set on live objects; `render` works without it and then emits no owner reference.
    pub uid: Option<String>,
    pub client_id: String,
    pub mode: JwksMode,
    /// The providers Convex needs, checked; `build` adds the JWKS URLs.
    pub providers: ProviderPlan,
    /// Each document the mirror serves (mode Proxy) or the operator fetches (mode Inline),
    /// WorkOS's first; in mode Direct, what Convex fetches. The mirror's own route type: in mode
    /// Proxy, checked as the mirror checks its `--mirror` flags, and written as those flags.
    pub routes: Vec<MirrorSpec>,
    /// `spec.authDomain` and `spec.authkitDomain`: hosts of the resource's own that it may
    /// fetch keys from.
    pub own_hosts: Vec<String>,
    /// Where Convex fetches the keys in modes Direct and Proxy; `None` in mode Inline, where
    /// they are embedded once fetched.
    pub served_urls: Option<JwksUrls>,
    pub refresh_interval: Duration,
    pub max_stale: Duration,
    pub config_map_name: String,
    /// The mirror's workload, in mode Proxy.
    pub mirror: Option<MirrorPlan>,
    /// The Convex deployment whose variables the operator keeps current (`spec.convex`).
    pub convex: Option<ConvexTarget>,
}

/// `spec.convex`, checked: the deployment's URL without a trailing `/`, and where its admin key
/// is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvexTarget {
    pub url: String,
    pub admin_key: KeyRef,
}

/// The mirror's Deployment, as `spec.proxy` and `spec.ingress` ask for it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorPlan {
    /// `spec.proxy.image`; unset runs the operator's own image.
    pub image: Option<String>,
    pub replicas: i32,
    pub resources: Option<ResourceRequirements>,
    /// `spec.proxy.podTemplate`, its syntax checked (empty when unset).
    pub pod_template: MirrorPodTemplate,
    pub ingress: Option<IngressPlan>,
    pub route: Option<RoutePlan>,
}

/// The mirror's HTTPRoute, when `spec.httpRoute` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    /// The parent Gateways, each with its namespace resolved.
    pub parents: Vec<GatewayParent>,
    pub hostnames: Vec<String>,
    /// The path prefix routed to the mirror (`/` unless `spec.httpRoute.path` says otherwise).
    pub path: String,
}

/// A parent Gateway: namespace, name, and optionally one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayParent {
    pub namespace: String,
    pub name: String,
    pub section_name: Option<String>,
}

/// The mirror's Ingress, when `spec.ingress.enabled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressPlan {
    pub host: String,
    /// The path prefix routed to the mirror (`/` unless `spec.ingress.path` says otherwise).
    pub path: String,
    pub class_name: Option<String>,
    pub tls_secret_name: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

impl Valid {
    /// `WorkOSConvexAuth <namespace>/<name>`, for headers and messages.
    pub fn display(&self) -> String {
        format!("WorkOSConvexAuth {}/{}", self.namespace, self.name)
    }

    /// The upstream URLs, in route order.
    pub fn upstreams(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.url.clone()).collect()
    }

    /// The mirror's Ingress, if it has one.
    pub fn ingress(&self) -> Option<&IngressPlan> {
        self.mirror.as_ref().and_then(|m| m.ingress.as_ref())
    }

    /// The mirror's HTTPRoute, if it has one.
    pub fn route(&self) -> Option<&RoutePlan> {
        self.mirror.as_ref().and_then(|m| m.route.as_ref())
    }
}

/// The value under `spec.clientIdFrom`'s key is not a client id: the key and the object are
/// named, the value is not.
fn not_a_client_id(source: &ClientIdSource) -> InvalidField {
    let (kind, field, reference) = match (&source.secret_key_ref, &source.config_map_key_ref) {
        (Some(r), _) => ("Secret", "secretKeyRef", r),
        (None, Some(r)) => ("ConfigMap", "configMapKeyRef", r),
        (None, None) => {
            return InvalidField::new(
                "spec.clientIdFrom",
                "names neither a Secret nor a ConfigMap",
                "set secretKeyRef or configMapKeyRef",
            );
        }
    };
    InvalidField::new(
        format!("spec.clientIdFrom.{field}"),
        format!(
            "key {:?} of {kind} {:?} does not hold a WorkOS client id (client_ followed by letters and digits); its value is not shown",
            reference.key, reference.name
        ),
        "store the client id from the WorkOS dashboard's API keys page under that key, or point key at the one that holds it",
    )
}

/// `spec.httpRoute`, checked: at least one concrete host name (a wildcard cannot be the JWKS
/// URL's host), a path without empty or dot segments, each parent's namespace resolved.
fn route_plan(spec: &HttpRouteSpec, namespace: &str) -> Result<RoutePlan, InvalidField> {
    if spec.hostnames.is_empty() {
        // A route without hostnames takes every hostname of the Gateway's listeners, other
        // tenants' included (Gateway API: hostnames are intersected with the listener's).
        return Err(InvalidField::new(
            "spec.httpRoute.hostnames",
            "empty: a route without hostnames answers every host of its Gateway listeners, other namespaces' included",
            "name the host Convex reaches the mirror at, e.g. hostnames: [jwks.example.com]",
        ));
    }
    for (i, host) in spec.hostnames.iter().enumerate() {
        let field = format!("spec.httpRoute.hostnames[{i}]");
        if host.starts_with("*.") {
            return Err(InvalidField::new(
                field,
                format!("{host:?} is a wildcard"),
                "name the host Convex reaches the mirror at, e.g. jwks.example.com",
            ));
        }
        check_hostname(&field, host)?;
    }
    let path = spec.path.clone().unwrap_or_else(|| "/".to_string());
    check_path("spec.httpRoute.path", &path)?;
    Ok(RoutePlan {
        parents: spec
            .parent_refs
            .iter()
            .map(|p| GatewayParent {
                namespace: p.namespace.clone().unwrap_or_else(|| namespace.to_string()),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
            })
            .collect(),
        hostnames: spec.hostnames.clone(),
        path,
    })
}

/// `spec.convex.url` must be a deployment's origin: Convex serves its API below `/api`, and a
/// path, query or credentials would be dropped or sent somewhere unexpected.
fn convex_target(spec: &ConvexSpec) -> Result<ConvexTarget, InvalidField> {
    let field = "spec.convex.url";
    let fix = "write the deployment's URL as the dashboard shows it, e.g. https://happy-otter-123.convex.cloud";
    let url = url::Url::parse(&spec.url)
        .map_err(|e| InvalidField::new(field, format!("{:?} is not a URL: {e}", spec.url), fix))?;
    let problem = base_url_problem(&url).or_else(|| {
        if has_credentials(&url) {
            Some("carries credentials (the admin key goes in spec.convex.adminKeySecretRef)")
        } else if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            Some("has a path, query or fragment")
        } else {
            None
        }
    });
    if let Some(problem) = problem {
        // Credentials may be in it: the URL is not quoted.
        return Err(InvalidField::new(field, format!("the URL {problem}"), fix));
    }
    Ok(ConvexTarget {
        url: url.as_str().trim_end_matches('/').to_string(),
        admin_key: spec.admin_key_secret_ref.clone(),
    })
}

/// What makes a URL unusable as a base for HTTP requests: another scheme than http(s), no host.
fn base_url_problem(url: &url::Url) -> Option<&'static str> {
    if !matches!(url.scheme(), "http" | "https") {
        Some("has a scheme other than http or https")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("has no host")
    } else {
        None
    }
}

fn has_credentials(url: &url::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// `spec.jwks.publicUrl` must be a base URL Convex can fetch from: the CRD's pattern admits only
/// http(s), but `render` and `check-token -f` read files the apiserver never saw.
fn check_public_url(url: &str) -> Result<(), InvalidField> {
    let field = "spec.jwks.publicUrl";
    let fix = "write the base URL Convex reaches the mirror at, e.g. https://jwks.example.com";
    let parsed = url::Url::parse(url)
        .map_err(|e| InvalidField::new(field, format!("{url:?} is not a URL: {e}"), fix))?;
    let problem = base_url_problem(&parsed).or_else(|| {
        if has_credentials(&parsed) {
            Some("carries credentials")
        } else if parsed.query().is_some() || parsed.fragment().is_some() {
            Some("has a query or fragment, which the JWKS path would be appended to")
        } else {
            None
        }
    });
    match problem {
        // Credentials may be in it: the URL is not quoted.
        Some(problem) => Err(InvalidField::new(field, format!("the URL {problem}"), fix)),
        None => Ok(()),
    }
}

/// Free-form text that reaches status (the JWKS URL, the issuers) or the generated config must
/// show as written: a control character or a bidirectional override there could rewrite what
/// `kubectl` prints to whoever reads it. The CRD's patterns exclude whitespace, not these.
fn check_printable(spec: &WorkOSConvexAuthSpec) -> Result<(), InvalidField> {
    let extra = spec.extra_issuers.iter().enumerate().flat_map(|(i, e)| {
        [
            (format!("spec.extraIssuers[{i}].issuer"), Some(&e.issuer)),
            (
                format!("spec.extraIssuers[{i}].applicationID"),
                e.application_id.as_ref(),
            ),
        ]
    });
    let fields = [
        (
            "spec.jwks.publicUrl".to_string(),
            spec.jwks.public_url.as_ref(),
        ),
        (
            "spec.jwks.upstreamBase".to_string(),
            Some(&spec.jwks.upstream_base),
        ),
        (
            "spec.convex.url".to_string(),
            spec.convex.as_ref().map(|c| &c.url),
        ),
    ];
    for (field, value) in fields.into_iter().chain(extra) {
        if value.is_some_and(|v| v.chars().any(crate::printable::unsafe_char)) {
            // Not quoted: the point is that it would not show as written.
            return Err(InvalidField::new(
                field,
                "holds a control character or a bidirectional override",
                "write it in plain printable characters",
            ));
        }
    }
    Ok(())
}

/// Validates a resource. `resolved_client_id` is the value read from `spec.clientIdFrom`
/// (the caller does the I/O); it is ignored when `spec.clientId` is set. `cluster_domain` makes
/// the in-cluster mirror URL (`--cluster-domain`).
pub fn validate(
    resource: &WorkOSConvexAuth,
    resolved_client_id: Option<&str>,
    cluster_domain: &str,
) -> Result<Valid, InvalidField> {
    let spec = &resource.spec;
    let name = resource.name_any();
    let namespace = resource
        .namespace()
        .unwrap_or_else(|| "default".to_string());
    check_printable(spec)?;
    let client_id = client_id(spec, resolved_client_id)?;
    let (refresh_interval, max_stale) = proxy_timing(spec)?;
    check_ingress_switch(spec)?;
    check_name(&name, spec.jwks.mode)?;
    check_domains(spec)?;
    if spec.ingress.enabled
        && let Some(path) = &spec.ingress.path
    {
        check_path("spec.ingress.path", path)?;
    }
    let providers = providers(spec, &client_id)?;
    let (ingress, route) = exposure(spec, &namespace)?;
    let routes = mirror_routes(spec, &client_id, ingress.as_ref(), route.as_ref())?;
    let served_urls = served_urls(spec.jwks.mode, &routes, |routes| {
        proxy_base(spec, ingress.as_ref(), route.as_ref(), || {
            names::mirror_service_url(&name, &namespace, cluster_domain)
        })
        .with_paths(routes)
    });
    let convex = spec.convex.as_ref().map(convex_target).transpose()?;
    if let Some(url) = &spec.jwks.public_url {
        check_public_url(url)?;
    }
    let mirror = mirror_plan(spec, ingress, route)?;
    Ok(Valid {
        config_map_name: names::config_map_name(&name, spec.config_map.name.as_deref()),
        uid: resource.metadata.uid.clone(),
        client_id,
        providers,
        routes,
        own_hosts: [&spec.auth_domain, &spec.authkit_domain]
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
        served_urls,
        refresh_interval,
        max_stale,
        mirror,
        convex,
        mode: spec.jwks.mode,
        name,
        namespace,
    })
}

/// The Convex providers: the issuers the domains and `extraIssuers` give.
fn providers(spec: &WorkOSConvexAuthSpec, client_id: &str) -> Result<ProviderPlan, InvalidField> {
    plan(&IssuerInput {
        client_id,
        auth_domain: spec.auth_domain.as_deref(),
        authkit_domain: spec.authkit_domain.as_deref(),
        algorithm: spec.algorithm,
        extra_issuers: &spec.extra_issuers,
    })
}

/// The mirror's routes (path → upstream), under the Ingress's or HTTPRoute's path prefix; in
/// mode Proxy checked as the mirror itself will parse them.
fn mirror_routes(
    spec: &WorkOSConvexAuthSpec,
    client_id: &str,
    ingress: Option<&IngressPlan>,
    route: Option<&RoutePlan>,
) -> Result<Vec<MirrorSpec>, InvalidField> {
    let path_prefix = ingress
        .map(|i| i.path.as_str())
        .or(route.map(|r| r.path.as_str()));
    let routes = routes(
        client_id,
        &spec.jwks.upstream_base,
        spec.authkit_domain.as_deref(),
        path_prefix,
    );
    if spec.jwks.mode == JwksMode::Proxy {
        check_mirror_routes(&routes)?;
    }
    Ok(routes)
}

/// In mode Proxy, what the mirror's Deployment is made of (its pod template checked for what
/// Kubernetes would refuse); `None` in the other modes.
fn mirror_plan(
    spec: &WorkOSConvexAuthSpec,
    ingress: Option<IngressPlan>,
    route: Option<RoutePlan>,
) -> Result<Option<MirrorPlan>, InvalidField> {
    let pod_template = spec.proxy.pod_template.clone().unwrap_or_default();
    pod_template::check_syntax(&pod_template)?;
    Ok((spec.jwks.mode == JwksMode::Proxy).then(|| MirrorPlan {
        image: spec.proxy.image.clone(),
        replicas: spec.proxy.replicas,
        resources: spec.proxy.resources.clone(),
        pod_template,
        ingress,
        route,
    }))
}

/// The client id: `spec.clientId`, or the value read from `spec.clientIdFrom` (never echoed:
/// it may be anything stored under that key).
fn client_id(
    spec: &WorkOSConvexAuthSpec,
    resolved_client_id: Option<&str>,
) -> Result<String, InvalidField> {
    let (client_id, field) = match (&spec.client_id, &spec.client_id_from) {
        (Some(id), None) => (id.trim().to_string(), "spec.clientId"),
        (None, Some(source)) => {
            let id = resolved_client_id.ok_or_else(|| {
                InvalidField::new(
                    "spec.clientIdFrom",
                    "the referenced key has not been read",
                    "make sure the Secret or ConfigMap and key exist",
                )
            })?;
            let id = id.trim();
            // The value may be anything stored under that key (a password, a URL with
            // credentials): say which key is wrong, never what it holds. Status and Events are
            // readable by roles that cannot read Secrets.
            if !is_client_id(id) {
                return Err(not_a_client_id(source));
            }
            (id.to_string(), "spec.clientIdFrom")
        }
        (Some(_), Some(_)) => {
            return Err(InvalidField::new(
                "spec.clientId",
                "both spec.clientId and spec.clientIdFrom are set",
                "keep exactly one of them",
            ));
        }
        (None, None) => {
            return Err(InvalidField::new(
                "spec.clientId",
                "neither spec.clientId nor spec.clientIdFrom is set",
                "set spec.clientId: client_… (from the WorkOS dashboard)",
            ));
        }
    };
    check_client_id(field, &client_id)?;
    Ok(client_id)
}

/// `spec.proxy.refreshInterval` and `maxStale`, parsed and in order; `replicas` not negative.
fn proxy_timing(spec: &WorkOSConvexAuthSpec) -> Result<(Duration, Duration), InvalidField> {
    let duration = |field: &str, value: &str| {
        parse_duration(value)
            .map_err(|e| InvalidField::new(field, e.to_string(), "write it like 30s, 5m or 24h"))
    };
    let refresh_interval = duration("spec.proxy.refreshInterval", &spec.proxy.refresh_interval)?;
    let max_stale = duration("spec.proxy.maxStale", &spec.proxy.max_stale)?;
    if refresh_interval < Duration::from_secs(10) {
        return Err(InvalidField::new(
            "spec.proxy.refreshInterval",
            format!("{} is below 10s", spec.proxy.refresh_interval),
            "refresh at most every 10s: WorkOS rate-limits its API",
        ));
    }
    if max_stale < refresh_interval {
        return Err(InvalidField::new(
            "spec.proxy.maxStale",
            "maxStale is shorter than refreshInterval",
            "set maxStale to at least refreshInterval (default 24h)",
        ));
    }
    if spec.proxy.replicas < 0 {
        return Err(InvalidField::new(
            "spec.proxy.replicas",
            "replicas is negative",
            "use 0 or more",
        ));
    }
    Ok((refresh_interval, max_stale))
}

/// An enabled Ingress needs mode Proxy and a host.
fn check_ingress_switch(spec: &WorkOSConvexAuthSpec) -> Result<(), InvalidField> {
    if spec.ingress.enabled && spec.jwks.mode != JwksMode::Proxy {
        return Err(InvalidField::new(
            "spec.ingress.enabled",
            "only mode Proxy runs a mirror to expose",
            "disable the ingress or use spec.jwks.mode: Proxy",
        ));
    }
    if spec.ingress.enabled && spec.ingress.host.is_none() {
        return Err(InvalidField::new(
            "spec.ingress.host",
            "the ingress is enabled without a host",
            "set spec.ingress.host to the name Convex reaches the mirror at",
        ));
    }
    Ok(())
}

/// `authDomain` and `authkitDomain` are DNS names: the CRD's host-name pattern admits
/// `10.0.0.1`, and no top-level domain is all digits.
fn check_domains(spec: &WorkOSConvexAuthSpec) -> Result<(), InvalidField> {
    for (field, domain) in [
        ("spec.authDomain", &spec.auth_domain),
        ("spec.authkitDomain", &spec.authkit_domain),
    ] {
        if let Some(domain) = domain
            && domain
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(InvalidField::new(
                field,
                format!("{domain:?} is an IP address; WorkOS domains are DNS names"),
                "use the domain's name, e.g. auth.example.com or acme.authkit.app",
            ));
        }
    }
    Ok(())
}

/// How the mirror is exposed: the Ingress plan, or the HTTPRoute plan (not both, mode Proxy;
/// the Ingress path is checked before the providers are planned).
fn exposure(
    spec: &WorkOSConvexAuthSpec,
    namespace: &str,
) -> Result<(Option<IngressPlan>, Option<RoutePlan>), InvalidField> {
    let ingress = spec.ingress.enabled.then(|| IngressPlan {
        host: spec.ingress.host.clone().unwrap_or_default(),
        path: spec.ingress.path.clone().unwrap_or_else(|| "/".to_string()),
        class_name: spec.ingress.class_name.clone(),
        tls_secret_name: spec.ingress.tls_secret_name.clone(),
        annotations: spec.ingress.annotations.clone(),
    });
    let route = spec
        .http_route
        .as_ref()
        .map(|r| route_plan(r, namespace))
        .transpose()?;
    if route.is_some() && spec.ingress.enabled {
        return Err(InvalidField::new(
            "spec.httpRoute",
            "both spec.ingress and spec.httpRoute are set",
            "expose the mirror one way: disable the ingress or remove spec.httpRoute",
        ));
    }
    if route.is_some() && spec.jwks.mode != JwksMode::Proxy {
        return Err(InvalidField::new(
            "spec.httpRoute",
            "only mode Proxy runs a mirror to expose",
            "remove spec.httpRoute or use spec.jwks.mode: Proxy",
        ));
    }
    Ok((ingress, route))
}

/// The mirror parses its routes at start-up and exits on a bad one: parse them the same way
/// here, so a spec it would refuse never reaches a Deployment that crash-loops.
fn check_mirror_routes(routes: &[MirrorSpec]) -> Result<(), InvalidField> {
    for route in routes {
        route.check().map_err(|e| {
            // The reason alone: the URL may hold credentials.
            let reason = match e {
                ConfigError::Url { reason, .. } => reason,
                other => other.to_string(),
            };
            InvalidField::new(
                "spec.jwks.upstreamBase",
                format!("the mirror would refuse it: {reason}"),
                "use a plain https:// URL without credentials, like https://api.workos.com",
            )
        })?;
    }
    Ok(())
}

/// Where Convex fetches the keys in modes Direct (from the upstream) and Proxy (`proxied`: the
/// mirror's base URL with each route's path); `None` in mode Inline.
fn served_urls(
    mode: JwksMode,
    routes: &[MirrorSpec],
    proxied: impl FnOnce(&[MirrorSpec]) -> JwksUrls,
) -> Option<JwksUrls> {
    match mode {
        JwksMode::Direct => Some(JwksUrls {
            workos: routes[0].url.clone(),
            authkit: routes.get(1).map(|r| r.url.clone()),
            cluster_internal: false,
        }),
        JwksMode::Proxy => Some(proxied(routes)),
        JwksMode::Inline => None,
    }
}

/// The mirror's base URL: `publicUrl`, else the Ingress host, else the route's first hostname,
/// else the in-cluster Service URL (`in_cluster`).
fn proxy_base(
    spec: &WorkOSConvexAuthSpec,
    ingress: Option<&IngressPlan>,
    route: Option<&RoutePlan>,
    in_cluster: impl FnOnce() -> String,
) -> MirrorBase {
    let route_host = route.and_then(|r| r.hostnames.first());
    match (&spec.jwks.public_url, ingress, route_host) {
        (Some(url), _, _) => MirrorBase::public(url.trim_end_matches('/').to_string()),
        (None, Some(ingress), _) => MirrorBase::public(format!("https://{}", ingress.host)),
        (None, None, Some(host)) => MirrorBase::public(format!("https://{host}")),
        (None, None, None) => MirrorBase {
            url: in_cluster(),
            cluster_internal: true,
        },
    }
}

/// The base URL the mirror is reached at, and whether only the cluster can reach it.
struct MirrorBase {
    url: String,
    cluster_internal: bool,
}

impl MirrorBase {
    fn public(url: String) -> Self {
        Self {
            url,
            cluster_internal: false,
        }
    }

    fn with_paths(self, routes: &[MirrorSpec]) -> JwksUrls {
        JwksUrls {
            workos: format!("{}{}", self.url, routes[0].path),
            authkit: routes.get(1).map(|r| format!("{}{}", self.url, r.path)),
            cluster_internal: self.cluster_internal,
        }
    }
}

/// The mirrored documents: WorkOS's keys for the client, and the AuthKit domain's if one is
/// set, served under the Ingress path's prefix.
/// A path prefix the mirror can serve below: `/segment/segment`, no empty, `.` or `..` segment.
fn check_path(field: &str, path: &str) -> Result<(), InvalidField> {
    let segments_ok = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if segments_ok {
        Ok(())
    } else {
        Err(InvalidField::new(
            field,
            format!(
                "{path:?} has an empty, \".\" or \"..\" segment, which the mirror cannot serve below"
            ),
            "write it as /segment/segment, e.g. /workos",
        ))
    }
}

/// `prefix`: the path routed to the mirror by its Ingress or HTTPRoute.
fn routes(
    client_id: &str,
    upstream_base: &str,
    authkit_domain: Option<&str>,
    prefix: Option<&str>,
) -> Vec<MirrorSpec> {
    let prefix = prefix.map_or("", |p| p.trim_end_matches('/'));
    let path = workos_jwks_path(client_id);
    let mut routes = vec![MirrorSpec {
        path: format!("{prefix}{path}"),
        url: format!("{}{path}", upstream_base.trim_end_matches('/')),
    }];
    if let Some(domain) = authkit_domain {
        routes.push(MirrorSpec {
            path: format!("{prefix}{AUTHKIT_JWKS_PATH}"),
            url: format!("https://{domain}{AUTHKIT_JWKS_PATH}"),
        });
    }
    routes
}

/// Names the apiserver would refuse once suffixed: every child carries the name as the
/// `app.kubernetes.io/instance` label (a label value: at most 63 characters), and in mode Proxy
/// `<name>-jwks` names a Service (a DNS-1035 label: a lowercase letter first, no dots, at most
/// 63 characters).
fn check_name(name: &str, mode: JwksMode) -> Result<(), InvalidField> {
    if name.len() > 63 {
        return Err(InvalidField::new(
            "metadata.name",
            format!(
                "{name:?} has {} characters; its children carry it as a label value, which allows 63",
                name.len()
            ),
            "use a name of at most 63 characters (58 in mode Proxy)",
        ));
    }
    if mode != JwksMode::Proxy {
        return Ok(());
    }
    let dns_1035 = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if !dns_1035 {
        return Err(InvalidField::new(
            "metadata.name",
            format!(
                "{name:?} cannot name the mirror's Service ({name}-jwks): Service names start with a lowercase letter and hold only lowercase letters, digits and '-'"
            ),
            "rename the resource (e.g. acme-prod instead of acme.prod or 1acme), or use mode Direct or Inline",
        ));
    }
    if names::mirror_name(name).len() > 63 {
        return Err(InvalidField::new(
            "metadata.name",
            format!("{name:?} is too long for the mirror's Service name"),
            "use a name of at most 58 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClientIdSource, KeyRef};

    use crate::reconcile::fixtures::resource;

    #[test]
    fn an_http_route_resolves_parents_and_puts_its_first_host_in_the_jwks_url() {
        let v = validate(
            &resource("{clientId: client_01A, httpRoute: {parentRefs: [{name: public, namespace: infra, sectionName: https}, {name: local}], hostnames: [jwks.acme.com, jwks.acme.org], path: /workos}}"),
            None, names::DEFAULT_CLUSTER_DOMAIN
        )
        .unwrap();
        let route = v.route().unwrap();
        assert_eq!(
            route.parents,
            [
                GatewayParent {
                    namespace: "infra".into(),
                    name: "public".into(),
                    section_name: Some("https".into())
                },
                GatewayParent {
                    namespace: "apps".into(),
                    name: "local".into(),
                    section_name: None
                },
            ]
        );
        let urls = v.served_urls.unwrap();
        assert_eq!(
            urls.workos,
            "https://jwks.acme.com/workos/sso/jwks/client_01A"
        );
        assert!(!urls.cluster_internal);
        assert_eq!(v.routes[0].path, "/workos/sso/jwks/client_01A");
        // publicUrl still wins.
        let v = validate(&resource("{clientId: client_01A, jwks: {publicUrl: 'https://k.example.com'}, httpRoute: {parentRefs: [{name: p}], hostnames: [jwks.acme.com]}}"), None, names::DEFAULT_CLUSTER_DOMAIN).unwrap();
        assert_eq!(
            v.served_urls.unwrap().workos,
            "https://k.example.com/sso/jwks/client_01A"
        );
    }

    #[test]
    fn an_http_route_is_refused_with_an_ingress_a_wildcard_or_another_mode() {
        let field = |spec: &str| {
            validate(&resource(spec), None, names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .field
        };
        assert_eq!(
            field(
                "{clientId: client_01A, ingress: {enabled: true, host: a.example.com}, httpRoute: {parentRefs: [{name: p}], hostnames: [b.example.com]}}"
            ),
            "spec.httpRoute"
        );
        assert_eq!(
            field(
                "{clientId: client_01A, jwks: {mode: Direct}, httpRoute: {parentRefs: [{name: p}], hostnames: [b.example.com]}}"
            ),
            "spec.httpRoute"
        );
        assert_eq!(
            field(
                "{clientId: client_01A, httpRoute: {parentRefs: [{name: p}], hostnames: ['*.example.com']}}"
            ),
            "spec.httpRoute.hostnames[0]"
        );
        assert_eq!(
            field(
                "{clientId: client_01A, httpRoute: {parentRefs: [{name: p}], hostnames: [a.example.com], path: /a/../b}}"
            ),
            "spec.httpRoute.path"
        );
        // Every listener hostname, other tenants' included: refused.
        assert_eq!(
            field("{clientId: client_01A, httpRoute: {parentRefs: [{name: p}]}}"),
            "spec.httpRoute.hostnames"
        );
    }

    /// Issue 24: the in-cluster URL is in the cluster's own DNS domain (`--cluster-domain`).
    #[test]
    fn the_in_cluster_url_uses_the_cluster_domain() {
        let r = resource("clientId: client_01A");
        let url = |domain: &str| {
            let v = validate(&r, None, domain).unwrap();
            v.served_urls.expect("mode Proxy").workos
        };
        assert_eq!(
            url("k8s.example.internal"),
            "http://acme-jwks.apps.svc.k8s.example.internal/sso/jwks/client_01A"
        );
        assert_eq!(
            url(names::DEFAULT_CLUSTER_DOMAIN),
            "http://acme-jwks.apps.svc.cluster.local/sso/jwks/client_01A"
        );
        for bad in ["", ".cluster.local", "Cluster.Local", "a..b", "-a.b"] {
            assert!(names::parse_cluster_domain(bad).is_err(), "{bad:?}");
        }
    }

    /// Issue 24: every InvalidSpec names a field the reader can find (a path of the CRD's
    /// schema, as `kubectl explain` shows it), says how to fix it, and any flag or chart value
    /// it names exists. Walks a refusal of each kind validation makes.
    #[test]
    fn invalid_spec_messages_name_real_fields_a_fix_and_real_flags() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(WorkOSConvexAuth::crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let field_exists = |field: &str| {
            if field == "metadata.name" {
                return true;
            }
            // `labels["key"]`, `hostnames[0]`: the map or list itself.
            let path = field.split('[').next().unwrap_or(field);
            path.split('.')
                .try_fold(schema, |node, key| node.get("properties")?.get(key))
                .is_some()
        };
        let specs = [
            "{clientId: client_1, clientIdFrom: {secretKeyRef: {name: a, key: b}}}",
            "{}",
            "{clientIdFrom: {secretKeyRef: {name: a, key: b}}}",
            "{clientId: client_1, proxy: {refreshInterval: 5s}}",
            "{clientId: client_1, proxy: {refreshInterval: 1h, maxStale: 5m}}",
            "{clientId: client_1, proxy: {replicas: -1}}",
            "{clientId: client_1, jwks: {mode: Direct}, ingress: {enabled: true, host: a.example.com}}",
            "{clientId: client_1, ingress: {enabled: true}}",
            "{clientId: client_1, authDomain: 10.0.0.1}",
            "{clientId: client_1, authkitDomain: 'https://acme.authkit.app'}",
            "{clientId: client_1, ingress: {enabled: true, host: a.example.com}, httpRoute: {parentRefs: [{name: p}], hostnames: [x.example.com]}}",
            "{clientId: client_1, jwks: {mode: Direct}, httpRoute: {parentRefs: [{name: p}], hostnames: [x.example.com]}}",
            "{clientId: client_1, httpRoute: {parentRefs: [{name: p}]}}",
            "{clientId: client_1, httpRoute: {parentRefs: [{name: p}], hostnames: ['*.example.com']}}",
            "{clientId: client_1, jwks: {upstreamBase: 'https://user:pw@api.workos.com'}}",
            "{clientId: client_1, ingress: {enabled: true, host: a.example.com, path: '/a/../b'}}",
            "{clientId: client_1, proxy: {podTemplate: {metadata: {labels: {'-x': y}}}}}",
            "{clientId: client_1, proxy: {podTemplate: {spec: {nodeSelector: {pool: 'a b'}}}}}",
            "{clientId: \"client_1\u{202e}\"}",
            "{clientId: client_1, jwks: {publicUrl: 'ftp://jwks.example.com'}}",
            "{clientId: client_1, convex: {url: 'ftp://x.convex.cloud', adminKeySecretRef: {name: a, key: b}}}",
        ];
        let mut messages = Vec::new();
        for spec in specs {
            let error =
                validate(&resource(spec), None, names::DEFAULT_CLUSTER_DOMAIN).expect_err(spec);
            assert!(
                field_exists(&error.field),
                "{spec}: {} is not a field of the CRD",
                error.field
            );
            assert!(!error.fix.trim().is_empty(), "{spec}: no fix in {error}");
            messages.push(error.to_string());
        }
        let mut long = resource("{clientId: client_1}");
        long.metadata.name = Some("a".repeat(70));
        let error = validate(&long, None, names::DEFAULT_CLUSTER_DOMAIN).unwrap_err();
        assert_eq!(error.field, "metadata.name");
        messages.push(error.to_string());
        crate::reconcile::fixtures::assert_named_flags_and_values_exist(&messages);
        assert!(
            !field_exists("spec.proxy.nothingHere"),
            "the check can fail"
        );
    }

    #[test]
    fn fills_in_defaults_and_names() {
        let v = validate(
            &resource("clientId: client_01ABC"),
            None,
            names::DEFAULT_CLUSTER_DOMAIN,
        )
        .unwrap();
        assert_eq!(v.config_map_name, "acme-convex-auth");
        assert_eq!(v.refresh_interval, Duration::from_secs(300));
        assert_eq!(v.max_stale, Duration::from_secs(86_400));
        assert_eq!(v.mode, JwksMode::Proxy);
        assert_eq!(v.display(), "WorkOSConvexAuth apps/acme");
    }

    #[test]
    fn client_id_from_uses_the_resolved_value_and_checks_it() {
        let mut r = resource("jwks: {mode: Direct}");
        r.spec.client_id_from = Some(ClientIdSource {
            secret_key_ref: Some(KeyRef {
                name: "s".into(),
                key: "k".into(),
            }),
            config_map_key_ref: None,
        });
        assert_eq!(
            validate(&r, Some("client_01X\n"), names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap()
                .client_id,
            "client_01X"
        );
        assert_eq!(
            validate(&r, Some("nope"), names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .field,
            "spec.clientIdFrom.secretKeyRef"
        );
        assert_eq!(
            validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .field,
            "spec.clientIdFrom"
        );
    }

    #[test]
    fn a_referenced_value_that_is_not_a_client_id_is_never_quoted() {
        let secret = "postgres://admin:S3cr3t@db";
        for (source, kind) in [
            (
                ClientIdSource {
                    secret_key_ref: Some(KeyRef {
                        name: "db".into(),
                        key: "url".into(),
                    }),
                    config_map_key_ref: None,
                },
                "Secret",
            ),
            (
                ClientIdSource {
                    secret_key_ref: None,
                    config_map_key_ref: Some(KeyRef {
                        name: "db".into(),
                        key: "url".into(),
                    }),
                },
                "ConfigMap",
            ),
        ] {
            let mut r = resource("jwks: {mode: Direct}");
            r.spec.client_id_from = Some(source);
            let error = validate(&r, Some(secret), names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .to_string();
            assert!(
                !error.contains("S3cr3t") && !error.contains("postgres"),
                "{error}"
            );
            assert!(
                error.contains(&format!(
                    "key \"url\" of {kind} \"db\" does not hold a WorkOS client id"
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn refuses_with_the_field_named() {
        let cases = [
            ("{}", "spec.clientId"),
            ("clientId: bad", "spec.clientId"),
            (
                "{clientId: client_1, proxy: {refreshInterval: 5x}}",
                "spec.proxy.refreshInterval",
            ),
            (
                "{clientId: client_1, proxy: {refreshInterval: 1s}}",
                "spec.proxy.refreshInterval",
            ),
            (
                "{clientId: client_1, proxy: {maxStale: 1m}}",
                "spec.proxy.maxStale",
            ),
            (
                "{clientId: client_1, proxy: {replicas: -1}}",
                "spec.proxy.replicas",
            ),
            (
                "{clientId: client_1, ingress: {enabled: true}}",
                "spec.ingress.host",
            ),
            (
                "{clientId: client_1, jwks: {mode: Inline}, ingress: {enabled: true, host: a.b.c}}",
                "spec.ingress.enabled",
            ),
            // Control characters and bidirectional overrides, in YAML's escapes.
            (
                "{clientId: client_1, jwks: {publicUrl: \"https://k.example.com/\\e[2J\"}}",
                "spec.jwks.publicUrl",
            ),
            (
                "{clientId: client_1, jwks: {upstreamBase: \"https://a.example.com/\\x9b\"}}",
                "spec.jwks.upstreamBase",
            ),
            (
                "{clientId: client_1, extraIssuers: [{issuer: \"https://i.example.com/\\u202Emoc\"}]}",
                "spec.extraIssuers[0].issuer",
            ),
            (
                "{clientId: client_1, extraIssuers: [{issuer: \"https://i.example.com\", applicationID: \"a\\x07\"}]}",
                "spec.extraIssuers[0].applicationID",
            ),
            (
                "{clientId: client_1, convex: {url: \"https://a.convex.cloud\\x1b\", adminKeySecretRef: {name: k, key: k}}}",
                "spec.convex.url",
            ),
        ];
        for (yaml, field) in cases {
            let err = validate(&resource(yaml), None, names::DEFAULT_CLUSTER_DOMAIN).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {err}");
            assert!(!err.fix.is_empty());
        }
    }

    #[test]
    fn refuses_names_and_paths_the_apiserver_or_the_mirror_would_refuse() {
        for (name, mode, ok) in [
            ("acme-prod", "Proxy", true),
            ("acme.prod", "Proxy", false),
            ("1acme", "Proxy", false),
            ("acme.prod", "Direct", true),
            ("1acme", "Inline", true),
        ] {
            let mut r = resource(&format!("{{clientId: client_1, jwks: {{mode: {mode}}}}}"));
            r.metadata.name = Some(name.into());
            let result = validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN);
            assert_eq!(result.is_ok(), ok, "{name} in mode {mode}: {result:?}");
            if let Err(e) = result {
                assert_eq!(e.field, "metadata.name");
            }
        }
        let mut r = resource("{clientId: client_1, jwks: {mode: Direct}}");
        r.metadata.name = Some("a".repeat(64));
        assert_eq!(
            validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .field,
            "metadata.name"
        );
        for path in ["/a//b", "/a/./b", "/a/../b", "//b"] {
            let r = resource(&format!(
                "{{clientId: client_1, ingress: {{enabled: true, host: a.b, path: {path:?}}}}}"
            ));
            assert_eq!(
                validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN)
                    .unwrap_err()
                    .field,
                "spec.ingress.path",
                "{path}"
            );
        }
        for path in ["/", "/workos", "/a/b/"] {
            let r = resource(&format!(
                "{{clientId: client_1, ingress: {{enabled: true, host: a.b, path: {path:?}}}}}"
            ));
            assert!(
                validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN).is_ok(),
                "{path}"
            );
        }
        let r = resource(
            "{clientId: client_1, jwks: {upstreamBase: 'https://user:pw@api.workos.com'}}",
        );
        let error = validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN).unwrap_err();
        assert_eq!(error.field, "spec.jwks.upstreamBase");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }

    #[test]
    fn domains_are_names_never_addresses() {
        for (yaml, field) in [
            (
                "{clientId: client_1, authDomain: 10.0.0.1}",
                "spec.authDomain",
            ),
            (
                "{clientId: client_1, authkitDomain: 169.254.169.254}",
                "spec.authkitDomain",
            ),
        ] {
            assert_eq!(
                validate(&resource(yaml), None, names::DEFAULT_CLUSTER_DOMAIN)
                    .unwrap_err()
                    .field,
                field
            );
        }
        assert!(
            validate(
                &resource("{clientId: client_1, authkitDomain: a1.authkit.app}"),
                None,
                names::DEFAULT_CLUSTER_DOMAIN
            )
            .is_ok()
        );
    }

    #[test]
    fn refuses_names_too_long_for_the_service() {
        let mut r = resource("clientId: client_1");
        r.metadata.name = Some("a".repeat(60));
        assert_eq!(
            validate(&r, None, names::DEFAULT_CLUSTER_DOMAIN)
                .unwrap_err()
                .field,
            "metadata.name"
        );
    }
}
