//! High-availability benchmark on the local control plane (run: `bash bench/ha/run.sh`).
//!
//! Two operator processes (the binary in `WCA_OPERATOR_BIN`) elect a leader with the chart's
//! defaults (lease 15 s, renew deadline 10 s, retry 2 s), each as its own ServiceAccount, so the
//! apiserver's audit log tells their requests apart. The control plane has a second apiserver on
//! the same etcd, for the outage. Measured, and printed as a Markdown table:
//! 1. 2000 resources in 200 namespaces (mode Direct: no kubelet runs here) → all Ready;
//! 2. the leader's peak RSS, and API requests per reconcile;
//! 3. steady state: requests and writes of both replicas over `WCA_BENCH_STEADY_SECONDS` (300);
//! 4. takeover after `kill -9` of the leader, 5 times (the killed one comes back as a follower),
//!    and the writes of each new leader's first pass over every resource;
//! 5. a 30 s outage of the operators' apiserver while resources are created through the other:
//!    time from its return until they are all Ready.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::{audited, metric, peak_rss_mib, ready_count, resource, service_account};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::json;
use wca_test_harness::{Component, ControlPlane, client_for, eventually, lease_holder};
use workos_convex_auth::api::{JwksMode, WorkOSConvexAuth};

const NAMESPACES: usize = 200;
const PER_NAMESPACE: usize = 10;
const TAKEOVERS: usize = 5;
const OUTAGE: Duration = Duration::from_secs(30);
const OUTAGE_RESOURCES: usize = 50;
const LEASE: &str = "wca-bench";
const READY_WITHIN: Duration = Duration::from_secs(600);
const OUTAGE_WAIT: Duration = Duration::from_secs(300);

struct Replica {
    identity: String,
    admin: String,
    process: Child,
}

impl Replica {
    fn start(bin: &str, identity: &str, kubeconfig: &Path, port: u16) -> anyhow::Result<Self> {
        let admin = format!("127.0.0.1:{port}");
        let process = Command::new(bin)
            .args(["run", "--log-format", "text", "--admin-addr", &admin])
            .args(["--leader-elect", "--leader-election-namespace", "default"])
            .args(["--leader-election-lease-name", LEASE])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("POD_NAME", identity)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self {
            identity: identity.to_string(),
            admin,
            process,
        })
    }

    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Replica {
    /// A failed run leaves no operator behind.
    fn drop(&mut self) {
        self.kill();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    lease_holder(leases, LEASE).await
}

/// Creates `count` resources in each of `namespaces`, 32 requests at a time (eight made the
/// creates alone take longer than the 60 s target on this machine).
async fn create_all(client: &Client, namespaces: &[String], count: usize) -> anyhow::Result<()> {
    let creates = namespaces.iter().flat_map(|ns| {
        (0..count).map(move |i| {
            let api: Api<WorkOSConvexAuth> = Api::namespaced(client.clone(), ns);
            async move {
                api.create(
                    &PostParams::default(),
                    &resource(&format!("r-{i}"), JwksMode::Direct),
                )
                .await
            }
        })
    });
    let mut results = futures::stream::iter(creates).buffer_unordered(32);
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

async fn create_namespaces(client: &Client, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &ns).await?;
        names.push(name);
    }
    Ok(names)
}

async fn wait_ready(client: &Client, total: usize) -> anyhow::Result<()> {
    let ready = ready_within(client, total, READY_WITHIN).await;
    if ready < total {
        bail!("{ready} of {total} resources Ready after {READY_WITHIN:?}");
    }
    Ok(())
}

/// Waits until `total` resources are Ready or `limit` passed; returns how many are.
async fn ready_within(client: &Client, total: usize, limit: Duration) -> usize {
    let started = Instant::now();
    loop {
        let ready = ready_count(client).await.unwrap_or(0);
        if ready >= total || started.elapsed() > limit {
            return ready;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin =
        std::env::var("WCA_OPERATOR_BIN").context("set WCA_OPERATOR_BIN to the operator binary")?;
    let steady = Duration::from_secs(
        std::env::var("WCA_BENCH_STEADY_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    );
    let cp = ControlPlane::start_with_second_apiserver()?;
    cp.install_crds()?;
    let client = cp.client().await?;
    let second = client_for(&cp.second_kubeconfig().context("second apiserver")?).await?;
    let audit_log: PathBuf = cp.audit_log();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");

    let identities = ["bench-a", "bench-b"];
    let kubeconfigs = identities
        .iter()
        .map(|id| cp.service_account_kubeconfig(id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut replicas = [
        Replica::start(&bin, identities[0], &kubeconfigs[0], 18281)?,
        Replica::start(&bin, identities[1], &kubeconfigs[1], 18282)?,
    ];
    let leader = eventually(Duration::from_secs(60), "a leader", || holder(&leases)).await?;
    // Each row as soon as it is measured: a failure later keeps what came before.
    println!("| measure | result | target |");
    println!("|---|---|---|");

    // 1-2. 2000 resources in 200 namespaces.
    let namespaces = create_namespaces(&client, "scale", NAMESPACES).await?;
    let (_, audit_from) = audited(&audit_log, 0);
    let leading = replicas
        .iter()
        .find(|r| r.identity == leader)
        .context("the leader")?;
    let reconciles_before = metric(&leading.admin, "wca_reconciles_total").await?;
    let started = Instant::now();
    create_all(&client, &namespaces, PER_NAMESPACE).await?;
    let created = started.elapsed();
    let total = NAMESPACES * PER_NAMESPACE;
    wait_ready(&client, total).await?;
    let all_ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await; // the audit log flushes
    let (entries, audit_to) = audited(&audit_log, audit_from);
    let leader_requests = entries
        .iter()
        .filter(|e| e.user == service_account(&leader))
        .count();
    let reconciled = metric(&leading.admin, "wca_reconciles_total").await? - reconciles_before;
    let leader_rss = peak_rss_mib(leading.process.id());
    let follower_rss = replicas
        .iter()
        .find(|r| r.identity != leader)
        .map_or(f64::NAN, |r| peak_rss_mib(r.process.id()));

    println!(
        "| {total} resources in {NAMESPACES} namespaces, first create → all Ready (two replicas) | **{:.1} s** (creating them took {:.1} s) | ≤ 60 s |",
        all_ready.as_secs_f64(),
        created.as_secs_f64()
    );
    println!(
        "| leader peak RSS (VmHWM); the follower's | **{leader_rss:.1} MiB**; {follower_rss:.1} MiB | ≤ 150 MiB |"
    );
    println!(
        "| API requests per reconcile (leader's audit log ÷ its wca_reconciles_total) | **{:.1}** ({leader_requests} requests, {reconciled} reconciles) | ≤ 3 |",
        leader_requests as f64 / reconciled.max(1.0)
    );

    // 3. Steady state.
    let steady_from = audit_to;
    tokio::time::sleep(steady).await;
    let (entries, _) = audited(&audit_log, steady_from);
    let ours = |e: &&common::Audited| identities.iter().any(|id| e.user == service_account(id));
    let steady_requests = entries
        .iter()
        .filter(ours)
        .filter(|e| e.resource != "leases")
        .count();
    let mut steady_writes = std::collections::BTreeMap::<String, usize>::new();
    for e in entries
        .iter()
        .filter(ours)
        .filter(|e| e.resource != "leases" && e.is_write())
    {
        *steady_writes
            .entry(format!("{} {}", e.verb, e.resource))
            .or_default() += 1;
    }
    let lease_requests = entries
        .iter()
        .filter(ours)
        .filter(|e| e.resource == "leases")
        .count();

    println!(
        "| steady state, {} s: writes of both replicas (Leases aside) | **{}** {steady_writes:?} ({steady_requests} requests; Lease requests {lease_requests}) | 0 |",
        steady.as_secs(),
        steady_writes.values().sum::<usize>()
    );

    // 4. Takeovers after kill -9.
    let mut takeovers = Vec::new();
    let mut resync_writes = Vec::new();
    let mut resync_times = Vec::new();
    let mut resync_kinds = std::collections::BTreeMap::new();
    for round in 0..TAKEOVERS {
        let leader = eventually(Duration::from_secs(60), "a leader", || holder(&leases)).await?;
        let index = replicas
            .iter()
            .position(|r| r.identity == leader)
            .context("the leader is one of ours")?;
        let (_, from) = audited(&audit_log, 0);
        // The follower's count before it leads: it starts reconciling within milliseconds of
        // taking the Lease, before this bench can look.
        let follower = replicas
            .iter()
            .find(|r| r.identity != leader)
            .context("the follower")?;
        let before = metric(&follower.admin, "wca_reconciles_total").await?;
        replicas[index].kill();
        let killed = Instant::now();
        let next = eventually(Duration::from_secs(60), "a new leader", || async {
            holder(&leases).await.filter(|h| *h != leader)
        })
        .await?;
        takeovers.push(killed.elapsed());
        // The new leader's first pass over every resource.
        let new_leader = replicas
            .iter()
            .find(|r| r.identity == next)
            .context("the new leader")?;
        let passed = Instant::now();
        eventually(READY_WITHIN, "the new leader's pass", || async {
            let now = metric(&new_leader.admin, "wca_reconciles_total")
                .await
                .ok()?;
            (now - before >= total as f64).then_some(())
        })
        .await?;
        resync_times.push(passed.elapsed());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (entries, _) = audited(&audit_log, from);
        let writes: Vec<&common::Audited> = entries
            .iter()
            .filter(|e| e.user == service_account(&next))
            .filter(|e| e.resource != "leases" && e.is_write())
            .collect();
        resync_writes.push(writes.len());
        resync_kinds = common::breakdown(writes.into_iter());
        let identity = replicas[index].identity.clone();
        replicas[index] =
            Replica::start(&bin, &identity, &kubeconfigs[index], 18290 + round as u16)?;
    }

    println!(
        "| takeover after `kill -9` of the leader, median of {TAKEOVERS} (each) | **{:.1} s** ({}) | ≤ lease 15 s + 5 s |",
        median(takeovers.clone()).as_secs_f64(),
        takeovers
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| a new leader's pass over all {total}: time, writes (each takeover) | median **{:.1} s**; writes {} | 0 writes |",
        median(resync_times).as_secs_f64(),
        resync_writes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("|   the last pass's writes by verb, resource and answer | {resync_kinds:?} | |");

    // 5. The operators' apiserver down for 30 s; resources created through the other one.
    let outage_ns = create_namespaces(&client, "outage", 1).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let leader_before = holder(&leases).await.unwrap_or_default();
    cp.kill(Component::ApiServer)?;
    create_all(&second, &outage_ns, OUTAGE_RESOURCES).await?;
    tokio::time::sleep(OUTAGE).await;
    let (_, outage_audit_from) = audited(&audit_log, 0);
    cp.start_again(Component::ApiServer)?;
    let back = Instant::now();
    let want = total + OUTAGE_RESOURCES;
    let ready = ready_within(&client, want, OUTAGE_WAIT).await;
    let converged = back.elapsed();
    // Every watch lists again after the outage, so every settled resource is reconciled again:
    // none of them should cost a write (the leader kept its memory through the outage, unless
    // the Lease moved to the other replica).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (entries, _) = audited(&audit_log, outage_audit_from);
    let settled: Vec<&common::Audited> = entries
        .iter()
        .filter(ours)
        .filter(|e| e.resource != "leases" && e.is_write())
        .filter(|e| e.namespace != outage_ns[0])
        .collect();
    let settled_writes = settled.len();
    let settled_kinds = common::breakdown(settled.into_iter());
    let leader_after = holder(&leases).await.unwrap_or_default();
    let result = if ready >= want {
        format!("**{:.1} s**", converged.as_secs_f64())
    } else {
        format!(
            "**not converged**: {ready} of {want} Ready {:.0} s after",
            converged.as_secs_f64()
        )
    };
    println!(
        "| {}-s apiserver outage, {OUTAGE_RESOURCES} resources created meanwhile: its return → all Ready | {result} | — |",
        OUTAGE.as_secs()
    );
    println!(
        "| after the outage, writes to the {total} settled resources (re-listed and reconciled again; leader before {leader_before}, after {leader_after}) | **{settled_writes}** {settled_kinds:?} | 0 |"
    );

    Ok(())
}
