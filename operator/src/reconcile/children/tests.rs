use super::*;
use crate::reconcile::fixtures::{children, context, inline_children, valid};
use crate::reconcile::pod_template::MirrorPodDefaults;
use k8s_openapi::api::core::v1::Toleration;
use std::collections::BTreeMap;

#[test]
fn proxy_mode_defaults_to_the_in_cluster_service_url() {
    let c = children("clientId: client_01A");
    assert_eq!(
        c.jwks_url,
        "http://acme-jwks.apps.svc.cluster.local/sso/jwks/client_01A"
    );
    assert!(c.cluster_internal_url);
    assert!(c.mirror.deployment.is_some() && c.mirror.service.is_some());
    assert!(
        c.mirror.pod_disruption_budget.is_some(),
        "2 replicas by default get a PDB"
    );
    assert!(c.mirror.ingress.is_none());
    assert_eq!(
        c.issuers(),
        [
            "https://api.workos.com/",
            "https://api.workos.com/user_management/client_01A"
        ]
    );
}

#[test]
fn proxy_mode_prefers_public_url_then_ingress_host() {
    let c = children("{clientId: client_01A, jwks: {publicUrl: 'https://keys.acme.com/'}}");
    assert_eq!(c.jwks_url, "https://keys.acme.com/sso/jwks/client_01A");
    assert!(!c.cluster_internal_url);
    let c = children(
        "{clientId: client_01A, ingress: {enabled: true, host: jwks.acme.com, path: /workos}}",
    );
    assert_eq!(
        c.jwks_url,
        "https://jwks.acme.com/workos/sso/jwks/client_01A"
    );
    assert!(c.mirror.ingress.is_some());
}

#[test]
fn direct_mode_points_at_workos_and_runs_no_mirror() {
    let c =
        children("{clientId: client_01A, authkitDomain: acme.authkit.app, jwks: {mode: Direct}}");
    assert_eq!(c.jwks_url, "https://api.workos.com/sso/jwks/client_01A");
    assert_eq!(
        c.config.providers.last().unwrap().jwks,
        "https://acme.authkit.app/oauth2/jwks"
    );
    assert!(
        c.mirror.deployment.is_none()
            && c.mirror.service.is_none()
            && c.mirror.ingress.is_none()
            && c.mirror.pod_disruption_budget.is_none()
    );
}

#[test]
fn inline_mode_embeds_the_keys_as_a_data_url() {
    let doc = r#"{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}"#;
    let keys = InlineKeys {
        workos: doc.into(),
        authkit: None,
    };
    let c = inline_children("{clientId: client_01A, jwks: {mode: Inline}}", &keys);
    let encoded = c
        .jwks_url
        .strip_prefix("data:application/json;base64,")
        .unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), doc);
    assert!(c.mirror.deployment.is_none());
    let without_authkit_keys = JwksUrls::embedded(
        &valid("{clientId: client_01A, authkitDomain: acme.authkit.app, jwks: {mode: Inline}}"),
        &keys,
    )
    .unwrap_err();
    assert_eq!(without_authkit_keys.field, "spec.authkitDomain");
}

#[test]
fn a_document_too_large_to_embed_is_refused_up_front() {
    // Keys that fit the fetcher's cap but not what mode Inline embeds (issue 22: it lands in
    // the ConfigMap, a Convex variable and the operator's memory).
    let n = "A".repeat(200 * 1024);
    let doc = format!(r#"{{"keys":[{{"kty":"RSA","kid":"k1","n":"{n}","e":"AQAB"}}]}}"#);
    let keys = InlineKeys {
        workos: doc,
        authkit: None,
    };
    let err = JwksUrls::embedded(
        &valid("{clientId: client_01A, jwks: {mode: Inline}}"),
        &keys,
    )
    .unwrap_err();
    assert_eq!(err.field, "spec.jwks.mode");
    assert!(
        err.problem
            .contains("over the 65536 a mode-Inline config may embed"),
        "{err}"
    );
    assert!(err.fix.contains("use mode Proxy"), "{err}");
}

#[test]
fn deployment_is_hardened_and_runs_the_mirror_with_the_spec_settings() {
    let c = children(
        "{clientId: client_01A, authkitDomain: acme.authkit.app, proxy: {replicas: 1, refreshInterval: 90s}}",
    );
    assert!(
        c.mirror.pod_disruption_budget.is_none(),
        "one replica gets no PDB"
    );
    let d = serde_json::to_value(c.mirror.deployment.unwrap()).unwrap();
    let pod = &d["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &container["securityContext"];
    assert_eq!(
        (
            sc["runAsNonRoot"].clone(),
            sc["readOnlyRootFilesystem"].clone(),
            sc["allowPrivilegeEscalation"].clone()
        ),
        (true.into(), true.into(), false.into())
    );
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        container["image"],
        "ghcr.io/example/workos-convex-auth:test"
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "proxy",
            "--listen",
            "0.0.0.0:8080",
            "--mirror",
            "/sso/jwks/client_01A=https://api.workos.com/sso/jwks/client_01A",
            "--mirror",
            "/oauth2/jwks=https://acme.authkit.app/oauth2/jwks",
            "--refresh",
            "1m30s",
            "--max-stale",
            "24h",
        ]
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(d["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        d["metadata"]["labels"]["app.kubernetes.io/instance"],
        "acme"
    );
}

#[test]
fn ingress_carries_class_tls_and_annotations() {
    let c = children(
        "{clientId: client_01A, ingress: {enabled: true, host: jwks.acme.com, className: nginx, tlsSecretName: jwks-tls, annotations: {a: b}}}",
    );
    let i = serde_json::to_value(c.mirror.ingress.unwrap()).unwrap();
    assert_eq!(i["spec"]["ingressClassName"], "nginx");
    assert_eq!(i["spec"]["tls"][0]["secretName"], "jwks-tls");
    assert_eq!(i["spec"]["tls"][0]["hosts"][0], "jwks.acme.com");
    assert_eq!(i["metadata"]["annotations"]["a"], "b");
    assert_eq!(
        i["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "acme-jwks"
    );
}

#[test]
fn the_http_route_sends_its_hosts_and_prefix_to_the_mirror_service() {
    let c = children(
        "{clientId: client_01A, httpRoute: {parentRefs: [{name: public, namespace: infra, sectionName: https}], hostnames: [jwks.acme.com], path: /workos}}",
    );
    assert!(c.mirror.ingress.is_none());
    let r = serde_json::to_value(c.mirror.http_route.unwrap()).unwrap();
    assert_eq!(r["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(r["kind"], "HTTPRoute");
    assert_eq!(r["metadata"]["name"], "acme-jwks");
    assert_eq!(r["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        r["spec"]["parentRefs"],
        serde_json::json!([{"namespace": "infra", "name": "public", "sectionName": "https"}])
    );
    assert_eq!(r["spec"]["hostnames"], serde_json::json!(["jwks.acme.com"]));
    assert_eq!(
        r["spec"]["rules"],
        serde_json::json!([{
            "matches": [{"path": {"type": "PathPrefix", "value": "/workos"}}],
            "backendRefs": [{"name": "acme-jwks", "port": 80}],
        }])
    );
    assert!(
        r.get("status").is_none_or(|s| s.is_null()),
        "no status is sent"
    );
}

#[test]
fn config_map_holds_all_renderings() {
    let c = children("{clientId: client_01A, configMap: {name: convex-auth}}");
    let data = c.config_map.data.as_ref().unwrap();
    assert_eq!(c.config_map.metadata.name.as_deref(), Some("convex-auth"));
    assert_eq!(data["auth.config.json"], c.config.to_json());
    assert!(data["auth.config.ts"].contains("satisfies AuthConfig"));
    assert!(data["auth.config.ts"].contains("from WorkOSConvexAuth apps/acme"));
    assert_eq!(data["WORKOS_CLIENT_ID"], "client_01A");
}

/// Issue 23: `--mirror-image-pull-secrets` reaches every mirror pod; without it the pod spec has
/// no `imagePullSecrets` at all.
/// Issue 24: `spec.proxy.podTemplate` and the operator-wide defaults reach the mirror's pod,
/// every field of it, and leave the hardened parts of the pod as they were.
#[test]
fn the_pod_template_and_the_operator_wide_defaults_reach_the_mirror_pod() {
    let pod = |spec: &str, ctx: &BuildContext| {
        let v = valid(spec);
        let urls = v.served_urls.clone().expect("mode Proxy");
        let template = build(&v, &urls, ctx)
            .mirror
            .deployment
            .expect("a mirror")
            .spec
            .expect("a spec")
            .template;
        (
            template.metadata.unwrap_or_default(),
            template.spec.expect("a pod"),
        )
    };
    let (bare_meta, bare) = pod("{clientId: client_01A}", &context());
    let ctx = BuildContext {
        mirror_pod: MirrorPodDefaults {
            image_pull_secrets: vec!["regcred".into()],
            node_selector: BTreeMap::from([("pool".into(), "edge".into())]),
            tolerations: vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Equal".into()),
                value: Some("edge".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }],
            priority_class_name: Some("mirrors".into()),
        },
        ..context()
    };
    let spec = r#"{clientId: client_01A, proxy: {podTemplate: {
        metadata: {labels: {team: auth}, annotations: {example.com/owner: auth-team}},
        spec: {
          nodeSelector: {kubernetes.io/arch: amd64},
          tolerations: [{key: spot, operator: Exists, effect: NoSchedule}],
          affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {team: auth}}}}]}},
          topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}],
          priorityClassName: jwks-high,
          imagePullSecrets: [{name: team-pull}]}}}}"#;
    let (meta, placed) = pod(spec, &ctx);
    let labels = meta.labels.expect("labels");
    assert_eq!(labels["team"], "auth");
    assert_eq!(
        labels["app.kubernetes.io/instance"], "acme",
        "the selector's labels stay"
    );
    assert_eq!(
        meta.annotations.expect("annotations")["example.com/owner"],
        "auth-team"
    );
    assert_eq!(
        placed.node_selector.expect("a node selector"),
        BTreeMap::from([
            ("pool".to_string(), "edge".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string())
        ])
    );
    let tolerations: Vec<Option<String>> = placed
        .tolerations
        .expect("tolerations")
        .into_iter()
        .map(|t| t.key)
        .collect();
    assert_eq!(tolerations, [Some("dedicated".into()), Some("spot".into())]);
    assert!(
        placed
            .affinity
            .expect("affinity")
            .pod_anti_affinity
            .is_some()
    );
    assert_eq!(
        placed.topology_spread_constraints.expect("spread")[0].topology_key,
        "topology.kubernetes.io/zone"
    );
    assert_eq!(placed.priority_class_name.as_deref(), Some("jwks-high"));
    let pulls: Vec<String> = placed
        .image_pull_secrets
        .expect("pull secrets")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        pulls,
        ["regcred", "team-pull"],
        "both, the operator's first"
    );
    // Nothing of the hardening moved.
    assert_eq!(placed.automount_service_account_token, Some(false));
    assert_eq!(placed.security_context, bare.security_context);
    assert_eq!(placed.containers, bare.containers);
    assert_eq!(placed.enable_service_links, Some(false));
    assert_eq!(bare_meta.annotations, None);
    assert_eq!(
        (
            bare.node_selector,
            bare.tolerations,
            bare.image_pull_secrets,
            bare.priority_class_name
        ),
        (None, None, None, None),
        "no template and no defaults: nothing added"
    );
}

/// Issue 24: the operator's egress proxy reaches every mirror pod as its environment; without
/// one, the container's environment is RUST_LOG alone.
#[test]
fn the_mirror_pods_get_the_operators_egress_proxy() {
    let env = |ctx: &BuildContext| {
        let v = valid("{clientId: client_01A}");
        let urls = v.served_urls.clone().expect("mode Proxy");
        let deployment = build(&v, &urls, ctx).mirror.deployment.expect("a mirror");
        let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
        container
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        env(&context()),
        [("RUST_LOG".to_string(), "info".to_string())]
    );
    let ctx = BuildContext {
        egress: crate::jwks::EgressProxy {
            https: Some("http://proxy.infra:3128".parse().unwrap()),
            http: None,
            no_proxy: Some(".svc,10.0.0.0/8".into()),
        },
        ..context()
    };
    assert_eq!(
        env(&ctx),
        [
            ("RUST_LOG".to_string(), "info".to_string()),
            (
                "HTTPS_PROXY".to_string(),
                "http://proxy.infra:3128/".to_string()
            ),
            ("NO_PROXY".to_string(), ".svc,10.0.0.0/8".to_string()),
        ]
    );
}

/// Issue 22: with `--mirror-network-policy`, the mirror pods take connections on their port only
/// from their own namespace and the listed ones; without it, no policy.
#[test]
fn a_network_policy_admits_the_mirrors_namespace_and_the_listed_ones_on_its_port() {
    let spec = "{clientId: client_01A}";
    assert!(
        children(spec).mirror.network_policy.is_none(),
        "off by default"
    );
    let ctx = BuildContext {
        mirror_network_policy: Some(vec!["traefik".into(), "apps".into(), "convex".into()]),
        ..context()
    };
    let v = valid(spec);
    let urls = v.served_urls.clone().expect("mode Proxy");
    let policy = build(&v, &urls, &ctx)
        .mirror
        .network_policy
        .expect("a policy");
    let policy = serde_json::to_value(policy).unwrap();
    assert_eq!(policy["metadata"]["name"], "acme-jwks");
    assert_eq!(policy["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    let spec = &policy["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "jwks-mirror"
    );
    assert_eq!(spec["policyTypes"], serde_json::json!(["Ingress"]));
    let rule = &spec["ingress"][0];
    assert_eq!(
        rule["from"][0]["namespaceSelector"]["matchExpressions"][0],
        serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["apps", "traefik", "convex"]})
    );
    assert_eq!(
        rule["ports"],
        serde_json::json!([{"port": 8080, "protocol": "TCP"}])
    );
    // Mode Direct runs no mirror: no policy either.
    let direct = valid("{clientId: client_01A, jwks: {mode: Direct}}");
    let urls = direct.served_urls.clone().expect("mode Direct");
    assert!(build(&direct, &urls, &ctx).mirror.network_policy.is_none());
}
