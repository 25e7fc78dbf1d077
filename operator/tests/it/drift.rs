//! Drift by deletion, against the real apiserver (issue 21): a settled resource — `Ready=True`,
//! its next reconcile an hour away (`report::RESYNC`), none running — gets a deleted child back
//! within 2 s, with the same content, owned by it again, created exactly once (the audit log of
//! the operator's ServiceAccount). Every child kind, in both modes where it exists. And a
//! deleted `clientIdFrom` ConfigMap (not a child: watched by name) turns the resource
//! `Ready=False` naming it within 2 s, and `Ready=True` again when it comes back.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::gateway::HTTPRoute;

use super::support::audit;
use super::support::conditions::{Want, wait_for};
use super::support::fixtures::{SpecExt, from_config_map, parent, spec};
use super::support::scenario::Scenario;
use workos_convex_auth::reconcile::reason::ConditionType::{ProxyAvailable, Ready};

/// How soon a deleted child must be back: far below the 15 s requeue of a resource whose mirror
/// is unavailable, and the hour of a Ready one, so only the deletion itself can have brought it.
const PUT_BACK: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(30);

/// `wca_reconciles_total` of the scenario's operator.
async fn reconciles(s: &Scenario) -> f64 {
    s.admin
        .metric("wca_reconciles_total")
        .await
        .expect("wca_reconciles_total of the admin server's metrics")
}

/// Waits until `name` is settled: `Ready=True` (so its next reconcile is `report::RESYNC`, an
/// hour, away) and no reconcile ran for a second.
async fn settled(s: &Scenario, name: &str) {
    s.condition(name, Want::holds(Ready)).await;
    eventually(WAIT, &format!("{name} settled"), || async {
        let before = reconciles(s).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (reconciles(s).await == before).then_some(())
    })
    .await
    .unwrap();
}

/// What the kube-controller-manager would write once the mirror's pods are up (none runs here).
async fn mirror_pods_available(s: &Scenario, resource: &str) {
    let name = format!("{resource}-jwks");
    s.appears::<Deployment>(&name).await;
    let status = json!({"status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
    s.api::<Deployment>()
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// The part of a child the operator decides (what its re-creation must reproduce).
trait Content {
    fn content(&self) -> Value;
}

fn spec_of(object: &impl Serialize) -> Value {
    serde_json::to_value(object).unwrap()["spec"].clone()
}

impl Content for ConfigMap {
    fn content(&self) -> Value {
        json!({"data": self.data, "labels": self.labels()})
    }
}

impl Content for Deployment {
    fn content(&self) -> Value {
        json!({"spec": spec_of(self), "labels": self.labels()})
    }
}

impl Content for Service {
    fn content(&self) -> Value {
        let mut spec = spec_of(self);
        // Allocated by the apiserver: a new Service gets new ones.
        for allocated in ["clusterIP", "clusterIPs"] {
            spec.as_object_mut().unwrap().remove(allocated);
        }
        json!({"spec": spec, "labels": self.labels()})
    }
}

impl Content for PodDisruptionBudget {
    fn content(&self) -> Value {
        json!({"spec": spec_of(self), "labels": self.labels()})
    }
}

impl Content for Ingress {
    fn content(&self) -> Value {
        json!({"spec": spec_of(self), "labels": self.labels()})
    }
}

impl Content for NetworkPolicy {
    fn content(&self) -> Value {
        json!({"spec": spec_of(self), "labels": self.labels()})
    }
}

impl Content for HTTPRoute {
    fn content(&self) -> Value {
        json!({"spec": spec_of(self), "labels": self.labels()})
    }
}

/// What the owner becomes once a child is back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Settled again.
    Settles,
    /// `Ready=False`: a new mirror Deployment has no available pods until the
    /// controller-manager (none runs here) says so.
    Unavailable,
}

/// Deletes the child `K` named `name` of the settled resource `owner` and asserts it comes back
/// within [`PUT_BACK`], the same, controlled by `owner`, created once.
async fn deleted_and_put_back<K>(s: &Scenario, owner: &str, name: &str, then: Then)
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Content
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let kind = K::kind(&());
    settled(s, owner).await;
    let owner_uid = s
        .api::<WorkOSConvexAuth>()
        .get(owner)
        .await
        .unwrap()
        .uid()
        .unwrap();
    let api = s.api::<K>();
    let before = api.get(name).await.unwrap();
    let since = Timestamp::now();
    api.delete(name, &DeleteParams::default()).await.unwrap();
    let deleted = Instant::now();
    let after = eventually(PUT_BACK, &format!("{kind} {name} put back"), || async {
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .filter(|object| object.uid() != before.uid())
    })
    .await
    .unwrap();
    let took = deleted.elapsed();
    assert_eq!(after.content(), before.content(), "{kind} {name} differs");
    assert!(
        after.owner_references().iter().any(|o| o.uid == owner_uid
            && o.controller == Some(true)
            && o.kind == "WorkOSConvexAuth"),
        "{kind} {name} is not controlled by {owner}: {:?}",
        after.owner_references()
    );
    // Whatever the re-creation set off has run, so a second create would show.
    match then {
        Then::Settles => settled(s, owner).await,
        Then::Unavailable => {
            let message = s.condition(owner, Want::fails(ProxyAvailable)).await;
            assert!(message.contains("0/2 mirror pods available"), "{message}");
        }
    }
    let plural = K::plural(&());
    let creates: Vec<audit::Write> =
        audit::writes_by(&ControlPlane::shared().audit_log(), &s.ns, since)
            .into_iter()
            .filter(|w| w.verb == "create" && w.resource == plural.as_ref())
            .collect();
    assert_eq!(creates.len(), 1, "{kind} {name}: {creates:?}");
    eprintln!("{kind} {name} deleted: put back in {took:?}");
}

#[tokio::test]
async fn a_deleted_config_map_of_a_settled_direct_resource_is_put_back() {
    let s = Scenario::audited("drift direct").await;
    s.create("acme", spec("client_01A").direct()).await;
    deleted_and_put_back::<ConfigMap>(&s, "acme", "acme-convex-auth", Then::Settles).await;
}

#[tokio::test]
async fn every_deleted_child_of_a_settled_proxy_resource_is_put_back() {
    let s = Scenario::audited("drift proxy").await;
    s.create("acme", spec("client_01A").ingress("jwks.acme.com"))
        .await;
    mirror_pods_available(&s, "acme").await;
    deleted_and_put_back::<ConfigMap>(&s, "acme", "acme-convex-auth", Then::Settles).await;
    deleted_and_put_back::<Service>(&s, "acme", "acme-jwks", Then::Settles).await;
    deleted_and_put_back::<PodDisruptionBudget>(&s, "acme", "acme-jwks", Then::Settles).await;
    deleted_and_put_back::<Ingress>(&s, "acme", "acme-jwks", Then::Settles).await;
    deleted_and_put_back::<Deployment>(&s, "acme", "acme-jwks", Then::Unavailable).await;
    mirror_pods_available(&s, "acme").await;
    settled(&s, "acme").await;
}

/// The mirror's NetworkPolicy (`--mirror-network-policy`), the seventh kind of child.
#[tokio::test]
async fn a_deleted_network_policy_of_a_settled_resource_is_put_back() {
    let s = Scenario::audited_with(
        "drift netpol",
        &[
            "--mirror-network-policy",
            "--mirror-network-policy-from-namespaces",
            "traefik",
        ],
    )
    .await;
    s.create("acme", spec("client_01A")).await;
    let policy: NetworkPolicy = s.appears("acme-jwks").await;
    let from = serde_json::to_value(&policy).unwrap()["spec"]["ingress"][0]["from"][0]
        ["namespaceSelector"]["matchExpressions"][0]["values"]
        .clone();
    assert_eq!(from, json!([s.ns, "traefik"]));
    mirror_pods_available(&s, "acme").await;
    deleted_and_put_back::<NetworkPolicy>(&s, "acme", "acme-jwks", Then::Settles).await;
}

#[tokio::test]
async fn a_deleted_http_route_of_a_settled_resource_is_put_back() {
    ControlPlane::shared()
        .install_gateway_api()
        .expect("the Gateway API CRDs install");
    let s = Scenario::audited("drift route").await;
    s.create(
        "acme",
        spec("client_01A").http_route(vec![parent("public", Some("infra"))], &["jwks.acme.com"]),
    )
    .await;
    mirror_pods_available(&s, "acme").await;
    deleted_and_put_back::<HTTPRoute>(&s, "acme", "acme-jwks", Then::Settles).await;
}

/// Not a child: a ConfigMap the resource reads its client id from, watched by kube-runtime's
/// own `watches` (deletions included). Kept as it was.
#[tokio::test]
async fn a_deleted_referenced_config_map_is_reported_at_once_and_its_return_recovers() {
    let s = Scenario::audited("drift reference").await;
    let source = json!({"id": "client_01ONE"});
    s.create_config_map("workos", source.clone()).await;
    s.create("acme", from_config_map("workos", "id").direct())
        .await;
    settled(&s, "acme").await;
    s.api::<ConfigMap>()
        .delete("workos", &DeleteParams::default())
        .await
        .unwrap();
    let ready = Want::fails(Ready);
    let message = wait_for(&s.api(), "acme", &ready, PUT_BACK).await.1.message;
    assert!(
        message.contains(&format!("ConfigMap {}/workos", s.ns)),
        "{message}"
    );
    s.create_config_map("workos", source).await;
    s.condition("acme", Want::holds(Ready)).await;
}
