//! The committed TEST-ONLY keys (tests/fixtures/keys) and tokens signed with them.

use std::path::Path;

use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;

/// Reads a file of `tests/fixtures/keys`.
pub fn key_fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/keys")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// An RS256 token with header `kid`, signed with the PEM key fixture `key` (e.g. `rsa-a.pem`).
pub fn sign_rs256(claims: &Value, kid: &str, key: &str) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_rsa_pem(&key_fixture(key)).expect("PEM test key");
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}
