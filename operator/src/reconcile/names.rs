//! Names and labels of the children: deterministic, so every step can find them again.

use std::collections::BTreeMap;

/// Field manager of every server-side apply this operator makes.
pub const FIELD_MANAGER: &str = "workos-convex-auth";
/// `app.kubernetes.io/name` of everything this operator creates.
pub const APP_NAME: &str = "workos-convex-auth";
/// Container port the mirror listens on.
pub const MIRROR_PORT: i32 = 8080;
/// Service port Convex (or the Ingress) talks to.
pub const SERVICE_PORT: i32 = 80;

pub const COMPONENT_CONFIG: &str = "convex-auth-config";
pub const COMPONENT_MIRROR: &str = "jwks-mirror";

/// The cluster's DNS domain unless `--cluster-domain` says otherwise (kubelet's `clusterDomain`).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// A DNS name without a leading or trailing dot (`cluster.local`, `k8s.example.internal`).
pub fn parse_cluster_domain(domain: &str) -> Result<String, String> {
    crate::convex::generate::is_dns_name(domain)
        .then(|| domain.to_string())
        .ok_or_else(|| format!("{domain:?} is not a DNS domain like cluster.local"))
}

/// The in-cluster base URL of the mirror's Service: what a Convex backend in the cluster
/// fetches from when nothing exposes the mirror.
pub fn mirror_service_url(resource: &str, namespace: &str, cluster_domain: &str) -> String {
    format!(
        "http://{}.{namespace}.svc.{cluster_domain}",
        mirror_name(resource)
    )
}

/// A resource's identity in the operator's per-resource memory (inline keys, the Convex sync's
/// last confirmation, the failure backoff): one type, so every map and the sweep agree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object's metadata (a decoded resource, or one that cannot be decoded).
    pub fn of_meta(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Default ConfigMap name: `<resource>-convex-auth`.
pub fn config_map_name(resource: &str, configured: Option<&str>) -> String {
    configured.map_or_else(|| format!("{resource}-convex-auth"), str::to_string)
}

/// Name of the mirror's Deployment, Service, PodDisruptionBudget and Ingress.
pub fn mirror_name(resource: &str) -> String {
    format!("{resource}-jwks")
}

/// The standard `app.kubernetes.io/*` labels.
pub fn labels(resource: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            resource.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            component.to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            APP_NAME.to_string(),
        ),
    ])
}

/// The labels that select the mirror's pods (a subset that never changes for a resource).
pub fn mirror_selector(resource: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), APP_NAME.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            resource.to_string(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            COMPONENT_MIRROR.to_string(),
        ),
    ])
}
