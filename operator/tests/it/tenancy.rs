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
