//! The generated config checked by the real `convex` npm package (tests/typescript):
//! `tsc --strict` against `AuthConfig`, and the CLI's `authInfo` push schema.
//! Needs `npm ci` in tests/typescript (done by .ci/run); fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use workos_convex_auth::reconcile::sync::desired_values;
use workos_convex_auth::reconcile::{JwksUrls, validate};
use workos_convex_auth::render::{RenderOptions, children_of, parse_resources};

fn ts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/typescript")
}

/// A scratch folder below tests/typescript (so `convex/server` resolves), removed on drop.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = ts_dir().join(format!(".generated-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Writes each example's ConfigMap files as `<dir>/<example>/convex/auth.config.ts` + json.
fn write_examples(dir: &Path) -> usize {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let options = RenderOptions {
        client_id: Some("client_01JEXAMPLE0000000000000000".into()),
        context: workos_convex_auth::reconcile::BuildContext {
            default_image: "img".into(),
            ..workos_convex_auth::reconcile::BuildContext::default()
        },
        inline_keys: Some(workos_convex_auth::reconcile::InlineKeys {
            workos: r#"{"keys":[]}"#.into(),
            authkit: None,
        }),
        admit: true,
    };
    let mut count = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for resource in parse_resources(&std::fs::read_to_string(&path).unwrap()).unwrap() {
            let data = children_of(&resource, &options)
                .unwrap()
                .config_map
                .data
                .unwrap();
            let case = dir.join(path.file_stem().unwrap());
            std::fs::create_dir_all(case.join("convex")).unwrap();
            std::fs::write(case.join("convex/auth.config.ts"), &data["auth.config.ts"]).unwrap();
            std::fs::write(case.join("auth.config.json"), &data["auth.config.json"]).unwrap();
            // With spec.convex: the variables the operator sets, which the file reads.
            let valid = validate(
                &resource,
                options.client_id.as_deref(),
                workos_convex_auth::reconcile::names::DEFAULT_CLUSTER_DOMAIN,
            )
            .unwrap();
            if valid.convex.is_some() {
                let urls = match &valid.served_urls {
                    Some(urls) => urls.clone(),
                    None => {
                        JwksUrls::embedded(&valid, options.inline_keys.as_ref().unwrap()).unwrap()
                    }
                };
                let env: serde_json::Map<String, serde_json::Value> = desired_values(&valid, &urls)
                    .unwrap()
                    .into_iter()
                    .map(|(v, value)| (v.name().to_string(), value.into()))
                    .collect();
                std::fs::write(case.join("auth.config.js"), &data["auth.config.js"]).unwrap();
                std::fs::write(
                    case.join("env.json"),
                    serde_json::Value::Object(env).to_string(),
                )
                .unwrap();
            }
            count += 1;
        }
    }
    count
}

fn check(dir: &Path) -> (bool, String) {
    let out = Command::new("node")
        .arg(ts_dir().join("check.mjs"))
        .arg(dir)
        .output()
        .expect("node must be installed (Node 20): the generated TypeScript is checked with the real convex package");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "check.mjs could not run (npm ci in tests/typescript?):\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn generated_configs_type_check_and_pass_the_cli_push_schema() {
    let dir = scratch("ok");
    let cases = write_examples(&dir.0);
    let (ok, text) = check(&dir.0);
    assert!(ok, "{text}");
    assert!(text.contains("ok   tsc --noEmit --strict"), "{text}");
    let schema_checks = text
        .lines()
        .filter(|l| l.starts_with("ok ") && l.contains("authInfo"))
        .count();
    assert!(
        schema_checks >= cases * 2,
        "every provider is checked against authInfo:\n{text}"
    );
    assert!(
        text.contains(
            "ok   convex-sync auth.config.js evaluated with its variables equals auth.config.json"
        ),
        "the env-driven file is evaluated:\n{text}"
    );
}

#[test]
fn a_config_broken_on_purpose_fails_both_checks() {
    let dir = scratch("broken");
    write_examples(&dir.0);
    let case = dir.0.join("basic");
    let ts = std::fs::read_to_string(case.join("convex/auth.config.ts")).unwrap();
    // `HS256` is no AuthConfig algorithm; a provider without `issuer` fails the push schema.
    let broken = ts.replacen("\"RS256\"", "\"HS256\"", 1);
    assert_ne!(broken, ts);
    std::fs::write(case.join("convex/auth.config.ts"), broken).unwrap();
    let json = std::fs::read_to_string(case.join("auth.config.json")).unwrap();
    std::fs::write(
        case.join("auth.config.json"),
        json.replacen("\"issuer\":", "\"issuerr\":", 1),
    )
    .unwrap();
    let (ok, text) = check(&dir.0);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL tsc --noEmit --strict") && text.contains("HS256"),
        "{text}"
    );
    assert!(text.contains("FAIL basic provider 1 authInfo"), "{text}");
}

#[test]
fn an_env_driven_file_missing_a_variable_fails_evaluation() {
    let dir = scratch("env");
    write_examples(&dir.0);
    let case = dir.0.join("convex-sync");
    std::fs::write(
        case.join("env.json"),
        r#"{"WORKOS_JWKS_URL": "https://x/j"}"#,
    )
    .unwrap();
    let (ok, text) = check(&dir.0);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL convex-sync auth.config.js evaluated with its variables")
            && text
                .contains("WORKOS_CLIENT_ID is used in auth config file but its value was not set"),
        "{text}"
    );
}
