//! The status. `desired_status` is pure (what the status should say, keeping each condition's
//! `lastTransitionTime` unless its status flips); `write` patches it only when it differs, so a
//! settled resource causes no writes at all.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;

use super::names::FIELD_MANAGER;
use super::reason::{ConditionType, Reason, Waits};
use crate::api::{Condition, WorkOSConvexAuth, WorkOSConvexAuthStatus};

/// One condition as the reconcile found it, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub condition: ConditionType,
    pub holds: bool,
    pub reason: Reason,
    pub message: String,
}

impl Finding {
    pub fn holds(condition: ConditionType, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            condition,
            holds: true,
            reason,
            message: message.into(),
        }
    }

    pub fn fails(condition: ConditionType, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            condition,
            holds: false,
            reason,
            message: message.into(),
        }
    }
}

/// What the reconcile found, everything status needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub findings: Vec<Finding>,
    pub jwks_url: Option<String>,
    pub issuers: Vec<String>,
    pub config_map_name: Option<String>,
    pub key_ids: Vec<String>,
}

/// The status to write. `Ready` is derived: it holds when every other condition does, except
/// the informational `PublicJwksUrl` (informational unless Convex cannot fetch the keys at all:
/// then that comes first in `Ready`, since nothing else can fix it).
pub fn desired_status(
    previous: Option<&WorkOSConvexAuthStatus>,
    observed: &Observed,
    now: &Time,
) -> WorkOSConvexAuthStatus {
    let failing = observed.findings.iter().filter(|f| !f.holds);
    let blocking = failing
        .clone()
        .find(|f| f.reason == Reason::ConvexCannotFetchKeys);
    let ready = match blocking.or_else(|| {
        // Informational: a public URL, and a route no Gateway controller has reported on yet.
        failing.clone().find(|f| {
            f.condition != ConditionType::PublicJwksUrl && f.reason != Reason::RoutePending
        })
    }) {
        None => Finding::holds(
            ConditionType::Ready,
            Reason::Reconciled,
            "the Convex auth config is generated and its JWKS is served",
        ),
        Some(failing) => Finding::fails(
            ConditionType::Ready,
            failing.reason,
            failing.message.clone(),
        ),
    };
    let progress = kstatus_condition(&ready, &observed.findings);
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = std::iter::once(&ready)
        .chain(observed.findings.iter())
        .chain(progress.as_ref())
        .map(|f| {
            let status = if f.holds { "True" } else { "False" };
            let since = previous_conditions
                .iter()
                .find(|c| c.type_ == f.condition.as_str() && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: f.condition.as_str().to_string(),
                status: status.to_string(),
                reason: f.reason.as_str().to_string(),
                message: capped(&f.message),
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

/// kstatus's abnormal-true conditions (what Flux, kpt and Config Sync read): none when `Ready`
/// holds; `Stalled` when any failing condition waits for someone's edit (the first such one:
/// retrying cannot help, so a GitOps wait fails at once instead of at its timeout); else
/// `Reconciling` with `Ready`'s own reason and message.
fn kstatus_condition(ready: &Finding, findings: &[Finding]) -> Option<Finding> {
    if ready.holds {
        return None;
    }
    let stalled = std::iter::once(ready)
        .chain(findings.iter().filter(|f| !f.holds))
        .find(|f| f.reason.waits() == Waits::ForAnEdit);
    Some(match stalled {
        Some(f) => Finding::holds(ConditionType::Stalled, f.reason, f.message.clone()),
        None => Finding::holds(
            ConditionType::Reconciling,
            ready.reason,
            ready.message.clone(),
        ),
    })
}

/// Longest condition message (and Event note) written: whatever a message quotes (an upstream's
/// or a deployment's answer, an apiserver's refusal) cannot grow status beyond it. Kubernetes
/// caps an Event's note at 1 KiB too.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message`, cut at a character boundary to at most [`MAX_MESSAGE_BYTES`], marked when cut.
pub fn capped(message: &str) -> String {
    const MARK: &str = " …(cut)";
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES - MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &message[..end])
}

/// The body of a server-side apply of the status subresource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusApply<'a> {
    api_version: &'a str,
    kind: &'a str,
    status: &'a WorkOSConvexAuthStatus,
}

/// Writes the status with server-side apply, unless it is already what is wanted.
pub async fn write(
    api: &Api<WorkOSConvexAuth>,
    resource: &WorkOSConvexAuth,
    status: &WorkOSConvexAuthStatus,
) -> kube::Result<bool> {
    if resource.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let name = resource.metadata.name.as_deref().unwrap_or_default();
    let body = StatusApply {
        api_version: &WorkOSConvexAuth::api_version(&()),
        kind: &WorkOSConvexAuth::kind(&()),
        status,
    };
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

/// Now, to the second: conditions carry no sub-second times.
pub fn now() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(now.round(k8s_openapi::jiff::Unit::Second).unwrap_or(now))
}

#[cfg(test)]
mod caps {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary_and_marked() {
        assert_eq!(capped("short"), "short");
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(capped(&exact), exact);
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = capped(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert!(cut.ends_with(" …(cut)") && cut.starts_with("éé"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + seconds).unwrap())
    }

    fn observed(available: bool) -> Observed {
        Observed {
            generation: Some(3),
            findings: vec![
                Finding::holds(ConditionType::ConfigReady, Reason::Generated, "ok"),
                Finding {
                    condition: ConditionType::ProxyAvailable,
                    holds: available,
                    reason: if available {
                        Reason::Available
                    } else {
                        Reason::Unavailable
                    },
                    message: "0/2".into(),
                },
                Finding::fails(
                    ConditionType::PublicJwksUrl,
                    Reason::ClusterInternalUrl,
                    "only in-cluster",
                ),
            ],
            ..Observed::default()
        }
    }

    fn condition(s: &WorkOSConvexAuthStatus, t: ConditionType) -> &Condition {
        s.conditions.iter().find(|c| c.type_ == t.as_str()).unwrap()
    }

    fn kstatus(s: &WorkOSConvexAuthStatus) -> Vec<(String, String, String)> {
        s.conditions
            .iter()
            .filter(|c| c.type_ == "Reconciling" || c.type_ == "Stalled")
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    /// Issue 24: kstatus's conditions. Pods starting: `Reconciling`; anything that needs an edit
    /// wins over work under way (`Stalled`, the first such); both gone once `Ready` holds.
    #[test]
    fn reconciling_or_stalled_says_what_ready_waits_for_and_both_go_when_it_holds() {
        let starting = desired_status(None, &observed(false), &at(1));
        let one = |t: &str, r: &str| vec![(t.to_string(), "True".to_string(), r.to_string())];
        assert_eq!(kstatus(&starting), one("Reconciling", "Unavailable"));
        assert_eq!(
            condition(&starting, ConditionType::Reconciling).message,
            "0/2"
        );
        let mut stuck = observed(false);
        stuck.findings.push(Finding::fails(
            ConditionType::ConvexSynced,
            Reason::AdminKeyMissing,
            "Secret convex-admin has no key adminKey",
        ));
        let stalled = desired_status(Some(&starting), &stuck, &at(2));
        assert_eq!(kstatus(&stalled), one("Stalled", "AdminKeyMissing"));
        assert_eq!(
            condition(&stalled, ConditionType::Ready).reason,
            "Unavailable",
            "Ready still names the first failing condition"
        );
        let ready = desired_status(Some(&stalled), &observed(true), &at(3));
        assert_eq!(condition(&ready, ConditionType::Ready).status, "True");
        assert!(kstatus(&ready).is_empty(), "{:?}", ready.conditions);
    }

    #[test]
    fn ready_follows_the_first_failing_condition_but_ignores_the_url_warning() {
        let s = desired_status(None, &observed(false), &at(1));
        assert_eq!(
            (
                s.conditions[0].type_.as_str(),
                s.conditions[0].status.as_str()
            ),
            ("Ready", "False")
        );
        assert_eq!(s.conditions[0].reason, "Unavailable");
        let s = desired_status(None, &observed(true), &at(1));
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

    /// Issue 24: when Convex cannot fetch the keys at all, `Ready` says so first, before a mirror
    /// that is still starting and before any Convex sync outcome.
    #[test]
    fn ready_names_an_unreachable_jwks_url_before_anything_else() {
        // `observed`, its PublicJwksUrl finding the one of a Convex deployment outside.
        let unreachable = |available: bool| {
            let mut o = observed(available);
            for finding in &mut o.findings {
                if finding.condition == ConditionType::PublicJwksUrl {
                    finding.reason = Reason::ConvexCannotFetchKeys;
                    finding.message = "Convex cannot fetch it".into();
                }
            }
            o
        };
        let mut o = unreachable(false);
        o.findings.push(Finding::fails(
            ConditionType::ConvexSynced,
            Reason::AdminKeyMissing,
            "no admin key",
        ));
        let s = desired_status(None, &o, &at(1));
        let ready = &s.conditions[0];
        assert_eq!(
            (
                ready.status.as_str(),
                ready.reason.as_str(),
                ready.message.as_str()
            ),
            ("False", "ConvexCannotFetchKeys", "Convex cannot fetch it")
        );
        // With everything else holding, it still fails Ready: it is not informational.
        let s = desired_status(None, &unreachable(true), &at(1));
        assert_eq!(s.conditions[0].status, "False");
    }

    #[test]
    fn a_route_no_gateway_reported_on_is_informational_a_refused_one_is_not() {
        let mut o = observed(true);
        o.findings.push(Finding::fails(
            ConditionType::RouteAccepted,
            Reason::RoutePending,
            "no Gateway controller has reported",
        ));
        let s = desired_status(None, &o, &at(1));
        assert_eq!(
            s.conditions[0].status, "True",
            "RoutePending is informational"
        );
        o.findings.pop();
        o.findings.push(Finding::fails(
            ConditionType::RouteAccepted,
            Reason::RouteNotAccepted,
            "refused",
        ));
        let s = desired_status(None, &o, &at(1));
        assert_eq!(
            (
                s.conditions[0].status.as_str(),
                s.conditions[0].reason.as_str()
            ),
            ("False", "RouteNotAccepted")
        );
    }

    #[test]
    fn transition_time_only_moves_when_the_status_flips() {
        let first = desired_status(None, &observed(false), &at(1));
        let same = desired_status(Some(&first), &observed(false), &at(2));
        assert_eq!(first, same, "nothing changed, so nothing to write");
        let flipped = desired_status(Some(&same), &observed(true), &at(3));
        let time = |t| condition(&flipped, t).last_transition_time.clone();
        assert_eq!(time(ConditionType::ProxyAvailable), at(3));
        assert_eq!(time(ConditionType::ConfigReady), at(1));
        assert_eq!(time(ConditionType::Ready), at(3));
    }

    #[test]
    fn the_status_body_is_a_typed_apply_of_the_status_only() {
        let status = desired_status(None, &observed(true), &at(0));
        let body = serde_json::to_value(StatusApply {
            api_version: &WorkOSConvexAuth::api_version(&()),
            kind: &WorkOSConvexAuth::kind(&()),
            status: &status,
        })
        .unwrap();
        assert_eq!(body["apiVersion"], "workos-convex.io/v1alpha1");
        assert_eq!(body["kind"], "WorkOSConvexAuth");
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2027-01-15T08:00:00Z"
        );
        assert!(body.get("spec").is_none() && body.get("metadata").is_none());
    }
}
