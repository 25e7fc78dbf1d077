//! Validation and sanitising of an upstream JWKS document.
//!
//! The rule is "only what Convex needs, only public material": a document is served only if
//! every key in it passes, and what is served is rebuilt from an allow-list of public members,
//! so an unknown or private member can never slip through.

use bytes::Bytes;
use serde_json::{Map, Value};

/// Members copied into the served key, in this order. Anything else is dropped.
const PUBLIC_MEMBERS: [&str; 12] = [
    "kty", "kid", "alg", "use", "key_ops", "n", "e", "crv", "x", "y", "x5c", "x5t",
];
/// `x5t#S256` does not fit the array above's naming scheme; it is public too.
const PUBLIC_X5T_S256: &str = "x5t#S256";
/// Private RSA/EC members and the symmetric secret: their presence means a leaked key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why an upstream JWKS document is refused. Nothing of a refused document is served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The body does not parse as JSON.
    #[error("the document is not JSON: {0}")]
    NotJson(String),
    /// The top level is not an object.
    #[error("the document is not a JSON object")]
    NotObject,
    /// There is no `keys` member holding an array.
    #[error("the document has no \"keys\" array")]
    NoKeys,
    /// `keys` is an empty array.
    #[error("the \"keys\" array is empty")]
    EmptyKeys,
    /// An entry of `keys` is not an object.
    #[error("keys[{index}] is not a JSON object")]
    KeyNotObject { index: usize },
    /// More keys than any signer publishes: a hostile or broken upstream.
    #[error("the document has {count} keys, more than the {MAX_KEYS} a JWKS may hold here")]
    TooManyKeys { count: usize },
    /// A `kid` longer than any signer uses; not quoted (it would flood status and logs).
    #[error("keys[{index}] has a kid of {bytes} bytes, over the limit of {MAX_KID_BYTES}")]
    KidTooLong { index: usize, bytes: usize },
    /// A key has no non-empty string `kid`; Convex needs one to select the key.
    #[error("keys[{index}] has no kid: Convex selects keys by kid")]
    MissingKid { index: usize },
    /// Two keys share a `kid`, so a token could not name one of them.
    #[error("keys[{index}] (kid {kid:?}) repeats a kid already in the document")]
    DuplicateKid { index: usize, kid: String },
    /// A symmetric (`oct`) key, which would let anyone holding it mint tokens.
    #[error("keys[{index}] (kid {kid:?}) has kty oct: symmetric keys are refused")]
    Symmetric { index: usize, kid: String },
    /// A private member is present: the upstream published private key material.
    #[error(
        "keys[{index}] (kid {kid:?}) has private member {member:?}: private key material is refused"
    )]
    PrivateMember {
        index: usize,
        kid: String,
        member: &'static str,
    },
    /// `kty` is missing or not `RSA`/`EC`.
    #[error("keys[{index}] (kid {kid:?}) has kty {kty:?}: only RSA and EC keys are served")]
    UnsupportedKty {
        index: usize,
        kid: String,
        kty: String,
    },
    /// `alg` is not RS256 (RSA) or ES256 (EC).
    #[error(
        "keys[{index}] (kid {kid:?}) has alg {alg:?}: only RS256 (RSA) and ES256 (EC P-256) are served"
    )]
    UnsupportedAlg {
        index: usize,
        kid: String,
        alg: String,
    },
    /// An EC key on a curve other than P-256, which ES256 requires.
    #[error("keys[{index}] (kid {kid:?}) has crv {crv:?}: ES256 needs P-256")]
    UnsupportedCurve {
        index: usize,
        kid: String,
        crv: String,
    },
    /// A public member the key type needs is missing or not a non-empty string.
    #[error("keys[{index}] (kid {kid:?}) lacks {member:?}")]
    MissingMember {
        index: usize,
        kid: String,
        member: &'static str,
    },
}

/// Most keys a document may hold (WorkOS publishes one or two; a rotation adds one).
pub const MAX_KEYS: usize = 32;
/// Longest `kid` (WorkOS's are about 30 bytes); every error and status line that names a kid
/// is bounded by it.
pub const MAX_KID_BYTES: usize = 256;

/// A validated JWKS with public members only, serialised once, ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwks {
    /// Compact JSON `{"keys":[...]}`.
    pub body: Bytes,
    /// The key ids in document order.
    pub kids: Vec<String>,
}

/// Validates an upstream JWKS document and rebuilds it from public members only.
///
/// Every key must have a `kid`, a `kty` of `RSA` (with `n`, `e`) or `EC` (P-256 with `x`, `y`),
/// and an `alg`, when present, of RS256/ES256 matching the key type; a missing `alg` is filled
/// in, since some Convex versions need it. Any private member refuses the whole document.
pub fn sanitize(body: &[u8]) -> Result<PublicJwks, JwksError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| JwksError::NotJson(e.to_string()))?;
    let Value::Object(doc) = doc else {
        return Err(JwksError::NotObject);
    };
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err(JwksError::NoKeys);
    };
    if keys.is_empty() {
        return Err(JwksError::EmptyKeys);
    }
    if keys.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys { count: keys.len() });
    }
    let mut kids: Vec<String> = Vec::with_capacity(keys.len());
    let mut out = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let key = sanitize_key(index, key)?;
        let kid = key
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if kids.contains(&kid) {
            return Err(JwksError::DuplicateKid { index, kid });
        }
        kids.push(kid);
        out.push(Value::Object(key));
    }
    let mut served = Map::new();
    served.insert("keys".into(), Value::Array(out));
    // Serialising a Value built from Strings and arrays cannot fail.
    let body = serde_json::to_vec(&Value::Object(served)).unwrap_or_default();
    Ok(PublicJwks {
        body: Bytes::from(body),
        kids,
    })
}

fn sanitize_key(index: usize, key: &Value) -> Result<Map<String, Value>, JwksError> {
    let Value::Object(key) = key else {
        return Err(JwksError::KeyNotObject { index });
    };
    let kid = match key.get("kid") {
        Some(Value::String(kid)) if kid.len() > MAX_KID_BYTES => {
            return Err(JwksError::KidTooLong {
                index,
                bytes: kid.len(),
            });
        }
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        _ => return Err(JwksError::MissingKid { index }),
    };
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or_default();
    if kty == "oct" {
        return Err(JwksError::Symmetric { index, kid });
    }
    if let Some(member) = PRIVATE_MEMBERS.into_iter().find(|m| key.contains_key(*m)) {
        return Err(JwksError::PrivateMember { index, kid, member });
    }
    let (required, default_alg): (&[&'static str], _) = match kty {
        "RSA" => (&["n", "e"], "RS256"),
        "EC" => (&["crv", "x", "y"], "ES256"),
        other => {
            return Err(JwksError::UnsupportedKty {
                index,
                kid,
                kty: other.to_string(),
            });
        }
    };
    for member in required {
        if !matches!(key.get(*member), Some(Value::String(s)) if !s.is_empty()) {
            return Err(JwksError::MissingMember { index, kid, member });
        }
    }
    if kty == "EC" {
        let crv = key.get("crv").and_then(Value::as_str).unwrap_or_default();
        if crv != "P-256" {
            return Err(JwksError::UnsupportedCurve {
                index,
                kid,
                crv: crv.to_string(),
            });
        }
    }
    match key.get("alg") {
        None => {}
        Some(Value::String(alg)) if alg == default_alg => {}
        Some(other) => {
            let alg = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(JwksError::UnsupportedAlg { index, kid, alg });
        }
    }
    let mut out = Map::new();
    for member in PUBLIC_MEMBERS.into_iter().chain([PUBLIC_X5T_S256]) {
        if let Some(value) = key.get(member) {
            out.insert(member.to_string(), value.clone());
        }
    }
    out.entry("alg")
        .or_insert_with(|| Value::String(default_alg.to_string()));
    Ok(out)
}

#[cfg(test)]
mod caps {
    use super::*;

    fn rsa(kid: &str) -> Value {
        serde_json::json!({"kty": "RSA", "kid": kid, "n": "AQAB", "e": "AQAB"})
    }

    /// Issue 22: a hostile upstream cannot make status, Events or logs grow with its kids.
    #[test]
    fn long_kids_and_many_keys_are_refused_without_quoting_them() {
        let long = "k".repeat(250 * 1024);
        let doc = serde_json::json!({"keys": [rsa(&long), rsa(&long)]});
        let error = sanitize(doc.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            error,
            JwksError::KidTooLong {
                index: 0,
                bytes: long.len()
            }
        );
        assert!(error.to_string().len() < 200, "{error}");
        let at_limit = "k".repeat(MAX_KID_BYTES);
        let doc = serde_json::json!({"keys": [rsa(&at_limit)]});
        assert!(sanitize(doc.to_string().as_bytes()).is_ok());
        let many: Vec<Value> = (0..=MAX_KEYS).map(|i| rsa(&format!("k{i}"))).collect();
        let doc = serde_json::json!({ "keys": many });
        assert_eq!(
            sanitize(doc.to_string().as_bytes()).unwrap_err(),
            JwksError::TooManyKeys {
                count: MAX_KEYS + 1
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RSA_N: &str = "6OeJ52axzhb3qq-0Lg5ijeNSk7jFEGPTsj6US2aETQznn";

    fn rsa(kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"})
    }

    fn check(doc: Value) -> Result<PublicJwks, JwksError> {
        sanitize(doc.to_string().as_bytes())
    }

    #[test]
    fn keeps_public_members_and_fills_alg() {
        let mut ec = json!({"kty": "EC", "kid": "e1", "crv": "P-256", "x": "xx", "y": "yy",
                             "x5u": "https://elsewhere", "extra": 1});
        let got = check(json!({"keys": [rsa("r1"), ec.clone()], "other": true})).unwrap();
        assert_eq!(got.kids, ["r1", "e1"]);
        let served: Value = serde_json::from_slice(&got.body).unwrap();
        ec["alg"] = json!("ES256");
        let ec = ec.as_object_mut().unwrap();
        ec.remove("x5u");
        ec.remove("extra");
        assert_eq!(served, json!({"keys": [rsa("r1"), ec]}));
    }

    #[test]
    fn serves_the_fixture_set_unchanged() {
        let raw = include_bytes!("../../../tests/fixtures/keys/jwks-rsa.json");
        let got = sanitize(raw).unwrap();
        assert_eq!(got.kids, ["test-rsa-a", "test-rsa-b"]);
        let a: Value = serde_json::from_slice(raw).unwrap();
        let b: Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn refuses_documents_that_are_not_key_sets() {
        assert!(matches!(sanitize(b"<html>"), Err(JwksError::NotJson(_))));
        assert_eq!(check(json!([rsa("a")])), Err(JwksError::NotObject));
        assert_eq!(check(json!({"keys": {}})), Err(JwksError::NoKeys));
        assert_eq!(check(json!({})), Err(JwksError::NoKeys));
        assert_eq!(check(json!({"keys": []})), Err(JwksError::EmptyKeys));
        assert_eq!(
            check(json!({"keys": [rsa("a"), 3]})),
            Err(JwksError::KeyNotObject { index: 1 })
        );
        assert_eq!(
            check(json!({"keys": [rsa("a"), rsa("a")]})),
            Err(JwksError::DuplicateKid {
                index: 1,
                kid: "a".into()
            })
        );
    }

    #[test]
    fn refuses_keys_convex_could_not_use() {
        let mut no_kid = rsa("x");
        no_kid.as_object_mut().unwrap().remove("kid");
        assert_eq!(
            check(json!({"keys": [rsa("a"), no_kid]})),
            Err(JwksError::MissingKid { index: 1 })
        );

        let mut empty_kid = rsa("");
        empty_kid["kid"] = json!("");
        assert_eq!(
            check(json!({"keys": [empty_kid]})),
            Err(JwksError::MissingKid { index: 0 })
        );

        let okp = json!({"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": "xx"});
        assert!(matches!(
            check(json!({"keys": [okp]})),
            Err(JwksError::UnsupportedKty { .. })
        ));

        let mut rs512 = rsa("a");
        rs512["alg"] = json!("RS512");
        assert!(matches!(
            check(json!({"keys": [rs512]})),
            Err(JwksError::UnsupportedAlg { .. })
        ));

        let mut es_on_rsa = rsa("a");
        es_on_rsa["alg"] = json!("ES256");
        assert!(matches!(
            check(json!({"keys": [es_on_rsa]})),
            Err(JwksError::UnsupportedAlg { .. })
        ));

        let p384 = json!({"kty": "EC", "kid": "e", "crv": "P-384", "x": "xx", "y": "yy"});
        assert!(matches!(
            check(json!({"keys": [p384]})),
            Err(JwksError::UnsupportedCurve { .. })
        ));

        let mut no_n = rsa("a");
        no_n.as_object_mut().unwrap().remove("n");
        assert_eq!(
            check(json!({"keys": [no_n]})),
            Err(JwksError::MissingMember {
                index: 0,
                kid: "a".into(),
                member: "n"
            })
        );
    }

    #[test]
    fn refuses_secret_material() {
        let oct = json!({"kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0"});
        let err = check(json!({"keys": [rsa("a"), oct]})).unwrap_err();
        assert_eq!(
            err,
            JwksError::Symmetric {
                index: 1,
                kid: "h".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "keys[1] (kid \"h\") has kty oct: symmetric keys are refused"
        );

        for member in PRIVATE_MEMBERS {
            let mut key = rsa("p");
            key[member] = json!("secret");
            let err = check(json!({"keys": [key]})).unwrap_err();
            assert_eq!(
                err,
                JwksError::PrivateMember {
                    index: 0,
                    kid: "p".into(),
                    member
                }
            );
            assert!(
                !err.to_string().contains("secret"),
                "the error must not echo key material"
            );
        }
    }
}
