//! The operator's leader election on the real node: the follower takes over from a deleted
//! leader and writes nothing to resources already settled.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use wca_test_harness::{eventually, lease_holder};

use super::common::*;
use super::support::audit::Entry;
use super::support::fixtures::{SpecExt, spec};
use super::support::mirror::metric_value;

/// The chart runs two operator pods, one leading. The leader's pod deleted: the follower, already
/// running with warm caches, takes the Lease at once (the dying leader releases it on SIGTERM),
/// reconciles every resource and writes nothing to those already settled (their objects keep
/// their resourceVersions, no Event is added, and the audit log shows no write by the operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_from_a_deleted_leader_and_writes_nothing_to_settled_resources() {
    let (_serial, t) = begin("takeover").await;
    let client = node().client().await.unwrap();
    t.apply_resource("acme", &t.ingress_spec()).await;
    t.apply_resource("direct", &spec(CLIENT_ID).direct()).await;
    t.wait_ready("acme").await;
    t.wait_ready("direct").await;
    // Ready comes with the first mirror pod; the second one then changes the Deployment's and the
    // PDB's status and the resource's ProxyAvailable message. Snapshot only after all of that.
    t.wait_both_mirror_pods("acme").await;
    t.wait_rolled_out("acme", &[]).await;
    t.wait_budget_settled("acme-jwks").await;
    let before = t.settled_versions().await;
    let events_before = t.count::<Event>("").await;

    let pods = Api::<Pod>::namespaced(client.clone(), RELEASE_NS);
    let leases = Api::<Lease>::namespaced(client.clone(), RELEASE_NS);
    let (leader, follower) = eventually(WAIT, "a leader and a Ready follower", || async {
        let holder = lease_holder(&leases, LEASE).await?;
        let operators = operator_pods(&client).await;
        let follower = operators
            .iter()
            .find(|p| p.name_any() != holder && is_ready(p))?
            .clone();
        operators
            .iter()
            .any(|p| p.name_any() == holder)
            .then_some((holder, follower))
    })
    .await
    .unwrap();
    let started = Timestamp::now();
    let deleted = Instant::now();
    pods.delete(&leader, &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the follower holding the Lease", || async {
        (lease_holder(&leases, LEASE).await? == follower.name_any()).then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "leader pod deleted → follower holds the Lease: {:.1} s",
        deleted.elapsed().as_secs_f64()
    );
    // A follower reconciles nothing; once it leads it reconciles everything, our two included.
    let metrics_url = format!("http://{}:8081/metrics", pod_ip(&follower));
    let http = plain_client();
    eventually(WAIT, "the new leader reconciling", || {
        let (http, url) = (http.clone(), metrics_url.clone());
        async move {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            (metric_value(&text, "wca_reconciles_total")? >= 2.0).then_some(())
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(t.settled_versions().await, before, "no object changed");
    let events_after = t.count::<Event>("").await;
    assert_eq!(events_after, events_before, "no Event was added");
    let audit = AuditLog::read();
    // It still sends its server-side applies, which change nothing (the versions above); no
    // other write reached the API server.
    let writes: Vec<String> = audit
        .by(OPERATOR_USER)
        .filter(|e| e.namespace() == Some(t.ns.as_str()) && e.at >= started)
        .filter(|e| e.is_write() && !(e.verb == "patch" && e.is_child()))
        .map(Entry::describe)
        .collect();
    assert!(writes.is_empty(), "the new operator wrote: {writes:?}");
    audit.assert_nothing_forbidden();
}
