use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;

use super::inline::InlineKeyCache;
use super::metrics::Metrics;
use crate::jwks::Fetcher;
use crate::reconcile::Policy;

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub fetcher: Fetcher,
    pub default_image: String,
    pub secret_resync: Duration,
    pub metrics: Arc<Metrics>,
    pub inline_keys: InlineKeyCache,
    /// What tenants may ask for.
    pub policy: Policy,
    /// Consecutive failures per `namespace/name`, for per-object exponential backoff
    /// (kube-runtime has none of its own).
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        fetcher: Fetcher,
        default_image: String,
        secret_resync: Duration,
        metrics: Arc<Metrics>,
        policy: Policy,
    ) -> Self {
        Self {
            client,
            recorder,
            fetcher,
            default_image,
            secret_resync,
            metrics,
            inline_keys: InlineKeyCache::default(),
            policy,
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
        let inline = self.inline_keys.retain(live);
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
