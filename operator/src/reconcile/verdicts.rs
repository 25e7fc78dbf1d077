//! Pure: the conditions that describe what applying the children achieved.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::Children;
use super::names;
use super::status::{CONFIG_READY, PROXY_AVAILABLE, PUBLIC_JWKS_URL, Verdict};

/// What `apply` reported for one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Objects left untouched because this resource does not control them ("Kind ns/name").
    pub conflicts: Vec<String>,
    /// `status.availableReplicas` of the mirror Deployment as applied.
    pub available_replicas: i32,
    /// What the mirror's pods are doing; read only while none is available, to say why.
    pub mirror_pods: Vec<PodState>,
}

/// A mirror pod, as far as status needs to tell (the same facts as `kubectl get pods`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    Ready,
    /// Running but not ready: the mirror holds no keys its upstream confirmed within maxStale.
    RunningNotReady,
    /// Its container waits: the kubelet's reason (`ImagePullBackOff`, `CrashLoopBackOff`, ...).
    Waiting {
        reason: String,
    },
    /// Not scheduled or not started yet.
    Pending,
    Terminating,
}

/// Reads a pod's state from its status.
pub fn pod_state(pod: &Pod) -> PodState {
    if pod.metadata.deletion_timestamp.is_some() {
        return PodState::Terminating;
    }
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if ready {
        return PodState::Ready;
    }
    let containers = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    if let Some(reason) = containers
        .iter()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .filter(|r| r != "ContainerCreating")
    {
        return PodState::Waiting { reason };
    }
    if containers
        .iter()
        .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    {
        return PodState::RunningNotReady;
    }
    PodState::Pending
}

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
pub fn verdicts(children: &Children, applied: &Applied) -> Vec<Verdict> {
    let config_map = format!(
        "{}/{}",
        children.config_map.namespace().unwrap_or_default(),
        children.config_map.name_any()
    );
    let (config_conflicts, mirror_conflicts): (Vec<&String>, Vec<&String>) = applied
        .conflicts
        .iter()
        .partition(|c| c.starts_with("ConfigMap "));
    let mut verdicts = vec![match config_conflicts.first() {
        Some(object) => Verdict::new(
            CONFIG_READY,
            false,
            "Conflict",
            format!(
                "{object} exists and is not controlled by this WorkOSConvexAuth; it was left untouched: delete it, or set spec.configMap.name to another name"
            ),
        ),
        None => Verdict::new(
            CONFIG_READY,
            true,
            "Generated",
            format!(
                "ConfigMap {config_map} holds auth.config.ts, .js and .json ({} providers)",
                children.config.providers.len()
            ),
        ),
    }];
    let Some(deployment) = &children.deployment else {
        return verdicts;
    };
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    verdicts.push(if !mirror_conflicts.is_empty() {
        let list: Vec<&str> = mirror_conflicts.iter().map(|s| s.as_str()).collect();
        Verdict::new(
            PROXY_AVAILABLE,
            false,
            "Conflict",
            format!("{} exist and are not controlled by this WorkOSConvexAuth; they were left untouched: delete or rename them", list.join(", ")),
        )
    } else if wanted == 0 {
        Verdict::new(PROXY_AVAILABLE, false, "ScaledToZero", "spec.proxy.replicas is 0: nothing serves the keys")
    } else if applied.available_replicas > 0 {
        Verdict::new(PROXY_AVAILABLE, true, "Available", format!("{}/{wanted} mirror pods available", applied.available_replicas))
    } else {
        let namespace = children.config_map.namespace().unwrap_or_default();
        let resource = deployment.labels().get("app.kubernetes.io/instance").cloned().unwrap_or_default();
        Verdict::new(PROXY_AVAILABLE, false, "Unavailable", format!("0/{wanted} mirror pods available: {}", explain_unavailable(&applied.mirror_pods, &namespace, &resource)))
    });
    verdicts.push(if children.cluster_internal_url {
        Verdict::new(
            PUBLIC_JWKS_URL,
            false,
            "ClusterInternalUrl",
            format!("Convex fetches the keys from {}, which only a Convex backend inside this cluster can reach; for Convex Cloud set spec.jwks.publicUrl or enable spec.ingress", children.jwks_url),
        )
    } else {
        Verdict::new(PUBLIC_JWKS_URL, true, "PublicUrl", format!("Convex fetches the keys from {}", children.jwks_url))
    });
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
    use crate::reconcile::{BuildContext, build, validate};

    fn children(spec_yaml: &str) -> Children {
        let spec: WorkOSConvexAuthSpec = serde_saphyr::from_str(spec_yaml).unwrap();
        let mut r = WorkOSConvexAuth::new("acme", spec);
        r.metadata.namespace = Some("apps".into());
        build(&validate(&r, None).unwrap(), &BuildContext::default()).unwrap()
    }

    fn find<'a>(v: &'a [Verdict], t: &str) -> &'a Verdict {
        v.iter().find(|x| x.type_ == t).unwrap()
    }

    #[test]
    fn direct_mode_reports_only_the_config() {
        let v = verdicts(
            &children("{clientId: client_1, jwks: {mode: Direct}}"),
            &Applied::default(),
        );
        assert_eq!(v.len(), 1);
        assert!(
            v[0].ok
                && v[0].message.contains("ConfigMap apps/acme-convex-auth")
                && v[0].message.contains("2 providers")
        );
    }

    #[test]
    fn proxy_mode_reports_availability_and_where_convex_fetches() {
        let c = children("clientId: client_1");
        let v = verdicts(&c, &Applied::default());
        assert_eq!(
            find(&v, PROXY_AVAILABLE).message,
            "0/2 mirror pods available: no mirror pod exists yet: see kubectl describe deployment"
        );
        assert!(!find(&v, PUBLIC_JWKS_URL).ok);
        let v = verdicts(
            &c,
            &Applied {
                available_replicas: 1,
                ..Applied::default()
            },
        );
        assert!(find(&v, PROXY_AVAILABLE).ok);
        let v = verdicts(
            &children("{clientId: client_1, jwks: {publicUrl: 'https://k.acme.com'}}"),
            &Applied::default(),
        );
        assert!(find(&v, PUBLIC_JWKS_URL).ok);
        let v = verdicts(
            &children("{clientId: client_1, proxy: {replicas: 0}}"),
            &Applied::default(),
        );
        assert_eq!(find(&v, PROXY_AVAILABLE).reason, "ScaledToZero");
    }

    #[test]
    fn conflicts_name_the_object_and_the_fix() {
        let applied = Applied {
            conflicts: vec![
                "ConfigMap apps/acme-convex-auth".into(),
                "Service apps/acme-jwks".into(),
            ],
            available_replicas: 2,
            ..Applied::default()
        };
        let v = verdicts(&children("clientId: client_1"), &applied);
        let config = find(&v, CONFIG_READY);
        assert!(
            !config.ok
                && config
                    .message
                    .starts_with("ConfigMap apps/acme-convex-auth exists and is not controlled")
        );
        assert!(config.message.contains("spec.configMap.name"));
        let proxy = find(&v, PROXY_AVAILABLE);
        assert_eq!(proxy.reason, "Conflict");
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
            find(&verdicts(&c, &applied), PROXY_AVAILABLE)
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
    }

    #[test]
    fn pod_state_reads_the_kubelets_status() {
        let pod = |status: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
                .unwrap()
        };
        assert_eq!(pod_state(&pod(serde_json::json!({}))), PodState::Pending);
        assert_eq!(
            pod_state(&pod(
                serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]})
            )),
            PodState::Ready
        );
        assert_eq!(
            pod_state(&pod(
                serde_json::json!({"containerStatuses": [{"name": "m", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]})
            )),
            PodState::RunningNotReady
        );
        assert_eq!(
            pod_state(&pod(
                serde_json::json!({"containerStatuses": [{"name": "m", "image": "i", "imageID": "", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})
            )),
            PodState::Waiting {
                reason: "CrashLoopBackOff".into()
            }
        );
        assert_eq!(
            pod_state(&pod(
                serde_json::json!({"containerStatuses": [{"name": "m", "image": "i", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]})
            )),
            PodState::Pending
        );
    }
}
