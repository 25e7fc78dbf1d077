//! `spec.httpRoute` through a real Gateway (issue 24): the node's Traefik is the Gateway API
//! controller (`tests/node/addons/traefik.yaml`: GatewayClass `traefik`, Gateway `traefik/public`,
//! an HTTP listener `web`). Traefik itself accepts the operator's HTTPRoute (`RouteAccepted`
//! comes from the route status Traefik writes), the keys are fetched through the Gateway, and a
//! mirror rollout under a client loop fails no request, as through the Ingress.

use std::time::Duration;

use kube::api::Api;
use workos_convex_auth::api::GatewayRef;
use workos_convex_auth::gateway::HTTPRoute;
use workos_convex_auth::reconcile::reason::ConditionType;

use super::common::{CLIENT_ID, Load, WAIT, begin, node};
use super::support::conditions::{Want, condition};
use super::support::fixtures::{SpecExt, parent, spec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_route_accepted_by_traefik_serves_the_keys_through_a_rollout() {
    let (_serial, t) = begin("gateway").await;
    let host = format!("jwks.{}.gateway.test", t.ns);
    let web = GatewayRef {
        section_name: Some("web".into()),
        ..parent("public", Some("traefik"))
    };
    let spec = spec(CLIENT_ID)
        .upstream("http://fake-workos")
        .http_route(vec![web], &[&host]);
    t.apply_resource("acme", &spec).await;
    let accepted = Want::holds(ConditionType::RouteAccepted).current();
    let accepted = t.wait("acme", accepted, WAIT).await;
    eprintln!(
        "RouteAccepted: {:?}",
        condition(&accepted, ConditionType::RouteAccepted).message
    );
    // The verdict is Traefik's own: its controller name on the route's parent status.
    let route = Api::<HTTPRoute>::namespaced(t.client.clone(), &t.ns)
        .get("acme-jwks")
        .await
        .unwrap();
    let parents = serde_json::to_value(&route).unwrap()["status"]["parents"].clone();
    assert_eq!(
        parents[0]["controllerName"], "traefik.io/gateway-controller",
        "{parents}"
    );
    t.wait_ready("acme").await;

    // Through the Gateway: the node's address, port 80 (the `web` listener), the route's host.
    let client = reqwest::Client::builder()
        .resolve(&host, (node().ip(), 80).into())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://{host}/sso/jwks/{CLIENT_ID}");
    t.wait_served(&client, &url).await;
    let load = Load::start(client, url);
    load.wait_for_successes(20).await;

    let before = t.mirror_pods("acme").await;
    let spec = spec.proxy(|p| p.refresh_interval = "4m".into());
    t.apply_resource("acme", &spec).await;
    t.wait_rolled_out("acme", &before).await;
    let report = load.stop().await;
    eprintln!(
        "{} requests through the Gateway during the rollout, {} failed",
        report.ok,
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "failed requests through the Gateway: {:?}",
        report.failures
    );
    assert!(report.ok >= 100, "the client kept fetching: {}", report.ok);
}
