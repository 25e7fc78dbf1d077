//! Controller benchmark on the local control plane (run: `bash bench/controller/run.sh`).
//!
//! Starts etcd + kube-apiserver (tests/harness), runs the operator binary given in
//! `WCA_OPERATOR_BIN` as a ServiceAccount (so the audit log records each of its requests), and
//! measures: `apply → ConfigMap exists` latency; 500 resources across 50 namespaces to all
//! Ready; the operator's peak RSS; API requests per reconcile. Prints a Markdown table.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{audited, metric, peak_rss_mib, ready_count, resource, service_account};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::{JwksMode, WorkOSConvexAuth};

const NAMESPACES: usize = 50;
const PER_NAMESPACE: usize = 10;
const LATENCY_SAMPLES: usize = 40;

fn operator_requests(cp: &ControlPlane) -> usize {
    let (entries, _) = audited(&cp.audit_log(), 0);
    let user = service_account("bench-operator");
    entries.iter().filter(|e| e.user == user).count()
}

async fn reconciles(admin: &str) -> anyhow::Result<f64> {
    metric(admin, "wca_reconciles_total").await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin =
        std::env::var("WCA_OPERATOR_BIN").context("set WCA_OPERATOR_BIN to the operator binary")?;
    let cp = ControlPlane::start()?;
    cp.install_crds()?;
    let client = cp.client().await?;
    let kubeconfig = cp.service_account_kubeconfig("bench-operator")?;
    let admin = "127.0.0.1:18181";
    let mut operator: Child = Command::new(&bin)
        .args(["run", "--log-format", "text", "--admin-addr", admin])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let pid = operator.id();
    eventually(Duration::from_secs(30), "operator ready", || async {
        reqwest::get(format!("http://{admin}/readyz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await?;

    // 1. apply → ConfigMap exists, one resource at a time.
    let ns = cp.namespace(&client, "latency").await?;
    let api: Api<WorkOSConvexAuth> = Api::namespaced(client.clone(), &ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut samples = Vec::new();
    for i in 0..LATENCY_SAMPLES {
        let name = format!("lat-{i}");
        let started = Instant::now();
        api.create(&PostParams::default(), &resource(&name, JwksMode::Proxy))
            .await?;
        let cm = format!("{name}-convex-auth");
        loop {
            if cms.get_opt(&cm).await?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("ConfigMap {cm} did not appear");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];

    // 2. 500 resources across 50 namespaces (mode Direct: Ready needs no running pods).
    let requests_before = operator_requests(&cp);
    let reconciles_before = reconciles(admin).await?;
    let mut namespaces = Vec::new();
    for n in 0..NAMESPACES {
        namespaces.push(cp.namespace(&client, &format!("scale {n}")).await?);
    }
    let started = Instant::now();
    for ns in &namespaces {
        let api: Api<WorkOSConvexAuth> = Api::namespaced(client.clone(), ns);
        for i in 0..PER_NAMESPACE {
            api.create(
                &PostParams::default(),
                &resource(&format!("scale-{i}"), JwksMode::Direct),
            )
            .await?;
        }
    }
    let created = started.elapsed();
    let total = NAMESPACES * PER_NAMESPACE;
    loop {
        if ready_count(&client).await? >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("not all {total} resources Ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the audit log flush
    let requests = operator_requests(&cp) - requests_before;
    let reconciled = reconciles(admin).await? - reconciles_before;
    let rss = peak_rss_mib(pid);
    let _ = operator.kill();
    let _ = operator.wait();

    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| `kubectl apply` → ConfigMap exists, median of {LATENCY_SAMPLES} (p90) | **{:.0} ms** ({:.0} ms) | ≤ 300 ms |",
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3
    );
    println!(
        "| {total} resources in {NAMESPACES} namespaces, first create → all Ready | **{:.1} s** (creating them took {:.1} s) | ≤ 60 s |",
        all_ready.as_secs_f64(),
        created.as_secs_f64()
    );
    println!("| operator peak RSS (VmHWM) over the whole run | **{rss:.1} MiB** | ≤ 100 MiB |");
    println!(
        "| API requests per reconcile (audit log ÷ wca_reconciles_total) | **{:.1}** ({requests} requests, {reconciled} reconciles) | — |",
        requests as f64 / reconciled.max(1.0)
    );
    Ok(())
}
