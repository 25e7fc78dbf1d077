//! Tenants of one cluster (issue 22), against the real apiserver with one operator for every
//! namespace, as the chart runs it by default. These tests start a control plane of their own:
//! on the shared one, other tests run an operator per namespace.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::controller::{RunArgs, run_with_client};
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
        let mut flags = vec![
            "--proxy-image",
            "example.com/workos-convex-auth:test",
            "--admin-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ];
        flags.extend(policy);
        let args = RunArgs::parse_flags(flags).unwrap();
        let operator_client = client.clone();
        let operator = tokio::spawn(async move {
            run_with_client(operator_client, args)
                .await
                .expect("the operator runs");
        });
        Self {
            cp,
            client,
            operator,
        }
    }

    async fn tenant(&self, name: &str) -> Tenant {
        Tenant {
            ns: self.cp.namespace(&self.client, name).await.unwrap(),
            client: self.client.clone(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.operator.abort();
    }
}

/// One namespace, written by one tenant.
struct Tenant {
    ns: String,
    client: Client,
}

impl Tenant {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn create(&self, name: &str, spec: Value) {
        let resource: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        self.api::<WorkOSConvexAuth>()
            .create(&PostParams::default(), &resource)
            .await
            .unwrap();
    }

    /// Waits for `Ready=False` with `reason` and returns the message.
    async fn refused(&self, name: &str, reason: &str) -> String {
        let api = self.api::<WorkOSConvexAuth>();
        eventually(WAIT, &format!("{name} refused with {reason}"), || async {
            api.get(name)
                .await
                .ok()?
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason == reason)
                .map(|c| c.message)
        })
        .await
        .unwrap()
    }

    async fn exists<K>(&self, name: &str) -> bool
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        self.api::<K>().get_opt(name).await.unwrap().is_some()
    }

    async fn appears<K>(&self, name: &str, within: Duration)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api = self.api::<K>();
        eventually(within, &format!("{} {name}", K::kind(&())), || async {
            api.get_opt(name).await.ok().flatten()
        })
        .await
        .unwrap();
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
    a.create(
        "team-a-auth",
        json!({"clientId": CLIENT, "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    a.appears::<Ingress>("team-a-auth-jwks", WAIT).await;

    // The same host and path, A's public client id, B's own AuthKit domain as the upstream.
    b.create(
        "squat",
        json!({"clientId": CLIENT, "authDomain": "evil.authkit.app", "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    // A longer path on A's host, which an ingress controller would prefer.
    b.create(
        "shadow",
        json!({"clientId": CLIENT, "ingress": {"enabled": true, "host": "jwks.acme.com", "path": "/sso"}}),
    )
    .await;
    // The same through a shared Gateway.
    b.create(
        "route",
        json!({"clientId": CLIENT, "httpRoute": {"parentRefs": [{"name": "public", "namespace": "infra"}], "hostnames": ["jwks.acme.com"]}}),
    )
    .await;
    for (name, field) in [
        ("squat", "spec.ingress.host"),
        ("shadow", "spec.ingress.host"),
        ("route", "spec.httpRoute.hostnames[0]"),
    ] {
        let message = b.refused(name, "HostTaken").await;
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
        json!({"clientId": CLIENT, "httpRoute": {"parentRefs": [{"name": "public", "namespace": "infra"}]}}),
    )
    .await;
    let message = b.refused("every-host", "InvalidSpec").await;
    assert!(
        message.starts_with("spec.httpRoute.hostnames: empty"),
        "{message}"
    );
    assert!(!b.exists::<HTTPRoute>("every-host-jwks").await);

    // A's own namespace shares its host.
    a.create(
        "team-a-staging",
        json!({"clientId": "client_01TENANTASTAGING000000000", "ingress": {"enabled": true, "host": "jwks.acme.com", "path": "/staging"}}),
    )
    .await;
    a.appears::<Ingress>("team-a-staging-jwks", WAIT).await;

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
    b.appears::<Ingress>("squat-jwks", FREED).await;
    b.appears::<Ingress>("shadow-jwks", FREED).await;
    b.appears::<HTTPRoute>("route-jwks", FREED).await;
}

/// What a tenant stores in its ConfigMaps does not reach the operator's memory: 60 ConfigMaps
/// of 900 KiB, half of them labelled as the operator's own (any tenant can set the label),
/// raise the operator process's RSS by at most 16 MiB (54 MB were stored). The ConfigMaps that
/// `clientIdFrom` may name are watched by metadata only, and the children's caches keep only
/// what the reconcile reads. Measured from `/proc`, on the shared control plane, the operator
/// watching the tenant's namespace.
#[tokio::test]
async fn a_tenants_config_maps_do_not_grow_the_operator() {
    use std::process::{Command, Stdio};

    use k8s_openapi::api::core::v1::ConfigMap;

    use super::support::process::{KillOnDrop, rss_kib};

    let cp = ControlPlane::shared();
    let client = cp.client().await.unwrap();
    let tenant = Tenant {
        ns: cp.namespace(&client, "tenant memory").await.unwrap(),
        client,
    };
    let operator = KillOnDrop::new(
        Command::new(env!("CARGO_BIN_EXE_workos-convex-auth"))
            .args([
                "run",
                "--namespace",
                &tenant.ns,
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .args(["--log-format", "text"])
            .args(["--proxy-image", "example.com/workos-convex-auth:test"])
            .arg("--kubeconfig")
            .arg(cp.kubeconfig())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = operator.id();
    // Settled: caches listed, one resource reconciled.
    tenant
        .create(
            "acme",
            json!({"clientId": "client_01A", "jwks": {"mode": "Direct"}}),
        )
        .await;
    tenant.appears::<ConfigMap>("acme-convex-auth", WAIT).await;
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
    tenant
        .create(
            "after",
            json!({"clientId": "client_01B", "jwks": {"mode": "Direct"}}),
        )
        .await;
    tenant.appears::<ConfigMap>("after-convex-auth", WAIT).await;
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
    let cluster = Cluster::start(&[
        "--allow-http-upstream",
        "--allowed-upstream-networks",
        "127.0.0.0/8",
        "--allowed-upstream-hosts",
        "127.0.0.1",
    ])
    .await;
    let slow = cluster.tenant("slow").await;
    let other = cluster.tenant("other").await;
    for i in 0..40 {
        slow.create(
            &format!("slow-{i}"),
            json!({"clientId": format!("client_01SLOW{i}"), "jwks": {"mode": "Inline", "upstreamBase": silent.url()}}),
        )
        .await;
    }
    // Every worker the slow namespace may hold is waiting on its upstream by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let created = std::time::Instant::now();
    other
        .create(
            "acme",
            json!({"clientId": "client_01OTHER", "jwks": {"mode": "Direct"}}),
        )
        .await;
    other
        .appears::<ConfigMap>("acme-convex-auth", Duration::from_secs(5))
        .await;
    eprintln!(
        "another namespace's ConfigMap {:?} after its resource, beside 40 stuck resources",
        created.elapsed()
    );
}
