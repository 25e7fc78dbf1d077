//! Running the real mirror on loopback, and the small helpers the proxy tests share.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workos_convex_auth::jwks::{UpstreamRules, parse_network};
use workos_convex_auth::mirror::{MirrorConfig, MirrorError, MirrorSpec, serve};

/// Reads a file of `tests/fixtures/keys`.
pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The upstream rules the tests need: the fake WorkOS serves plain http on loopback, which the
/// defaults refuse.
pub fn loopback_rules() -> UpstreamRules {
    UpstreamRules {
        allow_http: true,
        allowed_networks: vec![parse_network("127.0.0.0/8").expect("CIDR")],
        ..UpstreamRules::default()
    }
}

/// A JWKS document made of the given public JWK fixtures (e.g. `rsa-a.jwk.json`).
pub fn jwks_of(files: &[&str]) -> String {
    let keys: Vec<serde_json::Value> = files
        .iter()
        .map(|f| serde_json::from_str(&fixture(f)).expect("fixture JSON"))
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A mirror served by `workos_convex_auth::mirror::serve` on `127.0.0.1:0`; stopped on drop.
pub struct Mirror {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), MirrorError>>>,
}

impl Mirror {
    /// Mirrors each `(path, upstream URL)` with short test intervals and a 1 s total timeout.
    pub async fn start(mirrors: &[(&str, String)], refresh: Duration, max_stale: Duration) -> Self {
        let specs = mirrors
            .iter()
            .map(|(path, url)| {
                format!("{path}={url}")
                    .parse::<MirrorSpec>()
                    .expect("mirror spec")
            })
            .collect();
        let mut config = MirrorConfig::new(specs, refresh, max_stale).expect("config");
        config.limits.connect_timeout = Duration::from_millis(500);
        config.limits.total_timeout = Duration::from_secs(1);
        config.limits.max_body_bytes = 64 * 1024;
        config.upstream = loopback_rules();
        Self::start_with(config).await
    }

    /// Mirrors `path` from the upstream at `base` (`base` + `path`), and waits until it is ready.
    pub async fn ready(base: &str, path: &str, refresh: Duration, max_stale: Duration) -> Self {
        let mirror = Self::start(&[(path, format!("{base}{path}"))], refresh, max_stale).await;
        mirror.wait_ready().await;
        mirror
    }

    /// Runs an explicit configuration.
    pub async fn start_with(config: MirrorConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mirror");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET `path` on the mirror.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(self.url(path))
            .send()
            .await
            .expect("request to the mirror")
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body")
    }

    /// Value of the sample `name{labels}` (exact text before the value), or panics.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        metric_value(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let addr = self.addr;
        eventually("the mirror to become ready", || async move {
            client()
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }

    /// Stops the server gracefully and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), MirrorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stops in time")
            .expect("task")
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The value of one sample line in Prometheus text.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The body of a GET of `url` (panics on a failed request: tests only).
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A plain HTTP client (no pooling surprises between tests).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Polls `condition` every 20 ms for up to 10 s (a generous bound), then panics with `what`.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
