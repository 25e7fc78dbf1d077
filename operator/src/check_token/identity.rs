//! The identity Convex builds from an accepted token: what `ctx.auth.getUserIdentity()` returns.
//! Pure, and built the way convex-backend builds it for a `customJwt` provider
//! (`UserIdentity::from_custom_jwt` and `extract_custom_jwt_claims` in
//! `crates/keybroker/src/broker.rs`; serialised for functions by `UserIdentityAttributesJson` in
//! `crates/convex/sync_types/src/types/json.rs`):
//!
//! - `tokenIdentifier` is `<iss>|<sub>` with the token's raw `iss` (not the provider's
//!   normalised issuer); `issuer` and `subject` are the raw claims.
//! - The token is parsed as biscuit's `ClaimsSet<serde_json::Value>`: the registered claims
//!   (`iss sub aud exp nbf iat jti`) are taken by `RegisteredClaims` (a flattened struct), so only
//!   the rest reach `custom_claims`; `fva` is then removed.
//! - Nothing is mapped to the OIDC named fields (`name`, `email`, …): for a customJwt provider
//!   every other claim, `email` included, is a custom claim under its own name.
//! - Objects are flattened into dotted keys (`{"act": {"sub": "x"}}` becomes `"act.sub": "x"`,
//!   an empty object disappears); arrays and scalars keep their JSON value.
//!
//! OIDC providers build the identity differently (`UserIdentity::from_token`, same file); the
//! README lists the differences. check-token does not verify OIDC providers, so it never shows
//! one of those identities.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// The claims biscuit's `RegisteredClaims` consumes before the private claims are read.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// Removed after flattening: it grows over time and would bust Convex's query cache.
const DROPPED: &str = "fva";

/// `ctx.auth.getUserIdentity()` for an accepted token. Serialises to the object the function
/// sees: the named fields, then the custom claims at the top level (Convex flattens them too).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub token_identifier: String,
    pub issuer: String,
    pub subject: String,
    /// In key order, as Convex keeps them (a `BTreeMap`).
    #[serde(flatten)]
    pub custom_claims: BTreeMap<String, Value>,
}

/// The JSON type of a value, as the text output names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

impl JsonType {
    pub fn of(value: &Value) -> Self {
        match value {
            Value::String(_) => JsonType::String,
            Value::Number(_) => JsonType::Number,
            Value::Bool(_) => JsonType::Boolean,
            Value::Null => JsonType::Null,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Null => "null",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }
}

/// The identity Convex builds from these claims; `None` when `iss` or `sub` is not a string
/// (Convex cannot build one then: biscuit refuses the payload).
pub fn identity(claims: &Value) -> Option<Identity> {
    let issuer = claims.get("iss")?.as_str()?;
    let subject = claims.get("sub")?.as_str()?;
    let private: Map<String, Value> = claims
        .as_object()?
        .iter()
        .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut custom_claims = BTreeMap::new();
    flatten("", &private, &mut custom_claims);
    custom_claims.remove(DROPPED);
    Some(Identity {
        token_identifier: format!("{issuer}|{subject}"),
        issuer: issuer.to_string(),
        subject: subject.to_string(),
        custom_claims,
    })
}

/// `extract_custom_jwt_claims`: nested objects become `outer.inner` keys, recursively.
fn flatten(prefix: &str, object: &Map<String, Value>, out: &mut BTreeMap<String, Value>) {
    for (key, value) in object {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(nested) => flatten(&key, nested, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registered_claims_and_fva_are_dropped_and_objects_flattened() {
        let claims = json!({
            "iss": "https://api.workos.com/user_management/client_1", "sub": "user_1",
            "aud": "client_1", "exp": 2, "nbf": 1, "iat": 1, "jti": "j",
            "fva": [3, 4], "sid": "session_1", "email": "a@b.c", "n": 1.5, "ok": true,
            "nothing": null, "act": {"sub": "admin", "deep": {"x": [1]}}, "empty": {},
            "roles": [{"k": "v"}],
        });
        let id = identity(&claims).unwrap();
        assert_eq!(
            id.token_identifier,
            "https://api.workos.com/user_management/client_1|user_1"
        );
        assert_eq!(
            id.custom_claims,
            BTreeMap::from([
                ("act.deep.x".to_string(), json!([1])),
                ("act.sub".to_string(), json!("admin")),
                ("email".to_string(), json!("a@b.c")),
                ("n".to_string(), json!(1.5)),
                ("nothing".to_string(), json!(null)),
                ("ok".to_string(), json!(true)),
                // Objects inside arrays stay as they are: only top-level objects recurse.
                ("roles".to_string(), json!([{"k": "v"}])),
                ("sid".to_string(), json!("session_1")),
            ])
        );
        // What the function sees: named fields first, then the claims, at the top level.
        assert_eq!(
            serde_json::to_string(
                &identity(&json!({"iss": "i", "sub": "s", "b": 1, "a": "x"})).unwrap()
            )
            .unwrap(),
            r#"{"tokenIdentifier":"i|s","issuer":"i","subject":"s","a":"x","b":1}"#
        );
    }

    #[test]
    fn no_identity_without_string_iss_and_sub() {
        assert_eq!(identity(&json!({"iss": "i"})), None);
        assert_eq!(identity(&json!({"iss": "i", "sub": 7})), None);
        assert_eq!(identity(&json!({"sub": "s"})), None);
    }

    #[test]
    fn types_are_named() {
        let names: Vec<_> = [
            json!("s"),
            json!(1),
            json!(false),
            json!(null),
            json!([]),
            json!({}),
        ]
        .iter()
        .map(|v| JsonType::of(v).name())
        .collect();
        assert_eq!(
            names,
            ["string", "number", "boolean", "null", "array", "object"]
        );
    }
}
