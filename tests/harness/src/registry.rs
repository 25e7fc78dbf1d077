//! A real OCI registry on loopback for the release tests: Debian's `docker-registry` (the
//! CNCF distribution registry, 2.8), serving HTTPS with a certificate of a throw-away CA and
//! requiring basic auth (an htpasswd file, bcrypt, as distribution requires).
//!
//! `tests/run.sh` installs the package; the registry runs until the value is dropped or the
//! test process ends, its storage in a temporary directory removed with it.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::run_ok;

/// Where Debian's package installs the registry.
const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// A running registry. Dropping it stops the process and removes its directory.
pub struct Registry {
    process: Child,
    dir: PathBuf,
    address: SocketAddrV4,
    /// The one account the registry accepts.
    pub username: String,
    pub password: String,
}

impl Registry {
    /// Starts a registry on a free loopback port, with TLS and basic auth.
    pub fn start() -> anyhow::Result<Self> {
        if !Path::new(REGISTRY_BINARY).exists() {
            bail!(
                "{REGISTRY_BINARY} is missing: apt-get install docker-registry (tests/run.sh does)"
            );
        }
        let dir = std::env::temp_dir().join(format!(
            "wca-registry-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(dir.join("data"))?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        certificates(&dir)?;
        let (username, password) = ("wca-release".to_string(), random_password()?);
        let htpasswd = run_ok(Command::new("htpasswd").args(["-nbB", &username, &password]))
            .context("htpasswd (Debian's apache2-utils)")?;
        std::fs::write(dir.join("htpasswd"), htpasswd)?;
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\n\
                 log: {{level: info, accesslog: {{disabled: false}}}}\n\
                 storage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\n\
                 http:\n  addr: {address}\n  tls: {{certificate: {crt}, key: {key}}}\n\
                 auth:\n  htpasswd: {{realm: wca-registry, path: {htpasswd}}}\n",
                data = dir.join("data").display(),
                crt = dir.join("registry.crt").display(),
                key = dir.join("registry.key").display(),
                htpasswd = dir.join("htpasswd").display(),
            ),
        )?;
        // Like the control plane, the registry lives until this process's end however it ends:
        // a shell holds it and kills it (and removes its directory) once its stdin closes.
        let process = Command::new("bash")
            .args([
                "-c",
                r#""$0" serve "$1" >"$2/registry.log" 2>&1 & pid=$!; read -r _; kill "$pid"; wait "$pid"; rm -rf "$2""#,
                REGISTRY_BINARY,
            ])
            .arg(dir.join("config.yml"))
            .arg(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .context("starting docker-registry")?;
        let registry = Self {
            process,
            dir,
            address,
            username,
            password,
        };
        let began = Instant::now();
        while TcpStream::connect(address).is_err() {
            if began.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the registry did not listen on {address} within 30 s: {}",
                    registry.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`: the registry's host, as image references and `oci://` URLs name it.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// The CA certificate the registry's serving certificate chains to (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The system's roots and the registry's CA in one file, for `SSL_CERT_FILE` (Go programs:
    /// skopeo, helm, cosign, read it in place of the system roots). Written once: programs may
    /// be reading it while another test asks for it.
    pub fn ca_bundle(&self) -> anyhow::Result<PathBuf> {
        let bundle = self.dir.join("bundle.crt");
        if bundle.exists() {
            return Ok(bundle);
        }
        let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        let mut all = system;
        all.extend(std::fs::read(self.ca_file())?);
        std::fs::write(&bundle, all)?;
        Ok(bundle)
    }

    /// What the registry logged so far (every request, with the user who made it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// A docker `config.json` with this registry's credentials (what `kubectl create secret
    /// docker-registry` writes into a pull secret).
    pub fn docker_config_json(&self) -> String {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        serde_json::json!({"auths": {self.host(): {"auth": auth}}}).to_string()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.process.stdin.take()); // the shell stops the registry and removes the directory
        let _ = self.process.wait();
    }
}

/// A throw-away CA and a serving certificate for 127.0.0.1 (ECDSA P-256: quick to make).
fn certificates(dir: &Path) -> anyhow::Result<()> {
    let openssl = |args: &[&str]| run_ok(Command::new("openssl").current_dir(dir).args(args));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=wca-registry-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=wca-registry",
        "-keyout",
        "registry.key",
        "-out",
        "registry.csr",
    ])?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "registry.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "registry.crt",
    ])?;
    Ok(())
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut bytes)
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
