//! `spec.httpRoute` against the real apiserver with the real Gateway API CRDs (v1, from the
//! `sigs.k8s.io/gateway-api` Go module): the HTTPRoute created, updated and removed on a switch
//! to an Ingress; a Gateway controller's verdict (written to the route's status as one would)
//! reported as `RouteAccepted`; a route with an Ingress refused by the CRD's rule; and an
//! operator started on a cluster without the Gateway API.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::gateway::HTTPRoute;

use super::support::binary::Admin;
use super::support::conditions::{Want, wait_for};
use super::support::fixtures::{SpecExt, parent, resource, spec};
use super::support::scenario::{Ns, Scenario, run_operator};
use workos_convex_auth::api::{GatewayRef, HttpRouteSpec};
use workos_convex_auth::reconcile::reason::ConditionType::RouteAccepted;
use workos_convex_auth::reconcile::reason::Reason;

const WAIT: Duration = Duration::from_secs(30);

fn shared_with_gateway_api() -> &'static ControlPlane {
    let cp = ControlPlane::shared();
    // Server-side apply: installing twice (tests run in parallel) changes nothing.
    cp.install_gateway_api()
        .expect("the Gateway API CRDs install");
    cp
}

/// Waits for a condition of `name` as `want`ed; its message.
async fn condition(api: &Api<WorkOSConvexAuth>, name: &str, want: Want) -> String {
    wait_for(api, name, &want, WAIT).await.1.message
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
        spec("client_01A").with(|s| {
            s.http_route = Some(HttpRouteSpec {
                parent_refs: vec![GatewayRef {
                    section_name: Some("https".into()),
                    ..parent("public", Some("infra"))
                }],
                hostnames: vec!["jwks.acme.com".into()],
                path: Some("/workos".into()),
            })
        }),
    )
    .await;
    let route: HTTPRoute = s.appears("acme-jwks").await;
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

    let route = |want: Want| condition(&resources, "acme", want);
    // No Gateway controller has spoken yet.
    let pending = route(Want::fails(RouteAccepted).reason(Reason::RoutePending)).await;
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
    let refused = route(Want::fails(RouteAccepted).reason(Reason::RouteNotAccepted)).await;
    assert!(
        refused.contains("Gateway infra/public: Accepted=False (NotAllowedByListeners): no listener allows routes from this namespace"),
        "{refused}"
    );
    // (Ready is False here anyway: no mirror pod runs on an apiserver without a node. That a
    // refused route makes Ready False is a unit test of reconcile::status.)
    gateway_says(&routes, "acme-jwks", ("True", "Accepted", "")).await;
    let accepted = route(Want::holds(RouteAccepted).reason(Reason::Accepted)).await;
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
    s.gone::<HTTPRoute>("acme-jwks").await;
    let _: Ingress = s.appears("acme-jwks").await;
    // The status is written after the children: wait for it to drop the route's condition.
    eventually(WAIT, "RouteAccepted gone from status", || async {
        let status = resources.get("acme").await.ok()?.status?;
        status
            .conditions
            .iter()
            .all(|c| c.type_ != RouteAccepted.as_str())
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
    let resource = resource(
        "both",
        spec("client_01A")
            .ingress("jwks.acme.com")
            .http_route(vec![parent("public", None)], &["jwks.acme.com"]),
    );
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
    let operator = run_operator(client.clone(), &Admin::any(), &["--namespace", &ns]);
    let tenant = Ns::new(client.clone(), &ns, WAIT);
    tenant.create("plain", spec("client_01A")).await;
    let routed = spec("client_01B").http_route(vec![parent("public", None)], &["jwks.acme.com"]);
    tenant.create("routed", routed).await;
    // Everything else works: the ConfigMap of both.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    for cm in ["plain-convex-auth", "routed-convex-auth"] {
        eventually(WAIT, cm, || async { config_maps.get_opt(cm).await.ok()? })
            .await
            .unwrap();
    }
    let message = tenant.refused("routed", Reason::ApplyRejected).await;
    assert!(
        message.contains("HTTPRoute")
            && message.contains("the Gateway API CRDs were not installed")
            && message.contains("use spec.ingress"),
        "{message}"
    );
    assert!(!operator.is_finished(), "the operator keeps running");
    operator.abort();
}
