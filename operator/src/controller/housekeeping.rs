//! What runs beside the reconciles: readiness (caches synced, watches healthy) and the sweep
//! that frees per-resource memory of deleted resources.
//!
//! Without a finalizer the controller is never called for a deleted resource, so anything keyed
//! by resource (mode-Inline keys, backoff counters) would grow with every create/delete until the
//! operator is OOM-killed; the sweep keeps only what the watch cache still holds.

use crate::reconcile::names::ResourceKey;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;

use super::context::Shared;
use super::metrics::Readiness;
use crate::api::WorkOSConvexAuth;

/// How often the sweep runs and readiness is re-evaluated.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// `/readyz` fails while the last watch error is more recent than this: kube-runtime retries a
/// failing watch with backoff, so a watch that stays broken keeps producing errors.
pub const WATCH_ERROR_GRACE: Duration = Duration::from_secs(30);

/// When a watch last failed.
#[derive(Debug, Default)]
pub struct WatchHealth {
    last_error: Mutex<Option<Instant>>,
}

impl WatchHealth {
    pub fn failed(&self) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(Instant::now());
        }
    }

    fn healthy(&self) -> bool {
        self.last_error
            .lock()
            .map(|last| last.is_none_or(|at| at.elapsed() > WATCH_ERROR_GRACE))
            .unwrap_or(false)
    }
}

/// Whether a watch failed because the WorkOSConvexAuth CRD is gone: only its watch can answer
/// 404 (the children's kinds are built in), on the list, on the watch, or in the stream.
pub fn crd_missing(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 404,
        watcher::Error::WatchError(status) => status.code == 404,
        _ => false,
    }
}

/// The key of every resource in the watch cache, decodable or not.
fn live_keys(state: &[Arc<DeserializeGuard<WorkOSConvexAuth>>]) -> HashSet<ResourceKey> {
    state
        .iter()
        .map(|guard| match &guard.0 {
            Ok(resource) => ResourceKey::of_meta(&resource.metadata),
            Err(invalid) => ResourceKey::of_meta(&invalid.metadata),
        })
        .collect()
}

/// Waits for the caches, then every [`SWEEP_INTERVAL`]: sweeps, publishes the map sizes and sets
/// `ready` (synced and no recent watch error).
pub async fn run(
    store: Store<DeserializeGuard<WorkOSConvexAuth>>,
    ctx: Arc<Shared>,
    watch: Arc<WatchHealth>,
    ready: Arc<AtomicBool>,
) {
    if crate::reconcile::live::store_ready(&store).await.is_err() {
        return; // the controller stopped before its first list
    }
    tracing::info!("caches synced; ready");
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        let healthy = watch.healthy();
        if ready.swap(healthy, Ordering::Relaxed) != healthy {
            if healthy {
                tracing::info!("watches healthy again; ready");
            } else {
                tracing::warn!("a watch is failing; /readyz reports not ready");
            }
        }
        let state = store.state();
        let (inline, backoff) = ctx.retain(&live_keys(&state));
        ctx.metrics.per_resource_entries(inline, backoff);
        // Built afresh from the cache each sweep, so a deleted resource's series leaves with it.
        ctx.metrics.resources(Readiness::of(
            state.iter().filter_map(|guard| guard.0.as_ref().ok()),
            state
                .iter()
                .filter_map(|guard| guard.0.as_ref().err().map(|invalid| &invalid.metadata)),
        ));
        tick.tick().await;
    }
}
