use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::WorkOSConvexAuthStatus;

/// RFC 1123 host name: what `authDomain`, `authkitDomain` and `ingress.host` accept.
pub const HOSTNAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// WorkOS client ids are `client_` followed by a ULID.
pub const CLIENT_ID_PATTERN: &str = r"^client_[0-9A-Za-z]+$";
/// Go-style durations as the controller and the mirror accept them: `30s`, `5m`, `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// Desired state of a WorkOSConvexAuth: which WorkOS client's tokens Convex must accept,
/// and how Convex reaches the signing keys.
// The derive takes one `printcolumn(...)` per column; clippy reads the repeats as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "workos-convex.io",
    version = "v1alpha1",
    kind = "WorkOSConvexAuth",
    plural = "workosconvexauths",
    shortname = "wca",
    namespaced,
    status = "WorkOSConvexAuthStatus",
    derive = "PartialEq",
    doc = "Wires WorkOS AuthKit access tokens into Convex: a JWKS mirror and a generated convex/auth.config.ts in a ConfigMap.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "JWKS URL", type_ = "string", json_path = ".status.jwksUrl"),
    printcolumn(
        name = "ConfigMap",
        type_ = "string",
        json_path = ".status.configMapName"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.clientId) != has(self.clientIdFrom)")
        .message("set exactly one of spec.clientId or spec.clientIdFrom"),
    validation = Rule::new("!has(self.ingress) || !self.ingress.enabled || has(self.ingress.host)")
        .message("spec.ingress.enabled needs spec.ingress.host: set the host Convex reaches the mirror at, or disable the ingress"),
    validation = Rule::new("!has(self.ingress) || !self.ingress.enabled || !has(self.jwks) || self.jwks.mode == 'Proxy'")
        .message("spec.ingress is only for spec.jwks.mode Proxy: Direct and Inline modes run no mirror to expose; disable the ingress or use mode Proxy"),
    validation = Rule::new("!has(self.httpRoute) || !has(self.ingress) || !self.ingress.enabled")
        .message("set spec.ingress or spec.httpRoute, not both: the mirror is exposed one way"),
    validation = Rule::new("!has(self.httpRoute) || !has(self.jwks) || self.jwks.mode == 'Proxy'")
        .message("spec.httpRoute is only for spec.jwks.mode Proxy: Direct and Inline modes run no mirror to expose; remove it or use mode Proxy"),
)]
#[serde(rename_all = "camelCase")]
pub struct WorkOSConvexAuthSpec {
    /// WorkOS client id (`client_…`, from the WorkOS dashboard's API keys page).
    /// Set this or `clientIdFrom`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^client_[0-9A-Za-z]+$"))]
    pub client_id: Option<String>,

    /// Read the WorkOS client id from a key of a Secret or ConfigMap in this namespace.
    /// Set this or `clientId`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_from: Option<ClientIdSource>,

    /// Host name of a WorkOS custom authentication domain (e.g. `auth.example.com`), without
    /// scheme or path. Adds the issuer pair WorkOS uses for tokens minted on that domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub auth_domain: Option<String>,

    /// AuthKit domain host name (e.g. `acme-staging.authkit.app`), without scheme or path.
    /// Adds a provider for AuthKit OAuth tokens (issuer `https://<domain>`, aud = client id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub authkit_domain: Option<String>,

    /// Signature algorithm of the tokens. WorkOS signs with RS256.
    #[serde(default)]
    pub algorithm: Algorithm,

    /// Further issuers to accept, for token variants the fields above do not cover.
    /// They use the same algorithm and JWKS as the WorkOS providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub extra_issuers: Vec<ExtraIssuer>,

    /// Where Convex fetches the signing keys from.
    #[serde(default)]
    pub jwks: JwksSpec,

    /// The JWKS mirror's Deployment (mode Proxy only).
    #[serde(default)]
    pub proxy: ProxySpec,

    /// An Ingress exposing the mirror to a Convex backend outside the cluster (mode Proxy only).
    #[serde(default)]
    pub ingress: IngressSpec,
    /// A Gateway API HTTPRoute exposing the mirror, instead of an Ingress (mode Proxy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<HttpRouteSpec>,

    /// The ConfigMap that receives the generated Convex auth config.
    #[serde(default)]
    pub config_map: ConfigMapSpec,
    /// A Convex deployment whose environment variables the operator keeps current. When set,
    /// the generated `auth.config.ts` reads the client id and the JWKS URL from those variables:
    /// push it once, and changed values (a rotated key in mode Inline included) reach Convex
    /// without a redeploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convex: Option<ConvexSpec>,
}

/// A Convex deployment and the admin key that may set its environment variables.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConvexSpec {
    /// The deployment's URL: `https://<name>.convex.cloud`, or a self-hosted backend's
    /// (e.g. `http://convex-backend.convex.svc:3210`). Scheme and host, no path.
    #[schemars(regex(pattern = r"^https?://[^\s/?#]+/?$"), length(max = 2048))]
    pub url: String,
    /// A key of a Secret in the resource's namespace holding the deployment's admin key (a
    /// self-hosted backend's admin key, or a Convex Cloud deploy key). Read by name, never
    /// shown.
    pub admin_key_secret_ref: KeyRef,
}

/// Where to read the client id from: exactly one of `secretKeyRef` or `configMapKeyRef`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.secretKeyRef) != has(self.configMapKeyRef)")
    .message("spec.clientIdFrom needs exactly one of secretKeyRef or configMapKeyRef"))]
#[serde(rename_all = "camelCase")]
pub struct ClientIdSource {
    /// A key of a Secret in the resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeyRef>,
    /// A key of a ConfigMap in the resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyRef>,
}

/// A key of an object in the resource's own namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct KeyRef {
    /// Name of the Secret or ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key whose value is used (the client id, or the admin key).
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// JWT signature algorithm; Convex accepts exactly these two.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    // RSA with SHA-256: what WorkOS uses.
    #[default]
    RS256,
    // ECDSA P-256 with SHA-256.
    ES256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
        }
    }
}

/// One more issuer to accept.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.applicationID) || !self.issuer.matches('^https?://api[.]workos[.]com/*$')")
    .message("spec.extraIssuers[].applicationID is required for issuer https://api.workos.com: without it any WorkOS customer's token matches and Convex rejects the config as insecure; set it to your client id"))]
pub struct ExtraIssuer {
    /// Issuer URL exactly as tokens carry it in `iss`, with scheme (`https://…`).
    /// Convex compares it case-sensitively, ignoring trailing slashes.
    #[schemars(regex(pattern = r"^https?://[^\s]+$"), length(max = 2048))]
    pub issuer: String,
    /// Required `aud` of the tokens. Leave unset for tokens without `aud`; must be set for
    /// `https://api.workos.com` (Convex refuses that issuer without it as insecure).
    #[serde(
        rename = "applicationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(min = 1, max = 256))]
    pub application_id: Option<String>,
}

/// How the generated config points Convex at the keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JwksSpec {
    /// `Proxy` (default): run a JWKS mirror in the cluster and point Convex at it.
    /// `Direct`: point Convex straight at WorkOS. `Inline`: embed the keys in the config as a
    /// `data:` URL (no fetch by Convex; key rotation needs a new `npx convex deploy`).
    #[serde(default)]
    pub mode: JwksMode,
    /// Base URL of the WorkOS API the keys come from. Override only to test against a fake.
    #[serde(default = "default_upstream_base")]
    #[schemars(regex(pattern = r"^https?://[^\s/]+(/[^\s]*)?$"), length(max = 2048))]
    pub upstream_base: String,
    /// Base URL at which Convex reaches the mirror (mode Proxy), e.g. `https://jwks.example.com`.
    /// Unset: `https://<ingress.host>` when the Ingress is enabled, else the in-cluster Service URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^\s]+$"), length(max = 2048))]
    pub public_url: Option<String>,
}

impl Default for JwksSpec {
    fn default() -> Self {
        Self {
            mode: JwksMode::default(),
            upstream_base: default_upstream_base(),
            public_url: None,
        }
    }
}

fn default_upstream_base() -> String {
    "https://api.workos.com".to_string()
}

/// Where Convex fetches the signing keys from.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JwksMode {
    // A JWKS mirror in the cluster.
    #[default]
    Proxy,
    // WorkOS itself.
    Direct,
    // Keys embedded in the config as a data: URL.
    Inline,
}

/// The JWKS mirror's Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("duration(self.refreshInterval) >= duration('10s')")
        .message("spec.proxy.refreshInterval must be at least 10s: WorkOS rate-limits its API"),
    validation = Rule::new("duration(self.maxStale) >= duration(self.refreshInterval)")
        .message("spec.proxy.maxStale must be at least spec.proxy.refreshInterval (default 24h)"),
)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Number of mirror pods. A PodDisruptionBudget is added when above 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Container image of the mirror. Unset: the operator's own image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Compute resources of the mirror container. Unset: small requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How often the mirror (or, in mode Inline, the operator) refreshes the keys, e.g. `5m`.
    #[serde(default = "default_refresh_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub refresh_interval: String,
    /// How long the mirror keeps serving its last good keys while WorkOS is unreachable,
    /// e.g. `24h`. Past it the mirror answers 503 rather than keys that may be revoked.
    #[serde(default = "default_max_stale")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"), length(max = 32))]
    pub max_stale: String,
    /// Where the mirror pods run and what they carry: labels, annotations and scheduling, in
    /// the shape of cert-manager's HTTP01 solver `podTemplate`. Added to the operator-wide
    /// defaults (chart values `mirror.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template: Option<MirrorPodTemplate>,
}

/// `spec.proxy.podTemplate`. Only metadata and placement: nothing in it can weaken the pod (no
/// volumes, host namespaces, service account or security context fields exist here).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MirrorPodTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MirrorPodMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<MirrorPodSpec>,
}

/// Labels and annotations added to the mirror pods. Keys must be on the cluster admin's lists
/// (`--allowed-proxy-pod-labels`, `--allowed-proxy-pod-annotations`): an annotation can ask a
/// mesh or secrets injector to act on the pod, and a label can make it match another
/// namespace's NetworkPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MirrorPodMetadata {
    /// Labels added to the mirror pods (not the operator's own `app.kubernetes.io/*` ones).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.size() <= 32").message("at most 32 labels"))]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the mirror pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.size() <= 32").message("at most 32 annotations"))]
    pub annotations: BTreeMap<String, String>,
}

/// Scheduling and pulling of the mirror pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MirrorPodSpec {
    /// Added to the operator-wide `mirror.nodeSelector`; a key it sets cannot be changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.size() <= 32").message("at most 32 node selector labels"))]
    pub node_selector: BTreeMap<String, String>,
    /// Added to the operator-wide `mirror.tolerations`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the mirror pods spread across zones or nodes, e.g. one per zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// Must be one the cluster admin allows (`--allowed-priority-classes`, chart value
    /// `policy.proxy.priorityClasses`). Unset: the operator-wide `mirror.priorityClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// Secrets of this namespace to pull the mirror image with, added to the operator-wide
    /// `mirror.imagePullSecrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            image: None,
            resources: None,
            refresh_interval: default_refresh_interval(),
            max_stale: default_max_stale(),
            pod_template: None,
        }
    }
}

fn default_replicas() -> i32 {
    2
}
fn default_refresh_interval() -> String {
    "5m".to_string()
}
fn default_max_stale() -> String {
    "24h".to_string()
}

/// An Ingress (networking.k8s.io/v1) in front of the mirror.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Create the Ingress. Needs `host`.
    #[serde(default)]
    pub enabled: bool,
    /// Public host name of the mirror, e.g. `jwks.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub host: Option<String>,
    /// IngressClass name. Unset: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Secret holding the TLS certificate for `host`. Unset: no TLS section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub tls_secret_name: Option<String>,
    /// Annotations for the Ingress (e.g. for cert-manager or the ingress controller).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Path prefix routed to the mirror; the mirror serves its documents below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[A-Za-z0-9/_.-]*$"), length(max = 256))]
    pub path: Option<String>,
}

/// A Gateway API `HTTPRoute` (gateway.networking.k8s.io/v1) in front of the mirror.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways (or their listeners) the route attaches to.
    #[schemars(length(min = 1, max = 8))]
    pub parent_refs: Vec<GatewayRef>,
    /// Host names the route answers (no wildcards), at least one: a route without hostnames
    /// would answer every host of its Gateway listeners. The first is the JWKS URL's host when
    /// `spec.jwks.publicUrl` is unset. A host another namespace serves is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub hostnames: Vec<String>,
    /// Path prefix routed to the mirror; the mirror serves its documents below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[A-Za-z0-9/_.-]*$"), length(max = 256))]
    pub path: Option<String>,
}

/// A Gateway the route attaches to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway. Unset: the resource's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// A listener of the Gateway. Unset: every listener that accepts the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}

/// The generated ConfigMap.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ConfigMapSpec {
    /// Name of the ConfigMap. Unset: `<resource name>-convex-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(max = 253)
    )]
    pub name: Option<String>,
}
