//! `check-token --resource NAMESPACE/NAME` against the local control plane: the resource and
//! its ConfigMap are written with the API (no controller runs here), then read back by the tool.

use super::support;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::fixtures::spec;
use support::keys::{key_fixture, sign_rs256};
use support::scenario::Ns;
use wca_test_harness::ControlPlane;
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::check_token::{CheckTokenArgs, OutputFormat, Report, Verdict, check_token};
use workos_convex_auth::kubeconfig::ClusterArgs;

const CID: &str = "client_01JEXAMPLE0000000000000000";
const NOW: i64 = 1_800_000_000;

fn token(iss: &str) -> String {
    let claims = json!({"iss": iss, "sub": "user_01", "iat": NOW - 10, "exp": NOW + 290});
    sign_rs256(&claims, "test-rsa-a", "rsa-a.pem")
}

fn args(resource: &str, kubeconfig: &Path) -> CheckTokenArgs {
    CheckTokenArgs {
        token: "-".into(),
        config: None,
        file: None,
        resource: Some(resource.into()),
        client_id: None,
        jwks: None,
        output: OutputFormat::Text,
        cluster: ClusterArgs {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            context: None,
        },
        now: Some(NOW),
    }
}

/// A token from `iss` checked with `args`; an input error as its text.
async fn check(iss: &str, args: &CheckTokenArgs) -> Result<Report, String> {
    check_token(&token(iss), args)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn reads_the_config_map_the_status_names() {
    let cp = ControlPlane::shared();
    let t = Ns::fresh(cp, "check-token resource", Duration::from_secs(30)).await;
    let ns = &t.ns;
    t.create("acme", spec(CID)).await;

    let issuer = format!("https://api.workos.com/user_management/{CID}");
    let jwks = format!(
        "data:application/json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(key_fixture("jwks-rsa.json"))
    );
    let config = json!({"providers": [
        {"type": "customJwt", "issuer": "https://api.workos.com/", "algorithm": "RS256", "jwks": jwks, "applicationID": CID},
        {"type": "customJwt", "issuer": issuer, "algorithm": "RS256", "jwks": jwks},
    ]});
    t.create_config_map("elsewhere", json!({"auth.config.json": config.to_string()}))
        .await;
    let acme = args(&format!("{ns}/acme"), cp.kubeconfig());

    // Before the status names it, the default `<name>-convex-auth` is looked up and missing.
    let err = check(&issuer, &acme).await.unwrap_err();
    assert!(
        err.starts_with(&format!("cannot read ConfigMap {ns}/acme-convex-auth")),
        "{err}"
    );

    t.api::<WorkOSConvexAuth>()
        .patch_status(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"configMapName": "elsewhere"}})),
        )
        .await
        .unwrap();
    let r = check(&issuer, &acme).await.unwrap();
    assert_eq!(r.verdict, Verdict::Accepted);
    assert_eq!(r.provider, Some(2));
    assert_eq!(
        r.source,
        format!("ConfigMap {ns}/elsewhere (auth.config.json)")
    );

    let r = check("https://acme.authkit.app", &acme).await.unwrap();
    assert_eq!(r.verdict, Verdict::Rejected);
    assert!(r.fix.unwrap().starts_with(
        "token iss is https://acme.authkit.app; add spec.authkitDomain: acme.authkit.app"
    ));

    let err = check(&issuer, &args(&format!("{ns}/nope"), cp.kubeconfig()))
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("cannot read WorkOSConvexAuth {ns}/nope")),
        "{err}"
    );
    let err = check(&issuer, &args("no-slash", cp.kubeconfig()))
        .await
        .unwrap_err();
    assert_eq!(err, "--resource \"no-slash\" is not NAMESPACE/NAME");

    // --context picks the kubeconfig's context: the named one is used, an unknown one refused.
    let contexts = cp.kubeconfig_copy(&format!("check-token-{ns}")).unwrap();
    cp.add_context(&contexts, "tenant", "wca-local", None)
        .unwrap();
    cp.kubectl_config(
        &contexts,
        &["set-cluster", "gone", "--server", "https://127.0.0.1:1"],
    )
    .unwrap();
    cp.add_context(&contexts, "elsewhere", "gone", None)
        .unwrap();
    let in_context = |context: &str| {
        let mut a = args(&format!("{ns}/acme"), &contexts);
        a.cluster.context = Some(context.to_string());
        a
    };
    let r = check(&issuer, &in_context("tenant")).await.unwrap();
    assert_eq!(r.verdict, Verdict::Accepted);
    let err = check(&issuer, &in_context("elsewhere")).await.unwrap_err();
    assert!(
        err.starts_with(&format!("cannot read WorkOSConvexAuth {ns}/acme")),
        "{err}"
    );
    let err = check(&issuer, &in_context("nope")).await.unwrap_err();
    assert!(err.contains("nope"), "{err}");
    let _ = std::fs::remove_file(&contexts);
}
