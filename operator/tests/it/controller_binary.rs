//! The real `workos-convex-auth run` process: admin endpoints, and a clean exit on SIGTERM.

use super::support::binary::{Admin, Binary, LOOPBACK_UPSTREAM, sigterm, text};
use super::support::conditions::Want;
use super::support::fixtures::{SpecExt, from_secret, resource, spec};
use super::support::mirror::metric_value as metric;
use super::support::process::rss_kib;
use super::support::scenario::Ns;
use std::process::Command;
use std::time::{Duration, Instant};

use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::reconcile::reason::ConditionType::Ready;
use workos_convex_auth::reconcile::reason::Reason;

#[tokio::test]
async fn serves_admin_endpoints_and_stops_cleanly_on_sigterm() {
    let cp = ControlPlane::shared();
    let t = Ns::fresh(cp, "binary", Duration::from_secs(30)).await;
    let admin = Admin::free();
    let mut operator = Binary::operator(cp.kubeconfig(), &t.ns, &admin)
        .log_format("json")
        .piped()
        .spawn();

    let ready = eventually(Duration::from_secs(30), "/readyz 200", || async {
        (admin.status("/readyz").await? == 200).then_some(())
    })
    .await;
    assert!(ready.is_ok(), "/readyz never answered 200");
    let health = admin.get("/healthz").await.expect("/healthz answers");
    assert!(health.status().is_success());
    let metrics = admin.metrics().await.expect("/metrics answers");
    assert!(
        metrics.contains("# TYPE wca_reconcile_duration_seconds histogram"),
        "{metrics}"
    );

    assert!(sigterm(&operator), "kill -TERM the operator");
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
    let logs = text(&operator.wait_with_output().unwrap());
    assert!(exit.success(), "exit {exit}: {logs}");
    assert!(logs.contains("controller stopped"), "{logs}");
    assert!(
        logs.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('{')),
        "--log-format json logs JSON lines:\n{logs}"
    );
}

/// Create/delete churn of mode-Inline resources (each fetches and holds keys): the per-resource
/// maps empty once the resources are gone (the metrics say so), and a third churn of 300 leaves
/// the operator's RSS within 10 % of where the second one left it (the first two warm the
/// allocator and the watch caches).
#[tokio::test]
async fn churn_frees_per_resource_memory() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, ListParams, PostParams};
    use wca_test_harness::fake_workos::FakeWorkos;
    use workos_convex_auth::api::WorkOSConvexAuth;

    const RESOURCES: usize = 300;
    let upstream = FakeWorkos::start(
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/keys/jwks-rsa.json"
        ))
        .unwrap(),
    )
    .await;
    let cp = ControlPlane::shared();
    let t = Ns::fresh(cp, "churn", Duration::from_secs(180)).await;
    let admin = Admin::free();
    let mut operator = Binary::operator(cp.kubeconfig(), &t.ns, &admin)
        .log_format("text")
        .args(LOOPBACK_UPSTREAM)
        .env("RUST_LOG", "warn")
        .spawn();
    let gauges = || {
        let admin = admin.clone();
        async move {
            let text = admin.metrics().await?;
            Some((
                metric(&text, "wca_inline_key_cache_entries")?,
                metric(&text, "wca_backoff_entries")?,
            ))
        }
    };
    let resources = t.api::<WorkOSConvexAuth>();
    let config_maps = t.api::<ConfigMap>();
    let wait = Duration::from_secs(180);
    let churn = |round: usize| {
        let (resources, config_maps, gauges) = (resources.clone(), config_maps.clone(), gauges);
        let base = upstream.base_url();
        async move {
            for i in 0..RESOURCES {
                let spec = spec(&format!("client_0{i}")).inline(&base);
                let r = resource(&format!("r{round}-{i}"), spec);
                resources.create(&PostParams::default(), &r).await.unwrap();
            }
            eventually(wait, "every resource holding its keys", || async {
                let (inline, _) = gauges().await?;
                (inline == RESOURCES as f64).then_some(())
            })
            .await
            .unwrap();
            resources
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
                .unwrap();
            // Nothing owns the ConfigMaps' removal here (no garbage collector without a
            // controller-manager); delete them too so the watch caches shrink as on a cluster.
            config_maps
                .delete_collection(
                    &DeleteParams::default(),
                    &ListParams::default()
                        .labels("app.kubernetes.io/managed-by=workos-convex-auth"),
                )
                .await
                .unwrap();
            eventually(wait, "the per-resource maps emptied", || async {
                let (inline, backoff) = gauges().await?;
                (inline == 0.0 && backoff == 0.0).then_some(())
            })
            .await
            .unwrap();
        }
    };
    // Two rounds warm up what legitimately stays (the allocator's arenas of every worker
    // thread, the watch caches' capacity); a third must then not grow the process.
    churn(1).await;
    churn(2).await;
    let before = rss_kib(operator.id());
    churn(3).await;
    let after = rss_kib(operator.id());
    eprintln!("operator RSS: {before} KiB after the second churn, {after} KiB after the third");
    let _ = operator.kill();
    let _ = operator.wait();
    assert!(
        after * 10 <= before * 11,
        "RSS grew more than 10 %: {before} KiB → {after} KiB"
    );
    assert!(upstream.total_hits() >= 2 * RESOURCES);
}

/// A control plane that goes away: the watches fail, and `/readyz` says so (within the sweep
/// interval plus a margin) while `/healthz` stays up, so Kubernetes stops counting the pod as
/// ready without restarting it.
#[tokio::test]
async fn readyz_fails_while_the_watches_fail() {
    let cp = ControlPlane::start().unwrap();
    cp.install_crds().unwrap();
    let admin = Admin::free();
    let mut operator = Binary::run(cp.kubeconfig())
        .admin(&admin)
        .log_format("text")
        .env("RUST_LOG", "warn")
        .piped()
        .spawn();
    let readyz = || admin.status("/readyz");
    eventually(Duration::from_secs(30), "ready", || async {
        (readyz().await? == 200).then_some(())
    })
    .await
    .unwrap();

    // Killed, not stopped: a graceful apiserver shutdown waits up to a minute for open watches.
    for pid in &cp.pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let stopped = Instant::now();
    eventually(Duration::from_secs(60), "/readyz 503", || async {
        (readyz().await? == 503).then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "/readyz 503 {:.1} s after the control plane stopped",
        stopped.elapsed().as_secs_f64()
    );
    let health = admin.get("/healthz").await.expect("/healthz answers");
    assert!(health.status().is_success(), "alive, only not ready");
    let metrics = admin.metrics().await.expect("/metrics answers");
    assert!(
        metric(&metrics, "wca_watch_errors_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    let _ = operator.kill();
    let logs = text(&operator.wait_with_output().unwrap());
    assert!(logs.contains("watch failed; retrying"), "{logs}");
}

/// A Secret's value that is not a client id appears in no operator log line (the status and
/// Events are checked in controller.rs).
#[tokio::test]
async fn a_secret_value_never_reaches_the_operator_logs() {
    let leaked = "postgres://admin:S3cr3t@db";
    let cp = ControlPlane::shared();
    let tenant = Ns::fresh(cp, "secret-logs", Duration::from_secs(30)).await;
    tenant
        .create_secret("db", serde_json::json!({"url": leaked}))
        .await;
    // A file, not a pipe: at trace level a pipe nobody reads fills and blocks the operator.
    let log_path = std::env::temp_dir().join(format!("wca-secret-logs-{}.log", std::process::id()));
    let mut operator = Binary::operator(cp.kubeconfig(), &tenant.ns, &Admin::free())
        // Everything the operator logs, its dependencies included.
        .env("RUST_LOG", "trace")
        .log_to(&log_path)
        .spawn();
    tenant
        .create("acme", from_secret("db", "url").direct())
        .await;
    let invalid = Want::of(Ready).reason(Reason::InvalidSpec);
    let message = tenant.condition("acme", invalid).await;
    assert!(
        message.contains("key \"url\" of Secret \"db\""),
        "{message}"
    );
    // A few more reconciles' worth of logging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = sigterm(&operator);
    let _ = operator.wait();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(logs.contains("acme"), "the logs cover the reconcile");
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(leaked);
    assert!(
        !logs.contains("S3cr3t") && !logs.contains("postgres://") && !logs.contains(&encoded),
        "the Secret's value reached the logs"
    );
}
