//! The mirror's pods as the kubelet and the scheduler report them: pure, read from each pod's
//! status in the watch cache, and turned into words by `findings`.

use k8s_openapi::api::core::v1::Pod;

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
    /// The scheduler found no node for it: its message (which taint, selector or resource).
    Unschedulable {
        message: String,
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
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    if let Some(condition) = unschedulable {
        return PodState::Unschedulable {
            message: condition.message.clone().unwrap_or_default(),
        };
    }
    PodState::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_state_reads_the_kubelets_status() {
        let pod = |status: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
                .unwrap()
        };
        assert_eq!(pod_state(&pod(serde_json::json!({}))), PodState::Pending);
        assert_eq!(
            pod_state(&pod(
                serde_json::json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]})
            )),
            PodState::Unschedulable {
                message: "0/1 nodes are available".into()
            }
        );
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
