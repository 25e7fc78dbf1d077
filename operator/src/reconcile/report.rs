//! The one place that turns how a reconcile went into the status, the Events and what happens
//! next. `plan` is pure (unit-tested below); `deliver` writes what it decided.

use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::Context;
use super::apply::{Applied, ApplyError, Change};
use super::children::Children;
use super::fetch::FetchFailed;
use super::findings::{convex_reach, findings};
use super::forbidden::Forbidden;
use super::hosts::HostTaken;
use super::policy::NotAllowed;
use super::read::{ReadError, SourceMissing};
use super::reason::{ConditionType, Reason};
use super::status::{self, Finding, Observed, desired_status};
use super::sync::{AWAITING_PUSH_RESYNC, CONFIRM_EVERY, SyncFailed, Synced};
use super::validate::Valid;
use crate::api::{JwksMode, WorkOSConvexAuth};
use crate::convex::config::Variable;
use crate::convex::deployment::DeploymentError;
use crate::convex::generate::InvalidField;

/// How often a settled resource is looked at again anyway (no writes unless something drifted).
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How often a resource refused for a host another namespace holds asks again: the host is
/// free once the holder is gone, and nothing else tells it so.
pub const HOST_RECHECK: Duration = Duration::from_secs(15);
/// How often a resource whose mirror has no available pod is looked at again: pod states
/// (image pulls, crash loops) change without an event on the Deployment, and status says why.
pub const UNAVAILABLE_RESYNC: Duration = Duration::from_secs(15);

/// The pipeline ran to the end.
#[derive(Debug)]
pub struct Done {
    pub valid: Valid,
    pub children: Children,
    pub applied: Applied,
    /// Key ids of the embedded keys (mode Inline).
    pub key_ids: Vec<String>,
    /// How the Convex deployment's variables were synced (`spec.convex` only).
    pub convex: Option<Result<Synced, SyncFailed>>,
}

/// Why the pipeline stopped early: one variant per step that can stop it.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// read: the Secret or ConfigMap named by `spec.clientIdFrom` (or its key) is missing.
    #[error(transparent)]
    SourceMissing(SourceMissing),
    /// validate: the user must change the resource.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// admit: the admin's policy refuses the resource.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// claim hosts: another namespace serves a host the resource names.
    #[error(transparent)]
    HostTaken(#[from] HostTaken),
    /// fetch: the keys could not be fetched, or do not fit.
    #[error(transparent)]
    Fetch(#[from] FetchFailed),
    /// read or apply: the operator's RBAC lacks a rule (403).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// apply: the apiserver refused a child.
    #[error("the apiserver refused {child}: {message}")]
    Rejected { child: String, message: String },
    /// Any step: the apiserver could not be asked; retried, the status is left alone.
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
}

impl From<ReadError> for Stopped {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Missing(missing) => Stopped::SourceMissing(missing),
            ReadError::Forbidden(forbidden) => Stopped::Forbidden(forbidden),
            ReadError::Api(e) => Stopped::Api(e),
        }
    }
}

impl From<ApplyError> for Stopped {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Rejected { child, message } => Stopped::Rejected { child, message },
            ApplyError::Forbidden(forbidden) => Stopped::Forbidden(forbidden),
            ApplyError::Api(e) => Stopped::Api(e),
        }
    }
}

/// A failed reconcile, as kube-runtime sees it: retried with backoff by the error policy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
    /// Something outside the resource is not there yet (a Secret, the upstream keys), or the
    /// apiserver refused a child (quotas and webhooks change without an edit of the resource);
    /// the status says what.
    #[error("{reason}: {message}")]
    Waiting { reason: Reason, message: String },
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::Api(_) => Reason::KubernetesApi,
            Error::Waiting { reason, .. } => *reason,
        }
    }
}

/// What happens after this reconcile.
#[derive(Debug)]
pub enum Next {
    Requeue(Duration),
    /// Only an edit of the resource can help.
    AwaitChange,
    /// Retried with backoff by the error policy.
    Retry(Error),
}

/// An Event to publish about the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: Reason,
    pub note: String,
}

/// Everything a reconcile leaves behind.
#[derive(Debug)]
pub struct Report {
    /// `None` leaves the status as it is (the apiserver could not be asked).
    pub observed: Option<Observed>,
    pub notices: Vec<Notice>,
    pub next: Next,
}

/// Decides the status, the Events and what happens next. Events are sent once per change: a
/// reason the current status already carries was reported when it appeared.
pub fn plan(
    resource: &WorkOSConvexAuth,
    outcome: Result<Done, Stopped>,
    secret_resync: Duration,
) -> Report {
    let done = match outcome {
        Ok(done) => done,
        Err(stopped) => return stopped_early(resource, stopped),
    };
    let Done {
        valid,
        children,
        applied,
        key_ids,
        convex,
    } = done;
    let env_driven = valid.convex.is_some();
    let mut notices: Vec<Notice> = [
        config_notice(applied.config_map, &valid, env_driven),
        conflict_notice(resource, &applied),
        rotation_notice(resource, &valid, &key_ids, env_driven),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut findings = findings(&children, &applied);
    if let Some(unreachable) = valid
        .convex
        .as_ref()
        .and_then(|target| convex_reach(&target.url, &children))
    {
        findings.retain(|f| f.condition != ConditionType::PublicJwksUrl);
        findings.push(unreachable);
    }
    let mut convex_next = None;
    if let Some(outcome) = &convex {
        let (finding, next) = convex_finding(outcome, &valid.namespace, &valid.config_map_name);
        notices.extend(variables_notice(outcome));
        notices.extend(warning_unless_reported(resource, &finding));
        findings.push(finding);
        convex_next = Some(next);
    }
    let next = next_reconcile(resource, &valid, &findings, secret_resync, convex_next);
    Report {
        observed: Some(Observed {
            generation: resource.metadata.generation,
            jwks_url: Some(children.jwks_url.clone()),
            issuers: children.issuers(),
            config_map_name: Some(valid.config_map_name.clone()),
            key_ids,
            findings,
        }),
        notices,
        next,
    }
}

/// `ConfigCreated` or `ConfigUpdated`, saying what to push (nothing new when the deployment
/// reads its values from variables).
fn config_notice(change: Change, valid: &Valid, env_driven: bool) -> Option<Notice> {
    let config_map = format!("{}/{}", valid.namespace, valid.config_map_name);
    match change {
        Change::Created => Some(Notice {
            warning: false,
            reason: Reason::ConfigCreated,
            note: format!(
                "created ConfigMap {config_map} with the Convex auth config; push it with npx convex deploy"
            ),
        }),
        Change::Updated => Some(Notice {
            warning: false,
            reason: Reason::ConfigUpdated,
            note: if env_driven {
                format!(
                    "updated ConfigMap {config_map}; new values reach the deployment through its environment variables, push auth.config.ts again only if its providers changed"
                )
            } else {
                format!(
                    "updated ConfigMap {config_map}; push the new config with npx convex deploy"
                )
            },
        }),
        Change::Unchanged | Change::Conflict => None,
    }
}

/// One `Conflict` warning naming the objects left untouched, unless already reported.
fn conflict_notice(resource: &WorkOSConvexAuth, applied: &Applied) -> Option<Notice> {
    if applied.conflicts.is_empty() || already_reported(resource, Reason::Conflict) {
        return None;
    }
    let list: Vec<String> = applied.conflicts.iter().map(|c| c.to_string()).collect();
    Some(Notice {
        warning: true,
        reason: Reason::Conflict,
        note: format!(
            "left untouched, not controlled by this resource: {}",
            list.join(", ")
        ),
    })
}

/// `KeysRotated` when the embedded keys (mode Inline) changed since the last status.
fn rotation_notice(
    resource: &WorkOSConvexAuth,
    valid: &Valid,
    key_ids: &[String],
    env_driven: bool,
) -> Option<Notice> {
    let previous_kids = resource
        .status
        .as_ref()
        .map(|s| s.key_ids.clone())
        .unwrap_or_default();
    if previous_kids.is_empty() || key_ids.is_empty() || previous_kids == key_ids {
        return None;
    }
    let (warning, then) = if env_driven {
        (
            false,
            format!(
                "spec.convex sets {} on the deployment, no push needed",
                Variable::JwksUrl.name()
            ),
        )
    } else {
        (
            true,
            format!(
                "ConfigMap {} is updated: push it to Convex again (npx convex deploy)",
                valid.config_map_name
            ),
        )
    };
    Some(Notice {
        warning,
        reason: Reason::KeysRotated,
        note: format!(
            "WorkOS signing keys changed ({} → {}); {then}",
            previous_kids.join(","),
            key_ids.join(","),
        ),
    })
}

/// `VariablesUpdated` when the sync wrote variables.
fn variables_notice(outcome: &Result<Synced, SyncFailed>) -> Option<Notice> {
    let synced = outcome.as_ref().ok().filter(|s| !s.written.is_empty())?;
    Some(Notice {
        warning: false,
        reason: Reason::VariablesUpdated,
        note: format!(
            "set {} on {}; the deployment re-evaluated its auth config with them",
            names(&synced.written),
            synced.url
        ),
    })
}

/// When to look again: mode Inline on its refresh, a mirror without pods sooner, a Secret on
/// `--secret-resync` (it is never watched), and whatever the Convex sync asks for.
fn next_reconcile(
    resource: &WorkOSConvexAuth,
    valid: &Valid,
    findings: &[Finding],
    secret_resync: Duration,
    convex_next: Option<Next>,
) -> Next {
    let mirror_unavailable = findings.iter().any(|f| {
        f.condition == ConditionType::ProxyAvailable && !f.holds && f.reason == Reason::Unavailable
    });
    let uses_secret = resource
        .spec
        .client_id_from
        .as_ref()
        .is_some_and(|s| s.secret_key_ref.is_some());
    let after = match valid.mode {
        JwksMode::Inline => valid.refresh_interval,
        _ if mirror_unavailable => UNAVAILABLE_RESYNC,
        _ => RESYNC,
    };
    let after = if uses_secret {
        after.min(secret_resync)
    } else {
        after
    };
    // A sync waiting for an edit (a value too large) keeps the regular schedule: in mode
    // Inline new keys may fit again.
    match convex_next {
        None | Some(Next::AwaitChange) => Next::Requeue(after),
        Some(Next::Requeue(convex)) => Next::Requeue(after.min(convex)),
        Some(retry) => retry,
    }
}

fn names(variables: &[Variable]) -> String {
    let names: Vec<&str> = variables.iter().map(|v| v.name()).collect();
    names.join(", ")
}

/// `ConvexSynced`, and when the deployment is looked at next.
fn convex_finding(
    outcome: &Result<Synced, SyncFailed>,
    namespace: &str,
    config_map: &str,
) -> (Finding, Next) {
    let push = format!(
        "kubectl get configmap -n {namespace} {config_map} -o jsonpath='{{.data.auth\\.config\\.ts}}' > convex/auth.config.ts && npx convex deploy"
    );
    let failed = match outcome {
        Ok(synced) => return synced_finding(synced, &push),
        Err(failed) => failed,
    };
    let (reason, message, retry) = sync_failure(failed, &push);
    let next = if retry {
        Next::Retry(Error::Waiting {
            reason,
            message: message.clone(),
        })
    } else {
        Next::AwaitChange
    };
    (
        Finding::fails(ConditionType::ConvexSynced, reason, message),
        next,
    )
}

/// A failed sync: its reason, message, and whether to retry (with backoff) rather than wait
/// for an edit of the resource.
fn sync_failure(failed: &SyncFailed, push: &str) -> (Reason, String, bool) {
    match failed {
        SyncFailed::AdminKeyMissing(missing) => {
            (Reason::AdminKeyMissing, missing.to_string(), true)
        }
        SyncFailed::Forbidden(forbidden) => (Reason::Forbidden, forbidden.to_string(), true),
        SyncFailed::NotAllowed(refused) => (Reason::NotAllowed, refused.to_string(), false),
        // Fixed on the Secret, which is not watched: asked again with backoff.
        unmarked @ SyncFailed::KeyNotForUrl { .. } => {
            (Reason::AdminKeyNotForDeployment, unmarked.to_string(), true)
        }
        too_large @ SyncFailed::ValueTooLarge { .. } => {
            (Reason::ValueTooLarge, too_large.to_string(), false)
        }
        SyncFailed::Deployment { url, error } => {
            let (reason, fix) = deployment_fix(error, push);
            (reason, format!("{url}: {error}; {fix}"), true)
        }
    }
}

/// What a Convex deployment's answer means for the reader, and what to do about it.
fn deployment_fix(error: &DeploymentError, push: &str) -> (Reason, String) {
    match error {
        DeploymentError::AdminKeyRefused { .. } => (
            Reason::AdminKeyRefused,
            "store an admin key of this deployment in spec.convex.adminKeySecretRef (Convex Cloud: a deploy key from the deployment's settings; self-hosted: the output of generate_admin_key.sh)".to_string(),
        ),
        DeploymentError::Refused { code, .. }
            if code == "InvalidAuthConfig" || code == "AuthConfigMissingEnvironmentVariable" =>
        {
            (
                Reason::ChangeRefused,
                format!("the deployed auth config does not evaluate with these values; push the generated one: {push}"),
            )
        }
        DeploymentError::Refused { .. } => (
            Reason::ChangeRefused,
            "see the deployment's message; the change is retried".to_string(),
        ),
        DeploymentError::NotAllowed(_) => (
            Reason::DeploymentUnreachable,
            "use the deployment's public https URL, or ask the cluster admin to allow its address (--allowed-convex-networks, chart value policy.convex.allowedNetworks; --allow-http-convex, chart value policy.convex.allowHttp)".to_string(),
        ),
        // The operator's own limits, not the deployment's: nothing to fix.
        DeploymentError::Busy(_) | DeploymentError::RateLimited => (
            Reason::DeploymentUnreachable,
            "the operator is busy with other deployments; retried with backoff".to_string(),
        ),
        _ => (
            Reason::DeploymentUnreachable,
            "check spec.convex.url and that the operator's pods can reach it; retried with backoff".to_string(),
        ),
    }
}

/// A sync that set the variables: whether the deployed config reads them.
fn synced_finding(synced: &Synced, push: &str) -> (Finding, Next) {
    let variables = names(&synced.variables);
    match synced.in_use {
        Some(false) => (
            Finding::fails(
                ConditionType::ConvexSynced,
                Reason::AuthConfigNotPushed,
                format!(
                    "{variables} are current on {}, but its auth config does not evaluate to this resource's providers yet: push the env-driven file once: {push}",
                    synced.url
                ),
            ),
            Next::Requeue(AWAITING_PUSH_RESYNC),
        ),
        Some(true) => (
            Finding::holds(
                ConditionType::ConvexSynced,
                Reason::VariablesCurrent,
                format!(
                    "{variables} are current on {}, and its auth config uses them",
                    synced.url
                ),
            ),
            Next::Requeue(CONFIRM_EVERY),
        ),
        None => (
            Finding::holds(
                ConditionType::ConvexSynced,
                Reason::VariablesCurrent,
                format!(
                    "{variables} are current on {} (the deployment does not say whether its auth config reads them)",
                    synced.url
                ),
            ),
            Next::Requeue(CONFIRM_EVERY),
        ),
    }
}

/// A pipeline that stopped early: `ConfigReady` (and so `Ready`) says why, unless the apiserver
/// could not be asked at all.
fn stopped_early(resource: &WorkOSConvexAuth, stopped: Stopped) -> Report {
    // The apiserver could not be asked: nothing to tell the user, retried.
    let stopped = match stopped {
        Stopped::Api(e) => {
            return Report {
                observed: None,
                notices: Vec::new(),
                next: Next::Retry(Error::Api(e)),
            };
        }
        other => other,
    };
    // Whether something outside the resource may fix it (retried with backoff), only an edit
    // of the resource can, or the answer may change without either (asked again).
    enum Then {
        Retry,
        AwaitChange,
        Recheck(Duration),
    }
    let (reason, then) = match &stopped {
        Stopped::SourceMissing(_) => (Reason::ClientIdSourceMissing, Then::Retry),
        // Granted without an edit of the resource: asked again with backoff.
        Stopped::Forbidden(_) => (Reason::Forbidden, Then::Retry),
        Stopped::Invalid(_) | Stopped::Fetch(FetchFailed::TooLarge(_)) => {
            (Reason::InvalidSpec, Then::AwaitChange)
        }
        Stopped::NotAllowed(_) => (Reason::NotAllowed, Then::AwaitChange),
        Stopped::HostTaken(_) => (Reason::HostTaken, Then::Recheck(HOST_RECHECK)),
        Stopped::Fetch(FetchFailed::Unavailable { .. }) => (Reason::KeysUnavailable, Then::Retry),
        Stopped::Rejected { .. } => (Reason::ApplyRejected, Then::Retry),
        Stopped::Api(_) => (Reason::KubernetesApi, Then::Retry),
    };
    let message = stopped.to_string();
    let next = match then {
        Then::Retry => Next::Retry(Error::Waiting {
            reason,
            message: message.clone(),
        }),
        Then::AwaitChange => Next::AwaitChange,
        Then::Recheck(after) => Next::Requeue(after),
    };
    let finding = Finding::fails(ConditionType::ConfigReady, reason, message);
    Report {
        notices: warning_unless_reported(resource, &finding)
            .into_iter()
            .collect(),
        observed: Some(Observed {
            generation: resource.metadata.generation,
            findings: vec![finding],
            ..Observed::default()
        }),
        next,
    }
}

/// A Warning for a failing finding, unless the status already carries its reason (the
/// Conflict event, listing every conflict, is sent above).
fn warning_unless_reported(resource: &WorkOSConvexAuth, finding: &Finding) -> Option<Notice> {
    (!finding.holds && !already_reported(resource, finding.reason)).then(|| Notice {
        warning: true,
        reason: finding.reason,
        note: finding.message.clone(),
    })
}

/// Whether the current status already carries a condition with this reason (so the Event
/// about it was already sent: settled resources cause no writes, Events included).
fn already_reported(resource: &WorkOSConvexAuth, reason: Reason) -> bool {
    resource
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.reason == reason.as_str()))
}

/// Publishes the Events, writes the status if it changed, and tells kube-runtime what next.
pub async fn deliver(
    resource: &WorkOSConvexAuth,
    ctx: &Context,
    report: Report,
) -> Result<Action, Error> {
    for notice in &report.notices {
        publish(ctx, resource, notice).await;
    }
    if let Some(observed) = &report.observed {
        let api: Api<WorkOSConvexAuth> = Api::namespaced(
            ctx.client.clone(),
            &resource.namespace().unwrap_or_default(),
        );
        let wanted = desired_status(resource.status.as_ref(), observed, &status::now());
        status::write(&api, resource, &wanted).await?;
    }
    match report.next {
        Next::Requeue(after) => Ok(Action::requeue(after)),
        Next::AwaitChange => Ok(Action::await_change()),
        Next::Retry(error) => Err(error),
    }
}

/// An Event that cannot be published is logged: it must not fail the reconcile.
async fn publish(ctx: &Context, resource: &WorkOSConvexAuth, notice: &Notice) {
    let event = Event {
        type_: if notice.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: notice.reason.as_str().to_string(),
        note: Some(status::capped(&notice.note)),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &resource.object_ref(&()))
        .await
    {
        tracing::warn!(error = %e, reason = %notice.reason, "could not publish event");
    }
}
