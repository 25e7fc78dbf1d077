//! The fault matrix: a misbehaving upstream never gets a bad document served, the last good one
//! stays until max-stale, and the metrics say what happened.

use super::support;

use std::time::Duration;

use reqwest::header::ETAG;
use serde_json::json;
use support::mirror::{Mirror, eventually, fixture, jwks_of, metric_value};
use wca_test_harness::fake_workos::{FakeWorkos, Fault};

const CLIENT: &str = "/sso/jwks/client_01TESTCLIENT";
const HOUR: Duration = Duration::from_secs(3600);
const FAST: Duration = Duration::from_millis(200);

fn fetches(outcome: &str) -> String {
    format!("wca_proxy_upstream_fetches_total{{path=\"{CLIENT}\",outcome=\"{outcome}\"}}")
}

async fn start(fake: &FakeWorkos, refresh: Duration, max_stale: Duration) -> Mirror {
    Mirror::start(
        &[(CLIENT, format!("{}{CLIENT}", fake.base_url()))],
        refresh,
        max_stale,
    )
    .await
}

/// Waits until the mirror has counted at least `n` fetches with `outcome`.
async fn wait_for_outcome(mirror: &Mirror, outcome: &str, n: f64) {
    let sample = fetches(outcome);
    eventually(&format!("{n} fetches with outcome {outcome}"), || async {
        metric_value(&mirror.metrics().await, &sample).is_some_and(|v| v >= n)
    })
    .await;
}

/// A private RSA key as some misconfigured upstream might publish it (values are dummies).
fn private_rsa_document() -> String {
    let mut key: serde_json::Value = serde_json::from_str(&fixture("rsa-b.jwk.json")).unwrap();
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        key[member] = json!("UFJJVkFURQ");
    }
    json!({ "keys": [key] }).to_string()
}

/// With a good document held, `fault` must be counted as `outcome` and change nothing served.
async fn keeps_last_good_document(fault: Fault, outcome: &str) {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let mirror = start(&fake, FAST, HOUR).await;
    mirror.wait_ready().await;
    let before = mirror.get(CLIENT).await;
    let etag = before.headers()[ETAG].clone();
    let body = before.bytes().await.unwrap();

    fake.set_fault(fault.clone());
    wait_for_outcome(&mirror, outcome, 2.0).await;

    let during = mirror.get(CLIENT).await;
    assert_eq!(during.status(), 200, "{fault:?}");
    assert_eq!(during.headers()[ETAG], etag, "{fault:?}");
    let served = during.bytes().await.unwrap();
    assert_eq!(served, body, "{fault:?} must not change what is served");
    for private in ["\"d\"", "\"p\"", "\"k\"", "HS256", "PRIVATE"] {
        assert!(
            !String::from_utf8_lossy(&served).contains(private),
            "{fault:?} leaked {private}"
        );
    }
    assert_eq!(
        mirror.get("/readyz").await.status(),
        200,
        "{fault:?}: still ready within max-stale"
    );
    assert_eq!(mirror.metric(&fetches("fresh")).await, 1.0, "{fault:?}");
    assert_eq!(
        mirror
            .metric(&format!("wca_proxy_document_keys{{path=\"{CLIENT}\"}}"))
            .await,
        1.0
    );
}

macro_rules! fault_cases {
    ($($name:ident: $fault:expr => $outcome:literal,)*) => {$(
        #[tokio::test]
        async fn $name() {
            keeps_last_good_document($fault, $outcome).await;
        }
    )*};
}

fault_cases! {
    server_error_5xx: Fault::Status(502) => "status",
    not_found_from_upstream: Fault::Status(404) => "status",
    timeout_before_headers: Fault::Delay(Duration::from_secs(3)) => "timeout",
    slow_body: Fault::SlowBody(Duration::from_secs(3)) => "timeout",
    body_over_the_cap: Fault::HugeBody(1024 * 1024) => "too_large",
    non_json: Fault::NotJson => "invalid",
    empty_keys: Fault::Body(r#"{"keys":[]}"#.into()) => "invalid",
    not_a_key_set: Fault::Body(r#"{"error":"oops"}"#.into()) => "invalid",
    key_without_kid: Fault::Body(r#"{"keys":[{"kty":"RSA","alg":"RS256","n":"AQAB","e":"AQAB"}]}"#.into()) => "invalid",
    hs256_oct_key: Fault::Body(r#"{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}]}"#.into()) => "invalid",
    private_rsa_members: Fault::Body(private_rsa_document()) => "invalid",
    wrong_content_type: Fault::ContentType("text/html".into()) => "content_type",
    wrong_charset: Fault::ContentType("application/json; charset=iso-8859-1".into()) => "content_type",
    redirect_loop: Fault::RedirectLoop => "redirects",
}

#[tokio::test]
async fn upstream_down_at_start_up_serves_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mirror = Mirror::start(&[(CLIENT, format!("http://{closed}{CLIENT}"))], FAST, HOUR).await;
    wait_for_outcome(&mirror, "connect", 2.0).await;
    let response = mirror.get(CLIENT).await;
    assert_eq!(response.status(), 503);
    assert!(!response.text().await.unwrap().contains("keys"));
    assert_eq!(mirror.get("/readyz").await.status(), 503);
    assert_eq!(
        mirror.get("/healthz").await.status(),
        200,
        "up, just not ready"
    );
    let metrics = mirror.metrics().await;
    assert_not_ready_serving_nothing(&metrics);
    assert_eq!(
        metric_value(
            &metrics,
            &format!("wca_proxy_document_keys{{path=\"{CLIENT}\"}}")
        ),
        Some(0.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            &format!("wca_proxy_requests_total{{path=\"{CLIENT}\",status=\"503\"}}")
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn invalid_document_at_start_up_is_never_served() {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    fake.set_fault(Fault::Body(private_rsa_document()));
    let mirror = start(&fake, FAST, HOUR).await;
    wait_for_outcome(&mirror, "invalid", 2.0).await;
    assert_eq!(mirror.get(CLIENT).await.status(), 503);
    assert_eq!(mirror.get("/readyz").await.status(), 503);
}

#[tokio::test]
async fn recovers_and_serves_the_new_document() {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    fake.set_fault(Fault::Status(503));
    let mirror = start(&fake, FAST, HOUR).await;
    wait_for_outcome(&mirror, "status", 2.0).await;
    assert_eq!(mirror.get(CLIENT).await.status(), 503);

    fake.set_document(jwks_of(&["rsa-b.jwk.json"]));
    fake.set_fault(Fault::None);
    mirror.wait_ready().await;
    let body = mirror.get(CLIENT).await.text().await.unwrap();
    assert!(
        body.contains("test-rsa-b") && !body.contains("test-rsa-a"),
        "{body}"
    );
    assert_eq!(mirror.metric(&fetches("fresh")).await, 1.0);
}

#[tokio::test]
async fn rotated_key_is_served_within_one_refresh() {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let mirror = start(&fake, Duration::from_millis(500), HOUR).await;
    mirror.wait_ready().await;
    let old_etag = mirror.get(CLIENT).await.headers()[ETAG].clone();

    let hits_at_rotation = fake.hits(CLIENT);
    fake.set_document(jwks_of(&["rsa-a.jwk.json", "rsa-b.jwk.json"]));
    eventually("the rotated set to be served", || async {
        mirror
            .get(CLIENT)
            .await
            .text()
            .await
            .unwrap()
            .contains("test-rsa-b")
    })
    .await;
    // One refresh after the rotation (plus at most one already in flight) was enough.
    assert!(
        fake.hits(CLIENT) - hits_at_rotation <= 2,
        "took {} fetches",
        fake.hits(CLIENT) - hits_at_rotation
    );
    let response = mirror.get(CLIENT).await;
    assert_ne!(
        response.headers()[ETAG],
        old_etag,
        "a new document gets a new ETag"
    );
    assert_eq!(mirror.metric(&fetches("fresh")).await, 2.0);
    assert_eq!(
        mirror
            .metric(&format!("wca_proxy_document_keys{{path=\"{CLIENT}\"}}"))
            .await,
        2.0
    );
}

#[tokio::test]
async fn past_max_stale_answers_503_then_recovers() {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let mirror = start(&fake, FAST, Duration::from_secs(2)).await;
    mirror.wait_ready().await;

    fake.set_fault(Fault::Status(500));
    wait_for_outcome(&mirror, "status", 1.0).await;
    eventually("the document to be withheld", || async {
        mirror.get(CLIENT).await.status() == 503
    })
    .await;
    assert_eq!(mirror.get("/readyz").await.status(), 503);
    let metrics = mirror.metrics().await;
    assert_not_ready_serving_nothing(&metrics);
    let age = metric_value(
        &metrics,
        &format!("wca_proxy_document_age_seconds{{path=\"{CLIENT}\"}}"),
    )
    .unwrap();
    assert!(age > 2.0, "age {age}");

    fake.set_fault(Fault::None);
    mirror.wait_ready().await;
    assert_eq!(mirror.get(CLIENT).await.status(), 200);
}

/// The mirror's metrics say it is not ready and serves no document.
#[track_caller]
fn assert_not_ready_serving_nothing(metrics: &str) {
    assert_eq!(metric_value(metrics, "wca_proxy_ready"), Some(0.0));
    assert_eq!(
        metric_value(
            metrics,
            &format!("wca_proxy_document_served{{path=\"{CLIENT}\"}}")
        ),
        Some(0.0)
    );
}
