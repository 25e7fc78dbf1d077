//! The JWKS mirror's Deployment, Service and PodDisruptionBudget.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, HTTPGetAction, Lifecycle, LifecycleHandler,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, SleepAction,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::BuildContext;
use super::meta::child_meta;
use crate::duration::format_duration;
use crate::reconcile::validate::MirrorPlan;
use crate::reconcile::validate::Valid;
use crate::reconcile::{names, pod_template};

/// The mirror runs as this non-root user (the image's `USER`).
const RUN_AS_USER: i64 = 65532;
/// How long a terminating mirror pod keeps serving before it is sent SIGTERM: long enough for
/// kube-proxy and ingress controllers to stop routing to it (Traefik applies endpoint changes
/// after a 2 s throttle), so a rollout or a deleted pod fails no request. The image has no
/// shell, so this is the kubelet's own `sleep` action.
pub const DRAIN_SECONDS: i64 = 5;
/// The container's port name, which probes, the Service and the Ingress refer to.
const PORT_NAME: &str = "http";

pub fn deployment(valid: &Valid, mirror: &MirrorPlan, ctx: &BuildContext) -> Deployment {
    let mut pod = pod_spec(container(valid, mirror, ctx));
    pod_template::place(&mut pod, &ctx.mirror_pod, &mirror.pod_template);
    Deployment {
        metadata: meta(valid),
        spec: Some(DeploymentSpec {
            replicas: Some(mirror.replicas),
            selector: selector(valid),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_template::pod_labels(&valid.name, &mirror.pod_template)),
                    annotations: pod_template::pod_annotations(&mirror.pod_template),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// `workos-convex-auth proxy` with the resource's routes and timing and the operator's upstream
/// rules.
fn mirror_args(valid: &Valid, ctx: &BuildContext) -> Vec<String> {
    let mut args = vec![
        "proxy".to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{}", names::MIRROR_PORT),
    ];
    for route in &valid.routes {
        args.extend(["--mirror".to_string(), route.to_string()]);
    }
    args.extend([
        "--refresh".to_string(),
        format_duration(valid.refresh_interval),
    ]);
    args.extend(["--max-stale".to_string(), format_duration(valid.max_stale)]);
    args.extend(ctx.mirror_upstream.to_args());
    args
}

fn runtime_default() -> Option<SeccompProfile> {
    Some(SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    })
}

/// The mirror's one container: nothing writable, no capability, drained before SIGTERM.
fn container(valid: &Valid, mirror: &MirrorPlan, ctx: &BuildContext) -> Container {
    Container {
        name: "jwks-mirror".to_string(),
        image: Some(
            mirror
                .image
                .clone()
                .unwrap_or_else(|| ctx.default_image.clone()),
        ),
        args: Some(mirror_args(valid, ctx)),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.to_string()),
            container_port: names::MIRROR_PORT,
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        env: Some(
            std::iter::once(("RUST_LOG", "info".to_string()))
                .chain(ctx.egress.env())
                .map(|(name, value)| EnvVar {
                    name: name.to_string(),
                    value: Some(value),
                    value_from: None,
                })
                .collect(),
        ),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction {
                    seconds: DRAIN_SECONDS,
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        liveness_probe: Some(probe("/healthz", 10)),
        readiness_probe: Some(probe("/readyz", 5)),
        resources: Some(mirror.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            seccomp_profile: runtime_default(),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The hardened pod around `container`, before the pod template places it.
fn pod_spec(container: Container) -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            seccomp_profile: runtime_default(),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        ..PodSpec::default()
    }
}

fn meta(valid: &Valid) -> ObjectMeta {
    child_meta(
        valid,
        names::mirror_name(&valid.name),
        names::COMPONENT_MIRROR,
    )
}

fn selector(valid: &Valid) -> LabelSelector {
    LabelSelector {
        match_labels: Some(names::mirror_selector(&valid.name)),
        match_expressions: None,
    }
}

fn probe(path: &str, period_seconds: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(PORT_NAME.to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// Small: the mirror holds a few kilobytes in memory.
fn default_resources() -> ResourceRequirements {
    let quantities = |pairs: &[(&str, &str)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    ResourceRequirements {
        requests: quantities(&[("cpu", "10m"), ("memory", "16Mi")]),
        limits: quantities(&[("memory", "64Mi")]),
        claims: None,
    }
}

pub fn service(valid: &Valid) -> Service {
    Service {
        metadata: meta(valid),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(names::mirror_selector(&valid.name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_string()),
                port: names::SERVICE_PORT,
                target_port: Some(IntOrString::String(PORT_NAME.to_string())),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The mirror pods take connections only on their port, and only from their own namespace and
/// `from` (the ingress controller's, a self-hosted Convex backend's): a second line behind the
/// connection cap, for clusters whose network plugin enforces NetworkPolicies.
pub fn network_policy(valid: &Valid, from: &[String]) -> NetworkPolicy {
    let mut namespaces = vec![valid.namespace.clone()];
    namespaces.extend(from.iter().filter(|ns| **ns != valid.namespace).cloned());
    NetworkPolicy {
        metadata: meta(valid),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(valid)),
            policy_types: Some(vec!["Ingress".to_string()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            // Set by the apiserver on every namespace since Kubernetes 1.22.
                            key: "kubernetes.io/metadata.name".to_string(),
                            operator: "In".to_string(),
                            values: Some(namespaces),
                        }]),
                        match_labels: None,
                    }),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(names::MIRROR_PORT)),
                    protocol: Some("TCP".to_string()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    }
}

/// At least one mirror pod through voluntary disruptions (node drains); pods that are not ready
/// anyway (no keys, crash loop) may always be evicted, so a broken mirror never blocks a drain.
pub fn pod_disruption_budget(valid: &Valid) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(valid),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_string()),
            selector: Some(selector(valid)),
            max_unavailable: None,
        }),
        status: None,
    }
}
