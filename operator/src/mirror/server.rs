//! The HTTP side: mirrored documents from memory, health, readiness and metrics. Nothing here
//! talks to an upstream; requests only read what the refresher stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};

use super::cache::{Freshness, Slot};
use super::cli::{MirrorConfig, MirrorSpec};
use super::metrics::{DocumentView, Metrics, Route};
use crate::http_serve::ConnectionStats;

/// Upper bound on the `max-age` we tell clients, whatever `--refresh` is: Convex caches per
/// these headers, and a rotated key should reach it within minutes.
const MAX_CLIENT_MAX_AGE: Duration = Duration::from_secs(300);

/// One configured mirror and its document.
#[derive(Debug)]
pub(crate) struct Mirror {
    pub spec: MirrorSpec,
    pub slot: Slot,
}

/// State shared by the server and the refreshers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub mirrors: Vec<Mirror>,
    pub metrics: Metrics,
    /// Kept by the HTTP server, shown on `/metrics`.
    pub connections: Arc<ConnectionStats>,
    cache_control: HeaderValue,
}

impl Shared {
    pub fn new(config: &MirrorConfig) -> Self {
        let mirrors: Vec<Mirror> = config
            .mirrors
            .iter()
            .map(|spec| Mirror {
                spec: spec.clone(),
                slot: Slot::new(config.max_stale),
            })
            .collect();
        let paths: Vec<String> = config.mirrors.iter().map(|m| m.path.clone()).collect();
        let connections = Arc::<ConnectionStats>::default();
        let max_age = config.refresh.min(MAX_CLIENT_MAX_AGE).as_secs();
        let cache_control = HeaderValue::from_str(&format!("public, max-age={max_age}"))
            .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=0"));
        Self {
            mirrors,
            metrics: Metrics::new(&paths, connections.clone()),
            connections,
            cache_control,
        }
    }

    /// Ready when every mirror holds a document within max-stale.
    pub fn ready(&self, now: Instant) -> bool {
        self.mirrors
            .iter()
            .all(|m| matches!(m.slot.freshness(now), Freshness::Servable { .. }))
    }
}

/// The router: each mirror at its own path, `/healthz`, `/readyz`, `/metrics`, 404 otherwise.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for (index, mirror) in shared.mirrors.iter().enumerate() {
        router = router.route(
            &mirror.spec.path,
            any(
                move |State(shared): State<Arc<Shared>>, request: Request| async move {
                    let response = document(&shared, index, request.method(), request.headers());
                    shared
                        .metrics
                        .request(Route::Mirror(index), response.status());
                    response
                },
            ),
        );
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

fn document(shared: &Shared, index: usize, method: &Method, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(doc) = shared
        .mirrors
        .get(index)
        .and_then(|m| m.slot.servable(Instant::now()))
    else {
        // Nothing valid, or too old to vouch for: a 503 makes clients keep what they cached.
        let mut response = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no valid JWKS document is available\n",
        );
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let not_modified = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|v| etag_matches(v, &doc.etag));
    let mut response = if not_modified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(doc.body.clone()));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    };
    let h = response.headers_mut();
    h.insert(CACHE_CONTROL, shared.cache_control.clone());
    h.insert(ETAG, doc.etag.clone());
    response
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored, `*` matches.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let (Ok(list), Ok(etag)) = (if_none_match.to_str(), etag.to_str()) else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    shared.metrics.request(Route::Healthz, StatusCode::OK);
    text(StatusCode::OK, "ok\n")
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let now = Instant::now();
    let mut body = String::new();
    for mirror in &shared.mirrors {
        let state = match mirror.slot.freshness(now) {
            Freshness::Missing => "no valid document yet".to_string(),
            Freshness::Servable { age } => format!("ok, age {}s", age.as_secs()),
            Freshness::Expired { age } => format!(
                "withheld, unconfirmed for {}s (past max-stale)",
                age.as_secs()
            ),
        };
        body.push_str(&format!("{}: {state}\n", mirror.spec.path));
    }
    let status = if shared.ready(now) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    shared.metrics.request(Route::Readyz, status);
    text(status, body)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    shared.metrics.request(Route::Metrics, StatusCode::OK);
    let now = Instant::now();
    let docs: Vec<DocumentView<'_>> = shared
        .mirrors
        .iter()
        .map(|m| DocumentView {
            path: &m.spec.path,
            freshness: m.slot.freshness(now),
            keys: m.slot.held().map_or(0, |d| d.kids.len()),
        })
        .collect();
    let text = shared.metrics.render(&docs, shared.ready(now));
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    response
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    shared.metrics.request(Route::Other, StatusCode::NOT_FOUND);
    text(StatusCode::NOT_FOUND, "not found\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let etag = HeaderValue::from_static("\"abc\"");
        for (header, expected) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abcd\"", false),
            ("abc", false),
        ] {
            assert_eq!(
                etag_matches(&HeaderValue::from_static(header), &etag),
                expected,
                "{header}"
            );
        }
    }
}
