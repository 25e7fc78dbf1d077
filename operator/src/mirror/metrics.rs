//! Prometheus metrics of the mirror: fixed label sets, plain atomics, text rendered on scrape.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;

use super::cache::Freshness;
use crate::jwks::FetchError;

/// Statuses the mirror answers with; anything else is counted as `other`.
const STATUSES: [&str; 6] = ["200", "304", "404", "405", "503", "other"];

/// Outcomes of one upstream fetch, as the `outcome` label.
const OUTCOMES: [&str; 12] = [
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
];

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

impl FetchResult<'_> {
    fn label(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Unchanged => "unchanged",
            Self::NotModified => "not_modified",
            Self::Failed(e) => e.kind(),
        }
    }
}

#[derive(Debug)]
struct Counters<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Counters<N> {
    fn add(&self, index: usize) {
        if let Some(c) = self.0.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn get(&self, index: usize) -> u64 {
        self.0.get(index).map_or(0, |c| c.load(Ordering::Relaxed))
    }
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

/// All counters of one mirror process.
#[derive(Debug)]
pub struct Metrics {
    paths: Vec<String>,
    requests: Vec<Counters<{ STATUSES.len() }>>,
    fetches: Vec<Counters<{ OUTCOMES.len() }>>,
}

impl Metrics {
    /// Counters for the given mirror paths (in configuration order).
    pub fn new(mirror_paths: &[String]) -> Self {
        let mut paths = mirror_paths.to_vec();
        paths.extend(["/healthz", "/readyz", "/metrics", "other"].map(String::from));
        let requests = paths.iter().map(|_| Counters::default()).collect();
        let fetches = mirror_paths.iter().map(|_| Counters::default()).collect();
        Self {
            paths,
            requests,
            fetches,
        }
    }

    fn route_index(&self, route: Route) -> usize {
        let mirrors = self.fetches.len();
        match route {
            Route::Mirror(i) => i.min(mirrors),
            Route::Healthz => mirrors,
            Route::Readyz => mirrors + 1,
            Route::Metrics => mirrors + 2,
            Route::Other => mirrors + 3,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, status: StatusCode) {
        let label = match status.as_u16() {
            200 => 0,
            304 => 1,
            404 => 2,
            405 => 3,
            503 => 4,
            _ => 5,
        };
        if let Some(counters) = self.requests.get(self.route_index(route)) {
            counters.add(label);
        }
    }

    /// Counts one upstream fetch of mirror `mirror`.
    pub fn fetch(&self, mirror: usize, result: FetchResult<'_>) {
        let label = result.label();
        if let (Some(counters), Some(i)) = (
            self.fetches.get(mirror),
            OUTCOMES.iter().position(|o| *o == label),
        ) {
            counters.add(i);
        }
    }

    /// Current count of `requests_total{path,status}`; for tests and logs.
    pub fn requests_total(&self, route: Route, status: &str) -> u64 {
        let i = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        self.requests
            .get(self.route_index(route))
            .map_or(0, |c| c.get(i))
    }

    /// Renders the Prometheus text exposition format (0.0.4).
    pub fn render(&self, documents: &[DocumentView<'_>], ready: bool) -> String {
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP wca_proxy_requests_total Requests answered, by path and status."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_requests_total counter");
        for (path, counters) in self.paths.iter().zip(&self.requests) {
            for (i, status) in STATUSES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "wca_proxy_requests_total{{path=\"{}\",status=\"{status}\"}} {}",
                    escape(path),
                    counters.get(i)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP wca_proxy_upstream_fetches_total Upstream fetches, by mirror path and outcome."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_upstream_fetches_total counter");
        for (path, counters) in self.paths.iter().zip(&self.fetches) {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "wca_proxy_upstream_fetches_total{{path=\"{}\",outcome=\"{outcome}\"}} {}",
                    escape(path),
                    counters.get(i)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP wca_proxy_document_age_seconds Time since the upstream last confirmed the held document (absent when none is held)."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_document_age_seconds gauge");
        for doc in documents {
            if let Freshness::Servable { age } | Freshness::Expired { age } = doc.freshness {
                let _ = writeln!(
                    out,
                    "wca_proxy_document_age_seconds{{path=\"{}\"}} {:.3}",
                    escape(doc.path),
                    age.as_secs_f64()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP wca_proxy_document_served Whether the document is being served (1) or withheld or missing (0)."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_document_served gauge");
        for doc in documents {
            let served = u8::from(matches!(doc.freshness, Freshness::Servable { .. }));
            let _ = writeln!(
                out,
                "wca_proxy_document_served{{path=\"{}\"}} {served}",
                escape(doc.path)
            );
        }
        let _ = writeln!(
            out,
            "# HELP wca_proxy_document_keys Keys in the held document."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_document_keys gauge");
        for doc in documents {
            let _ = writeln!(
                out,
                "wca_proxy_document_keys{{path=\"{}\"}} {}",
                escape(doc.path),
                doc.keys
            );
        }
        let _ = writeln!(
            out,
            "# HELP wca_proxy_ready Whether every mirrored document is servable."
        );
        let _ = writeln!(out, "# TYPE wca_proxy_ready gauge");
        let _ = writeln!(out, "wca_proxy_ready {}", u8::from(ready));
        out
    }
}

/// Label values are configured paths (restricted characters), but escape anyway.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new(&["/sso/jwks/c".to_string()]);
        m.request(Route::Mirror(0), StatusCode::OK);
        m.request(Route::Mirror(0), StatusCode::OK);
        m.request(Route::Other, StatusCode::NOT_FOUND);
        m.request(Route::Mirror(0), StatusCode::IM_A_TEAPOT);
        m.fetch(0, FetchResult::Fresh);
        m.fetch(0, FetchResult::Failed(&FetchError::Timeout));
        m.fetch(0, FetchResult::Failed(&FetchError::Timeout));
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
            "wca_proxy_document_age_seconds{path=\"/sso/jwks/c\"} 1.500",
            "wca_proxy_document_served{path=\"/sso/jwks/c\"} 1",
            "wca_proxy_document_keys{path=\"/sso/jwks/c\"} 2",
            "wca_proxy_ready 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
