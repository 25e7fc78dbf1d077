//! `spec.proxy.podTemplate` on the real node (issue 24): the scheduler keeps the mirror pods off
//! a node with a taint they do not tolerate, and places them once the resource's template adds
//! the toleration.

use k8s_openapi::api::core::v1::{Node as KubeNode, Pod, Toleration};
use kube::api::Api;
use wca_test_harness::eventually;
use workos_convex_auth::api::{MirrorPodSpec, MirrorPodTemplate};
use workos_convex_auth::reconcile::reason::ConditionType;

use super::common::{CLIENT_ID, WAIT, begin, node};
use super::support::conditions::{Want, condition};
use super::support::fixtures::{SpecExt, spec};

const TAINT_KEY: &str = "wca.test/dedicated";

/// Taints the node for one test and removes the taint when dropped, a failed test included
/// (the node is shared by every later test).
struct Taint;

impl Taint {
    fn add() -> Self {
        node()
            .kubectl_ok(&[
                "taint",
                "nodes",
                "--all",
                &format!("{TAINT_KEY}=mirrors:NoSchedule"),
            ])
            .expect("taint the node");
        Taint
    }
}

impl Drop for Taint {
    fn drop(&mut self) {
        if let Err(e) = node().kubectl_ok(&["taint", "nodes", "--all", &format!("{TAINT_KEY}-")]) {
            eprintln!("could not remove the taint {TAINT_KEY}: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_pods_run_on_a_tainted_node_only_with_the_toleration() {
    let (_serial, t) = begin("placement").await;
    let taint = Taint::add();
    let spec = spec(CLIENT_ID)
        .upstream("http://fake-workos")
        .proxy(|p| p.replicas = 1);
    t.apply_resource("acme", &spec).await;
    // The scheduler's own verdict: PodScheduled=False, Unschedulable, naming the taint.
    let pending = eventually(WAIT, "an unschedulable mirror pod", || async {
        let pods = t.mirror_pods("acme").await;
        pods.into_iter().find_map(|pod| {
            let status = pod.status?;
            let c = status
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
            (c.reason.as_deref() == Some("Unschedulable")).then(|| c.message.unwrap_or_default())
        })
    })
    .await
    .unwrap();
    // The scheduler names no taint key (Kubernetes 1.35: "1 node(s) had untolerated taint(s)").
    assert!(pending.contains("untolerated taint"), "{pending}");
    // Ready says so, with the scheduler's words and what places the pods.
    let unschedulable = Want::of(ConditionType::ProxyAvailable)
        .message_containing("1 unschedulable (0/1 nodes are available");
    let not_ready = t.wait("acme", unschedulable, WAIT).await;
    let ready = condition(&not_ready, ConditionType::Ready);
    assert_eq!(ready.status, "False");
    assert!(
        ready
            .message
            .contains("spec.proxy.podTemplate.spec (tolerations"),
        "{}",
        ready.message
    );

    let toleration = Toleration {
        key: Some(TAINT_KEY.into()),
        operator: Some("Equal".into()),
        value: Some("mirrors".into()),
        effect: Some("NoSchedule".into()),
        ..Default::default()
    };
    let spec = spec.proxy(|p| {
        p.pod_template = Some(MirrorPodTemplate {
            metadata: None,
            spec: Some(MirrorPodSpec {
                tolerations: vec![toleration],
                ..Default::default()
            }),
        })
    });
    t.apply_resource("acme", &spec).await;
    t.wait_ready("acme").await;
    let node_name = Api::<KubeNode>::all(t.client.clone())
        .list(&Default::default())
        .await
        .unwrap()
        .items[0]
        .metadata
        .name
        .clone();
    let placed: Vec<Pod> = eventually(WAIT, "the tolerating mirror pod running", || async {
        let pods = t.mirror_pods("acme").await;
        let running: Vec<Pod> = pods
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        (!running.is_empty()).then_some(running)
    })
    .await
    .unwrap();
    for pod in &placed {
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name, node_name, "scheduled onto the tainted node");
        assert!(
            spec.tolerations
                .iter()
                .flatten()
                .any(|t| t.key.as_deref() == Some(TAINT_KEY)),
            "the pod carries the template's toleration"
        );
    }
    drop(taint);
}
