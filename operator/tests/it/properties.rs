//! Property tests (issue 11) for the code that reads untrusted input: the token decoder and
//! check-token's whole pipeline, the JWKS sanitiser and the duration parser. Every property
//! asserts that nothing panics and an invariant that could break. The inputs are built to reach
//! the interesting paths (three-part tokens with extreme claims, key sets with odd members,
//! digit-heavy durations), not only random bytes.
//!
//! Cases: proptest's default of 256 per property (10-20 s in all on 2 cores); `PROPTEST_CASES=N`
//! runs deeper. A failing input is saved to tests/it/properties.regressions and replayed first.
//!
//! Debug and release: this runs in the test profile, with overflow checks and debug assertions.
//! `[profile.release]` keeps overflow checks on (Cargo.toml), so the shipped binary does the
//! same arithmetic as the one tested here: an input that does not panic here does not panic
//! there, and no overflow wraps silently in either.

use super::support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};
use support::keys::{key_fixture, sign};
use workos_convex_auth::check_token::{
    CheckTokenArgs, CheckTokenError, OutputFormat, Report, Verdict, check_token, render,
};
use workos_convex_auth::convex::verify::{MAX_TOKEN_BYTES, MalformedToken, decode};
use workos_convex_auth::duration::{MAX_DURATION, format_duration, parse_duration};
use workos_convex_auth::jwks::{JwksError, sanitize};

const CID: &str = "client_01JEXAMPLE0000000000000000";
const NOW: i64 = 1_800_000_000;
/// The RS256 provider (checks `aud`), the ES256 provider (no applicationID) and an OIDC one.
const RSA_ISSUER: &str = "https://api.workos.com/";
const EC_ISSUER: &str = "https://auth.acme.com/";
const OIDC_DOMAIN: &str = "https://oidc.example.com";
/// Convex's clock skew, restated so the time model below does not borrow the code under test.
const SKEW: i128 = 5;

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const SERVED_MEMBERS: [&str; 13] = [
    "kty", "kid", "alg", "use", "key_ops", "n", "e", "crv", "x", "y", "x5c", "x5t", "x5t#S256",
];
/// Every private member this file generates holds this, so no error message may contain it.
const SECRET: &str = "SECRET-KEY-MATERIAL";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// JSON numbers that break naive arithmetic: the integer extremes, floats, huge and negative.
fn arb_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(-1e300)),
        Just(json!(f64::MIN_POSITIVE)),
        Just(json!(1.8e9 + 0.5)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // NaN and the infinities become null, which is worth trying too.
        any::<f64>().prop_map(Value::from),
    ]
}

/// Member names: the ones the code looks at, and a few others.
fn arb_member() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "keys", "kid", "kty", "alg", "n", "e", "crv", "x", "y", "d", "k", "iss", "aud", "sub",
            "exp", "nbf", "iat", "typ", "x5t#S256", "",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,3}",
    ]
}

/// Any JSON value, nested a few levels.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        arb_number(),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_member(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A time claim: mostly near `NOW`, else an extreme number or not a number at all.
fn arb_time() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (NOW - 60..NOW + 60).prop_map(Value::from),
        3 => arb_number(),
        1 => prop::sample::select(vec![
            json!("1800000000"),
            Value::Null,
            json!(true),
            json!([NOW]),
            json!({"t": NOW}),
        ]),
    ]
}

/// `now`: near the claims, or anywhere including the extremes.
fn arb_now() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => NOW - 120..NOW + 120,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1]),
    ]
}

fn arb_issuer() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec![
            RSA_ISSUER,
            EC_ISSUER,
            OIDC_DOMAIN,
            "https://api.workos.com",
            "https://API.workos.com/",
            "http://auth.acme.com/",
            "",
        ])
        .prop_map(Value::from),
        1 => arb_json(),
    ]
}

fn arb_audience() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!(CID)),
        1 => Just(json!([CID, "other"])),
        1 => Just(json!([])),
        1 => arb_json(),
    ]
}

fn arb_header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        4 => prop::sample::select(vec!["RS256", "ES256", "HS256", "none", ""]).prop_map(Value::from),
        1 => arb_json(),
    ];
    let kid = prop_oneof![
        4 => prop::sample::select(vec!["test-rsa-a", "test-rsa-b", "test-ec-a", "unknown", ""])
            .prop_map(Value::from),
        1 => arb_json(),
    ];
    (
        prop::option::of(alg),
        prop::option::of(kid),
        prop::option::of(arb_json()),
    )
        .prop_map(|(alg, kid, typ)| {
            let mut h = Map::new();
            for (name, value) in [("alg", alg), ("kid", kid), ("typ", typ)] {
                if let Some(v) = value {
                    h.insert(name.into(), v);
                }
            }
            Value::Object(h)
        })
}

/// Claims with each interesting member present or not, plus arbitrary extra members.
fn arb_claims() -> impl Strategy<Value = Value> {
    (
        prop::option::of(arb_issuer()),
        prop::option::of(arb_audience()),
        prop::option::of(prop_oneof![3 => Just(json!("user_1")), 1 => arb_json()]),
        [
            prop::option::of(arb_time()),
            prop::option::of(arb_time()),
            prop::option::of(arb_time()),
        ],
        prop::collection::vec((arb_member(), arb_json()), 0..3),
    )
        .prop_map(|(iss, aud, sub, [exp, nbf, iat], extra)| {
            let mut c: Map<String, Value> = extra.into_iter().collect();
            let named = [
                ("iss", iss),
                ("aud", aud),
                ("sub", sub),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
            ];
            for (name, value) in named {
                if let Some(v) = value {
                    c.insert(name.into(), v);
                }
            }
            Value::Object(c)
        })
}

/// A header naming one of the test keys and the algorithm its provider is configured with.
fn arb_real_key_header() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            ("RS256", "test-rsa-a"),
            ("RS256", "test-rsa-b"),
            ("ES256", "test-ec-a"),
        ]),
        any::<bool>(),
    )
        .prop_map(|((alg, kid), typ)| {
            let mut h = json!({"alg": alg, "kid": kid});
            if typ {
                h["typ"] = json!("JWT");
            }
            h
        })
}

/// Claims that one of the customJwt providers matches (issuer, and aud where it is checked).
fn arb_matching_claims() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![RSA_ISSUER, EC_ISSUER]),
        arb_claims(),
    )
        .prop_map(|(iss, mut c)| {
            c["iss"] = json!(iss);
            if c.get("aud").is_none() {
                c["aud"] = json!(CID);
            }
            c
        })
}

/// Claims as raw JSON text, with number literals no i64 or f64 holds exactly (or at all).
fn arb_raw_claims() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["exp", "nbf", "iat"]),
        prop::sample::select(vec![
            "99999999999999999999999",
            "-99999999999999999999999",
            "1e400",
            "-1e400",
            "1.0",
            "-0",
            "1E2",
            "0.0000001",
            "9223372036854775808",
            "-9223372036854775809",
        ]),
    )
        .prop_map(|(claim, number)| {
            format!(r#"{{"iss":"{EC_ISSUER}","sub":"user_1","aud":"{CID}","{claim}":{number}}}"#)
        })
}

/// A signature part: never one made with the test keys.
fn arb_signature() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| b64(&b)),
        Just(String::new()),
        "[A-Za-z0-9_=+/-]{0,40}",
    ]
}

/// A part that is not (always) base64url of a JSON object.
fn arb_part() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64(&b)),
        arb_json().prop_map(|v| b64(v.to_string().as_bytes())),
        "[A-Za-z0-9_=+/-]{0,16}",
        "[^.]{0,8}",
    ]
}

/// Token text: mostly well-formed JWTs with arbitrary contents, else malformed or anything.
fn arb_token() -> impl Strategy<Value = String> {
    let text = |v: &Value| b64(v.to_string().as_bytes());
    prop_oneof![
        6 => (arb_header(), arb_claims(), arb_signature())
            .prop_map(move |(h, c, s)| format!("{}.{}.{s}", text(&h), text(&c))),
        1 => (arb_header(), arb_raw_claims(), arb_signature())
            .prop_map(move |(h, c, s)| format!("{}.{}.{s}", text(&h), b64(c.as_bytes()))),
        // Plausible forgeries: a header naming a real key and its algorithm, claims a provider
        // matches, so only the signature check stands between them and acceptance.
        4 => (arb_real_key_header(), arb_matching_claims(), arb_signature())
            .prop_map(move |(h, c, s)| format!("{}.{}.{s}", text(&h), text(&c))),
        1 => (arb_part(), arb_part(), arb_part()).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        1 => prop::collection::vec(arb_part(), 0..6).prop_map(|p| p.join(".")),
        1 => ".{0,64}",
        // Around the size limit, with the whitespace and `Bearer ` that are stripped first.
        1 => (0..64usize, prop::sample::select(vec!["", " ", "Bearer ", "\n"])).prop_map(|(extra, pre)| {
            let pad = "a".repeat(MAX_TOKEN_BYTES - 40 + extra);
            let claims = b64(json!({"iss": EC_ISSUER, "pad": pad}).to_string().as_bytes());
            format!("{pre}eyJhbGciOiJFUzI1NiJ9.{claims}.c2ln")
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// check-token, run as the binary runs it but on a config written once

fn scratch(name: &str, contents: &str) -> PathBuf {
    super::support::process::scratch_file("wca-properties", name, contents)
}

/// The test keys (RSA set and the EC key) as a `data:` URL, so nothing is fetched.
fn config_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let mut set: Value = serde_json::from_slice(&key_fixture("jwks-rsa.json")).unwrap();
        let ec: Value = serde_json::from_slice(&key_fixture("ec-a.jwk.json")).unwrap();
        set["keys"].as_array_mut().unwrap().push(ec);
        let data = format!(
            "data:application/json;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(set.to_string())
        );
        let config = json!({"providers": [
            {"type": "customJwt", "issuer": RSA_ISSUER, "applicationID": CID,
             "algorithm": "RS256", "jwks": data},
            {"type": "customJwt", "issuer": EC_ISSUER, "algorithm": "ES256", "jwks": data},
            {"domain": OIDC_DOMAIN, "applicationID": CID},
        ]});
        scratch("auth.config.json", &config.to_string())
    })
}

fn args(now: i64, jwks: Option<PathBuf>) -> CheckTokenArgs {
    CheckTokenArgs {
        token: "-".into(),
        config: Some(config_path().clone()),
        file: None,
        resource: None,
        client_id: None,
        jwks,
        output: OutputFormat::Text,
        cluster: Default::default(),
        now: Some(now),
    }
}

fn run(token: &str, args: &CheckTokenArgs) -> Result<Report, CheckTokenError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        })
        .block_on(check_token(token, args))
}

/// What every report must satisfy, whatever the token.
fn assert_report_consistent(r: &Report) -> Result<(), TestCaseError> {
    let json: Value = serde_json::from_str(&render(r, OutputFormat::Json))
        .map_err(|e| TestCaseError::fail(format!("--output json is not JSON: {e}")))?;
    prop_assert_eq!(&json["verdict"], &json!(r.verdict));
    prop_assert!(render(r, OutputFormat::Text).ends_with('\n'));
    match r.verdict {
        Verdict::Accepted => {
            prop_assert!(r.token_identifier.is_some() && r.reason.is_none());
            prop_assert!(r.checks.iter().all(|c| c.ok));
        }
        Verdict::Rejected | Verdict::Unchecked => {
            prop_assert!(r.token_identifier.is_none());
            prop_assert!(r.reason.is_some() && r.fix.is_some());
        }
    }
    // The checks run in order up to the first failure: only the last may have failed.
    if let Some((_, before)) = r.checks.split_last() {
        prop_assert!(before.iter().all(|c| c.ok), "{:?}", r.checks);
    }
    Ok(())
}

/// Convex's time rules, in exact arithmetic: `exp` is required and must be an integer;
/// a non-integer `nbf`/`iat` is not checked.
fn expected_verdict(claims: &Value, now: i64) -> Verdict {
    let int = |name: &str| claims.get(name).and_then(Value::as_i64).map(i128::from);
    let now = i128::from(now);
    let Some(exp) = int("exp") else {
        return Verdict::Rejected;
    };
    let too_early = |claim: Option<i128>| claim.is_some_and(|t| now + SKEW < t);
    if now > exp + SKEW || too_early(int("nbf")) || too_early(int("iat")) {
        Verdict::Rejected
    } else {
        Verdict::Accepted
    }
}

fn sign_es256(claims: &Value) -> String {
    sign(
        claims,
        jsonwebtoken::Algorithm::ES256,
        Some("test-ec-a"),
        "ec-a.pem",
    )
}

proptest! {
    #![proptest_config(config())]

    /// The decoder: a result for every input, never a panic; `TooLong` exactly above the
    /// limit; an accepted token has three parts whose first two are the JSON objects encoded.
    #[test]
    fn decode_reads_any_text_without_panicking(token in arb_token()) {
        let got = decode(&token);
        // Surrounding whitespace (a pasted token, a trailing newline) changes nothing.
        prop_assert_eq!(&got, &decode(&format!(" \t{token}\n")));
        let trimmed = token.trim();
        if trimmed.len() > MAX_TOKEN_BYTES {
            prop_assert_eq!(got, Err(MalformedToken::TooLong(trimmed.len())));
            return Ok(());
        }
        if let Ok(t) = got {
            let parts: Vec<&str> = trimmed.split('.').collect();
            prop_assert_eq!(parts.len(), 3);
            let part = |p: &str| -> Value {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .unwrap();
                serde_json::from_slice(&bytes).unwrap()
            };
            prop_assert_eq!(&t.header, &part(parts[0]));
            prop_assert_eq!(&t.claims, &part(parts[1]));
            prop_assert!(t.header.is_object() && t.claims.is_object());
        }
    }

    /// check-token end to end on tokens not signed with the test keys: never accepted (that
    /// would be a forgery), never a panic, the same report twice, and a consistent report.
    #[test]
    fn check_token_never_accepts_a_forged_token(token in arb_token(), now in arb_now()) {
        let args = args(now, None);
        match (run(&token, &args), run(&token, &args)) {
            (Ok(first), Ok(second)) => {
                prop_assert_eq!(&first, &second);
                prop_assert_eq!(
                    render(&first, OutputFormat::Text),
                    render(&second, OutputFormat::Text)
                );
                prop_assert_ne!(first.verdict, Verdict::Accepted);
                assert_report_consistent(&first)?;
            }
            (Err(first), Err(second)) => {
                prop_assert_eq!(first.to_string(), second.to_string());
                let is_input_error = matches!(first, CheckTokenError::NoToken | CheckTokenError::Token(_));
                prop_assert!(is_input_error, "{}", first);
            }
            (first, second) => {
                prop_assert!(false, "not deterministic: {:?} then {:?}", first, second);
            }
        }
    }

    /// Tokens signed with the EC test key, with arbitrary time claims and clock: the verdict is
    /// exactly Convex's time rules computed without overflow.
    #[test]
    fn signed_token_verdict_follows_the_time_rules(
        times in [
            prop::option::of(arb_time()),
            prop::option::of(arb_time()),
            prop::option::of(arb_time()),
        ],
        now in arb_now(),
    ) {
        let mut claims = json!({"iss": EC_ISSUER, "sub": "user_1"});
        for (name, value) in ["exp", "nbf", "iat"].into_iter().zip(times) {
            if let Some(v) = value {
                claims[name] = v;
            }
        }
        let report = run(&sign_es256(&claims), &args(now, None)).unwrap();
        prop_assert_eq!(report.verdict, expected_verdict(&claims, now), "{:?}", report.reason);
        assert_report_consistent(&report)?;
        if report.verdict == Verdict::Accepted {
            prop_assert_eq!(report.provider, Some(2));
            prop_assert_eq!(report.token_identifier, Some(format!("{EC_ISSUER}|user_1")));
        }
    }

    /// A genuine signature by the EC test key, moved onto other claims: refused at the
    /// signature check, whatever the claims say. (Signed here, not in a strategy: signing in
    /// a debug build needs more stack than a strategy's nested calls leave.)
    #[test]
    fn a_signature_moved_onto_other_claims_is_refused(
        signed in arb_matching_claims(),
        mut shown in arb_matching_claims(),
        now in arb_now(),
    ) {
        shown["iss"] = json!(EC_ISSUER);
        prop_assume!(signed != shown);
        let genuine = sign_es256(&signed);
        let (header, rest) = genuine.split_once('.').unwrap();
        let signature = rest.rsplit_once('.').unwrap().1;
        let token = format!("{header}.{}.{signature}", b64(shown.to_string().as_bytes()));
        let report = run(&token, &args(now, None)).unwrap();
        prop_assert_eq!(report.verdict, Verdict::Rejected);
        let last = report.checks.last().map(|c| (c.name, c.ok));
        prop_assert_eq!(last, Some(("signature", false)), "{:?}", report.reason);
        assert_report_consistent(&report)?;
    }

    /// A `--jwks` key with the token's kid but arbitrary RSA or EC members (huge, empty or odd
    /// `n`/`e`/`x`/`y`, not base64, not strings): refused as input or as a rejection, no panic.
    #[test]
    fn odd_key_material_is_refused_without_panicking(
        ec in any::<bool>(),
        members in (
            arb_key_material(),
            arb_key_material(),
            // `crv` for an EC key: P-256 mostly, so the key parses and verification runs.
            prop_oneof![3 => Just(json!("P-256")), 1 => arb_key_material()],
        ),
        alg in prop::option::of(prop::sample::select(vec!["RS256", "ES256", "RS512"])),
        signature in arb_signature(),
    ) {
        let (a, b, c) = members;
        let (mut key, issuer, token_alg) = if ec {
            (json!({"kty": "EC", "crv": c, "x": a, "y": b}), EC_ISSUER, "ES256")
        } else {
            (json!({"kty": "RSA", "n": a, "e": b}), RSA_ISSUER, "RS256")
        };
        key["kid"] = json!("k");
        if let Some(alg) = alg {
            key["alg"] = json!(alg);
        }
        let jwks = scratch("jwks.json", &json!({"keys": [key]}).to_string());
        let header = b64(json!({"alg": token_alg, "kid": "k"}).to_string().as_bytes());
        let claims = json!({"iss": issuer, "aud": CID, "sub": "u", "exp": NOW + 60});
        let token = format!("{header}.{}.{signature}", b64(claims.to_string().as_bytes()));
        let got = run(&token, &args(NOW, Some(jwks.clone())));
        std::fs::remove_file(&jwks).unwrap();
        match got {
            Ok(report) => {
                prop_assert_eq!(report.verdict, Verdict::Rejected);
                assert_report_consistent(&report)?;
            }
            Err(e) => {
                let is_jwks_error = matches!(e, CheckTokenError::JwksFileInvalid(..));
                prop_assert!(is_jwks_error, "{}", e);
            }
        }
    }
}

/// `n`, `e`, `x`, `y` or `crv`: real-looking base64url of any length, or anything.
fn arb_key_material() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..600).prop_map(|b| Value::from(b64(&b))),
        1 => prop::sample::select(vec!["AQAB", "AA", "", "P-256", "AQAB=", "////"])
            .prop_map(Value::from),
        1 => (1usize..3000).prop_map(|n| Value::from("_".repeat(n))),
        1 => arb_json(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The JWKS sanitiser

/// A key: RSA and EC mostly (so many documents pass), with odd or private members sometimes.
fn arb_jwk() -> impl Strategy<Value = Value> {
    let kty = prop_oneof![
        12 => prop::sample::select(vec!["RSA", "EC"]).prop_map(Value::from),
        1 => prop::sample::select(vec!["oct", "OKP", "rsa", ""]).prop_map(Value::from),
        1 => arb_json(),
    ];
    // A small pool, so duplicate kids happen.
    let kid = prop_oneof![
        12 => prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "g", "h"]).prop_map(Value::from),
        1 => Just(json!("")),
        1 => arb_json(),
    ];
    let alg = prop::option::weighted(
        0.3,
        prop_oneof![
            4 => prop::sample::select(vec!["RS256", "ES256", "RS512", "none"]).prop_map(Value::from),
            1 => arb_json(),
        ],
    );
    let crv = prop_oneof![
        12 => Just(json!("P-256")),
        1 => Just(json!("P-384")),
        1 => arb_json(),
    ];
    let private = prop::option::weighted(0.1, prop::sample::select(PRIVATE_MEMBERS.to_vec()));
    // Non-empty strings mostly, so many keys pass; anything now and then.
    let material = || {
        prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 1..300).prop_map(|b| Value::from(b64(&b))),
            1 => arb_key_material(),
        ]
    };
    let extra = prop::collection::vec((arb_member(), arb_json()), 0..3);
    (
        (kty, kid, alg, crv),
        [material(), material(), material(), material()],
        private,
        extra,
        prop::option::of(arb_json()),
    )
        .prop_map(
            |((kty, kid, alg, crv), [n, e, x, y], private, extra, x5c)| {
                let mut key: Map<String, Value> = Map::new();
                // Extra members first, so the named ones below win a name clash.
                for (name, value) in extra {
                    if !PRIVATE_MEMBERS.contains(&name.as_str()) {
                        key.insert(name, value);
                    }
                }
                for (name, value) in [("kty", kty), ("kid", kid), ("crv", crv)] {
                    key.insert(name.into(), value);
                }
                for (name, value) in [("n", n), ("e", e), ("x", x), ("y", y)] {
                    key.insert(name.into(), value);
                }
                if let Some(alg) = alg {
                    key.insert("alg".into(), alg);
                }
                if let Some(x5c) = x5c {
                    key.insert("x5c".into(), x5c);
                }
                if let Some(member) = private {
                    key.insert(member.into(), json!(SECRET));
                }
                Value::Object(key)
            },
        )
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(members) => members.values().any(has_float),
        _ => false,
    }
}

fn arb_jwks_document() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (
            prop::collection::vec(arb_jwk(), 1..5),
            prop::collection::vec((arb_member(), arb_json()), 0..2),
        )
            .prop_map(|(keys, extra)| {
                let mut doc: Map<String, Value> = extra.into_iter().collect();
                doc.insert("keys".into(), Value::Array(keys));
                Value::Object(doc)
            }),
        1 => prop::collection::vec(arb_json(), 0..4).prop_map(|keys| json!({"keys": keys})),
        1 => Just(json!({"keys": []})),
        1 => arb_json(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes: an error, never a panic (and random bytes are never a key set).
    #[test]
    fn sanitize_refuses_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(sanitize(&body).is_err());
    }

    /// A served document holds only `{"keys": [...]}` with public members copied unchanged,
    /// each key usable by Convex (kid, RSA n/e or EC P-256 x/y, the matching alg), kids
    /// unique and in order; sanitising it again serves the same bytes. A document with a
    /// private member or a symmetric key is refused, and no error repeats private material.
    #[test]
    fn sanitize_serves_only_public_usable_keys(doc in arb_jwks_document()) {
        let body = serde_json::to_vec(&doc).unwrap();
        let got = sanitize(&body);
        let input_keys = doc.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
        let leaks = input_keys.iter().any(|k| {
            PRIVATE_MEMBERS.iter().any(|m| k.get(m).is_some()) || k.get("kty") == Some(&json!("oct"))
        });
        let served = match got {
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.contains(SECRET), "{}", text);
                if let JwksError::NotJson(_) = e {
                    prop_assert!(false, "a serialised Value is JSON: {}", text);
                }
                return Ok(());
            }
            Ok(served) => served,
        };
        prop_assert!(!leaks, "served a document with private or symmetric keys: {:?}", doc);
        let out: Value = serde_json::from_slice(&served.body).unwrap();
        let out = out.as_object().unwrap();
        prop_assert_eq!(out.keys().collect::<Vec<_>>(), vec!["keys"]);
        let keys = out["keys"].as_array().unwrap();
        prop_assert_eq!(keys.len(), input_keys.len());
        let mut kids = Vec::new();
        for (key, input) in keys.iter().zip(&input_keys) {
            let key = key.as_object().unwrap();
            for (name, value) in key {
                prop_assert!(SERVED_MEMBERS.contains(&name.as_str()), "served {}", name);
                // Floats aside: serde_json reads a float to within one ULP, so one can move
                // through any parse and serialise, and no JWKS member means a float.
                if (name != "alg" || input.get("alg").is_some()) && !has_float(value) {
                    prop_assert_eq!(Some(value), input.get(name));
                }
            }
            let text = |m: &str| key.get(m).and_then(Value::as_str).filter(|s| !s.is_empty());
            let kid = text("kid");
            prop_assert!(kid.is_some(), "served a key without kid: {:?}", key);
            kids.push(kid.unwrap_or_default().to_string());
            match text("kty") {
                Some("RSA") => {
                    prop_assert_eq!(text("alg"), Some("RS256"));
                    prop_assert!(text("n").is_some() && text("e").is_some());
                }
                Some("EC") => {
                    prop_assert_eq!(text("alg"), Some("ES256"));
                    prop_assert_eq!(text("crv"), Some("P-256"));
                    prop_assert!(text("x").is_some() && text("y").is_some());
                }
                other => prop_assert!(false, "served kty {:?}", other),
            }
        }
        prop_assert_eq!(&served.kids, &kids);
        let mut unique = kids.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), kids.len(), "duplicate kids served: {:?}", kids);
        if !has_float(&doc) {
            prop_assert_eq!(sanitize(&served.body), Ok(served.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The duration parser

/// Digit-heavy text: numbers up to 25 digits (past u64) with units, near-units and junk.
fn arb_duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "([0-9]{1,3}(ms|s|m|h)){1,4}",
        3 => "([0-9]{1,25}(ms|s|m|h|mh|us|x| |)){0,5}",
        1 => Just("99999999999999999999h".to_string()),
        1 => prop::sample::select(vec![
            "4294967295h4294967295h4294967295h",
            "1193046h28m15s",
            "1193046h28m15s1ms",
            "4294967295s",
            "4294967296s",
            "18446744073709551615ms",
        ])
        .prop_map(str::to_string),
        1 => ".{0,16}",
    ]
}

/// `<number><unit>` repeated, summed exactly; `None` when it does not have that shape.
fn duration_model(text: &str) -> Option<u128> {
    let mut rest = text;
    let mut total_ms: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || digits > 38 {
            return None;
        }
        let value: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit_ms, len) = [
            ("ms", 1, 2),
            ("s", 1_000, 1),
            ("m", 60_000, 1),
            ("h", 3_600_000, 1),
        ]
        .into_iter()
        .find(|(unit, _, _)| rest.starts_with(unit))
        .map(|(_, ms, len)| (ms, len))?;
        rest = &rest[len..];
        total_ms = total_ms.checked_add(value.checked_mul(unit_ms)?)?;
    }
    Some(total_ms)
}

proptest! {
    #![proptest_config(config())]

    /// Never a panic, never a wrong value: what the parser accepts is the exact sum; what is
    /// not `<number><unit>` repeated is refused; a well-shaped input is accepted exactly when
    /// its total is at most MAX_DURATION, however large its numbers (25 digits: past u64).
    #[test]
    fn parse_duration_is_exact_or_refuses(text in arb_duration_text()) {
        let got = parse_duration(&text);
        match (duration_model(&text), &got) {
            (None, Ok(d)) => prop_assert!(false, "accepted {:?} as {:?}", text, d),
            (None, Err(_)) => {}
            (Some(ms), Ok(d)) => {
                prop_assert_eq!(d.as_millis(), ms);
                prop_assert!(*d <= MAX_DURATION);
            }
            (Some(ms), Err(e)) => {
                prop_assert!(ms > MAX_DURATION.as_millis(), "refused {:?}: {}", text, e);
                let quoted = format!("{text:?}");
                prop_assert!(e.to_string().contains(&quoted), "{}", e);
            }
        }
    }

    /// What the parser accepts, formatted and parsed again, is the same duration: the
    /// operator formats the resource's durations into the mirror's arguments.
    #[test]
    fn accepted_durations_survive_format_and_parse(text in arb_duration_text()) {
        if let Ok(d) = parse_duration(&text) {
            let formatted = format_duration(d);
            prop_assert_eq!(parse_duration(&formatted), Ok(d), "{:?} formatted as {:?}", text, formatted);
        }
    }

    /// Any whole-millisecond duration up to MAX_DURATION formats to text the parser reads back
    /// as the same duration.
    #[test]
    fn formatted_durations_parse_back(ms in prop_oneof![
        0..10_000u64,
        0..=u64::from(u32::MAX) * 1_000,
        Just(u64::from(u32::MAX) * 1_000),
        prop::sample::select(vec![0, 1, 999, 1_000, 1_001, 59_999, 3_600_000, 3_600_001]),
    ]) {
        let d = Duration::from_millis(ms);
        let formatted = format_duration(d);
        prop_assert_eq!(parse_duration(&formatted), Ok(d), "{:?} formatted as {:?}", d, formatted);
    }
}
