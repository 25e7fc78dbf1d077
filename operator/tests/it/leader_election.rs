//! Leader election between real operator processes on the real apiserver: exactly one leads,
//! the follower writes nothing (the audit log, one ServiceAccount per process), `kill -9` of the
//! leader hands over within the lease duration + 5 s, and SIGTERM hands over within 2 s.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::support::process::KillOnDrop;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;

const LEASE: &str = "wca-leader-test";
/// Short terms, so the test takes seconds: lease 6 s, renew deadline 4 s, retry 1 s.
const LEASE_SECONDS: u64 = 6;
const WAIT: Duration = Duration::from_secs(60);

/// An operator process named `identity` (its Lease identity, `POD_NAME`), authenticated as
/// ServiceAccount `default/<identity>`.
fn operator(cp: &ControlPlane, ns: &str, identity: &str, kubeconfig: &Path) -> KillOnDrop {
    let lease_seconds = format!("{LEASE_SECONDS}s");
    let child = Command::new(env!("CARGO_BIN_EXE_workos-convex-auth"))
        .args(["run", "--namespace", ns, "--admin-addr", "127.0.0.1:0"])
        .args(["--log-format", "text", "--leader-elect"])
        .args(["--leader-election-namespace", ns])
        .args(["--leader-election-lease-name", LEASE])
        .args(["--leader-election-lease-duration", &lease_seconds])
        .args(["--leader-election-renew-deadline", "4s"])
        .args(["--leader-election-retry-period", "1s"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("POD_NAME", identity)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {identity}: {e} ({})", cp.kubeconfig().display()));
    KillOnDrop::new(child)
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

fn resource(name: &str) -> WorkOSConvexAuth {
    serde_json::from_value(json!({
        "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
        "metadata": {"name": name},
        "spec": {"clientId": "client_01LEADER", "jwks": {"mode": "Direct"}}
    }))
    .expect("static resource")
}

async fn config_map_appears(config_maps: &Api<ConfigMap>, name: &str) {
    eventually(WAIT, &format!("ConfigMap {name}"), || async {
        config_maps.get_opt(name).await.ok().flatten()
    })
    .await
    .unwrap();
}

/// Writes (`create`, `update`, `patch`, `delete`) that ServiceAccount `default/<identity>` made,
/// as `verb resource`, from the audit log.
fn writes_by(audit_log: &Path, identity: &str) -> Vec<String> {
    let user = format!("system:serviceaccount:default:{identity}");
    std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["user"]["username"] == user.as_str())
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            )
        })
        .map(|e| {
            format!(
                "{} {}",
                e["verb"].as_str().unwrap_or("?"),
                e["objectRef"]["resource"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn sigterm(child: &KillOnDrop) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
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
    let a = operator(cp, &ns, &identities[0], &kubeconfigs[0]);
    let b = operator(cp, &ns, &identities[1], &kubeconfigs[1]);

    // Exactly one leads, and it reconciles.
    let leader = eventually(WAIT, "a leader", || holder(&leases))
        .await
        .unwrap();
    let (mut leading, mut following, follower) = if leader == identities[0] {
        (a, b, identities[1].clone())
    } else {
        (b, a, identities[0].clone())
    };
    resources
        .create(&PostParams::default(), &resource("first"))
        .await
        .unwrap();
    config_map_appears(&config_maps, "first-convex-auth").await;
    // Let the follower's watch caches see everything the leader wrote.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let follower_writes: Vec<String> = writes_by(&cp.audit_log(), &follower)
        .into_iter()
        .filter(|w| !w.ends_with(" leases"))
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
    let c = operator(cp, &ns, &identities[2], &kubeconfigs[2]);
    // Wait until the new process runs its election (it reads the Lease), then stop the leader.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sigterm(&following);
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
    resources
        .create(&PostParams::default(), &resource("after-handover"))
        .await
        .unwrap();
    config_map_appears(&config_maps, "after-handover-convex-auth").await;
    drop(c);
}
