//! What the kube-runtime callbacks share: the reconcile's context, metrics and backoff.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::leader::Leadership;
use super::metrics::Metrics;
use crate::reconcile;

/// Shared by every reconcile and the housekeeping.
pub struct Shared {
    pub reconcile: reconcile::Context,
    pub metrics: Arc<Metrics>,
    /// Whether this replica may reconcile.
    pub leadership: Arc<Leadership>,
    /// Consecutive failures per `namespace/name`, for per-object exponential backoff
    /// (kube-runtime has none of its own).
    failures: Mutex<HashMap<String, u32>>,
}

impl Shared {
    pub fn new(
        reconcile: reconcile::Context,
        metrics: Arc<Metrics>,
        leadership: Arc<Leadership>,
    ) -> Self {
        Self {
            reconcile,
            metrics,
            leadership,
            failures: Mutex::default(),
        }
    }

    /// Records a failure and returns how long to wait: 1 s, 2 s, 4 s … capped at 256 s.
    pub fn backoff(&self, key: &str) -> Duration {
        let n = self.failures.lock().map_or(0, |mut f| {
            let n = f.entry(key.to_string()).or_default();
            *n = n.saturating_add(1);
            *n
        });
        backoff_for(n)
    }

    pub fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// Drops per-resource state of resources not in `live` (`namespace/name`); returns the
    /// sizes left: (inline key cache, backoff entries).
    pub fn retain(&self, live: &HashSet<String>) -> (usize, usize) {
        let inline = self.reconcile.inline_keys.retain(live);
        // Children are swept by what their own caches still hold (deleted with their owner).
        self.reconcile.live.forget_gone();
        self.reconcile.synced.retain(live);
        let backoff = self.failures.lock().map_or(0, |mut f| {
            f.retain(|key, _| live.contains(key));
            f.len()
        });
        (inline, backoff)
    }
}

pub fn backoff_for(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(8))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_256_seconds() {
        let secs: Vec<u64> = (1..=11).map(|n| super::backoff_for(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
    }
}
