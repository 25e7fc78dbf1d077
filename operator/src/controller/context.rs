//! What the kube-runtime callbacks share: the reconcile's context, metrics and backoff.

use crate::reconcile::names::ResourceKey;
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
    failures: Mutex<HashMap<ResourceKey, u32>>,
    /// Each namespace's share of the reconcile workers.
    pub namespaces: NamespaceShare,
}

/// Reconciles running per namespace, and how many one namespace may run at once.
#[derive(Debug)]
pub struct NamespaceShare {
    running: Mutex<HashMap<String, usize>>,
    share: usize,
}

/// A reconcile's place in its namespace's share of the workers; given back on drop.
pub struct NamespaceSlot<'a> {
    of: &'a NamespaceShare,
    namespace: String,
}

impl NamespaceShare {
    pub fn new(share: usize) -> Self {
        Self {
            running: Mutex::default(),
            share: share.max(1),
        }
    }

    /// A place for one more reconcile of `namespace`, unless it already runs its share.
    pub fn take(&self, namespace: &str) -> Option<NamespaceSlot<'_>> {
        let mut running = self.running.lock().ok()?;
        let n = running.entry(namespace.to_string()).or_default();
        if *n >= self.share {
            return None;
        }
        *n += 1;
        Some(NamespaceSlot {
            of: self,
            namespace: namespace.to_string(),
        })
    }
}

impl Drop for NamespaceSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.of.running.lock()
            && let Some(n) = running.get_mut(&self.namespace)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.namespace);
            }
        }
    }
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
            namespaces: NamespaceShare::new(usize::MAX),
        }
    }

    /// At most `share` reconciles of one namespace run at once.
    pub fn with_namespace_share(mut self, share: usize) -> Self {
        self.namespaces = NamespaceShare::new(share);
        self
    }

    /// Records a failure and returns how long to wait: 1 s, 2 s, 4 s … capped at 256 s.
    pub fn backoff(&self, key: &ResourceKey) -> Duration {
        let n = self.failures.lock().map_or(0, |mut f| {
            let n = f.entry(key.clone()).or_default();
            *n = n.saturating_add(1);
            *n
        });
        backoff_for(n)
    }

    pub fn succeeded(&self, key: &ResourceKey) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    /// Drops per-resource state of resources not in `live`; returns the sizes left: (inline
    /// key cache, backoff entries).
    pub fn retain(&self, live: &HashSet<ResourceKey>) -> (usize, usize) {
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
    use super::*;

    #[test]
    fn a_namespace_runs_at_most_its_share_and_gets_slots_back() {
        let share = NamespaceShare::new(2);
        let a1 = share.take("a");
        let a2 = share.take("a");
        assert!(a1.is_some() && a2.is_some());
        assert!(share.take("a").is_none(), "a third reconcile of a");
        assert!(
            share.take("b").is_some(),
            "another namespace is not held up"
        );
        drop(a1);
        assert!(share.take("a").is_some(), "a slot given back");
    }

    #[test]
    fn backoff_doubles_up_to_256_seconds() {
        let secs: Vec<u64> = (1..=11).map(|n| super::backoff_for(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
    }
}
