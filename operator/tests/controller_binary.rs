//! The real `workos-convex-auth run` process: admin endpoints, and a clean exit on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wca_test_harness::ControlPlane;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "binary").await.unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut operator = Command::new(env!("CARGO_BIN_EXE_workos-convex-auth"))
        .args([
            "run",
            "--namespace",
            &ns,
            "--admin-addr",
            &admin,
            "--log-format",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(r) = http.get(format!("http://{admin}/readyz")).send().await
            && r.status().is_success()
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ready, "/readyz never answered 200");
    let health = http
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    let metrics = http
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# TYPE wca_reconcile_duration_seconds histogram"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &operator.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = operator.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the operator did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = operator.wait_with_output().unwrap();
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(exit.success(), "exit {exit}: {logs}");
    assert!(logs.contains("controller stopped"), "{logs}");
    assert!(
        logs.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('{')),
        "--log-format json logs JSON lines:\n{logs}"
    );
}
