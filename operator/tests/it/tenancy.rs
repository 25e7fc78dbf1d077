//! Tenants of one cluster (issue 22), against the real apiserver with one operator for every
//! namespace, as the chart runs it by default. These tests start a control plane of their own:
//! on the shared one, other tests run an operator per namespace.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;
use wca_test_harness::ControlPlane;
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::reconcile::reason::Reason;

use super::support::binary::{Admin, Binary, LOOPBACK_UPSTREAM};
use super::support::fixtures::{SpecExt, parent, spec};
use super::support::scenario::{Ns, run_operator};
use workos_convex_auth::gateway::HTTPRoute;

const WAIT: Duration = Duration::from_secs(30);
/// A refused resource asks again every `report::HOST_RECHECK` (15 s).
const FREED: Duration = Duration::from_secs(45);

/// A control plane with the CRDs (the Gateway API's too) and one operator for all namespaces.
struct Cluster {
    cp: ControlPlane,
    client: Client,
    operator: JoinHandle<()>,
}

impl Cluster {
    async fn start(policy: &[&str]) -> Self {
        let cp = ControlPlane::start().expect("start a control plane");
        cp.install_crds().expect("the CRDs install");
        cp.install_gateway_api()
            .expect("the Gateway API CRDs install");
        let client = cp.client().await.unwrap();
        let operator = run_operator(client.clone(), &Admin::any(), policy);
        Self {
            cp,
            client,
            operator,
        }
    }

    async fn tenant(&self, name: &str) -> Ns {
        let ns = self.cp.namespace(&self.client, name).await.unwrap();
        Ns::new(self.client.clone(), &ns, WAIT)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.operator.abort();
    }
}

/// A's resource; B's resources try to take its host every way the Ingress and Gateway APIs
/// allow. None gets an Ingress, an HTTPRoute or a mirror; A's namespace may share its own host;
/// once A is gone, the host is B's.
#[tokio::test]
async fn a_host_belongs_to_the_namespace_that_served_it_first() {
    let cluster = Cluster::start(&[]).await;
    let a = cluster.tenant("tenant a").await;
    let b = cluster.tenant("tenant b").await;
    const CLIENT: &str = "client_01TENANTA000000000000000";
    a.create("team-a-auth", spec(CLIENT).ingress("jwks.acme.com"))
        .await;
    a.appears::<Ingress>("team-a-auth-jwks").await;

    // The same host and path, A's public client id, B's own AuthKit domain as the upstream.
    b.create(
        "squat",
        spec(CLIENT)
            .with(|s| s.auth_domain = Some("evil.authkit.app".into()))
            .ingress("jwks.acme.com"),
    )
    .await;
    // A longer path on A's host, which an ingress controller would prefer.
    b.create(
        "shadow",
        spec(CLIENT)
            .ingress("jwks.acme.com")
            .with(|s| s.ingress.path = Some("/sso".into())),
    )
    .await;
    // The same through a shared Gateway.
    b.create(
        "route",
        spec(CLIENT).http_route(vec![parent("public", Some("infra"))], &["jwks.acme.com"]),
    )
    .await;
    for (name, field) in [
        ("squat", "spec.ingress.host"),
        ("shadow", "spec.ingress.host"),
        ("route", "spec.httpRoute.hostnames[0]"),
    ] {
        let message = b.refused(name, Reason::HostTaken).await;
        assert!(
            message.starts_with(&format!("{field}: host \"jwks.acme.com\" is already served by a WorkOSConvexAuth in another namespace")),
            "{message}"
        );
        for secret in [&a.ns, "team-a-auth", CLIENT] {
            assert!(!message.contains(secret), "{message} names {secret}");
        }
        assert!(!b.exists::<Ingress>(&format!("{name}-jwks")).await);
        assert!(!b.exists::<HTTPRoute>(&format!("{name}-jwks")).await);
        assert!(!b.exists::<Deployment>(&format!("{name}-jwks")).await);
    }
    // A route without hostnames would answer every host of the Gateway's listeners.
    b.create(
        "every-host",
        spec(CLIENT).http_route(vec![parent("public", Some("infra"))], &[]),
    )
    .await;
    let message = b.refused("every-host", Reason::InvalidSpec).await;
    assert!(
        message.starts_with("spec.httpRoute.hostnames: empty"),
        "{message}"
    );
    assert!(!b.exists::<HTTPRoute>("every-host-jwks").await);

    // A's own namespace shares its host.
    a.create(
        "team-a-staging",
        spec("client_01TENANTASTAGING000000000")
            .ingress("jwks.acme.com")
            .with(|s| s.ingress.path = Some("/staging".into())),
    )
    .await;
    a.appears::<Ingress>("team-a-staging-jwks").await;

    // A leaves: the resources go, and their children with them (the garbage collector's part,
    // done here by hand: no controller-manager runs on this control plane).
    for name in ["team-a-auth", "team-a-staging"] {
        a.api::<WorkOSConvexAuth>()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        a.api::<Ingress>()
            .delete(&format!("{name}-jwks"), &DeleteParams::default())
            .await
            .unwrap();
    }
    // The host is free, and B's resources share it (one namespace) as they ask again.
    b.appears_within::<Ingress>("squat-jwks", FREED).await;
    b.appears_within::<Ingress>("shadow-jwks", FREED).await;
    b.appears_within::<HTTPRoute>("route-jwks", FREED).await;
}

/// What a tenant stores in its ConfigMaps does not reach the operator's memory: 60 ConfigMaps
/// of 900 KiB, half of them labelled as the operator's own (any tenant can set the label),
/// raise the operator process's RSS by at most 16 MiB (54 MB were stored). The ConfigMaps that
/// `clientIdFrom` may name are watched by metadata only, and the children's caches keep only
/// what the reconcile reads. Measured from `/proc`, on the shared control plane, the operator
/// watching the tenant's namespace.
#[tokio::test]
async fn a_tenants_config_maps_do_not_grow_the_operator() {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::support::process::rss_kib;

    let cp = ControlPlane::shared();
    let tenant = Ns::fresh(cp, "tenant memory", WAIT).await;
    let operator = Binary::operator(cp.kubeconfig(), &tenant.ns, &Admin::any())
        .log_format("text")
        .args(["--proxy-image", "example.com/workos-convex-auth:test"])
        .spawn();
    let pid = operator.id();
    // Settled: caches listed, one resource reconciled.
    tenant.create("acme", spec("client_01A").direct()).await;
    tenant.appears::<ConfigMap>("acme-convex-auth").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(pid);

    let blob = "x".repeat(900 * 1024);
    let config_maps = tenant.api::<ConfigMap>();
    for i in 0..60 {
        let labels = if i % 2 == 0 {
            json!({"app.kubernetes.io/managed-by": "workos-convex-auth", "app.kubernetes.io/instance": "acme"})
        } else {
            json!({})
        };
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("blob-{i}"), "labels": labels, "annotations": {"tenant.example/blob": &blob[..100 * 1024]}},
            "data": {"blob": blob},
        }))
        .unwrap();
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    // The operator has taken every event in once a resource created after them is reconciled
    // (the watches run side by side; a few seconds more for the slowest).
    tenant.create("after", spec("client_01B").direct()).await;
    tenant.appears::<ConfigMap>("after-convex-auth").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid);
    let grown = after.saturating_sub(before);
    eprintln!(
        "operator RSS {before} KiB → {after} KiB (+{grown} KiB) with 60 ConfigMaps of 900 KiB in the tenant's namespace"
    );
    assert!(grown <= 16 * 1024, "the operator grew by {grown} KiB");
}

/// One namespace cannot take every reconcile worker: 40 resources whose upstream accepts
/// connections and never answers (mode Inline: the operator fetches inside the reconcile) hold
/// at most their namespace's share (a quarter of the 16 workers), and a resource of another
/// namespace gets its ConfigMap within 5 s.
#[tokio::test]
async fn a_namespace_of_slow_upstreams_does_not_starve_the_others() {
    use k8s_openapi::api::core::v1::ConfigMap;

    let silent = super::support::process::SilentServer::start().await;
    let cluster = Cluster::start(&LOOPBACK_UPSTREAM).await;
    let slow = cluster.tenant("slow").await;
    let other = cluster.tenant("other").await;
    for i in 0..40 {
        slow.create(
            &format!("slow-{i}"),
            spec(&format!("client_01SLOW{i}")).inline(silent.url()),
        )
        .await;
    }
    // Every worker the slow namespace may hold is waiting on its upstream by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let created = std::time::Instant::now();
    other.create("acme", spec("client_01OTHER").direct()).await;
    other
        .appears_within::<ConfigMap>("acme-convex-auth", Duration::from_secs(5))
        .await;
    eprintln!(
        "another namespace's ConfigMap {:?} after its resource, beside 40 stuck resources",
        created.elapsed()
    );
}
