//! Waiting for a resource's condition, named by the crate's own `ConditionType` and `Reason`:
//! one wait for the tests against the apiserver and those on the real node, each with its own
//! timeout.

use std::fmt;
use std::time::Duration;

use kube::Api;
use workos_convex_auth::api::{Condition, WorkOSConvexAuth};
use workos_convex_auth::reconcile::reason::{ConditionType, Reason};

/// What a condition must say: its type, and as much of status, reason and message as asked.
#[derive(Debug, Clone)]
pub struct Want {
    type_: ConditionType,
    status: Option<bool>,
    reason: Option<Reason>,
    message: Option<Message>,
    current: bool,
}

#[derive(Debug, Clone)]
enum Message {
    Is(String),
    Contains(String),
}

impl Want {
    /// Condition `type_`, whatever it says.
    pub fn of(type_: ConditionType) -> Self {
        Self {
            type_,
            status: None,
            reason: None,
            message: None,
            current: false,
        }
    }

    /// Condition `type_` with status `True`.
    pub fn holds(type_: ConditionType) -> Self {
        Self {
            status: Some(true),
            ..Self::of(type_)
        }
    }

    /// Condition `type_` with status `False`.
    pub fn fails(type_: ConditionType) -> Self {
        Self {
            status: Some(false),
            ..Self::of(type_)
        }
    }

    /// `Ready=False` with `reason`: the resource refused, or waiting on something.
    pub fn refused(reason: Reason) -> Self {
        Self::fails(ConditionType::Ready).reason(reason)
    }

    pub fn reason(self, reason: Reason) -> Self {
        Self {
            reason: Some(reason),
            ..self
        }
    }

    /// The message is exactly `message`.
    pub fn message(self, message: &str) -> Self {
        Self {
            message: Some(Message::Is(message.to_string())),
            ..self
        }
    }

    /// The message contains `part`.
    pub fn message_containing(self, part: &str) -> Self {
        Self {
            message: Some(Message::Contains(part.to_string())),
            ..self
        }
    }

    /// And the status is of the resource's current generation (`observedGeneration`).
    pub fn current(self) -> Self {
        Self {
            current: true,
            ..self
        }
    }

    /// The condition of `resource` that is as wanted, if any.
    pub fn met_by(&self, resource: &WorkOSConvexAuth) -> Option<Condition> {
        let status = resource.status.as_ref()?;
        if self.current && status.observed_generation != resource.metadata.generation {
            return None;
        }
        status.conditions.iter().find(|c| self.matches(c)).cloned()
    }

    fn matches(&self, c: &Condition) -> bool {
        c.type_ == self.type_.as_str()
            && self
                .status
                .is_none_or(|s| c.status == if s { "True" } else { "False" })
            && self.reason.is_none_or(|r| c.reason == r.as_str())
            && match &self.message {
                None => true,
                Some(Message::Is(m)) => c.message == *m,
                Some(Message::Contains(part)) => c.message.contains(part.as_str()),
            }
    }
}

/// `Ready=False (NotAllowed) says "…"`: how a wait names what it waits for.
impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.type_)?;
        if let Some(s) = self.status {
            write!(f, "={}", if s { "True" } else { "False" })?;
        }
        if let Some(r) = self.reason {
            write!(f, " ({r})")?;
        }
        match &self.message {
            Some(Message::Is(m)) => write!(f, " says {m:?}")?,
            Some(Message::Contains(part)) => write!(f, " says …{part:?}…")?,
            None => {}
        }
        if self.current {
            write!(f, ", current")?;
        }
        Ok(())
    }
}

/// Waits until resource `name` has a condition as `want`ed; returns the resource as read then
/// and that condition. Fails the test after `timeout`, with the last status read.
pub async fn wait_for(
    api: &Api<WorkOSConvexAuth>,
    name: &str,
    want: &Want,
    timeout: Duration,
) -> (WorkOSConvexAuth, Condition) {
    let found = wca_test_harness::eventually(timeout, &format!("{name}: {want}"), || async {
        let r = api.get(name).await.ok()?;
        let c = want.met_by(&r)?;
        Some((r, c))
    })
    .await;
    match found {
        Ok(found) => found,
        Err(e) => {
            let status = api.get(name).await.map(|r| r.status);
            panic!("{e}; status: {status:#?}")
        }
    }
}

/// Condition `type_` of `resource`, which must have it.
pub fn condition(resource: &WorkOSConvexAuth, type_: ConditionType) -> Condition {
    resource
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("condition {type_} in {:?}", resource.status))
}
