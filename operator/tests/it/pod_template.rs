//! `spec.proxy.podTemplate` and the operator-wide mirror pod settings (issue 24) against the real
//! apiserver: every field reaches the stored Deployment (so the apiserver accepts the merged pod),
//! both the resource's and the operator's pull secrets, the hardening unchanged; a priority class
//! is refused unless the admin lists it.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

use super::support::fixtures::{SpecExt, spec};
use super::support::scenario::Scenario;
use workos_convex_auth::api::{MirrorPodSpec, MirrorPodTemplate};
use workos_convex_auth::reconcile::reason::Reason;

#[tokio::test]
async fn the_pod_template_reaches_the_deployment_and_a_priority_class_needs_the_admin() {
    let tolerations =
        r#"[{"key":"dedicated","operator":"Equal","value":"edge","effect":"NoSchedule"}]"#;
    let s = Scenario::with_policy(
        "pod-template",
        &[
            "--mirror-image-pull-secrets",
            "regcred",
            "--mirror-node-selector",
            "pool=edge",
            "--mirror-tolerations",
            tolerations,
            "--mirror-priority-class",
            "mirrors",
            "--allowed-priority-classes",
            "jwks-high",
            "--allowed-proxy-pod-labels",
            "team",
            "--allowed-proxy-pod-annotations",
            "example.com/*",
        ],
    )
    .await;
    let template = json!({
        "metadata": {"labels": {"team": "auth"}, "annotations": {"example.com/owner": "auth-team"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"team": "auth"}}}}]}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway"}],
            "priorityClassName": "jwks-high",
            "imagePullSecrets": [{"name": "team-pull"}],
        },
    });
    // The pod's fields are Kubernetes' own types, written as a manifest would.
    let typed: MirrorPodTemplate = serde_json::from_value(template.clone()).unwrap();
    s.create(
        "placed",
        spec("client_01A").proxy(|p| p.pod_template = Some(typed)),
    )
    .await;
    let deployment = s.appears::<Deployment>("placed-jwks").await;
    let pod_template = deployment.spec.expect("a spec").template;
    let meta = pod_template.metadata.expect("metadata");
    let pod = serde_json::to_value(pod_template.spec.expect("a pod")).unwrap();
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "auth");
    assert_eq!(
        meta.labels.as_ref().unwrap()["app.kubernetes.io/instance"],
        "placed"
    );
    assert_eq!(meta.annotations.unwrap()["example.com/owner"], "auth-team");
    assert_eq!(
        pod["nodeSelector"],
        json!({"pool": "edge", "kubernetes.io/arch": "amd64"})
    );
    assert_eq!(
        pod["tolerations"],
        json!([
            {"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}
        ])
    );
    assert_eq!(pod["affinity"], template["spec"]["affinity"]);
    assert_eq!(
        pod["topologySpreadConstraints"],
        template["spec"]["topologySpreadConstraints"]
    );
    assert_eq!(pod["priorityClassName"], "jwks-high");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "regcred"}, {"name": "team-pull"}])
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let container = &pod["containers"][0]["securityContext"];
    assert_eq!(container["allowPrivilegeEscalation"], false);
    assert_eq!(container["readOnlyRootFilesystem"], true);
    assert_eq!(container["capabilities"], json!({"drop": ["ALL"]}));

    // No priority class: the operator-wide one.
    s.create(
        "defaulted",
        spec("client_01A").proxy(|p| {
            p.pod_template = Some(MirrorPodTemplate {
                metadata: None,
                spec: Some(MirrorPodSpec::default()),
            })
        }),
    )
    .await;
    let defaulted = s.appears::<Deployment>("defaulted-jwks").await;
    let pod = defaulted.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.priority_class_name.as_deref(), Some("mirrors"));

    // A class the admin did not list: refused, and no mirror.
    s.create(
        "preempts",
        spec("client_01A").proxy(|p| {
            p.pod_template = Some(MirrorPodTemplate {
                metadata: None,
                spec: Some(MirrorPodSpec {
                    priority_class_name: Some("system-cluster-critical".into()),
                    ..Default::default()
                }),
            })
        }),
    )
    .await;
    let message = s.refused("preempts", Reason::NotAllowed).await;
    assert!(
        message.contains("spec.proxy.podTemplate.spec.priorityClassName")
            && message
                .contains("--allowed-priority-classes (chart value policy.proxy.priorityClasses)"),
        "{message}"
    );
    assert!(
        s.api::<Deployment>()
            .get_opt("preempts-jwks")
            .await
            .unwrap()
            .is_none(),
        "a refused resource gets no mirror"
    );
}

/// The chart's `mirror.*`, `policy.proxy.*` and `clusterDomain` values become flags the operator parses into the
/// same defaults and policy (helm template of the real chart, parsed by `run`'s own parser).
#[test]
fn the_charts_mirror_values_become_the_operators_defaults_and_policy() {
    let chart = wca_test_harness::repo_root().join("charts/workos-convex-auth");
    let mut helm = wca_test_harness::ControlPlane::shared().helm();
    helm.args(["template", "wca"]).arg(&chart).args([
        "--show-only",
        "templates/deployment.yaml",
        "--set",
        "mirror.nodeSelector.pool=edge",
        "--set",
        "mirror.nodeSelector.kubernetes\\.io/os=linux",
        "--set-json",
        r#"mirror.tolerations=[{"key":"dedicated","operator":"Equal","value":"edge","effect":"NoSchedule"}]"#,
        "--set",
        "mirror.priorityClassName=mirrors",
        "--set",
        "policy.proxy.priorityClasses={jwks-high,jwks-low}",
        "--set",
        "policy.proxy.podLabels={team}",
        "--set",
        "policy.proxy.podAnnotations={example.com/*}",
        "--set",
        "clusterDomain=k8s.example.internal",
    ]);
    let rendered = wca_test_harness::run_ok(&mut helm).expect("helm template");
    let deployment: Deployment = serde_saphyr::from_str(&rendered).expect("one Deployment");
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    let run =
        workos_convex_auth::controller::RunArgs::parse_flags(&args[1..]).expect("run's flags");
    assert_eq!(run.cluster_domain, "k8s.example.internal");
    let defaults = run.mirror_pod();
    assert_eq!(
        defaults.node_selector,
        [
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("pool".to_string(), "edge".to_string())
        ]
        .into()
    );
    assert_eq!(defaults.tolerations.len(), 1);
    assert_eq!(defaults.tolerations[0].value.as_deref(), Some("edge"));
    assert_eq!(defaults.priority_class_name.as_deref(), Some("mirrors"));
    let policy = run.policy().expect("a policy");
    assert_eq!(policy.priority_classes, ["jwks-high", "jwks-low"]);
    assert_eq!(policy.pod_labels, ["team"]);
    assert_eq!(policy.pod_annotations, ["example.com/*"]);
    assert_eq!(policy.mirror_pod, defaults);
}
