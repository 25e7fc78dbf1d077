//! The JWKS mirror's Deployment, Service and PodDisruptionBudget.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ResourceRequirements, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::meta::child_meta;
use super::{BuildContext, mirror_routes};
use crate::duration::format_duration;
use crate::reconcile::{Valid, names};

/// The mirror runs as this non-root user (the image's `USER`).
const RUN_AS_USER: i64 = 65532;
/// How long a terminating mirror pod keeps serving before it is sent SIGTERM: long enough for
/// kube-proxy and ingress controllers to stop routing to it (Traefik applies endpoint changes
/// after a 2 s throttle), so a rollout or a deleted pod fails no request. The image has no
/// shell, so this is the kubelet's own `sleep` action.
pub const DRAIN_SECONDS: i64 = 5;

/// Builds a typed object from a JSON literal; the literals here are static shapes, so a
/// failure is a bug in this file, caught by the unit tests.
fn typed<T: DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("static object shape matches its k8s-openapi type")
}

pub fn deployment(valid: &Valid, ctx: &BuildContext) -> Deployment {
    let default_image = ctx.default_image.as_str();
    let proxy = &valid.spec.proxy;
    let mut args = vec![
        "proxy".to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{}", names::MIRROR_PORT),
    ];
    for (path, upstream) in mirror_routes(valid) {
        args.extend(["--mirror".to_string(), format!("{path}={upstream}")]);
    }
    args.extend([
        "--refresh".to_string(),
        format_duration(valid.refresh_interval),
    ]);
    args.extend(["--max-stale".to_string(), format_duration(valid.max_stale)]);
    args.extend(ctx.mirror_upstream.to_args());
    let resources = proxy.resources.clone().unwrap_or_else(default_resources);
    let selector = names::mirror_selector(&valid.name);
    let probe = |path: &str, period: i32| json!({"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": 3});
    let mut deployment: Deployment = typed(json!({
        "spec": {
            "replicas": proxy.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": names::labels(&valid.name, names::COMPONENT_MIRROR)},
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"}
                    },
                    "containers": [{
                        "name": "jwks-mirror",
                        "image": proxy.image.as_deref().unwrap_or(default_image),
                        "args": args,
                        "ports": [{"name": "http", "containerPort": names::MIRROR_PORT, "protocol": "TCP"}],
                        "env": [{"name": "RUST_LOG", "value": "info"}],
                        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
                        "livenessProbe": probe("/healthz", 10),
                        "readinessProbe": probe("/readyz", 5),
                        "resources": resources,
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}
                        }
                    }]
                }
            }
        }
    }));
    deployment.metadata = child_meta(
        valid,
        names::mirror_name(&valid.name),
        names::COMPONENT_MIRROR,
    );
    deployment
}

/// Small: the mirror holds a few kilobytes in memory.
fn default_resources() -> ResourceRequirements {
    typed(json!({"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}))
}

pub fn service(valid: &Valid) -> Service {
    let mut service: Service = typed(json!({
        "spec": {
            "type": "ClusterIP",
            "selector": names::mirror_selector(&valid.name),
            "ports": [{"name": "http", "port": names::SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]
        }
    }));
    service.metadata = child_meta(
        valid,
        names::mirror_name(&valid.name),
        names::COMPONENT_MIRROR,
    );
    service
}

/// At least one mirror pod through voluntary disruptions (node drains); pods that are not ready
/// anyway (no keys, crash loop) may always be evicted, so a broken mirror never blocks a drain.
pub fn pod_disruption_budget(valid: &Valid) -> PodDisruptionBudget {
    let mut pdb: PodDisruptionBudget = typed(json!({
        "spec": {
            "minAvailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": names::mirror_selector(&valid.name)}
        }
    }));
    pdb.metadata = child_meta(
        valid,
        names::mirror_name(&valid.name),
        names::COMPONENT_MIRROR,
    );
    pdb
}
