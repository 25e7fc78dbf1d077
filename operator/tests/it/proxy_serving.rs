//! The mirror against a well-behaved fake WorkOS: what it serves, how, and what it never does.

use super::support;

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::Value;
use support::mirror::{Mirror, client, fixture};
use wca_test_harness::fake_workos::FakeWorkos;

const CLIENT: &str = "/sso/jwks/client_01TESTCLIENT";
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn serves_the_upstream_keys_as_application_json() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let mirror = Mirror::start(
        &[
            (CLIENT, format!("{}{CLIENT}", fake.base_url())),
            ("/oauth2/jwks", format!("{}/oauth2/jwks", fake.base_url())),
        ],
        Duration::from_secs(30),
        HOUR,
    )
    .await;
    mirror.wait_ready().await;

    for path in [CLIENT, "/oauth2/jwks"] {
        let response = mirror.get(path).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(headers[CACHE_CONTROL], "public, max-age=30");
        let etag = headers[ETAG].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "strong ETag: {etag}"
        );
        let served: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let upstream: Value = serde_json::from_str(&fixture("jwks-rsa.json")).unwrap();
        assert_eq!(served, upstream);

        let revalidated = client()
            .get(mirror.url(path))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304);
        assert_eq!(revalidated.headers()[ETAG], etag.as_str());
        assert!(revalidated.bytes().await.unwrap().is_empty());

        let stale_tag = client()
            .get(mirror.url(path))
            .header(IF_NONE_MATCH, "\"other\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale_tag.status(), 200);

        let head = client().head(mirror.url(path)).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()[CONTENT_TYPE], "application/json");
        let length: usize = head.headers()[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(length > 100);
        assert!(head.bytes().await.unwrap().is_empty());
    }

    // GET, GET with a non-matching tag, HEAD.
    assert_eq!(
        mirror
            .metric(&format!(
                "wca_proxy_requests_total{{path=\"{CLIENT}\",status=\"200\"}}"
            ))
            .await,
        3.0
    );
    assert_eq!(
        mirror
            .metric(&format!(
                "wca_proxy_requests_total{{path=\"{CLIENT}\",status=\"304\"}}"
            ))
            .await,
        1.0
    );
    assert_eq!(
        mirror
            .metric(&format!(
                "wca_proxy_upstream_fetches_total{{path=\"{CLIENT}\",outcome=\"fresh\"}}"
            ))
            .await,
        1.0
    );
    assert_eq!(
        mirror
            .metric(&format!("wca_proxy_document_keys{{path=\"{CLIENT}\"}}"))
            .await,
        2.0
    );
    assert_eq!(
        mirror
            .metric("wca_proxy_document_served{path=\"/oauth2/jwks\"}")
            .await,
        1.0
    );
    assert!(
        mirror
            .metric(&format!(
                "wca_proxy_document_age_seconds{{path=\"{CLIENT}\"}}"
            ))
            .await
            < 30.0
    );
    assert_eq!(mirror.metric("wca_proxy_ready").await, 1.0);
    let health = mirror.get("/healthz").await;
    assert_eq!(health.status(), 200);
    mirror.stop().await.expect("graceful stop");
}

#[tokio::test]
async fn revalidates_with_conditional_requests() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let mirror = Mirror::ready(&fake.base_url(), CLIENT, Duration::from_millis(200), HOUR).await;
    let etag = mirror.get(CLIENT).await.headers()[ETAG].clone();

    support::mirror::eventually("two 304s from the upstream", || async {
        fake.not_modified() >= 2
    })
    .await;
    let sample =
        format!("wca_proxy_upstream_fetches_total{{path=\"{CLIENT}\",outcome=\"not_modified\"}}");
    assert!(mirror.metric(&sample).await >= 2.0);
    let response = mirror.get(CLIENT).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[ETAG],
        etag,
        "a 304 keeps the document and its ETag"
    );
}

#[tokio::test]
async fn other_paths_are_404_and_never_reach_the_upstream() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    // A long refresh: after the start-up fetch, nothing but a client request could reach the fake.
    let mirror = Mirror::ready(&fake.base_url(), CLIENT, Duration::from_secs(600), HOUR).await;
    assert_eq!(fake.total_hits(), 1);

    let others = [
        "/",
        "/sso/jwks/client_OTHER",
        "/sso/jwks/client_01TESTCLIENT/",
        "/sso/jwks/client_01TESTCLIENT/x",
        "/oauth2/jwks",
        "/sso/jwks",
        "/user_management/jwks",
        "/https://api.workos.com/sso/jwks/client_OTHER",
        "/..%2Fsso%2Fjwks%2Fclient_OTHER",
    ];
    for path in others {
        let response = mirror.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let absolute = client()
        .get(mirror.url("/"))
        .header("Host", "api.workos.com")
        .send()
        .await
        .unwrap();
    assert_eq!(absolute.status(), 404);
    let post = client()
        .post(mirror.url(CLIENT))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);

    assert_eq!(
        fake.total_hits(),
        1,
        "client requests must never cause an upstream fetch"
    );
    assert_eq!(fake.hits("/sso/jwks/client_OTHER"), 0);
    let not_found = mirror
        .metric("wca_proxy_requests_total{path=\"other\",status=\"404\"}")
        .await;
    assert_eq!(not_found, (others.len() + 1) as f64);
    assert_eq!(
        mirror
            .metric(&format!(
                "wca_proxy_requests_total{{path=\"{CLIENT}\",status=\"405\"}}"
            ))
            .await,
        1.0
    );
}

#[tokio::test]
async fn ready_only_once_every_mirror_has_a_document() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mirror = Mirror::start(
        &[
            (CLIENT, format!("{}{CLIENT}", fake.base_url())),
            ("/oauth2/jwks", format!("http://{closed}/oauth2/jwks")),
        ],
        Duration::from_millis(200),
        HOUR,
    )
    .await;
    support::mirror::eventually("the first mirror to serve", || async {
        mirror.get(CLIENT).await.status() == 200
    })
    .await;
    let ready = mirror.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert!(
        ready
            .text()
            .await
            .unwrap()
            .contains("/oauth2/jwks: no valid document yet")
    );
    assert_eq!(mirror.get("/oauth2/jwks").await.status(), 503);
    assert_eq!(mirror.metric("wca_proxy_ready").await, 0.0);
}
