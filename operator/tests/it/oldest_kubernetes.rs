//! The oldest Kubernetes the chart supports (`kubeVersion: >=1.30.0-0`): a control plane whose
//! kube-apiserver is `KUBE_OLDEST_VERSION` (tests/control-plane/versions.env, built and cached by
//! install.sh like the current one). The CRD installs and its CEL rules, defaults and status
//! subresource work; one full reconcile applies every child kind (the mirror's preStop `sleep`
//! action is what needs 1.30); the chart installs, and helm refuses an older cluster.

use super::support::conditions::Want;
use super::support::fixtures::{SpecExt, from_secret, key_ref, resource, spec};
use super::support::scenario::Scenario;
use workos_convex_auth::reconcile::reason::ConditionType::ConfigReady;

use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use wca_test_harness::{ControlPlane, repo_root};
use workos_convex_auth::api::WorkOSConvexAuth;

fn oldest() -> &'static ControlPlane {
    static OLDEST: OnceLock<ControlPlane> = OnceLock::new();
    OLDEST.get_or_init(|| {
        let cp = ControlPlane::start_oldest().expect("start the oldest supported kube-apiserver");
        cp.install_crds()
            .expect("the CRD installs on the oldest supported version");
        cp
    })
}

fn versions_env(key: &str) -> String {
    let env =
        std::fs::read_to_string(repo_root().join("tests/control-plane/versions.env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} in versions.env"))
        .to_string()
}

/// The minor version the chart's kubeVersion names (`>=1.30.0-0` → 30).
fn chart_minimum_minor() -> u32 {
    let chart =
        std::fs::read_to_string(repo_root().join("charts/workos-convex-auth/Chart.yaml")).unwrap();
    let constraint = chart
        .lines()
        .find_map(|l| l.strip_prefix("kubeVersion:"))
        .expect("Chart.yaml kubeVersion");
    let version = constraint.trim().trim_matches('"').trim_start_matches(">=");
    version.split('.').nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_oldest_version_tested_is_the_one_the_chart_names() {
    let pinned = versions_env("KUBE_OLDEST_VERSION");
    let minor: u32 = pinned.split('.').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        minor,
        chart_minimum_minor(),
        "{pinned} against Chart.yaml's kubeVersion"
    );
    let version = oldest().kubectl_ok(&["version", "-o", "json"]).unwrap();
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], pinned.as_str());
}

/// The CRD's CEL rules refuse what they should, its defaults are filled in, and the status
/// subresource takes a server-side apply, on the oldest API server.
#[tokio::test]
async fn the_crd_validates_defaults_and_takes_status_on_the_oldest_version() {
    let cp = oldest();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "oldest-crd").await.unwrap();
    let api: Api<WorkOSConvexAuth> = Api::namespaced(client, &ns);
    let refused = [
        (
            spec("client_01A").with(|s| s.client_id_from = from_secret("s", "k").client_id_from),
            "set exactly one of spec.clientId or spec.clientIdFrom",
        ),
        (
            spec("client_01A").proxy(|p| p.refresh_interval = "5s".into()),
            "spec.proxy.refreshInterval must be at least 10s",
        ),
        (
            from_secret("s", "k").with(|s| {
                s.client_id_from.as_mut().unwrap().config_map_key_ref = Some(key_ref("c", "k"))
            }),
            "needs exactly one of secretKeyRef or configMapKeyRef",
        ),
        (
            spec("client_01A").with(|s| s.ingress.enabled = true),
            "spec.ingress.enabled needs spec.ingress.host",
        ),
    ];
    for (spec, message) in refused {
        let err = api
            .create(&PostParams::default(), &resource("refused", spec.clone()))
            .await
            .expect_err("refused by the CRD's rules");
        assert!(err.to_string().contains(message), "{spec:?}: {err}");
    }

    let created = api
        .create(
            &PostParams::default(),
            &resource("defaults", spec("client_01A")),
        )
        .await
        .unwrap();
    let spec = serde_json::to_value(&created.spec).unwrap();
    assert_eq!(spec["jwks"]["mode"], "Proxy", "{spec}");
    assert_eq!(
        spec["jwks"]["upstreamBase"], "https://api.workos.com",
        "{spec}"
    );
    assert_eq!(spec["proxy"]["refreshInterval"], "5m", "{spec}");

    let status = json!({
        "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
        "status": {"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "False", "reason": "Testing", "message": "written by a test",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
        }]},
    });
    api.patch_status(
        "defaults",
        &PatchParams::apply("oldest-test").force(),
        &Patch::Apply(&status),
    )
    .await
    .expect("server-side apply of status");
    let read = api.get("defaults").await.unwrap().status.unwrap();
    assert_eq!(read.conditions[0].reason, "Testing");
}

/// One full reconcile on the oldest API server: every child kind applied and accepted (the
/// Deployment's preStop sleep action included), the status written.
#[tokio::test]
async fn a_resource_reconciles_fully_on_the_oldest_version() {
    let s = Scenario::on(
        oldest(),
        "oldest-reconcile",
        &[
            "--mirror-network-policy",
            "--mirror-image-pull-secrets",
            "regcred",
        ],
    )
    .await;
    s.create("acme", spec("client_01A")).await;
    let cm = s.appears::<ConfigMap>("acme-convex-auth").await;
    assert!(cm.data.unwrap()["auth.config.ts"].contains("satisfies AuthConfig"));
    let deployment = s.appears::<Deployment>("acme-jwks").await;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let sleep = pod.containers[0]
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|p| p.sleep.as_ref())
        .map(|s| s.seconds);
    assert!(
        sleep.is_some_and(|s| s > 0),
        "the preStop sleep action was kept"
    );
    assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
    s.appears::<Service>("acme-jwks").await;
    s.appears::<PodDisruptionBudget>("acme-jwks").await;
    s.appears::<NetworkPolicy>("acme-jwks").await;
    s.condition("acme", Want::holds(ConfigReady)).await;
    let status = s.status("acme").await;
    assert_eq!(status.observed_generation, Some(1));
}

/// The chart installs on the oldest version (every object it renders by default is accepted),
/// and helm refuses a cluster older than kubeVersion.
#[test]
fn the_chart_installs_on_the_oldest_version_and_not_below_it() {
    let cp = oldest();
    let chart = repo_root().join("charts/workos-convex-auth");
    let out = cp
        .helm()
        .args(["install", "wca-oldest"])
        .arg(&chart)
        .args([
            "-n",
            "wca-oldest",
            "--create-namespace",
            "--set",
            "crds.install=false",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm install on the oldest version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deployments = cp
        .kubectl_ok(&["-n", "wca-oldest", "get", "deployments", "-o", "name"])
        .unwrap();
    assert!(
        deployments.contains("wca-oldest-workos-convex-auth"),
        "{deployments}"
    );

    let below = format!("1.{}.0", chart_minimum_minor() - 1);
    let template = Command::new(cp.helm().get_program())
        .args(["template", "x"])
        .arg(&chart)
        .args(["--kube-version", &below])
        .output()
        .unwrap();
    assert!(
        !template.status.success(),
        "helm must refuse Kubernetes {below}"
    );
    let stderr = String::from_utf8_lossy(&template.stderr);
    assert!(stderr.contains("kubeVersion"), "{stderr}");
}
