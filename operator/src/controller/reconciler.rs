//! One reconcile: read references → validate → (fetch inline keys) → build → apply → status.
//! The pure steps live in `crate::reconcile`; this file is the I/O around them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::references::{ReferenceError, read_client_id};
use crate::api::{JwksMode, WorkOSConvexAuth};
use crate::reconcile::apply::{Applied, apply, remove, remove_others};
use crate::reconcile::children::mirror_routes;
use crate::reconcile::names::{self, mirror_name};
use crate::reconcile::status::{
    self, CONFIG_READY, Observed, PROXY_AVAILABLE, Verdict, desired_status,
};
use crate::reconcile::verdicts::{Applied as ChildOutcome, pod_state, verdicts};
use crate::reconcile::{BuildContext, Children, admit, build, validate};

/// How often a settled resource is looked at again anyway (no writes unless something drifted).
const RESYNC: Duration = Duration::from_secs(3600);
/// How often a resource whose mirror has no available pod is looked at again: pod states
/// (image pulls, crash loops) change without an event on the Deployment, and status says why.
const UNAVAILABLE_RESYNC: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    /// The apiserver refused a child (4xx: invalid, forbidden, over quota, refused by an
    /// admission webhook); the status names the child and carries the apiserver's message.
    #[error("the apiserver refused {child}: {message}")]
    Rejected { child: String, message: String },
    /// Something outside the resource is not there yet (a Secret, the upstream keys); the
    /// status says what, and the resource is retried with backoff.
    #[error("{reason}: {message}")]
    Waiting {
        reason: &'static str,
        message: String,
    },
}

impl ReconcileError {
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Kube(_) => "KubernetesApi",
            ReconcileError::Rejected { .. } => "ApplyRejected",
            ReconcileError::Waiting { reason, .. } => reason,
        }
    }
}

pub fn key(resource: &WorkOSConvexAuth) -> String {
    format!(
        "{}/{}",
        resource.namespace().unwrap_or_default(),
        resource.name_any()
    )
}

pub async fn reconcile(
    guard: Arc<DeserializeGuard<WorkOSConvexAuth>>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let resource = match &guard.0 {
        Ok(resource) => resource,
        Err(invalid) => {
            // One undecodable object must not stall the others: report it and wait for a fix.
            tracing::warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "cannot decode WorkOSConvexAuth; fix the object");
            ctx.metrics.failed("Undecodable");
            return Ok(Action::await_change());
        }
    };
    if resource.metadata.deletion_timestamp.is_some() {
        ctx.inline_keys.forget(&key(resource));
        return Ok(Action::await_change()); // owner references let the garbage collector clean up
    }
    let started = Instant::now();
    let result = reconcile_resource(resource, &ctx).await;
    ctx.metrics.reconciled(started.elapsed());
    if result.is_ok() {
        ctx.succeeded(&key(resource));
    }
    result
}

pub fn error_policy(
    guard: Arc<DeserializeGuard<WorkOSConvexAuth>>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.failed(error.reason());
    let key = guard.0.as_ref().map(key).unwrap_or_default();
    let wait = ctx.backoff(&key);
    tracing::warn!(resource = %key, error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

async fn reconcile_resource(
    resource: &WorkOSConvexAuth,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let namespace = resource.namespace().unwrap_or_default();
    let uid = resource.uid().unwrap_or_default();
    let client = &ctx.client;
    let generation = resource.metadata.generation;
    let failing = |reason: &'static str, message: String| Observed {
        generation,
        verdicts: vec![Verdict::new(CONFIG_READY, false, reason, message)],
        ..Observed::default()
    };

    let client_id = match (&resource.spec.client_id, &resource.spec.client_id_from) {
        (None, Some(source)) => match read_client_id(client, &namespace, source).await {
            Ok(id) => Some(id),
            Err(ReferenceError::Missing(missing)) => {
                let observed = failing("ClientIdSourceMissing", missing.0.clone());
                finish(resource, ctx, observed).await?;
                return Err(ReconcileError::Waiting {
                    reason: "ClientIdSourceMissing",
                    message: missing.0,
                });
            }
            Err(ReferenceError::Api(e)) => return Err(e.into()),
        },
        _ => None,
    };

    let valid = match validate(resource, client_id.as_deref()) {
        Ok(valid) => valid,
        Err(invalid) => {
            // The user must change the resource; its next edit triggers a reconcile.
            finish(resource, ctx, failing("InvalidSpec", invalid.to_string())).await?;
            return Ok(Action::await_change());
        }
    };

    if let Err(refused) = admit(&valid, &ctx.policy) {
        // Nothing the policy refuses may keep running: the mirror and its routes go (only
        // objects this resource controls); the ConfigMap, plain data, stays.
        remove_workloads(ctx, &uid, &namespace, &names::mirror_name(&valid.name)).await?;
        finish(resource, ctx, failing("NotAllowed", refused.to_string())).await?;
        return Ok(Action::await_change());
    }

    let mut key_ids = Vec::new();
    let inline_keys = if valid.mode() == JwksMode::Inline {
        let urls: Vec<String> = mirror_routes(&valid)
            .into_iter()
            .map(|(_, upstream)| upstream)
            .collect();
        match ctx
            .inline_keys
            .get(
                &ctx.fetcher,
                &key(resource),
                &urls,
                valid.refresh_interval,
                valid.max_stale,
            )
            .await
        {
            Ok(fetched) => {
                key_ids = fetched.kids;
                Some(fetched.keys)
            }
            Err(e) => {
                let message = format!(
                    "fetching the signing keys from {} failed: {e}; check spec.jwks.upstreamBase and that the operator can reach it",
                    urls.join(", ")
                );
                finish(resource, ctx, failing("KeysUnavailable", message.clone())).await?;
                return Err(ReconcileError::Waiting {
                    reason: "KeysUnavailable",
                    message,
                });
            }
        }
    } else {
        None
    };

    let build_context = BuildContext {
        default_image: ctx.default_image.clone(),
        inline_keys,
        mirror_upstream: ctx.policy.upstream.clone(),
    };
    let children = match build(&valid, &build_context) {
        Ok(children) => children,
        Err(invalid) => {
            finish(resource, ctx, failing("InvalidSpec", invalid.to_string())).await?;
            return Ok(Action::await_change());
        }
    };

    let mut observed = match apply_children(resource, ctx, &uid, &namespace, &children).await {
        Err(rejected @ ReconcileError::Rejected { .. }) => {
            // Not a silent retry loop: the user sees which child and why; retried with backoff,
            // as quotas and webhooks change without an edit of the resource.
            finish(
                resource,
                ctx,
                failing("ApplyRejected", rejected.to_string()),
            )
            .await?;
            return Err(rejected);
        }
        other => other?,
    };
    observed.generation = generation;
    observed.key_ids = key_ids.clone();
    let previous_kids = resource
        .status
        .as_ref()
        .map(|s| s.key_ids.clone())
        .unwrap_or_default();
    if !previous_kids.is_empty() && !key_ids.is_empty() && previous_kids != key_ids {
        publish(
            ctx,
            resource,
            EventType::Warning,
            "KeysRotated",
            format!(
                "WorkOS signing keys changed ({} → {}); ConfigMap {} is updated: push it to Convex again (npx convex deploy)",
                previous_kids.join(","),
                key_ids.join(","),
                valid.config_map_name
            ),
        )
        .await;
    }
    let observed_verdicts = observed.verdicts.clone();
    finish(resource, ctx, observed).await?;

    let uses_secret = resource
        .spec
        .client_id_from
        .as_ref()
        .is_some_and(|s| s.secret_key_ref.is_some());
    let mirror_unavailable = resource_mirror_unavailable(&observed_verdicts);
    Ok(match valid.mode() {
        JwksMode::Inline => Action::requeue(valid.refresh_interval),
        _ if mirror_unavailable => Action::requeue(UNAVAILABLE_RESYNC),
        _ if uses_secret => Action::requeue(ctx.secret_resync),
        _ => Action::requeue(RESYNC),
    })
}

/// Applies every wanted child, removes unwanted ones, and says what happened.
async fn apply_children(
    resource: &WorkOSConvexAuth,
    ctx: &Context,
    uid: &str,
    ns: &str,
    children: &Children,
) -> Result<Observed, ReconcileError> {
    let client = ctx.client.clone();
    let name = resource.name_any();
    let mut conflicts = Vec::new();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let config_map_name = children.config_map.name_any();
    let (applied, _) = apply(&config_maps, uid, &children.config_map)
        .await
        .map_err(|e| rejected::<ConfigMap>(ns, &children.config_map.name_any(), e))?;
    match &applied {
        Applied::Created => publish(ctx, resource, EventType::Normal, "ConfigCreated", format!("created ConfigMap {ns}/{config_map_name} with the Convex auth config; push it with npx convex deploy")).await,
        Applied::Updated => publish(ctx, resource, EventType::Normal, "ConfigUpdated", format!("updated ConfigMap {ns}/{config_map_name}; push the new config with npx convex deploy")).await,
        Applied::Conflict { object } => conflicts.push(object.clone()),
        Applied::Unchanged => {}
    }
    let selector = format!(
        "app.kubernetes.io/instance={name},app.kubernetes.io/component={}",
        names::COMPONENT_CONFIG
    );
    remove_others(&config_maps, uid, &selector, &config_map_name).await?;

    let mirror = mirror_name(&name);
    let deployment = sync(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        uid,
        &mirror,
        children.deployment.as_ref(),
        &mut conflicts,
    )
    .await?;
    sync(
        &Api::<Service>::namespaced(client.clone(), ns),
        uid,
        &mirror,
        children.service.as_ref(),
        &mut conflicts,
    )
    .await?;
    sync(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
        uid,
        &mirror,
        children.pod_disruption_budget.as_ref(),
        &mut conflicts,
    )
    .await?;
    sync(
        &Api::<Ingress>::namespaced(client, ns),
        uid,
        &mirror,
        children.ingress.as_ref(),
        &mut conflicts,
    )
    .await?;

    let available_replicas = deployment
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    // Only while nothing serves the keys: the pods say why (one list, never in steady state).
    let mirror_pods = if deployment.is_some() && available_replicas == 0 {
        let selector = names::mirror_selector(&name)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Api::<Pod>::namespaced(ctx.client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .iter()
            .map(pod_state)
            .collect()
    } else {
        Vec::new()
    };
    let verdicts = verdicts(
        children,
        &ChildOutcome {
            conflicts: conflicts.clone(),
            available_replicas,
            mirror_pods,
        },
    );
    if !conflicts.is_empty() && !already_reported(resource, "Conflict") {
        publish(
            ctx,
            resource,
            EventType::Warning,
            "Conflict",
            format!(
                "left untouched, not controlled by this resource: {}",
                conflicts.join(", ")
            ),
        )
        .await;
    }
    Ok(Observed {
        verdicts,
        jwks_url: Some(children.jwks_url.clone()),
        issuers: children.issuers(),
        config_map_name: Some(config_map_name),
        ..Observed::default()
    })
}

/// Removes the mirror's Deployment, Service, PodDisruptionBudget and Ingress, where this
/// resource controls them.
async fn remove_workloads(
    ctx: &Context,
    uid: &str,
    ns: &str,
    mirror: &str,
) -> Result<(), ReconcileError> {
    let client = &ctx.client;
    remove(&Api::<Ingress>::namespaced(client.clone(), ns), uid, mirror).await?;
    remove(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
        uid,
        mirror,
    )
    .await?;
    remove(&Api::<Service>::namespaced(client.clone(), ns), uid, mirror).await?;
    remove(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        uid,
        mirror,
    )
    .await?;
    Ok(())
}

/// Applies `desired` or, when it is `None`, removes the child we control of that name.
async fn sync<K>(
    api: &Api<K>,
    uid: &str,
    name: &str,
    desired: Option<&K>,
    conflicts: &mut Vec<String>,
) -> Result<Option<K>, ReconcileError>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    match desired {
        Some(desired) => match apply(api, uid, desired)
            .await
            .map_err(|e| rejected::<K>(&desired.namespace().unwrap_or_default(), name, e))?
        {
            (Applied::Conflict { object }, _) => {
                conflicts.push(object);
                Ok(None)
            }
            (_, live) => Ok(live),
        },
        None => {
            remove(api, uid, name).await?;
            Ok(None)
        }
    }
}

/// A 4xx from the apiserver about a child becomes [`ReconcileError::Rejected`]; 409 (a
/// conflicting write), 429 (throttled) and every other error stay transient.
fn rejected<K: Resource<DynamicType = ()>>(
    ns: &str,
    name: &str,
    error: kube::Error,
) -> ReconcileError {
    match error {
        kube::Error::Api(status)
            if (400..500).contains(&status.code) && !matches!(status.code, 409 | 429) =>
        {
            ReconcileError::Rejected {
                child: format!("{} {ns}/{name}", K::kind(&())),
                message: status.message,
            }
        }
        other => ReconcileError::Kube(other),
    }
}

/// Whether the mirror is wanted and none of its pods is available (not a conflict).
fn resource_mirror_unavailable(verdicts: &[Verdict]) -> bool {
    verdicts
        .iter()
        .any(|v| v.type_ == PROXY_AVAILABLE && !v.ok && v.reason == "Unavailable")
}

/// Whether the current status already carries a condition with this reason (so the Event
/// about it was already sent: settled resources cause no writes, Events included).
fn already_reported(resource: &WorkOSConvexAuth, reason: &str) -> bool {
    resource
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.reason == reason))
}

/// Writes the status (only if it changed) and, for a new failure, a Warning event.
async fn finish(
    resource: &WorkOSConvexAuth,
    ctx: &Context,
    observed: Observed,
) -> Result<(), ReconcileError> {
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now())
        .to_string();
    let api: Api<WorkOSConvexAuth> = Api::namespaced(
        ctx.client.clone(),
        &resource.namespace().unwrap_or_default(),
    );
    let wanted = desired_status(resource.status.as_ref(), &observed, &now);
    if let Some(failed) = observed
        .verdicts
        .iter()
        .find(|v| !v.ok && v.type_ == CONFIG_READY)
        && !already_reported(resource, &failed.reason)
    {
        publish(
            ctx,
            resource,
            EventType::Warning,
            &failed.reason.clone(),
            failed.message.clone(),
        )
        .await;
    }
    status::write(&api, resource, wanted).await?;
    Ok(())
}

async fn publish(
    ctx: &Context,
    resource: &WorkOSConvexAuth,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx
        .recorder
        .publish(&event, &resource.object_ref(&()))
        .await
    {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
