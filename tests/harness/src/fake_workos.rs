//! A fake WorkOS JWKS upstream for tests and benchmarks: in process (`FakeWorkos::start`), or
//! as the `fake-workos` binary, which the end-to-end tests run as a pod on the local node.
//!
//! It follows WorkOS's documented JWKS endpoint ("Get JWKS", `GET /sso/jwks/:clientId`,
//! <https://workos.com/docs/reference/sso/json-web-key-set>, and the session-token reference
//! <https://workos.com/docs/reference/authkit/session-tokens>; facts in
//! `shared/reference/convex-workos.md`): `/sso/jwks/<clientId>` and the AuthKit domain's
//! `/oauth2/jwks` answer `{"keys": [...]}` as `application/jwk-set+json`, with an `ETag` and
//! `Cache-Control`, `304` to a matching `If-None-Match`, and 404 elsewhere. Faults are scriptable,
//! and every request is counted per path, so a test can prove what did (or did not) reach the
//! upstream. The binary takes the same faults over HTTP ([`control_router`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What the fake does instead of answering normally. Applies to every JWKS path until cleared.
/// As JSON (the binary's `PUT /_fake/fault`): `"None"`, `{"Status": 503}`,
/// `{"Delay": {"secs": 3, "nanos": 0}}`, `{"ContentType": "text/html"}`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer with this status and a small HTML body.
    Status(u16),
    /// Wait this long before answering (connect succeeds, headers are late).
    Delay(Duration),
    /// Send headers and the first bytes of the document, then stall this long before the rest.
    SlowBody(Duration),
    /// A 200 of this many bytes, streamed without `Content-Length`.
    HugeBody(usize),
    /// A 200 `application/jwk-set+json` whose body is not JSON.
    NotJson,
    /// The normal document under this `Content-Type`, always as a 200.
    ContentType(String),
    /// `302` to the same path, forever.
    RedirectLoop,
    /// `302` to this absolute URL (another origin, to test that it is not followed).
    RedirectTo(String),
    /// A 200 `application/jwk-set+json` with this exact body (invalid key sets, private keys...).
    Body(String),
}

#[derive(Debug)]
struct Inner {
    document: String,
    version: u64,
    fault: Fault,
    cache_control: String,
    hits: HashMap<String, usize>,
    not_modified: usize,
    first_answer: Option<Instant>,
}

impl Inner {
    fn new(document: String) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            document,
            version: 1,
            fault: Fault::None,
            cache_control: "max-age=300".into(),
            hits: HashMap::new(),
            not_modified: 0,
            first_answer: None,
        }))
    }
}

type SharedInner = Arc<Mutex<Inner>>;

fn locked(inner: &SharedInner) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// The control endpoints of the `fake-workos` binary, under `/_fake/` (no WorkOS path starts
/// so): `PUT /_fake/fault` (a [`Fault`] as JSON), `PUT /_fake/document` (a new JWKS: a key
/// rotation), `GET /_fake/hits` (requests per path, as a JSON object).
fn control_router() -> Router<SharedInner> {
    Router::new()
        .route(
            "/_fake/fault",
            put(
                |State(inner): State<SharedInner>, axum::Json(fault): axum::Json<Fault>| async move {
                    locked(&inner).fault = fault;
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/_fake/document",
            put(|State(inner): State<SharedInner>, body: String| async move {
                let mut inner = locked(&inner);
                inner.document = body;
                inner.version += 1;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_fake/hits",
            get(|State(inner): State<SharedInner>| async move {
                axum::Json(locked(&inner).hits.clone())
            }),
        )
}

/// A running fake WorkOS; stops when dropped.
#[derive(Debug)]
pub struct FakeWorkos {
    addr: SocketAddr,
    inner: SharedInner,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeWorkos {
    /// Starts on `127.0.0.1:0` serving `document` (a JWKS, as JSON text).
    pub async fn start(document: impl Into<String>) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("loopback address"), document).await
    }

    /// Starts on `addr` serving `document`.
    pub async fn start_on(addr: SocketAddr, document: impl Into<String>) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the fake WorkOS");
        let inner = Inner::new(document.into());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        Self::serve(listener, app, inner)
    }

    /// Starts on `addr` serving `document`, plus the control endpoints of [`control_router`].
    pub async fn start_controllable(addr: SocketAddr, document: impl Into<String>) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the fake WorkOS");
        let inner = Inner::new(document.into());
        let app = control_router()
            .fallback(handle)
            .with_state(Arc::clone(&inner));
        Self::serve(listener, app, inner)
    }

    fn serve(listener: TcpListener, app: Router, inner: SharedInner) -> Self {
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            inner,
            stop: Some(stop),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        locked(&self.inner)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the served document (a key rotation); the `ETag` changes with it.
    pub fn set_document(&self, document: impl Into<String>) {
        let mut inner = self.lock();
        inner.document = document.into();
        inner.version += 1;
    }

    /// Sets the fault for the following requests (`Fault::None` to recover).
    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// Sets the `Cache-Control` header of normal answers.
    pub fn set_cache_control(&self, value: impl Into<String>) {
        self.lock().cache_control = value.into();
    }

    /// Requests received for `path`, whatever the answer.
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_hits(&self) -> usize {
        self.lock().hits.values().sum()
    }

    /// When the first normal `200` JWKS answer was handed to the server to send.
    pub fn first_answer(&self) -> Option<Instant> {
        self.lock().first_answer
    }

    /// Requests answered `304 Not Modified`.
    pub fn not_modified(&self) -> usize {
        self.lock().not_modified
    }
}

impl Drop for FakeWorkos {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn is_jwks_path(path: &str) -> bool {
    path == "/oauth2/jwks"
        || path
            .strip_prefix("/sso/jwks/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

fn respond(status: StatusCode, content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

async fn handle(State(inner): State<SharedInner>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (document, etag, fault, cache_control) = {
        let mut inner = locked(&inner);
        *inner.hits.entry(path.clone()).or_default() += 1;
        (
            inner.document.clone(),
            format!("\"v{}\"", inner.version),
            inner.fault.clone(),
            inner.cache_control.clone(),
        )
    };
    if !is_jwks_path(&path) {
        return respond(
            StatusCode::NOT_FOUND,
            "application/json",
            Body::from(r#"{"message":"Not Found"}"#),
        );
    }
    const JWK_SET: &str = "application/jwk-set+json";
    match fault {
        Fault::None | Fault::ContentType(_) => {}
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return respond(
                status,
                "text/html",
                Body::from("<html>upstream error</html>"),
            );
        }
        Fault::Delay(delay) => tokio::time::sleep(delay).await,
        Fault::SlowBody(stall) => {
            let (head, tail) = document.as_bytes().split_at(document.len() / 2);
            let (head, tail) = (head.to_vec(), tail.to_vec());
            let chunks = futures::stream::unfold(0u8, move |step| {
                let (head, tail) = (head.clone(), tail.clone());
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(head), 1)),
                        1 => {
                            tokio::time::sleep(stall).await;
                            Some((Ok(tail), 2))
                        }
                        _ => None,
                    }
                }
            });
            return respond(StatusCode::OK, JWK_SET, Body::from_stream(chunks));
        }
        Fault::HugeBody(len) => {
            let chunk = vec![b' '; 64 * 1024];
            let count = len.div_ceil(chunk.len());
            let chunks = futures::stream::iter(
                (0..count).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return respond(StatusCode::OK, JWK_SET, Body::from_stream(chunks));
        }
        Fault::NotJson => {
            return respond(StatusCode::OK, JWK_SET, Body::from("<html>not json</html>"));
        }
        Fault::RedirectLoop => {
            let mut response = respond(StatusCode::FOUND, "text/plain", Body::empty());
            if let Ok(location) = HeaderValue::from_str(&path) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return response;
        }
        Fault::RedirectTo(location) => {
            let mut response = respond(StatusCode::FOUND, "text/plain", Body::empty());
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            return response;
        }
        Fault::Body(body) => return respond(StatusCode::OK, JWK_SET, Body::from(body)),
    }
    let cache_headers = |response: &mut Response| {
        for (name, value) in [
            (header::ETAG, &etag),
            (header::CACHE_CONTROL, &cache_control),
        ] {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name, value);
            }
        }
    };
    // A content-type fault must reach the client, so it bypasses revalidation.
    let revalidating = !matches!(fault, Fault::ContentType(_));
    if revalidating && if_none_match.as_deref() == Some(etag.as_str()) {
        locked(&inner).not_modified += 1;
        let mut response = respond(StatusCode::NOT_MODIFIED, JWK_SET, Body::empty());
        response.headers_mut().remove(header::CONTENT_TYPE);
        cache_headers(&mut response);
        return response;
    }
    let content_type = match &fault {
        Fault::ContentType(content_type) => content_type.as_str(),
        _ => JWK_SET,
    };
    let mut response = respond(StatusCode::OK, content_type, Body::from(document));
    cache_headers(&mut response);
    let mut inner = locked(&inner);
    inner.first_answer.get_or_insert_with(Instant::now);
    response
}
