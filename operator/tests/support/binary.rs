//! The crate's binary as a child process: one builder for every test that starts it (`run`,
//! `proxy`, `probe`, `check-token`), its output piped, sent to a file or dropped, the child
//! killed on drop; and the operator's admin server as the tests reach it.

use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

use super::mirror::metric_value;
use super::process::{KillOnDrop, free_port};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_workos-convex-auth");

/// Plain-http upstreams on loopback (the fake WorkOS): allowed by these flags, never by default.
pub const LOOPBACK_HTTP_UPSTREAM: [&str; 3] = [
    "--allow-http-upstream",
    "--allowed-upstream-networks",
    "127.0.0.0/8",
];

/// [`LOOPBACK_HTTP_UPSTREAM`] and the host `127.0.0.1` allowed by name: the operator's policy
/// for a fake WorkOS on loopback.
pub const LOOPBACK_UPSTREAM: [&str; 5] = [
    "--allow-http-upstream",
    "--allowed-upstream-networks",
    "127.0.0.0/8",
    "--allowed-upstream-hosts",
    "127.0.0.1",
];

/// `workos-convex-auth SUBCOMMAND …`, built up flag by flag. No input, and output dropped,
/// unless [`Binary::stdin_piped`], [`Binary::piped`] or [`Binary::log_to`] says otherwise.
pub struct Binary {
    command: Command,
}

impl Binary {
    pub fn new(subcommand: &str) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg(subcommand)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self { command }
    }

    /// `run --kubeconfig KUBECONFIG`: the operator.
    pub fn run(kubeconfig: &Path) -> Self {
        Self::new("run").arg("--kubeconfig").arg(kubeconfig)
    }

    /// `run` watching namespace `ns`, its admin server at `admin`.
    pub fn operator(kubeconfig: &Path, ns: &str, admin: &Admin) -> Self {
        Self::run(kubeconfig).namespace(ns).admin(admin)
    }

    /// `proxy --listen ADDR --mirror PATH=UPSTREAM`: a JWKS mirror.
    pub fn mirror(listen: &str, mirror: &str) -> Self {
        Self::new("proxy")
            .args(["--listen", listen])
            .args(["--mirror", mirror])
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    /// `--namespace NS`: the operator watches that namespace only.
    pub fn namespace(self, ns: &str) -> Self {
        self.args(["--namespace", ns])
    }

    /// `--admin-addr ADDR`.
    pub fn admin(self, admin: &Admin) -> Self {
        self.args(["--admin-addr", &admin.0])
    }

    /// `--log-format FORMAT` (`text` or `json`).
    pub fn log_format(self, format: &str) -> Self {
        self.args(["--log-format", format])
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// stdout and stderr piped, for [`KillOnDrop::wait_with_output`].
    pub fn piped(mut self) -> Self {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        self
    }

    /// stdin piped too, for a test that writes to it.
    pub fn stdin_piped(mut self) -> Self {
        self.command.stdin(Stdio::piped());
        self
    }

    /// stderr piped, stdout dropped.
    pub fn stderr_piped(mut self) -> Self {
        self.command.stderr(Stdio::piped());
        self
    }

    /// stdout and stderr into the file `log` (created anew): a file, not a pipe, for a process
    /// that logs much and that nobody reads until the end (a full pipe blocks it).
    pub fn log_to(mut self, log: &Path) -> Self {
        let out =
            std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log file");
        self.command.stdout(out).stderr(err);
        self
    }

    /// Starts it; killed when the result is dropped.
    pub fn spawn(mut self) -> KillOnDrop {
        KillOnDrop::new(
            self.command
                .spawn()
                .unwrap_or_else(|e| panic!("start {:?}: {e}", self.command)),
        )
    }

    /// Runs it to its end, its output piped.
    pub fn output(self) -> Output {
        self.piped().spawn().wait_with_output().expect("its output")
    }
}

/// stdout then stderr, as text.
pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// `kill -TERM` to the child; whether `kill` succeeded.
pub fn sigterm(child: &KillOnDrop) -> bool {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .as_ref()
        .is_ok_and(ExitStatus::success)
}

/// The operator's admin server (`/healthz`, `/readyz`, `/metrics`) at `host:port`.
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl Admin {
    /// On a free loopback port.
    pub fn free() -> Self {
        Self(format!("127.0.0.1:{}", free_port()))
    }

    /// On port 0: the operator's own choice, never reached by the test.
    pub fn any() -> Self {
        Self("127.0.0.1:0".to_string())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0)
    }

    pub async fn get(&self, path: &str) -> Option<reqwest::Response> {
        reqwest::get(self.url(path)).await.ok()
    }

    /// The HTTP status `path` answers with, if it answers.
    pub async fn status(&self, path: &str) -> Option<u16> {
        Some(self.get(path).await?.status().as_u16())
    }

    pub async fn metrics(&self) -> Option<String> {
        self.get("/metrics").await?.text().await.ok()
    }

    /// Metric `sample` of `/metrics`, if it answers and has it.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        metric_value(&self.metrics().await?, sample)
    }
}
