//! Step 1b, pure: the admin's policy on what a tenant may ask the operator to create.
//!
//! The operator creates Ingresses, Deployments and upstream requests under its own identity, so
//! admission policies keyed on the requesting user never see the tenant. Everything a resource
//! asks for that could reach beyond its namespace is checked here: the Ingress (class, host,
//! annotations), the mirror's image and size, and where keys are fetched from. A refused
//! resource gets `Ready=False`, reason `NotAllowed`, with the field and the rule; its workloads
//! are not created, or removed.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::pod_template::{MirrorPodDefaults, reserved_label};
use super::validate::Valid;
use super::validate::{IngressPlan, MirrorPlan, RoutePlan};
use crate::api::{MirrorPodMetadata, MirrorPodSpec, MirrorPodTemplate};
use crate::convex::generate::WORKOS_API_HOST;
use crate::jwks::UpstreamRules;

/// What the admin allows. `Default` is the policy of an operator started without flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// IngressClass names a resource may use; empty: any.
    pub ingress_classes: Vec<String>,
    /// DNS suffixes an Ingress host must end with (`example.com` allows `example.com` and
    /// `jwks.example.com`); empty: any host.
    pub ingress_host_suffixes: Vec<String>,
    /// Ingress annotation keys allowed: exact keys or prefixes ending in `*`; empty: none. A
    /// key that acts outside the Ingress ([`dangerous_annotation`]) passes only when listed
    /// exactly.
    pub ingress_annotations: Vec<String>,
    /// Prefixes `spec.proxy.image` must start with (a repository, `registry/org/`); never empty:
    /// the operator's own repository by default.
    pub image_prefixes: Vec<String>,
    /// Most mirror pods one resource may run.
    pub max_replicas: i32,
    /// Largest CPU request or limit of a mirror container.
    pub max_cpu: Quantity,
    /// Largest memory request or limit of a mirror container; a memory limit is required.
    pub max_memory: Quantity,
    /// Upstream hosts allowed besides WorkOS's API host and the resource's own `authDomain` and
    /// `authkitDomain`: exact names (or IP literals), or `.suffix` for any name below it.
    pub upstream_hosts: Vec<String>,
    /// The rules every fetch follows (scheme, address ranges); also passed to the mirrors.
    pub upstream: UpstreamRules,
    /// The same rules for the Convex deployments of `spec.convex` (the admin key goes there).
    pub convex: UpstreamRules,
    /// Gateways an HTTPRoute may attach to, as `namespace/name`; empty: any.
    pub gateways: Vec<String>,
    /// Hosts `spec.convex.url` may name (the admin key goes there), as `upstream_hosts`.
    pub convex_hosts: Vec<String>,
    /// Whether `spec.convex` is honoured at all.
    pub convex_sync: bool,
    /// PriorityClasses `spec.proxy.podTemplate` may name besides the operator-wide default.
    pub priority_classes: Vec<String>,
    /// Label and annotation keys `spec.proxy.podTemplate.metadata` may set: exact keys or
    /// prefixes ending in `*`; empty: none.
    pub pod_labels: Vec<String>,
    pub pod_annotations: Vec<String>,
    /// The operator-wide mirror pod settings a template may add to but not change.
    pub mirror_pod: MirrorPodDefaults,
}

impl Policy {
    /// The defaults, with images limited to the repository of `default_image`.
    pub fn for_image(default_image: &str) -> Self {
        Self {
            ingress_classes: Vec::new(),
            ingress_host_suffixes: Vec::new(),
            ingress_annotations: Vec::new(),
            image_prefixes: vec![repository_of(default_image).to_string()],
            max_replicas: 10,
            max_cpu: Quantity("1".into()),
            max_memory: Quantity("512Mi".into()),
            upstream_hosts: Vec::new(),
            upstream: UpstreamRules::default(),
            convex: UpstreamRules::default(),
            gateways: Vec::new(),
            convex_hosts: vec![".convex.cloud".into()],
            convex_sync: true,
            priority_classes: Vec::new(),
            pod_labels: Vec::new(),
            pod_annotations: Vec::new(),
            mirror_pod: MirrorPodDefaults::default(),
        }
    }
}

/// A resource asks for more than the policy allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}; {fix}")]
pub struct NotAllowed {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl NotAllowed {
    fn new(field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// `registry/org/name` of `registry/org/name:tag` or `…@sha256:…` (a registry port stays).
pub fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// Whether `image` is under `prefix`: the repository itself (any tag or digest), or anything
/// below a prefix ending in `/`. `ghcr.io/a/wca` does not admit `ghcr.io/a/wca-evil`.
fn image_allowed(image: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        return image.starts_with(prefix);
    }
    image
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':') || rest.starts_with('@'))
}

/// What an annotation key that acts outside the Ingress object does; `None` for a key with no
/// known effect beyond it. Such keys pass only when the admin lists them exactly: a wildcard
/// such as `nginx.ingress.kubernetes.io/*` never admits them.
pub fn dangerous_annotation(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let (prefix, name) = key.split_once('/').unwrap_or(("", key.as_str()));
    // Every controller's raw configuration: ingress-nginx `*-snippet`, HAProxy
    // `backend-config-snippet`, NGINX Inc. `nginx.org/*-snippets`, and whatever else is called so.
    if name.contains("snippet") {
        return Some(
            "it injects raw configuration into a shared ingress controller (the IngressNightmare class: CVE-2025-1097, CVE-2025-1098, CVE-2025-24514, CVE-2025-1974)",
        );
    }
    match prefix {
        "nginx.ingress.kubernetes.io" | "ingress.kubernetes.io" => nginx_sends_elsewhere(name)
            .then_some(
                "it sends requests to another place, authenticates them elsewhere, or widens which requests the Ingress takes",
            ),
        "traefik.ingress.kubernetes.io" => matches!(
            name,
            "router.priority" | "router.middlewares" | "router.entrypoints" | "router.pathmatcher"
        )
        .then_some("it reorders or rewrites routing on a shared Traefik"),
        "alb.ingress.kubernetes.io" => (name.starts_with("group.")
            || name.starts_with("actions.")
            || name.starts_with("conditions."))
        .then_some("it joins an ALB shared with other Ingresses or changes its rules"),
        "ingress.gcp.kubernetes.io" | "networking.gke.io" => {
            Some("it attaches certificates or load balancer resources of the project")
        }
        "external-dns.alpha.kubernetes.io" => {
            Some("it creates DNS records, for any name in the zones external-dns manages")
        }
        "cert-manager.io" | "acme.cert-manager.io" => {
            Some("it has a certificate issued for the Ingress's hosts by an issuer of the cluster")
        }
        "konghq.com" | "projectcontour.io" | "haproxy.org" | "haproxy.router.openshift.io" => {
            Some("it changes routing or plugins on a shared ingress controller")
        }
        // The legacy class annotation would bypass --allowed-ingress-classes.
        "kubernetes.io" if name == "ingress.class" => {
            Some("it picks the ingress controller, bypassing spec.ingress.className and its policy")
        }
        _ => None,
    }
}

/// The ingress-nginx annotations (and their legacy `ingress.kubernetes.io` twins) that route,
/// mirror, authenticate or rewrite requests somewhere else than this Ingress's backend.
fn nginx_sends_elsewhere(name: &str) -> bool {
    name.starts_with("auth-")
        || name.starts_with("mirror-")
        || name.starts_with("canary")
        || name.starts_with("proxy-redirect-")
        || matches!(
            name,
            "permanent-redirect"
                | "permanent-redirect-code"
                | "temporal-redirect"
                | "temporal-redirect-code"
                | "rewrite-target"
                | "app-root"
                | "server-alias"
                | "use-regex"
                | "default-backend"
                | "custom-http-errors"
                | "upstream-vhost"
                | "service-upstream"
                | "x-forwarded-prefix"
        )
}

/// Whether the admin's list admits `key`: listed exactly, or under a listed `prefix*` and not
/// dangerous. No list admits nothing.
fn annotation_allowed(key: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix) && dangerous_annotation(key).is_none(),
            None => pattern == key,
        })
}

fn host_has_suffix(host: &str, suffix: &str) -> bool {
    let suffix = suffix.trim_start_matches('.');
    host == suffix
        || host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Checks a validated resource against the policy.
pub fn admit(valid: &Valid, policy: &Policy) -> Result<(), NotAllowed> {
    if let Some(ingress) = valid.ingress() {
        check_ingress(ingress, &valid.namespace, policy)?;
    }
    if let Some(route) = valid.route() {
        check_route(route, &valid.namespace, policy)?;
    }
    if let Some(mirror) = &valid.mirror {
        check_mirror(mirror, policy)?;
    }
    check_upstream(valid, policy)
}

/// The parent Gateways must be allowed, and the host names within the allowed domains (the
/// same suffixes as Ingress hosts: a route's hostname takes over a host on a shared Gateway
/// just as an Ingress host does).
fn check_route(route: &RoutePlan, namespace: &str, policy: &Policy) -> Result<(), NotAllowed> {
    for (i, parent) in route.parents.iter().enumerate() {
        let gateway = format!("{}/{}", parent.namespace, parent.name);
        if !policy.gateways.is_empty() && !policy.gateways.contains(&gateway) {
            return Err(NotAllowed::new(
                format!("spec.httpRoute.parentRefs[{i}]"),
                format!(
                    "Gateway {gateway} is not among the Gateways the operator may attach routes to ({})",
                    list(&policy.gateways)
                ),
                "use one of them, or ask the cluster admin to add it to --allowed-gateways (chart value policy.gateway.allowed)",
            ));
        }
    }
    for (i, host) in route.hostnames.iter().enumerate() {
        check_host(
            &format!("spec.httpRoute.hostnames[{i}]"),
            host,
            namespace,
            policy,
        )?;
    }
    Ok(())
}

/// A host an Ingress or an HTTPRoute would answer must be within the domains the operator serves.
/// A suffix may name the resource's namespace as `{namespace}` (`{namespace}.jwks.example.com`):
/// each tenant then has a domain of its own.
fn check_host(field: &str, host: &str, namespace: &str, policy: &Policy) -> Result<(), NotAllowed> {
    let suffixes: Vec<String> = policy
        .ingress_host_suffixes
        .iter()
        .map(|suffix| suffix.replace(NAMESPACE_PLACEHOLDER, namespace))
        .collect();
    if suffixes.is_empty() || suffixes.iter().any(|s| host_has_suffix(host, s)) {
        return Ok(());
    }
    Err(NotAllowed::new(
        field,
        format!(
            "{host:?} is outside the domains the operator serves for this namespace ({})",
            list(&suffixes)
        ),
        "use a host under one of them, or ask the cluster admin to add yours to --allowed-ingress-host-suffixes (chart value policy.ingress.hostSuffixes)",
    ))
}

/// Stands for the resource's namespace in `--allowed-ingress-host-suffixes`.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";

fn list(values: &[String]) -> String {
    values.join(", ")
}

fn check_ingress(
    ingress: &IngressPlan,
    namespace: &str,
    policy: &Policy,
) -> Result<(), NotAllowed> {
    if !policy.ingress_classes.is_empty() {
        match &ingress.class_name {
            Some(class) if policy.ingress_classes.contains(class) => {}
            Some(class) => {
                return Err(NotAllowed::new(
                    "spec.ingress.className",
                    format!(
                        "class {class:?} is not among the classes the operator may use ({})",
                        list(&policy.ingress_classes)
                    ),
                    "use one of them, or ask the cluster admin to add it to --allowed-ingress-classes (chart value policy.ingress.classes)",
                ));
            }
            None => {
                return Err(NotAllowed::new(
                    "spec.ingress.className",
                    format!(
                        "unset (the cluster's default class), and the operator may only use {}",
                        list(&policy.ingress_classes)
                    ),
                    "set spec.ingress.className to one of them",
                ));
            }
        }
    }
    check_host("spec.ingress.host", &ingress.host, namespace, policy)?;
    if let Some(key) = ingress
        .annotations
        .keys()
        .find(|k| !annotation_allowed(k, &policy.ingress_annotations))
    {
        let problem = match (dangerous_annotation(key), policy.ingress_annotations.is_empty()) {
            (_, true) => "the operator sets no Ingress annotations unless the cluster admin lists them: it creates the Ingress under its own identity, on an ingress controller other namespaces share".to_string(),
            (Some(effect), false) => format!(
                "{effect}; keys like it pass only when the cluster admin lists them exactly, never through a wildcard"
            ),
            (None, false) => format!(
                "the key is not among the annotations the operator may set ({})",
                list(&policy.ingress_annotations)
            ),
        };
        return Err(NotAllowed::new(
            format!("spec.ingress.annotations[{key:?}]"),
            problem,
            "remove it, or ask the cluster admin to list the key in --allowed-ingress-annotations (chart value policy.ingress.annotations)",
        ));
    }
    // tlsSecretName needs no rule: an Ingress can only name a Secret of its own namespace, and
    // the operator creates it in the resource's namespace.
    Ok(())
}

fn check_mirror(proxy: &MirrorPlan, policy: &Policy) -> Result<(), NotAllowed> {
    if let Some(image) = &proxy.image
        && !policy
            .image_prefixes
            .iter()
            .any(|p| image_allowed(image, p))
    {
        return Err(NotAllowed::new(
            "spec.proxy.image",
            format!(
                "{image:?} is not under an allowed image prefix ({})",
                list(&policy.image_prefixes)
            ),
            "leave spec.proxy.image unset to run the operator's own image, or ask the cluster admin to add the repository to --allowed-image-prefixes (chart value policy.proxy.imagePrefixes)",
        ));
    }
    if proxy.replicas > policy.max_replicas {
        return Err(NotAllowed::new(
            "spec.proxy.replicas",
            format!(
                "{} is above the operator's maximum of {}",
                proxy.replicas, policy.max_replicas
            ),
            format!(
                "use at most {} (the default is 2), or ask the cluster admin to raise --max-proxy-replicas (chart value policy.proxy.maxReplicas)",
                policy.max_replicas
            ),
        ));
    }
    if let Some(resources) = &proxy.resources {
        check_resources(resources, policy)?;
    }
    check_pod_template(&proxy.pod_template, policy)
}

/// Labels and annotations only from the admin's lists (never the operator's own labels), node
/// selector keys the operator pins unchanged, a priority class only when allowed.
fn check_pod_template(template: &MirrorPodTemplate, policy: &Policy) -> Result<(), NotAllowed> {
    if let Some(metadata) = &template.metadata {
        check_pod_metadata(metadata, policy)?;
    }
    match &template.spec {
        Some(spec) => check_pod_placement(spec, policy),
        None => Ok(()),
    }
}

const POD_TEMPLATE: &str = "spec.proxy.podTemplate";

/// Label and annotation keys from the admin's lists only, never the operator's own labels.
fn check_pod_metadata(metadata: &MirrorPodMetadata, policy: &Policy) -> Result<(), NotAllowed> {
    const FIELD: &str = POD_TEMPLATE;
    if let Some(key) = metadata.labels.keys().find(|k| reserved_label(k)) {
        return Err(NotAllowed::new(
            format!("{FIELD}.metadata.labels[{key:?}]"),
            "the operator sets this label on every mirror pod: its Deployment selects the pods by it",
            "remove it",
        ));
    }
    for (kind, keys, allowed, flag, value) in [
        (
            "labels",
            &metadata.labels,
            &policy.pod_labels,
            "--allowed-proxy-pod-labels",
            "policy.proxy.podLabels",
        ),
        (
            "annotations",
            &metadata.annotations,
            &policy.pod_annotations,
            "--allowed-proxy-pod-annotations",
            "policy.proxy.podAnnotations",
        ),
    ] {
        if let Some(key) = keys.keys().find(|k| !key_listed(k, allowed)) {
            let problem = if allowed.is_empty() {
                format!(
                    "the operator sets no mirror pod {kind} unless the cluster admin lists their keys"
                )
            } else {
                format!(
                    "the key is not among the {kind} the operator may set ({})",
                    list(allowed)
                )
            };
            return Err(NotAllowed::new(
                format!("{FIELD}.metadata.{kind}[{key:?}]"),
                problem,
                format!(
                    "remove it, or ask the cluster admin to list the key in {flag} (chart value {value})"
                ),
            ));
        }
    }
    Ok(())
}

/// Node selector keys the operator pins unchanged; a priority class only when allowed.
fn check_pod_placement(spec: &MirrorPodSpec, policy: &Policy) -> Result<(), NotAllowed> {
    const FIELD: &str = POD_TEMPLATE;
    let pinned = &policy.mirror_pod.node_selector;
    if let Some((key, value)) = spec
        .node_selector
        .iter()
        .find(|(k, v)| pinned.get(*k).is_some_and(|pin| pin != *v))
    {
        return Err(NotAllowed::new(
            format!("{FIELD}.spec.nodeSelector[{key:?}]"),
            format!(
                "{value:?}: the operator places every mirror on nodes with {key}={} (--mirror-node-selector, chart value mirror.nodeSelector)",
                pinned[key]
            ),
            "remove the key",
        ));
    }
    if let Some(class) = &spec.priority_class_name
        && policy.mirror_pod.priority_class_name.as_ref() != Some(class)
        && !policy.priority_classes.contains(class)
    {
        return Err(NotAllowed::new(
            format!("{FIELD}.spec.priorityClassName"),
            format!(
                "{class:?} is not among the priority classes mirror pods may use ({}): a higher class preempts other tenants' pods",
                if policy.priority_classes.is_empty() {
                    "none".to_string()
                } else {
                    list(&policy.priority_classes)
                }
            ),
            "remove it, or ask the cluster admin to add it to --allowed-priority-classes (chart value policy.proxy.priorityClasses)",
        ));
    }
    Ok(())
}

/// Whether `key` is listed exactly or under a listed `prefix*`.
fn key_listed(key: &str, allowed: &[String]) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => pattern == key,
        })
}

fn check_resources(resources: &ResourceRequirements, policy: &Policy) -> Result<(), NotAllowed> {
    let memory_limit = resources.limits.as_ref().and_then(|l| l.get("memory"));
    if memory_limit.is_none() {
        return Err(NotAllowed::new(
            "spec.proxy.resources.limits.memory",
            "unset: a mirror without a memory limit could take a node's memory",
            format!(
                "set it, at most {} (the default is 64Mi)",
                policy.max_memory.0
            ),
        ));
    }
    for (section, list) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let Some(list) = list else { continue };
        for (name, value) in list {
            let (max, flag, chart_value) = match name.as_str() {
                "cpu" => (&policy.max_cpu, "--max-proxy-cpu", "policy.proxy.maxCpu"),
                "memory" => (
                    &policy.max_memory,
                    "--max-proxy-memory",
                    "policy.proxy.maxMemory",
                ),
                // Extended resources (GPUs, hugepages) have no business in a JWKS mirror.
                other => {
                    return Err(NotAllowed::new(
                        format!("spec.proxy.resources.{section}.{other}"),
                        "the mirror may only ask for cpu and memory",
                        "remove it",
                    ));
                }
            };
            let field = format!("spec.proxy.resources.{section}.{name}");
            let (Some(asked), Some(cap)) = (quantity_value(&value.0), quantity_value(&max.0))
            else {
                return Err(NotAllowed::new(
                    field,
                    format!("{:?} is not a quantity", value.0),
                    "write it like 100m, 1, 64Mi or 1Gi",
                ));
            };
            if asked > cap {
                return Err(NotAllowed::new(
                    field,
                    format!("{} is above the operator's maximum of {}", value.0, max.0),
                    format!(
                        "use at most {}, or ask the cluster admin to raise {flag} (chart value {chart_value})",
                        max.0
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_upstream(valid: &Valid, policy: &Policy) -> Result<(), NotAllowed> {
    // The mirror (Proxy) or the operator (Inline) fetches these; in mode Direct, Convex itself
    // fetches from upstreamBase, and the same rule keeps the config pointing at WorkOS.
    for url in valid.upstreams() {
        let refused = |problem: String, fix: &str| {
            NotAllowed::new("spec.jwks.upstreamBase", problem, fix.to_string())
        };
        let parsed = policy
            .upstream
            .check_url(&url)
            .map_err(|e| refused(e.to_string(), "use https://api.workos.com (the default)"))?;
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let own = host == WORKOS_API_HOST || valid.own_hosts.contains(&host);
        let is_ip = host.parse::<IpAddr>().is_ok();
        let listed = host_listed(&host, &policy.upstream_hosts);
        if !(listed || (!is_ip && own)) {
            let what = if is_ip { "IP address" } else { "host" };
            return Err(refused(
                format!(
                    "{what} {host:?} is not an upstream the operator fetches keys from: only {WORKOS_API_HOST}, the resource's authDomain and authkitDomain{}",
                    if policy.upstream_hosts.is_empty() {
                        String::new()
                    } else {
                        format!(", and {}", list(&policy.upstream_hosts))
                    }
                ),
                "use https://api.workos.com (the default), or ask the cluster admin to add the host to --allowed-upstream-hosts (chart value policy.upstream.allowedHosts)",
            ));
        }
    }
    Ok(())
}

/// Whether `host` (lower case, IPv6 without brackets) is in a list of exact names, IP literals
/// and `.suffix` entries (a suffix never admits an IP literal).
pub fn host_listed(host: &str, list: &[String]) -> bool {
    let is_ip = host.parse::<IpAddr>().is_ok();
    list.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        match allowed.strip_prefix('.') {
            Some(suffix) if !is_ip => host_has_suffix(host, suffix),
            _ => allowed == host,
        }
    })
}

/// Whether the admin lets the operator send a resource's admin key to `url` (`spec.convex.url`,
/// validated): Convex sync is on and the host is listed. Checked before the Secret is read.
pub fn check_convex(url: &url::Url, policy: &Policy) -> Result<(), NotAllowed> {
    if !policy.convex_sync {
        return Err(NotAllowed::new(
            "spec.convex",
            "the cluster admin turned Convex sync off: the operator reads no admin key and calls no deployment",
            "remove spec.convex and push the generated config with npx convex deploy, or ask the cluster admin to turn it on (--disable-convex-sync unset, chart value policy.convex.enabled)",
        ));
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host_listed(&host, &policy.convex_hosts) {
        return Ok(());
    }
    Err(NotAllowed::new(
        "spec.convex.url",
        format!(
            "host {host:?} is not among the Convex deployments the operator sends admin keys to ({})",
            list(&policy.convex_hosts)
        ),
        "use your deployment's URL, or ask the cluster admin to add the host to --allowed-convex-hosts (chart value policy.convex.allowedHosts)",
    ))
}

/// A Kubernetes quantity as a number (cores or bytes); `None` when it is not one.
pub fn quantity_value(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    let value = number * scale;
    (value.is_finite() && value >= 0.0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::valid;

    const IMAGE: &str = "ghcr.io/workos-convex-auth/workos-convex-auth:0.1.0";

    fn refused(spec_yaml: &str, policy: &Policy) -> NotAllowed {
        admit(&valid(spec_yaml), policy).unwrap_err()
    }

    fn default() -> Policy {
        Policy::for_image(IMAGE)
    }

    /// Issue 24: a pod template's priority class only when the admin lists it (or it is the
    /// operator-wide default); labels and annotations only from the admin's lists, never the
    /// operator's own labels; node selector keys the operator pins unchanged.
    #[test]
    fn the_pod_template_follows_the_admins_lists() {
        let template = |t: &str| format!("{{clientId: client_1, proxy: {{podTemplate: {t}}}}}");
        let critical = template("{spec: {priorityClassName: system-cluster-critical}}");
        let error = refused(&critical, &default());
        assert_eq!(error.field, "spec.proxy.podTemplate.spec.priorityClassName");
        assert!(error.problem.contains("(none)"), "{error}");
        let admin = Policy {
            priority_classes: vec!["jwks".into()],
            pod_labels: vec!["team".into(), "example.com/*".into()],
            pod_annotations: vec!["prometheus.io/*".into()],
            mirror_pod: MirrorPodDefaults {
                node_selector: [("pool".to_string(), "edge".to_string())].into(),
                priority_class_name: Some("mirrors".into()),
                ..MirrorPodDefaults::default()
            },
            ..default()
        };
        assert!(refused(&critical, &admin).problem.contains("(jwks)"));
        for allowed in [
            "{spec: {priorityClassName: jwks}}",
            "{spec: {priorityClassName: mirrors}}",
            "{spec: {nodeSelector: {pool: edge, zone: a}}}",
            "{metadata: {labels: {team: a, example.com/tier: b}, annotations: {prometheus.io/scrape: 'true'}}}",
        ] {
            admit(&valid(&template(allowed)), &admin).unwrap_or_else(|e| panic!("{allowed}: {e}"));
        }
        for (denied, field) in [
            (
                "{metadata: {labels: {other: a}}}",
                "spec.proxy.podTemplate.metadata.labels[\"other\"]",
            ),
            (
                "{metadata: {annotations: {vault.hashicorp.com/agent-inject: 'true'}}}",
                "spec.proxy.podTemplate.metadata.annotations[\"vault.hashicorp.com/agent-inject\"]",
            ),
            (
                "{spec: {nodeSelector: {pool: system}}}",
                "spec.proxy.podTemplate.spec.nodeSelector[\"pool\"]",
            ),
        ] {
            assert_eq!(refused(&template(denied), &admin).field, field, "{denied}");
        }
        // The operator's own labels, even when the admin's list would admit the key.
        let everything = Policy {
            pod_labels: vec!["*".into()],
            ..default()
        };
        let error = refused(
            &template("{metadata: {labels: {app.kubernetes.io/instance: other}}}"),
            &everything,
        );
        assert!(error.problem.contains("selects the pods by it"), "{error}");
    }

    /// Issue 24: every refusal that the cluster admin fixes names the flag **and** the chart
    /// value, each existing: the flag among `run`'s (clap's own list), the value as a key of the
    /// chart's values.yaml. Walks a refusal of each kind, and the upstream rules' own messages.
    #[test]
    fn refusals_name_flags_and_chart_values_that_exist() {
        let strict = Policy {
            ingress_classes: vec!["traefik".into()],
            ingress_host_suffixes: vec![".jwks.example.com".into()],
            gateways: vec!["infra/public".into()],
            max_replicas: 3,
            mirror_pod: MirrorPodDefaults {
                node_selector: [("pool".to_string(), "edge".to_string())].into(),
                ..MirrorPodDefaults::default()
            },
            ..default()
        };
        let mut messages: Vec<String> = [
            "{clientId: client_1, ingress: {enabled: true, host: a.jwks.example.com, className: nginx}}",
            "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com, className: traefik}}",
            "{clientId: client_1, ingress: {enabled: true, host: a.jwks.example.com, className: traefik, annotations: {x.example/y: z}}}",
            "{clientId: client_1, proxy: {image: 'evil.example/wca:1'}}",
            "{clientId: client_1, proxy: {replicas: 9}}",
            "{clientId: client_1, proxy: {resources: {limits: {memory: 4Gi}}}}",
            "{clientId: client_1, proxy: {resources: {limits: {memory: 64Mi, cpu: '8'}}}}",
            "{clientId: client_1, jwks: {upstreamBase: 'https://evil.example.com'}}",
            "{clientId: client_1, jwks: {upstreamBase: 'http://api.workos.com'}}",
            "{clientId: client_1, jwks: {upstreamBase: 'https://10.0.0.1'}}",
            "{clientId: client_1, httpRoute: {parentRefs: [{name: other, namespace: infra}], hostnames: [a.jwks.example.com]}}",
            "{clientId: client_1, proxy: {podTemplate: {metadata: {labels: {team: a}}}}}",
            "{clientId: client_1, proxy: {podTemplate: {metadata: {annotations: {example.com/x: a}}}}}",
            "{clientId: client_1, proxy: {podTemplate: {spec: {priorityClassName: system-cluster-critical}}}}",
            "{clientId: client_1, proxy: {podTemplate: {spec: {nodeSelector: {pool: system}}}}}",
        ]
        .iter()
        .map(|spec| refused(spec, &strict).to_string())
        .collect();
        let convex = url::Url::parse("https://evil.example.com").unwrap();
        messages.push(check_convex(&convex, &strict).unwrap_err().to_string());
        let off = Policy {
            convex_sync: false,
            ..default()
        };
        messages.push(check_convex(&convex, &off).unwrap_err().to_string());

        crate::reconcile::fixtures::assert_named_flags_and_values_exist(&messages);
        assert!(messages.len() >= 13);
    }

    #[test]
    fn a_plain_resource_is_admitted_by_default() {
        for spec in [
            "clientId: client_1",
            "{clientId: client_1, jwks: {mode: Inline}}",
            "{clientId: client_1, jwks: {mode: Direct}, authkitDomain: acme.authkit.app}",
            "{clientId: client_1, proxy: {image: 'ghcr.io/workos-convex-auth/workos-convex-auth:0.2.0'}}",
            "{clientId: client_1, proxy: {image: 'ghcr.io/workos-convex-auth/workos-convex-auth@sha256:abc'}}",
            "{clientId: client_1, authDomain: auth.acme.com, jwks: {upstreamBase: 'https://auth.acme.com'}}",
            "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com}}",
        ] {
            assert_eq!(admit(&valid(spec), &default()), Ok(()), "{spec}");
        }
    }

    /// One domain per tenant: `{namespace}` in a suffix is the resource's namespace (the
    /// fixtures' resources live in `apps`).
    #[test]
    fn a_host_suffix_can_name_the_namespace() {
        let policy = Policy {
            ingress_host_suffixes: vec!["{namespace}.jwks.example.com".into()],
            ..default()
        };
        let ingress = |host: &str| {
            format!("{{clientId: client_1, ingress: {{enabled: true, host: {host}}}}}")
        };
        assert_eq!(
            admit(&valid(&ingress("apps.jwks.example.com")), &policy),
            Ok(())
        );
        assert_eq!(
            admit(&valid(&ingress("a.apps.jwks.example.com")), &policy),
            Ok(())
        );
        let err = refused(&ingress("other.jwks.example.com"), &policy);
        assert_eq!(err.field, "spec.ingress.host");
        assert!(err.problem.contains("(apps.jwks.example.com)"), "{err}");
        let route = "{clientId: client_1, httpRoute: {parentRefs: [{name: p}], hostnames: [x.other.jwks.example.com]}}";
        assert_eq!(refused(route, &policy).field, "spec.httpRoute.hostnames[0]");
    }

    #[test]
    fn admin_keys_go_only_to_listed_convex_hosts_and_only_while_sync_is_on() {
        let url = |u: &str| url::Url::parse(u).expect("a URL");
        let policy = default();
        assert_eq!(
            check_convex(&url("https://happy-otter-123.convex.cloud"), &policy),
            Ok(())
        );
        for outside in [
            "https://evil.example.com",
            "https://convex.cloud.evil.com",
            "https://evilconvex.cloud",
            "http://10.0.0.1:3210",
        ] {
            let err = check_convex(&url(outside), &policy).unwrap_err();
            assert_eq!(err.field, "spec.convex.url");
            assert!(
                err.fix
                    .contains("--allowed-convex-hosts (chart value policy.convex.allowedHosts)"),
                "{err}"
            );
        }
        let self_hosted = Policy {
            convex_hosts: vec!["10.0.0.1".into(), ".convex.internal".into()],
            ..default()
        };
        assert_eq!(
            check_convex(&url("http://10.0.0.1:3210"), &self_hosted),
            Ok(())
        );
        assert_eq!(
            check_convex(&url("http://a.convex.internal"), &self_hosted),
            Ok(())
        );
        assert!(check_convex(&url("https://a.convex.cloud"), &self_hosted).is_err());
        let off = Policy {
            convex_sync: false,
            ..default()
        };
        let err = check_convex(&url("https://happy-otter-123.convex.cloud"), &off).unwrap_err();
        assert_eq!(err.field, "spec.convex");
        assert!(
            err.fix.contains("chart value policy.convex.enabled"),
            "{err}"
        );
    }

    #[test]
    fn route_parents_and_hostnames_follow_the_gateway_and_host_rules() {
        let spec = "{clientId: client_1, httpRoute: {parentRefs: [{name: public, namespace: infra}, {name: internal}], hostnames: [jwks.acme.com]}}";
        assert_eq!(
            admit(&valid(spec), &default()),
            Ok(()),
            "any Gateway by default"
        );
        let only_public = Policy {
            gateways: vec!["infra/public".into()],
            ..default()
        };
        let err = refused(spec, &only_public);
        assert_eq!(err.field, "spec.httpRoute.parentRefs[1]");
        assert!(
            err.problem.contains("Gateway apps/internal is not among"),
            "the namespace defaults to the resource's: {err}"
        );
        let both = Policy {
            gateways: vec!["infra/public".into(), "apps/internal".into()],
            ingress_host_suffixes: vec!["example.com".into()],
            ..default()
        };
        let err = refused(spec, &both);
        assert_eq!(err.field, "spec.httpRoute.hostnames[0]");
        assert!(err.fix.contains("--allowed-ingress-host-suffixes"), "{err}");
        let acme = Policy {
            ingress_host_suffixes: vec!["acme.com".into()],
            ..both
        };
        assert_eq!(admit(&valid(spec), &acme), Ok(()));
    }

    fn with_annotation(key: &str) -> String {
        format!(
            "{{clientId: client_1, ingress: {{enabled: true, host: jwks.acme.com, annotations: {{{key:?}: x}}}}}}"
        )
    }

    #[test]
    fn no_annotation_passes_without_an_allow_list() {
        for key in ["example.com/harmless", "cert-manager.io/cluster-issuer"] {
            let error = refused(&with_annotation(key), &default());
            assert_eq!(error.field, format!("spec.ingress.annotations[{key:?}]"));
            assert!(
                error.problem.starts_with(
                    "the operator sets no Ingress annotations unless the cluster admin lists them"
                ),
                "{error}"
            );
            assert!(
                error.fix.contains(
                    "--allowed-ingress-annotations (chart value policy.ingress.annotations)"
                ),
                "{error}"
            );
        }
    }

    /// Every class of key that acts outside the Ingress: passes only when listed exactly.
    #[test]
    fn keys_that_act_outside_the_ingress_pass_only_when_listed_exactly() {
        for (key, effect) in [
            (
                "nginx.ingress.kubernetes.io/server-snippet",
                "CVE-2025-1097",
            ),
            (
                "nginx.ingress.kubernetes.io/configuration-snippet",
                "raw configuration",
            ),
            ("ingress.kubernetes.io/Server-Snippet", "raw configuration"),
            ("haproxy.org/backend-config-snippet", "raw configuration"),
            ("nginx.org/server-snippets", "raw configuration"),
            ("nginx.ingress.kubernetes.io/auth-url", "authenticates"),
            ("nginx.ingress.kubernetes.io/auth-signin", "authenticates"),
            ("nginx.ingress.kubernetes.io/mirror-target", "another place"),
            (
                "nginx.ingress.kubernetes.io/permanent-redirect",
                "another place",
            ),
            ("nginx.ingress.kubernetes.io/server-alias", "another place"),
            (
                "nginx.ingress.kubernetes.io/rewrite-target",
                "another place",
            ),
            (
                "nginx.ingress.kubernetes.io/canary-by-header",
                "another place",
            ),
            ("traefik.ingress.kubernetes.io/router.priority", "Traefik"),
            (
                "traefik.ingress.kubernetes.io/router.middlewares",
                "Traefik",
            ),
            ("alb.ingress.kubernetes.io/group.name", "ALB"),
            ("alb.ingress.kubernetes.io/actions.forward", "ALB"),
            ("ingress.gcp.kubernetes.io/pre-shared-cert", "certificates"),
            ("external-dns.alpha.kubernetes.io/hostname", "DNS records"),
            ("external-dns.alpha.kubernetes.io/target", "DNS records"),
            ("cert-manager.io/cluster-issuer", "certificate"),
            ("cert-manager.io/issuer", "certificate"),
            ("konghq.com/plugins", "plugins"),
            ("kubernetes.io/ingress.class", "className"),
        ] {
            let spec = with_annotation(key);
            let prefix = key.split_once('/').expect("a prefixed key").0;
            let wildcard = Policy {
                ingress_annotations: vec![format!("{prefix}/*"), "ingress.kubernetes.io/*".into()],
                ..default()
            };
            let error = refused(&spec, &wildcard);
            assert_eq!(error.field, format!("spec.ingress.annotations[{key:?}]"));
            assert!(error.problem.contains(effect), "{key}: {error}");
            assert!(
                error
                    .problem
                    .contains("only when the cluster admin lists them exactly"),
                "{error}"
            );
            let exact = Policy {
                ingress_annotations: vec![key.to_string()],
                ..default()
            };
            assert_eq!(admit(&valid(&spec), &exact), Ok(()), "{key}");
        }
        // A harmless key under a wildcard passes.
        let wildcard = Policy {
            ingress_annotations: vec!["nginx.ingress.kubernetes.io/*".into()],
            ..default()
        };
        assert_eq!(
            admit(
                &valid(&with_annotation(
                    "nginx.ingress.kubernetes.io/proxy-body-size"
                )),
                &wildcard
            ),
            Ok(())
        );
    }

    #[test]
    fn ingress_classes_hosts_and_annotation_keys_follow_the_allow_lists() {
        let policy = Policy {
            ingress_classes: vec!["traefik".into()],
            ingress_host_suffixes: vec!["acme.com".into()],
            ingress_annotations: vec![
                "cert-manager.io/cluster-issuer".into(),
                "example.com/*".into(),
            ],
            ..default()
        };
        let ok = "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com, className: traefik, annotations: {cert-manager.io/cluster-issuer: le, example.com/team: a}}}";
        assert_eq!(admit(&valid(ok), &policy), Ok(()));
        for (spec, field) in [
            (
                "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com, className: nginx}}",
                "spec.ingress.className",
            ),
            (
                "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com}}",
                "spec.ingress.className",
            ),
            (
                "{clientId: client_1, ingress: {enabled: true, host: jwks.evilacme.com, className: traefik}}",
                "spec.ingress.host",
            ),
            (
                "{clientId: client_1, ingress: {enabled: true, host: acme.com.evil.io, className: traefik}}",
                "spec.ingress.host",
            ),
            (
                "{clientId: client_1, ingress: {enabled: true, host: jwks.acme.com, className: traefik, annotations: {traefik.ingress.kubernetes.io/router.middlewares: x}}}",
                "spec.ingress.annotations[\"traefik.ingress.kubernetes.io/router.middlewares\"]",
            ),
        ] {
            assert_eq!(refused(spec, &policy).field, field, "{spec}");
        }
    }

    #[test]
    fn images_replicas_and_resources_are_capped() {
        for (spec, field) in [
            (
                "{clientId: client_1, proxy: {image: 'docker.io/evil/miner:latest'}}",
                "spec.proxy.image",
            ),
            (
                "{clientId: client_1, proxy: {image: 'ghcr.io/workos-convex-auth/workos-convex-auth-evil:1'}}",
                "spec.proxy.image",
            ),
            (
                "{clientId: client_1, proxy: {replicas: 11}}",
                "spec.proxy.replicas",
            ),
            (
                "{clientId: client_1, proxy: {resources: {requests: {cpu: 10m}}}}",
                "spec.proxy.resources.limits.memory",
            ),
            (
                "{clientId: client_1, proxy: {resources: {limits: {memory: 1Gi}}}}",
                "spec.proxy.resources.limits.memory",
            ),
            (
                "{clientId: client_1, proxy: {resources: {limits: {memory: 64Mi, cpu: 1500m}}}}",
                "spec.proxy.resources.limits.cpu",
            ),
            (
                "{clientId: client_1, proxy: {resources: {limits: {memory: 64Mi, nvidia.com/gpu: 1}}}}",
                "spec.proxy.resources.limits.nvidia.com/gpu",
            ),
        ] {
            assert_eq!(refused(spec, &default()).field, field, "{spec}");
        }
        let ok = "{clientId: client_1, proxy: {replicas: 10, resources: {requests: {cpu: 100m, memory: 32Mi}, limits: {memory: 512Mi, cpu: '1'}}}}";
        assert_eq!(admit(&valid(ok), &default()), Ok(()));
        // Inline and Direct run no mirror: its fields are not checked.
        let inline =
            "{clientId: client_1, jwks: {mode: Inline}, proxy: {image: 'docker.io/evil/miner'}}";
        assert_eq!(admit(&valid(inline), &default()), Ok(()));
    }

    #[test]
    fn upstreams_are_https_workos_or_the_resources_own_domains() {
        for spec in [
            "{clientId: client_1, jwks: {mode: Inline, upstreamBase: 'http://api.workos.com'}}",
            "{clientId: client_1, jwks: {mode: Inline, upstreamBase: 'https://metadata.google.internal'}}",
            "{clientId: client_1, jwks: {mode: Inline, upstreamBase: 'https://169.254.169.254'}}",
            "{clientId: client_1, jwks: {mode: Inline, upstreamBase: 'https://8.8.8.8'}}",
            "{clientId: client_1, jwks: {upstreamBase: 'https://api.workos.com.evil.io'}}",
            "{clientId: client_1, jwks: {mode: Direct, upstreamBase: 'https://evil.io'}}",
        ] {
            assert_eq!(
                refused(spec, &default()).field,
                "spec.jwks.upstreamBase",
                "{spec}"
            );
        }
        let policy = Policy {
            upstream_hosts: vec![
                ".svc.cluster.local".into(),
                "fake-workos".into(),
                "8.8.8.8".into(),
            ],
            upstream: UpstreamRules {
                allow_http: true,
                ..UpstreamRules::default()
            },
            ..default()
        };
        for spec in [
            "{clientId: client_1, jwks: {mode: Inline, upstreamBase: 'http://fake-workos'}}",
            "{clientId: client_1, jwks: {upstreamBase: 'http://fake.ns.svc.cluster.local:8080'}}",
            "{clientId: client_1, jwks: {upstreamBase: 'https://8.8.8.8'}}",
        ] {
            assert_eq!(admit(&valid(spec), &policy), Ok(()), "{spec}");
        }
        // Listing a suffix admits names, never an address; blocked addresses stay blocked.
        let error = refused(
            "{clientId: client_1, jwks: {upstreamBase: 'http://127.0.0.1'}}",
            &Policy {
                upstream_hosts: vec!["127.0.0.1".into()],
                ..policy
            },
        );
        assert!(error.problem.contains("127.0.0.1"), "{error}");
    }

    #[test]
    fn repositories_and_quantities() {
        assert_eq!(
            repository_of(IMAGE),
            "ghcr.io/workos-convex-auth/workos-convex-auth"
        );
        assert_eq!(repository_of("localhost:5000/wca"), "localhost:5000/wca");
        assert_eq!(
            repository_of("localhost:5000/wca:1@sha256:x"),
            "localhost:5000/wca"
        );
        assert_eq!(quantity_value("100m"), Some(0.1));
        assert_eq!(quantity_value("64Mi"), Some(64.0 * 1024.0 * 1024.0));
        assert_eq!(quantity_value("1e3"), Some(1000.0));
        assert_eq!(quantity_value("1.5G"), Some(1.5e9));
        assert_eq!(quantity_value("-1"), None);
        assert_eq!(quantity_value("12parsecs"), None);
    }
}
