//! GitOps health (issue 24) on the real apiserver: the status the operator writes, read by the
//! tools GitOps controllers use. kstatus itself (`sigs.k8s.io/cli-utils` v0.37.2, through
//! `tests/tools/kstatus`) as Flux, kpt and Config Sync compute it, and the chart's Argo CD health
//! check under Lua 5.1 (Argo runs gopher-lua, a 5.1 dialect): Current/Healthy when Ready,
//! InProgress/Progressing while mirror pods start, Failed/Degraded when only an edit helps (a
//! missing Secret, a policy refusal), and back to Current once the Secret exists.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use wca_test_harness::{repo_root, run_ok};
use workos_convex_auth::api::WorkOSConvexAuth;

use super::support::conditions::Want;
use super::support::fixtures::{SpecExt, from_secret, spec};
use super::support::scenario::Scenario;
use workos_convex_auth::reconcile::reason::ConditionType::{Ready, Reconciling, Stalled};
use workos_convex_auth::reconcile::reason::Reason;

/// The kstatus helper, built once per machine by `image/tools.sh` (cached by content).
fn kstatus_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = run_ok(
            Command::new("bash")
                .arg(repo_root().join("image/tools.sh"))
                .arg("kstatus"),
        )
        .expect("image/tools.sh kstatus");
        PathBuf::from(path.trim())
    })
}

/// (kstatus status, kstatus message, Argo CD health status, Argo CD message) of the resource as
/// stored in the apiserver.
async fn verdicts(s: &Scenario, name: &str) -> (String, String, String, String) {
    let stored = s.api::<WorkOSConvexAuth>().get(name).await.unwrap();
    let file = std::env::temp_dir().join(format!("wca-health-{}-{name}.json", s.ns));
    std::fs::write(&file, serde_json::to_vec(&stored).unwrap()).unwrap();
    let parse = |out: String| -> (String, String) {
        let v: Value = serde_json::from_str(out.trim()).expect("one JSON line");
        (
            v["status"].as_str().unwrap_or_default().to_string(),
            v["message"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (kstatus, kstatus_message) =
        parse(run_ok(Command::new(kstatus_bin()).arg(&file)).expect("kstatus"));
    let root = repo_root();
    let (argo, argo_message) = parse(
        run_ok(
            Command::new("lua5.1")
                .arg(root.join("tests/argocd/run_health.lua"))
                .arg(root.join("charts/workos-convex-auth/files/argocd-health.lua"))
                .arg(&file),
        )
        .expect("the Argo CD health check"),
    );
    let _ = std::fs::remove_file(&file);
    (kstatus, kstatus_message, argo, argo_message)
}

#[tokio::test]
async fn kstatus_and_argo_cd_read_ready_progress_and_stalls_from_the_status() {
    let s = Scenario::with_policy("gitops-health", &["--max-proxy-replicas", "3"]).await;

    s.create("ready", spec("client_01A").direct()).await;
    s.condition("ready", Want::holds(Ready)).await;
    let (k, _, a, _) = verdicts(&s, "ready").await;
    assert_eq!((k.as_str(), a.as_str()), ("Current", "Healthy"));

    // Mode Proxy without a kubelet: the mirror's pods never start, which the operator waits for.
    s.create("starting", spec("client_01A")).await;
    let waiting = s.condition("starting", Want::holds(Reconciling)).await;
    let (k, km, a, am) = verdicts(&s, "starting").await;
    assert_eq!((k.as_str(), a.as_str()), ("InProgress", "Progressing"));
    assert_eq!(
        (km.as_str(), am.as_str()),
        (waiting.as_str(), waiting.as_str())
    );

    s.create("no-secret", from_secret("workos", "client-id").direct())
        .await;
    let missing = s.condition("no-secret", Want::holds(Stalled)).await;
    assert!(missing.contains("does not exist"), "{missing}");
    let (k, km, a, am) = verdicts(&s, "no-secret").await;
    assert_eq!((k.as_str(), a.as_str()), ("Failed", "Degraded"));
    assert_eq!(
        (km.as_str(), am.as_str()),
        (missing.as_str(), missing.as_str())
    );

    s.create("refused", spec("client_01A").proxy(|p| p.replicas = 9))
        .await;
    s.refused("refused", Reason::NotAllowed).await;
    let (k, _, a, _) = verdicts(&s, "refused").await;
    assert_eq!((k.as_str(), a.as_str()), ("Failed", "Degraded"));

    // The edit that helps: Stalled goes, and both tools say so.
    s.create_secret("workos", json!({"client-id": "client_01FROMSECRET"}))
        .await;
    s.condition("no-secret", Want::holds(Ready)).await;
    let stored = s.api::<WorkOSConvexAuth>().get("no-secret").await.unwrap();
    let types: Vec<String> = stored
        .status
        .unwrap()
        .conditions
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert!(
        !types
            .iter()
            .any(|t| t == Stalled.as_str() || t == Reconciling.as_str()),
        "{types:?}"
    );
    let (k, _, a, _) = verdicts(&s, "no-secret").await;
    assert_eq!((k.as_str(), a.as_str()), ("Current", "Healthy"));
}

/// The README shows the Argo CD health check as it ships (`files/argocd-health.lua`), indented
/// into the `argocd-cm` key.
#[test]
fn the_readme_shows_the_shipped_argo_cd_health_check() {
    let root = repo_root();
    let lua =
        std::fs::read_to_string(root.join("charts/workos-convex-auth/files/argocd-health.lua"))
            .unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let indented: String = lua
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect();
    let key = "  resource.customizations.health.workos-convex.io_WorkOSConvexAuth: |\n";
    assert!(
        readme.contains(&format!("{key}{indented}```")),
        "README's argocd-cm block differs from charts/workos-convex-auth/files/argocd-health.lua"
    );
}
