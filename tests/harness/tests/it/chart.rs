//! The Helm chart (charts/workos-convex-auth): lint, values schema, hardened defaults, offline
//! and server-side schema validation, and install / upgrade / uninstall on the local control
//! plane. The RBAC proof (the operator running as the chart's ServiceAccount) is in
//! operator/tests/it/chart_rbac.rs, which needs the operator library.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

static PLANE_LOCK: Mutex<()> = Mutex::new(());

use serde_json::Value;
use wca_test_harness::{ControlPlane, bin_dir, repo_root, run_ok};

const CRD: &str = "workosconvexauths.workos-convex.io";

fn chart() -> String {
    repo_root()
        .join("charts/workos-convex-auth")
        .to_string_lossy()
        .into_owned()
}

/// helm without a cluster (lint, template).
fn helm() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    Command::new(
        BIN.get_or_init(|| bin_dir().expect("control-plane binaries"))
            .join("helm"),
    )
}

/// One control plane for this test binary, without the CRDs of crds/: the chart installs its own.
/// Tests using it take `PLANE_LOCK`: a dry run of the CRD must not race the install test.
fn plane() -> &'static ControlPlane {
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    PLANE.get_or_init(|| ControlPlane::start().expect("start the local control plane"))
}

/// `helm template` with `--set` pairs; the rendered YAML.
fn render(namespace: &str, sets: &[&str]) -> String {
    let mut cmd = helm();
    cmd.args(["template", "wca", &chart(), "-n", namespace]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run_ok(&mut cmd).unwrap()
}

fn render_err(sets: &[&str]) -> String {
    let mut cmd = helm();
    cmd.args(["template", "wca", &chart()]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "helm template {sets:?} should have been rejected"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

/// Writes `text` to a temp file that lives as long as the returned path's owner needs it.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wca-chart-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The value variants every check below runs on.
const VARIANTS: &[&[&str]] = &[
    &[],
    &["watchNamespaces={team-a}", "rbac.secretNames={workos}"],
    &[
        "networkPolicy.enabled=true",
        "metrics.serviceMonitor.enabled=true",
        "crds.install=false",
        "rbac.secrets=false",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
    &[
        "replicas=1",
        "leaderElection.enabled=false",
        "podDisruptionBudget.enabled=false",
    ],
    // Monitoring and the pod's knobs, all on.
    &[
        "watchNamespaces={team-a}",
        "metrics.serviceMonitor.enabled=true",
        "metrics.mirrorPodMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.prometheusRule.keyAgeSeconds=7200",
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.annotations.grafana_folder=Operators",
        "logLevel=info\\,workos_convex_auth=debug",
        "extraEnv[0].name=HTTPS_PROXY",
        "extraEnv[0].value=http://proxy:3128",
        "podSecurityContext.fsGroup=65532",
        "networkPolicy.enabled=true",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
    ],
];

#[test]
fn lint_strict_is_clean_for_every_variant() {
    for sets in VARIANTS {
        let mut cmd = helm();
        cmd.args(["lint", "--strict", &chart()]);
        for s in *sets {
            cmd.args(["--set", s]);
        }
        let out = run_ok(&mut cmd).unwrap_or_else(|e| panic!("{sets:?}: {e}"));
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "{sets:?}: {out}"
        );
    }
}

#[test]
fn values_schema_rejects_what_the_operator_cannot_do() {
    let two = render_err(&["watchNamespaces={a,b}"]);
    assert!(two.contains("watchNamespaces"), "{two}");
    let format = render_err(&["logFormat=xml"]);
    assert!(format.contains("logFormat"), "{format}");
    let level = render_err(&["logLevel="]);
    assert!(level.contains("logLevel"), "{level}");
    let shadow = render_err(&["extraEnv[0].name=RUST_LOG", "extraEnv[0].value=trace"]);
    assert!(
        shadow.contains("extraEnv"),
        "RUST_LOG comes from logLevel: {shadow}"
    );
    let age = render_err(&["metrics.prometheusRule.keyAgeSeconds=soon"]);
    assert!(age.contains("keyAgeSeconds"), "{age}");
    let window = render_err(&["metrics.prometheusRule.mirror503For=5 minutes"]);
    assert!(window.contains("mirror503For"), "{window}");
    let test_typo = render_err(&["tests.enable=false"]);
    assert!(test_typo.contains("enable"), "{test_typo}");
    let typo = render_err(&["rbca.create=false"]);
    assert!(typo.contains("rbca"), "unknown keys are rejected: {typo}");
    let resync = render_err(&["secretResync=sixty"]);
    assert!(resync.contains("secretResync"), "{resync}");
    let ns = render_err(&["watchNamespaces={Team_A}"]);
    assert!(ns.contains("watchNamespaces"), "{ns}");
    let two_writers = render_err(&["leaderElection.enabled=false"]);
    assert!(
        two_writers.contains("leaderElection/enabled"),
        "two replicas need leader election: {two_writers}"
    );
    let unit = render_err(&["leaderElection.leaseDuration=15"]);
    assert!(unit.contains("leaseDuration"), "{unit}");
    let order = render_err(&["leaderElection.renewDeadline=20s"]);
    assert!(
        order.contains("retryPeriod (2s) < renewDeadline (20s) < leaseDuration (15s)"),
        "{order}"
    );
}

#[test]
fn the_operator_pod_is_hardened_and_everything_is_in_the_release_namespace() {
    let docs = documents(&render("wca-system", &[]));
    let deployment = find(&docs, "Deployment");
    let spec = &deployment["spec"];
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(sc["capabilities"].get("add").is_none());
    for kind in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][kind][r].is_string(), "resources.{kind}.{r}");
        }
    }
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(c["ports"][0]["name"], "admin");
    assert_eq!(c["ports"][0]["containerPort"], 8081);
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--admin-addr=0.0.0.0:8081"), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "cluster-wide by default: {args:?}"
    );
    assert_eq!(c["env"][0]["name"], "POD_NAME");

    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        let labels = &doc["metadata"]["labels"];
        for l in ["name", "instance", "version", "managed-by"] {
            assert!(
                labels[format!("app.kubernetes.io/{l}")].is_string(),
                "{kind} lacks app.kubernetes.io/{l}"
            );
        }
        let cluster_scoped = matches!(
            kind,
            "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
        );
        let ns = &doc["metadata"]["namespace"];
        if cluster_scoped {
            assert!(ns.is_null(), "{kind}");
        } else {
            assert_eq!(ns, "wca-system", "{kind} is in the release namespace");
        }
    }
    let binding = find(&docs, "ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["namespace"], "wca-system");
}

#[test]
fn two_replicas_elect_a_leader_roll_over_and_survive_a_drain() {
    let docs = documents(&render("wca-system", &[]));
    let spec = &find(&docs, "Deployment")["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &spec["template"]["spec"];
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for arg in [
        "--leader-elect",
        "--leader-election-namespace=wca-system",
        "--leader-election-lease-name=wca-workos-convex-auth",
        "--leader-election-lease-duration=15s",
        "--leader-election-renew-deadline=10s",
        "--leader-election-retry-period=2s",
    ] {
        assert!(args.contains(&arg), "{arg} in {args:?}");
    }
    let selector = &spec["selector"]["matchLabels"];
    let spread =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        spread["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        &spread["podAffinityTerm"]["labelSelector"]["matchLabels"],
        selector
    );
    assert!(
        pod["affinity"].get("podAntiAffinity").is_some()
            && pod["affinity"]["podAntiAffinity"]
                .get("requiredDuringSchedulingIgnoredDuringExecution")
                .is_none(),
        "soft: a one-node cluster still runs both replicas"
    );
    let pdb = find(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);

    // The Lease Role: in the release namespace, every verb but create by name.
    let lease_role = docs
        .iter()
        .find(|d| {
            d["kind"] == "Role" && d["metadata"]["name"] == "wca-workos-convex-auth-leader-election"
        })
        .expect("a Role for the Lease");
    assert_eq!(lease_role["metadata"]["namespace"], "wca-system");
    let rules = lease_role["rules"].as_array().unwrap();
    for rule in rules {
        assert_eq!(rule["resources"], serde_json::json!(["leases"]));
        if rule["verbs"] != serde_json::json!(["create"]) {
            assert_eq!(
                rule["resourceNames"],
                serde_json::json!(["wca-workos-convex-auth"])
            );
        }
    }

    // A custom affinity replaces the default one.
    let custom = documents(&render("wca-system", &["affinity.nodeAffinity.x=1"]));
    let affinity = &find(&custom, "Deployment")["spec"]["template"]["spec"]["affinity"];
    assert!(affinity.get("podAntiAffinity").is_none(), "{affinity}");
}

#[test]
fn one_replica_without_leader_election_never_runs_two_operators() {
    let docs = documents(&render(
        "wca-system",
        &["replicas=1", "leaderElection.enabled=false"],
    ));
    let spec = &find(&docs, "Deployment")["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate");
    assert!(spec["template"]["spec"].get("affinity").is_none());
    let args = spec["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--leader-elect"), "{args}");
    for kind in ["PodDisruptionBudget", "Role", "RoleBinding"] {
        assert!(
            !docs.iter().any(|d| d["kind"] == kind),
            "no {kind} for one replica cluster-wide"
        );
    }
}

#[test]
fn watching_one_namespace_uses_a_role_there_and_nothing_cluster_wide() {
    let docs = documents(&render("wca-system", &["watchNamespaces={team-a}"]));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding"),
        "no cluster-wide RBAC in namespaced mode"
    );
    let role = find(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"], "team-a");
    let binding = find(&docs, "RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "team-a");
    assert_eq!(binding["subjects"][0]["namespace"], "wca-system");
    let args = &find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from("--namespace=team-a")),
        "{args}"
    );
}

#[test]
fn secret_access_follows_the_values() {
    let secret_rules = |sets: &[&str]| -> Vec<Value> {
        let docs = documents(&render("wca-system", sets));
        let role = docs
            .iter()
            .find(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
            .unwrap();
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&"secrets".into())
            })
            .cloned()
            .collect()
    };
    let default = secret_rules(&[]);
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["verbs"], serde_json::json!(["get"]));
    assert!(default[0].get("resourceNames").is_none());
    let named = secret_rules(&["rbac.secretNames={workos,other}"]);
    assert_eq!(
        named[0]["resourceNames"],
        serde_json::json!(["workos", "other"])
    );
    assert!(secret_rules(&["rbac.secrets=false"]).is_empty());
}

#[test]
fn the_chart_crd_is_the_generated_crd_verbatim_with_the_keep_policy() {
    let generated =
        std::fs::read_to_string(repo_root().join("crds/workos-convex.io_workosconvexauths.yaml"))
            .unwrap();
    let mut cmd = helm();
    cmd.args([
        "template",
        "wca",
        &chart(),
        "--show-only",
        "templates/crd.yaml",
    ]);
    let rendered = run_ok(&mut cmd).unwrap();
    // Only metadata lines are added to the generated file: the schema is byte for byte the same.
    let added = |l: &&str| {
        l.starts_with("---")
            || l.starts_with("# Source:")
            || *l == "  labels:"
            || *l == "  annotations:"
            || l.starts_with("    app.kubernetes.io/")
            || l.starts_with("    helm.sh/")
    };
    let body: Vec<&str> = rendered.lines().filter(|l| !added(l)).collect();
    assert_eq!(body, generated.lines().collect::<Vec<_>>());

    let docs = documents(&rendered);
    let crd = find(&docs, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], CRD);
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        crd["metadata"]["labels"]["app.kubernetes.io/instance"],
        "wca"
    );
    let dropped = documents(&render("wca-system", &["crds.keep=false"]));
    assert!(
        find(&dropped, "CustomResourceDefinition")["metadata"]["annotations"].is_null(),
        "crds.keep=false lets helm uninstall delete the CRD"
    );
    let none = documents(&render("wca-system", &["crds.install=false"]));
    assert!(!none.iter().any(|d| d["kind"] == "CustomResourceDefinition"));
}

/// kubernetes-validate (PyPI) against the Kubernetes 1.35 schemas, offline.
fn kubernetes_validate(file: &std::path::Path) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "kubernetes_validate", "-k", "1.35.0", "--strict"])
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn rendered_manifests_validate_offline_against_the_kubernetes_schemas() {
    let probe = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "the offline schema check needs PyPI kubernetes-validate: pip install kubernetes-validate==1.37.0"
    );
    // The validator itself rejects a broken manifest (so a pass below means something).
    let broken = temp_file(
        "broken.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: one, selector: {}, template: {}}\n",
    );
    assert!(!kubernetes_validate(&broken).status.success());

    for (i, sets) in VARIANTS.iter().enumerate() {
        let rendered = render("wca-system", sets);
        let file = temp_file(&format!("variant-{i}.yaml"), &rendered);
        let out = kubernetes_validate(&file);
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{sets:?}:\n{report}");
        let docs = documents(&rendered);
        for d in &docs {
            let kind = d["kind"].as_str().unwrap();
            if matches!(kind, "ServiceMonitor" | "PodMonitor" | "PrometheusRule") {
                // prometheus-operator's CRDs: no upstream schema; validated by helm lint, and
                // the rules by promtool (operator/tests/it/monitoring.rs).
                continue;
            }
            let name = d["metadata"]["name"].as_str().unwrap();
            let needle = format!("passed for resource {}/{name}", kind.to_lowercase());
            assert!(
                report.contains(&needle),
                "{sets:?}: {kind} {name} not validated:\n{report}"
            );
        }
    }
}

/// `kubectl apply --dry-run=server --validate=strict` of the rendered chart.
#[test]
fn rendered_manifests_pass_a_server_side_dry_run() {
    let _serial = PLANE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cp = plane();
    let _ = cp.kubectl_ok(&["create", "namespace", "dry-run-system"]);
    let _ = cp.kubectl_ok(&["create", "namespace", "team-a"]);
    // What kube-controller-manager would create (this control plane has none): the helm test
    // Pod runs as the namespace's default ServiceAccount, which admission looks up.
    let _ = cp.kubectl_ok(&[
        "create",
        "serviceaccount",
        "default",
        "-n",
        "dry-run-system",
    ]);
    for sets in &VARIANTS[..2] {
        let rendered = render("dry-run-system", sets);
        let mut child = cp
            .kubectl()
            .args([
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "--server-side",
                "--force-conflicts",
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rendered.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{sets:?}: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = documents(&rendered);
        assert_eq!(
            stdout.matches("(server dry run)").count(),
            docs.len(),
            "{sets:?}: every object accepted: {stdout}"
        );
    }
    // And the dry run does reject what the schemas forbid.
    let good = render("dry-run-system", &[]);
    assert!(good.contains("replicas: 2"), "the control: {good}");
    let bad = good.replace("replicas: 2", "replicas: one");
    let mut child = cp
        .kubectl()
        .args(["apply", "--dry-run=server", "--validate=strict", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bad.as_bytes())
        .unwrap();
    assert!(!child.wait().unwrap().success());
}

fn helm_ok(args: &[&str]) -> String {
    run_ok(plane().helm().args(args)).unwrap()
}

fn get_json(args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&plane().kubectl_ok(&full).unwrap()).unwrap()
}

fn exists(args: &[&str]) -> bool {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    plane()
        .kubectl()
        .args(&full)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn install_upgrade_and_uninstall() {
    let _serial = PLANE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cp = plane();
    let chart = chart();
    // Install from a copy of the chart whose CRD is an "older" one (a different description),
    // then upgrade to the real chart: the CRD must follow (a crds/ folder would not).
    let old_chart = std::env::temp_dir().join(format!("wca-old-chart-{}", std::process::id()));
    run_ok(Command::new("cp").args(["-r", &chart]).arg(&old_chart)).unwrap();
    let old_crd = old_chart.join("files/crd.yaml");
    let text = std::fs::read_to_string(&old_crd).unwrap();
    assert!(text.contains("Wires WorkOS AuthKit"));
    std::fs::write(&old_crd, text.replace("Wires WorkOS AuthKit", "OLD SCHEMA")).unwrap();
    let out = helm_ok(&[
        "install",
        "wca",
        old_chart.to_str().unwrap(),
        "-n",
        "wca-system",
        "--create-namespace",
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kind: WorkOSConvexAuth"),
        "NOTES show a first resource: {out}"
    );

    let deployment = get_json(&["deployment", "wca-workos-convex-auth", "-n", "wca-system"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "wca-workos-convex-auth"
    );
    assert!(exists(&[
        "serviceaccount",
        "wca-workos-convex-auth",
        "-n",
        "wca-system"
    ]));
    assert!(exists(&[
        "service",
        "wca-workos-convex-auth-metrics",
        "-n",
        "wca-system"
    ]));
    assert!(exists(&["clusterrole", "wca-workos-convex-auth"]));
    assert!(exists(&["clusterrolebinding", "wca-workos-convex-auth"]));
    cp.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd",
        CRD,
    ])
    .unwrap();

    std::fs::remove_dir_all(&old_chart).unwrap();
    let description = |crd: &Value| {
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(description(&get_json(&["crd", CRD])).starts_with("OLD SCHEMA"));

    cp.kubectl_ok(&["create", "namespace", "team-b"]).unwrap();
    let values = temp_file(
        "upgrade-values.yaml",
        "watchNamespaces: [team-b]\nlogFormat: text\nnetworkPolicy:\n  enabled: true\nrbac:\n  secretNames: [workos]\n",
    );
    let out = helm_ok(&[
        "upgrade",
        "wca",
        &chart,
        "-n",
        "wca-system",
        "-f",
        values.to_str().unwrap(),
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(out.contains("It watches namespace team-b only"), "{out}");
    assert!(
        description(&get_json(&["crd", CRD])).starts_with("Wires WorkOS AuthKit"),
        "helm upgrade upgrades the CRD"
    );
    let args =
        get_json(&["deployment", "wca-workos-convex-auth", "-n", "wca-system"])["spec"]["template"]
            ["spec"]["containers"][0]["args"]
            .clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from("--namespace=team-b"))
            && args
                .as_array()
                .unwrap()
                .contains(&Value::from("--log-format=text")),
        "{args}"
    );
    assert!(
        !exists(&["clusterrole", "wca-workos-convex-auth"]),
        "cluster-wide RBAC removed"
    );
    assert!(!exists(&["clusterrolebinding", "wca-workos-convex-auth"]));
    let role = get_json(&["role", "wca-workos-convex-auth", "-n", "team-b"]);
    assert!(
        role["rules"]
            .to_string()
            .contains("\"resourceNames\":[\"workos\"]"),
        "{role}"
    );
    assert!(exists(&[
        "rolebinding",
        "wca-workos-convex-auth",
        "-n",
        "team-b"
    ]));
    assert!(exists(&[
        "networkpolicy",
        "wca-workos-convex-auth",
        "-n",
        "wca-system"
    ]));

    let out = helm_ok(&["uninstall", "wca", "-n", "wca-system"]);
    assert!(out.contains("uninstalled"), "{out}");
    assert!(!exists(&[
        "deployment",
        "wca-workos-convex-auth",
        "-n",
        "wca-system"
    ]));
    assert!(!exists(&[
        "serviceaccount",
        "wca-workos-convex-auth",
        "-n",
        "wca-system"
    ]));
    assert!(!exists(&["role", "wca-workos-convex-auth", "-n", "team-b"]));
    assert!(!exists(&[
        "rolebinding",
        "wca-workos-convex-auth",
        "-n",
        "team-b"
    ]));
    assert!(
        exists(&["crd", CRD]),
        "helm.sh/resource-policy=keep: the CRD and every resource stay"
    );
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn monitoring_is_off_by_default_and_renders_as_configured() {
    let docs = documents(&render("wca-system", &[]));
    for kind in ["PrometheusRule", "PodMonitor", "ServiceMonitor"] {
        assert!(!docs.iter().any(|d| d["kind"] == kind), "{kind} is opt-in");
    }
    assert!(
        !docs.iter().any(|d| d["kind"] == "ConfigMap"
            && d["metadata"]["name"] == "wca-workos-convex-auth-dashboard"),
        "the dashboard is opt-in"
    );

    let docs = documents(&render("wca-system", VARIANTS[4]));
    let rule = find(&docs, "PrometheusRule");
    assert_eq!(rule["metadata"]["namespace"], "wca-system");
    let alerts: Vec<&str> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    assert!(
        rule.to_string().contains("> 7200"),
        "the threshold reaches the rule"
    );

    let monitor = find(&docs, "PodMonitor");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "jwks-mirror"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        serde_json::json!(["team-a"]),
        "the mirrors live where the operator watches"
    );
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["port"], "http");
    let everywhere = documents(&render(
        "wca-system",
        &["metrics.mirrorPodMonitor.enabled=true"],
    ));
    assert_eq!(
        find(&everywhere, "PodMonitor")["spec"]["namespaceSelector"]["any"],
        true
    );

    let dashboard = docs
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap" && d["metadata"]["name"] == "wca-workos-convex-auth-dashboard"
        })
        .expect("the dashboard ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        dashboard["metadata"]["annotations"]["grafana_folder"],
        "Operators"
    );
    let json: Value = serde_json::from_str(
        dashboard["data"]["workos-convex-auth.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["uid"], "workos-convex-auth");
    let relabelled = documents(&render(
        "wca-system",
        &[
            "metrics.dashboard.enabled=true",
            "metrics.dashboard.labels.grafana_dashboard=null",
            "metrics.dashboard.labels.dashboards=wca",
        ],
    ));
    let labels = &relabelled
        .iter()
        .find(|d| d["metadata"]["name"] == "wca-workos-convex-auth-dashboard")
        .unwrap()["metadata"]["labels"];
    assert_eq!(labels["dashboards"], "wca");
    assert!(labels.get("grafana_dashboard").is_none(), "{labels}");
}

#[test]
fn pod_knobs_log_level_extra_env_and_security_contexts() {
    let docs = documents(&render("wca-system", &[]));
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let env = env_of(&pod["containers"][0]);
    assert!(env.contains(&("RUST_LOG".into(), "info".into())), "{env:?}");

    let docs = documents(&render("wca-system", VARIANTS[4]));
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let env = env_of(&pod["containers"][0]);
    assert!(
        env.contains(&("RUST_LOG".into(), "info,workos_convex_auth=debug".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("HTTPS_PROXY".into(), "http://proxy:3128".into())),
        "{env:?}"
    );
    // A set key joins the hardened defaults; it does not replace them.
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);

    let relaxed = documents(&render(
        "wca-system",
        &["securityContext.readOnlyRootFilesystem=false"],
    ));
    let sc = &find(&relaxed, "Deployment")["spec"]["template"]["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
}

#[test]
fn the_helm_test_pod_probes_readyz_through_the_metrics_service() {
    let docs = documents(&render("wca-system", &[]));
    let pod = docs
        .iter()
        .find(|d| d["kind"] == "Pod")
        .expect("the helm test Pod");
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(pod["metadata"]["namespace"], "wca-system");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/component"], "helm-test",
        "not selected by the operator's Service or PodDisruptionBudget"
    );
    let c = &pod["spec"]["containers"][0];
    let deployment = find(&docs, "Deployment");
    let operator = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], operator["image"], "the operator's own image");
    assert_eq!(
        c["args"],
        serde_json::json!([
            "probe",
            "--url=http://wca-workos-convex-auth-metrics.wca-system.svc:8081/readyz",
            "--timeout=10s"
        ])
    );
    assert_eq!(c["securityContext"], operator["securityContext"]);
    assert_eq!(
        pod["spec"]["securityContext"],
        deployment["spec"]["template"]["spec"]["securityContext"]
    );

    // Behind a NetworkPolicy with a peer list, the test Pod is one of the peers.
    let docs = documents(&render("wca-system", VARIANTS[4]));
    let from = &find(&docs, "NetworkPolicy")["spec"]["ingress"][0]["from"];
    assert_eq!(
        from[1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"], "helm-test",
        "{from}"
    );

    for sets in [
        &["metrics.service.enabled=false"][..],
        &["tests.enabled=false"][..],
    ] {
        let docs = documents(&render("wca-system", sets));
        assert!(!docs.iter().any(|d| d["kind"] == "Pod"), "{sets:?}");
    }
}

#[test]
fn artifact_hub_annotations_parse_and_agree_with_the_chart() {
    let chart_yaml: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo_root().join("charts/workos-convex-auth/Chart.yaml")).unwrap(),
    )
    .unwrap();
    let annotations = &chart_yaml["annotations"];
    let list = |key: &str| -> Vec<Value> {
        let text = annotations[key]
            .as_str()
            .unwrap_or_else(|| panic!("annotation {key}"));
        serde_saphyr::from_str::<Vec<Value>>(text).unwrap_or_else(|e| panic!("{key}: {e}"))
    };
    let changes = list("artifacthub.io/changes");
    assert!(!changes.is_empty());
    for change in &changes {
        let kind = change["kind"].as_str().unwrap();
        assert!(
            [
                "added",
                "changed",
                "deprecated",
                "removed",
                "fixed",
                "security"
            ]
            .contains(&kind),
            "{change}"
        );
        assert!(
            change["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
    let app_version = chart_yaml["appVersion"].as_str().unwrap();
    let images = list("artifacthub.io/images");
    assert_eq!(
        images[0]["image"],
        format!("ghcr.io/workos-convex-auth/workos-convex-auth:{app_version}")
    );
    let crds = list("artifacthub.io/crds");
    assert_eq!(crds[0]["name"], CRD);
    let crd: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(repo_root().join("crds/workos-convex.io_workosconvexauths.yaml"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(crds[0]["kind"], crd["spec"]["names"]["kind"]);
    assert_eq!(crds[0]["version"], crd["spec"]["versions"][0]["name"]);
    assert_eq!(
        list("artifacthub.io/crdsExamples")[0]["kind"],
        "WorkOSConvexAuth"
    );
    for link in list("artifacthub.io/links") {
        assert!(
            link["url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://"))
        );
    }
    assert_eq!(annotations["artifacthub.io/license"], "Apache-2.0");
}
