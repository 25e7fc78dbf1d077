//! The release workflow (`.github/workflows/release.yml`) cannot run here: it needs GitHub's
//! runners, ghcr.io and Sigstore's public services. It is checked instead: actionlint (with
//! shellcheck on every `run:` script) finds nothing, and it makes the release with the script the
//! tests run against a real registry (operator/tests/e2e/release.rs), natively per platform.

use std::process::Command;

use wca_test_harness::{repo_root, run_ok};

fn workflow() -> String {
    std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap()
}

#[test]
fn actionlint_finds_nothing_in_the_workflows() {
    let root = repo_root();
    let actionlint = run_ok(
        Command::new("bash")
            .arg(root.join("image/tools.sh"))
            .arg("actionlint"),
    )
    .expect("image/tools.sh actionlint");
    let out = Command::new(actionlint.trim())
        .args(["-verbose", "-color=false"])
        .current_dir(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "actionlint: {stdout}{stderr}");
    assert!(
        stderr.contains("release.yml"),
        "it checked the release workflow: {stderr}"
    );
    // Without shellcheck, actionlint skips the scripts silently (tests/run.sh installs it).
    assert!(
        !stderr.contains(r#"Rule "shellcheck" was disabled"#),
        "shellcheck is missing: {stderr}"
    );
}

#[test]
fn the_workflow_releases_with_the_tested_script_on_native_runners() {
    let text = workflow();
    let workflow: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let jobs = &workflow["jobs"];
    let runs = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .collect()
    };
    // Each platform on its own runner, building natively with the release script.
    let matrix = jobs["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap();
    let arches: Vec<&str> = matrix.iter().map(|m| m["arch"].as_str().unwrap()).collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    assert!(
        matrix
            .iter()
            .any(|m| m["runner"].as_str().unwrap().ends_with("-arm"))
    );
    assert!(
        runs("build")
            .iter()
            .any(|r| r.contains("bash image/release.sh --out"))
    );
    // One job joins them, pushes to ghcr.io and signs keyless, with the OIDC token it needs.
    let publish = runs("publish").join("\n");
    assert!(
        publish.contains("bash image/release.sh --from dist-amd64 --from dist-arm64"),
        "{publish}"
    );
    assert!(publish.contains("--registry \"ghcr.io/"), "{publish}");
    assert!(publish.contains("--sign-keyless"), "{publish}");
    assert_eq!(jobs["publish"]["permissions"]["id-token"], "write");
    assert_eq!(workflow["on"]["push"]["tags"][0], "v*.*.*");
    // Every file the release writes is attached, the SBOMs and checksums among them.
    for file in [
        "dist/*.tgz",
        "dist/*.tar.gz",
        "dist/*.cdx.json",
        "dist/*.yaml",
        "dist/SHA256SUMS",
    ] {
        assert!(publish.contains(file), "{file} attached: {publish}");
    }
}
