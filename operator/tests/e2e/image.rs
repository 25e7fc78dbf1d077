//! The operator image, built without Docker from the Dockerfile's final stage (image/oci.py):
//! one statically linked binary owned by root and not writable, run as 65532, and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wca_test_harness::node::project_images;
use wca_test_harness::run_ok;

fn unpack(archive: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wca-image-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(&dir),
    )
    .unwrap();
    dir
}

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_operator_image_is_one_static_binary_run_as_a_non_root_user() {
    let images = project_images().expect("the images (image/build.sh)");
    let dir = unpack(&images[0]);
    let index = json(&dir.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "wca.local/workos-convex-auth:dev"
    );
    let manifest = json(&blob(&dir, entry["digest"].as_str().unwrap()));
    let config = json(&blob(&dir, manifest["config"]["digest"].as_str().unwrap()));
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/workos-convex-auth"]));
    assert_eq!(c["Cmd"], serde_json::json!(["run"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "8081/tcp": {}})
    );

    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let layer = blob(&dir, layers[0]["digest"].as_str().unwrap());
    let listing = run_ok(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-tvf")
            .arg(&layer),
    )
    .unwrap();
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), 1, "one file and nothing else: {listing}");
    assert!(
        entries[0].starts_with("-r-xr-xr-x 0/0 ") && entries[0].ends_with(" workos-convex-auth"),
        "owned by root, not writable by anyone: {listing}"
    );

    // Static: no program interpreter, no shared library; it runs with an empty environment.
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(&layer)
            .arg("-C")
            .arg(&dir),
    )
    .unwrap();
    let binary = dir.join("workos-convex-auth");
    let headers = run_ok(Command::new("readelf").args(["-l", "-d"]).arg(&binary)).unwrap();
    assert!(!headers.contains("INTERP"), "no ELF interpreter");
    assert!(!headers.contains("(NEEDED)"), "no shared library");
    let crd = run_ok(Command::new(&binary).env_clear().arg("crd")).unwrap();
    assert!(crd.contains("name: workosconvexauths.workos-convex.io"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `docker build .` has what it needs: the build context, computed with Docker's own
/// `.dockerignore` matcher (tests/tools/dockercontext, moby/patternmatcher), holds every COPY
/// source of the Dockerfile and every file of the repository the release build read (the
/// dep-info cargo wrote next to the binary image/build.sh built, which lists each source file,
/// `include_str!`s included), and nothing of node_modules.
#[test]
fn the_docker_build_context_holds_every_file_the_build_reads() {
    project_images().expect("the images (image/build.sh)");
    let root = wca_test_harness::repo_root();
    let tool = run_ok(
        Command::new("bash")
            .arg(root.join("image/tools.sh"))
            .arg("dockercontext"),
    )
    .unwrap();
    let listing = run_ok(Command::new(tool.trim()).arg(&root)).unwrap();
    let context: std::collections::BTreeSet<&str> = listing.lines().collect();
    let in_context = |path: &str| {
        context.contains(path) || context.iter().any(|f| f.starts_with(&format!("{path}/")))
    };

    // Every COPY source of the build stage (the final stage copies from the build stage only).
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let mut copies = 0;
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        for source in &words[..words.len() - 1] {
            copies += 1;
            assert!(
                in_context(source),
                "COPY {source}: not in the build context"
            );
        }
    }
    assert!(copies >= 4, "the build stage's COPY lines: {copies}");
    // The script the build stage runs.
    assert!(context.contains("image/build-binary.sh"));

    // Every repository file the release build of the binary read.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let dep_info = target.join(&triple).join("release/workos-convex-auth.d");
    let dep_info = std::fs::read_to_string(&dep_info)
        .unwrap_or_else(|e| panic!("{}: {e}", dep_info.display()));
    let root_prefix = format!("{}/", root.display());
    let read: Vec<&str> = dep_info
        .split_once(": ")
        .map(|(_, deps)| deps)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|path| path.strip_prefix(root_prefix.as_str()))
        .collect();
    assert!(read.len() > 50, "the dep-info lists the sources: {read:?}");
    let missing: Vec<&&str> = read.iter().filter(|p| !context.contains(**p)).collect();
    assert!(
        missing.is_empty(),
        "read by the build, not in the context: {missing:?}"
    );
    // The workspace members' manifests (cargo reads them all, even for one package).
    for manifest in [
        "Cargo.toml",
        "Cargo.lock",
        "operator/Cargo.toml",
        "tests/harness/Cargo.toml",
    ] {
        assert!(context.contains(manifest), "{manifest}");
    }
    assert!(
        !context.iter().any(|f| f.contains("node_modules/")),
        "node_modules is not sent to the builder"
    );
}
