//! Pure: the conditions that describe what applying the children achieved.

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;

use super::apply::{Applied, Conflict};
use super::children::Children;
use super::live::ChildKind;
use super::names;
use super::pods::PodState;
use super::reason::{ConditionType, Reason};
use super::status::Finding;
use crate::gateway::RouteParentStatus;

/// Longest scheduler message quoted per reason: it lists every node's problem on a large cluster.
const MAX_SCHEDULER_MESSAGE: usize = 240;

/// Why no mirror pod is available, in words: counts per state, each with what it means.
fn explain_unavailable(pods: &[PodState], namespace: &str, resource: &str) -> String {
    if pods.is_empty() {
        return "no mirror pod exists yet: see kubectl describe deployment".to_string();
    }
    let count = |wanted: fn(&PodState) -> bool| pods.iter().filter(|p| wanted(p)).count();
    let mut parts = Vec::new();
    let not_ready = count(|p| *p == PodState::RunningNotReady);
    if not_ready > 0 {
        parts.push(format!(
            "{not_ready} running but not ready: the mirror is ready only while it holds signing keys its upstream confirmed within spec.proxy.maxStale; `kubectl logs -n {namespace} -l app.kubernetes.io/instance={resource},app.kubernetes.io/component={}` says what the upstream answered",
            names::COMPONENT_MIRROR
        ));
    }
    let mut waiting: Vec<&str> = pods
        .iter()
        .filter_map(|p| match p {
            PodState::Waiting { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    waiting.sort_unstable();
    waiting.dedup();
    if !waiting.is_empty() {
        let n = count(|p| matches!(p, PodState::Waiting { .. }));
        parts.push(format!(
            "{n} waiting ({}): see kubectl describe pod",
            waiting.join(", ")
        ));
    }
    let mut unschedulable: Vec<&str> = pods
        .iter()
        .filter_map(|p| match p {
            PodState::Unschedulable { message } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    unschedulable.dedup();
    if let Some(first) = unschedulable.first() {
        let n = count(|p| matches!(p, PodState::Unschedulable { .. }));
        let cut = first
            .char_indices()
            .take_while(|(i, _)| *i < MAX_SCHEDULER_MESSAGE)
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        parts.push(format!(
            "{n} unschedulable ({}): spec.proxy.podTemplate.spec (tolerations, nodeSelector, affinity) and the chart's mirror.nodeSelector and mirror.tolerations place the mirror pods",
            &first[..cut]
        ));
    }
    for (n, what) in [
        (count(|p| *p == PodState::Pending), "starting"),
        (count(|p| *p == PodState::Terminating), "terminating"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join("; ")
}

/// `ConfigReady`, and in mode Proxy `ProxyAvailable` and `PublicJwksUrl`.
pub fn findings(children: &Children, applied: &Applied) -> Vec<Finding> {
    let (config_conflicts, mirror_conflicts): (Vec<_>, Vec<_>) = applied
        .conflicts
        .iter()
        .partition(|c| c.kind == ChildKind::ConfigMap);
    let mut findings = vec![config_finding(children, config_conflicts.first().copied())];
    let Some(deployment) = &children.mirror.deployment else {
        return findings;
    };
    findings.push(proxy_finding(
        children,
        applied,
        deployment,
        &mirror_conflicts,
    ));
    findings.push(public_url_finding(children));
    if let Some(route) = &children.mirror.http_route {
        let (ns, name) = (route.namespace().unwrap_or_default(), route.name_any());
        findings.push(route_finding(
            &format!("HTTPRoute {ns}/{name}"),
            &applied.route_parents,
        ));
    }
    findings
}

/// `ConfigReady`: the ConfigMap holds the config, or an object not ours is in its way.
fn config_finding(children: &Children, in_the_way: Option<&Conflict>) -> Finding {
    let config_map = format!(
        "{}/{}",
        children.config_map.namespace().unwrap_or_default(),
        children.config_map.name_any()
    );
    match in_the_way {
        Some(object) => Finding::fails(
            ConditionType::ConfigReady,
            Reason::Conflict,
            format!(
                "{object} exists and is not controlled by this WorkOSConvexAuth; it was left untouched: delete it, or set spec.configMap.name to another name"
            ),
        ),
        None => Finding::holds(
            ConditionType::ConfigReady,
            Reason::Generated,
            format!(
                "ConfigMap {config_map} holds auth.config.ts, .js and .json ({} providers)",
                children.config.providers.len()
            ),
        ),
    }
}

/// `ProxyAvailable`: how many mirror pods serve the keys, and if none, why.
fn proxy_finding(
    children: &Children,
    applied: &Applied,
    deployment: &Deployment,
    conflicts: &[&Conflict],
) -> Finding {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    if !conflicts.is_empty() {
        let list: Vec<String> = conflicts.iter().map(|c| c.to_string()).collect();
        Finding::fails(
            ConditionType::ProxyAvailable,
            Reason::Conflict,
            format!(
                "{} exist and are not controlled by this WorkOSConvexAuth; they were left untouched: delete or rename them",
                list.join(", ")
            ),
        )
    } else if wanted == 0 {
        Finding::fails(
            ConditionType::ProxyAvailable,
            Reason::ScaledToZero,
            "spec.proxy.replicas is 0: nothing serves the keys",
        )
    } else if applied.available_replicas > 0 {
        Finding::holds(
            ConditionType::ProxyAvailable,
            Reason::Available,
            format!(
                "{}/{wanted} mirror pods available",
                applied.available_replicas
            ),
        )
    } else {
        let namespace = children.config_map.namespace().unwrap_or_default();
        let resource = deployment
            .labels()
            .get("app.kubernetes.io/instance")
            .cloned()
            .unwrap_or_default();
        Finding::fails(
            ConditionType::ProxyAvailable,
            Reason::Unavailable,
            format!(
                "0/{wanted} mirror pods available: {}",
                explain_unavailable(&applied.mirror_pods, &namespace, &resource)
            ),
        )
    }
}

/// `PublicJwksUrl`: whether a Convex deployment outside the cluster can fetch the keys.
fn public_url_finding(children: &Children) -> Finding {
    if children.cluster_internal_url {
        Finding::fails(
            ConditionType::PublicJwksUrl,
            Reason::ClusterInternalUrl,
            format!(
                "Convex fetches the keys from {}, which only a Convex backend inside this cluster can reach; for Convex Cloud set spec.jwks.publicUrl or enable spec.ingress",
                children.jwks_url
            ),
        )
    } else {
        Finding::holds(
            ConditionType::PublicJwksUrl,
            Reason::PublicUrl,
            format!("Convex fetches the keys from {}", children.jwks_url),
        )
    }
}

/// `PublicJwksUrl` for a resource with `spec.convex`: when that deployment is outside the cluster
/// and the config gives it the cluster-internal JWKS URL, Convex can never fetch the keys and
/// rejects every token, whatever the sync does; `Ready` then fails with this first. `None`: the
/// informational finding of [`findings`] stands.
pub fn convex_reach(convex_url: &str, children: &Children) -> Option<Finding> {
    (children.cluster_internal_url && !is_cluster_local(convex_url)).then(|| {
        Finding::fails(
            ConditionType::PublicJwksUrl,
            Reason::ConvexCannotFetchKeys,
            format!(
                "spec.convex.url {convex_url} is outside this cluster, but the auth config gives it the in-cluster JWKS URL {}: Convex cannot fetch it and rejects every token; set spec.jwks.publicUrl, enable spec.ingress, or set spec.httpRoute",
                children.jwks_url
            ),
        )
    })
}

/// Whether a Convex deployment's URL names a host inside the cluster: a Service name (no dot,
/// or under `.svc`), or an address of a private, loopback or link-local range. Anything else
/// (Convex Cloud, a public self-hosted backend) is reached from outside.
fn is_cluster_local(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(host)) => {
            let host = host.trim_end_matches('.');
            !host.contains('.') || host.ends_with(".svc") || host.contains(".svc.")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_private() || ip.is_loopback() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        None => false,
    }
}

/// `RouteAccepted`, from what the Gateway controllers wrote in the route's status: it holds when
/// each parent's `Accepted` and `ResolvedRefs` are `True`.
pub fn route_finding(route: &str, parents: &[RouteParentStatus]) -> Finding {
    if parents.is_empty() {
        return Finding::fails(
            ConditionType::RouteAccepted,
            Reason::RoutePending,
            format!(
                "no Gateway controller has reported on {route} yet: check that its Gateway exists and that a controller runs for the Gateway's class"
            ),
        );
    }
    let mut refusals = Vec::new();
    for parent in parents {
        let gateway = format!(
            "Gateway {}/{}",
            parent.parent_ref.namespace.as_deref().unwrap_or_default(),
            parent.parent_ref.name
        );
        for wanted in ["Accepted", "ResolvedRefs"] {
            if let Some(c) = parent
                .conditions
                .iter()
                .find(|c| c.type_ == wanted && c.status != "True")
            {
                refusals.push(format!(
                    "{gateway}: {wanted}={} ({}): {}",
                    c.status, c.reason, c.message
                ));
            }
        }
    }
    if refusals.is_empty() {
        let names: Vec<String> = parents
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p.parent_ref.namespace.as_deref().unwrap_or_default(),
                    p.parent_ref.name
                )
            })
            .collect();
        Finding::holds(
            ConditionType::RouteAccepted,
            Reason::Accepted,
            format!("{route} is accepted by Gateway {}", names.join(", ")),
        )
    } else {
        Finding::fails(
            ConditionType::RouteAccepted,
            Reason::RouteNotAccepted,
            format!("{route} is not accepted: {}", refusals.join("; ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24: a Convex deployment outside the cluster cannot fetch the in-cluster JWKS URL;
    /// one inside it can, and a public JWKS URL is fetchable from anywhere.
    #[test]
    fn convex_outside_the_cluster_cannot_fetch_an_in_cluster_jwks_url() {
        let internal = crate::reconcile::fixtures::children("{clientId: client_01A}");
        assert!(internal.cluster_internal_url);
        let unreachable = convex_reach("https://happy-animal-123.convex.cloud", &internal)
            .expect("Convex Cloud cannot reach the Service");
        assert_eq!(
            (unreachable.holds, unreachable.condition, unreachable.reason),
            (
                false,
                ConditionType::PublicJwksUrl,
                Reason::ConvexCannotFetchKeys
            )
        );
        assert!(
            unreachable
                .message
                .contains("set spec.jwks.publicUrl, enable spec.ingress")
        );
        assert!(unreachable.message.contains(&internal.jwks_url));
        for inside in [
            "http://convex-backend:3210",
            "http://convex-backend.convex.svc:3210",
            "http://convex-backend.convex.svc.cluster.local:3210",
            "http://10.0.12.7:3210",
            "http://[fd00::7]:3210",
        ] {
            assert_eq!(convex_reach(inside, &internal), None, "{inside}");
        }
        for outside in ["https://convex.example.com", "http://203.0.113.9:3210"] {
            assert!(convex_reach(outside, &internal).is_some(), "{outside}");
        }
        let public = crate::reconcile::fixtures::children(
            "{clientId: client_01A, jwks: {publicUrl: https://jwks.example.com}}",
        );
        assert!(!public.cluster_internal_url);
        assert_eq!(
            convex_reach("https://happy-animal-123.convex.cloud", &public),
            None
        );
    }

    fn parent(accepted: &str, resolved: &str) -> RouteParentStatus {
        let condition = |type_: &str, status: &str| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>(
                serde_json::json!({"type": type_, "status": status, "reason": format!("{type_}{status}"), "message": "why", "lastTransitionTime": "2026-11-27T00:00:00Z"}),
            )
            .unwrap()
        };
        RouteParentStatus {
            parent_ref: crate::gateway::ParentReference {
                namespace: Some("infra".into()),
                name: "public".into(),
                ..Default::default()
            },
            controller_name: "example.com/gw".into(),
            conditions: vec![
                condition("Accepted", accepted),
                condition("ResolvedRefs", resolved),
            ],
        }
    }

    #[test]
    fn route_accepted_follows_every_parents_accepted_and_resolved_refs() {
        let r = "HTTPRoute apps/acme-jwks";
        let pending = route_finding(r, &[]);
        assert_eq!(
            (pending.holds, pending.reason),
            (false, Reason::RoutePending)
        );
        let ok = route_finding(r, &[parent("True", "True")]);
        assert_eq!((ok.holds, ok.reason), (true, Reason::Accepted));
        assert!(
            ok.message.contains("accepted by Gateway infra/public"),
            "{}",
            ok.message
        );
        let refused = route_finding(r, &[parent("True", "True"), parent("True", "False")]);
        assert_eq!(
            (refused.holds, refused.reason),
            (false, Reason::RouteNotAccepted)
        );
        assert_eq!(
            refused.message,
            "HTTPRoute apps/acme-jwks is not accepted: Gateway infra/public: ResolvedRefs=False (ResolvedRefsFalse): why"
        );
    }
    use crate::reconcile::apply::Conflict;
    use crate::reconcile::fixtures::children;
    use ConditionType::{
        ConfigReady as CONFIG_READY, ProxyAvailable as PROXY_AVAILABLE,
        PublicJwksUrl as PUBLIC_JWKS_URL,
    };

    fn find(v: &[Finding], t: ConditionType) -> &Finding {
        v.iter().find(|x| x.condition == t).unwrap()
    }

    fn conflict(kind: ChildKind, name: &str) -> Conflict {
        Conflict {
            kind,
            namespace: "apps".into(),
            name: name.into(),
        }
    }

    #[test]
    fn direct_mode_reports_only_the_config() {
        let v = findings(
            &children("{clientId: client_1, jwks: {mode: Direct}}"),
            &Applied::default(),
        );
        assert_eq!(v.len(), 1);
        assert!(
            v[0].holds
                && v[0].message.contains("ConfigMap apps/acme-convex-auth")
                && v[0].message.contains("2 providers")
        );
    }

    #[test]
    fn proxy_mode_reports_availability_and_where_convex_fetches() {
        let c = children("clientId: client_1");
        let v = findings(&c, &Applied::default());
        assert_eq!(
            find(&v, PROXY_AVAILABLE).message,
            "0/2 mirror pods available: no mirror pod exists yet: see kubectl describe deployment"
        );
        assert!(!find(&v, PUBLIC_JWKS_URL).holds);
        let v = findings(
            &c,
            &Applied {
                available_replicas: 1,
                ..Applied::default()
            },
        );
        assert!(find(&v, PROXY_AVAILABLE).holds);
        let v = findings(
            &children("{clientId: client_1, jwks: {publicUrl: 'https://k.acme.com'}}"),
            &Applied::default(),
        );
        assert!(find(&v, PUBLIC_JWKS_URL).holds);
        let v = findings(
            &children("{clientId: client_1, proxy: {replicas: 0}}"),
            &Applied::default(),
        );
        assert_eq!(find(&v, PROXY_AVAILABLE).reason, Reason::ScaledToZero);
    }

    #[test]
    fn conflicts_name_the_object_and_the_fix() {
        let applied = Applied {
            conflicts: vec![
                conflict(ChildKind::ConfigMap, "acme-convex-auth"),
                conflict(ChildKind::Service, "acme-jwks"),
            ],
            available_replicas: 2,
            ..Applied::default()
        };
        let v = findings(&children("clientId: client_1"), &applied);
        let config = find(&v, CONFIG_READY);
        assert!(
            !config.holds
                && config
                    .message
                    .starts_with("ConfigMap apps/acme-convex-auth exists and is not controlled")
        );
        assert!(config.message.contains("spec.configMap.name"));
        let proxy = find(&v, PROXY_AVAILABLE);
        assert_eq!(proxy.reason, Reason::Conflict);
        assert!(proxy.message.starts_with("Service apps/acme-jwks exist"));
    }

    #[test]
    fn an_unavailable_mirror_says_why() {
        let c = children("clientId: client_1");
        let message = |pods: Vec<PodState>| {
            let applied = Applied {
                mirror_pods: pods,
                ..Applied::default()
            };
            find(&findings(&c, &applied), PROXY_AVAILABLE)
                .message
                .clone()
        };
        let stale = message(vec![PodState::RunningNotReady, PodState::RunningNotReady]);
        assert!(
            stale.starts_with("0/2 mirror pods available: 2 running but not ready: the mirror is ready only while it holds signing keys its upstream confirmed within spec.proxy.maxStale"),
            "{stale}"
        );
        assert!(stale.contains("kubectl logs -n apps -l app.kubernetes.io/instance=acme,app.kubernetes.io/component=jwks-mirror"), "{stale}");
        let waiting = |reason: &str| PodState::Waiting {
            reason: reason.into(),
        };
        assert_eq!(
            message(vec![
                waiting("ImagePullBackOff"),
                waiting("ErrImageNeverPull"),
                waiting("ImagePullBackOff")
            ]),
            "0/2 mirror pods available: 3 waiting (ErrImageNeverPull, ImagePullBackOff): see kubectl describe pod"
        );
        assert_eq!(
            message(vec![PodState::Pending, PodState::Terminating]),
            "0/2 mirror pods available: 1 starting; 1 terminating"
        );
        // Issue 24: what the scheduler said, cut, and what places the pods.
        let long = format!(
            "0/3 nodes are available: 3 node(s) had untolerated taint(s).{}",
            " x".repeat(300)
        );
        let unschedulable = message(vec![
            PodState::Unschedulable {
                message: long.clone()
            };
            2
        ]);
        assert!(
            unschedulable.starts_with("0/2 mirror pods available: 2 unschedulable (0/3 nodes are available: 3 node(s) had untolerated taint(s)."),
            "{unschedulable}"
        );
        assert!(unschedulable.ends_with(
            "and the chart's mirror.nodeSelector and mirror.tolerations place the mirror pods"
        ));
        assert!(
            unschedulable.len() < long.len(),
            "the scheduler's message is cut"
        );
    }
}
