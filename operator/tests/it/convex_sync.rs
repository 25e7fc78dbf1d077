//! `spec.convex` against the real apiserver and a FAKE Convex deployment
//! (`tests/fake-convex`, see its header for what it follows of convex-backend): the operator
//! process sets the variables, the fake re-evaluates the auth.config.js the operator generated
//! (pushed once, as `npx convex deploy` would), and tokens are checked against the providers the
//! fake evaluated, under Convex's rules (`convex::verify`).

use super::support;

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::binary::LOOPBACK_UPSTREAM;
use support::conditions::Want;
use support::convex::FakeConvex;
use support::fixtures::{SpecExt, from_secret, spec};
use support::keys::{key_fixture, sign_rs256};
use support::mirror::jwks_of;
use support::process::free_port;
use support::scenario::Scenario;
use wca_test_harness::eventually;
use wca_test_harness::fake_workos::FakeWorkos;
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::convex::config::AuthConfig;
use workos_convex_auth::convex::verify::{decode, verify};
use workos_convex_auth::reconcile::reason::ConditionType::{ConvexSynced, Ready};
use workos_convex_auth::reconcile::reason::Reason;
use workos_convex_auth::reconcile::sync::CONVEX_URL_ANNOTATION;

const WAIT: Duration = Duration::from_secs(30);
const ADMIN_KEY: &str = "wca-test|0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const WRONG_KEY: &str = "wca-test|ffffffffffffffffffffffffffffffff";
const CID_A: &str = "client_01JCONVEXSYNCAAAAAAAAAAAAA";
const CID_B: &str = "client_01JCONVEXSYNCBBBBBBBBBBBBB";

/// The operator binary in its own namespace, its log in a file: JSON at debug level, every
/// Secret resynced every 2 s, and the fakes' plain http on loopback allowed (never by default).
async fn start(test: &str) -> Scenario {
    let flags = [
        &["--log-format", "json", "--secret-resync", "2s"][..],
        &["--proxy-image", "example.com/workos-convex-auth:test"],
        &LOOPBACK_UPSTREAM,
        &[
            "--allow-http-convex",
            "--allowed-convex-networks",
            "127.0.0.0/8",
            "--allowed-convex-hosts",
            "127.0.0.1",
        ],
    ]
    .concat();
    Scenario::binary(test, &flags, "debug", WAIT).await
}

/// A Secret holding `value` under `key`; with `for_url`, annotated as the admin key of that
/// deployment (the operator sends it nowhere else).
async fn secret(s: &Scenario, name: &str, key: &str, value: &str, for_url: Option<&str>) {
    let annotations = match for_url {
        Some(url) => json!({CONVEX_URL_ANNOTATION: url}),
        None => json!({}),
    };
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations}, "stringData": {key: value}
    }))
    .unwrap();
    s.api::<Secret>()
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// Every status, Event and log line of the scenario, as one text: where a Secret's value
/// must never appear.
async fn what_users_see(s: &Scenario) -> String {
    let mut seen = s.log_text();
    for r in s
        .api::<WorkOSConvexAuth>()
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        seen.push_str(&serde_json::to_string(&r.status).unwrap());
        seen.push_str(&r.name_any());
    }
    for e in s.api::<Event>().list(&ListParams::default()).await.unwrap() {
        seen.push_str(&serde_json::to_string(&e).unwrap());
    }
    seen
}

async fn generated_js(s: &Scenario, name: &str) -> String {
    let cm = s
        .api::<ConfigMap>()
        .get(&format!("{name}-convex-auth"))
        .await
        .unwrap();
    cm.data.unwrap()["auth.config.js"].clone()
}

/// ConvexSynced=False with `reason`.
fn not_synced(reason: Reason) -> Want {
    Want::fails(ConvexSynced).reason(reason)
}

/// ConvexSynced=True with `reason`.
fn in_sync(reason: Reason) -> Want {
    Want::holds(ConvexSynced).reason(reason)
}

fn claims(iss: &str, aud: Option<&str>) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut c = json!({"iss": iss, "sub": "user_01", "sid": "session_01", "org_id": "org_01", "iat": now - 10, "exp": now + 300});
    if let Some(aud) = aud {
        c["aud"] = json!(aud);
    }
    c
}

/// The providers the fake deployment evaluated, as Convex holds them.
async fn deployed_config(convex: &FakeConvex) -> AuthConfig {
    let providers = convex.state().await["providers"].clone();
    serde_json::from_value(json!({ "providers": providers })).unwrap()
}

/// Convex's checks of `token` against the deployed providers; `keys` answers the JWKS URL.
fn accepted_by(
    config: &AuthConfig,
    token: &str,
    keys: &dyn Fn(&str) -> JwkSet,
) -> Result<usize, String> {
    let decoded = decode(token).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    verify(config, token, &decoded, &mut |p| Ok(keys(&p.jwks)), now).map_err(|e| format!("{e:?}"))
}

fn data_url_keys(url: &str) -> JwkSet {
    let b64 = url
        .strip_prefix("data:application/json;base64,")
        .unwrap_or_else(|| panic!("not a data: URL: {url:.60}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn fixture_keys() -> JwkSet {
    serde_json::from_slice(&key_fixture("jwks-rsa.json")).unwrap()
}

#[tokio::test]
async fn variables_reach_the_deployment_and_the_pushed_file_accepts_every_issuer_variant() {
    let workos = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let convex = FakeConvex::start(ADMIN_KEY);
    assert_eq!(convex.set_variable("OPENAI_API_KEY", "not-ours").await, 200);
    let s = start("convex-sync").await;
    secret(
        &s,
        "convex-admin",
        "adminKey",
        &format!("{ADMIN_KEY}\n"),
        Some(&convex.url),
    )
    .await;
    secret(&s, "workos", "clientId", CID_A, None).await;
    s.create(
        "acme",
        from_secret("workos", "clientId")
            .with(|s| {
                s.auth_domain = Some("auth.acme.com".into());
                s.authkit_domain = Some("acme.authkit.app".into());
            })
            .direct()
            .upstream(workos.base_url())
            .convex(&convex.url, "convex-admin", "adminKey"),
    )
    .await;

    // Nothing is deployed yet: the variables are set, and status says to push the file once.
    let waiting = s
        .wait("acme", not_synced(Reason::AuthConfigNotPushed))
        .await;
    assert!(
        waiting.message.contains("push the env-driven file once")
            && waiting.message.contains("npx convex deploy"),
        "{}",
        waiting.message
    );
    s.wait(
        "acme",
        Want::fails(Ready).reason(Reason::AuthConfigNotPushed),
    )
    .await;
    let workos_jwks = format!("{}/sso/jwks/{CID_A}", workos.base_url());
    assert_eq!(
        convex.variable("WORKOS_CLIENT_ID").await.as_deref(),
        Some(CID_A)
    );
    assert_eq!(
        convex.variable("WORKOS_JWKS_URL").await.as_deref(),
        Some(workos_jwks.as_str())
    );
    assert_eq!(
        convex.variable("WORKOS_AUTHKIT_JWKS_URL").await.as_deref(),
        Some("https://acme.authkit.app/oauth2/jwks")
    );
    assert_eq!(
        convex.variable("OPENAI_API_KEY").await.as_deref(),
        Some("not-ours"),
        "a variable the resource does not manage is untouched"
    );
    let set = s.events(Reason::VariablesUpdated).await;
    assert!(
        set.iter().any(|e| e.contains(
            "set WORKOS_CLIENT_ID, WORKOS_JWKS_URL, WORKOS_AUTHKIT_JWKS_URL on http://127.0.0.1"
        )),
        "{set:?}"
    );

    // The one push: the generated file, which holds no value, evaluated by the deployment.
    let js = generated_js(&s, "acme").await;
    assert!(!js.contains(CID_A) && !js.contains("/sso/jwks/"), "{js}");
    convex
        .push(&js)
        .await
        .expect("the deployment accepts the generated file");
    let synced = s.wait("acme", in_sync(Reason::VariablesCurrent)).await;
    assert!(
        synced.message.contains("its auth config uses them"),
        "{}",
        synced.message
    );
    s.wait("acme", Want::holds(Ready).reason(Reason::Reconciled))
        .await;

    let keys = |url: &str| {
        assert!(
            url == workos_jwks || url == "https://acme.authkit.app/oauth2/jwks",
            "unexpected JWKS URL {url}"
        );
        fixture_keys()
    };
    let config = deployed_config(&convex).await;
    let variants = [
        ("https://api.workos.com".to_string(), Some(CID_A), 0),
        (
            format!("https://api.workos.com/user_management/{CID_A}"),
            None,
            1,
        ),
        ("https://auth.acme.com".to_string(), Some(CID_A), 2),
        (
            format!("https://auth.acme.com/user_management/{CID_A}"),
            None,
            3,
        ),
        ("https://acme.authkit.app".to_string(), Some(CID_A), 4),
    ];
    for (iss, aud, provider) in &variants {
        let token = sign_rs256(&claims(iss, *aud), "test-rsa-a", "rsa-a.pem");
        assert_eq!(
            accepted_by(&config, &token, &keys),
            Ok(*provider),
            "iss {iss} aud {aud:?}"
        );
    }
    let other = sign_rs256(
        &claims(
            "https://api.workos.com/user_management/client_01OTHER",
            None,
        ),
        "test-rsa-a",
        "rsa-a.pem",
    );
    assert!(accepted_by(&config, &other, &keys).is_err());

    // A new client id in the Secret: one write of the variables that hold it, nothing else.
    let before = convex.state().await;
    secret(&s, "workos", "clientId", CID_B, None).await;
    eventually(WAIT, "WORKOS_CLIENT_ID updated", || async {
        (convex.variable("WORKOS_CLIENT_ID").await.as_deref() == Some(CID_B)).then_some(())
    })
    .await
    .unwrap();
    let after = convex.state().await;
    assert_eq!(
        after["writes"].as_u64(),
        before["writes"].as_u64().map(|w| w + 1),
        "one write"
    );
    assert_eq!(
        after["requests"]["update"].as_u64(),
        before["requests"]["update"].as_u64().map(|w| w + 1)
    );
    assert_eq!(
        after["requests"]["push"], before["requests"]["push"],
        "no push"
    );
    assert_eq!(after["env"]["OPENAI_API_KEY"], "not-ours");
    assert_eq!(
        after["env"]["WORKOS_JWKS_URL"],
        format!("{}/sso/jwks/{CID_B}", workos.base_url())
    );
    let config = deployed_config(&convex).await;
    let token = sign_rs256(
        &claims(
            &format!("https://api.workos.com/user_management/{CID_B}"),
            None,
        ),
        "test-rsa-a",
        "rsa-a.pem",
    );
    assert_eq!(accepted_by(&config, &token, &|_| fixture_keys()), Ok(1));

    // Steady state: reconciles keep coming (the Secret is re-read every 2 s), requests do not.
    s.wait("acme", in_sync(Reason::VariablesCurrent)).await;
    let settled = convex.state().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let later = convex.state().await;
    assert_eq!(
        later["writes"], settled["writes"],
        "no write in steady state"
    );
    assert_eq!(
        later["requests"], settled["requests"],
        "no request at all in steady state"
    );
    assert!(!s.log_text().contains(ADMIN_KEY));
}

#[tokio::test]
async fn inline_key_rotation_reaches_the_deployment_without_a_push() {
    let workos = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let convex = FakeConvex::start(ADMIN_KEY);
    let s = start("convex-rotation").await;
    secret(&s, "convex-admin", "adminKey", ADMIN_KEY, Some(&convex.url)).await;
    s.create(
        "acme",
        spec(CID_A)
            .inline(workos.base_url())
            .proxy(|p| p.refresh_interval = "10s".into())
            .convex(&convex.url, "convex-admin", "adminKey"),
    )
    .await;
    s.wait("acme", not_synced(Reason::AuthConfigNotPushed))
        .await;
    convex
        .push(&generated_js(&s, "acme").await)
        .await
        .expect("the deployment accepts the generated file");
    s.wait("acme", in_sync(Reason::VariablesCurrent)).await;
    let by_data_url = |url: &str| data_url_keys(url);
    let issuer = format!("https://api.workos.com/user_management/{CID_A}");
    let token_a = sign_rs256(&claims(&issuer, None), "test-rsa-a", "rsa-a.pem");
    let token_b = sign_rs256(&claims(&issuer, None), "test-rsa-b", "rsa-b.pem");
    let config = deployed_config(&convex).await;
    assert_eq!(accepted_by(&config, &token_a, &by_data_url), Ok(1));
    assert!(accepted_by(&config, &token_b, &by_data_url).is_err());

    // WorkOS rotates: the new key reaches the deployment through WORKOS_JWKS_URL.
    workos.set_document(jwks_of(&["rsa-b.jwk.json"]));
    eventually(
        Duration::from_secs(45),
        "the new key on the deployment",
        || async {
            let url = convex.variable("WORKOS_JWKS_URL").await?;
            data_url_keys(&url).find("test-rsa-b").map(drop)
        },
    )
    .await
    .unwrap();
    let state = convex.state().await;
    assert_eq!(state["requests"]["push"], 1, "no second push");
    let config = deployed_config(&convex).await;
    assert_eq!(accepted_by(&config, &token_b, &by_data_url), Ok(1));
    assert!(accepted_by(&config, &token_a, &by_data_url).is_err());
    let rotated = s.event(Reason::KeysRotated).await;
    assert!(
        rotated.contains("test-rsa-a → test-rsa-b") && rotated.contains("no push needed"),
        "{rotated}"
    );
    s.wait("acme", in_sync(Reason::VariablesCurrent)).await;
}

/// A JWKS whose data: URL is over Convex's 8 KiB limit for a variable.
fn large_jwks() -> String {
    let key: Value = serde_json::from_slice(&key_fixture("rsa-a.jwk.json")).unwrap();
    let keys: Vec<Value> = (0..20)
        .map(|i| {
            let mut k = key.clone();
            k["kid"] = json!(format!("test-rsa-{i:02}"));
            k
        })
        .collect();
    json!({ "keys": keys }).to_string()
}

#[tokio::test]
async fn failures_are_reported_with_the_reason_and_never_show_the_admin_key() {
    let workos = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let large = FakeWorkos::start(large_jwks()).await;
    let convex = FakeConvex::start(ADMIN_KEY);
    // A deployment whose deployed auth config refuses data: URLs: setting one must fail there.
    let picky = FakeConvex::start(ADMIN_KEY);
    assert_eq!(
        picky
            .set_variable("WORKOS_JWKS_URL", "https://api.workos.com/sso/jwks/x")
            .await,
        200
    );
    picky
        .push(
            "const jwks = process.env.WORKOS_JWKS_URL;\n\
             if (jwks.startsWith(\"data:\")) throw new Error(\"this deployment's auth config refuses data: URLs\");\n\
             export default { providers: [{ type: \"customJwt\", issuer: \"https://auth.example.com\", algorithm: \"RS256\", jwks }] };\n",
        )
        .await
        .expect("the picky config deploys");
    let s = start("convex-failures").await;
    secret(&s, "convex-admin", "adminKey", ADMIN_KEY, Some(&convex.url)).await;
    secret(&s, "picky-admin", "adminKey", ADMIN_KEY, Some(&picky.url)).await;
    secret(&s, "convex-wrong", "adminKey", WRONG_KEY, Some(&convex.url)).await;
    let direct = |url: &str, secret: &str| {
        spec(CID_A)
            .direct()
            .upstream(workos.base_url())
            .convex(url, secret, "adminKey")
    };
    let inline = |base: String, url: &str, secret: &str| {
        spec(CID_A).inline(base).convex(url, secret, "adminKey")
    };
    s.create("bad-key", direct(&convex.url, "convex-wrong"))
        .await;
    s.create("no-key", direct(&convex.url, "absent")).await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    secret(&s, "closed-admin", "adminKey", ADMIN_KEY, Some(&closed)).await;
    s.create("unreachable", direct(&closed, "closed-admin"))
        .await;
    s.create(
        "refused",
        inline(workos.base_url(), &picky.url, "picky-admin"),
    )
    .await;
    s.create(
        "too-large",
        inline(large.base_url(), &convex.url, "convex-admin"),
    )
    .await;

    let expectations = [
        ("bad-key", Reason::AdminKeyRefused, "BadAdminKey"),
        (
            "no-key",
            Reason::AdminKeyMissing,
            "does not exist or has no key",
        ),
        (
            "unreachable",
            Reason::DeploymentUnreachable,
            "cannot reach the deployment",
        ),
        ("refused", Reason::ChangeRefused, "refuses data: URLs"),
        (
            "too-large",
            Reason::ValueTooLarge,
            "over Convex's limit of 8192",
        ),
    ];
    for (name, reason, says) in expectations {
        let c = s.wait(name, not_synced(reason)).await;
        assert!(c.message.contains(says), "{name}: {}", c.message);
        s.wait(name, Want::fails(Ready).reason(reason)).await;
    }
    let refused = s.wait("refused", not_synced(Reason::ChangeRefused)).await;
    assert!(
        refused.message.contains("InvalidAuthConfig")
            && refused
                .message
                .contains("This change would make the auth config invalid"),
        "{}",
        refused.message
    );
    assert_eq!(
        picky.variable("WORKOS_JWKS_URL").await.as_deref(),
        Some("https://api.workos.com/sso/jwks/x"),
        "the refused change left the deployment as it was"
    );
    assert_eq!(
        convex.writes().await,
        0,
        "no failing resource wrote anything"
    );

    // The keys appear in no status, no Event and no log line.
    let warnings = s.events(Reason::AdminKeyRefused).await;
    assert!(!warnings.is_empty(), "a Warning event names the refusal");
    let seen = what_users_see(&s).await;
    for key in [ADMIN_KEY, WRONG_KEY, "0a1b2c3d4e5f", "ffffffffffff"] {
        assert!(
            !seen.contains(key),
            "{key:?} appears in status, events or logs"
        );
    }
}

/// Requests of the Convex admin API that reached the fake (counted before it checks the key).
async fn api_requests(convex: &FakeConvex) -> u64 {
    let requests = &convex.state().await["requests"];
    ["list", "update", "query"]
        .iter()
        .map(|kind| requests[kind].as_u64().unwrap_or_default())
        .sum()
}

/// Issue 22: editing a resource must not turn into reading a Secret. The admin key goes only to
/// the deployment its Secret is annotated for, and only to hosts the admin lists: an unmarked
/// Secret, one marked for another deployment, and a host outside `--allowed-convex-hosts` send
/// no request at all; the marked one works; moving `spec.convex.url` elsewhere stops the
/// requests to both deployments.
#[tokio::test]
async fn an_admin_key_goes_only_where_its_secret_says() {
    let convex = FakeConvex::start(ADMIN_KEY);
    let other = FakeConvex::start(ADMIN_KEY);
    let s = start("convex-routing").await;
    secret(&s, "unmarked", "adminKey", ADMIN_KEY, None).await;
    secret(&s, "elsewhere", "adminKey", ADMIN_KEY, Some(&other.url)).await;
    secret(&s, "marked", "adminKey", ADMIN_KEY, Some(&convex.url)).await;
    let spec = |url: &str, secret: &str| spec(CID_A).direct().convex(url, secret, "adminKey");
    // The fake's own address under a name the admin did not list.
    let unlisted = convex.url.replace("127.0.0.1", "localhost");
    s.create("unmarked", spec(&convex.url, "unmarked")).await;
    s.create("elsewhere", spec(&convex.url, "elsewhere")).await;
    s.create("unlisted", spec(&unlisted, "marked")).await;
    for name in ["unmarked", "elsewhere"] {
        let c = s
            .wait(name, not_synced(Reason::AdminKeyNotForDeployment))
            .await;
        assert!(
            c.message.contains(&format!(
                "kubectl annotate secret -n {} {name} {CONVEX_URL_ANNOTATION}={}",
                s.ns, convex.url
            )),
            "{}",
            c.message
        );
    }
    let c = s.wait("unlisted", not_synced(Reason::NotAllowed)).await;
    assert!(
        c.message
            .starts_with("spec.convex.url: host \"localhost\" is not among")
            && c.message.contains("chart value policy.convex.allowedHosts"),
        "{}",
        c.message
    );
    // The unmarked ones are asked again every few seconds (backoff): still nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api_requests(&convex).await,
        0,
        "a request reached the deployment"
    );
    assert_eq!(
        api_requests(&other).await,
        0,
        "a request reached the other deployment"
    );

    s.create("marked", spec(&convex.url, "marked")).await;
    s.wait("marked", not_synced(Reason::AuthConfigNotPushed))
        .await;
    assert_eq!(
        convex.variable("WORKOS_CLIENT_ID").await.as_deref(),
        Some(CID_A)
    );

    // The resource's author points it elsewhere: neither deployment hears of it again.
    let patch = json!({"spec": {"convex": {"url": other.url}}});
    s.api::<WorkOSConvexAuth>()
        .patch("marked", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    s.wait("marked", not_synced(Reason::AdminKeyNotForDeployment))
        .await;
    let before = api_requests(&convex).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api_requests(&convex).await,
        before,
        "the old deployment was asked again"
    );
    assert_eq!(api_requests(&other).await, 0, "the new one was asked");

    let seen = what_users_see(&s).await;
    assert!(!seen.contains(ADMIN_KEY) && !seen.contains("0a1b2c3d4e5f"));
}
