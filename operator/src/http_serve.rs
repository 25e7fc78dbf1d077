//! Serving an axum router with bounds on what a client can hold: the JWKS mirror and the
//! controller's admin server both face clients they do not control (anything that can reach the
//! Service), so neither may keep a connection, or memory, on a client's say-so.
//!
//! `axum::serve` runs hyper without a timer: no header-read timeout, no idle limit, no
//! connection cap. Here each connection is HTTP/1.1 only (both servers sit behind a Service or
//! an Ingress, which speak HTTP/1.1 to their backends; refusing the HTTP/2 preface keeps one
//! protocol's limits to reason about) with:
//! - hyper's header-read timeout, driven by [`TokioTimer`]. hyper starts it whenever it waits for
//!   a request head: at accept, and again after each response on a keep-alive connection, so it
//!   also closes keep-alive connections that stay idle that long;
//! - a cap on the size of a request head (start line and headers), answered with 431;
//! - a cap on open connections. At the cap, a new connection takes the place of the one that
//!   has waited longest without a request in progress (a head that is still arriving, or an idle
//!   keep-alive connection): a client that dribbles headers over many connections cannot hold
//!   every slot against well-formed requests. Only when every connection is in a request is the
//!   newcomer closed at once (never queued). Both are counted;
//! - graceful shutdown: stop accepting, let in-flight requests finish, close idle connections.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// hyper refuses a read buffer smaller than this (`max_buf_size` panics below it).
const HYPER_MIN_BUF_SIZE: usize = 8192;

/// How long to pause accepting after an accept error that is not about one connection (e.g.
/// out of file descriptors), so the loop does not spin; the same pause `axum::serve` makes.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The listen backlog both servers ask for; the kernel caps it at `net.core.somaxconn` (4096 by
/// default since Linux 5.4). tokio's `TcpListener::bind` asks for 128, which a burst of new
/// connections overflows while the server is busy: the kernel then drops handshakes, and a client
/// whose handshake was dropped after it had sent data gets a reset. The queue is the kernel's
/// memory and bounded by this number; `max_connections` still bounds what the server holds.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener for one of the servers, with [`LISTEN_BACKLOG`] and `SO_REUSEADDR` (so a
/// restarted server can bind while old connections are in TIME_WAIT, as `std` does).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The bounds one server enforces on its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    header_read_timeout: Duration,
    max_connections: usize,
    max_header_bytes: usize,
}

/// Limits a server refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A zero header-read timeout would close every connection before its first request.
    #[error("the header read timeout must be more than zero")]
    ZeroHeaderReadTimeout,
    /// No connection could ever be served.
    #[error("the connection limit must be at least 1")]
    ZeroMaxConnections,
    /// Too small for an ordinary request head.
    #[error("the header size limit must be at least {min} bytes, got {got}")]
    HeaderBytesTooSmall {
        /// The smallest accepted value.
        min: usize,
        /// The value given.
        got: usize,
    },
}

impl ServerLimits {
    /// The smallest accepted `max_header_bytes`: a browser's or a proxy's ordinary request head
    /// fits, a header-stuffing one does not.
    pub const MIN_HEADER_BYTES: usize = 1024;

    /// Checks and builds the limits.
    pub fn new(
        header_read_timeout: Duration,
        max_connections: usize,
        max_header_bytes: usize,
    ) -> Result<Self, LimitsError> {
        if header_read_timeout.is_zero() {
            return Err(LimitsError::ZeroHeaderReadTimeout);
        }
        if max_connections == 0 {
            return Err(LimitsError::ZeroMaxConnections);
        }
        if max_header_bytes < Self::MIN_HEADER_BYTES {
            return Err(LimitsError::HeaderBytesTooSmall {
                min: Self::MIN_HEADER_BYTES,
                got: max_header_bytes,
            });
        }
        Ok(Self {
            header_read_timeout,
            max_connections,
            max_header_bytes,
        })
    }

    /// Time a client has to send a complete request head, counted from accept or from the end of
    /// the previous response.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// Most connections open at once.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Largest request head (start line and headers) in bytes.
    pub fn max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }
}

/// Counters a server keeps about its connections, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    header_timeouts: AtomicU64,
}

impl ConnectionStats {
    /// Connections being served now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at accept because `max_connections` were open.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed to make room for a new one at the cap (waiting, not in a request).
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Connections closed because a request head did not arrive in time.
    pub fn header_timeouts(&self) -> u64 {
        self.header_timeouts.load(Ordering::Relaxed)
    }
}

/// The OpenMetrics text `/metrics` serves for `registry`.
pub fn metrics_text(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// The connection metrics of a server, read from its [`ConnectionStats`] at each scrape (a
/// collector registered once): `<prefix>_connections_open`, `<prefix>_connections_refused_total`,
/// `<prefix>_connections_evicted_total`, `<prefix>_connections_header_timeouts_total`.
#[derive(Debug)]
pub struct ConnectionMetrics {
    prefix: &'static str,
    stats: Arc<ConnectionStats>,
}

impl ConnectionMetrics {
    pub fn new(prefix: &'static str, stats: Arc<ConnectionStats>) -> Self {
        Self { prefix, stats }
    }
}

impl Collector for ConnectionMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let open = ConstGauge::new(i64::try_from(self.stats.open()).unwrap_or(i64::MAX));
        let name = format!("{}_connections_open", self.prefix);
        open.encode(encoder.encode_descriptor(
            &name,
            "HTTP connections being served",
            None,
            open.metric_type(),
        )?)?;
        for (suffix, help, value) in [
            (
                "refused",
                "Connections closed at accept because the connection limit was reached",
                self.stats.refused(),
            ),
            (
                "evicted",
                "Connections without a request in progress closed to make room for a new one at the connection cap",
                self.stats.evicted(),
            ),
            (
                "header_timeouts",
                "Connections closed because a request head did not arrive within the header read timeout",
                self.stats.header_timeouts(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let name = format!("{}_connections_{suffix}", self.prefix);
            counter.encode(encoder.encode_descriptor(
                &name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// How long the accept loop waits for an evicted connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_millis(200);

/// One open connection as the accept loop sees it: since when it has waited without a request
/// in progress (0: a request is in progress), and how to close it.
#[derive(Debug, Default)]
struct Tracked {
    /// Nanoseconds since the server started, plus one; 0 while a request is in progress.
    waiting_since: AtomicU64,
    evict: tokio::sync::Notify,
}

/// The open connections, for choosing which one makes room.
#[derive(Debug, Default)]
struct OpenConnections {
    started: Option<std::time::Instant>,
    next_id: AtomicU64,
    open: std::sync::Mutex<std::collections::HashMap<u64, Arc<Tracked>>>,
}

impl OpenConnections {
    fn new() -> Self {
        Self {
            started: Some(std::time::Instant::now()),
            ..Self::default()
        }
    }

    fn now(&self) -> u64 {
        let elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
        u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn open(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked::default());
        tracked.waiting_since.store(self.now(), Ordering::Relaxed);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, Arc::clone(&tracked));
        }
        (id, tracked)
    }

    fn close(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Tells the connection that has waited longest without a request in progress to close;
    /// false when every connection is in a request.
    fn evict_longest_waiting(&self) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let victim = open
            .iter()
            .filter_map(|(id, t)| {
                let since = t.waiting_since.load(Ordering::Relaxed);
                (since != 0).then_some((since, *id))
            })
            .min();
        match victim.and_then(|(_, id)| open.remove(&id)) {
            Some(tracked) => {
                tracked.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Decrements the open-connection gauge however the connection task ends.
struct OpenConnection(Arc<ConnectionStats>);

impl OpenConnection {
    fn new(stats: Arc<ConnectionStats>) -> Self {
        stats.open.fetch_add(1, Ordering::Relaxed);
        Self(stats)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish and returns once every connection is closed (at
/// most a header-read timeout later for a client still sending a head).
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let builder = http1_builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let registry = Arc::new(OpenConnections::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = admit(&slots, &registry, &stats).await else {
            continue; // refused: dropping the stream closes it
        };
        prepare(&stream);
        let open = OpenConnection::new(Arc::clone(&stats));
        let (id, tracked) = registry.open();
        let service = TowerToHyperService::new(tracking(
            router.clone(),
            Arc::clone(&tracked),
            Arc::clone(&registry),
        ));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(error) = result {
                    if error.is_timeout() {
                        open.0.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    tracing::debug!(%error, "connection ended with an error");
                },
                // Dropping the connection closes it.
                () = tracked.evict.notified() => {}
            }
            registry.close(id);
            drop(open);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// HTTP/1 only, every connection's head bounded in time and size.
fn http1_builder(limits: &ServerLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        // The read buffer never needs to grow past one request head: requests here have no
        // body worth buffering, and a smaller cap bounds the memory of each connection.
        .max_buf_size(limits.max_header_bytes.max(HYPER_MIN_BUF_SIZE));
    builder
}

/// A connection slot for a new connection, or `None` (refused, counted) when every slot is
/// taken and none can be freed.
async fn admit(
    slots: &Arc<Semaphore>,
    registry: &OpenConnections,
    stats: &ConnectionStats,
) -> Option<OwnedSemaphorePermit> {
    match Arc::clone(slots).try_acquire_owned() {
        Ok(slot) => Some(slot),
        // At the cap: the connection waiting longest without a request makes room. Never a
        // queue: a queue of waiting connections would be exactly the unbounded memory this
        // module exists to prevent.
        Err(_) if registry.evict_longest_waiting() => {
            stats.evicted.fetch_add(1, Ordering::Relaxed);
            match tokio::time::timeout(EVICTION_WAIT, Arc::clone(slots).acquire_owned()).await {
                Ok(Ok(slot)) => Some(slot),
                _ => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }
        Err(_) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// `router`, marking the connection as in a request from a request's head until its response
/// (the body is small and written at once), and as waiting again after.
fn tracking(
    router: Router,
    tracked: Arc<Tracked>,
    registry: Arc<OpenConnections>,
) -> impl tower::Service<
    axum::extract::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone {
    tower::service_fn(
        move |request: axum::extract::Request<hyper::body::Incoming>| {
            let (router, tracked, registry) =
                (router.clone(), Arc::clone(&tracked), Arc::clone(&registry));
            async move {
                tracked.waiting_since.store(0, Ordering::Relaxed);
                let response =
                    tower::ServiceExt::oneshot(router, request.map(axum::body::Body::new)).await;
                tracked
                    .waiting_since
                    .store(registry.now(), Ordering::Relaxed);
                response
            }
        },
    )
}

/// Socket options for one accepted connection.
fn prepare(stream: &TcpStream) {
    // Responses are one small write; Nagle would only add latency.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

/// Errors about one connection (reset before accept) are skipped; others, such as running out
/// of file descriptors, pause accepting for a moment instead of spinning.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; pausing");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_limits_that_cannot_serve() {
        let s5 = Duration::from_secs(5);
        assert_eq!(
            ServerLimits::new(Duration::ZERO, 1, 16_384),
            Err(LimitsError::ZeroHeaderReadTimeout)
        );
        assert_eq!(
            ServerLimits::new(s5, 0, 16_384),
            Err(LimitsError::ZeroMaxConnections)
        );
        assert_eq!(
            ServerLimits::new(s5, 1, 100),
            Err(LimitsError::HeaderBytesTooSmall {
                min: 1024,
                got: 100
            })
        );
        let limits = ServerLimits::new(s5, 7, 2048).expect("valid");
        assert_eq!(
            (
                limits.header_read_timeout(),
                limits.max_connections(),
                limits.max_header_bytes()
            ),
            (s5, 7, 2048)
        );
    }

    #[tokio::test]
    async fn binds_an_ephemeral_port_on_both_families() {
        let v4 = bind(([127, 0, 0, 1], 0).into()).expect("bind 127.0.0.1:0");
        assert_ne!(v4.local_addr().expect("v4 addr").port(), 0);
        // A second bind of the same port fails: reuseaddr does not mean sharing a live listener.
        assert!(bind(v4.local_addr().expect("v4 addr")).is_err());
        if let Ok(v6) = bind((std::net::Ipv6Addr::LOCALHOST, 0).into()) {
            assert!(v6.local_addr().expect("v6 addr").is_ipv6());
        }
    }

    /// The kernel queues up to the backlog of finished handshakes for a listener that has not
    /// accepted them; past it, it drops SYNs and the connect waits. Nobody accepts here, so with
    /// tokio's default of 128 the 130th connect would never finish (the timeout only bounds that
    /// failure).
    #[tokio::test]
    async fn a_burst_beyond_tokios_default_backlog_is_queued_not_dropped() {
        let listener = bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let burst = 300;
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..burst {
            connects.spawn(tokio::time::timeout(
                Duration::from_secs(10),
                TcpStream::connect(addr),
            ));
        }
        let mut held = Vec::new();
        while let Some(connect) = connects.join_next().await {
            match connect.expect("connect task") {
                Ok(Ok(stream)) => held.push(stream),
                other => panic!(
                    "connect {} of {burst} to a listener that accepts nothing: {other:?} \
                     (net.core.somaxconn caps the backlog: {:?})",
                    held.len() + 1,
                    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
                ),
            }
        }
        assert_eq!(held.len(), burst);
        drop(listener);
    }

    #[test]
    fn renders_the_counters() {
        let stats = Arc::new(ConnectionStats::default());
        let open = OpenConnection::new(Arc::clone(&stats));
        stats.refused.fetch_add(3, Ordering::Relaxed);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ConnectionMetrics::new(
            "wca_x",
            Arc::clone(&stats),
        )));
        let text = metrics_text(&registry);
        assert!(text.contains("\nwca_x_connections_open 1\n"), "{text}");
        assert!(
            text.contains("\nwca_x_connections_refused_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("\nwca_x_connections_header_timeouts_total 0\n"),
            "{text}"
        );
        drop(open);
        assert_eq!(stats.open(), 0);
        let again = metrics_text(&registry);
        assert!(
            again.contains("\nwca_x_connections_open 0\n"),
            "read at each scrape: {again}"
        );
    }
}
