//! Serving the keys on the real node: a resource in mode Proxy serves them through its Service
//! and the ingress controller to a real JWT client, and an outage of WorkOS is served stale,
//! then fails readiness, then recovers.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{Value, json};
use wca_test_harness::eventually;
use workos_convex_auth::reconcile::reason::{ConditionType, Reason};

use super::common::*;
use super::support::conditions::{Want, condition};
use super::support::fixtures::{SpecExt, spec};
use super::support::keys::sign_rs256;
use super::support::mirror::{fixture, metric_value};

/// A resource in mode Proxy: mirror pods Ready, the Service and the Ingress serve the keys the
/// fake WorkOS holds, and a token signed with that key verifies with `jose` against the JWKS
/// URL the generated config gives Convex, fetched through the ingress controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_serves_its_keys_through_the_service_and_the_ingress() {
    let (_serial, t) = begin("keys").await;
    t.apply_ready("acme", &t.ingress_spec()).await;
    // Ready comes with the first available pod; wait for both.
    let resource = t.wait_both_mirror_pods("acme").await;

    let status = resource.status.clone().unwrap();
    let jwks_url = t.jwks_url();
    assert_eq!(status.jwks_url.as_deref(), Some(jwks_url.as_str()));
    let proxy = condition(&resource, ConditionType::ProxyAvailable);
    assert_eq!(
        (proxy.status.as_str(), proxy.message.as_str()),
        ("True", "2/2 mirror pods available")
    );
    assert_eq!(
        condition(&resource, ConditionType::PublicJwksUrl).status,
        "True"
    );
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
    let other = get(
        &http,
        &format!("http://{service_ip}/sso/jwks/client_01OTHER"),
    )
    .await;
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

/// WorkOS fails: the mirror serves the keys it holds until maxStale, then answers 503 and
/// reports not ready; the resource's Ready falls, saying why; WorkOS recovers, so does all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_outage_serves_stale_keys_then_fails_readiness_and_recovers() {
    let (_serial, t) = begin("outage").await;
    let spec = spec(CLIENT_ID).upstream("http://fake-workos").proxy(|p| {
        p.refresh_interval = "10s".into();
        p.max_stale = "20s".into();
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
                let stale = get(&http, &format!("http://{ip}:8080/sso/jwks/{CLIENT_ID}")).await;
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
    let resource = t
        .wait("acme", Want::fails(ConditionType::Ready).current(), WAIT)
        .await;
    let ready = condition(&resource, ConditionType::Ready);
    assert_eq!(ready.reason, Reason::Unavailable.as_str());
    assert!(
        ready.message.starts_with("0/2 mirror pods available: 2 running but not ready: the mirror is ready only while it holds signing keys its upstream confirmed within spec.proxy.maxStale"),
        "{}",
        ready.message
    );
    assert!(t.mirror_pods("acme").await.iter().all(|p| !is_ready(p)));

    t.fake_fault(json!("None")).await;
    t.wait("acme", Want::holds(ConditionType::Ready).current(), WAIT)
        .await;
    let recovered = http.get(&keys_url).send().await.unwrap();
    assert_eq!(recovered.status(), 200);
}
