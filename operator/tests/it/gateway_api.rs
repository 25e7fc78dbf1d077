//! `spec.httpRoute` against the real apiserver with the real Gateway API CRDs (v1, from the
//! `sigs.k8s.io/gateway-api` Go module): the HTTPRoute created, updated and removed on a switch
//! to an Ingress; a Gateway controller's verdict (written to the route's status as one would)
//! reported as `RouteAccepted`; a route with an Ingress refused by the CRD's rule; and an
//! operator started on a cluster without the Gateway API.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::controller::{RunArgs, run_with_client};
use workos_convex_auth::gateway::HTTPRoute;

use super::controller::Scenario;

const WAIT: Duration = Duration::from_secs(30);

fn shared_with_gateway_api() -> &'static ControlPlane {
    let cp = ControlPlane::shared();
    // Server-side apply: installing twice (tests run in parallel) changes nothing.
    cp.install_gateway_api()
        .expect("the Gateway API CRDs install");
    cp
}

async fn condition(
    api: &Api<WorkOSConvexAuth>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> String {
    eventually(WAIT, &format!("{type_}={status} ({reason})"), || async {
        let r = api.get(name).await.ok()?;
        r.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_ && c.status == status && c.reason == reason)
            .map(|c| c.message)
    })
    .await
    .unwrap()
}

/// What a Gateway controller writes: one parent's `Accepted` and `ResolvedRefs`.
async fn gateway_says(routes: &Api<HTTPRoute>, name: &str, accepted: (&str, &str, &str)) {
    let (status, reason, message) = accepted;
    let now = "2026-11-27T00:00:00Z";
    let patch = json!({"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra", "name": "public"},
        "controllerName": "example.com/gateway-controller",
        "conditions": [
            {"type": "Accepted", "status": status, "reason": reason, "message": message, "lastTransitionTime": now, "observedGeneration": 1},
            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "", "lastTransitionTime": now, "observedGeneration": 1},
        ],
    }]}});
    routes
        .patch_status(
            name,
            &PatchParams::apply("example-gateway-controller").force(),
            &Patch::Apply(&json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "status": patch["status"],
            })),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_http_route_is_created_reports_its_gateway_and_goes_on_a_switch_to_an_ingress() {
    shared_with_gateway_api();
    let s = Scenario::new("gateway-route").await;
    let resources = s.api::<WorkOSConvexAuth>();
    let routes = s.api::<HTTPRoute>();
    s.create(
        "acme",
        json!({
            "clientId": "client_01A",
            "httpRoute": {
                "parentRefs": [{"name": "public", "namespace": "infra", "sectionName": "https"}],
                "hostnames": ["jwks.acme.com"],
                "path": "/workos",
            },
        }),
    )
    .await;
    let route: HTTPRoute = s.appears("acme-jwks", "the HTTPRoute").await;
    let spec = &route.spec;
    assert_eq!(spec.hostnames, ["jwks.acme.com"]);
    assert_eq!(spec.parent_refs.len(), 1);
    assert_eq!(spec.parent_refs[0].name, "public");
    assert_eq!(spec.parent_refs[0].namespace.as_deref(), Some("infra"));
    assert_eq!(spec.parent_refs[0].section_name.as_deref(), Some("https"));
    let rule = &spec.rules[0];
    assert_eq!(rule.backend_refs[0].name, "acme-jwks");
    assert_eq!(rule.backend_refs[0].port, Some(80));
    let path = rule.matches[0].path.as_ref().unwrap();
    assert_eq!(
        (path.type_.as_deref(), path.value.as_deref()),
        (Some("PathPrefix"), Some("/workos"))
    );
    let owner = &route.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("WorkOSConvexAuth", Some(true))
    );
    let jwks_url = eventually(WAIT, "jwksUrl", || async {
        resources.get("acme").await.ok()?.status?.jwks_url
    })
    .await
    .unwrap();
    assert_eq!(jwks_url, "https://jwks.acme.com/workos/sso/jwks/client_01A");

    // No Gateway controller has spoken yet.
    let pending = condition(&resources, "acme", "RouteAccepted", "False", "RoutePending").await;
    assert!(
        pending.contains("no Gateway controller has reported"),
        "{pending}"
    );
    // A controller refuses it, then accepts it.
    gateway_says(
        &routes,
        "acme-jwks",
        (
            "False",
            "NotAllowedByListeners",
            "no listener allows routes from this namespace",
        ),
    )
    .await;
    let refused = condition(
        &resources,
        "acme",
        "RouteAccepted",
        "False",
        "RouteNotAccepted",
    )
    .await;
    assert!(
        refused.contains("Gateway infra/public: Accepted=False (NotAllowedByListeners): no listener allows routes from this namespace"),
        "{refused}"
    );
    // (Ready is False here anyway: no mirror pod runs on an apiserver without a node. That a
    // refused route makes Ready False is a unit test of reconcile::status.)
    gateway_says(&routes, "acme-jwks", ("True", "Accepted", "")).await;
    let accepted = condition(&resources, "acme", "RouteAccepted", "True", "Accepted").await;
    assert!(
        accepted.contains("accepted by Gateway infra/public"),
        "{accepted}"
    );

    // Updated with the resource.
    s.patch_spec(
        "acme",
        json!({"httpRoute": {"hostnames": ["jwks2.acme.com"]}}),
    )
    .await;
    eventually(WAIT, "the new hostname", || async {
        let r = routes.get("acme-jwks").await.ok()?;
        (r.spec.hostnames == ["jwks2.acme.com"]).then_some(())
    })
    .await
    .unwrap();

    // Switched to an Ingress: the route goes, the Ingress comes.
    s.patch_spec(
        "acme",
        json!({"httpRoute": null, "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    s.gone::<HTTPRoute>("acme-jwks", "the HTTPRoute removed")
        .await;
    let _: Ingress = s.appears("acme-jwks", "the Ingress").await;
    // The status is written after the children: wait for it to drop the route's condition.
    eventually(WAIT, "RouteAccepted gone from status", || async {
        let status = resources.get("acme").await.ok()?.status?;
        status
            .conditions
            .iter()
            .all(|c| c.type_ != "RouteAccepted")
            .then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_http_route_with_an_ingress_is_refused_by_the_crd() {
    let cp = shared_with_gateway_api();
    let client = cp.client().await.unwrap();
    let ns = cp.namespace(&client, "gateway-both").await.unwrap();
    let resource: WorkOSConvexAuth = serde_json::from_value(json!({
        "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
        "metadata": {"name": "both"},
        "spec": {
            "clientId": "client_01A",
            "ingress": {"enabled": true, "host": "jwks.acme.com"},
            "httpRoute": {"parentRefs": [{"name": "public"}], "hostnames": ["jwks.acme.com"]},
        },
    }))
    .unwrap();
    let err = Api::<WorkOSConvexAuth>::namespaced(client, &ns)
        .create(&PostParams::default(), &resource)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("set spec.ingress or spec.httpRoute, not both"),
        "{err}"
    );
}

#[tokio::test]
async fn without_the_gateway_api_the_operator_runs_and_says_why_there_is_no_route() {
    let bare = ControlPlane::start().unwrap();
    bare.install_crds().unwrap();
    let client = bare.client().await.unwrap();
    let ns = bare.namespace(&client, "no-gateway-api").await.unwrap();
    let args = RunArgs::parse_flags([
        "--namespace",
        &ns,
        "--admin-addr",
        "127.0.0.1:0",
        "--log-format",
        "text",
        "--proxy-image",
        "example.com/workos-convex-auth:test",
    ])
    .unwrap();
    let operator = {
        let client: Client = client.clone();
        tokio::spawn(async move { run_with_client(client, args).await })
    };
    let resources: Api<WorkOSConvexAuth> = Api::namespaced(client.clone(), &ns);
    for (name, spec) in [
        ("plain", json!({"clientId": "client_01A"})),
        (
            "routed",
            json!({"clientId": "client_01B", "httpRoute": {"parentRefs": [{"name": "public"}], "hostnames": ["jwks.acme.com"]}}),
        ),
    ] {
        let r: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        resources.create(&PostParams::default(), &r).await.unwrap();
    }
    // Everything else works: the ConfigMap of both.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for cm in ["plain-convex-auth", "routed-convex-auth"] {
        eventually(WAIT, cm, || async { config_maps.get_opt(cm).await.ok()? })
            .await
            .unwrap();
    }
    let message = condition(&resources, "routed", "Ready", "False", "ApplyRejected").await;
    assert!(
        message.contains("HTTPRoute")
            && message.contains("the Gateway API CRDs were not installed")
            && message.contains("use spec.ingress"),
        "{message}"
    );
    assert!(!operator.is_finished(), "the operator keeps running");
    operator.abort();
}
