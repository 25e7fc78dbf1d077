//! Tokens signed with the upstream's private key verify through the mirror's URL, with two
//! independent clients: `jsonwebtoken` applying Convex's rules, and npm `jose`'s remote JWKS set.

use super::support;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::jose::jose_dir;
use support::keys::sign_rs256;
use support::mirror::{Mirror, jwks_of};
use wca_test_harness::fake_workos::FakeWorkos;

const CLIENT_ID: &str = "client_01TESTCLIENT";
const CLIENT: &str = "/sso/jwks/client_01TESTCLIENT";
const HOUR: Duration = Duration::from_secs(3600);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn user_management_claims(iat_offset: i64, exp_offset: i64) -> Value {
    let t = now();
    json!({
        "iss": format!("https://api.workos.com/user_management/{CLIENT_ID}"),
        "sub": "user_01TEST",
        "sid": "session_01TEST",
        "iat": t + iat_offset,
        "exp": t + exp_offset,
    })
}

/// Convex's issuer rule: prefix `https://` when there is no scheme, strip every trailing `/`.
fn normalise_issuer(iss: &str) -> String {
    let with_scheme = if iss.starts_with("http://") || iss.starts_with("https://") {
        iss.to_string()
    } else {
        format!("https://{iss}")
    };
    with_scheme.trim_end_matches('/').to_string()
}

/// Verifies `token` against `jwks` the way Convex checks a customJwt provider.
fn convex_verify(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    application_id: Option<&str>,
) -> Result<Value, String> {
    const SKEW: u64 = 5;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("the token header has no kid")?;
    let jwk = jwks
        .find(&kid)
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    if let Some(alg) = jwk.common.key_algorithm
        && format!("{alg:?}") != format!("{:?}", header.alg)
    {
        return Err(format!(
            "the JWK alg {alg:?} differs from the token's {:?}",
            header.alg
        ));
    }
    if header.alg != Algorithm::RS256 {
        return Err("not the configured algorithm".into());
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = SKEW;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    match application_id {
        Some(id) => validation.set_audience(&[id]),
        None => validation.validate_aud = false,
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    let iss = claims["iss"].as_str().ok_or("no iss")?;
    if normalise_issuer(iss) != normalise_issuer(issuer) {
        return Err(format!("issuer {iss} does not match {issuer}"));
    }
    if claims["iat"]
        .as_i64()
        .is_some_and(|iat| iat > now() + SKEW as i64)
    {
        return Err("iat is in the future".into());
    }
    Ok(claims)
}

async fn mirror_serving_rsa_a() -> (FakeWorkos, Mirror) {
    let fake = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let mirror = Mirror::ready(&fake.base_url(), CLIENT, Duration::from_secs(30), HOUR).await;
    (fake, mirror)
}

#[tokio::test]
async fn jsonwebtoken_verifies_through_the_mirror_under_convex_rules() {
    let (_fake, mirror) = mirror_serving_rsa_a().await;
    let jwks: JwkSet =
        serde_json::from_slice(&mirror.get(CLIENT).await.bytes().await.unwrap()).unwrap();
    let user_management = format!("https://api.workos.com/user_management/{CLIENT_ID}");

    // Newer environments: user_management issuer, no aud, no applicationID.
    let token = sign_rs256(&user_management_claims(0, 300), "test-rsa-a", "rsa-a.pem");
    let claims = convex_verify(&token, &jwks, &user_management, None).unwrap();
    assert_eq!(claims["sub"], "user_01TEST");

    // Older environments: `https://api.workos.com` with aud, provider written with a trailing `/`.
    let mut legacy = user_management_claims(0, 300);
    legacy["iss"] = json!("https://api.workos.com");
    legacy["aud"] = json!(CLIENT_ID);
    let token = sign_rs256(&legacy, "test-rsa-a", "rsa-a.pem");
    assert!(convex_verify(&token, &jwks, "https://api.workos.com/", Some(CLIENT_ID)).is_ok());
    assert!(
        convex_verify(&token, &jwks, "api.workos.com", Some(CLIENT_ID)).is_ok(),
        "scheme is prefixed"
    );
    assert!(
        convex_verify(
            &token,
            &jwks,
            "https://api.workos.com/",
            Some("client_OTHER")
        )
        .is_err(),
        "aud checked"
    );

    // ±5 s skew, and nothing beyond it.
    let just_expired = sign_rs256(&user_management_claims(-300, -3), "test-rsa-a", "rsa-a.pem");
    assert!(convex_verify(&just_expired, &jwks, &user_management, None).is_ok());
    let expired = sign_rs256(
        &user_management_claims(-300, -30),
        "test-rsa-a",
        "rsa-a.pem",
    );
    assert!(convex_verify(&expired, &jwks, &user_management, None).is_err());
    let future_iat = sign_rs256(&user_management_claims(60, 300), "test-rsa-a", "rsa-a.pem");
    assert!(convex_verify(&future_iat, &jwks, &user_management, None).is_err());

    // Wrong issuer, a key the mirror does not serve, a key lying about its kid.
    for (kid, pem, issuer) in [
        ("test-rsa-a", "rsa-a.pem", "https://api.workos.com"),
        ("test-rsa-b", "rsa-b.pem", user_management.as_str()),
        ("test-rsa-a", "rsa-b.pem", user_management.as_str()),
    ] {
        let token = sign_rs256(&user_management_claims(0, 300), kid, pem);
        let verified = convex_verify(&token, &jwks, issuer, None);
        assert!(verified.is_err(), "{kid} signed by {pem}, for {issuer}");
    }
}

/// Installs the pinned `jose` (npm ci) unless `node_modules` already has it; `.ci/run` may
/// have done so. A missing node or npm fails the test: this check must not pass silently.

#[tokio::test]
async fn jose_remote_jwks_verifies_through_the_mirror() {
    let (_fake, mirror) = mirror_serving_rsa_a().await;
    let issuer = format!("https://api.workos.com/user_management/{CLIENT_ID}");
    let good = sign_rs256(&user_management_claims(0, 300), "test-rsa-a", "rsa-a.pem");
    let unknown_key = sign_rs256(&user_management_claims(0, 300), "test-rsa-b", "rsa-b.pem");
    let forged = sign_rs256(&user_management_claims(0, 300), "test-rsa-a", "rsa-b.pem");
    let dir = jose_dir();
    let url = mirror.url(CLIENT);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("verify.mjs")
            .args([
                url.as_str(),
                issuer.as_str(),
                "-",
                &good,
                &unknown_key,
                &forged,
            ])
            .current_dir(dir)
            .output()
            .expect("node is required for the jose check (install Node.js)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3, "{stdout}");
    assert_eq!(
        results[0],
        json!({"ok": true, "kid": "test-rsa-a", "sub": "user_01TEST"})
    );
    assert_eq!(
        results[1],
        json!({"ok": false, "code": "ERR_JWKS_NO_MATCHING_KEY"})
    );
    assert_eq!(
        results[2],
        json!({"ok": false, "code": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"})
    );
    let requests = mirror
        .metric(&format!(
            "wca_proxy_requests_total{{path=\"{CLIENT}\",status=\"200\"}}"
        ))
        .await;
    assert!(requests >= 1.0, "jose fetched the keys from the mirror");
}
