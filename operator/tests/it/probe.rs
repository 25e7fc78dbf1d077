//! `workos-convex-auth probe`, the real binary (what the chart's `helm test` Pod runs), against
//! a real mirror's `/healthz` (200) and `/readyz` (503: its upstream is down), a server that
//! never answers (the timeout bounds it), a closed port and a refused URL scheme.

use std::process::Output;
use std::time::{Duration, Instant};

use super::support::binary::{Binary, text};
use super::support::mirror::Mirror;

const CLIENT: &str = "/sso/jwks/client_01JPROBE00000000000000000000";

/// Runs the binary off the runtime's thread: the mirror it probes is served by this runtime.
async fn probe(args: Vec<String>) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Binary::new("probe").args(&args).output();
        (out, started.elapsed())
    })
    .await
    .expect("the probe thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_zero_only_on_a_2xx_answer_within_the_timeout() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mirror = Mirror::start(
        &[(CLIENT, format!("http://{closed}{CLIENT}"))],
        Duration::from_secs(1),
        Duration::from_secs(3600),
    )
    .await;

    let (up, _) = probe(vec!["--url".into(), mirror.url("/healthz")]).await;
    assert!(up.status.success(), "healthz answers 200: {}", text(&up));
    assert!(text(&up).contains("answered 200 OK"), "{}", text(&up));

    let (not_ready, _) = probe(vec!["--url".into(), mirror.url("/readyz")]).await;
    assert_eq!(not_ready.status.code(), Some(1), "{}", text(&not_ready));
    assert!(
        text(&not_ready).contains("answered 503 Service Unavailable"),
        "{}",
        text(&not_ready)
    );

    // Accepts connections (the kernel's backlog) but never answers: bounded by --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (hung, took) = probe(vec![
        "--url".into(),
        format!("http://{}/readyz", silent.local_addr().unwrap()),
        "--timeout".into(),
        "1s".into(),
    ])
    .await;
    assert_eq!(hung.status.code(), Some(1), "{}", text(&hung));
    assert!(text(&hung).contains("no answer"), "{}", text(&hung));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "gave up after {took:?}"
    );
    drop(silent);

    let (refused, _) = probe(vec!["--url".into(), format!("http://{closed}/readyz")]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("failed"), "{}", text(&refused));

    let (scheme, _) = probe(vec!["--url".into(), "file:///etc/passwd".into()]).await;
    assert_eq!(
        scheme.status.code(),
        Some(2),
        "a usage error: {}",
        text(&scheme)
    );
}
