//! The kube-runtime callbacks around `reconcile::reconcile`: undecodable and deleted objects,
//! metrics, and per-object backoff.

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;

use super::context::Shared;
use crate::api::WorkOSConvexAuth;
use crate::reconcile::names::ResourceKey;
use crate::reconcile::{self, Reason};

/// When a reconcile whose namespace ran its share of the workers is tried again.
pub const NAMESPACE_BUSY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// The key of a resource's per-resource memory (inline keys, backoff).
pub fn key(resource: &WorkOSConvexAuth) -> ResourceKey {
    ResourceKey::of_meta(&resource.metadata)
}

pub async fn reconcile(
    guard: Arc<DeserializeGuard<WorkOSConvexAuth>>,
    shared: Arc<Shared>,
) -> Result<Action, reconcile::Error> {
    let resource = match &guard.0 {
        Ok(resource) => resource,
        Err(invalid) => {
            // One undecodable object must not stall the others: report it and wait for a fix.
            tracing::warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace, error = %invalid.error, "cannot decode WorkOSConvexAuth; fix the object");
            shared.metrics.failed(Reason::Undecodable);
            return Ok(Action::await_change());
        }
    };
    if !shared.leadership.is_leader() {
        // A follower keeps its caches warm and writes nothing; it reconciles everything once
        // it leads (Controller::reconcile_all_on).
        return Ok(Action::await_change());
    }
    if shared.reconcile.live.wait_until_ready().await.is_err() {
        return Ok(Action::await_change()); // the watches stopped: shutting down
    }
    // A namespace that runs its share of the workers waits its turn without holding one: the
    // reconcile comes back shortly, and other namespaces' go first.
    let Some(_slot) = shared
        .namespaces
        .take(&resource.namespace().unwrap_or_default())
    else {
        return Ok(Action::requeue(NAMESPACE_BUSY_RETRY));
    };
    if resource.metadata.deletion_timestamp.is_some() {
        shared.reconcile.inline_keys.forget(&key(resource));
        return Ok(Action::await_change()); // owner references let the garbage collector clean up
    }
    let started = Instant::now();
    // A leader whose leadership ends mid-reconcile stops there: the reconcile is dropped before
    // its next request, so nothing it would still write reaches the apiserver after another
    // replica may have taken over.
    let result = tokio::select! {
        result = reconcile::reconcile(resource, &shared.reconcile) => result,
        () = shared.leadership.lost() => {
            tracing::warn!(resource = %key(resource), "leadership lost during the reconcile; stopped");
            return Ok(Action::await_change());
        }
    };
    shared.metrics.reconciled(started.elapsed());
    if result.is_ok() {
        shared.succeeded(&key(resource));
    }
    result
}

pub fn error_policy(
    guard: Arc<DeserializeGuard<WorkOSConvexAuth>>,
    error: &reconcile::Error,
    shared: Arc<Shared>,
) -> Action {
    shared.metrics.failed(error.reason());
    let key = match &guard.0 {
        Ok(resource) => key(resource),
        Err(invalid) => ResourceKey::of_meta(&invalid.metadata),
    };
    let wait = shared.backoff(&key);
    tracing::warn!(resource = %key, error = %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}
