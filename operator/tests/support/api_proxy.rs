//! A forwarding proxy in front of the real kube-apiserver that a test can turn into a fault:
//! the operator's kubeconfig points at the proxy (plain HTTP on loopback, as `kubectl proxy`),
//! and the proxy forwards each request with its own credentials, so the audit log names the
//! ServiceAccount the proxy was given.
//!
//! The faults follow what the real apiserver and network do:
//! - [`Fault::Cut`]: the network drops the operator's connections (every open stream fails,
//!   every new request has its connection closed without an answer), as a REJECT firewall rule.
//! - [`Fault::Status`]: 429 or 503 with `Retry-After: 1` and a `Status` body, as API Priority and
//!   Fairness answers an overloaded apiserver (`TooManyRequests`) and as an apiserver that
//!   cannot reach etcd answers (`ServiceUnavailable`).
//! - [`Fault::ExpireWatches`]: every open watch ends and a new one gets the `ERROR` event with a
//!   410 `Expired` Status, as the apiserver answers a watch from a compacted resourceVersion
//!   (the client must list again: Kubernetes API concepts, "Efficient detection of changes").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

type ProxyBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the proxy does to the requests it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Cut,
    Status(u16),
    ExpireWatches,
    /// Writes to Leases answer 503; every other request, Lease reads included, goes through
    /// (a leader whose renewals fail while it still sees the cluster).
    FailLeaseWrites,
}

pub struct ApiProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    injected: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiProxy {
    /// Listens on a free loopback port and forwards to the apiserver `upstream` talks to.
    pub async fn start(upstream: kube::Client) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (fault, _) = watch::channel(Fault::None);
        let injected = Arc::new(AtomicUsize::new(0));
        let (faults, counter) = (fault.clone(), injected.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, faults, counter) =
                    (upstream.clone(), faults.subscribe(), counter.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(request, upstream.clone(), faults.clone(), counter.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            fault,
            injected,
            task,
        }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// How many requests got a fault instead of the apiserver's answer.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::Relaxed)
    }

    /// A kubeconfig for the proxy: plain HTTP, no credentials (the proxy adds its own).
    pub fn kubeconfig(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}-via-proxy.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster: {{server: 'http://{}'}}\nusers:\n- name: anonymous\n  user: {{}}\ncontexts:\n- name: proxy\n  context: {{cluster: proxy, user: anonymous, namespace: default}}\ncurrent-context: proxy\n",
            self.addr
        );
        std::fs::write(&path, text).expect("write the proxy kubeconfig");
        path
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_watch(request: &Request<Incoming>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

fn status_body(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

fn full(text: String) -> ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

async fn forward(
    request: Request<Incoming>,
    upstream: kube::Client,
    faults: watch::Receiver<Fault>,
    injected: Arc<AtomicUsize>,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let fault = *faults.borrow();
    let refused = |text: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            text.to_string(),
        ))
    };
    match fault {
        Fault::Cut => {
            injected.fetch_add(1, Ordering::Relaxed);
            // hyper closes the connection without an answer.
            return refused("cut");
        }
        Fault::Status(code) => {
            injected.fetch_add(1, Ordering::Relaxed);
            let reason = if code == 429 {
                "TooManyRequests"
            } else {
                "ServiceUnavailable"
            };
            let body = status_body(code, reason, "injected by the test's proxy");
            return Ok(Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .header("retry-after", "1")
                .body(full(body))
                .expect("static response"));
        }
        Fault::ExpireWatches if is_watch(&request) => {
            injected.fetch_add(1, Ordering::Relaxed);
            let event = format!(
                "{{\"type\":\"ERROR\",\"object\":{}}}\n",
                status_body(
                    410,
                    "Expired",
                    "too old resource version (injected by the test's proxy)"
                )
            );
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(full(event))
                .expect("static response"));
        }
        Fault::FailLeaseWrites
            if request.uri().path().contains("/leases")
                && request.method() != hyper::Method::GET =>
        {
            injected.fetch_add(1, Ordering::Relaxed);
            let body = status_body(503, "ServiceUnavailable", "injected by the test's proxy");
            return Ok(Response::builder()
                .status(503)
                .header("content-type", "application/json")
                .body(full(body))
                .expect("static response"));
        }
        Fault::None | Fault::ExpireWatches | Fault::FailLeaseWrites => {}
    }

    let watching = is_watch(&request);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return refused("request body");
    };
    let mut outgoing = Request::builder().method(parts.method).uri(parts.uri);
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::AUTHORIZATION {
            outgoing = outgoing.header(name, value);
        }
    }
    let outgoing = outgoing
        .body(kube::client::Body::from(bytes.to_vec()))
        .expect("a request rebuilt from a valid one");
    let Ok(response) = upstream.send(outgoing).await else {
        return refused("upstream");
    };
    let (mut parts, body) = response.into_parts();
    // The client may have decoded the body already.
    parts.headers.remove(hyper::header::CONTENT_ENCODING);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    // Frames go through until a fault that ends open streams: a cut fails them (the connection
    // breaks), an expiry ends watches cleanly (the apiserver closing a watch).
    let frames = futures::stream::unfold(
        (body, faults, false),
        move |(mut body, mut faults, done)| async move {
            if done {
                return None;
            }
            loop {
                tokio::select! {
                    frame = body.frame() => {
                        let frame: Result<Frame<Bytes>, std::io::Error> = match frame? {
                            Ok(frame) => Ok(frame),
                            Err(error) => Err(std::io::Error::other(error.to_string())),
                        };
                        return Some((frame, (body, faults, false)));
                    }
                    changed = faults.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        let now = *faults.borrow_and_update();
                        match now {
                            Fault::Cut => {
                                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                                return Some((Err(cut), (body, faults, true)));
                            }
                            Fault::ExpireWatches if watching => return None,
                            Fault::None
                            | Fault::Status(_)
                            | Fault::ExpireWatches
                            | Fault::FailLeaseWrites => continue,
                        }
                    }
                }
            }
        },
    )
    .boxed();
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed_unsync(StreamBody::new(frames)),
    ))
}
