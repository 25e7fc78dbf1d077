//! Step 4: the status. `desired_status` is pure (what the status should say, keeping each
//! condition's `lastTransitionTime` unless its status flips); `write` patches it only when it
//! differs, so a settled resource causes no writes at all.

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::names::FIELD_MANAGER;
use crate::api::{Condition, WorkOSConvexAuth, WorkOSConvexAuthStatus};

pub const READY: &str = "Ready";
pub const CONFIG_READY: &str = "ConfigReady";
pub const PROXY_AVAILABLE: &str = "ProxyAvailable";
pub const PUBLIC_JWKS_URL: &str = "PublicJwksUrl";

/// One condition as computed, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    pub fn new(
        type_: &'static str,
        ok: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            ok,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What the reconcile found, everything status needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub verdicts: Vec<Verdict>,
    pub jwks_url: Option<String>,
    pub issuers: Vec<String>,
    pub config_map_name: Option<String>,
    pub key_ids: Vec<String>,
}

/// The status to write. `Ready` is derived: true when every other condition is, except the
/// informational `PublicJwksUrl`.
pub fn desired_status(
    previous: Option<&WorkOSConvexAuthStatus>,
    observed: &Observed,
    now: &str,
) -> WorkOSConvexAuthStatus {
    let blocking: Vec<&Verdict> = observed
        .verdicts
        .iter()
        .filter(|v| v.type_ != PUBLIC_JWKS_URL)
        .collect();
    let ready = match blocking.iter().find(|v| !v.ok) {
        None => Verdict::new(
            READY,
            true,
            "Reconciled",
            "the Convex auth config is generated and its JWKS is served",
        ),
        Some(failing) => Verdict::new(
            READY,
            false,
            failing.reason.clone(),
            failing.message.clone(),
        ),
    };
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = std::iter::once(&ready)
        .chain(observed.verdicts.iter())
        .map(|v| {
            let status = if v.ok { "True" } else { "False" };
            let since = previous_conditions
                .iter()
                .find(|c| c.type_ == v.type_ && c.status == status)
                .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
            Condition {
                type_: v.type_.to_string(),
                status: status.to_string(),
                reason: v.reason.clone(),
                message: v.message.clone(),
                last_transition_time: since,
                observed_generation: observed.generation,
            }
        })
        .collect();
    WorkOSConvexAuthStatus {
        observed_generation: observed.generation,
        conditions,
        jwks_url: observed.jwks_url.clone(),
        issuers: observed.issuers.clone(),
        config_map_name: observed.config_map_name.clone(),
        key_ids: observed.key_ids.clone(),
    }
}

/// Writes the status with server-side apply, unless it is already what is wanted.
pub async fn write(
    api: &Api<WorkOSConvexAuth>,
    resource: &WorkOSConvexAuth,
    status: WorkOSConvexAuthStatus,
) -> kube::Result<bool> {
    if resource.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let name = resource.metadata.name.as_deref().unwrap_or_default();
    let body = json!({"apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth", "status": status});
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(ok: bool) -> Observed {
        Observed {
            generation: Some(3),
            verdicts: vec![
                Verdict::new(CONFIG_READY, true, "Generated", "ok"),
                Verdict::new(
                    PROXY_AVAILABLE,
                    ok,
                    if ok { "Available" } else { "Unavailable" },
                    "0/2",
                ),
                Verdict::new(
                    PUBLIC_JWKS_URL,
                    false,
                    "ClusterInternalUrl",
                    "only in-cluster",
                ),
            ],
            ..Observed::default()
        }
    }

    #[test]
    fn ready_follows_the_first_failing_condition_but_ignores_the_url_warning() {
        let s = desired_status(None, &observed(false), "t1");
        assert_eq!(
            (
                s.conditions[0].type_.as_str(),
                s.conditions[0].status.as_str()
            ),
            ("Ready", "False")
        );
        assert_eq!(s.conditions[0].reason, "Unavailable");
        let s = desired_status(None, &observed(true), "t1");
        assert_eq!(
            s.conditions[0].status, "True",
            "PublicJwksUrl=False is informational"
        );
        assert_eq!(s.observed_generation, Some(3));
        assert!(
            s.conditions
                .iter()
                .all(|c| c.observed_generation == Some(3))
        );
    }

    #[test]
    fn transition_time_only_moves_when_the_status_flips() {
        let first = desired_status(None, &observed(false), "t1");
        let same = desired_status(Some(&first), &observed(false), "t2");
        assert_eq!(first, same, "nothing changed, so nothing to write");
        let flipped = desired_status(Some(&same), &observed(true), "t3");
        let time = |s: &WorkOSConvexAuthStatus, t: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(time(&flipped, PROXY_AVAILABLE), "t3");
        assert_eq!(time(&flipped, CONFIG_READY), "t1");
        assert_eq!(time(&flipped, READY), "t3");
    }
}
