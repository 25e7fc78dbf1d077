//! The controller's Prometheus metrics: counters and a duration histogram on atomics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    inline_key_entries: AtomicU64,
    backoff_entries: AtomicU64,
    watch_errors: AtomicU64,
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let secs = took.as_secs_f64();
        for (bucket, le) in self.buckets.iter().zip(BUCKETS) {
            if secs <= le {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sizes of the per-resource maps, as the last sweep left them.
    pub fn per_resource_entries(&self, inline_keys: usize, backoff: usize) {
        self.inline_key_entries.store(
            u64::try_from(inline_keys).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.backoff_entries.store(
            u64::try_from(backoff).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn watch_failed(&self) {
        self.watch_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self, reason: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(reason.to_string()).or_default() += 1;
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP wca_reconciles_total Reconciliations run.\n# TYPE wca_reconciles_total counter"
        );
        let _ = writeln!(
            out,
            "wca_reconciles_total {}",
            self.reconciles.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wca_reconcile_errors_total Failed reconciliations by reason.\n# TYPE wca_reconcile_errors_total counter"
        );
        if let Ok(errors) = self.errors.lock() {
            for (reason, n) in errors.iter() {
                let _ = writeln!(out, "wca_reconcile_errors_total{{reason=\"{reason}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP wca_reconcile_duration_seconds Time per reconciliation.\n# TYPE wca_reconcile_duration_seconds histogram"
        );
        for (bucket, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "wca_reconcile_duration_seconds_bucket{{le=\"{le}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "wca_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "wca_reconcile_duration_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "wca_reconcile_duration_seconds_count {count}");
        for (name, help, value) in [
            (
                "wca_inline_key_cache_entries",
                "Resources whose mode-Inline keys are held in memory.",
                &self.inline_key_entries,
            ),
            (
                "wca_backoff_entries",
                "Resources with a failure backoff in memory.",
                &self.backoff_entries,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP wca_watch_errors_total Errors of the watches feeding the controller.\n# TYPE wca_watch_errors_total counter"
        );
        let _ = writeln!(
            out,
            "wca_watch_errors_total {}",
            self.watch_errors.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(3));
        m.reconciled(Duration::from_millis(300));
        m.failed("InvalidSpec");
        let text = m.render();
        assert!(text.contains("wca_reconciles_total 2"));
        assert!(text.contains("wca_reconcile_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("wca_reconcile_duration_seconds_bucket{le=\"0.5\"} 2"));
        assert!(text.contains("wca_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("wca_reconcile_errors_total{reason=\"InvalidSpec\"} 1"));
    }
}
