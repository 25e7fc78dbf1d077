//! The admin server: `/healthz` (up), `/readyz` (caches synced, watches healthy), `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::metrics::Metrics;
use crate::http_serve::ConnectionStats;

#[derive(Clone)]
pub struct AdminState {
    pub ready: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    /// Kept by the HTTP server; `metrics` shows them.
    pub connections: Arc<ConnectionStats>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<AdminState>| async move {
                if s.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: caches not synced yet, or a watch is failing",
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<AdminState>| async move {
                (
                    [("content-type", crate::mirror::metrics::CONTENT_TYPE)],
                    s.metrics.render(),
                )
            }),
        )
        .with_state(state)
}
