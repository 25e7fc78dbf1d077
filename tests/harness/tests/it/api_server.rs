//! The CRD against a real kube-apiserver: install, explain, printer columns, examples,
//! schema and CEL rejections, defaulting, and the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use wca_test_harness::{ControlPlane, repo_root};

fn wca_resource() -> ApiResource {
    ApiResource {
        group: "workos-convex.io".into(),
        version: "v1alpha1".into(),
        api_version: "workos-convex.io/v1alpha1".into(),
        kind: "WorkOSConvexAuth".into(),
        plural: "workosconvexauths".into(),
    }
}

fn object(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

#[test]
fn explain_shows_field_descriptions() {
    let out = ControlPlane::shared()
        .kubectl_ok(&["explain", "workosconvexauth.spec"])
        .unwrap();
    for needle in [
        "WorkOS client id",
        "clientIdFrom",
        "authkitDomain",
        "Where Convex fetches the signing keys",
    ] {
        assert!(
            out.contains(needle),
            "kubectl explain lacks {needle:?}:\n{out}"
        );
    }
    let out = ControlPlane::shared()
        .kubectl_ok(&["explain", "wca.spec.jwks.mode"])
        .unwrap();
    assert!(out.contains("Proxy") && out.contains("data:"), "{out}");
}

#[tokio::test]
async fn get_shows_the_printer_columns() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "printer columns").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &wca_resource());
    api.create(
        &PostParams::default(),
        &object("cols", json!({"clientId": "client_01A"})),
    )
    .await
    .unwrap();
    let out = cp.kubectl_ok(&["get", "wca", "-n", &ns]).unwrap();
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "JWKS", "URL", "CONFIGMAP", "AGE"],
        "{out}"
    );
}

#[test]
fn every_example_is_accepted() {
    let cp = ControlPlane::shared();
    let mut count = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let out = cp.kubectl_ok(&[
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            path.to_str().unwrap(),
        ]);
        assert!(out.is_ok(), "{}: {}", path.display(), out.unwrap_err());
        count += 1;
    }
    assert!(count >= 5);
}

#[tokio::test]
async fn invalid_resources_are_rejected_naming_the_field() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "invalid").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &wca_resource());
    let cases = [
        (
            "bad client id",
            json!({"clientId": "app_123"}),
            "spec.clientId",
        ),
        (
            "both ids",
            json!({"clientId": "client_1", "clientIdFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}),
            "set exactly one of spec.clientId or spec.clientIdFrom",
        ),
        (
            "neither id",
            json!({}),
            "set exactly one of spec.clientId or spec.clientIdFrom",
        ),
        (
            "both refs",
            json!({"clientIdFrom": {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}}),
            "spec.clientIdFrom needs exactly one",
        ),
        (
            "scheme in authDomain",
            json!({"clientId": "client_1", "authDomain": "https://auth.acme.com"}),
            "spec.authDomain",
        ),
        (
            "path in authkitDomain",
            json!({"clientId": "client_1", "authkitDomain": "acme.authkit.app/x"}),
            "spec.authkitDomain",
        ),
        (
            "unknown mode",
            json!({"clientId": "client_1", "jwks": {"mode": "Cached"}}),
            "spec.jwks.mode",
        ),
        (
            "bad upstream",
            json!({"clientId": "client_1", "jwks": {"upstreamBase": "ftp://x"}}),
            "spec.jwks.upstreamBase",
        ),
        (
            "ingress without host",
            json!({"clientId": "client_1", "ingress": {"enabled": true}}),
            "spec.ingress.enabled needs spec.ingress.host",
        ),
        (
            "ingress in Inline mode",
            json!({"clientId": "client_1", "jwks": {"mode": "Inline"}, "ingress": {"enabled": true, "host": "a.b.c"}}),
            "spec.ingress is only for spec.jwks.mode Proxy",
        ),
        (
            "upper-case ingress host",
            json!({"clientId": "client_1", "ingress": {"host": "JWKS.acme.com"}}),
            "spec.ingress.host",
        ),
        (
            "negative replicas",
            json!({"clientId": "client_1", "proxy": {"replicas": -1}}),
            "spec.proxy.replicas",
        ),
        (
            "bad algorithm",
            json!({"clientId": "client_1", "algorithm": "HS256"}),
            "spec.algorithm",
        ),
        (
            "malformed refresh",
            json!({"clientId": "client_1", "proxy": {"refreshInterval": "5 minutes"}}),
            "spec.proxy.refreshInterval",
        ),
        (
            "malformed max-stale",
            json!({"clientId": "client_1", "proxy": {"maxStale": "1d"}}),
            "spec.proxy.maxStale",
        ),
        (
            "refresh too fast",
            json!({"clientId": "client_1", "proxy": {"refreshInterval": "1s"}}),
            "spec.proxy.refreshInterval must be at least 10s",
        ),
        (
            "stale shorter than refresh",
            json!({"clientId": "client_1", "proxy": {"refreshInterval": "1h", "maxStale": "30m"}}),
            "spec.proxy.maxStale must be at least",
        ),
        (
            "issuer without scheme",
            json!({"clientId": "client_1", "extraIssuers": [{"issuer": "auth.acme.com"}]}),
            "spec.extraIssuers[0].issuer",
        ),
        (
            "insecure workos issuer",
            json!({"clientId": "client_1", "extraIssuers": [{"issuer": "https://api.workos.com/"}]}),
            "applicationID is required for issuer https://api.workos.com",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, spec, needle)) in cases.iter().enumerate() {
        match api
            .create(
                &PostParams::default(),
                &object(&format!("bad-{i}"), spec.clone()),
            )
            .await
        {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) if !e.to_string().contains(needle) => {
                failures.push(format!("{what}: message lacks {needle:?}: {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cases.len() >= 12);
}

#[tokio::test]
async fn schema_defaults_appear_on_a_created_resource() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "defaults").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &wca_resource());
    let created = api
        .create(
            &PostParams::default(),
            &object("d", json!({"clientId": "client_01A"})),
        )
        .await
        .unwrap();
    let spec = &created.data["spec"];
    assert_eq!(spec["algorithm"], "RS256");
    assert_eq!(spec["jwks"]["mode"], "Proxy");
    assert_eq!(spec["jwks"]["upstreamBase"], "https://api.workos.com");
    assert_eq!(spec["proxy"]["replicas"], 2);
    assert_eq!(spec["proxy"]["refreshInterval"], "5m");
    assert_eq!(spec["proxy"]["maxStale"], "24h");
    assert_eq!(spec["ingress"]["enabled"], false);
}

#[tokio::test]
async fn status_is_written_by_server_side_apply_without_touching_spec() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "status").await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &wca_resource());
    let created = api
        .create(
            &PostParams::default(),
            &object("s", json!({"clientId": "client_01A"})),
        )
        .await
        .unwrap();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = json!({
        "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
        "status": {
            "observedGeneration": 1, "jwksUrl": "https://x.example.com/sso/jwks/client_01A",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Test", "message": "", "lastTransitionTime": now}]
        },
        // The status subresource ignores any spec in the patch.
        "spec": {"clientId": "client_CHANGED"}
    });
    let patched = api
        .patch_status(
            "s",
            &PatchParams::apply("wca-test").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(patched.data["spec"], created.data["spec"]);
    assert_eq!(
        patched.metadata.generation, created.metadata.generation,
        "a status write must not bump generation"
    );
    let out = cp.kubectl_ok(&["get", "wca", "s", "-n", &ns]).unwrap();
    assert!(
        out.contains("True") && out.contains("https://x.example.com/sso/jwks/client_01A"),
        "{out}"
    );
}
