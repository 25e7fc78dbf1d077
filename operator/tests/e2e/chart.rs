//! The Helm chart on the real node: the operator runs as the chart's hardened pods, pulled
//! from the release's registry, one of two leading; `helm test` passes.

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::Api;
use wca_test_harness::{eventually, lease_holder, run_ok};

use super::common::*;
use super::release::published;
use super::support::mirror::{get_text, metric_value};

/// `helm install` of the chart with the image built here: the operator runs as the chart's
/// Deployment, Ready through its own probes, as the chart's ServiceAccount, and the hardening
/// the chart asks for is what the kernel sees for the process; `helm test` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_runs_the_operator_as_a_hardened_pod() {
    let _serial = serial().await;
    let installed = operator();
    eprintln!(
        "helm install → operator pod Ready: {:.1} s",
        installed.install_time.as_secs_f64()
    );
    let client = node().client().await.unwrap();
    let pod = operator_pod(&client).await;
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some("wca-workos-convex-auth")
    );
    assert!(
        is_ready(&pod),
        "the operator pod is Ready (its /readyz probe passes)"
    );
    // Pulled from the registry by the node's containerd, over TLS, as the pull secret's user.
    assert_pulled_from_the_release(&pod);
    let registry_log = published().registry.log();
    // The registry answers nothing without credentials (release.rs): a 200 is an
    // authenticated pull.
    assert!(
        registry_log
            .lines()
            .any(|l| l.contains("http.request.useragent=\"containerd/")
                && l.contains("/v2/workos-convex-auth/manifests/")
                && l.contains("http.response.status=200")),
        "containerd fetched the manifest from the registry"
    );

    let process = ContainerProcess::of(&pod, "operator");
    process.assert_hardened();
    assert_eq!(
        process.memory_limit(),
        256 * 1024 * 1024,
        "the chart's memory limit"
    );

    // Its admin server answers on the pod's address, as the kubelet's probes reach it.
    let ip = pod_ip(&pod);
    let http = plain_client();
    let readyz = http
        .get(format!("http://{ip}:8081/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    let metrics = get_text(&http, &format!("http://{ip}:8081/metrics")).await;
    assert!(metrics.contains("wca_reconciles_total"), "{metrics}");

    // The chart's default: two replicas, one of them leading (the Lease and `wca_leader` agree).
    let leases = Api::<Lease>::namespaced(client.clone(), RELEASE_NS);
    let holder = eventually(WAIT, "a leader", || lease_holder(&leases, LEASE))
        .await
        .unwrap();
    let operators = operator_pods(&client).await;
    assert_eq!(operators.len(), 2, "two operator pods");
    for pod in &operators {
        assert!(is_ready(pod), "{} is Ready, leader or not", pod.name_any());
        let text = get_text(&http, &format!("http://{}:8081/metrics", pod_ip(pod))).await;
        let leading = if pod.name_any() == holder { 1.0 } else { 0.0 };
        assert_eq!(
            metric_value(&text, "wca_leader"),
            Some(leading),
            "{}: wca_leader",
            pod.name_any()
        );
    }

    // In-cluster config through the `kubernetes` Service: the API server saw the
    // ServiceAccount's watches, and refused none of its requests.
    let audit = AuditLog::read();
    assert!(
        audit
            .by(OPERATOR_USER)
            .any(|e| e.verb == "watch" && e.resource() == "workosconvexauths"),
        "the operator watches its resources as {OPERATOR_USER}"
    );
    audit.assert_nothing_forbidden();

    // `helm test`: the chart's test Pod probes /readyz through the metrics Service with the
    // image's own `probe` subcommand (the image has no shell or curl).
    let tested =
        run_ok(
            node()
                .helm()
                .args(["test", RELEASE, "-n", RELEASE_NS, "--timeout", "120s"]),
        )
        .expect("helm test");
    // Succeeded: the probe exited 0 (the Pod is deleted then: hook-succeeded, so no logs).
    assert!(
        tested
            .lines()
            .any(|l| l.starts_with("Phase:") && l.contains("Succeeded")),
        "{tested}"
    );
    assert!(
        tested.contains("wca-workos-convex-auth-test-readyz"),
        "{tested}"
    );
}
