//! `spec.httpRoute` through a real Gateway (issue 24): the node's Traefik is the Gateway API
//! controller (`tests/node/addons/traefik.yaml`: GatewayClass `traefik`, Gateway `traefik/public`,
//! an HTTP listener `web`). Traefik itself accepts the operator's HTTPRoute (`RouteAccepted`
//! comes from the route status Traefik writes), the keys are fetched through the Gateway, and a
//! mirror rollout under a client loop fails no request, as through the Ingress.

use std::time::Duration;

use kube::api::Api;
use serde_json::json;
use workos_convex_auth::gateway::HTTPRoute;

use super::node::{CLIENT_ID, Load, WAIT, begin, node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_route_accepted_by_traefik_serves_the_keys_through_a_rollout() {
    let (_serial, t) = begin("gateway").await;
    let host = format!("jwks.{}.gateway.test", t.ns);
    let mut spec = json!({
        "clientId": CLIENT_ID,
        "jwks": {"upstreamBase": "http://fake-workos"},
        "httpRoute": {
            "parentRefs": [{"name": "public", "namespace": "traefik", "sectionName": "web"}],
            "hostnames": [host],
        },
    });
    t.apply_resource("acme", &spec).await;
    let accepted = t
        .wait_condition("acme", "RouteAccepted", "True", WAIT)
        .await;
    eprintln!(
        "RouteAccepted: {:?}",
        accepted
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "RouteAccepted"))
            .map(|c| &c.message)
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
    spec["proxy"] = json!({"refreshInterval": "4m"});
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
