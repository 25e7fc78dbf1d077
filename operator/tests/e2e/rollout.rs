//! Changes under a client loop on the real node: a rollout, a deleted pod, a deleted Service;
//! and a deleted resource, its children removed by the garbage collector.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::DeleteParams;
use wca_test_harness::eventually;
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::reconcile::live::ChildKind;

use super::common::*;
use super::support::fixtures::SpecExt;

/// A spec change rolls the mirror, and a deleted mirror pod is replaced, while a client keeps
/// fetching the keys through the ingress controller: not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_and_deleted_pods_fail_no_request() {
    let (_serial, t) = begin("rollout").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    let load = t.ingress_load().await;

    // A spec change: new mirror arguments, so a new pod template and a rolling update.
    let before = t.mirror_pods("acme").await;
    let spec = t.ingress_spec().proxy(|p| p.refresh_interval = "4m".into());
    t.apply_resource("acme", &spec).await;
    t.wait_rolled_out("acme", &before).await;
    eprintln!(
        "rollout done after {} requests, {:.1} s",
        load.successes(),
        load.began.elapsed().as_secs_f64()
    );

    // A mirror pod deleted: the ReplicaSet replaces it, the PodDisruptionBudget aside.
    let victim = t.mirror_pods("acme").await.remove(0);
    t.api::<Pod>()
        .delete(&victim.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    t.wait_rolled_out("acme", &[victim]).await;
    eprintln!(
        "pod replaced after {} requests, {:.1} s",
        load.successes(),
        load.began.elapsed().as_secs_f64()
    );

    let report = load.stop().await;
    eprintln!(
        "{} requests through the ingress during the rollout and the pod deletion, {} failed",
        report.ok,
        report.failures.len()
    );
    if !report.failures.is_empty() {
        let traefik =
            node().kubectl_ok(&["-n", "traefik", "logs", "deploy/traefik", "--tail", "40"]);
        let slices = node().kubectl_ok(&["-n", &t.ns, "get", "endpointslices", "-o", "yaml"]);
        panic!(
            "failed requests: {:?}\ntraefik: {traefik:?}\nendpointslices: {slices:?}",
            report.failures
        );
    }
    assert!(
        report.ok >= 100,
        "the client kept fetching: {} requests",
        report.ok
    );
}

/// Drift by deletion on the real node (issue 21): the mirror Service of a `Ready` resource
/// deleted under a client loop through the Ingress is put back by the operator within 2 s; the
/// requests that fail meanwhile (the ingress controller has no endpoints until the new Service's
/// EndpointSlice is programmed) are counted and reported, and the loop recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_mirror_service_is_put_back_and_the_ingress_recovers() {
    let (_serial, t) = begin("svc-drift").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    let load = t.ingress_load().await;

    let services = t.api::<Service>();
    let before = services.get("acme-jwks").await.unwrap();
    services
        .delete("acme-jwks", &DeleteParams::default())
        .await
        .unwrap();
    let deleted_at = load.began.elapsed();
    let put_back = eventually(Duration::from_secs(2), "the Service put back", || async {
        services
            .get_opt("acme-jwks")
            .await
            .ok()
            .flatten()
            .filter(|s| s.uid() != before.uid())
    })
    .await;
    let took = load.began.elapsed().saturating_sub(deleted_at);
    put_back.unwrap();
    // Served again, and a good while after it.
    let recovered = load.successes();
    eventually(WAIT, "requests succeed again", || async {
        (load.successes() >= recovered + 100).then_some(())
    })
    .await
    .unwrap();
    let report = load.stop().await;
    let span = match (report.failures.first(), report.failures.last()) {
        (Some(first), Some(last)) => last.at.saturating_sub(first.at),
        _ => Duration::ZERO,
    };
    eprintln!(
        "Service deleted under load: put back in {took:?}; {} of {} requests failed, for {span:?} (first {:?} after the deletion)",
        report.failures.len(),
        report.ok + report.failures.len(),
        report
            .failures
            .first()
            .map(|f| f.at.saturating_sub(deleted_at)),
    );
    assert!(
        report.failures.iter().all(|f| f.at >= deleted_at),
        "requests failed before the deletion: {:?}",
        report.failures
    );
    t.wait_ready("acme").await;
}

/// Deleting a resource: the garbage collector removes every child (the Deployment, its
/// ReplicaSets and pods, the Service, the PodDisruptionBudget, the Ingress, the ConfigMap; and
/// no HTTPRoute or NetworkPolicy is left) through owner references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resource_lets_the_garbage_collector_remove_every_child() {
    let (_serial, t) = begin("gc").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    let counts = t.children("acme").await;
    // Every child kind is counted (`ChildKind::ALL`). This resource is served through an
    // Ingress (a resource has an Ingress or an HTTPRoute, never both), and the mirror's
    // NetworkPolicy is off unless the chart turns it on: those two it has none of.
    let not_wanted = [
        ChildKind::HttpRoute.as_str(),
        ChildKind::NetworkPolicy.as_str(),
    ];
    for (kind, n) in &counts {
        if not_wanted.contains(kind) {
            assert_eq!(*n, 0, "{kind} not wanted: {counts:?}");
        } else {
            assert!(*n > 0, "{kind} exists before the deletion: {counts:?}");
        }
    }
    t.api::<WorkOSConvexAuth>()
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    eventually(WAIT, "every child of acme gone", || async {
        let left = t.children("acme").await;
        left.values().all(|n| *n == 0).then_some(())
    })
    .await
    .unwrap();
    eprintln!(
        "children removed {:.1} s after the resource",
        started.elapsed().as_secs_f64()
    );
}
