//! End to end on a real node (`tests/node/up.sh`: kube-apiserver, etcd, controller-manager,
//! scheduler, kubelet, kube-proxy, containerd, CoreDNS, Traefik). The Helm chart installs the
//! operator from the image built here; its JWKS mirror pods fetch the fake WorkOS's keys (the
//! fake runs as a pod too) and serve them through their Service and the ingress controller;
//! the garbage collector, rollouts and readiness are Kubernetes' own.
//!
//! One node per test binary; the tests run one at a time, each in its own namespace, because one
//! of them deletes the operator's pod and others measure rollouts.

use super::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::release::published;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use support::jose::jose_dir;
use support::keys::sign_rs256;
use support::mirror::{fixture, get_text, metric_value};
use tokio::sync::{Mutex, MutexGuard};
use wca_test_harness::node::Node;
use wca_test_harness::{eventually, lease_holder, repo_root, run_ok};
use workos_convex_auth::api::WorkOSConvexAuth;

pub(crate) const CLIENT_ID: &str = "client_01JE2ENODETEST0000000000000";
const RELEASE: &str = "wca";
const RELEASE_NS: &str = "wca-system";
/// The chart's leader-election Lease (the release's full name).
const LEASE: &str = "wca-workos-convex-auth";
const OPERATOR_USER: &str = "system:serviceaccount:wca-system:wca-workos-convex-auth";
/// Generous: pods start in 1–2 s here, but a cold image import or a busy machine is slower.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

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
            .any(|e| e.verb == "watch" && e.resource == "workosconvexauths"),
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

/// A resource in mode Proxy: mirror pods Ready, the Service and the Ingress serve the keys the
/// fake WorkOS holds, and a token signed with that key verifies with `jose` against the JWKS
/// URL the generated config gives Convex, fetched through the ingress controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_serves_its_keys_through_the_service_and_the_ingress() {
    let (_serial, t) = begin("keys").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    // Ready comes with the first available pod; wait for both.
    let resource = t
        .wait_condition_message("acme", "ProxyAvailable", "2/2 mirror pods available")
        .await;

    let status = resource.status.clone().unwrap();
    let jwks_url = format!("https://{}/sso/jwks/{CLIENT_ID}", t.host);
    assert_eq!(status.jwks_url.as_deref(), Some(jwks_url.as_str()));
    let proxy = condition(&resource, "ProxyAvailable");
    assert_eq!(
        (proxy.status.as_str(), proxy.message.as_str()),
        ("True", "2/2 mirror pods available")
    );
    assert_eq!(condition(&resource, "PublicJwksUrl").status, "True");
    let config: Value = serde_json::from_str(
        &t.api::<ConfigMap>()
            .get("acme-convex-auth")
            .await
            .unwrap()
            .data
            .unwrap()["auth.config.json"],
    )
    .unwrap();
    assert!(
        config["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["jwks"] == jwks_url.as_str()),
        "every provider points Convex at the ingress URL: {config}"
    );

    // The mirror pods: the operator's image, pulled from the registry with the pull secret the
    // chart's mirror.imagePullSecrets names, hardened as the Deployment asks.
    let pods = t.mirror_pods("acme").await;
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        assert_pulled_from_the_release(pod);
        let spec = pod.spec.as_ref().unwrap();
        let secrets: Vec<&str> = spec
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(secrets, [PULL_SECRET]);
        let process = ContainerProcess::of(pod, "jwks-mirror");
        process.assert_hardened();
        assert_eq!(process.memory_limit(), 64 * 1024 * 1024);
    }
    // Each mirror resolved the upstream's short Service name (`fake-workos`) through cluster
    // DNS, from a static binary in an image without libc.
    assert!(
        t.fake_hits(&format!("/sso/jwks/{CLIENT_ID}")).await >= 2,
        "both mirror pods fetched from the fake WorkOS"
    );

    // Through the Service (kube-proxy's rules for its ClusterIP).
    let expected = fixture("jwks-rsa.json");
    let service_ip = t.service_ip("acme-jwks").await;
    let http = plain_client();
    let response = t
        .wait_served(&http, &format!("http://{service_ip}/sso/jwks/{CLIENT_ID}"))
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert!(headers.contains_key("etag"));
    assert_same_keys(&response.text().await.unwrap(), &expected);
    let other = http
        .get(format!("http://{service_ip}/sso/jwks/client_01OTHER"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the mirror serves only its own client's keys"
    );

    // Through the Ingress, over TLS with the Secret's certificate, at the URL Convex gets.
    let response = t.wait_served(&t.ingress_client(), &jwks_url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_same_keys(&response.text().await.unwrap(), &expected);

    // A token WorkOS would mint, checked by an independent client against that URL.
    let now = unix_now();
    let issuer = format!("https://api.workos.com/user_management/{CLIENT_ID}");
    let token = sign_rs256(
        &json!({"iss": issuer, "sub": "user_01E2E", "iat": now, "exp": now + 300}),
        "test-rsa-a",
        "rsa-a.pem",
    );
    let forged = sign_rs256(
        &json!({"iss": issuer, "sub": "user_01E2E", "iat": now, "exp": now + 300}),
        "test-rsa-a",
        "rsa-b.pem",
    );
    let results = t.jose_verify(&jwks_url, &issuer, &[&token, &forged]);
    assert_eq!(
        results,
        vec![
            json!({"ok": true, "kid": "test-rsa-a", "sub": "user_01E2E"}),
            json!({"ok": false, "code": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"}),
        ]
    );
    AuditLog::read().assert_nothing_forbidden();
}

/// A spec change rolls the mirror, and a deleted mirror pod is replaced, while a client keeps
/// fetching the keys through the ingress controller: not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_and_deleted_pods_fail_no_request() {
    let (_serial, t) = begin("rollout").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    let url = format!("https://{}/sso/jwks/{CLIENT_ID}", t.host);
    // Ready says the mirror pods are available; the ingress controller routes to them a moment
    // later (Traefik applies endpoint changes after a throttle). From then on, nothing may fail.
    t.wait_served(&t.ingress_client(), &url).await;
    let load = Load::start(t.ingress_client(), url);
    load.wait_for_successes(20).await;

    // A spec change: new mirror arguments, so a new pod template and a rolling update.
    let before = t.mirror_pods("acme").await;
    let mut spec = t.ingress_spec();
    spec["proxy"] = json!({"refreshInterval": "4m"});
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
    let url = format!("https://{}/sso/jwks/{CLIENT_ID}", t.host);
    t.wait_served(&t.ingress_client(), &url).await;
    let load = Load::start(t.ingress_client(), url);
    load.wait_for_successes(20).await;

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

/// WorkOS fails: the mirror serves the keys it holds until maxStale, then answers 503 and
/// reports not ready; the resource's Ready falls, saying why; WorkOS recovers, so does all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_outage_serves_stale_keys_then_fails_readiness_and_recovers() {
    let (_serial, t) = begin("outage").await;
    let spec = json!({
        "clientId": CLIENT_ID,
        "jwks": {"upstreamBase": "http://fake-workos"},
        "proxy": {"refreshInterval": "10s", "maxStale": "20s"},
    });
    t.apply_ready("acme", &spec).await;
    let service_ip = t.service_ip("acme-jwks").await;
    let keys_url = format!("http://{service_ip}/sso/jwks/{CLIENT_ID}");
    let http = plain_client();
    t.wait_served(&http, &keys_url).await;

    t.fake_fault(json!({"Status": 503})).await;
    // Stale: each pod, right after its own metrics show a failed refresh, still serves the keys
    // (its last good fetch was at most one refreshInterval before, maxStale is two). Every pod
    // is watched at once: the pods' schedules differ, so one may reach maxStale while another
    // has not failed yet.
    let pods = t.mirror_pods("acme").await;
    let failed = format!(
        "wca_proxy_upstream_fetches_total{{path=\"/sso/jwks/{CLIENT_ID}\",outcome=\"status\"}}"
    );
    let mut unchecked: Vec<String> = pods.iter().map(pod_ip).collect();
    let deadline = Instant::now() + WAIT;
    while !unchecked.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no failed refresh in {unchecked:?}"
        );
        let mut still = Vec::new();
        for ip in unchecked {
            let metrics = http.get(format!("http://{ip}:8080/metrics")).send().await;
            let text = match metrics {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if metric_value(&text, &failed).is_some_and(|n| n >= 1.0) {
                let stale = http
                    .get(format!("http://{ip}:8080/sso/jwks/{CLIENT_ID}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    stale.status(),
                    200,
                    "{ip} serves its last good keys while WorkOS fails"
                );
                assert_same_keys(&stale.text().await.unwrap(), &fixture("jwks-rsa.json"));
            } else {
                still.push(ip);
            }
        }
        unchecked = still;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Past maxStale: 503 from every pod, and the pods are not ready.
    for pod in &pods {
        let url = format!("http://{}:8080/sso/jwks/{CLIENT_ID}", pod_ip(pod));
        eventually(WAIT, "the mirror withholding keys past maxStale", || {
            let (http, url) = (http.clone(), url.clone());
            async move { (http.get(&url).send().await.ok()?.status() == 503).then_some(()) }
        })
        .await
        .unwrap();
    }
    let resource = t.wait_condition("acme", "Ready", "False", WAIT).await;
    let ready = condition(&resource, "Ready");
    assert_eq!(ready.reason, "Unavailable");
    assert!(
        ready.message.starts_with("0/2 mirror pods available: 2 running but not ready: the mirror is ready only while it holds signing keys its upstream confirmed within spec.proxy.maxStale"),
        "{}",
        ready.message
    );
    assert!(t.mirror_pods("acme").await.iter().all(|p| !is_ready(p)));

    t.fake_fault(json!("None")).await;
    t.wait_condition("acme", "Ready", "True", WAIT).await;
    let recovered = http.get(&keys_url).send().await.unwrap();
    assert_eq!(recovered.status(), 200);
}

/// Deleting a resource: the garbage collector removes the Deployment, its ReplicaSets and pods,
/// the Service, the PodDisruptionBudget, the Ingress and the ConfigMap (owner references).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resource_lets_the_garbage_collector_remove_every_child() {
    let (_serial, t) = begin("gc").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    let counts = t.children("acme").await;
    for (kind, n) in &counts {
        assert!(*n > 0, "{kind} exists before the deletion: {counts:?}");
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

/// The chart runs two operator pods, one leading. The leader's pod deleted: the follower, already
/// running with warm caches, takes the Lease at once (the dying leader releases it on SIGTERM),
/// reconciles every resource and writes nothing to those already settled (their objects keep
/// their resourceVersions, no Event is added, and the audit log shows no write by the operator).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_from_a_deleted_leader_and_writes_nothing_to_settled_resources() {
    let (_serial, t) = begin("takeover").await;
    let client = node().client().await.unwrap();
    t.apply_resource("acme", &t.ingress_spec()).await;
    t.apply_resource(
        "direct",
        &json!({"clientId": CLIENT_ID, "jwks": {"mode": "Direct"}}),
    )
    .await;
    t.wait_ready("acme").await;
    t.wait_ready("direct").await;
    // Ready comes with the first mirror pod; the second one then changes the Deployment's and the
    // PDB's status and the resource's ProxyAvailable message. Snapshot only after all of that.
    t.wait_condition_message("acme", "ProxyAvailable", "2/2 mirror pods available")
        .await;
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
        .filter(|e| e.namespace.as_deref() == Some(t.ns.as_str()) && e.at >= started)
        .filter(|e| e.is_write() && !(e.verb == "patch" && e.is_child()))
        .map(AuditEntry::describe)
        .collect();
    assert!(writes.is_empty(), "the new operator wrote: {writes:?}");
    audit.assert_nothing_forbidden();
}

// ---------------------------------------------------------------------------------------------
// The node, the operator, one namespace per test
// ---------------------------------------------------------------------------------------------

pub(crate) fn node() -> &'static Node {
    Node::shared()
}

/// The start of every test: its turn, the operator installed, a namespace of its own.
pub(crate) async fn begin(test: &str) -> (MutexGuard<'static, ()>, Tenant) {
    let turn = serial().await;
    operator();
    (turn, Tenant::new(test).await)
}

/// One test at a time (see the module doc); a failed test does not block the others (a tokio
/// mutex is not poisoned by a panic).
async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

struct Installed {
    install_time: Duration,
}

/// `helm install` of the chart, once per binary, as the README says: from the OCI registry the
/// release script pushed to ([`published`]), the image pulled by the node's containerd from that
/// registry over TLS with the credentials of a pull Secret.
fn operator() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let release = published();
        let registry = &release.registry;
        node()
            .trust_registry(&registry.host(), &registry.ca_file())
            .expect("containerd trusts the registry's CA");
        node()
            .kubectl_ok(&["create", "namespace", RELEASE_NS])
            .expect("the release's namespace");
        create_pull_secret(RELEASE_NS);
        let started = Instant::now();
        let mut helm = node().helm();
        helm.env("SSL_CERT_FILE", &release.ca_bundle);
        run_ok(helm.args([
            "install",
            RELEASE,
            &release.chart(),
            "--version",
            &release.version,
            "--username",
            &registry.username,
            "--password",
            &registry.password,
            "-n",
            RELEASE_NS,
            "--set",
            &format!("image.repository={}", release.repository()),
            "--set",
            &format!("imagePullSecrets[0].name={PULL_SECRET}"),
            "--set",
            &format!("mirror.imagePullSecrets[0].name={PULL_SECRET}"),
            // Each test's fake WorkOS is the Service `fake-workos` of its namespace, plain http.
            "--set",
            "policy.upstream.allowHttp=true",
            "--set",
            "policy.upstream.allowedHosts={fake-workos}",
            "--wait",
            "--timeout",
            "180s",
        ]))
        .expect("helm install");
        Installed {
            install_time: started.elapsed(),
        }
    })
}

/// The pull Secret every namespace that runs the image needs (pull secrets are namespaced).
const PULL_SECRET: &str = "release-registry";

fn create_pull_secret(ns: &str) {
    let config = published().registry.docker_config_json();
    node()
        .kubectl_ok(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            PULL_SECRET,
            "--type=kubernetes.io/dockerconfigjson",
            &format!("--from-literal=.dockerconfigjson={config}"),
        ])
        .expect("the pull secret");
}

/// The pod runs the released image: its reference names the registry, and containerd reports
/// the digest the release pushed (the image index, resolved to this node's platform).
fn assert_pulled_from_the_release(pod: &Pod) {
    let release = published();
    let container = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{}:{}", release.repository(), release.version).as_str())
    );
    let status = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        status.image_id,
        format!("{}@{}", release.repository(), release.digest),
        "{} runs the pushed image",
        pod.name_any()
    );
}

async fn operator_pod_opt(client: &Client) -> Option<Pod> {
    operator_pods(client).await.into_iter().next()
}

/// The operator pods that are not terminating.
async fn operator_pods(client: &Client) -> Vec<Pod> {
    let listed = Api::<Pod>::namespaced(client.clone(), RELEASE_NS)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
        )))
        .await;
    listed
        .map(|pods| pods.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn operator_pod(client: &Client) -> Pod {
    eventually(WAIT, "the operator pod", || operator_pod_opt(client))
        .await
        .unwrap()
}

/// A namespace with its own fake WorkOS (Deployment + Service `fake-workos`) and a TLS Secret
/// for its Ingress host, signed by a CA made for this test.
pub(crate) struct Tenant {
    pub(crate) client: Client,
    pub(crate) ns: String,
    host: String,
    ca_pem: String,
    ca_file: PathBuf,
}

impl Tenant {
    async fn new(test: &str) -> Self {
        let client = node().client().await.unwrap();
        let ns = node().namespace(&client, test).await.unwrap();
        create_pull_secret(&ns);
        let host = format!("jwks.{ns}.wca.test");
        let tls = TestCa::issue(&host);
        let ca_file = std::env::temp_dir().join(format!("wca-e2e-ca-{ns}.pem"));
        std::fs::write(&ca_file, &tls.ca_pem).unwrap();
        let cert: String = tls.cert_pem.lines().map(|l| format!("    {l}\n")).collect();
        let key: String = tls.key_pem.lines().map(|l| format!("    {l}\n")).collect();
        node()
            .kubectl_apply(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: jwks-tls, namespace: {ns}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{cert}  tls.key: |\n{key}"
            ))
            .unwrap();
        // The fake WorkOS, exactly as the demo runs it.
        let keys = repo_root().join("tests/fixtures/keys/jwks-rsa.json");
        let keys = format!("--from-file=jwks.json={}", keys.display());
        node()
            .kubectl_ok(&["-n", &ns, "create", "configmap", "fake-workos-keys", &keys])
            .unwrap();
        let manifest = repo_root().join("tests/node/fake-workos.yaml");
        node()
            .kubectl_ok(&["-n", &ns, "apply", "-f", manifest.to_str().unwrap()])
            .unwrap();
        let t = Self {
            client,
            ns,
            host,
            ca_pem: tls.ca_pem,
            ca_file,
        };
        t.wait_deployment_available("fake-workos").await;
        t
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Mode Proxy behind an Ingress of class traefik with the test's TLS Secret; the upstream is
    /// the namespace's fake WorkOS by its short Service name.
    fn ingress_spec(&self) -> Value {
        json!({
            "clientId": CLIENT_ID,
            "jwks": {"upstreamBase": "http://fake-workos"},
            "ingress": {"enabled": true, "host": self.host, "className": "traefik", "tlsSecretName": "jwks-tls"},
        })
    }

    pub(crate) async fn apply_resource(&self, name: &str, spec: &Value) {
        let resource = json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec,
        });
        self.api::<WorkOSConvexAuth>()
            .patch(
                name,
                &PatchParams::apply("e2e-test").force(),
                &Patch::Apply(&resource),
            )
            .await
            .unwrap();
    }

    async fn apply_ready(&self, name: &str, spec: &Value) -> WorkOSConvexAuth {
        self.apply_resource(name, spec).await;
        self.wait_ready(name).await
    }

    pub(crate) async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        timeout: Duration,
    ) -> WorkOSConvexAuth {
        let api = self.api::<WorkOSConvexAuth>();
        let what = format!("{name}: {type_}={status}");
        let found = eventually(timeout, &what, || async {
            let r = api.get(name).await.ok()?;
            let s = r.status.as_ref()?;
            (s.observed_generation == r.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status))
            .then_some(r)
        })
        .await;
        match found {
            Ok(r) => r,
            Err(e) => {
                let r = api.get(name).await.unwrap();
                panic!("{e}; status: {:#?}", r.status)
            }
        }
    }

    /// Waits until condition `type_`'s message contains `part`.
    pub(crate) async fn wait_condition_containing(
        &self,
        name: &str,
        type_: &str,
        part: &str,
    ) -> WorkOSConvexAuth {
        let api = self.api::<WorkOSConvexAuth>();
        eventually(WAIT, &format!("{name}: {type_} says {part:?}"), || async {
            let r = api.get(name).await.ok()?;
            let s = r.status.as_ref()?;
            s.conditions
                .iter()
                .any(|c| c.type_ == type_ && c.message.contains(part))
                .then_some(r)
        })
        .await
        .unwrap()
    }

    async fn wait_condition_message(
        &self,
        name: &str,
        type_: &str,
        message: &str,
    ) -> WorkOSConvexAuth {
        let api = self.api::<WorkOSConvexAuth>();
        eventually(
            WAIT,
            &format!("{name}: {type_} says {message:?}"),
            || async {
                let r = api.get(name).await.ok()?;
                let s = r.status.as_ref()?;
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.message == message)
                    .then_some(r)
            },
        )
        .await
        .unwrap()
    }

    pub(crate) async fn wait_ready(&self, name: &str) -> WorkOSConvexAuth {
        self.wait_condition(name, "Ready", "True", WAIT).await
    }

    async fn wait_deployment_available(&self, name: &str) {
        let api = self.api::<Deployment>();
        eventually(WAIT, &format!("deployment {name} available"), || async {
            let d = api.get(name).await.ok()?;
            let s = d.status.as_ref()?;
            (s.available_replicas.unwrap_or(0) >= d.spec.as_ref()?.replicas.unwrap_or(1))
                .then_some(())
        })
        .await
        .unwrap();
    }

    /// Waits until the disruption controller has seen the PDB's generation and every pod it covers.
    async fn wait_budget_settled(&self, name: &str) {
        let api = self.api::<PodDisruptionBudget>();
        eventually(WAIT, &format!("PDB {name} settled"), || async {
            let pdb = api.get(name).await.ok()?;
            let s = pdb.status.as_ref()?;
            (s.observed_generation == pdb.metadata.generation
                && s.expected_pods > 0
                && s.current_healthy == s.expected_pods)
                .then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn mirror_pods(&self, resource: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/instance={resource},app.kubernetes.io/component=jwks-mirror"
            )))
            .await
            .unwrap()
            .items
    }

    /// Waits until the mirror runs exactly its wanted replicas, all Ready and none of `gone`.
    pub(crate) async fn wait_rolled_out(&self, resource: &str, gone: &[Pod]) {
        let deployments = self.api::<Deployment>();
        let name = format!("{resource}-jwks");
        let gone: Vec<String> = gone.iter().map(ResourceExt::name_any).collect();
        eventually(WAIT, "the mirror rolled out", || async {
            let d = deployments.get(&name).await.ok()?;
            let wanted = d.spec.as_ref()?.replicas?;
            let s = d.status.as_ref()?;
            let done = s.observed_generation == d.metadata.generation
                && s.updated_replicas == Some(wanted)
                && s.available_replicas == Some(wanted)
                && s.replicas == Some(wanted);
            let pods = self.mirror_pods(resource).await;
            (done
                && pods.len() == usize::try_from(wanted).ok()?
                && pods
                    .iter()
                    .all(|p| is_ready(p) && !gone.contains(&p.name_any())))
            .then_some(())
        })
        .await
        .unwrap();
    }

    async fn service_ip(&self, name: &str) -> String {
        self.api::<Service>()
            .get(name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .cluster_ip
            .unwrap()
    }

    /// Waits until `url` answers 200 (kube-proxy and the ingress controller program their
    /// routes a moment after the endpoints are ready) and returns that answer.
    pub(crate) async fn wait_served(&self, http: &reqwest::Client, url: &str) -> reqwest::Response {
        eventually(WAIT, &format!("{url} to answer 200"), || async {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        })
        .await
        .unwrap()
    }

    /// The fake WorkOS's control endpoints, reached through its ClusterIP from the host.
    async fn fake_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.service_ip("fake-workos").await)
    }

    async fn fake_fault(&self, fault: Value) {
        let response = plain_client()
            .put(self.fake_url("/_fake/fault").await)
            .header("content-type", "application/json")
            .body(fault.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "fake WorkOS took the fault {fault}");
    }

    async fn fake_hits(&self, path: &str) -> u64 {
        let body = plain_client()
            .get(self.fake_url("/_fake/hits").await)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let hits: BTreeMap<String, u64> = serde_json::from_str(&body).unwrap();
        hits.get(path).copied().unwrap_or(0)
    }

    /// HTTPS to the ingress controller for this tenant's host, trusting its test CA: DNS is
    /// replaced by the node's address, as a real client's resolver would give it.
    fn ingress_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(&self.host, (node().ip(), 443).into())
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// npm `jose` (createRemoteJWKSet) verifies `tokens` against `jwks_url` through the ingress.
    fn jose_verify(&self, jwks_url: &str, issuer: &str, tokens: &[&str]) -> Vec<Value> {
        let dir = jose_dir();
        let output = Command::new("node")
            .arg("verify.mjs")
            .args([jwks_url, issuer, "-"])
            .args(tokens)
            .env("WCA_RESOLVE", format!("{}={}", self.host, node().ip()))
            .env("NODE_EXTRA_CA_CERTS", &self.ca_file)
            .current_dir(dir)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "node failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many objects of each kind the resource has (by its instance label).
    async fn children(&self, resource: &str) -> BTreeMap<&'static str, usize> {
        let selector = format!("app.kubernetes.io/instance={resource}");
        BTreeMap::from([
            ("Deployment", self.count::<Deployment>(&selector).await),
            ("ReplicaSet", self.count::<ReplicaSet>(&selector).await),
            ("Pod", self.count::<Pod>(&selector).await),
            ("Service", self.count::<Service>(&selector).await),
            ("Ingress", self.count::<Ingress>(&selector).await),
            (
                "PodDisruptionBudget",
                self.count::<PodDisruptionBudget>(&selector).await,
            ),
            ("ConfigMap", self.count::<ConfigMap>(&selector).await),
        ])
    }

    /// How many `K` carry the labels of `selector` (every `K` for "").
    async fn count<K>(&self, selector: &str) -> usize
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let listed = self
            .api::<K>()
            .list(&ListParams::default().labels(selector))
            .await;
        listed.unwrap().items.len()
    }

    /// `Kind/name → resourceVersion` of the resources and everything the operator writes, once
    /// two reads a few seconds apart agree (the Deployment's status settles last).
    async fn settled_versions(&self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + WAIT;
        let mut last = self.versions().await;
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = self.versions().await;
            if now == last {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "did not settle: {last:?} → {now:?}"
            );
            last = now;
        }
    }

    async fn versions(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let all = ListParams::default();
        for r in self.api::<WorkOSConvexAuth>().list(&all).await.unwrap() {
            out.insert(
                format!("WorkOSConvexAuth/{}", r.name_any()),
                r.resource_version().unwrap(),
            );
        }
        macro_rules! kind {
            ($k:ty, $name:literal) => {
                for o in self.api::<$k>().list(&all).await.unwrap() {
                    out.insert(
                        format!("{}/{}", $name, o.name_any()),
                        o.resource_version().unwrap(),
                    );
                }
            };
        }
        kind!(ConfigMap, "ConfigMap");
        kind!(Deployment, "Deployment");
        kind!(Service, "Service");
        kind!(Ingress, "Ingress");
        kind!(PodDisruptionBudget, "PodDisruptionBudget");
        out
    }
}

// ---------------------------------------------------------------------------------------------
// A client loop through the ingress, bounded in time and count
// ---------------------------------------------------------------------------------------------

pub(crate) struct Load {
    began: Instant,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<Failure>>,
}

pub(crate) struct LoadReport {
    pub(crate) ok: usize,
    pub(crate) failures: Vec<Failure>,
}

/// A failed request of the client loop: when (since the loop began) and what.
pub(crate) struct Failure {
    at: Duration,
    what: String,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}s: {}", self.at.as_secs_f64(), self.what)
    }
}

impl Load {
    /// At most 100 requests a second, for at most 5 minutes or 30 000 requests.
    pub(crate) fn start(client: reqwest::Client, url: String) -> Self {
        let expected = keys_of(&fixture("jwks-rsa.json"));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let (stop_flag, ok_count) = (stop.clone(), ok.clone());
        // One origin for the failures' times and the test's own.
        let began = Instant::now();
        let task = tokio::spawn(async move {
            let deadline = began + Duration::from_secs(300);
            let mut failures = Vec::new();
            let mut sent = 0;
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < deadline && sent < 30_000 {
                sent += 1;
                let failed = match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if keys_of(&body) == expected => {
                            ok_count.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Ok(body) => Some(format!("unexpected body: {body:.200}")),
                        Err(e) => Some(format!("body: {e}")),
                    },
                    Ok(r) => Some(format!("HTTP {}", r.status())),
                    Err(e) => Some(format!("{e:?}")),
                };
                if let Some(what) = failed {
                    failures.push(Failure {
                        at: began.elapsed(),
                        what,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        });
        Self {
            began,
            stop,
            ok,
            task,
        }
    }

    fn successes(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    pub(crate) async fn wait_for_successes(&self, n: usize) {
        eventually(WAIT, "the client loop's first answers", || async {
            (self.successes() >= n).then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await.unwrap();
        LoadReport {
            ok: self.ok.load(Ordering::Relaxed),
            failures,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the kernel sees of a container
// ---------------------------------------------------------------------------------------------

/// The main process of a pod's container, found on the host through its cgroup (the kubelet's
/// cgroupfs driver names a container's cgroup after its containerd id).
struct ContainerProcess {
    pid: u32,
    cgroup: PathBuf,
}

impl ContainerProcess {
    fn of(pod: &Pod, container: &str) -> Self {
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == container))
            .and_then(|c| c.container_id.as_deref())
            .and_then(|id| id.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("{} has a running {container}", pod.name_any()))
            .to_string();
        let root = Path::new("/sys/fs/cgroup/pids/kubepods");
        let cgroup = find_dir(root, &id)
            .unwrap_or_else(|| panic!("no cgroup {id} under {}", root.display()));
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
        let pid = procs.lines().next().unwrap().trim().parse().unwrap();
        let relative = cgroup
            .strip_prefix("/sys/fs/cgroup/pids")
            .unwrap()
            .to_path_buf();
        Self {
            pid,
            cgroup: relative,
        }
    }

    fn status(&self, field: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} in /proc/{}/status", self.pid))
            .trim()
            .to_string()
    }

    /// Non-root 65532, no capabilities, no privilege escalation, seccomp filtering, and a
    /// read-only root filesystem: what the pod's securityContext asks for, as the kernel has it.
    fn assert_hardened(&self) {
        let ids = |field| -> Vec<String> {
            self.status(field)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(ids("Uid"), vec!["65532"; 4], "runs as user 65532");
        assert_eq!(ids("Gid"), vec!["65532"; 4], "runs as group 65532");
        assert_eq!(self.status("CapEff"), "0000000000000000", "no capability");
        assert_eq!(
            self.status("CapBnd"),
            "0000000000000000",
            "none can be gained"
        );
        assert_eq!(self.status("NoNewPrivs"), "1", "no privilege escalation");
        assert_eq!(
            self.status("Seccomp"),
            "2",
            "seccomp filter (RuntimeDefault)"
        );
        let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).unwrap();
        let root = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .expect("a root mount");
        let options = root.split(' ').nth(5).unwrap();
        assert!(
            options.split(',').any(|o| o == "ro"),
            "read-only root filesystem: {root}"
        );
    }

    fn memory_limit(&self) -> u64 {
        let file = Path::new("/sys/fs/cgroup/memory")
            .join(&self.cgroup)
            .join("memory.limit_in_bytes");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap()
    }
}

fn find_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() == name {
                return Some(path);
            }
            if let Some(found) = find_dir(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The API server's audit log (every request of a ServiceAccount)
// ---------------------------------------------------------------------------------------------

struct AuditEntry {
    user: String,
    verb: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    code: u16,
    at: Timestamp,
}

impl AuditEntry {
    /// `verb resource ns/name → code`, for failure messages.
    fn describe(&self) -> String {
        format!(
            "{} {} {}/{} → {}",
            self.verb,
            self.resource,
            self.namespace.as_deref().unwrap_or(""),
            self.name.as_deref().unwrap_or(""),
            self.code
        )
    }

    /// A child the operator server-side applies (not its status, not an Event).
    fn is_child(&self) -> bool {
        matches!(
            self.resource.as_str(),
            "configmaps" | "deployments" | "services" | "poddisruptionbudgets" | "ingresses"
        ) && self.subresource.is_none()
    }

    fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

struct AuditLog(Vec<AuditEntry>);

impl AuditLog {
    fn read() -> Self {
        let text = std::fs::read_to_string(node().audit_log()).unwrap();
        Self(
            text.lines()
                .filter_map(|line| {
                    let e: Value = serde_json::from_str(line).ok()?;
                    Some(AuditEntry {
                        user: e["user"]["username"].as_str()?.to_string(),
                        verb: e["verb"].as_str()?.to_string(),
                        resource: e["objectRef"]["resource"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        namespace: e["objectRef"]["namespace"].as_str().map(str::to_string),
                        name: e["objectRef"]["name"].as_str().map(str::to_string),
                        subresource: e["objectRef"]["subresource"].as_str().map(str::to_string),
                        code: u16::try_from(e["responseStatus"]["code"].as_u64()?).ok()?,
                        at: e["requestReceivedTimestamp"].as_str()?.parse().ok()?,
                    })
                })
                .collect(),
        )
    }

    fn by<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a AuditEntry> + 'a {
        self.0.iter().filter(move |e| e.user == user)
    }

    /// The chart's RBAC covers everything the operator does, in a pod, for real.
    fn assert_nothing_forbidden(&self) {
        let forbidden: Vec<String> = self
            .by(OPERATOR_USER)
            .filter(|e| e.code == 403)
            .map(AuditEntry::describe)
            .collect();
        assert!(
            forbidden.is_empty(),
            "requests the chart's RBAC refused: {forbidden:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// A CA made for one test and a serving certificate for one host.
struct TestCa {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestCa {
    fn issue(host: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL (node's TLS) takes a leaf whose issuer equals its subject for
        // self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "workos-convex-auth e2e test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![host.to_string()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, host);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn condition(resource: &WorkOSConvexAuth, type_: &str) -> workos_convex_auth::api::Condition {
    resource
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .cloned()
        .unwrap_or_else(|| panic!("condition {type_} in {:?}", resource.status))
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| panic!("{} has an IP", pod.name_any()))
}

/// Plain HTTP to pod and Service addresses on the node's bridge.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The keys of a JWKS document, as JSON values, in order.
fn keys_of(document: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| v["keys"].as_array().cloned())
        .unwrap_or_default()
}

fn assert_same_keys(served: &str, expected: &str) {
    let kids = |doc: &str| -> Vec<String> {
        keys_of(doc)
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(kids(served), kids(expected), "served: {served}");
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
