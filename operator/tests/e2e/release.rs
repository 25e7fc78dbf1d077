//! A release as a user receives it: `image/release.sh` run against a real OCI registry on
//! loopback (Debian's `docker-registry`, distribution 2.8, with TLS and basic auth), signing with
//! a cosign key pair made here. The node tests then install the chart from that registry
//! ([`published`]); these tests check what was pushed and written.
//!
//! cosign looks for Sigstore's public trust root on every start; nothing may leave the machine,
//! so it runs behind a closed proxy on loopback (`HTTPS_PROXY=http://127.0.0.1:9`, the registry
//! in `NO_PROXY`): that lookup fails at once, and a key-based sign or verify needs none of it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use wca_test_harness::registry::Registry;
use wca_test_harness::{repo_root, run_ok};

/// What one run of the release script pushed, and where it wrote its files.
pub struct Published {
    pub registry: Registry,
    /// The artifacts directory (`--out`).
    pub dist: PathBuf,
    /// `image/release.sh`'s standard output.
    pub stdout: String,
    /// The chart's appVersion: the image tag and the chart version.
    pub version: String,
    /// The image index's digest, as pushed.
    pub digest: String,
    /// The cosign key pair's directory (cosign.key, cosign.pub).
    keys: PathBuf,
    /// The system's roots and the registry's CA (`SSL_CERT_FILE`), written once.
    pub ca_bundle: PathBuf,
}

/// The registry, started once per test binary, with one release pushed to it.
/// Held while a test runs `image/release.sh` or inspects the working tree after it: the script
/// writes SBOMs beside the manifests for a moment (cargo-cyclonedx), so a second run in another
/// test would show up as files "left behind" by the first.
fn release_tree() -> std::sync::MutexGuard<'static, ()> {
    static TREE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TREE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn published() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| {
        let registry = Registry::start().expect("start the OCI registry");
        let work = std::env::temp_dir().join(format!("wca-release-{}", std::process::id()));
        let keys = work.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let ca_bundle = registry.ca_bundle().unwrap();
        // Written once: the tests read it side by side.
        let config = work.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.json"), registry.docker_config_json()).unwrap();
        let mut p = Published {
            dist: work.join("dist"),
            stdout: String::new(),
            version: chart_app_version(),
            digest: String::new(),
            keys,
            ca_bundle,
            registry,
        };
        run_ok(
            p.tool("cosign")
                .args(["generate-key-pair"])
                .current_dir(&p.keys),
        )
        .expect("cosign generate-key-pair");
        p.stdout = {
            let _tree = release_tree();
            run_ok(&mut p.release(&p.dist)).expect("image/release.sh")
        };
        p.digest = p
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("pushed image "))
            .and_then(|l| l.split_once('@'))
            .map(|(_, digest)| digest.to_string())
            .unwrap_or_else(|| panic!("no `pushed image` line: {}", p.stdout));
        p
    })
}

impl Published {
    /// `127.0.0.1:PORT/workos-convex-auth`: the image's repository in the registry.
    pub fn repository(&self) -> String {
        format!("{}/workos-convex-auth", self.registry.host())
    }

    /// `oci://127.0.0.1:PORT/charts/workos-convex-auth`.
    pub fn chart(&self) -> String {
        format!("oci://{}/charts/workos-convex-auth", self.registry.host())
    }

    /// The release script against the registry, with its credentials and CA, writing to `out`.
    fn release(&self, out: &Path) -> Command {
        let mut release = Command::new("bash");
        release
            .arg(repo_root().join("image/release.sh"))
            .arg("--out")
            .arg(out)
            .args(["--registry", &self.registry.host(), "--sign-key"])
            .arg(self.keys.join("cosign.key"));
        self.environment(&mut release);
        release
            .env("REGISTRY_USERNAME", &self.registry.username)
            .env("REGISTRY_PASSWORD", &self.registry.password);
        release
    }

    /// TLS roots with the registry's CA, the registry's credentials in a docker config of their
    /// own (skopeo, helm and cosign read it), no password on the cosign key, and the closed
    /// proxy (module doc).
    fn environment(&self, command: &mut Command) {
        let config = self.keys.with_file_name("docker-config");
        // helm: the one of the local cluster's binaries (tests/control-plane/install.sh).
        let helm_dir = wca_test_harness::bin_dir().expect("the local cluster's binaries");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(helm_dir).chain(std::env::split_paths(&path)))
                .unwrap();
        command
            .env("PATH", path)
            .env("SSL_CERT_FILE", &self.ca_bundle)
            .env("DOCKER_CONFIG", &config)
            .env("REGISTRY_AUTH_FILE", config.join("config.json"))
            .env("COSIGN_PASSWORD", "")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost");
    }

    /// A tool from `image/tools.sh`, in the release's environment.
    fn tool(&self, name: &str) -> Command {
        let path = run_ok(
            Command::new("bash")
                .arg(repo_root().join("image/tools.sh"))
                .arg(name),
        )
        .unwrap_or_else(|e| panic!("image/tools.sh {name}: {e}"));
        let mut command = Command::new(path.trim());
        self.environment(&mut command);
        command
    }

    fn skopeo(&self, args: &[&str]) -> Output {
        let mut skopeo = Command::new("skopeo");
        self.environment(&mut skopeo);
        skopeo.args(args).output().unwrap()
    }

    fn skopeo_ok(&self, args: &[&str]) -> String {
        let out = self.skopeo(args);
        assert!(
            out.status.success(),
            "skopeo {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn cosign_verify(&self, image: &str) -> Output {
        self.tool("cosign")
            .args(["verify", "--insecure-ignore-tlog=true", "--key"])
            .arg(self.keys.join("cosign.pub"))
            .arg(image)
            .output()
            .unwrap()
    }
}

fn chart_app_version() -> String {
    let chart =
        std::fs::read_to_string(repo_root().join("charts/workos-convex-auth/Chart.yaml")).unwrap();
    chart
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("Chart.yaml appVersion")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn files(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            names.extend(
                files(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        } else {
            names.insert(name);
        }
    }
    names
}

/// The artifacts of a release, their checksums, and what the registry holds: a multi-platform
/// image index whose image runs as 65532 with the binary as entrypoint and the OCI labels, and the
/// chart at the same version.
#[test]
fn the_release_writes_every_artifact_and_pushes_the_image_and_the_chart() {
    let p = published();
    let v = &p.version;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let expected: BTreeSet<String> = [
        format!("workos-convex-auth-{v}.oci.tar"),
        format!("platforms/workos-convex-auth-{v}-linux-{arch}.oci.tar"),
        format!("workos-convex-auth-linux-{arch}.tar.gz"),
        format!("workos-convex-auth-{v}-linux-{arch}.cdx.json"),
        format!("workos-convex-auth-{v}.tgz"),
        "workos-convex.io_workosconvexauths.yaml".to_string(),
        "SHA256SUMS".to_string(),
    ]
    .into();
    assert_eq!(files(&p.dist), expected);
    // SHA256SUMS covers every other file, and each sum is right.
    let sums = std::fs::read_to_string(p.dist.join("SHA256SUMS")).unwrap();
    let summed: BTreeSet<String> = sums
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, f)| f.to_string()))
        .collect();
    assert_eq!(summed.len() + 1, expected.len(), "{sums}");
    run_ok(
        Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&p.dist),
    )
    .expect("every checksum matches");

    // Nothing left behind in the working tree (cargo-cyclonedx writes beside every manifest),
    // checked while no other test runs the release script.
    let _tree = release_tree();
    let status = run_ok(
        Command::new("git")
            .args(["status", "--porcelain", "--ignored"])
            .current_dir(repo_root()),
    )
    .unwrap();
    assert!(!status.contains("-sbom.json"), "{status}");

    // The kubectl plugin archive: the one binary krew installs as kubectl-wca.
    let listing = run_ok(
        Command::new("tar").arg("-tzf").arg(
            p.dist
                .join(format!("workos-convex-auth-linux-{arch}.tar.gz")),
        ),
    )
    .unwrap();
    assert_eq!(listing.trim(), "workos-convex-auth");

    // What the registry serves: an index over the platforms built (this machine's here).
    let image = format!("docker://{}:{v}", p.repository());
    let raw = json(&p.skopeo_ok(&["inspect", "--raw", &image]));
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]).replace('"', "")
        })
        .collect();
    assert_eq!(platforms, [format!("linux/{arch}")]);
    let config = json(&p.skopeo_ok(&["inspect", "--config", &image]));
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/workos-convex-auth"]));
    let labels = &c["Labels"];
    let revision = run_ok(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(repo_root()),
    )
    .unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], v.as_str());
    assert_eq!(labels["org.opencontainers.image.revision"], revision.trim());
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://github.com/workos-convex-auth/workos-convex-auth"
    );

    // The chart, from the registry, at the version pushed; its appVersion is the image's tag.
    let mut helm = Command::new(wca_test_harness::bin_dir().unwrap().join("helm"));
    p.environment(&mut helm);
    let shown = run_ok(helm.args([
        "show",
        "chart",
        &p.chart(),
        "--version",
        v,
        "--username",
        &p.registry.username,
        "--password",
        &p.registry.password,
    ]))
    .unwrap();
    assert!(shown.contains(&format!("appVersion: {v}")), "{shown}");
    assert!(shown.contains("kubeVersion: '>=1.30.0-0'"), "{shown}");

    // The registry takes nothing anonymously: the pushes above were the release's user's.
    let anonymous = p.skopeo(&[
        "copy",
        "--quiet",
        "--dest-no-creds",
        &format!(
            "oci-archive:{}",
            p.dist
                .join(format!("workos-convex-auth-{v}.oci.tar"))
                .display()
        ),
        &format!("docker://{}:anonymous", p.repository()),
    ]);
    assert!(
        !anonymous.status.success(),
        "an anonymous push must be refused"
    );
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert!(stderr.contains("authentication required"), "{stderr}");
    eprintln!("{}", p.stdout);
}

/// The SBOM names every crate linked into the binary, at its version: the normal dependencies
/// of the platform it was built for, as cargo resolves them.
#[test]
fn the_sbom_lists_every_crate_linked_into_the_binary() {
    let p = published();
    let arch = std::env::consts::ARCH;
    let docker_arch = if arch == "x86_64" { "amd64" } else { "arm64" };
    let sbom = json(
        &std::fs::read_to_string(p.dist.join(format!(
            "workos-convex-auth-{}-linux-{docker_arch}.cdx.json",
            p.version
        )))
        .unwrap(),
    );
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "workos-convex-auth");
    let listed: BTreeSet<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    let tree = run_ok(
        Command::new("cargo")
            .args([
                "tree",
                "--locked",
                "--offline",
                "-p",
                "workos-convex-auth",
                "-e",
                "normal",
            ])
            .args(["--prefix", "none", "--format", "{p}", "--target"])
            .arg(format!("{arch}-unknown-linux-gnu"))
            .current_dir(repo_root()),
    )
    .unwrap();
    let linked: BTreeSet<String> = tree
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            (name != "workos-convex-auth").then(|| format!("{name} {version}"))
        })
        .collect();
    assert!(
        linked.len() > 100,
        "cargo tree listed {} crates",
        linked.len()
    );
    let missing: Vec<&String> = linked.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "crates linked in but not in the SBOM: {missing:?}"
    );
}

/// cosign verifies the pushed image with the release's public key, and refuses an image with
/// another digest under the same repository (a re-tagged, unsigned build).
#[test]
fn the_pushed_image_verifies_with_the_key_and_an_unsigned_one_does_not() {
    let p = published();
    let signed = p.cosign_verify(&format!("{}:{}", p.repository(), p.version));
    assert!(
        signed.status.success(),
        "cosign verify: {}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let payload = String::from_utf8_lossy(&signed.stdout);
    assert!(
        payload.contains(&p.digest),
        "the signature names the digest pushed: {payload}"
    );

    // The same image with another label: another digest, never signed.
    let unsigned = p.dist.with_file_name("unsigned.oci.tar");
    let stage = p.dist.with_file_name("unsigned-stage");
    std::fs::create_dir_all(stage.join("out")).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(p.dist.join(format!(
                "workos-convex-auth-linux-{}.tar.gz",
                if std::env::consts::ARCH == "x86_64" {
                    "amd64"
                } else {
                    "arm64"
                }
            )))
            .arg("-C")
            .arg(stage.join("out")),
    )
    .unwrap();
    run_ok(
        Command::new("python3")
            .arg(repo_root().join("image/oci.py"))
            .arg("--dockerfile")
            .arg(repo_root().join("Dockerfile"))
            .arg(format!("--stage=build={}", stage.display()))
            .args([
                "--build-arg",
                "REVISION=not-a-release",
                "--tag",
                "unsigned:1",
                "--out",
            ])
            .arg(&unsigned),
    )
    .unwrap();
    let retagged = format!("{}:unsigned", p.repository());
    p.skopeo_ok(&[
        "copy",
        "--quiet",
        &format!("oci-archive:{}", unsigned.display()),
        &format!("docker://{retagged}"),
    ]);
    let refused = p.cosign_verify(&retagged);
    assert!(
        !refused.status.success(),
        "an unsigned image must not verify"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("no signatures found"), "{stderr}");
}

/// A second run of the release changes nothing: the same artifacts byte for byte, and the same
/// image and chart digests pushed again (a no-op for the registry).
#[test]
fn the_release_is_idempotent() {
    let p = published();
    // Its own directory: the other tests read the first run's files meanwhile.
    let again_dir = p.dist.with_file_name("dist-again");
    let stdout = {
        let _tree = release_tree();
        run_ok(&mut p.release(&again_dir)).expect("image/release.sh, again")
    };
    let pushed = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("pushed "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(pushed(&stdout), pushed(&p.stdout));
    assert_eq!(pushed(&stdout).len(), 2, "{stdout}");
    let sums = |dir: &Path| std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums(&again_dir), sums(&p.dist));
    // One signature still: cosign appends a new one to the signature image on every sign.
    let signatures = json(&p.skopeo_ok(&[
        "inspect",
        "--raw",
        &format!(
            "docker://{}:{}.sig",
            p.repository(),
            p.digest.replace(':', "-")
        ),
    ]));
    assert_eq!(
        signatures["layers"].as_array().map(Vec::len),
        Some(1),
        "{signatures}"
    );
}
