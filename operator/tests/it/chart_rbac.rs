//! The Helm chart's RBAC, proved against a real kube-apiserver: the chart is installed, the
//! operator runs in-process **as the chart's ServiceAccount** (a TokenRequest token) through
//! the controller's scenarios, and then
//!   - no request it made was denied (zero 403s in the apiserver's audit log),
//!   - every rule the chart grants was used at least once (a grant nobody uses fails the test),
//!   - a deny list holds (`kubectl auth can-i --as=<the ServiceAccount>`).
//!
//! Once cluster-wide (`watchNamespaces: []`) and once for one namespace (`[apps]`), both with
//! the chart's leader election (its Lease Role is part of what must be used exactly).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wca_test_harness::{ControlPlane, eventually, repo_root, run_ok};
use workos_convex_auth::gateway::HTTPRoute;

use super::support::audit;
use super::support::binary::Admin;
use super::support::conditions::Want;
use super::support::fixtures::{SpecExt, from_config_map, from_secret, parent, spec};
use super::support::scenario::{Ns, run_operator};
use workos_convex_auth::reconcile::reason::ConditionType::{
    ConfigReady, ConvexSynced, ProxyAvailable, Ready,
};
use workos_convex_auth::reconcile::reason::Reason;

const WAIT: Duration = Duration::from_secs(30);
const RELEASE_NS: &str = "wca-system";
const SA: &str = "wca-workos-convex-auth";

fn sa_user() -> String {
    audit::service_account(RELEASE_NS, SA)
}

/// (apiGroup, resource[/subresource], verb)
type Grant = (String, String, String);

struct Installed {
    cp: ControlPlane,
    admin: Client,
    operator: Client,
}

/// Starts a fresh control plane (its own audit log), installs the chart with `sets`, and builds
/// a client that authenticates as the chart's ServiceAccount.
async fn install(sets: &[&str]) -> Installed {
    let cp = ControlPlane::start().expect("start the local control plane");
    let admin = cp.client().await.unwrap();
    for ns in ["apps", "elsewhere"] {
        cp.kubectl_ok(&["create", "namespace", ns]).unwrap();
    }
    // The Gateway API's CRDs, so that the HTTPRoute rules are exercised too.
    cp.install_gateway_api().unwrap();
    let chart = repo_root().join("charts/workos-convex-auth");
    let mut helm = cp.helm();
    helm.args(["install", "wca"])
        .arg(&chart)
        .args(["-n", RELEASE_NS, "--create-namespace"]);
    for s in sets {
        helm.args(["--set", s]);
    }
    run_ok(&mut helm).unwrap();
    cp.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd/workosconvexauths.workos-convex.io",
    ])
    .unwrap();

    // The TokenRequest API, as the kubelet would for the operator pod.
    let token = cp
        .kubectl_ok(&["create", "token", SA, "-n", RELEASE_NS, "--duration=1h"])
        .unwrap();
    let mut kubeconfig = Kubeconfig::read_from(cp.kubeconfig()).unwrap();
    let user = kubeconfig.auth_infos[0].auth_info.as_mut().unwrap();
    user.token = Some(token.trim().to_string().into());
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let operator = Client::try_from(config).unwrap();
    Installed {
        cp,
        admin,
        operator,
    }
}

impl Installed {
    fn can_i(&self, args: &[&str]) -> bool {
        let user = sa_user();
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--as", &user]);
        let out = self.cp.kubectl().args(&full).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    }

    /// The RBAC authorizer learns new bindings from a watch: wait until it has.
    async fn wait_for_rbac(&self, ns: &str) {
        eventually(WAIT, "the chart's RBAC to take effect", || async {
            self.can_i(&["list", "workosconvexauths.workos-convex.io", "-n", ns])
                .then_some(())
        })
        .await
        .unwrap();
    }

    fn start_operator(&self, namespace: Option<&str>) -> JoinHandle<()> {
        let mut flags = vec![];
        if let Some(namespace) = namespace {
            flags.extend(["--namespace", namespace]);
        }
        // The mirrors' NetworkPolicies, so that their rule is exercised too (the chart's
        // mirrorNetworkPolicy.enabled passes the same flags).
        flags.extend([
            "--mirror-network-policy",
            "--mirror-network-policy-from-namespaces",
            "traefik",
        ]);
        // Leader election exactly as the chart's Deployment asks for it: the Lease's name and
        // namespace must be the ones its Role grants.
        let deployment: Value = serde_json::from_str(
            &self
                .cp
                .kubectl_ok(&["get", "deployment", SA, "-n", RELEASE_NS, "-o", "json"])
                .unwrap(),
        )
        .unwrap();
        let election: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .filter(|arg| arg.starts_with("--leader-elect"))
            .map(str::to_string)
            .collect();
        assert!(
            election.contains(&"--leader-elect".to_string()),
            "the chart elects a leader by default: {election:?}"
        );
        flags.extend(election.iter().map(String::as_str));
        // As the chart's ServiceAccount.
        run_operator(self.operator.clone(), &Admin::any(), &flags)
    }

    fn audit_log(&self) -> PathBuf {
        self.cp.kubeconfig().parent().unwrap().join("audit.log")
    }

    /// Every (group, resource, verb) the chart grants the ServiceAccount, from the bindings in
    /// the cluster (so a rule added anywhere in the chart is seen).
    fn granted(&self) -> BTreeSet<Grant> {
        let user_ns = RELEASE_NS;
        let mut grants = BTreeSet::new();
        for (binding_kind, scope) in [("clusterrolebindings", None), ("rolebindings", Some("-A"))] {
            let mut args = vec!["get", binding_kind, "-o", "json"];
            args.extend(scope);
            let list: Value = serde_json::from_str(&self.cp.kubectl_ok(&args).unwrap()).unwrap();
            for b in list["items"].as_array().unwrap() {
                let ours = b["subjects"].as_array().is_some_and(|s| {
                    s.iter().any(|s| {
                        s["kind"] == "ServiceAccount"
                            && s["name"] == SA
                            && s["namespace"] == user_ns
                    })
                });
                if !ours {
                    continue;
                }
                let role_kind = b["roleRef"]["kind"].as_str().unwrap();
                let role_name = b["roleRef"]["name"].as_str().unwrap();
                let mut args = vec!["get", role_kind, role_name, "-o", "json"];
                let ns = b["metadata"]["namespace"].as_str().map(str::to_string);
                if role_kind == "Role" {
                    args.extend(["-n", ns.as_deref().unwrap()]);
                }
                let role: Value =
                    serde_json::from_str(&self.cp.kubectl_ok(&args).unwrap()).unwrap();
                for rule in role["rules"].as_array().unwrap() {
                    assert!(
                        rule.get("nonResourceURLs").is_none(),
                        "non-resource URLs granted: {rule}"
                    );
                    for field in ["apiGroups", "resources", "verbs"] {
                        assert!(
                            !rule[field].as_array().unwrap().contains(&json!("*")),
                            "a wildcard in {role_kind}/{role_name}: {rule}"
                        );
                    }
                    for g in rule["apiGroups"].as_array().unwrap() {
                        for r in rule["resources"].as_array().unwrap() {
                            for v in rule["verbs"].as_array().unwrap() {
                                grants.insert((
                                    g.as_str().unwrap().into(),
                                    r.as_str().unwrap().into(),
                                    v.as_str().unwrap().into(),
                                ));
                            }
                        }
                    }
                }
            }
        }
        grants
    }

    /// What the ServiceAccount asked for, from the audit log, and the requests that were denied.
    fn used(&self) -> (BTreeSet<Grant>, Vec<String>) {
        let (mut used, mut denied) = (BTreeSet::new(), Vec::new());
        for e in audit::read_existing(&self.audit_log()) {
            if e.user != sa_user() {
                continue;
            }
            if e.code == 403 {
                denied.push(format!("{} {}: {}", e.verb, e.request_uri, e.message));
            }
            let Some(object) = e.object else {
                continue; // discovery and other non-resource URLs
            };
            let mut resource = object.resource;
            if let Some(sub) = object.subresource {
                resource = format!("{resource}/{sub}");
            }
            // A server-side apply that creates the object is also authorized as `create`.
            if e.verb == "patch" && e.code == 201 {
                used.insert((object.api_group.clone(), resource.clone(), "create".into()));
            }
            used.insert((object.api_group, resource, e.verb));
        }
        (used, denied)
    }

    /// The proof: zero 403s, no grant unused, nothing used that is not granted.
    fn assert_least_privilege(&self) {
        let granted = self.granted();
        let (used, denied) = self.used();
        assert!(
            !used.is_empty(),
            "no requests of {} in the audit log",
            sa_user()
        );
        assert!(
            denied.is_empty(),
            "requests of the operator were denied (a rule is missing from the chart):\n{}",
            denied.join("\n")
        );
        let unused: Vec<_> = granted.difference(&used).collect();
        assert!(
            unused.is_empty(),
            "the chart grants rules the operator never used (remove them, or add a scenario that needs them): {unused:?}"
        );
        let missing: Vec<_> = used.difference(&granted).collect();
        assert!(missing.is_empty(), "used but not granted: {missing:?}");
    }

    /// Runs the scenarios; when one fails, the denied requests are the likely cause: show them.
    async fn scenarios(&self, ns: &str) {
        let admin = self.admin.clone();
        let ns = ns.to_string();
        let outcome = tokio::spawn(async move { run_scenarios(&admin, &ns).await }).await;
        if let Err(e) = outcome {
            let (_, denied) = self.used();
            panic!(
                "a scenario failed ({e}); requests of the operator denied so far:\n{}",
                denied.join("\n")
            );
        }
    }

    /// Requests the ServiceAccount must not be able to make anywhere.
    fn assert_deny_list(&self) {
        for args in [
            &["list", "secrets", "-A"][..],
            &["watch", "secrets", "-A"],
            &["list", "secrets", "-n", "apps"],
            &["watch", "secrets", "-n", "apps"],
            &["create", "secrets", "-n", "apps"],
            &["update", "secrets", "-n", "apps"],
            &["*", "*", "-A"],
            &["*", "configmaps", "-n", "apps"],
            &["escalate", "clusterroles"],
            &["bind", "clusterroles"],
            &["escalate", "roles", "-n", "apps"],
            &["bind", "roles", "-n", "apps"],
            &["create", "clusterrolebindings"],
            &["create", "rolebindings", "-n", "apps"],
            &["impersonate", "users"],
            &["impersonate", "groups"],
            &["impersonate", "serviceaccounts", "-n", "apps"],
            &["delete", "customresourcedefinitions"],
            &["update", "customresourcedefinitions"],
            &["delete", "workosconvexauths.workos-convex.io", "-n", "apps"],
            &["update", "workosconvexauths.workos-convex.io", "-n", "apps"],
            &["create", "pods", "-n", "apps"],
            &["create", "pods/exec", "-n", "apps"],
            &["create", "serviceaccounts/token", "-n", "apps"],
            &["delete", "namespaces"],
        ] {
            assert!(!self.can_i(args), "the ServiceAccount can {args:?}");
        }
    }
}

/// The controller's scenarios in namespace `ns`, driven by the admin; the operator (running as
/// the ServiceAccount) must bring each one to its expected state.
async fn run_scenarios(admin: &Client, ns: &str) {
    let t = Ns::new(admin.clone(), ns, WAIT);
    // Create: every child (server-side apply creates them), status, an event.
    t.create("acme", spec("client_01A").ingress("jwks.acme.com"))
        .await;
    t.appears::<ConfigMap>("acme-convex-auth").await;
    t.appears::<Deployment>("acme-jwks").await;
    t.appears::<Service>("acme-jwks").await;
    t.appears::<PodDisruptionBudget>("acme-jwks").await;
    t.appears::<Ingress>("acme-jwks").await;
    t.appears::<NetworkPolicy>("acme-jwks").await;
    t.condition("acme", Want::holds(ConfigReady)).await;

    // Update, then remove the Ingress; then switch to Direct, removing the mirror.
    t.patch_spec("acme", json!({"authDomain": "auth.acme.com"}))
        .await;
    t.config_json_containing("acme-convex-auth", "auth.acme.com")
        .await;
    t.patch_spec("acme", json!({"ingress": {"enabled": false}}))
        .await;
    t.gone::<Ingress>("acme-jwks").await;
    t.patch_spec("acme", json!({"jwks": {"mode": "Direct"}}))
        .await;
    t.gone::<Deployment>("acme-jwks").await;
    t.gone::<Service>("acme-jwks").await;
    t.gone::<PodDisruptionBudget>("acme-jwks").await;
    t.gone::<NetworkPolicy>("acme-jwks").await;
    // Renaming the ConfigMap removes the old one (found by label).
    t.patch_spec("acme", json!({"configMap": {"name": "acme-renamed"}}))
        .await;
    t.gone::<ConfigMap>("acme-convex-auth").await;
    t.condition("acme", Want::holds(Ready)).await;

    // A ConfigMap it does not control: left alone, reported.
    t.create_config_map("beta-convex-auth", json!({})).await;
    t.create("beta", spec("client_01B").direct()).await;
    t.condition("beta", Want::fails(ConfigReady)).await;

    // Objects of every mirror kind in the way, none of them ours: the operator's caches hold
    // only its own children, so each create finds the name taken (409) and one GET says whose.
    let theirs = "epsilon-jwks";
    let labels = json!({"app": "theirs"});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": theirs},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/theirs:1"}]}}}
    }))
    .unwrap();
    t.add(&deployment).await;
    let service: Service = serde_json::from_value(
        json!({"metadata": {"name": theirs}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    t.add(&service).await;
    let budget: PodDisruptionBudget = serde_json::from_value(
        json!({"metadata": {"name": theirs}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}),
    )
    .unwrap();
    t.add(&budget).await;
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": theirs},
        "spec": {"defaultBackend": {"service": {"name": theirs, "port": {"number": 80}}}}
    }))
    .unwrap();
    t.add(&ingress).await;
    let policy: NetworkPolicy =
        serde_json::from_value(json!({"metadata": {"name": theirs}, "spec": {"podSelector": {}}}))
            .unwrap();
    t.add(&policy).await;
    t.create("epsilon", spec("client_01E").ingress("jwks.epsilon.com"))
        .await;
    let message = t.condition("epsilon", Want::fails(ProxyAvailable)).await;
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
    ] {
        assert!(
            message.contains(&format!("{kind} {ns}/{theirs}")),
            "{kind} named in: {message}"
        );
    }

    // An HTTPRoute: created, then removed when the resource drops it; and one in the way.
    t.create(
        "zeta",
        spec("client_01Z").http_route(vec![parent("public", None)], &["jwks.zeta.com"]),
    )
    .await;
    t.appears::<HTTPRoute>("zeta-jwks").await;
    t.patch_spec("zeta", json!({"httpRoute": null})).await;
    t.gone::<HTTPRoute>("zeta-jwks").await;
    let route: HTTPRoute = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "eta-jwks"},
        "spec": {"parentRefs": [{"name": "public"}]}
    }))
    .unwrap();
    t.add(&route).await;
    t.create(
        "eta",
        spec("client_01H").http_route(vec![parent("public", None)], &["jwks.eta.com"]),
    )
    .await;
    let message = t.condition("eta", Want::fails(ProxyAvailable)).await;
    assert!(
        message.contains(&format!("HTTPRoute {ns}/eta-jwks")),
        "HTTPRoute named in: {message}"
    );

    // clientIdFrom: a Secret missing then present, and a ConfigMap.
    t.create("gamma", from_secret("workos", "id").direct())
        .await;
    let message = t.condition("gamma", Want::fails(ConfigReady)).await;
    assert!(message.contains("does not exist"), "{message}");
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "workos"}, "stringData": {"id": "client_01SECRET"}}),
    )
    .unwrap();
    t.add(&secret).await;
    t.condition("gamma", Want::holds(Ready)).await;
    t.create_config_map("workos-id", json!({"id": "client_01CM"}))
        .await;
    t.create("delta", from_config_map("workos-id", "id").direct())
        .await;
    t.condition("delta", Want::holds(Ready)).await;
}

#[tokio::test]
async fn cluster_wide_rbac_is_exactly_what_the_operator_uses() {
    let chart = install(&[]).await;
    chart.wait_for_rbac("apps").await;
    assert!(
        chart.can_i(&["get", "secrets", "-n", "apps"]),
        "control: can-i answers yes for a granted rule"
    );
    let operator = chart.start_operator(None);
    chart.scenarios("apps").await;
    operator.abort();
    chart.assert_least_privilege();
    chart.assert_deny_list();
}

#[tokio::test]
async fn one_namespace_rbac_reaches_only_that_namespace() {
    let chart = install(&["watchNamespaces={apps}"]).await;
    chart.wait_for_rbac("apps").await;
    let operator = chart.start_operator(Some("apps"));
    chart.scenarios("apps").await;
    operator.abort();
    chart.assert_least_privilege();
    chart.assert_deny_list();
    for args in [
        &["get", "configmaps", "-n", "elsewhere"][..],
        &["get", "secrets", "-n", "elsewhere"],
        &[
            "list",
            "workosconvexauths.workos-convex.io",
            "-n",
            "elsewhere",
        ],
        &["list", "workosconvexauths.workos-convex.io", "-A"],
        &["list", "configmaps", "-A"],
        &["get", "configmaps", "-n", RELEASE_NS],
        &["create", "events.events.k8s.io", "-n", "elsewhere"],
    ] {
        assert!(
            !chart.can_i(args),
            "namespaced mode, yet the ServiceAccount can {args:?}"
        );
    }
}

/// Issue 24: with `rbac.secrets=false` the operator cannot read a Secret a resource names; that
/// is never silent: `Ready=False`, reason `Forbidden`, naming the verb, the Secret and the chart
/// value, and one Warning Event; for `spec.clientIdFrom` and for the Convex admin key alike.
#[tokio::test]
async fn a_secret_the_operator_may_not_read_is_reported_with_the_chart_value() {
    let chart = install(&["rbac.secrets=false"]).await;
    chart.wait_for_rbac("apps").await;
    assert!(!chart.can_i(&["get", "secrets", "-n", "apps"]));
    let operator = chart.start_operator(None);
    let t = Ns::new(chart.admin.clone(), "apps", WAIT);
    t.create("from-secret", from_secret("workos", "id").direct())
        .await;
    let message = t.refused("from-secret", Reason::Forbidden).await;
    assert!(
        message.starts_with("the operator may not get secrets apps/workos (403 Forbidden)")
            && message.contains("rbac.secrets=true"),
        "{message}"
    );

    let admin_key = spec("client_01A").direct().convex(
        "https://happy-animal-123.convex.cloud",
        "convex-admin",
        "adminKey",
    );
    t.create("admin-key", admin_key).await;
    let forbidden = Want::fails(ConvexSynced).reason(Reason::Forbidden);
    let message = t.condition("admin-key", forbidden).await;
    assert!(
        message.starts_with("the operator may not get secrets apps/convex-admin (403 Forbidden)"),
        "{message}"
    );

    // One Warning per resource, not one per retry.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(chart.admin.clone(), "apps");
    let forbidden: Vec<_> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Forbidden"))
        .collect();
    for name in ["from-secret", "admin-key"] {
        let count = forbidden
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| e.deprecated_count.unwrap_or(1))
            .sum::<i32>();
        assert_eq!(count, 1, "{name}: one Warning Event, got {count}");
    }
    operator.abort();
}
