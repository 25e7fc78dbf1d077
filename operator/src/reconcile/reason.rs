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
    /// kstatus: present (True) only while `Ready` waits on work under way that needs no one's
    /// edit (mirror pods starting, an upstream retried, a push awaited).
    Reconciling,
    /// kstatus: present (True) only while `Ready` waits on something nothing will change
    /// without someone's edit (an invalid spec, a refusal, a missing Secret, a 403, a conflict).
    Stalled,
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
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
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

/// What a failing condition with this reason waits for: kstatus's `Stalled` or `Reconciling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    /// Someone's edit: of the resource, a Secret, the operator's RBAC or policy, another
    /// namespace's object, the Convex deployment's admin key.
    ForAnEdit,
    /// The operator or the cluster, retrying or progressing by themselves.
    ForProgress,
    /// Nothing: the reason is informational, or that of a condition that holds.
    Nothing,
}

impl Reason {
    /// What a failing condition with this reason waits for. Exhaustive: a new reason must say.
    pub fn waits(self) -> Waits {
        match self {
            Reason::ClientIdSourceMissing
            | Reason::Forbidden
            | Reason::InvalidSpec
            | Reason::NotAllowed
            | Reason::HostTaken
            | Reason::ApplyRejected
            | Reason::Conflict
            // The resource asked for no mirror pods: only an edit brings them back.
            | Reason::ScaledToZero
            | Reason::ConvexCannotFetchKeys
            | Reason::RouteNotAccepted
            | Reason::AdminKeyMissing
            | Reason::AdminKeyNotForDeployment
            | Reason::AdminKeyRefused
            | Reason::ChangeRefused
            | Reason::ValueTooLarge => Waits::ForAnEdit,
            Reason::KeysUnavailable
            | Reason::Unavailable
            | Reason::RoutePending
            // The new values are set; a `npx convex deploy` of the generated file is awaited.
            | Reason::AuthConfigNotPushed
            | Reason::DeploymentUnreachable
            | Reason::KubernetesApi
            | Reason::Undecodable => Waits::ForProgress,
            Reason::Reconciled
            | Reason::Generated
            | Reason::Available
            | Reason::PublicUrl
            | Reason::VariablesCurrent
            | Reason::Accepted
            | Reason::ClusterInternalUrl
            | Reason::ConfigCreated
            | Reason::ConfigUpdated
            | Reason::KeysRotated
            | Reason::VariablesUpdated => Waits::Nothing,
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
