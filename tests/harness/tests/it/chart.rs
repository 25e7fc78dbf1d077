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
            if kind == "ServiceMonitor" {
                // prometheus-operator's CRD: no upstream schema; validated by helm lint only.
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
