//! The harness itself: isolation between tests and teardown when a test binary dies.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wca_test_harness::ControlPlane;

static NAMESPACES: Mutex<Option<HashSet<String>>> = Mutex::new(None);

async fn claim_namespace(test: &str) -> String {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, test).await.unwrap();
    let mut seen = NAMESPACES.lock().unwrap();
    assert!(
        seen.get_or_insert_with(HashSet::new).insert(ns.clone()),
        "namespace {ns} was handed out twice"
    );
    ns
}

#[tokio::test]
async fn first_test_gets_its_own_namespace() {
    let ns = claim_namespace("same name").await;
    assert!(ns.starts_with("same-name-"));
}

#[tokio::test]
async fn second_test_gets_another_namespace() {
    let ns = claim_namespace("same name").await;
    assert!(ns.starts_with("same-name-"));
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn nothing_remains_after_a_test_binary_crashes() {
    let out = Command::new(env!("CARGO_BIN_EXE_start-and-crash"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the helper panics on purpose");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let pids: Vec<u32> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PIDS="))
        .expect("helper printed its pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DIR="))
        .expect("helper printed its dir")
        .to_string();
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver");
    let deadline = Instant::now() + Duration::from_secs(30);
    while (pids.iter().any(|p| alive(*p)) || Path::new(&dir).exists()) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "etcd or kube-apiserver still running: {pids:?}"
    );
    assert!(!Path::new(&dir).exists(), "temp dir {dir} left behind");
}

#[test]
fn dropping_a_control_plane_stops_it() {
    let cp = ControlPlane::start().unwrap();
    let pids = cp.pids.clone();
    let dir = cp.kubeconfig().parent().unwrap().to_path_buf();
    eprintln!("control plane ready in {:?} (warm start)", cp.startup);
    drop(cp);
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "processes survive drop: {pids:?}"
    );
    assert!(!dir.exists());
}
