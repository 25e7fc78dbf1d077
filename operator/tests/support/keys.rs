//! The committed TEST-ONLY keys (tests/fixtures/keys) and tokens signed with them.

use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Reads a file of `tests/fixtures/keys`.
pub fn key_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/keys")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A token signed by `alg` with the PEM key fixture `key` (e.g. `rsa-a.pem`, `ec-a.pem`),
/// with header `kid` when given. HS256 signs with a fixed shared secret (`key` unused): the
/// forgery a JWKS verifier must refuse.
pub fn sign(claims: &Value, alg: Algorithm, kid: Option<&str>, key: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&key_fixture(key)).expect("PEM test key"),
        Algorithm::HS256 => EncodingKey::from_secret(b"shared secret"),
        _ => EncodingKey::from_rsa_pem(&key_fixture(key)).expect("PEM test key"),
    };
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

/// An RS256 token with header `kid`, signed with the PEM key fixture `key` (e.g. `rsa-a.pem`).
pub fn sign_rs256(claims: &Value, kid: &str, key: &str) -> String {
    sign(claims, Algorithm::RS256, Some(kid), key)
}
