//! The binary as the kubectl plugin `kubectl wca`: run through a symlink named `kubectl-wca`
//! (as krew installs it), it answers with the same commands and says `kubectl wca` in help and
//! usage; `status` against the real apiserver, directly and through real kubectl with the
//! symlink on PATH; the krew manifest template.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;
use serde_json::json;
use wca_test_harness::{ControlPlane, repo_root};
use workos_convex_auth::api::WorkOSConvexAuth;

use super::support::binary::BIN;
use super::support::fixtures::spec;
use super::support::scenario::Ns;

/// A directory holding `kubectl-wca`, a symlink to the built binary.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wca-kubectl-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("kubectl-wca");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(BIN, &link).unwrap();
        dir
    })
}

fn plugin(args: &[&str]) -> Output {
    Command::new(plugin_dir().join("kubectl-wca"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap()
}

fn binary(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The stdout of a run that must exit 0.
fn stdout_ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_plugin_name_dispatches_to_the_same_commands() {
    let help = plugin(&["--help"]);
    let stdout = text(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Usage: kubectl wca <COMMAND>"), "{stdout}");
    for command in ["check-token", "render", "status"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from\n{stdout}"
        );
    }
    assert!(!stdout.contains("workos-convex-auth <COMMAND>"), "{stdout}");
    // Under its own name nothing changes.
    let own = text(&binary(&["--help"]).stdout);
    assert!(own.contains("Usage: workos-convex-auth <COMMAND>"), "{own}");

    let sub = text(&plugin(&["status", "--help"]).stdout);
    assert!(sub.contains("Usage: kubectl wca status [OPTIONS]"), "{sub}");
    let sub = text(&plugin(&["check-token", "--help"]).stdout);
    assert!(sub.contains("Usage: kubectl wca check-token"), "{sub}");

    // A usage error names the plugin too, and fails as clap does (exit 2).
    let wrong = plugin(&["nope"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("Usage: kubectl wca <COMMAND>"),
        "{}",
        text(&wrong.stderr)
    );

    let version = text(&plugin(&["--version"]).stdout);
    assert_eq!(
        version,
        format!("kubectl wca {}\n", env!("CARGO_PKG_VERSION"))
    );

    // The same command, byte for byte.
    let via_plugin = plugin(&["render", "-f", "examples/basic.yaml"]);
    let direct = binary(&["render", "-f", "examples/basic.yaml"]);
    assert_eq!(
        via_plugin.status.code(),
        Some(0),
        "{}",
        text(&via_plugin.stderr)
    );
    assert!(text(&direct.stdout).contains("kind: ConfigMap"));
    assert_eq!(text(&via_plugin.stdout), text(&direct.stdout));
}

fn condition(t: &str, status: &str, reason: &str) -> serde_json::Value {
    json!({"type": t, "status": status, "reason": reason, "message": "m",
        "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// A namespace of its own holding a WorkOSConvexAuth of each name (no controller runs: the tests
/// write status themselves).
async fn namespace_with(
    cp: &ControlPlane,
    test: &str,
    names: &[&str],
) -> (Ns, Api<WorkOSConvexAuth>) {
    let t = Ns::fresh(cp, test, Duration::from_secs(30)).await;
    for name in names {
        t.create(name, spec("client_01JEXAMPLE0000000000000000"))
            .await;
    }
    let wcas = t.api::<WorkOSConvexAuth>();
    (t, wcas)
}

/// `status` lists what the status subresource holds: written here with a status patch (no
/// controller runs), then read by the binary with the test kubeconfig.
#[tokio::test]
async fn status_shows_conditions_and_jwks_url() {
    let cp = ControlPlane::shared();
    let (t, wcas) = namespace_with(cp, "kubectl plugin status", &["beta", "alpha"]).await;
    let (client, ns) = (t.client.clone(), t.ns.clone());
    let url = format!(
        "http://alpha-jwks.{ns}.svc.cluster.local:8080/sso/jwks/client_01JEXAMPLE0000000000000000"
    );
    wcas.patch_status(
        "alpha",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {
            "jwksUrl": url,
            "conditions": [
                condition("Ready", "False", "AuthConfigNotPushed"),
                condition("ConfigReady", "True", "Generated"),
                condition("ProxyAvailable", "True", "Available"),
                condition("PublicJwksUrl", "False", "ClusterInternalUrl"),
                condition("ConvexSynced", "False", "AuthConfigNotPushed"),
            ],
        }})),
    )
    .await
    .unwrap();
    let kubeconfig = cp.kubeconfig().to_str().unwrap();

    let expected = format!(
        "\
NAME    READY                       CONFIGREADY   PROXYAVAILABLE   PUBLICJWKSURL              CONVEXSYNCED                JWKS URL
alpha   False:AuthConfigNotPushed   True          True             False:ClusterInternalUrl   False:AuthConfigNotPushed   {url}
beta    -                           -             -                -                          -                           -
"
    );
    assert_eq!(
        stdout_ok(binary(&["status", "-n", &ns, "--kubeconfig", kubeconfig])),
        expected
    );
    let out = plugin(&["status", "-n", &ns, "--kubeconfig", kubeconfig]);
    assert_eq!(text(&out.stdout), expected);

    // Across namespaces (the default): other tests' resources share the apiserver, so only
    // this namespace's rows are checked, column by column; their conditions may add columns
    // (a type this one has not, such as RouteAccepted) before the JWKS URL.
    let out = plugin(&["status", "--kubeconfig", kubeconfig]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let known_and_url = |cells: Vec<&str>, url_cells: usize| -> Vec<String> {
        let (head, tail) = (
            &cells[..7.min(cells.len())],
            &cells[cells.len().saturating_sub(url_cells)..],
        );
        head.iter().chain(tail).map(|c| c.to_string()).collect()
    };
    assert_eq!(
        stdout
            .lines()
            .next()
            .map(|l| known_and_url(l.split_whitespace().collect(), 2)),
        Some(
            [
                "NAMESPACE",
                "NAME",
                "READY",
                "CONFIGREADY",
                "PROXYAVAILABLE",
                "PUBLICJWKSURL",
                "CONVEXSYNCED",
                "JWKS",
                "URL"
            ]
            .map(String::from)
            .to_vec()
        ),
        "{stdout}"
    );
    let ours: Vec<Vec<String>> = stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{ns} ")))
        .map(|l| known_and_url(l.split_whitespace().collect(), 1))
        .collect();
    assert_eq!(
        ours,
        [
            [
                ns.as_str(),
                "alpha",
                "False:AuthConfigNotPushed",
                "True",
                "True",
                "False:ClusterInternalUrl",
                "False:AuthConfigNotPushed",
                url.as_str(),
            ]
            .map(String::from)
            .to_vec(),
            [ns.as_str(), "beta", "-", "-", "-", "-", "-", "-"]
                .map(String::from)
                .to_vec(),
        ]
    );

    // Through real kubectl: it finds `kubectl-wca` on PATH and runs it with the kubeconfig in
    // the environment (kubectl refuses its own flags before a plugin's name).
    let kubectl = cp.kubectl().get_program().to_owned();
    let path = std::env::join_paths(std::iter::once(plugin_dir().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    assert_eq!(
        stdout_ok(
            Command::new(&kubectl)
                .args(["wca", "status", "-n", &ns])
                .env("PATH", &path)
                .env("KUBECONFIG", cp.kubeconfig())
                .output()
                .unwrap()
        ),
        expected
    );
    let out = Command::new(&kubectl)
        .args(["wca", "--help"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("Usage: kubectl wca <COMMAND>"));

    // An empty namespace: nothing on stdout, kubectl's kind of note on stderr, success.
    let empty = cp.namespace(&client, "kubectl plugin empty").await.unwrap();
    let out = binary(&["status", "-n", &empty, "--kubeconfig", kubeconfig]);
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (
            Some(0),
            String::new(),
            format!("No WorkOSConvexAuth resources found in namespace {empty}.\n")
        )
    );
    // No cluster: the message says what to change, and the exit code is not 0.
    let out = binary(&["status", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot reach the cluster"),
        "{}",
        text(&out.stderr)
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KrewPlugin {
    api_version: String,
    kind: String,
    metadata: KrewMetadata,
    spec: KrewSpec,
}

#[derive(Debug, Deserialize)]
struct KrewMetadata {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KrewSpec {
    version: String,
    homepage: String,
    short_description: String,
    description: String,
    platforms: Vec<KrewPlatform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KrewPlatform {
    selector: serde_json::Value,
    uri: String,
    sha256: String,
    files: Vec<KrewFile>,
    bin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KrewFile {
    from: String,
    to: String,
}

/// The template parses as a krew Plugin (only krew's fields), is named `wca` (so `kubectl wca`),
/// and every platform installs the one binary as `kubectl-wca`, the name it answers to.
#[test]
fn the_krew_manifest_names_kubectl_wca() {
    let text = std::fs::read_to_string(repo_root().join("plugins/krew/wca.yaml")).unwrap();
    let manifest: KrewPlugin = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(
        (manifest.api_version.as_str(), manifest.kind.as_str()),
        ("krew.googlecontainertools.github.com/v1alpha2", "Plugin")
    );
    assert_eq!(manifest.metadata.name, "wca");
    assert_eq!(manifest.spec.version, "v{{VERSION}}");
    assert!(manifest.spec.homepage.starts_with("https://"));
    assert!(!manifest.spec.short_description.is_empty() && !manifest.spec.description.is_empty());
    assert!(!manifest.spec.platforms.is_empty());
    for p in &manifest.spec.platforms {
        assert_eq!(p.bin, "kubectl-wca");
        assert_eq!(p.files.len(), 1, "{p:?}");
        assert_eq!(
            (p.files[0].from.as_str(), p.files[0].to.as_str()),
            ("workos-convex-auth", "kubectl-wca")
        );
        assert!(p.uri.starts_with("{{RELEASE_URL}}/"), "{}", p.uri);
        assert!(p.sha256.starts_with("{{SHA256_"), "{}", p.sha256);
        assert!(p.selector["matchLabels"]["os"].is_string(), "{p:?}");
    }
}

/// Issue 24: `kubectl wca config NAME` prints the generated auth.config.ts as the ConfigMap
/// holds it (ready to redirect into convex/auth.config.ts), in the context's namespace unless
/// `-n`; `--format json`; a resource not generated yet says how to find out why. `status NAME
/// -o json` gives that resource's status; `--context` picks the kubeconfig's context.
#[tokio::test]
async fn config_prints_the_generated_file_and_status_takes_kubectls_flags() {
    let cp = ControlPlane::shared();
    let (t, wcas) = namespace_with(cp, "kubectl plugin config", &["acme", "pending"]).await;
    let ns = t.ns.clone();
    // What the operator would have written: a ConfigMap the status names.
    let generated = "export default { providers: [] } satisfies AuthConfig;\n";
    let data = json!({"auth.config.ts": generated, "auth.config.json": "{\"providers\":[]}"});
    t.create_config_map("acme-auth", data).await;
    wcas.patch_status(
        "acme",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"configMapName": "acme-auth",
            "conditions": [condition("Ready", "True", "Reconciled")]}})),
    )
    .await
    .unwrap();
    let kubeconfig = cp.kubeconfig().to_str().unwrap();

    assert_eq!(
        stdout_ok(plugin(&[
            "config",
            "acme",
            "-n",
            &ns,
            "--kubeconfig",
            kubeconfig
        ])),
        generated
    );
    let out = plugin(&[
        "config",
        "acme",
        "-n",
        &ns,
        "--format",
        "json",
        "--kubeconfig",
        kubeconfig,
    ]);
    assert_eq!(text(&out.stdout), "{\"providers\":[]}");

    // The context's namespace when -n is not given, and --context to pick that context.
    let with_namespace = cp.kubeconfig_copy(&format!("plugin-{ns}")).unwrap();
    cp.add_context(&with_namespace, "tenant", "wca-local", Some(&ns))
        .unwrap();
    assert_eq!(
        stdout_ok(plugin(&[
            "config",
            "acme",
            "--context",
            "tenant",
            "--kubeconfig",
            with_namespace.to_str().unwrap(),
        ])),
        generated
    );
    let out = plugin(&[
        "config",
        "acme",
        "--context",
        "nope",
        "--kubeconfig",
        with_namespace.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));

    // Not generated yet: the message names the ConfigMap and the command that says why.
    let out = plugin(&["config", "pending", "-n", &ns, "--kubeconfig", kubeconfig]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "ConfigMap {ns}/pending-convex-auth has no auth.config.ts"
        )) && stderr.contains(&format!("kubectl wca status pending -n {ns}")),
        "{stderr}"
    );

    // status NAME -o json|yaml: that resource's status only.
    let status_as = |format: &str| {
        plugin(&[
            "status",
            "acme",
            "-n",
            &ns,
            "-o",
            format,
            "--kubeconfig",
            kubeconfig,
        ])
    };
    let out = status_as("json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["items"][0]["name"], "acme");
    assert_eq!(listed["items"][0]["status"]["configMapName"], "acme-auth");
    let out = status_as("yaml");
    assert!(
        text(&out.stdout).contains("configMapName: acme-auth"),
        "{}",
        text(&out.stdout)
    );
    let out = plugin(&["status", "acme", "-n", &ns, "--kubeconfig", kubeconfig]);
    let table = text(&out.stdout);
    assert!(
        table.starts_with("NAME ") && table.lines().count() == 2,
        "{table}"
    );
}
