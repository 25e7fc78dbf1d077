//! The operator's Prometheus metrics (prometheus-client, OpenMetrics text).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::leader::Leadership;
use crate::http_serve::{ConnectionStats, metrics_text};
use crate::reconcile::Reason;

const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    /// A [`Reason`]: a closed set.
    reason: &'static str,
}

/// Counters kept while running; gauges of state owned elsewhere are read at scrape time.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Counter,
    errors: Family<ReasonLabel, Counter>,
    duration: Histogram,
    inline_key_entries: Gauge,
    backoff_entries: Gauge,
    watch_errors: Counter,
    leadership: Arc<Leadership>,
    /// The admin server's connections.
    connections: Arc<ConnectionStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Arc::new(Leadership::always()), Arc::default())
    }
}

impl Metrics {
    pub fn new(leadership: Arc<Leadership>, connections: Arc<ConnectionStats>) -> Self {
        Self {
            reconciles: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new(BUCKETS),
            inline_key_entries: Gauge::default(),
            backoff_entries: Gauge::default(),
            watch_errors: Counter::default(),
            leadership,
            connections,
        }
    }

    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Sizes of the per-resource maps, as the last sweep left them.
    pub fn per_resource_entries(&self, inline_keys: usize, backoff: usize) {
        self.inline_key_entries
            .set(i64::try_from(inline_keys).unwrap_or(i64::MAX));
        self.backoff_entries
            .set(i64::try_from(backoff).unwrap_or(i64::MAX));
    }

    pub fn watch_failed(&self) {
        self.watch_errors.inc();
    }

    pub fn failed(&self, reason: Reason) {
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// The OpenMetrics text. The metrics are shared handles: a registry built for this scrape
    /// reads their current values, next to the leadership and connections as they are now.
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        registry.register(
            "wca_reconciles",
            "Reconciliations run",
            self.reconciles.clone(),
        );
        registry.register(
            "wca_reconcile_errors",
            "Failed reconciliations by reason",
            self.errors.clone(),
        );
        registry.register(
            "wca_reconcile_duration_seconds",
            "Time per reconciliation",
            self.duration.clone(),
        );
        registry.register(
            "wca_inline_key_cache_entries",
            "Resources whose mode-Inline keys are held in memory",
            self.inline_key_entries.clone(),
        );
        registry.register(
            "wca_backoff_entries",
            "Resources with a failure backoff in memory",
            self.backoff_entries.clone(),
        );
        registry.register(
            "wca_watch_errors",
            "Errors of the watches feeding the controller",
            self.watch_errors.clone(),
        );
        registry.register(
            "wca_leader",
            "Whether this replica leads (reconciles): 1, or follows: 0",
            ConstGauge::new(i64::from(self.leadership.is_leader())),
        );
        registry.register(
            "wca_leader_transitions",
            "Times this replica became or stopped being the leader",
            ConstCounter::new(self.leadership.transitions()),
        );
        metrics_text(registry, "wca_admin", &self.connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_state() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(3));
        m.reconciled(Duration::from_millis(300));
        m.failed(Reason::InvalidSpec);
        m.per_resource_entries(4, 1);
        let text = m.render();
        for line in [
            "wca_reconciles_total 2",
            "wca_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "wca_reconcile_duration_seconds_bucket{le=\"0.5\"} 2",
            "wca_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2",
            "wca_reconcile_duration_seconds_count 2",
            "wca_reconcile_errors_total{reason=\"InvalidSpec\"} 1",
            "wca_inline_key_cache_entries 4",
            "wca_backoff_entries 1",
            "wca_watch_errors_total 0",
            "wca_leader 1",
            "wca_leader_transitions_total 0",
            "wca_admin_connections_open 0",
            "# TYPE wca_reconcile_duration_seconds histogram",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
