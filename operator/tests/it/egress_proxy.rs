//! Egress through a forward proxy (issue 24): a real proxy on loopback (Debian's tinyproxy). The
//! fetcher and the mirror process send their upstream requests through it, as its log shows, and
//! fail when it is down: there is no silent direct path. The address guard checks the proxy's
//! address (here loopback, admitted by the test's allowed networks).

use super::support;

use std::time::Duration;

use support::binary::{Admin, Binary, LOOPBACK_HTTP_UPSTREAM};
use support::mirror::{fixture, loopback_rules};
use support::process::free_port;
use wca_test_harness::eventually;
use wca_test_harness::fake_workos::FakeWorkos;
use wca_test_harness::forward_proxy::ForwardProxy;
use workos_convex_auth::jwks::{
    EgressProxy, FetchLimits, FetchOutcome, Fetcher, UpstreamRules, Validators, parse_network,
};

const CLIENT: &str = "/sso/jwks/client_01TESTCLIENT";

fn limits() -> FetchLimits {
    FetchLimits {
        total_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(500),
        ..FetchLimits::default()
    }
}

fn through(proxy: &ForwardProxy) -> UpstreamRules {
    UpstreamRules {
        egress: EgressProxy {
            http: Some(proxy.url().parse().unwrap()),
            https: Some(proxy.url().parse().unwrap()),
            no_proxy: None,
        },
        ..loopback_rules()
    }
}

#[tokio::test]
async fn a_fetch_goes_through_the_proxy_and_fails_when_it_is_down() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let mut proxy = ForwardProxy::start().unwrap();
    let fetcher = Fetcher::new(limits(), through(&proxy)).unwrap();
    let url = format!("{}{CLIENT}", fake.base_url());

    let FetchOutcome::Fresh(fresh) = fetcher.fetch(&url, &Validators::default()).await.unwrap()
    else {
        panic!("expected a document");
    };
    assert_eq!(fresh.jwks.kids, ["test-rsa-a", "test-rsa-b"]);
    let requests = proxy.requests();
    assert!(
        requests.contains(&format!("GET {url} HTTP/1.1")),
        "the proxy forwarded the fetch: {requests:?}"
    );
    assert_eq!(fake.hits(CLIENT), 1);

    proxy.stop();
    let err = fetcher
        .fetch(&url, &Validators::default())
        .await
        .expect_err("no proxy, no fetch");
    assert_eq!(fake.hits(CLIENT), 1, "nothing went around the proxy: {err}");

    // NO_PROXY sends the listed host directly, past the (stopped) proxy.
    let direct = UpstreamRules {
        egress: EgressProxy {
            no_proxy: Some("127.0.0.1".into()),
            ..through(&proxy).egress
        },
        ..loopback_rules()
    };
    let fetcher = Fetcher::new(limits(), direct).unwrap();
    fetcher.fetch(&url, &Validators::default()).await.unwrap();
    assert_eq!(fake.hits(CLIENT), 2);
}

/// Through a proxy the operator connects to the proxy only, so the address guard checks the
/// proxy's address: a proxy on loopback is refused unless its range is allowed.
#[tokio::test]
async fn the_address_guard_checks_the_proxys_address() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let proxy = ForwardProxy::start().unwrap();
    let by_name = EgressProxy {
        http: Some(
            format!(
                "http://proxy.test:{}",
                proxy.url().rsplit(':').next().unwrap()
            )
            .parse()
            .unwrap(),
        ),
        ..EgressProxy::default()
    };
    let mut resolve = std::collections::HashMap::new();
    resolve.insert("proxy.test".to_string(), vec!["127.0.0.1".parse().unwrap()]);
    let refused = UpstreamRules {
        allow_http: true,
        allowed_networks: Vec::new(),
        resolve: resolve.clone(),
        egress: by_name.clone(),
    };
    let url = format!("{}{CLIENT}", fake.base_url());
    let err = Fetcher::new(limits(), refused)
        .unwrap()
        .fetch(&url, &Validators::default())
        .await
        .expect_err("a proxy on loopback is an internal address");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert!(proxy.requests().is_empty());

    let allowed = UpstreamRules {
        allow_http: true,
        allowed_networks: vec![parse_network("127.0.0.0/8").unwrap()],
        resolve,
        egress: by_name,
    };
    Fetcher::new(limits(), allowed)
        .unwrap()
        .fetch(&url, &Validators::default())
        .await
        .unwrap();
    assert_eq!(proxy.requests().len(), 1);
}

/// The mirror process reads `HTTP_PROXY` from its environment (the operator passes its own to
/// every mirror pod): it becomes ready with keys fetched through the proxy, and without the
/// proxy it never does.
#[tokio::test]
async fn the_mirror_process_fetches_through_the_proxy_of_its_environment() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let mut proxy = ForwardProxy::start().unwrap();
    let mirror = |proxy_url: &str| {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Binary::mirror(&listen, &format!("{CLIENT}={}{CLIENT}", fake.base_url()))
            .args(LOOPBACK_HTTP_UPSTREAM)
            .env("HTTP_PROXY", proxy_url)
            .spawn();
        (child, port)
    };
    let http = reqwest::Client::new();
    let ready = |port: u16| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    };

    let (_first, port) = mirror(&proxy.url());
    eventually(Duration::from_secs(10), "the mirror ready", || ready(port))
        .await
        .unwrap();
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == &format!("GET {}{CLIENT} HTTP/1.1", fake.base_url())),
        "{requests:?}"
    );

    let url = proxy.url();
    proxy.stop();
    let hits = fake.hits(CLIENT);
    let (_second, port) = mirror(&url);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ready(port).await.is_none(), "no keys without the proxy");
    assert_eq!(fake.hits(CLIENT), hits, "nothing went around the proxy");
}

/// The controller reads the same variables at start: one that is not a proxy URL stops it with
/// a message naming the variable and the chart value (never a silent direct path).
#[test]
fn the_operator_refuses_a_proxy_variable_that_is_not_a_url() {
    let cp = wca_test_harness::ControlPlane::shared();
    let mut child = Binary::run(cp.kubeconfig())
        .admin(&Admin::free())
        .env("HTTPS_PROXY", "proxy.infra:3128")
        .stderr_piped()
        .spawn();
    let began = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(began.elapsed() < Duration::from_secs(30), "it should exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTPS_PROXY is not a proxy URL") && stderr.contains("egress.httpsProxy"),
        "{stderr}"
    );
}
