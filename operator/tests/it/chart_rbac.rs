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
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wca_test_harness::{ControlPlane, eventually, repo_root, run_ok};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::controller::{RunArgs, run_with_client};
use workos_convex_auth::gateway::HTTPRoute;

const WAIT: Duration = Duration::from_secs(30);
const RELEASE_NS: &str = "wca-system";
const SA: &str = "wca-workos-convex-auth";

fn sa_user() -> String {
    format!("system:serviceaccount:{RELEASE_NS}:{SA}")
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
        let mut flags = vec![
            "--proxy-image",
            "example.com/workos-convex-auth:test",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ];
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
        let args = RunArgs::parse_flags(flags).unwrap();
        let client = self.operator.clone();
        tokio::spawn(async move {
            run_with_client(client, args)
                .await
                .expect("the operator runs as the chart's ServiceAccount");
        })
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
        let log = std::fs::read_to_string(self.audit_log()).unwrap();
        let (mut used, mut denied) = (BTreeSet::new(), Vec::new());
        for line in log.lines() {
            let e: Value = serde_json::from_str(line).unwrap();
            if e["user"]["username"] != sa_user().as_str() {
                continue;
            }
            let code = e["responseStatus"]["code"].as_i64().unwrap_or(0);
            if code == 403 {
                denied.push(format!(
                    "{} {}: {}",
                    e["verb"], e["requestURI"], e["responseStatus"]["message"]
                ));
            }
            let Some(object) = e.get("objectRef") else {
                continue; // discovery and other non-resource URLs
            };
            let group = object["apiGroup"].as_str().unwrap_or("").to_string();
            let mut resource = object["resource"].as_str().unwrap().to_string();
            if let Some(sub) = object["subresource"].as_str() {
                resource = format!("{resource}/{sub}");
            }
            let verb = e["verb"].as_str().unwrap().to_string();
            // A server-side apply that creates the object is also authorized as `create`.
            if verb == "patch" && code == 201 {
                used.insert((group.clone(), resource.clone(), "create".into()));
            }
            used.insert((group, resource, verb));
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
    let wca: Api<WorkOSConvexAuth> = Api::namespaced(admin.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let create = |name: &str, spec: Value| {
        let wca = wca.clone();
        let r: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        async move { wca.create(&PostParams::default(), &r).await.unwrap() }
    };
    let patch = |name: &'static str, spec: Value| {
        let wca = wca.clone();
        async move {
            wca.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap();
        }
    };
    let condition = |name: &'static str, type_: &'static str, status: &'static str| {
        let wca = wca.clone();
        async move {
            eventually(WAIT, &format!("{name} {type_}={status}"), || async {
                let r = wca.get(name).await.ok()?;
                r.status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == type_ && c.status == status)
                    .map(|c| c.message)
            })
            .await
            .unwrap()
        }
    };
    async fn present<K>(client: &Client, ns: &str, name: &str, want: bool)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        let what = format!("{} {name} present={want}", K::kind(&()));
        eventually(WAIT, &what, || async {
            (api.get_opt(name).await.ok()?.is_some() == want).then_some(())
        })
        .await
        .unwrap();
    }

    // Create: every child (server-side apply creates them), status, an event.
    create(
        "acme",
        json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    present::<ConfigMap>(admin, ns, "acme-convex-auth", true).await;
    present::<Deployment>(admin, ns, "acme-jwks", true).await;
    present::<Service>(admin, ns, "acme-jwks", true).await;
    present::<PodDisruptionBudget>(admin, ns, "acme-jwks", true).await;
    present::<Ingress>(admin, ns, "acme-jwks", true).await;
    present::<NetworkPolicy>(admin, ns, "acme-jwks", true).await;
    condition("acme", "ConfigReady", "True").await;

    // Update, then remove the Ingress; then switch to Direct, removing the mirror.
    patch("acme", json!({"authDomain": "auth.acme.com"})).await;
    eventually(WAIT, "updated config", || async {
        let cm = cms.get("acme-convex-auth").await.ok()?;
        cm.data?
            .get("auth.config.json")?
            .contains("auth.acme.com")
            .then_some(())
    })
    .await
    .unwrap();
    patch("acme", json!({"ingress": {"enabled": false}})).await;
    present::<Ingress>(admin, ns, "acme-jwks", false).await;
    patch("acme", json!({"jwks": {"mode": "Direct"}})).await;
    present::<Deployment>(admin, ns, "acme-jwks", false).await;
    present::<Service>(admin, ns, "acme-jwks", false).await;
    present::<PodDisruptionBudget>(admin, ns, "acme-jwks", false).await;
    present::<NetworkPolicy>(admin, ns, "acme-jwks", false).await;
    // Renaming the ConfigMap removes the old one (found by label).
    patch("acme", json!({"configMap": {"name": "acme-renamed"}})).await;
    present::<ConfigMap>(admin, ns, "acme-convex-auth", false).await;
    condition("acme", "Ready", "True").await;

    // A ConfigMap it does not control: left alone, reported.
    let theirs: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "beta-convex-auth"}})).unwrap();
    cms.create(&PostParams::default(), &theirs).await.unwrap();
    create(
        "beta",
        json!({"clientId": "client_01B", "jwks": {"mode": "Direct"}}),
    )
    .await;
    condition("beta", "ConfigReady", "False").await;

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
    Api::<Deployment>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(
        json!({"metadata": {"name": theirs}, "spec": {"ports": [{"port": 80}]}}),
    )
    .unwrap();
    Api::<Service>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let budget: PodDisruptionBudget = serde_json::from_value(
        json!({"metadata": {"name": theirs}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}),
    )
    .unwrap();
    Api::<PodDisruptionBudget>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &budget)
        .await
        .unwrap();
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": theirs},
        "spec": {"defaultBackend": {"service": {"name": theirs, "port": {"number": 80}}}}
    }))
    .unwrap();
    Api::<Ingress>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &ingress)
        .await
        .unwrap();
    let policy: NetworkPolicy =
        serde_json::from_value(json!({"metadata": {"name": theirs}, "spec": {"podSelector": {}}}))
            .unwrap();
    Api::<NetworkPolicy>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    create(
        "epsilon",
        json!({"clientId": "client_01E", "ingress": {"enabled": true, "host": "jwks.epsilon.com"}}),
    )
    .await;
    let message = condition("epsilon", "ProxyAvailable", "False").await;
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
    create(
        "zeta",
        json!({"clientId": "client_01Z", "httpRoute": {"parentRefs": [{"name": "public"}], "hostnames": ["jwks.zeta.com"]}}),
    )
    .await;
    present::<HTTPRoute>(admin, ns, "zeta-jwks", true).await;
    patch("zeta", json!({"httpRoute": null})).await;
    present::<HTTPRoute>(admin, ns, "zeta-jwks", false).await;
    let route: HTTPRoute = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "eta-jwks"},
        "spec": {"parentRefs": [{"name": "public"}]}
    }))
    .unwrap();
    Api::<HTTPRoute>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &route)
        .await
        .unwrap();
    create(
        "eta",
        json!({"clientId": "client_01H", "httpRoute": {"parentRefs": [{"name": "public"}], "hostnames": ["jwks.eta.com"]}}),
    )
    .await;
    let message = condition("eta", "ProxyAvailable", "False").await;
    assert!(
        message.contains(&format!("HTTPRoute {ns}/eta-jwks")),
        "HTTPRoute named in: {message}"
    );

    // clientIdFrom: a Secret missing then present, and a ConfigMap.
    create("gamma", json!({"clientIdFrom": {"secretKeyRef": {"name": "workos", "key": "id"}}, "jwks": {"mode": "Direct"}})).await;
    let message = condition("gamma", "ConfigReady", "False").await;
    assert!(message.contains("does not exist"), "{message}");
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "workos"}, "stringData": {"id": "client_01SECRET"}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    condition("gamma", "Ready", "True").await;
    let source: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "workos-id"}, "data": {"id": "client_01CM"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &source).await.unwrap();
    create("delta", json!({"clientIdFrom": {"configMapKeyRef": {"name": "workos-id", "key": "id"}}, "jwks": {"mode": "Direct"}})).await;
    condition("delta", "Ready", "True").await;
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
    let api: Api<WorkOSConvexAuth> = Api::namespaced(chart.admin.clone(), "apps");
    let create = |name: &str, spec: Value| {
        let api = api.clone();
        let resource: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        async move { api.create(&PostParams::default(), &resource).await.unwrap() }
    };
    let condition_with = |name: &'static str, type_: &'static str, reason: &'static str| {
        let api = api.clone();
        async move {
            eventually(WAIT, &format!("{name} {type_} {reason}"), || async {
                let status = api.get(name).await.ok()?.status?;
                status
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == type_ && c.status == "False" && c.reason == reason)
                    .map(|c| c.message)
            })
            .await
            .unwrap()
        }
    };

    create("from-secret", json!({"clientIdFrom": {"secretKeyRef": {"name": "workos", "key": "id"}}, "jwks": {"mode": "Direct"}})).await;
    let message = condition_with("from-secret", "Ready", "Forbidden").await;
    assert!(
        message.starts_with("the operator may not get secrets apps/workos (403 Forbidden)")
            && message.contains("rbac.secrets=true"),
        "{message}"
    );

    create("admin-key", json!({"clientId": "client_01A", "jwks": {"mode": "Direct"}, "convex": {"url": "https://happy-animal-123.convex.cloud", "adminKeySecretRef": {"name": "convex-admin", "key": "adminKey"}}})).await;
    let message = condition_with("admin-key", "ConvexSynced", "Forbidden").await;
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
