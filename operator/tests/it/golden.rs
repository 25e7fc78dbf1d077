//! Golden files: `render` of every file in `examples/` must equal `tests/golden/<name>.yaml`.
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test -p workos-convex-auth --test it golden`.

use std::path::{Path, PathBuf};

use workos_convex_auth::jwks::sanitize;
use workos_convex_auth::reconcile::{BuildContext, InlineKeys};
use workos_convex_auth::render::{RenderOptions, render};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the offline render needs for the examples that reference things outside the file.
fn options() -> RenderOptions {
    let raw = std::fs::read(repo().join("tests/fixtures/keys/jwks-rsa.json")).unwrap();
    let keys = String::from_utf8(sanitize(&raw).unwrap().body.to_vec()).unwrap();
    RenderOptions {
        client_id: Some("client_01JEXAMPLE0000000000000000".into()),
        context: BuildContext {
            default_image: "ghcr.io/workos-convex-auth/workos-convex-auth:golden".into(),
            ..BuildContext::default()
        },
        inline_keys: Some(InlineKeys {
            workos: keys,
            authkit: None,
        }),
        admit: true,
    }
}

#[test]
fn every_example_renders_to_its_golden_file() {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 5,
        "examples/ should hold the README's examples"
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for example in examples {
        let rendered = render(&std::fs::read_to_string(&example).unwrap(), &options())
            .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        let golden = repo()
            .join("tests/golden")
            .join(example.file_name().unwrap());
        if update {
            std::fs::write(&golden, &rendered).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(rendered.as_str()) {
            stale.push(golden.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ from render output: {stale:?}\nreview the change, then run: UPDATE_GOLDEN=1 cargo test -p workos-convex-auth --test it golden"
    );
}

#[test]
fn render_is_deterministic() {
    let input =
        std::fs::read_to_string(repo().join("examples/custom-domain-ingress.yaml")).unwrap();
    assert_eq!(
        render(&input, &options()).unwrap(),
        render(&input, &options()).unwrap()
    );
}
