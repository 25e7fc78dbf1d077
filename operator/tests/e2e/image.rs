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
