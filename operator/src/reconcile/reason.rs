//! Every condition type and every reason the operator writes, in conditions and in Events.
//! One enum each, so a reason is spelt once and the requeue decision can match on it.

use std::fmt;

/// The conditions of `status.conditions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    /// Every other condition holds (except the informational `PublicJwksUrl`).
    Ready,
    /// The ConfigMap with the Convex auth config is generated.
    ConfigReady,
    /// At least one mirror pod serves the keys (mode Proxy). The name is the API's.
    ProxyAvailable,
    /// Whether Convex outside the cluster can reach the JWKS URL: informational, unless
    /// `spec.convex` names a deployment outside the cluster (then `Ready` needs it).
    PublicJwksUrl,
    /// Every Gateway controller accepted the mirror's HTTPRoute (`spec.httpRoute` only).
    RouteAccepted,
    /// The Convex deployment's variables hold the generated values and its auth config reads
    /// them (`spec.convex` only).
    ConvexSynced,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::ConfigReady => "ConfigReady",
            ConditionType::ProxyAvailable => "ProxyAvailable",
            ConditionType::PublicJwksUrl => "PublicJwksUrl",
            ConditionType::RouteAccepted => "RouteAccepted",
            ConditionType::ConvexSynced => "ConvexSynced",
        }
    }
}

/// A condition's or an Event's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    // Conditions that hold.
    Reconciled,
    Generated,
    Available,
    PublicUrl,
    VariablesCurrent,
    Accepted,
    // Conditions that do not hold, and the Warning events about them.
    ClientIdSourceMissing,
    /// The apiserver refused one of the operator's own requests (403): its RBAC lacks a rule.
    Forbidden,
    InvalidSpec,
    NotAllowed,
    /// Another namespace serves the Ingress host or HTTPRoute hostname.
    HostTaken,
    KeysUnavailable,
    ApplyRejected,
    Conflict,
    ScaledToZero,
    Unavailable,
    ClusterInternalUrl,
    /// `spec.convex` names a deployment outside the cluster, and the config gives it the
    /// cluster-internal JWKS URL: it can never fetch the keys.
    ConvexCannotFetchKeys,
    RouteNotAccepted,
    RoutePending,
    AuthConfigNotPushed,
    AdminKeyMissing,
    /// The admin key's Secret is not annotated for `spec.convex.url`.
    AdminKeyNotForDeployment,
    AdminKeyRefused,
    ChangeRefused,
    DeploymentUnreachable,
    ValueTooLarge,
    // Reconcile failures that never reach status (metrics and logs only).
    KubernetesApi,
    Undecodable,
    // Events only.
    ConfigCreated,
    ConfigUpdated,
    KeysRotated,
    VariablesUpdated,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Reconciled => "Reconciled",
            Reason::Generated => "Generated",
            Reason::Available => "Available",
            Reason::PublicUrl => "PublicUrl",
            Reason::VariablesCurrent => "VariablesCurrent",
            Reason::Accepted => "Accepted",
            Reason::RouteNotAccepted => "RouteNotAccepted",
            Reason::RoutePending => "RoutePending",
            Reason::ClientIdSourceMissing => "ClientIdSourceMissing",
            Reason::Forbidden => "Forbidden",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::NotAllowed => "NotAllowed",
            Reason::HostTaken => "HostTaken",
            Reason::KeysUnavailable => "KeysUnavailable",
            Reason::ApplyRejected => "ApplyRejected",
            Reason::Conflict => "Conflict",
            Reason::ScaledToZero => "ScaledToZero",
            Reason::Unavailable => "Unavailable",
            Reason::ClusterInternalUrl => "ClusterInternalUrl",
            Reason::ConvexCannotFetchKeys => "ConvexCannotFetchKeys",
            Reason::AuthConfigNotPushed => "AuthConfigNotPushed",
            Reason::AdminKeyMissing => "AdminKeyMissing",
            Reason::AdminKeyNotForDeployment => "AdminKeyNotForDeployment",
            Reason::AdminKeyRefused => "AdminKeyRefused",
            Reason::ChangeRefused => "ChangeRefused",
            Reason::DeploymentUnreachable => "DeploymentUnreachable",
            Reason::ValueTooLarge => "ValueTooLarge",
            Reason::KubernetesApi => "KubernetesApi",
            Reason::Undecodable => "Undecodable",
            Reason::ConfigCreated => "ConfigCreated",
            Reason::ConfigUpdated => "ConfigUpdated",
            Reason::KeysRotated => "KeysRotated",
            Reason::VariablesUpdated => "VariablesUpdated",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
