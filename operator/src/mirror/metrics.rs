//! Prometheus metrics of the mirror (prometheus-client, OpenMetrics text): counters with label
//! sets fixed at start-up (the configured paths, closed sets of statuses and outcomes, so no
//! client can grow them), and the documents' state read at scrape time.

use std::sync::Arc;

use axum::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::cache::Freshness;
use crate::http_serve::{ConnectionMetrics, ConnectionStats, metrics_text};
use crate::jwks::FetchError;

/// The Content-Type of `/metrics` (both servers).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Statuses the mirror answers with; anything else is counted as `other`.
const STATUSES: [&str; 6] = ["200", "304", "404", "405", "503", "other"];

/// Outcomes of one upstream fetch, as the `outcome` label, in the order of [`Outcome`].
const OUTCOMES: [&str; 13] = [
    "fresh",
    "unchanged",
    "not_modified",
    "setup",
    "connect",
    "timeout",
    "redirects",
    "status",
    "too_large",
    "content_type",
    "invalid",
    "transport",
    "refused",
];

/// The outcome of one fetch; an index into [`OUTCOMES`]. The match below is exhaustive, so a
/// new kind of fetch error cannot go uncounted.
fn outcome_index(result: FetchResult<'_>) -> usize {
    match result {
        FetchResult::Fresh => 0,
        FetchResult::Unchanged => 1,
        FetchResult::NotModified => 2,
        FetchResult::Failed(error) => match error {
            FetchError::Setup(_) => 3,
            FetchError::Connect(_) => 4,
            FetchError::Timeout => 5,
            FetchError::Redirects => 6,
            FetchError::Status(_) => 7,
            FetchError::TooLarge { .. } => 8,
            FetchError::ContentType(_) => 9,
            FetchError::Invalid(_) => 10,
            FetchError::Transport(_) => 11,
            FetchError::Refused(_) => 12,
        },
    }
}

/// Which route answered a request; unknown paths share one label so clients cannot grow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The n-th configured mirror.
    Mirror(usize),
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// Anything else (404).
    Other,
}

/// Outcome of a fetch as far as metrics are concerned.
#[derive(Debug, Clone, Copy)]
pub enum FetchResult<'a> {
    /// A new document was stored.
    Fresh,
    /// A 200 with the same bytes as the held document.
    Unchanged,
    /// A 304.
    NotModified,
    /// A failure.
    Failed(&'a FetchError),
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    path: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    path: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: String,
}

/// What the metrics need to know about a mirror's document at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct DocumentView<'a> {
    /// The configured path.
    pub path: &'a str,
    /// Whether it is served, and its age.
    pub freshness: Freshness,
    /// Keys in the held document (0 if none).
    pub keys: usize,
}

/// All metrics of one mirror process, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The held documents, as the last scrape found them (refilled under `scrape`).
    ages: Family<PathLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    served: Family<PathLabel, Gauge>,
    keys: Family<PathLabel, Gauge>,
    ready: Gauge,
    /// One scrape at a time refills the document gauges and encodes.
    scrape: std::sync::Mutex<()>,
    mirrors: usize,
    requests: Family<RequestLabels, Counter>,
    fetches: Family<FetchLabels, Counter>,
    /// `request_counters[route_index][status]`: handles into `requests`, so counting a request
    /// is one atomic add (no lock, no allocation).
    request_counters: Vec<[Counter; STATUSES.len()]>,
    /// `fetch_counters[mirror][outcome]`: handles into `fetches`.
    fetch_counters: Vec<[Counter; OUTCOMES.len()]>,
}

impl Metrics {
    /// Counters for the given mirror paths (in configuration order), every series created up
    /// front: each is there from the first scrape, and none can be added by a client. The
    /// request series are the mirror paths, then `/healthz`, `/readyz`, `/metrics`, `other`.
    pub fn new(mirror_paths: &[String], connections: Arc<ConnectionStats>) -> Self {
        let mut paths = mirror_paths.to_vec();
        paths.extend(["/healthz", "/readyz", "/metrics", "other"].map(String::from));
        let requests = Family::<RequestLabels, Counter>::default();
        let request_counters = paths
            .iter()
            .map(|path| {
                STATUSES.map(|status| {
                    requests
                        .get_or_create(&RequestLabels {
                            path: path.clone(),
                            status,
                        })
                        .clone()
                })
            })
            .collect();
        let fetches = Family::<FetchLabels, Counter>::default();
        let fetch_counters = mirror_paths
            .iter()
            .map(|path| {
                OUTCOMES.map(|outcome| {
                    fetches
                        .get_or_create(&FetchLabels {
                            path: path.clone(),
                            outcome,
                        })
                        .clone()
                })
            })
            .collect();
        let metrics = Self {
            registry: Registry::default(),
            ages: Family::default(),
            served: Family::default(),
            keys: Family::default(),
            ready: Gauge::default(),
            scrape: std::sync::Mutex::default(),
            mirrors: mirror_paths.len(),
            requests,
            fetches,
            request_counters,
            fetch_counters,
        };
        metrics.registered(connections)
    }

    /// Registers every family once: shared handles, read at each scrape.
    fn registered(mut self, connections: Arc<ConnectionStats>) -> Self {
        let r = &mut self.registry;
        r.register(
            "wca_proxy_requests",
            "Requests answered, by path and status",
            self.requests.clone(),
        );
        r.register(
            "wca_proxy_upstream_fetches",
            "Upstream fetches, by mirror path and outcome",
            self.fetches.clone(),
        );
        r.register(
            "wca_proxy_document_age_seconds",
            "Time since the upstream last confirmed the held document (absent when none is held)",
            self.ages.clone(),
        );
        r.register(
            "wca_proxy_document_served",
            "Whether the document is being served (1) or withheld or missing (0)",
            self.served.clone(),
        );
        r.register(
            "wca_proxy_document_keys",
            "Keys in the held document",
            self.keys.clone(),
        );
        r.register(
            "wca_proxy_ready",
            "Whether every mirrored document is servable",
            self.ready.clone(),
        );
        r.register_collector(Box::new(ConnectionMetrics::new("wca_proxy", connections)));
        self
    }

    fn route_index(&self, route: Route) -> usize {
        match route {
            Route::Mirror(i) => i.min(self.mirrors),
            Route::Healthz => self.mirrors,
            Route::Readyz => self.mirrors + 1,
            Route::Metrics => self.mirrors + 2,
            Route::Other => self.mirrors + 3,
        }
    }

    fn status_index(status: StatusCode) -> usize {
        match status.as_u16() {
            200 => 0,
            304 => 1,
            404 => 2,
            405 => 3,
            503 => 4,
            _ => 5,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, status: StatusCode) {
        if let Some(counter) = self
            .request_counters
            .get(self.route_index(route))
            .and_then(|c| c.get(Self::status_index(status)))
        {
            counter.inc();
        }
    }

    /// Counts one upstream fetch of mirror `mirror`.
    pub fn fetch(&self, mirror: usize, result: FetchResult<'_>) {
        if let Some(counter) = self
            .fetch_counters
            .get(mirror)
            .and_then(|c| c.get(outcome_index(result)))
        {
            counter.inc();
        }
    }

    /// Current count of `requests_total{path,status}`; for tests and logs.
    pub fn requests_total(&self, route: Route, status: &str) -> u64 {
        let Some(i) = STATUSES.iter().position(|s| *s == status) else {
            return 0;
        };
        self.request_counters
            .get(self.route_index(route))
            .and_then(|c| c.get(i))
            .map_or(0, Counter::get)
    }

    /// The OpenMetrics text: the counters, and the documents and readiness as of now.
    pub fn render(&self, documents: &[DocumentView<'_>], ready: bool) -> String {
        let _one_scrape = self.scrape.lock();
        // A document no longer held loses its age series.
        self.ages.clear();
        for doc in documents {
            let label = PathLabel {
                path: doc.path.to_string(),
            };
            if let Freshness::Servable { age } | Freshness::Expired { age } = doc.freshness {
                self.ages.get_or_create(&label).set(age.as_secs_f64());
            }
            self.served.get_or_create(&label).set(i64::from(matches!(
                doc.freshness,
                Freshness::Servable { .. }
            )));
            self.keys
                .get_or_create(&label)
                .set(i64::try_from(doc.keys).unwrap_or(i64::MAX));
        }
        self.ready.set(i64::from(ready));
        metrics_text(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new(&["/sso/jwks/c".to_string()], Arc::default());
        m.request(Route::Mirror(0), StatusCode::OK);
        m.request(Route::Mirror(0), StatusCode::OK);
        m.request(Route::Other, StatusCode::NOT_FOUND);
        m.request(Route::Mirror(0), StatusCode::IM_A_TEAPOT);
        m.fetch(0, FetchResult::Fresh);
        m.fetch(0, FetchResult::Failed(&FetchError::Timeout));
        m.fetch(0, FetchResult::Failed(&FetchError::Timeout));
        m.fetch(0, FetchResult::Failed(&FetchError::Status(500)));
        assert_eq!(m.requests_total(Route::Mirror(0), "200"), 2);
        let docs = [DocumentView {
            path: "/sso/jwks/c",
            freshness: Freshness::Servable {
                age: Duration::from_millis(1500),
            },
            keys: 2,
        }];
        let text = m.render(&docs, true);
        for line in [
            "wca_proxy_requests_total{path=\"/sso/jwks/c\",status=\"200\"} 2",
            "wca_proxy_requests_total{path=\"/sso/jwks/c\",status=\"other\"} 1",
            "wca_proxy_requests_total{path=\"other\",status=\"404\"} 1",
            "wca_proxy_upstream_fetches_total{path=\"/sso/jwks/c\",outcome=\"fresh\"} 1",
            "wca_proxy_upstream_fetches_total{path=\"/sso/jwks/c\",outcome=\"timeout\"} 2",
            "wca_proxy_upstream_fetches_total{path=\"/sso/jwks/c\",outcome=\"status\"} 1",
            "wca_proxy_upstream_fetches_total{path=\"/sso/jwks/c\",outcome=\"refused\"} 0",
            "wca_proxy_document_age_seconds{path=\"/sso/jwks/c\"} 1.5",
            "wca_proxy_document_served{path=\"/sso/jwks/c\"} 1",
            "wca_proxy_document_keys{path=\"/sso/jwks/c\"} 2",
            "wca_proxy_ready 1",
            "wca_proxy_connections_open 0",
            "# TYPE wca_proxy_requests counter",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
