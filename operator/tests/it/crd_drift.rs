//! The committed CRD files are generated from the Rust types; this fails on drift.

use std::path::Path;

const REGENERATE: &str =
    "cargo run -q -p workos-convex-auth -- crd > crds/workos-convex.io_workosconvexauths.yaml";

/// The file at `relative` (to the repository) holds the generated CRD; `fix` says how to make it.
#[track_caller]
fn assert_generated(relative: &str, fix: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        file == workos_convex_auth::api::crd_yaml(),
        "{} is stale or missing; regenerate it with:\n  {fix}",
        path.display()
    );
}

#[test]
fn committed_crd_equals_generated_crd() {
    assert_generated("crds/workos-convex.io_workosconvexauths.yaml", REGENERATE);
}

/// The Helm chart renders its CRD from a byte copy of the generated file (templates/crd.yaml
/// reads files/crd.yaml): one source of truth, so a chart can never ship a stale schema.
#[test]
fn chart_crd_equals_generated_crd() {
    assert_generated(
        "charts/workos-convex-auth/files/crd.yaml",
        &format!(
            "{REGENERATE}\n  cp crds/workos-convex.io_workosconvexauths.yaml charts/workos-convex-auth/files/crd.yaml"
        ),
    );
}

#[test]
fn crd_documents_every_field() {
    let crd = serde_json::to_value(
        <workos_convex_auth::api::WorkOSConvexAuth as kube::CustomResourceExt>::crd(),
    )
    .unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut undocumented = Vec::new();
    walk(&schema["properties"]["spec"], "spec", &mut undocumented);
    walk(&schema["properties"]["status"], "status", &mut undocumented);
    assert!(
        undocumented.is_empty(),
        "fields without a description (kubectl explain shows nothing): {undocumented:?}"
    );
}

fn walk(node: &serde_json::Value, path: &str, undocumented: &mut Vec<String>) {
    // List items are described by their list; only their own fields need descriptions.
    if node.get("description").is_none() && !path.ends_with("[]") {
        undocumented.push(path.to_string());
    }
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (name, child) in props {
            // ResourceRequirements comes documented from k8s-openapi; no need to descend.
            if path.ends_with(".resources") {
                continue;
            }
            walk(child, &format!("{path}.{name}"), undocumented);
        }
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), undocumented);
    }
}
