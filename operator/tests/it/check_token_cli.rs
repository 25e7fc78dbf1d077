//! The `check-token` subcommand through the real binary: exit codes 0/1/2, stdin, text and
//! JSON output; the identity Convex builds from an accepted token.

use super::support;

use std::io::Write;
use std::path::PathBuf;
use std::process::Output;

use base64::Engine;
use serde_json::{Value, json};
use support::binary::Binary;
use support::keys::{key_fixture, sign_rs256};

const CID: &str = "client_01JEXAMPLE0000000000000000";
const NOW: &str = "1800000000";

fn token(iss: &str) -> String {
    let claims = json!({"iss": iss, "sub": "user_01", "iat": 1_799_999_990, "exp": 1_800_000_290});
    sign_rs256(&claims, "test-rsa-a", "rsa-a.pem")
}

fn config() -> PathBuf {
    let jwks = format!(
        "data:application/json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(key_fixture("jwks-rsa.json"))
    );
    let path = std::env::temp_dir().join(format!("check-token-cli-{}.json", std::process::id()));
    let config = json!({"providers": [
        {"type": "customJwt", "issuer": "https://api.workos.com/", "algorithm": "RS256", "jwks": jwks, "applicationID": CID},
        {"type": "customJwt", "issuer": format!("https://api.workos.com/user_management/{CID}"), "algorithm": "RS256", "jwks": jwks},
    ]});
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Runs the binary with `stdin` piped in.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Binary::new("check-token")
        .args(args)
        .stdin_piped()
        .piped()
        .spawn();
    // The binary may exit before reading (usage errors); a broken pipe is fine then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn exit_codes_and_outputs() {
    let config = config();
    let config = config.to_str().unwrap();
    let base = ["--config", config, "--now", NOW];

    let ok = run(
        &base,
        &token(&format!("https://api.workos.com/user_management/{CID}")),
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ACCEPTED by provider 2\n"), "{stdout}");

    let rejected = run(&base, &token("https://acme.authkit.app"));
    let stdout = String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(rejected.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "Fix: token iss is https://acme.authkit.app; add spec.authkitDomain: acme.authkit.app"
        ),
        "{stdout}"
    );

    let json_args = [&base[..], &["--output", "json"]].concat();
    let rejected = run(&json_args, &token("https://acme.authkit.app"));
    let v: Value = serde_json::from_slice(&rejected.stdout).unwrap();
    assert_eq!(
        (rejected.status.code(), v["verdict"].as_str()),
        (Some(1), Some("rejected"))
    );

    let garbage = run(&base, "not-a-token");
    assert_eq!(garbage.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&garbage.stderr),
        "error: the token is not a JWT: a JWT has three dot-separated parts; this has 1\n"
    );
    let garbage = run(&json_args, "not-a-token");
    let v: Value = serde_json::from_slice(&garbage.stdout).unwrap();
    assert_eq!(
        (garbage.status.code(), v["verdict"].as_str()),
        (Some(2), Some("error"))
    );

    // No provider source at all is a usage error.
    let usage = run(&["--now", NOW], "x.y.z");
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--config"));
}

const ISS: &str = "https://api.workos.com/user_management/client_01JEXAMPLE0000000000000000";

/// The identity block of the text output: everything from its header to the end.
fn identity_block(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Identity Convex will see"))
        .collect()
}

/// An accepted token prints, after the verdict, the identity Convex builds: the named fields,
/// then every custom claim in key order with its JSON type; registered claims (`jti`, `exp`, …)
/// are not among them. `--output json` carries the same object as `identity`.
#[test]
fn identity_with_organization_claims() {
    let config = config();
    let config = config.to_str().unwrap();
    let claims = json!({
        "iss": ISS, "sub": "user_01", "sid": "session_01", "jti": "jti_01",
        "org_id": "org_01", "role": "admin", "roles": ["admin", "member"],
        "permissions": ["posts:read", "posts:write"], "entitlements": ["audit-logs"],
        "iat": 1_799_999_990, "exp": 1_800_000_290,
    });
    let token = sign_rs256(&claims, "test-rsa-a", "rsa-a.pem");

    let out = run(&["--config", config, "--now", NOW], &token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "ACCEPTED by provider 2\ntokenIdentifier: {ISS}|user_01\n\nIdentity Convex will see"
        )),
        "{stdout}"
    );
    assert_eq!(
        identity_block(&stdout),
        [
            "Identity Convex will see (ctx.auth.getUserIdentity())".to_string(),
            format!("  tokenIdentifier  string   \"{ISS}|user_01\""),
            format!("  issuer           string   \"{ISS}\""),
            "  subject          string   \"user_01\"".to_string(),
            "  entitlements     array    [\"audit-logs\"]".to_string(),
            "  org_id           string   \"org_01\"".to_string(),
            "  permissions      array    [\"posts:read\",\"posts:write\"]".to_string(),
            "  role             string   \"admin\"".to_string(),
            "  roles            array    [\"admin\",\"member\"]".to_string(),
            "  sid              string   \"session_01\"".to_string(),
        ]
    );

    let out = run(&["--config", config, "--now", NOW, "-o", "json"], &token);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["identity"],
        json!({
            "tokenIdentifier": format!("{ISS}|user_01"), "issuer": ISS, "subject": "user_01",
            "entitlements": ["audit-logs"], "org_id": "org_01",
            "permissions": ["posts:read", "posts:write"], "role": "admin",
            "roles": ["admin", "member"], "sid": "session_01",
        })
    );
}

/// A user outside any organization: WorkOS sends only `sid` besides the registered claims.
/// A rejected token (here: expired) gets no identity, in text or JSON: Convex builds none.
#[test]
fn identity_without_organization_claims_and_none_when_rejected() {
    let config = config();
    let config = config.to_str().unwrap();
    let claims = json!({
        "iss": ISS, "sub": "user_02", "sid": "session_02",
        "iat": 1_799_999_990, "exp": 1_800_000_290,
    });
    let token = sign_rs256(&claims, "test-rsa-a", "rsa-a.pem");

    let out = run(&["--config", config, "--now", NOW], &token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        identity_block(&stdout),
        [
            "Identity Convex will see (ctx.auth.getUserIdentity())".to_string(),
            format!("  tokenIdentifier  string   \"{ISS}|user_02\""),
            format!("  issuer           string   \"{ISS}\""),
            "  subject          string   \"user_02\"".to_string(),
            "  sid              string   \"session_02\"".to_string(),
        ]
    );
    let out = run(&["--config", config, "--now", NOW, "-o", "json"], &token);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["identity"],
        json!({
            "tokenIdentifier": format!("{ISS}|user_02"), "issuer": ISS, "subject": "user_02",
            "sid": "session_02",
        })
    );

    let later = "1800001000";
    let out = run(&["--config", config, "--now", later], &token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains("Identity Convex will see"), "{stdout}");
    let out = run(&["--config", config, "--now", later, "-o", "json"], &token);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), &v["identity"]),
        (Some("rejected"), &Value::Null)
    );
}
