//! The fetcher on its own, as the controller's Inline mode uses it: fetch once, get the
//! sanitised document, its key ids and validators; revalidate; typed errors.

use super::support;

use std::time::Duration;

use support::mirror::{fixture, jwks_of, loopback_rules};
use wca_test_harness::fake_workos::{FakeWorkos, Fault};
use workos_convex_auth::jwks::{
    FetchError, FetchLimits, FetchOutcome, Fetcher, JwksError, Refused, UpstreamRules, Validators,
    parse_network,
};

const CLIENT: &str = "/sso/jwks/client_01TESTCLIENT";

fn limits() -> FetchLimits {
    FetchLimits {
        total_timeout: Duration::from_secs(1),
        max_body_bytes: 16 * 1024,
        ..FetchLimits::default()
    }
}

#[tokio::test]
async fn fetches_then_revalidates() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    fake.set_cache_control("public, max-age=120");
    let fetcher = Fetcher::new(limits(), loopback_rules()).unwrap();
    let url = format!("{}{CLIENT}", fake.base_url());

    let FetchOutcome::Fresh(fresh) = fetcher.fetch(&url, &Validators::default()).await.unwrap()
    else {
        panic!("expected a document");
    };
    assert_eq!(fresh.jwks.kids, ["test-rsa-a", "test-rsa-b"]);
    assert_eq!(fresh.max_age, Some(Duration::from_secs(120)));
    assert_eq!(fresh.validators.etag.as_deref(), Some("\"v1\""));

    let again = fetcher.fetch(&url, &fresh.validators).await.unwrap();
    assert_eq!(
        again,
        FetchOutcome::NotModified {
            max_age: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(fake.not_modified(), 1);

    fake.set_document(jwks_of(&["rsa-b.jwk.json"]));
    let FetchOutcome::Fresh(rotated) = fetcher.fetch(&url, &fresh.validators).await.unwrap() else {
        panic!("a changed document comes back whole");
    };
    assert_eq!(rotated.jwks.kids, ["test-rsa-b"]);
}

#[tokio::test]
async fn reports_what_is_wrong() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let fetcher = Fetcher::new(limits(), loopback_rules()).unwrap();
    let url = format!("{}{CLIENT}", fake.base_url());
    let none = Validators::default();
    let fetch = || fetcher.fetch(&url, &none);

    fake.set_fault(Fault::Status(500));
    assert_eq!(fetch().await, Err(FetchError::Status(500)));
    fake.set_fault(Fault::HugeBody(100 * 1024));
    assert_eq!(
        fetch().await,
        Err(FetchError::TooLarge { limit: 16 * 1024 })
    );
    fake.set_fault(Fault::Delay(Duration::from_secs(3)));
    assert_eq!(fetch().await, Err(FetchError::Timeout));
    fake.set_fault(Fault::RedirectLoop);
    assert_eq!(fetch().await, Err(FetchError::Redirects));
    fake.set_fault(Fault::Body(
        r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#.into(),
    ));
    let err = fetch().await.unwrap_err();
    assert_eq!(
        err,
        FetchError::Invalid(JwksError::Symmetric {
            index: 0,
            kid: "h".into()
        })
    );
    assert_eq!(
        err.to_string(),
        "keys[0] (kid \"h\") has kty oct: symmetric keys are refused"
    );
    assert_eq!(err.kind(), "invalid");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = fetcher
        .fetch(&format!("http://{closed}{CLIENT}"), &Validators::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
}

/// Server-side request forgery: with the default rules nothing reaches loopback, private,
/// link-local or metadata addresses, plain http, or another origin by redirect. Host names are
/// mapped with the fixed-answer table (`--upstream-resolve`), so no query leaves the machine;
/// the fake upstream proves no request reached it.
#[tokio::test]
async fn refuses_internal_addresses_http_and_cross_origin_redirects() {
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let port = fake.addr().port();
    let none = Validators::default();
    let mapped = |ip: &str| UpstreamRules {
        allow_http: true,
        resolve: [("upstream.test".to_string(), vec![ip.parse().expect("IP")])].into(),
        ..UpstreamRules::default()
    };

    let strict = Fetcher::new(limits(), UpstreamRules::default()).unwrap();
    let err = strict
        .fetch(&format!("{}{CLIENT}", fake.base_url()), &none)
        .await
        .unwrap_err();
    assert_eq!(err, FetchError::Refused(Refused::Scheme("http".into())));
    assert_eq!(err.kind(), "refused");

    let http_only = Fetcher::new(
        limits(),
        UpstreamRules {
            allow_http: true,
            ..UpstreamRules::default()
        },
    )
    .unwrap();
    let err = http_only
        .fetch(&format!("http://127.0.0.1:{port}{CLIENT}"), &none)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FetchError::Refused(Refused::Address("127.0.0.1".parse().unwrap()))
    );

    for ip in ["127.0.0.1", "169.254.169.254", "10.1.2.3", "::1"] {
        let fetcher = Fetcher::new(limits(), mapped(ip)).unwrap();
        let err = fetcher
            .fetch(&format!("http://upstream.test:{port}{CLIENT}"), &none)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            FetchError::Refused(Refused::Address(ip.parse().unwrap())),
            "{ip}"
        );
        assert!(
            err.to_string().contains("--allowed-upstream-networks"),
            "{err}"
        );
    }
    assert_eq!(
        fake.total_hits(),
        0,
        "no refused request reached the upstream"
    );

    // Allowed by the admin: the same host name now works.
    let mut allowed = mapped("127.0.0.1");
    allowed.allowed_networks = vec![parse_network("127.0.0.0/8").unwrap()];
    let fetcher = Fetcher::new(limits(), allowed).unwrap();
    let url = format!("http://upstream.test:{port}{CLIENT}");
    assert!(fetcher.fetch(&url, &none).await.is_ok());
    assert_eq!(fake.total_hits(), 1);

    // A redirect to another origin (here: the same address under another name) is not followed.
    let other = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    fake.set_fault(Fault::RedirectTo(format!(
        "http://localhost:{}{CLIENT}",
        other.addr().port()
    )));
    let err = fetcher.fetch(&url, &none).await.unwrap_err();
    assert_eq!(
        err,
        FetchError::Refused(Refused::CrossOriginRedirect(format!(
            "http://localhost:{}",
            other.addr().port()
        )))
    );
    assert_eq!(other.total_hits(), 0, "the redirect target saw no request");
}
