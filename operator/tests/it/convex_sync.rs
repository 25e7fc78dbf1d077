//! `spec.convex` against the real apiserver and a FAKE Convex deployment
//! (`tests/fake-convex`, see its header for what it follows of convex-backend): the operator
//! process sets the variables, the fake re-evaluates the auth.config.js the operator generated
//! (pushed once, as `npx convex deploy` would), and tokens are checked against the providers the
//! fake evaluated, under Convex's rules (`convex::verify`).

use super::support;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use support::convex::FakeConvex;
use support::keys::{key_fixture, sign_rs256};
use support::mirror::jwks_of;
use support::process::{KillOnDrop, free_port};
use wca_test_harness::fake_workos::FakeWorkos;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::{Condition, WorkOSConvexAuth};
use workos_convex_auth::convex::config::AuthConfig;
use workos_convex_auth::convex::verify::{decode, verify};
use workos_convex_auth::reconcile::sync::CONVEX_URL_ANNOTATION;

const WAIT: Duration = Duration::from_secs(30);
const ADMIN_KEY: &str = "wca-test|0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const WRONG_KEY: &str = "wca-test|ffffffffffffffffffffffffffffffff";
const CID_A: &str = "client_01JCONVEXSYNCAAAAAAAAAAAAA";
const CID_B: &str = "client_01JCONVEXSYNCBBBBBBBBBBBBB";

/// The operator binary in its own namespace, its log in a file.
struct Scenario {
    client: Client,
    ns: String,
    log: PathBuf,
    _operator: KillOnDrop,
}

impl Scenario {
    async fn start(test: &str) -> Self {
        let cp = ControlPlane::shared();
        let client = cp.client().await.unwrap();
        let ns = cp.namespace(&client, test).await.unwrap();
        let log = std::env::temp_dir().join(format!("wca-{ns}-operator.log"));
        let out = File::create(&log).unwrap();
        let operator = KillOnDrop::new(
            Command::new(env!("CARGO_BIN_EXE_workos-convex-auth"))
                .args(["run", "--namespace", &ns, "--admin-addr", "127.0.0.1:0"])
                .args(["--log-format", "json", "--secret-resync", "2s"])
                .args(["--proxy-image", "example.com/workos-convex-auth:test"])
                // The fakes serve plain http on loopback: allowed here, never by default.
                .args([
                    "--allow-http-upstream",
                    "--allowed-upstream-networks",
                    "127.0.0.0/8",
                ])
                .args(["--allowed-upstream-hosts", "127.0.0.1"])
                .args([
                    "--allow-http-convex",
                    "--allowed-convex-networks",
                    "127.0.0.0/8",
                    "--allowed-convex-hosts",
                    "127.0.0.1",
                ])
                .arg("--kubeconfig")
                .arg(cp.kubeconfig())
                .env("RUST_LOG", "debug")
                .stdout(Stdio::from(out.try_clone().unwrap()))
                .stderr(Stdio::from(out))
                .spawn()
                .unwrap(),
        );
        Self {
            client,
            ns,
            log,
            _operator: operator,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A Secret holding `value` under `key`; with `for_url`, annotated as the admin key of that
    /// deployment (the operator sends it nowhere else).
    async fn secret(&self, name: &str, key: &str, value: &str, for_url: Option<&str>) {
        let annotations = match for_url {
            Some(url) => json!({CONVEX_URL_ANNOTATION: url}),
            None => json!({}),
        };
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations}, "stringData": {key: value}
        }))
        .unwrap();
        self.api::<Secret>()
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
    }

    async fn create(&self, name: &str, spec: Value) {
        let r: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        self.api::<WorkOSConvexAuth>()
            .create(&PostParams::default(), &r)
            .await
            .unwrap();
    }

    /// Waits for condition `type_` with `status` and `reason`, and returns it.
    async fn condition(&self, name: &str, type_: &str, status: &str, reason: &str) -> Condition {
        let api = self.api::<WorkOSConvexAuth>();
        let what = format!("{name}: {type_}={status} ({reason})");
        eventually(WAIT, &what, || async {
            let r = api.get(name).await.ok()?;
            r.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; status: {:?}", self.status_text(name)))
    }

    /// Every status, Event and log line of the scenario, as one text: where a Secret's value
    /// must never appear.
    async fn what_users_see(&self) -> String {
        let mut seen = self.log_text();
        for r in self
            .api::<WorkOSConvexAuth>()
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            seen.push_str(&serde_json::to_string(&r.status).unwrap());
            seen.push_str(&r.name_any());
        }
        for e in self
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
        {
            seen.push_str(&serde_json::to_string(&e).unwrap());
        }
        seen
    }

    fn status_text(&self, name: &str) -> String {
        let out = ControlPlane::shared()
            .kubectl()
            .args([
                "get",
                "wca",
                "-n",
                &self.ns,
                name,
                "-o",
                "jsonpath={.status}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn generated_js(&self, name: &str) -> String {
        let cm = self
            .api::<ConfigMap>()
            .get(&format!("{name}-convex-auth"))
            .await
            .unwrap();
        cm.data.unwrap()["auth.config.js"].clone()
    }

    async fn events(&self, reason: &str) -> Vec<String> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
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
    let s = Scenario::start("convex-sync").await;
    s.secret(
        "convex-admin",
        "adminKey",
        &format!("{ADMIN_KEY}\n"),
        Some(&convex.url),
    )
    .await;
    s.secret("workos", "clientId", CID_A, None).await;
    s.create(
        "acme",
        json!({
            "clientIdFrom": {"secretKeyRef": {"name": "workos", "key": "clientId"}},
            "authDomain": "auth.acme.com",
            "authkitDomain": "acme.authkit.app",
            "jwks": {"mode": "Direct", "upstreamBase": workos.base_url()},
            "convex": {"url": convex.url, "adminKeySecretRef": {"name": "convex-admin", "key": "adminKey"}},
        }),
    )
    .await;

    // Nothing is deployed yet: the variables are set, and status says to push the file once.
    let waiting = s
        .condition("acme", "ConvexSynced", "False", "AuthConfigNotPushed")
        .await;
    assert!(
        waiting.message.contains("push the env-driven file once")
            && waiting.message.contains("npx convex deploy"),
        "{}",
        waiting.message
    );
    s.condition("acme", "Ready", "False", "AuthConfigNotPushed")
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
    let set = s.events("VariablesUpdated").await;
    assert!(
        set.iter().any(|e| e.contains(
            "set WORKOS_CLIENT_ID, WORKOS_JWKS_URL, WORKOS_AUTHKIT_JWKS_URL on http://127.0.0.1"
        )),
        "{set:?}"
    );

    // The one push: the generated file, which holds no value, evaluated by the deployment.
    let js = s.generated_js("acme").await;
    assert!(!js.contains(CID_A) && !js.contains("/sso/jwks/"), "{js}");
    convex
        .push(&js)
        .await
        .expect("the deployment accepts the generated file");
    let synced = s
        .condition("acme", "ConvexSynced", "True", "VariablesCurrent")
        .await;
    assert!(
        synced.message.contains("its auth config uses them"),
        "{}",
        synced.message
    );
    s.condition("acme", "Ready", "True", "Reconciled").await;

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
    s.secret("workos", "clientId", CID_B, None).await;
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
    s.condition("acme", "ConvexSynced", "True", "VariablesCurrent")
        .await;
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
    let s = Scenario::start("convex-rotation").await;
    s.secret("convex-admin", "adminKey", ADMIN_KEY, Some(&convex.url))
        .await;
    s.create(
        "acme",
        json!({
            "clientId": CID_A,
            "jwks": {"mode": "Inline", "upstreamBase": workos.base_url()},
            "proxy": {"refreshInterval": "10s"},
            "convex": {"url": convex.url, "adminKeySecretRef": {"name": "convex-admin", "key": "adminKey"}},
        }),
    )
    .await;
    s.condition("acme", "ConvexSynced", "False", "AuthConfigNotPushed")
        .await;
    convex
        .push(&s.generated_js("acme").await)
        .await
        .expect("the deployment accepts the generated file");
    s.condition("acme", "ConvexSynced", "True", "VariablesCurrent")
        .await;
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
    let rotated = eventually(WAIT, "KeysRotated event", || async {
        s.events("KeysRotated").await.into_iter().next()
    })
    .await
    .unwrap();
    assert!(
        rotated.contains("test-rsa-a → test-rsa-b") && rotated.contains("no push needed"),
        "{rotated}"
    );
    s.condition("acme", "ConvexSynced", "True", "VariablesCurrent")
        .await;
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
    let s = Scenario::start("convex-failures").await;
    s.secret("convex-admin", "adminKey", ADMIN_KEY, Some(&convex.url))
        .await;
    s.secret("picky-admin", "adminKey", ADMIN_KEY, Some(&picky.url))
        .await;
    s.secret("convex-wrong", "adminKey", WRONG_KEY, Some(&convex.url))
        .await;
    let spec = |url: &str, secret: &str, jwks: Value| {
        json!({
            "clientId": CID_A,
            "jwks": jwks,
            "convex": {"url": url, "adminKeySecretRef": {"name": secret, "key": "adminKey"}},
        })
    };
    let direct = json!({"mode": "Direct", "upstreamBase": workos.base_url()});
    let inline = |base: String| json!({"mode": "Inline", "upstreamBase": base});
    s.create("bad-key", spec(&convex.url, "convex-wrong", direct.clone()))
        .await;
    s.create("no-key", spec(&convex.url, "absent", direct.clone()))
        .await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    s.secret("closed-admin", "adminKey", ADMIN_KEY, Some(&closed))
        .await;
    s.create("unreachable", spec(&closed, "closed-admin", direct.clone()))
        .await;
    s.create(
        "refused",
        spec(&picky.url, "picky-admin", inline(workos.base_url())),
    )
    .await;
    s.create(
        "too-large",
        spec(&convex.url, "convex-admin", inline(large.base_url())),
    )
    .await;

    let expectations = [
        ("bad-key", "AdminKeyRefused", "BadAdminKey"),
        ("no-key", "AdminKeyMissing", "does not exist or has no key"),
        (
            "unreachable",
            "DeploymentUnreachable",
            "cannot reach the deployment",
        ),
        ("refused", "ChangeRefused", "refuses data: URLs"),
        ("too-large", "ValueTooLarge", "over Convex's limit of 8192"),
    ];
    for (name, reason, says) in expectations {
        let c = s.condition(name, "ConvexSynced", "False", reason).await;
        assert!(c.message.contains(says), "{name}: {}", c.message);
        s.condition(name, "Ready", "False", reason).await;
    }
    let refused = s
        .condition("refused", "ConvexSynced", "False", "ChangeRefused")
        .await;
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
    let warnings = s.events("AdminKeyRefused").await;
    assert!(!warnings.is_empty(), "a Warning event names the refusal");
    let seen = s.what_users_see().await;
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
    let s = Scenario::start("convex-routing").await;
    s.secret("unmarked", "adminKey", ADMIN_KEY, None).await;
    s.secret("elsewhere", "adminKey", ADMIN_KEY, Some(&other.url))
        .await;
    s.secret("marked", "adminKey", ADMIN_KEY, Some(&convex.url))
        .await;
    let spec = |url: &str, secret: &str| {
        json!({
            "clientId": CID_A,
            "jwks": {"mode": "Direct"},
            "convex": {"url": url, "adminKeySecretRef": {"name": secret, "key": "adminKey"}},
        })
    };
    // The fake's own address under a name the admin did not list.
    let unlisted = convex.url.replace("127.0.0.1", "localhost");
    s.create("unmarked", spec(&convex.url, "unmarked")).await;
    s.create("elsewhere", spec(&convex.url, "elsewhere")).await;
    s.create("unlisted", spec(&unlisted, "marked")).await;
    for name in ["unmarked", "elsewhere"] {
        let c = s
            .condition(name, "ConvexSynced", "False", "AdminKeyNotForDeployment")
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
    let c = s
        .condition("unlisted", "ConvexSynced", "False", "NotAllowed")
        .await;
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
    s.condition("marked", "ConvexSynced", "False", "AuthConfigNotPushed")
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
    s.condition(
        "marked",
        "ConvexSynced",
        "False",
        "AdminKeyNotForDeployment",
    )
    .await;
    let before = api_requests(&convex).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        api_requests(&convex).await,
        before,
        "the old deployment was asked again"
    );
    assert_eq!(api_requests(&other).await, 0, "the new one was asked");

    let seen = s.what_users_see().await;
    assert!(!seen.contains(ADMIN_KEY) && !seen.contains("0a1b2c3d4e5f"));
}
