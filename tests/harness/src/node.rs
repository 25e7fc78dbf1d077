//! A real single-node cluster for the end-to-end tests: `tests/node/up.sh` starts etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, containerd,
//! CoreDNS and Traefik, and imports the project's images (built by `image/build.sh`).
//!
//! Like [`ControlPlane`], the script runs until its standard input closes, so the node is torn
//! down however the test binary ends. Only one node runs on a machine at a time (the script
//! takes a lock), so each test binary shares one node ([`Node::shared`]) and gives every test
//! its own namespace.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, bail};

use crate::{ControlPlane, install, repo_root};

/// The operator image `image/build.sh` builds (from the Dockerfile).
pub const OPERATOR_IMAGE: &str = "wca.local/workos-convex-auth:dev";

/// A running node. Dereferences to its [`ControlPlane`] (kubectl, helm, clients, namespaces).
pub struct Node {
    cluster: ControlPlane,
    ip: Ipv4Addr,
    dir: PathBuf,
}

impl Node {
    /// Starts a node with the given extra images (OCI archives) imported.
    pub fn start(images: &[PathBuf]) -> anyhow::Result<Self> {
        let bin_dir = node_bin_dir()?;
        let mut args = Vec::new();
        for image in images {
            args.push(OsString::from("--image"));
            args.push(image.clone().into_os_string());
        }
        let script = repo_root().join("tests/node/up.sh");
        let cluster = ControlPlane::launch(&script, &args, bin_dir)?;
        let ip = cluster
            .fact("NODE_IP")
            .context("up.sh printed NODE_IP")?
            .parse()?;
        let dir = PathBuf::from(cluster.fact("DIR").context("up.sh printed DIR")?);
        Ok(Self { cluster, ip, dir })
    }

    /// One node per test binary, with the project's images imported. Nothing of the project
    /// is installed: the tests install the Helm chart as a user would.
    pub fn shared() -> &'static Node {
        static SHARED: OnceLock<Node> = OnceLock::new();
        SHARED.get_or_init(|| {
            let images = project_images().expect("build the project's images (image/build.sh)");
            Node::start(&images).expect("start the local node")
        })
    }

    /// The node's address, which is also the ingress controller's (ports 80 and 443).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The node's work directory (logs of every component, the audit log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Deref for Node {
    type Target = ControlPlane;

    fn deref(&self) -> &ControlPlane {
        &self.cluster
    }
}

/// The bin dir with the node's binaries: `$WCA_CONTROL_PLANE_BIN` when it has them (tests/run.sh
/// installs with `--node`), else what `install.sh --node` prints.
fn node_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WCA_CONTROL_PLANE_BIN").map(PathBuf::from)
        && dir.join("kubelet").exists()
    {
        return Ok(dir);
    }
    install(&["--node"])
}

/// The operator and fake WorkOS images: `$WCA_IMAGES_DIR/*.tar` (tests/run.sh builds them
/// first), else `image/build.sh` builds them into its default directory (`<target dir>/images`).
pub fn project_images() -> anyhow::Result<Vec<PathBuf>> {
    let dir = match std::env::var_os("WCA_IMAGES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo_root().join("target"), PathBuf::from);
            let dir = target.join("images");
            let status = Command::new("bash")
                .arg(repo_root().join("image/build.sh"))
                .arg(&dir)
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("image/build.sh failed ({status})");
            }
            dir
        }
    };
    let images: Vec<PathBuf> = ["workos-convex-auth.tar", "fake-workos.tar"]
        .iter()
        .map(|name| dir.join(name))
        .collect();
    for image in &images {
        if !image.exists() {
            bail!("{} is missing: run bash image/build.sh", image.display());
        }
    }
    Ok(images)
}

impl Node {
    /// Makes the node's containerd trust `ca` for the registry at `host` (`127.0.0.1:PORT`):
    /// a `hosts.toml` in the directory its CRI plugin reads at every pull (config_path in
    /// tests/node/config/containerd.toml). Credentials come from the pods' pull secrets.
    pub fn trust_registry(&self, host: &str, ca: &Path) -> anyhow::Result<()> {
        let dir = self.dir.join("containerd/certs.d").join(host);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
                ca.display()
            ),
        )?;
        Ok(())
    }
}
