//! A real Kubernetes control plane for tests: etcd + kube-apiserver started by
//! `tests/control-plane/up.sh` on free loopback ports, as kubebuilder's envtest does.
//!
//! The script runs until its standard input closes, and this process holds the only write end:
//! when the test binary exits for any reason (success, panic, timeout, SIGKILL) the kernel
//! closes it and the script kills etcd and the apiserver and removes its temp dir.

pub mod fake_workos;
pub mod forward_proxy;
pub mod node;
pub mod registry;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The folder of the Gateway API's standard CRDs (`config/crd/standard` of the Go module
/// `sigs.k8s.io/gateway-api`), downloaded once through the Go module proxy into Go's module
/// cache (outside the repository) and read from there afterwards.
pub fn gateway_api_crds() -> anyhow::Result<PathBuf> {
    let versions = std::fs::read_to_string(repo_root().join("tests/control-plane/versions.env"))?;
    let version = versions
        .lines()
        .find_map(|l| l.strip_prefix("GATEWAY_API_VERSION="))
        .context("GATEWAY_API_VERSION in tests/control-plane/versions.env")?;
    let scratch = std::env::temp_dir().join("wca-gateway-api-download");
    std::fs::create_dir_all(&scratch)?;
    let out = Command::new("go")
        .args(["mod", "download", "-json"])
        .arg(format!("sigs.k8s.io/gateway-api@{version}"))
        // Outside any module: `go mod download` then only fills the module cache.
        .current_dir(&scratch)
        .output()
        .context("go must be installed (Go >= 1.25): the Gateway API CRDs come from its module")?;
    if !out.status.success() {
        bail!(
            "go mod download sigs.k8s.io/gateway-api@{version} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let dir = info["Dir"]
        .as_str()
        .context("go mod download -json names the module's Dir")?;
    Ok(Path::new(dir).join("config/crd/standard"))
}

/// The repository root: the nearest directory above the working directory (cargo runs tests in
/// their package's directory) that holds `tests/control-plane/install.sh`.
///
/// Not `env!("CARGO_MANIFEST_DIR")` alone: cargo keeps a compiled harness fresh when the same
/// sources sit in another clone, so a shared target directory would run one clone's tests
/// against another clone's scripts. The compile-time path is only the fallback.
pub fn repo_root() -> PathBuf {
    let marker = Path::new("tests/control-plane/install.sh");
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            cwd.ancestors()
                .find(|d| d.join(marker).is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .canonicalize()
        .expect("repository root exists")
}

/// A part of the control plane that a fault test kills and starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Etcd,
    ApiServer,
    /// The other kube-apiserver of [`ControlPlane::start_with_second_apiserver`].
    SecondApiServer,
}

impl Component {
    /// Its name in the start script's commands.
    fn name(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::ApiServer => "apiserver",
            Self::SecondApiServer => "apiserver-2",
        }
    }
}

/// A running control plane. Dropping it tears it down.
pub struct ControlPlane {
    supervisor: Mutex<Option<(Child, ChildStdin)>>,
    /// Commands sent to the start script (it acknowledges each in `supervisor.done`).
    commands: AtomicUsize,
    kubeconfig: PathBuf,
    bin_dir: PathBuf,
    /// Process ids of what the script started, for tests of the teardown itself.
    pub pids: Vec<u32>,
    /// Seconds from spawn to `/readyz` answering ok.
    pub startup: Duration,
    /// The other `KEY=value` lines the script printed before `KUBECONFIG=` (`DIR`, `NODE_IP`).
    facts: BTreeMap<String, String>,
}

impl ControlPlane {
    /// Starts a new control plane (builds the binaries first if they are not cached).
    pub fn start() -> anyhow::Result<Self> {
        let script = repo_root().join("tests/control-plane/up.sh");
        Self::launch(&script, &[], bin_dir()?)
    }

    /// A control plane with two kube-apiservers on one etcd, as with several control-plane
    /// nodes: a fault test kills one while clients of the other go on.
    pub fn start_with_second_apiserver() -> anyhow::Result<Self> {
        let script = repo_root().join("tests/control-plane/up.sh");
        Self::launch(&script, &["--second-apiserver".into()], bin_dir()?)
    }

    /// A control plane whose kube-apiserver is the oldest version the chart supports
    /// (`KUBE_OLDEST_VERSION`, linked as `kube-apiserver-oldest` by install.sh).
    pub fn start_oldest() -> anyhow::Result<Self> {
        let script = repo_root().join("tests/control-plane/up.sh");
        Self::launch(&script, &["--oldest".into()], bin_dir()?)
    }

    /// The admin kubeconfig of the second kube-apiserver, if started.
    pub fn second_kubeconfig(&self) -> Option<PathBuf> {
        self.fact("SECOND_KUBECONFIG").map(PathBuf::from)
    }

    /// SIGKILLs a component (returns once it is gone).
    pub fn kill(&self, component: Component) -> anyhow::Result<()> {
        self.command(&format!("kill {}", component.name()))
    }

    /// Starts a killed component again with its command line, ports and data, and waits until
    /// the API server answers `/readyz` again (which checks etcd too).
    pub fn start_again(&self, component: Component) -> anyhow::Result<()> {
        self.command(&format!("start {}", component.name()))?;
        let kubeconfig = match component {
            Component::SecondApiServer => {
                self.second_kubeconfig().context("no second API server")?
            }
            Component::Etcd | Component::ApiServer => self.kubeconfig.clone(),
        };
        let began = Instant::now();
        loop {
            let ready = Command::new(self.bin_dir.join("kubectl"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["get", "--raw", "/readyz", "--request-timeout=2s"])
                .output()
                .is_ok_and(|out| out.status.success());
            if ready {
                return Ok(());
            }
            if began.elapsed() > Duration::from_secs(120) {
                bail!("{} not ready 120 s after its restart", component.name());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends one command to the start script and waits for its acknowledgement.
    fn command(&self, line: &str) -> anyhow::Result<()> {
        use std::io::Write;
        {
            let mut supervisor = self
                .supervisor
                .lock()
                .map_err(|_| anyhow::anyhow!("supervisor lock poisoned"))?;
            let (_, stdin) = supervisor
                .as_mut()
                .context("the control plane was stopped")?;
            writeln!(stdin, "{line}")?;
            stdin.flush()?;
        }
        let sent = self.commands.fetch_add(1, Ordering::SeqCst) + 1;
        let done = self
            .kubeconfig
            .parent()
            .context("control plane dir")?
            .join("supervisor.done");
        let began = Instant::now();
        while std::fs::read_to_string(&done).map_or(0, |text| text.lines().count()) < sent {
            if began.elapsed() > Duration::from_secs(30) {
                bail!("the control plane did not carry out `{line}` within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Runs `script --until-stdin-closes ARGS…` and reads what it prints up to `KUBECONFIG=`.
    fn launch(script: &Path, args: &[OsString], bin_dir: PathBuf) -> anyhow::Result<Self> {
        let began = Instant::now();
        let mut child = Command::new("bash")
            .arg(script)
            .arg("--until-stdin-closes")
            .args(args)
            .env("WCA_CONTROL_PLANE_BIN", &bin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdin = child.stdin.take().context("supervisor stdin")?;
        let stdout = child.stdout.take().context("supervisor stdout")?;
        let (mut pids, mut kubeconfig, mut facts) = (Vec::new(), None, BTreeMap::new());
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "PIDS" => {
                    pids = value
                        .split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect();
                }
                "KUBECONFIG" => {
                    kubeconfig = Some(PathBuf::from(value));
                    break;
                }
                _ => {
                    facts.insert(key.to_string(), value.to_string());
                }
            }
        }
        let Some(kubeconfig) = kubeconfig else {
            let status = child.wait()?;
            bail!(
                "{} did not start ({status}); see the logs above",
                script.display()
            );
        };
        Ok(Self {
            supervisor: Mutex::new(Some((child, stdin))),
            commands: AtomicUsize::new(0),
            kubeconfig,
            bin_dir,
            pids,
            startup: began.elapsed(),
            facts,
        })
    }

    /// A `KEY=value` the start script printed (`DIR`, and for a node `NODE_IP`, `INGRESS_IP`).
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.facts.get(key).map(String::as_str)
    }

    /// The API server's audit log: every request made by a ServiceAccount (metadata only).
    pub fn audit_log(&self) -> PathBuf {
        self.kubeconfig
            .parent()
            .map(|dir| dir.join("audit.log"))
            .unwrap_or_default()
    }

    /// One control plane per test binary, with the CRDs from `crds/` installed and established.
    pub fn shared() -> &'static ControlPlane {
        static SHARED: OnceLock<ControlPlane> = OnceLock::new();
        SHARED.get_or_init(|| {
            let cp = ControlPlane::start().expect("start the local control plane");
            cp.install_crds().expect("install the CRDs");
            cp
        })
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client with admin rights. Make one per test: a client belongs to its tokio runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// `kubectl --kubeconfig <this plane>`.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// `helm --kubeconfig <this plane>`.
    pub fn helm(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("helm"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Runs kubectl and returns stdout, failing with its stderr.
    pub fn kubectl_ok(&self, args: &[&str]) -> anyhow::Result<String> {
        run_ok(self.kubectl().args(args))
    }

    /// A copy of this control plane's kubeconfig at `tag`'s own path, for a test that adds
    /// contexts to it (`kubectl_config`) without touching the shared file.
    pub fn kubeconfig_copy(&self, tag: &str) -> anyhow::Result<PathBuf> {
        let copy = std::env::temp_dir().join(format!("wca-{tag}.kubeconfig"));
        std::fs::copy(self.kubeconfig(), &copy)?;
        Ok(copy)
    }

    /// `kubectl --kubeconfig FILE config ARGS…` (set-context, set-cluster, …).
    pub fn kubectl_config(&self, file: &Path, args: &[&str]) -> anyhow::Result<String> {
        let file = file.to_str().context("kubeconfig path is UTF-8")?;
        let mut all = vec!["--kubeconfig", file, "config"];
        all.extend_from_slice(args);
        self.kubectl_ok(&all)
    }

    /// Adds context `name` to the kubeconfig `file`: cluster `cluster` (`wca-local` is this
    /// control plane's), this control plane's admin user, and `namespace` if given.
    pub fn add_context(
        &self,
        file: &Path,
        name: &str,
        cluster: &str,
        namespace: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut args = vec![
            "set-context",
            name,
            "--cluster",
            cluster,
            "--user",
            "wca-admin",
        ];
        if let Some(namespace) = namespace {
            args.extend(["--namespace", namespace]);
        }
        self.kubectl_config(file, &args).map(drop)
    }

    /// `kubectl apply --server-side -f -` of a YAML stream; returns kubectl's output.
    pub fn kubectl_apply(&self, yaml: &str) -> anyhow::Result<String> {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(["apply", "--server-side", "--force-conflicts", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(yaml.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "kubectl apply failed: {}\n{yaml}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `kubectl apply -f crds/` and waits until every CRD is established.
    pub fn install_crds(&self) -> anyhow::Result<()> {
        self.apply_crds(&repo_root().join("crds"))?;
        // Established is not yet published: `kubectl explain` and strict client-side validation
        // read the OpenAPI document, which the apiserver rebuilds a moment later.
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .kubectl_ok(&["explain", "workosconvexauth.spec"])
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("the CRD's OpenAPI schema was not published within 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Installs the Gateway API's standard CRDs (HTTPRoute, Gateway, …) of the version pinned in
    /// `tests/control-plane/versions.env`, from the `sigs.k8s.io/gateway-api` Go module.
    pub fn install_gateway_api(&self) -> anyhow::Result<()> {
        self.apply_crds(&gateway_api_crds()?)
    }

    /// Applies the CRDs of a file or folder and waits until each is established.
    fn apply_crds(&self, path: &Path) -> anyhow::Result<()> {
        let crds = path.to_str().context("crds path is UTF-8")?;
        self.kubectl_ok(&["apply", "--server-side", "-f", crds])?;
        self.kubectl_ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "-f",
            crds,
        ])?;
        Ok(())
    }

    /// A fresh namespace for one test (never shared between tests).
    pub async fn namespace(&self, client: &Client, test: &str) -> anyhow::Result<String> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let slug: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!(
            "{}-{}",
            slug.trim_matches('-'),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        Ok(name)
    }

    /// A kubeconfig that authenticates as ServiceAccount `default/<name>` (created, bound to
    /// `cluster-admin`), so the audit log tells this client's requests apart.
    pub fn service_account_kubeconfig(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.kubectl_ok(&["create", "serviceaccount", name, "-n", "default"])?;
        self.kubectl_ok(&[
            "create",
            "clusterrolebinding",
            name,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount=default:{name}"),
        ])?;
        let token =
            self.kubectl_ok(&["create", "token", name, "-n", "default", "--duration=2h"])?;
        let mut kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let user = kubeconfig
            .auth_infos
            .first_mut()
            .and_then(|a| a.auth_info.as_mut())
            .context("the admin kubeconfig has a user")?;
        user.token = Some(token.trim().to_string().into());
        let path = self.kubeconfig.with_file_name(format!("{name}.kubeconfig"));
        // JSON is YAML: kubectl and kube read it as a kubeconfig.
        std::fs::write(&path, serde_json::to_string(&kubeconfig)?)?;
        Ok(path)
    }

    /// Tears down now rather than at drop.
    pub fn stop(&self) {
        if let Some((mut child, stdin)) = self.supervisor.lock().ok().and_then(|mut s| s.take()) {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client for the cluster and user of a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Who holds Lease `name`, if anyone.
pub async fn lease_holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

/// Where the control-plane binaries are: `$WCA_CONTROL_PLANE_BIN`, else what install.sh prints.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WCA_CONTROL_PLANE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    install(&[])
}

/// Runs `tests/control-plane/install.sh ARGS` and returns the bin dir it prints last.
fn install(args: &[&str]) -> anyhow::Result<PathBuf> {
    let install = repo_root().join("tests/control-plane/install.sh");
    let out = Command::new("bash")
        .arg(&install)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("{} failed", install.display());
    }
    let stdout = String::from_utf8(out.stdout)?;
    Ok(PathBuf::from(
        stdout
            .lines()
            .last()
            .context("install.sh printed the bin dir")?
            .trim(),
    ))
}

/// Runs a command, returning stdout or an error with its stderr.
pub fn run_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
