//! Conformance: RS256 tokens for every WorkOS issuer variant, signed with test keys, are
//! accepted by the generated config under Convex's rules; tokens that must fail, fail.

use super::support;

use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use support::keys::{key_fixture, sign_rs256};
use workos_convex_auth::api::Algorithm;
use workos_convex_auth::convex::config::AuthConfig;
use workos_convex_auth::convex::generate::{GeneratorInput, generate};
use workos_convex_auth::convex::rules::Mismatch;
use workos_convex_auth::convex::verify::{Rejection, decode, verify};

const CID: &str = "client_01JEXAMPLE0000000000000000";
const JWKS: &str = "https://api.workos.com/sso/jwks/client_01JEXAMPLE0000000000000000";
const AUTHKIT_JWKS: &str = "https://acme.authkit.app/oauth2/jwks";
const NOW: i64 = 1_800_000_000;

fn config() -> AuthConfig {
    generate(&GeneratorInput {
        client_id: CID,
        auth_domain: Some("auth.acme.com"),
        authkit_domain: Some("acme.authkit.app"),
        algorithm: Algorithm::RS256,
        extra_issuers: &[],
        jwks_url: JWKS,
        authkit_jwks_url: Some(AUTHKIT_JWKS),
    })
    .unwrap()
}

fn sign(claims: Value, kid: &str, key: &str) -> String {
    sign_rs256(&claims, kid, key)
}

fn claims(iss: &str, aud: Option<&str>) -> Value {
    let mut c = json!({"iss": iss, "sub": "user_01", "sid": "session_01", "iat": NOW - 10, "exp": NOW + 300});
    if let Some(aud) = aud {
        c["aud"] = json!(aud);
    }
    c
}

/// Runs Convex's checks; the key set is the test set, served at either JWKS URL of the config.
fn convex(token: &str) -> Result<usize, Rejection> {
    let keys: JwkSet = serde_json::from_slice(&key_fixture("jwks-rsa.json")).unwrap();
    let decoded = decode(token).unwrap();
    verify(
        &config(),
        token,
        &decoded,
        &mut |p| {
            assert!(
                p.jwks == JWKS || p.jwks == AUTHKIT_JWKS,
                "unexpected JWKS URL {}",
                p.jwks
            );
            Ok(keys.clone())
        },
        NOW,
    )
}

#[test]
fn every_workos_issuer_variant_is_accepted_by_the_intended_provider() {
    let cases = [
        (
            "https://api.workos.com",
            Some(CID),
            0,
            "bare api.workos.com with aud (older environments)",
        ),
        (
            "https://api.workos.com/",
            Some(CID),
            0,
            "bare with trailing slash",
        ),
        (
            "https://api.workos.com/user_management/client_01JEXAMPLE0000000000000000",
            None,
            1,
            "user_management without aud",
        ),
        (
            "https://auth.acme.com",
            Some(CID),
            2,
            "custom domain with aud",
        ),
        (
            "https://auth.acme.com/user_management/client_01JEXAMPLE0000000000000000",
            None,
            3,
            "custom domain user_management",
        ),
        (
            "https://acme.authkit.app",
            Some(CID),
            4,
            "AuthKit domain with aud",
        ),
    ];
    for (iss, aud, provider, what) in cases {
        assert_eq!(
            convex(&sign(claims(iss, aud), "test-rsa-a", "rsa-a.pem")),
            Ok(provider),
            "{what}"
        );
    }
    // The second key of the set verifies too (WorkOS rotates by adding a key).
    assert_eq!(
        convex(&sign(
            claims("https://api.workos.com", Some(CID)),
            "test-rsa-b",
            "rsa-b.pem"
        )),
        Ok(0)
    );
    // aud as an array containing the client id.
    let mut c = claims("https://api.workos.com", None);
    c["aud"] = json!(["other", CID]);
    assert_eq!(convex(&sign(c, "test-rsa-a", "rsa-a.pem")), Ok(0));
}

#[test]
fn tokens_that_must_fail_do_fail() {
    // Another client's user_management issuer matches nothing.
    let other = sign(
        claims("https://api.workos.com/user_management/client_OTHER", None),
        "test-rsa-a",
        "rsa-a.pem",
    );
    assert!(matches!(
        convex(&other),
        Err(Rejection::NoProviderMatched(_))
    ));

    // Bare issuer without aud: provider 1 refuses on aud, the others on issuer.
    let no_aud = sign(
        claims("https://api.workos.com", None),
        "test-rsa-a",
        "rsa-a.pem",
    );
    let Err(Rejection::NoProviderMatched(reasons)) = convex(&no_aud) else {
        panic!("must be rejected")
    };
    assert!(
        matches!(&reasons[0], Mismatch::Audience { application_id, .. } if application_id == CID)
    );
    assert!(
        reasons[1..]
            .iter()
            .all(|m| matches!(m, Mismatch::Issuer { .. }))
    );

    // Wrong aud on the bare issuer.
    let wrong_aud = sign(
        claims("https://api.workos.com", Some("client_OTHER")),
        "test-rsa-a",
        "rsa-a.pem",
    );
    assert!(matches!(
        convex(&wrong_aud),
        Err(Rejection::NoProviderMatched(_))
    ));

    // A foreign issuer, and case differences (Convex compares case-sensitively).
    for iss in [
        "https://evil.example.com",
        "https://API.workos.com/user_management/client_01JEXAMPLE0000000000000000",
    ] {
        assert!(
            matches!(
                convex(&sign(claims(iss, Some(CID)), "test-rsa-a", "rsa-a.pem")),
                Err(Rejection::NoProviderMatched(_))
            ),
            "{iss}"
        );
    }

    // Unknown kid.
    let unknown = sign(
        claims("https://api.workos.com", Some(CID)),
        "rotated-away",
        "rsa-a.pem",
    );
    assert!(
        matches!(convex(&unknown), Err(Rejection::UnknownKid { kid, .. }) if kid == "rotated-away")
    );

    // Signed by a key that is not the one its kid names.
    let forged = sign(
        claims("https://api.workos.com", Some(CID)),
        "test-rsa-a",
        "rsa-b.pem",
    );
    assert!(matches!(
        convex(&forged),
        Err(Rejection::BadSignature { .. })
    ));

    // Expired beyond the 5 s skew, and within it.
    let mut c = claims("https://api.workos.com", Some(CID));
    c["exp"] = json!(NOW - 6);
    assert!(matches!(
        convex(&sign(c.clone(), "test-rsa-a", "rsa-a.pem")),
        Err(Rejection::Expired { .. })
    ));
    c["exp"] = json!(NOW - 4);
    assert_eq!(convex(&sign(c, "test-rsa-a", "rsa-a.pem")), Ok(0));
}
