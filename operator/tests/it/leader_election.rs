//! Leader election between real operator processes on the real apiserver: exactly one leads,
//! the follower writes nothing (the audit log, one ServiceAccount per process), `kill -9` of the
//! leader hands over within the lease duration + 5 s, SIGTERM hands over within 2 s, and a leader
//! cut off from the apiserver steps down before its Lease expires and stays a follower after.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::support::api_proxy::{ApiProxy, Fault};
use super::support::audit;
use super::support::binary::{Admin, Binary, LOOPBACK_UPSTREAM, sigterm};
use super::support::fixtures::{self, SpecExt, spec};
use super::support::process::{KillOnDrop, SilentServer};
use wca_test_harness::{ControlPlane, client_for, eventually, lease_holder};
use workos_convex_auth::api::WorkOSConvexAuth;

const LEASE: &str = "wca-leader-test";
/// Short terms, so the test takes seconds: lease 6 s, renew deadline 4 s, retry 1 s.
const LEASE_SECONDS: u64 = 6;
const WAIT: Duration = Duration::from_secs(60);

/// An operator process named `identity` (its Lease identity, `POD_NAME`) using `kubeconfig`
/// (ServiceAccount `default/<identity>`), its admin server on `admin`.
fn operator(ns: &str, identity: &str, kubeconfig: &Path, admin: &Admin) -> KillOnDrop {
    let lease_seconds = format!("{LEASE_SECONDS}s");
    Binary::operator(kubeconfig, ns, admin)
        .log_format("text")
        .arg("--leader-elect")
        .args(["--leader-election-namespace", ns])
        .args(["--leader-election-lease-name", LEASE])
        .args(["--leader-election-lease-duration", &lease_seconds])
        .args(["--leader-election-renew-deadline", "4s"])
        .args(["--leader-election-retry-period", "1s"])
        // The fence test's upstream, which never answers, is on loopback.
        .args(LOOPBACK_UPSTREAM)
        .env("POD_NAME", identity)
        .env("RUST_LOG", "info")
        .spawn()
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    lease_holder(leases, LEASE).await
}

fn resource(name: &str) -> WorkOSConvexAuth {
    fixtures::resource(name, spec("client_01LEADER").direct())
}

async fn config_map_appears(config_maps: &Api<ConfigMap>, name: &str) {
    eventually(WAIT, &format!("ConfigMap {name}"), || async {
        config_maps.get_opt(name).await.ok().flatten()
    })
    .await
    .unwrap();
}

/// Creates resource `name` and waits for its ConfigMap: whoever leads reconciled it.
async fn reconciled(resources: &Api<WorkOSConvexAuth>, config_maps: &Api<ConfigMap>, name: &str) {
    resources
        .create(&PostParams::default(), &resource(name))
        .await
        .unwrap();
    config_map_appears(config_maps, &format!("{name}-convex-auth")).await;
}

/// Writes that ServiceAccount `default/<identity>` made since `since`, as `verb resource → code`.
fn writes_by(audit_log: &Path, identity: &str, since: Timestamp) -> Vec<String> {
    audit::writes_by(audit_log, identity, since)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Two operator processes in a namespace of their own: A, which reaches the apiserver only
/// through a fault-injecting proxy (sending as A's ServiceAccount) and leads, and B, direct.
struct Pair {
    /// Declared first, so dropped first: the processes stop before their proxy does.
    _processes: [KillOnDrop; 2],
    cp: &'static ControlPlane,
    leases: Api<Lease>,
    resources: Api<WorkOSConvexAuth>,
    config_maps: Api<ConfigMap>,
    a: String,
    b: String,
    a_admin: Admin,
    proxy: ApiProxy,
}

impl Pair {
    async fn start(test: &str) -> Self {
        let cp = ControlPlane::shared();
        let client = cp.client().await.unwrap();
        let ns = cp.namespace(&client, test).await.unwrap();
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let (a, b) = (format!("{ns}-a"), format!("{ns}-b"));
        let a_direct = cp.service_account_kubeconfig(&a).unwrap();
        let proxy = ApiProxy::start(client_for(&a_direct).await.unwrap()).await;
        let dir = cp.kubeconfig().parent().unwrap();
        let a_admin = Admin::free();
        let a_process = operator(&ns, &a, &proxy.kubeconfig(dir, &a), &a_admin);
        eventually(WAIT, "A leading", || async {
            (holder(&leases).await? == a).then_some(())
        })
        .await
        .unwrap();
        let b_kubeconfig = cp.service_account_kubeconfig(&b).unwrap();
        let b_process = operator(&ns, &b, &b_kubeconfig, &Admin::any());
        Self {
            cp,
            resources: Api::namespaced(client.clone(), &ns),
            config_maps: Api::namespaced(client, &ns),
            leases,
            a,
            b,
            a_admin,
            proxy,
            _processes: [a_process, b_process],
        }
    }
}

/// `wca_leader` on the admin server at `admin`.
async fn leader_gauge(admin: &Admin) -> Option<f64> {
    admin.metric("wca_leader").await
}

#[tokio::test]
async fn one_leader_reconciles_and_a_follower_takes_over_on_kill_and_on_sigterm() {
    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "leader").await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let resources: Api<WorkOSConvexAuth> = Api::namespaced(client.clone(), &ns);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let identities = [format!("{ns}-a"), format!("{ns}-b"), format!("{ns}-c")];
    let kubeconfigs: Vec<_> = identities
        .iter()
        .map(|id| cp.service_account_kubeconfig(id).unwrap())
        .collect();
    let a = operator(&ns, &identities[0], &kubeconfigs[0], &Admin::any());
    let b = operator(&ns, &identities[1], &kubeconfigs[1], &Admin::any());

    // Exactly one leads, and it reconciles.
    let leader = eventually(WAIT, "a leader", || holder(&leases))
        .await
        .unwrap();
    let (mut leading, mut following, follower) = if leader == identities[0] {
        (a, b, identities[1].clone())
    } else {
        (b, a, identities[0].clone())
    };
    reconciled(&resources, &config_maps, "first").await;
    // Let the follower's watch caches see everything the leader wrote.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let follower_writes: Vec<String> = writes_by(&cp.audit_log(), &follower, Timestamp::UNIX_EPOCH)
        .into_iter()
        .filter(|w| !w.contains(" leases "))
        .collect();
    assert_eq!(follower_writes, Vec::<String>::new(), "the follower wrote");
    assert_eq!(holder(&leases).await.as_deref(), Some(leader.as_str()));

    // kill -9 of the leader: the follower takes over within the lease duration + 5 s, and
    // reconciles a resource created while nobody led.
    leading.kill().unwrap();
    let killed = Instant::now();
    let _ = leading.wait();
    resources
        .create(&PostParams::default(), &resource("during-the-gap"))
        .await
        .unwrap();
    let limit = Duration::from_secs(LEASE_SECONDS + 5);
    eventually(limit, "the follower holding the Lease", || async {
        (holder(&leases).await.as_deref() == Some(follower.as_str())).then_some(())
    })
    .await
    .unwrap();
    let takeover = killed.elapsed();
    eprintln!("takeover after kill -9: {} ms", takeover.as_millis());
    assert!(takeover <= limit, "takeover took {takeover:?}");
    config_map_appears(&config_maps, "during-the-gap-convex-auth").await;

    // SIGTERM of the leader releases the Lease: a new follower takes it within 2 s.
    let c = operator(&ns, &identities[2], &kubeconfigs[2], &Admin::any());
    // Wait until the new process runs its election (it reads the Lease), then stop the leader.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(sigterm(&following), "kill -TERM the leader");
    let stopped = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the new follower holding the Lease",
        || async {
            (holder(&leases).await.as_deref() == Some(identities[2].as_str())).then_some(())
        },
    )
    .await
    .unwrap();
    let handover = stopped.elapsed();
    eprintln!("handover after SIGTERM: {} ms", handover.as_millis());
    let exited = following.wait().unwrap();
    assert!(exited.success(), "the old leader exits cleanly: {exited}");
    assert!(
        handover <= Duration::from_secs(2),
        "handover took {handover:?}"
    );
    reconciled(&resources, &config_maps, "after-handover").await;
    drop(c);
}

/// A leader cut off from the apiserver (its proxy drops every connection) stops reconciling
/// before its Lease can expire; the follower then takes over and reconciles; when the leader's
/// traffic flows again it stays a follower, and nothing it sent after the cut was written.
#[tokio::test]
async fn a_leader_cut_off_steps_down_before_its_lease_expires_and_comes_back_as_a_follower() {
    let p = Pair::start("partition").await;
    reconciled(&p.resources, &p.config_maps, "before-the-cut").await;
    assert_eq!(leader_gauge(&p.a_admin).await, Some(1.0));
    tokio::time::sleep(Duration::from_secs(2)).await;

    p.proxy.set(Fault::Cut);
    let cut = Instant::now();
    let cut_at = Timestamp::now();
    // Waits well past the Lease's expiry, so that the assertion below (not this wait's own
    // timeout) decides whether A stepped down in time.
    eventually(
        Duration::from_secs(3 * LEASE_SECONDS),
        "A stepping down",
        || async { (leader_gauge(&p.a_admin).await? == 0.0).then_some(()) },
    )
    .await
    .unwrap();
    let stepped_down = cut.elapsed();
    eprintln!(
        "cut off → the leader stops reconciling: {} ms",
        stepped_down.as_millis()
    );
    assert!(
        stepped_down < Duration::from_secs(LEASE_SECONDS),
        "A still led when its Lease could expire: {stepped_down:?}"
    );

    p.resources
        .create(&PostParams::default(), &resource("during-the-cut"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(LEASE_SECONDS + 5),
        "B holding the Lease",
        || async { (holder(&p.leases).await? == p.b).then_some(()) },
    )
    .await
    .unwrap();
    eprintln!(
        "cut off → the follower holds the Lease: {} ms",
        cut.elapsed().as_millis()
    );
    config_map_appears(&p.config_maps, "during-the-cut-convex-auth").await;
    assert!(p.proxy.injected() > 0, "the proxy dropped A's requests");

    // Traffic flows again: A sees B's Lease and stays a follower.
    p.proxy.set(Fault::None);
    reconciled(&p.resources, &p.config_maps, "after-the-cut").await;
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS)).await;
    assert_eq!(holder(&p.leases).await.as_deref(), Some(p.b.as_str()));
    assert_eq!(
        leader_gauge(&p.a_admin).await,
        Some(0.0),
        "A came back a follower"
    );
    let a_writes: Vec<String> = writes_by(&p.cp.audit_log(), &p.a, cut_at)
        .into_iter()
        .filter(|w| w.ends_with("→ 200") || w.ends_with("→ 201"))
        .collect();
    assert_eq!(a_writes, Vec::<String>::new(), "A wrote after the cut");
}

/// Issue 22, the fence: a leader whose Lease renewals fail while everything else, its reads of
/// the Lease included, still works keeps reporting "leader" from the election crate. It must
/// stop at its last renewal's deadline, and a reconcile it has in progress then must stop too:
/// the resources here fetch their keys (mode Inline) from an upstream that never answers, so
/// each reconcile waits 5 s before it writes its status. Once the follower has taken the Lease
/// over, the old leader writes nothing.
#[tokio::test]
async fn a_leader_whose_renewals_fail_writes_nothing_after_the_follower_takes_over() {
    let silent = SilentServer::start().await;
    let upstream = silent.url();
    let slow = |name: &str| -> WorkOSConvexAuth {
        fixtures::resource(name, spec("client_01LEADER").inline(&upstream))
    };
    let p = Pair::start("fence").await;
    reconciled(&p.resources, &p.config_maps, "before").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    p.proxy.set(Fault::FailLeaseWrites);
    let failing = Instant::now();
    // Work for whoever leads, every 300 ms, until 8 s after the follower took over (longer
    // than a reconcile waits for the silent upstream).
    let mut created = 0;
    let mut took_over: Option<Instant> = None;
    while took_over.is_none_or(|at| at.elapsed() < Duration::from_secs(8)) {
        assert!(
            failing.elapsed() < Duration::from_secs(LEASE_SECONDS * 4),
            "B never took the Lease over"
        );
        p.resources
            .create(&PostParams::default(), &slow(&format!("churn-{created}")))
            .await
            .unwrap();
        created += 1;
        if took_over.is_none() && holder(&p.leases).await.as_deref() == Some(p.b.as_str()) {
            took_over = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(p.proxy.injected() > 0, "A's renewals were refused");
    let acquired = p
        .leases
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.acquire_time)
        .expect("B's acquire time")
        .0;
    eprintln!(
        "renewals failing → B holds the Lease after {:?}; {created} resources created meanwhile",
        took_over.map(|at| at.duration_since(failing))
    );
    let a_writes: Vec<String> = audit::writes_by(&p.cp.audit_log(), &p.a, acquired)
        .iter()
        .filter(|w| w.code < 300)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        a_writes,
        Vec::<String>::new(),
        "A wrote after B acquired the Lease"
    );
    assert_eq!(leader_gauge(&p.a_admin).await, Some(0.0), "A follows");
}
