//! The operator's Prometheus metrics (prometheus-client, OpenMetrics text).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::leader::Leadership;
use crate::api::WorkOSConvexAuth;
use crate::http_serve::{ConnectionMetrics, ConnectionStats, metrics_text};
use crate::reconcile::Reason;

const BUCKETS: [f64; 9] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    /// A [`Reason`]: a closed set.
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadyLabel {
    /// The Ready condition's status: `True`, `False`, or `Unknown` (also: no Ready condition
    /// yet, or an object that cannot be decoded).
    ready: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    /// Not `namespace`/`name`: Prometheus' target labels of the operator pod have those names,
    /// and a clash would rename ours to `exported_namespace`.
    resource_namespace: String,
    resource_name: String,
}

/// The resources as the watch cache holds them, by readiness: what `status` says now, as
/// written by the leader and read back by every replica (so a follower reports the same).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Resources whose Ready condition is True, False, Unknown.
    pub counts: [i64; 3],
    /// `(namespace, name, since)` of each resource that is not Ready; `since` (Unix seconds)
    /// is when its Ready condition left True, or its creation if it has none yet.
    pub not_ready: Vec<(String, String, i64)>,
}

const READY_STATUSES: [&str; 3] = ["True", "False", "Unknown"];

impl Readiness {
    /// Tallies the watch cache: decoded resources, and the metadata of undecodable ones
    /// (never Ready: counted Unknown, not Ready since their creation).
    pub fn of<'a>(
        resources: impl IntoIterator<Item = &'a WorkOSConvexAuth>,
        undecodable: impl IntoIterator<Item = &'a ObjectMeta>,
    ) -> Self {
        let mut out = Self::default();
        for resource in resources {
            let ready = resource
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            let status = ready.map_or("Unknown", |c| c.status.as_str());
            let index = READY_STATUSES
                .iter()
                .position(|s| *s == status)
                .unwrap_or(2);
            out.counts[index] += 1;
            if index != 0 {
                let since = ready
                    .map(|c| c.last_transition_time.0.as_second())
                    .or_else(|| created(&resource.metadata))
                    .unwrap_or(0);
                out.not_ready.push(identity(&resource.metadata, since));
            }
        }
        for meta in undecodable {
            out.counts[2] += 1;
            out.not_ready
                .push(identity(meta, created(meta).unwrap_or(0)));
        }
        out
    }
}

fn created(meta: &ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_second())
}

fn identity(meta: &ObjectMeta, since: i64) -> (String, String, i64) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
        since,
    )
}

/// The operator's metrics, registered once: counters kept while running, the readiness
/// families refilled by each housekeeping sweep, and collectors that read the leadership and
/// the admin server's connections at each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    errors: Family<ReasonLabel, Counter>,
    duration: Histogram,
    inline_key_entries: Gauge,
    backoff_entries: Gauge,
    watch_errors: Counter,
    by_readiness: Family<ReadyLabel, Gauge>,
    /// Cleared by each sweep: a deleted (or now Ready) resource's series goes with it.
    not_ready_since: Family<ResourceLabels, Gauge>,
    /// Held while a sweep refills the readiness families, so a scrape never sees them half full.
    refill: Mutex<()>,
}

/// `wca_leader` and `wca_leader_transitions_total`, read from the leadership at each scrape.
#[derive(Debug)]
struct LeadershipMetrics(Arc<Leadership>);

impl Collector for LeadershipMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let leader = ConstGauge::new(i64::from(self.0.is_leader()));
        leader.encode(encoder.encode_descriptor(
            "wca_leader",
            "Whether this replica leads (reconciles): 1, or follows: 0",
            None,
            leader.metric_type(),
        )?)?;
        let transitions = ConstCounter::new(self.0.transitions());
        transitions.encode(encoder.encode_descriptor(
            "wca_leader_transitions",
            "Times this replica became or stopped being the leader",
            None,
            transitions.metric_type(),
        )?)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Arc::new(Leadership::always()), Arc::default())
    }
}

impl Metrics {
    pub fn new(leadership: Arc<Leadership>, connections: Arc<ConnectionStats>) -> Self {
        let metrics = Self {
            registry: Registry::default(),
            reconciles: Counter::default(),
            errors: Family::default(),
            duration: Histogram::new(BUCKETS),
            inline_key_entries: Gauge::default(),
            backoff_entries: Gauge::default(),
            watch_errors: Counter::default(),
            by_readiness: Family::default(),
            not_ready_since: Family::default(),
            refill: Mutex::default(),
        };
        metrics.registered(leadership, connections)
    }

    /// Registers every family once; they are shared handles, so the registry reads their
    /// current values at each scrape.
    fn registered(
        mut self,
        leadership: Arc<Leadership>,
        connections: Arc<ConnectionStats>,
    ) -> Self {
        let r = &mut self.registry;
        r.register(
            "wca_reconciles",
            "Reconciliations run",
            self.reconciles.clone(),
        );
        r.register(
            "wca_reconcile_errors",
            "Failed reconciliations by reason",
            self.errors.clone(),
        );
        r.register(
            "wca_reconcile_duration_seconds",
            "Time per reconciliation",
            self.duration.clone(),
        );
        r.register(
            "wca_inline_key_cache_entries",
            "Resources whose mode-Inline keys are held in memory",
            self.inline_key_entries.clone(),
        );
        r.register(
            "wca_backoff_entries",
            "Resources with a failure backoff in memory",
            self.backoff_entries.clone(),
        );
        r.register(
            "wca_watch_errors",
            "Errors of the watches feeding the controller",
            self.watch_errors.clone(),
        );
        r.register_collector(Box::new(LeadershipMetrics(leadership)));
        r.register(
            "wca_resources",
            "WorkOSConvexAuth resources in the watch cache, by the status of their Ready condition",
            self.by_readiness.clone(),
        );
        r.register(
            "wca_resource_not_ready_since_seconds",
            "Unix time since which a resource has not been Ready (its Ready condition's last transition, or its creation); present only while it is not Ready",
            self.not_ready_since.clone(),
        );
        r.register_collector(Box::new(ConnectionMetrics::new("wca_admin", connections)));
        for status in READY_STATUSES {
            self.by_readiness
                .get_or_create(&ReadyLabel { ready: status })
                .set(0);
        }
        self
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

    /// The resources by readiness, as the last sweep found them.
    pub fn resources(&self, readiness: Readiness) {
        let _refill = self.refill.lock();
        for (status, count) in READY_STATUSES.iter().zip(readiness.counts) {
            self.by_readiness
                .get_or_create(&ReadyLabel { ready: status })
                .set(count);
        }
        self.not_ready_since.clear();
        for (namespace, name, at) in readiness.not_ready {
            self.not_ready_since
                .get_or_create(&ResourceLabels {
                    resource_namespace: namespace,
                    resource_name: name,
                })
                .set(at);
        }
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

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let _refill = self.refill.lock();
        metrics_text(&self.registry)
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

    fn resource(namespace: &str, name: &str, ready: Option<(&str, i64)>) -> WorkOSConvexAuth {
        use crate::api::{Condition, WorkOSConvexAuthStatus};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        use k8s_openapi::jiff::Timestamp;
        let time = |s: i64| Time(Timestamp::from_second(s).expect("a valid test time"));
        let mut r: WorkOSConvexAuth = serde_json::from_value(serde_json::json!({
            "apiVersion": "workos-convex.io/v1alpha1",
            "kind": "WorkOSConvexAuth",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"clientId": "client_01JEXAMPLE0000000000000000"},
        }))
        .expect("a valid test resource");
        r.metadata.creation_timestamp = Some(time(1_000));
        r.status = ready.map(|(status, at)| WorkOSConvexAuthStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: status.into(),
                reason: "Test".into(),
                message: String::new(),
                last_transition_time: time(at),
                observed_generation: None,
            }],
            ..Default::default()
        });
        r
    }

    #[test]
    fn readiness_counts_and_names_what_is_not_ready_and_forgets_deleted_resources() {
        let ok = resource("a", "ok", Some(("True", 2_000)));
        let broken = resource("a", "broken", Some(("False", 3_000)));
        let fresh = resource("b", "fresh", None);
        let undecodable = ObjectMeta {
            namespace: Some("b".into()),
            name: Some("garbled".into()),
            ..Default::default()
        };
        let readiness = Readiness::of([&ok, &broken, &fresh], [&undecodable]);
        assert_eq!(readiness.counts, [1, 1, 2]);
        let m = Metrics::default();
        m.resources(readiness);
        let text = m.render();
        for line in [
            "wca_resources{ready=\"True\"} 1",
            "wca_resources{ready=\"False\"} 1",
            "wca_resources{ready=\"Unknown\"} 2",
            // Since the Ready condition's last transition; else since creation.
            "wca_resource_not_ready_since_seconds{resource_namespace=\"a\",resource_name=\"broken\"} 3000",
            "wca_resource_not_ready_since_seconds{resource_namespace=\"b\",resource_name=\"fresh\"} 1000",
            "wca_resource_not_ready_since_seconds{resource_namespace=\"b\",resource_name=\"garbled\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("resource_name=\"ok\""), "{text}");

        // The next sweep no longer sees `broken` (deleted): its series is gone.
        m.resources(Readiness::of([&ok, &fresh], []));
        let text = m.render();
        assert!(!text.contains("broken"), "{text}");
        assert!(!text.contains("garbled"), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "wca_resources{ready=\"False\"} 0"),
            "{text}"
        );
    }
}
