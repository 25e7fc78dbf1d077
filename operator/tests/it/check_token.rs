//! `check-token` end to end through the library: tokens signed with the test keys, configs
//! written to disk, key sets served by a local HTTP server or embedded as `data:` URLs. Every
//! case asserts the verdict and the suggested fix, not only the exit code.

use super::support;

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::http::{Response, StatusCode, header};
use base64::Engine;
use serde_json::{Value, json};
use support::keys::{key_fixture, sign as sign_as};
use workos_convex_auth::check_token::{
    CheckTokenArgs, CheckTokenError, OutputFormat, Report, StepResult, Verdict, check_token, render,
};

const CID: &str = "client_01JEXAMPLE0000000000000000";
const OTHER: &str = "client_01JOTHER00000000000000000";
const NOW: i64 = 1_800_000_000;

/// The RSA test set plus the EC key, so algorithm cases find their kid.
fn jwks_json() -> String {
    let mut set: Value = serde_json::from_slice(&key_fixture("jwks-rsa.json")).unwrap();
    let ec: Value = serde_json::from_slice(&key_fixture("ec-a.jwk.json")).unwrap();
    set["keys"].as_array_mut().unwrap().push(ec);
    set.to_string()
}

fn data_url() -> String {
    format!(
        "data:application/json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jwks_json())
    )
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    super::support::process::scratch_file("check-token", name, contents)
}

fn provider(issuer: &str, app: Option<&str>, jwks: &str) -> Value {
    let mut p = json!({"type": "customJwt", "issuer": issuer, "algorithm": "RS256", "jwks": jwks});
    if let Some(app) = app {
        p["applicationID"] = json!(app);
    }
    p
}

fn config_file(providers: Vec<Value>) -> PathBuf {
    scratch(
        "auth.config.json",
        &json!({ "providers": providers }).to_string(),
    )
}

/// The config Convex documents for AuthKit, plus a custom domain and an AuthKit domain,
/// all with the test keys embedded.
fn generated_config() -> PathBuf {
    let d = data_url();
    config_file(vec![
        provider("https://api.workos.com/", Some(CID), &d),
        provider(
            &format!("https://api.workos.com/user_management/{CID}"),
            None,
            &d,
        ),
        provider("https://auth.acme.com/", Some(CID), &d),
        provider(
            &format!("https://auth.acme.com/user_management/{CID}"),
            None,
            &d,
        ),
        provider("https://acme.authkit.app", Some(CID), &d),
    ])
}

fn args(config: &Path) -> CheckTokenArgs {
    CheckTokenArgs {
        token: "-".into(),
        config: Some(config.to_path_buf()),
        file: None,
        resource: None,
        client_id: None,
        jwks: None,
        output: OutputFormat::Text,
        cluster: Default::default(),
        now: Some(NOW),
    }
}

fn claims(iss: &str, aud: Value) -> Value {
    let mut c = json!({"iss": iss, "sub": "user_01", "sid": "session_01", "iat": NOW - 10, "exp": NOW + 290});
    if !aud.is_null() {
        c["aud"] = aud;
    }
    c
}

fn sign(claims: &Value) -> String {
    sign_as(
        claims,
        jsonwebtoken::Algorithm::RS256,
        Some("test-rsa-a"),
        "rsa-a.pem",
    )
}

async fn report(token: &str, args: &CheckTokenArgs) -> Report {
    check_token(token, args)
        .await
        .unwrap_or_else(|e| panic!("input error: {e}"))
}

/// `token` checked against the config at `config`: rejected, as [`assert_rejected`] says.
async fn rejected(token: &str, config: &Path, reason: &str, fix: &str) -> Report {
    let r = report(token, &args(config)).await;
    assert_rejected(&r, reason, fix);
    r
}

/// Asserts a rejection: the reason and the fix each contain the given text.
#[track_caller]
fn assert_rejected(r: &Report, reason: &str, fix: &str) {
    let text = render(r, OutputFormat::Text);
    assert_eq!(r.verdict, Verdict::Rejected, "{text}");
    assert_eq!(r.verdict.exit_code(), 1);
    let (got_reason, got_fix) = (r.reason.as_deref().unwrap(), r.fix.as_deref().unwrap());
    assert!(
        got_reason.contains(reason),
        "reason {got_reason:?} lacks {reason:?}"
    );
    assert!(got_fix.contains(fix), "fix {got_fix:?} lacks {fix:?}");
    assert!(
        text.contains(&format!("REJECTED: {got_reason}\nFix: {got_fix}\n")),
        "{text}"
    );
}

#[track_caller]
fn assert_accepted(r: &Report, provider: usize) {
    let text = render(r, OutputFormat::Text);
    assert_eq!(r.verdict, Verdict::Accepted, "{text}");
    assert_eq!(r.provider, Some(provider), "{text}");
    assert!(
        text.contains(&format!("ACCEPTED by provider {provider}\n")),
        "{text}"
    );
    assert!(r.checks.iter().all(|c| c.ok), "{text}");
}

#[tokio::test]
async fn matching_table_issuer_audience_application_id_slashes_scheme_and_case() {
    let d = data_url();
    let variants = [
        "https://api.workos.com",
        "https://api.workos.com/user_management/client_01JEXAMPLE0000000000000000",
        "https://auth.acme.com",
        "https://acme.authkit.app",
    ];
    let audiences = [
        ("absent", Value::Null),
        ("string", json!(CID)),
        ("array", json!([OTHER, CID])),
        ("other client", json!(OTHER)),
    ];
    let mut cases = 0;
    for base in variants {
        // Provider and token spell the issuer differently; Convex normalises both.
        let spellings = [
            (base.to_string(), base.to_string()),
            (format!("{base}/"), base.to_string()),
            (base.to_string(), format!("{base}//")),
            (
                format!("{base}/"),
                base.trim_start_matches("https://").to_string(),
            ),
        ];
        for app in [None, Some(CID)] {
            if app.is_none() && base == "https://api.workos.com" {
                continue; // Convex refuses this config outright; see insecure_config_is_an_input_error.
            }
            for (provider_iss, token_iss) in &spellings {
                for (aud_name, aud) in &audiences {
                    let config = config_file(vec![provider(provider_iss, app, &d)]);
                    let token = sign(&claims(token_iss, aud.clone()));
                    let r = report(&token, &args(&config)).await;
                    let case = format!("{provider_iss} app={app:?} iss={token_iss} aud={aud_name}");
                    let aud_ok = match aud {
                        Value::Null => false,
                        Value::String(s) => s == CID,
                        _ => aud_name == &"array",
                    };
                    if app.is_none() || aud_ok {
                        assert_eq!(r.verdict, Verdict::Accepted, "{case}");
                        assert_eq!(r.providers[0].result, StepResult::Match, "{case}");
                        assert_eq!(
                            r.token_identifier.as_deref(),
                            Some(format!("{token_iss}|user_01").as_str()),
                            "{case}: tokenIdentifier uses the raw iss"
                        );
                    } else if aud.is_null() && base == "https://api.workos.com" {
                        // Removing applicationID there is not an option: Convex refuses it.
                        assert_rejected(
                            &r,
                            "no provider matches",
                            &format!(
                                "provider 1 sets applicationID but the token has no aud: add aud = {CID} via a WorkOS JWT template (Convex refuses issuer https://api.workos.com without applicationID)"
                            ),
                        );
                    } else if aud.is_null() {
                        assert_rejected(
                            &r,
                            "no provider matches",
                            "provider 1 sets applicationID but the token has no aud: remove it or add aud via a WorkOS JWT template",
                        );
                        assert!(
                            r.providers[0].reason.contains("the token has no aud"),
                            "{case}"
                        );
                    } else {
                        assert_rejected(
                            &r,
                            "no provider matches",
                            &format!(
                                "provider 1 requires aud {CID} but the token's aud is \"{OTHER}\": the token was minted for another client"
                            ),
                        );
                    }
                    cases += 1;
                }
            }
            // Wrong case in the host never matches, and the fix says why.
            let config = config_file(vec![provider(base, app, &d)]);
            let shouting = base.replacen("acme", "ACME", 1).replacen("api.", "API.", 1);
            let token = sign(&claims(&shouting, json!(CID)));
            let r = rejected(
                &token,
                &config,
                "no provider matches",
                "only in letter case, and Convex compares case-sensitively",
            )
            .await;
            assert!(
                r.providers[0]
                    .reason
                    .ends_with("(only letter case differs; Convex compares case-sensitively)")
            );
            cases += 1;
        }
    }
    assert_eq!(cases, (3 * 2 + 1) * (4 * 4 + 1));
}

#[tokio::test]
async fn every_workos_issuer_variant_is_accepted_by_the_intended_provider() {
    let config = generated_config();
    for (iss, aud, provider) in [
        ("https://api.workos.com", json!(CID), 1),
        ("https://api.workos.com/", json!([CID]), 1),
        (
            &format!("https://api.workos.com/user_management/{CID}") as &str,
            Value::Null,
            2,
        ),
        ("https://auth.acme.com", json!(CID), 3),
        (
            &format!("https://auth.acme.com/user_management/{CID}"),
            Value::Null,
            4,
        ),
        ("https://acme.authkit.app", json!(CID), 5),
    ] {
        let r = report(&sign(&claims(iss, aud)), &args(&config)).await;
        assert_accepted(&r, provider);
        assert!(
            r.providers[provider..]
                .iter()
                .all(|p| p.result == StepResult::NotTried)
        );
        assert_eq!(r.jwks.as_ref().unwrap().source, "data: URL in the config");
    }
}

#[tokio::test]
async fn unmatched_issuers_get_the_field_that_adds_them() {
    let config = generated_config();
    let cases = [
        (
            "https://other.authkit.app",
            json!(CID),
            "token iss is https://other.authkit.app; add spec.authkitDomain: other.authkit.app",
        ),
        (
            "https://api.workos.com/user_management/client_01JOTHER00000000000000000",
            Value::Null,
            "it was minted for client client_01JOTHER00000000000000000, but the config is for client client_01JEXAMPLE0000000000000000; set spec.clientId: client_01JOTHER00000000000000000",
        ),
        (
            "https://login.example.org/user_management/client_01JEXAMPLE0000000000000000",
            Value::Null,
            "add spec.authDomain: login.example.org",
        ),
        (
            "https://login.example.org",
            json!(CID),
            "if login.example.org is your WorkOS custom authentication domain, add spec.authDomain: login.example.org",
        ),
        (
            "https://login.example.org/some/path",
            Value::Null,
            "add it to spec.extraIssuers (issuer: https://login.example.org/some/path)",
        ),
        (
            "http://auth.acme.com",
            json!(CID),
            "differ in scheme: write the issuer exactly as http://auth.acme.com",
        ),
        (
            "https://api.workos.com",
            Value::Null,
            "provider 1 sets applicationID but the token has no aud: add aud = client_01JEXAMPLE0000000000000000 via a WorkOS JWT template",
        ),
    ];
    for (iss, aud, fix) in cases {
        let r = rejected(
            &sign(&claims(iss, aud)),
            &config,
            &format!("no provider matches iss {iss}"),
            fix,
        )
        .await;
        assert!(r.providers.iter().all(|p| p.result == StepResult::Mismatch));
        assert!(r.jwks.is_none() && r.checks.is_empty());
    }
    // No iss at all.
    rejected(
        &sign(&json!({"sub": "user_01", "exp": NOW + 60})),
        &config,
        "the token has no iss claim",
        "send the access token AuthKit issues",
    )
    .await;
}

fn user_management() -> String {
    format!("https://api.workos.com/user_management/{CID}")
}

#[tokio::test]
async fn key_and_signature_failures() {
    let config = generated_config();
    let iss = user_management();
    let ok = claims(&iss, Value::Null);
    let rs = jsonwebtoken::Algorithm::RS256;

    let r = rejected(
        &sign_as(&ok, rs, Some("rotated-1"), "rsa-a.pem"),
        &config,
        "kid rotated-1 is not in provider 2's JWKS (it has test-rsa-a, test-rsa-b, test-ec-a)",
        "kid rotated-1 not in the JWKS: the keys rotated or the JWKS URL points at another client",
    )
    .await;
    assert_eq!(
        r.checks.iter().map(|c| (c.name, c.ok)).collect::<Vec<_>>(),
        [("jwks", true), ("kid", false)]
    );

    rejected(
        &sign_as(&ok, rs, None, "rsa-a.pem"),
        &config,
        "the token header has no kid (provider 2 matched)",
        "WorkOS always sets one",
    )
    .await;

    let es = sign_as(
        &ok,
        jsonwebtoken::Algorithm::ES256,
        Some("test-ec-a"),
        "ec-a.pem",
    );
    rejected(
        &es,
        &config,
        "the token is signed with ES256 but provider 2 expects algorithm RS256",
        "set provider 2's algorithm to ES256 (spec.algorithm: ES256)",
    )
    .await;

    rejected(
        &sign_as(&ok, rs, Some("test-ec-a"), "rsa-a.pem"),
        &config,
        "the key test-ec-a is for ES256 but the token header says alg RS256",
        "not signed with this key set",
    )
    .await;

    let hs = sign_as(&ok, jsonwebtoken::Algorithm::HS256, Some("test-rsa-a"), "");
    rejected(
        &hs,
        &config,
        "the key test-rsa-a is for RS256 but the token header says alg HS256",
        "not signed with this key set",
    )
    .await;

    // rsa-b's signature under rsa-a's kid: the kid is known, the signature is not.
    let r = rejected(
        &sign_as(&ok, rs, Some("test-rsa-a"), "rsa-b.pem"),
        &config,
        "the signature does not verify with key test-rsa-a of provider 2",
        "the token was altered",
    )
    .await;
    assert_eq!(
        r.checks.last().map(|c| (c.name, c.ok)),
        Some(("signature", false))
    );

    // A valid token with its payload swapped for another one.
    let good = sign(&ok);
    let forged = sign(
        &claims(&iss, Value::Null)
            .as_object()
            .map(|c| {
                let mut c = c.clone();
                c.insert("sub".into(), json!("user_admin"));
                Value::Object(c)
            })
            .unwrap(),
    );
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        forged.split('.').nth(1).unwrap(),
        parts[2]
    );
    rejected(
        &tampered,
        &config,
        "the signature does not verify",
        "copy it whole",
    )
    .await;

    let mut no_sub = ok.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    rejected(
        &sign(&no_sub),
        &config,
        "the token has no sub claim",
        "Convex requires sub and exp",
    )
    .await;
}

#[tokio::test]
async fn time_claims_with_five_seconds_of_skew() {
    let config = generated_config();
    let iss = user_management();
    let with = |key: &str, value: i64| {
        let mut c = claims(&iss, Value::Null);
        c[key] = json!(value);
        sign(&c)
    };
    assert_accepted(&report(&with("exp", NOW - 5), &args(&config)).await, 2);
    assert_accepted(&report(&with("nbf", NOW + 5), &args(&config)).await, 2);
    assert_accepted(&report(&with("iat", NOW + 5), &args(&config)).await, 2);

    let r = report(&with("exp", NOW - 6), &args(&config)).await;
    assert_rejected(
        &r,
        "the token expired at 2027-01-15T07:59:54Z (6s ago; Convex allows 5 s of skew)",
        "get a fresh access token",
    );
    assert_eq!(
        r.checks.last().map(|c| (c.name, c.ok)),
        Some(("exp", false))
    );
    rejected(
        &with("nbf", NOW + 6),
        &config,
        "not valid before 2027-01-15T08:00:06Z (nbf, in 6s",
        "sync the issuing machine",
    )
    .await;
    rejected(
        &with("iat", NOW + 3600),
        &config,
        "issued at 2027-01-15T09:00:00Z (iat, in 1h",
        "no token is issued in the future",
    )
    .await;

    // Untrusted extremes: no overflow (a panic in debug builds), a verdict.
    rejected(
        &with("exp", i64::MIN),
        &config,
        "the token expired at",
        "get a fresh access token",
    )
    .await;
    assert_accepted(&report(&with("exp", i64::MAX), &args(&config)).await, 2);
    rejected(
        &with("nbf", i64::MAX),
        &config,
        "not valid before",
        "sync the issuing machine",
    )
    .await;
}

/// A JWKS server whose answer is chosen by path: `/ct/<n>` serves the set under
/// `CONTENT_TYPES[n]`, `/status/<code>` answers that status, `/redirect` sends to `/ct/0`.
const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/jwk-set+json"),
    Some("application/json; charset=utf-8"),
    Some("Application/JSON"),
    Some("text/plain"),
    None,
    Some("application/json; charset=iso-8859-1"),
    Some("text/html"),
];

async fn jwks_server() -> String {
    async fn content(UrlPath(n): UrlPath<usize>) -> Response<Body> {
        let mut b = Response::builder();
        if let Some(ct) = CONTENT_TYPES[n] {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        b.body(Body::from(jwks_json())).unwrap()
    }
    async fn status(UrlPath(code): UrlPath<u16>) -> Response<Body> {
        Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(jwks_json()))
            .unwrap()
    }
    let app = Router::new()
        .route("/ct/{n}", axum::routing::get(content))
        .route("/status/{code}", axum::routing::get(status))
        .route(
            "/redirect",
            axum::routing::get(|| async {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, "/ct/1")
                    .body(Body::empty())
                    .unwrap()
            }),
        )
        .route(
            "/sso/jwks/{client}",
            axum::routing::get(|| content(UrlPath(1))),
        )
        .route(
            "/not-jwks",
            axum::routing::get(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from("{\"hello\": 1}"))
                    .unwrap()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn with_jwks_url(url: &str) -> Report {
    let config = config_file(vec![provider(&user_management(), None, url)]);
    report(
        &sign(&claims(&user_management(), Value::Null)),
        &args(&config),
    )
    .await
}

#[tokio::test]
async fn jwks_over_http_with_convex_content_type_rules() {
    let base = jwks_server().await;
    for (n, content_type) in CONTENT_TYPES.iter().enumerate().take(4) {
        let r = with_jwks_url(&format!("{base}/ct/{n}")).await;
        assert_accepted(&r, 1);
        let j = r.jwks.unwrap();
        assert_eq!(
            (j.status, j.content_type.as_deref()),
            (Some(200), *content_type)
        );
        assert_eq!(j.kids, ["test-rsa-a", "test-rsa-b", "test-ec-a"]);
    }
    for (n, why) in [
        (
            4,
            "Content-Type \"text/plain\" is neither application/json nor application/jwk-set+json",
        ),
        (5, "the response has no Content-Type header"),
        (6, "Content-Type charset \"iso-8859-1\" is not utf-8"),
        (7, "Content-Type \"text/html\" is neither"),
    ] {
        let r = with_jwks_url(&format!("{base}/ct/{n}")).await;
        assert_rejected(
            &r,
            &format!(
                "provider 1's JWKS is unusable: {base}/ct/{n} is served with a Content-Type Convex refuses: {why}"
            ),
            &format!(
                "serve the JWKS as Content-Type application/json (it is {})",
                CONTENT_TYPES[n].unwrap_or("missing")
            ),
        );
        assert_eq!(
            r.checks.iter().map(|c| (c.name, c.ok)).collect::<Vec<_>>(),
            [("jwks", false)]
        );
        assert_eq!(r.jwks.unwrap().content_type.as_deref(), CONTENT_TYPES[n]);
    }
    assert_accepted(&with_jwks_url(&format!("{base}/redirect")).await, 1);
    for code in [404, 500, 204] {
        let r = with_jwks_url(&format!("{base}/status/{code}")).await;
        assert_rejected(
            &r,
            &format!("answered HTTP {code}; Convex needs exactly 200"),
            &format!("make {base}/status/{code} answer 200 with the key set (it answered {code})"),
        );
    }
    let r = with_jwks_url(&format!("{base}/not-jwks")).await;
    assert_rejected(&r, "is not a JWK set", "point jwks at a JWK set");
}

#[tokio::test]
async fn unreachable_jwks_suggests_running_inside_or_passing_a_file() {
    // A port that was free a moment ago: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sso/jwks/{CID}", listener.local_addr().unwrap());
    drop(listener);
    let r = with_jwks_url(&url).await;
    assert_rejected(
        &r,
        &format!("cannot fetch {url}"),
        "save the key set and pass --jwks FILE",
    );

    // The same config checked with --jwks: the file stands in for the URL.
    let config = config_file(vec![provider(&user_management(), None, &url)]);
    let mut a = args(&config);
    a.jwks = Some(scratch("jwks.json", &jwks_json()));
    let r = report(&sign(&claims(&user_management(), Value::Null)), &a).await;
    assert_accepted(&r, 1);
    assert!(r.jwks.unwrap().source.starts_with("--jwks "));
}

#[tokio::test]
async fn garbage_input_is_an_input_error_with_a_reason() {
    let config = generated_config();
    let cases: [(String, &str); 6] = [
        (
            "not a jwt".into(),
            "the token is not a JWT: a JWT has three dot-separated parts; this has 1",
        ),
        (
            "a!.b.c".into(),
            "the token is not a JWT: the header is not base64url",
        ),
        (
            "bm90IGpzb24.e30.x".into(),
            "the token is not a JWT: the header is not a JSON object",
        ),
        (
            "e30.bm90IGpzb24.x".into(),
            "the token is not a JWT: the payload is not a JSON object",
        ),
        ("x".repeat(1 << 20), "the token is 1048576 bytes long"),
        ("  \n".into(), "no token given"),
    ];
    for (token, message) in cases {
        let err = check_token(&token, &args(&config)).await.unwrap_err();
        assert!(
            err.to_string().contains(message),
            "{err} (wanted {message})"
        );
    }
    // A `Bearer ` prefix and surrounding whitespace, as copied from a request, are fine.
    let token = sign(&claims(&user_management(), Value::Null));
    assert_accepted(
        &report(&format!("Bearer {token}\n"), &args(&config)).await,
        2,
    );
}

#[tokio::test]
async fn unreadable_configs_are_input_errors() {
    let token = sign(&claims(&user_management(), Value::Null));
    let missing = Path::new("/nonexistent/auth.config.json");
    let err = check_token(&token, &args(missing)).await.unwrap_err();
    assert!(matches!(err, CheckTokenError::Source(_)));
    assert!(
        err.to_string()
            .starts_with("cannot read /nonexistent/auth.config.json"),
        "{err}"
    );

    for (body, message) in [
        ("<html>", "is not JSON"),
        ("{\"provider\": []}", "has no \"providers\" list"),
        (
            &json!({"providers": [{"type": "customJwt", "issuer": "https://api.workos.com", "algorithm": "RS256", "jwks": "https://x.com"}]}).to_string() as &str,
            "provider 1: issuer https://api.workos.com without applicationID would accept every WorkOS customer's tokens",
        ),
    ] {
        let err = check_token(&token, &args(&scratch("c.json", body))).await.unwrap_err();
        assert!(err.to_string().contains(message), "{err}");
    }

    let mut a = args(&generated_config());
    a.jwks = Some(scratch("jwks.json", "[1, 2]"));
    let err = check_token(&token, &a).await.unwrap_err().to_string();
    assert!(err.contains("is not a JWK set"), "{err}");
}

#[tokio::test]
async fn oidc_providers_take_part_in_the_walk_but_are_not_verified() {
    let d = data_url();
    let config = config_file(vec![
        json!({"domain": "https://accounts.example.com", "applicationID": "app"}),
        provider(&user_management(), None, &d),
    ]);
    let r = report(
        &sign(&claims(&user_management(), Value::Null)),
        &args(&config),
    )
    .await;
    assert_accepted(&r, 2);
    assert_eq!(r.providers[0].kind, "oidc");

    let r = report(
        &sign(&claims("https://accounts.example.com", json!("app"))),
        &args(&config),
    )
    .await;
    assert_eq!(r.verdict, Verdict::Unchecked);
    assert_eq!(r.verdict.exit_code(), 2);
    assert!(
        r.reason
            .unwrap()
            .contains("provider 1 is an OIDC provider and matches first")
    );
}

#[tokio::test]
async fn renders_a_resource_file_offline() {
    let base = jwks_server().await;
    let yaml = format!(
        "apiVersion: workos-convex.io/v1alpha1\nkind: WorkOSConvexAuth\nmetadata: {{name: acme, namespace: apps}}\nspec:\n  clientId: {CID}\n  authkitDomain: acme.authkit.app\n  jwks: {{mode: Direct, upstreamBase: '{base}'}}\n"
    );
    let mut a = args(Path::new("unused"));
    a.config = None;
    a.file = Some(scratch("acme.yaml", &yaml));
    // Mode Direct: the WorkOS providers fetch <upstreamBase>/sso/jwks/<clientId>.
    let token = sign(&claims(&user_management(), Value::Null));
    let r = report(&token, &a).await;
    assert!(
        r.source
            .starts_with("WorkOSConvexAuth acme (rendered from "),
        "{}",
        r.source
    );
    assert_eq!(r.providers[2].issuer, "https://acme.authkit.app");
    assert_eq!(
        r.jwks.as_ref().map(|j| j.source.clone()),
        Some(format!("{base}/sso/jwks/{CID}"))
    );
    let token = sign(&claims(&user_management(), Value::Null));
    let r = report(&token, &a).await;
    assert_accepted(&r, 2);

    let r = report(&sign(&claims("https://auth.acme.com", json!(CID))), &a).await;
    assert_rejected(
        &r,
        "no provider matches",
        "add spec.authDomain: auth.acme.com",
    );

    // clientIdFrom needs --client-id offline; mode Inline needs --jwks.
    let from = yaml.replace(
        &format!("clientId: {CID}"),
        "clientIdFrom: {secretKeyRef: {name: s, key: k}}",
    );
    a.file = Some(scratch("from.yaml", &from));
    let err = check_token(&token, &a).await.unwrap_err().to_string();
    assert!(err.contains("pass --client-id"), "{err}");
    a.client_id = Some(CID.into());
    assert_accepted(&report(&token, &a).await, 2);

    let inline = format!(
        "apiVersion: workos-convex.io/v1alpha1\nkind: WorkOSConvexAuth\nmetadata: {{name: acme}}\nspec:\n  clientId: {CID}\n  jwks: {{mode: Inline}}\n"
    );
    a.file = Some(scratch("inline.yaml", &inline));
    let err = check_token(&token, &a).await.unwrap_err().to_string();
    assert!(err.contains("uses jwks.mode Inline"), "{err}");
    a.jwks = Some(scratch(
        "jwks.json",
        &String::from_utf8(key_fixture("jwks-rsa.json")).unwrap(),
    ));
    assert_accepted(&report(&token, &a).await, 2);
}

#[tokio::test]
async fn json_output_carries_verdict_fix_and_claims() {
    let config = generated_config();
    let mut c = claims("https://other.authkit.app", json!(CID));
    c["nbf"] = json!(NOW - 10);
    let r = report(&sign(&c), &args(&config)).await;
    let v: Value = serde_json::from_str(&render(&r, OutputFormat::Json)).unwrap();
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(
        v["fix"].as_str().unwrap().split(" (or").next().unwrap(),
        "token iss is https://other.authkit.app; add spec.authkitDomain: other.authkit.app"
    );
    assert_eq!(v["token"]["iss"], "https://other.authkit.app");
    assert_eq!(v["token"]["kid"], "test-rsa-a");
    assert_eq!(v["token"]["alg"], "RS256");
    assert_eq!(v["token"]["aud"], CID);
    assert_eq!(v["token"]["exp"]["utc"], "2027-01-15T08:04:50Z");
    assert_eq!(v["token"]["iat"]["relative"], "10s ago");
    assert_eq!(v["providers"].as_array().unwrap().len(), 5);
    assert_eq!(v["providers"][4]["result"], "mismatch");
    assert_eq!(v["providers"][0]["applicationID"], CID);
}
