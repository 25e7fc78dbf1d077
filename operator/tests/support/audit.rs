//! The test API server's audit log (tests/harness and the real node: every request a
//! ServiceAccount makes, metadata only), read as typed entries: one reader for every test that
//! asks who did what.

use std::fmt;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use workos_convex_auth::reconcile::live::ChildKind;

/// One request, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub user: String,
    pub verb: String,
    pub request_uri: String,
    /// What it was about; `None` for discovery and other non-resource URLs.
    pub object: Option<ObjectRef>,
    pub code: u16,
    /// The refusal's message, for a request that failed.
    pub message: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_group: String,
    /// The resource's plural, e.g. `configmaps`.
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    /// `None` for a create, which the audit log records without a name until it is known.
    pub name: Option<String>,
}

impl Entry {
    fn parse(e: &Value) -> Option<Self> {
        let object = e.get("objectRef").map(|o| ObjectRef {
            api_group: o["apiGroup"].as_str().unwrap_or_default().to_string(),
            resource: o["resource"].as_str().unwrap_or_default().to_string(),
            subresource: o["subresource"].as_str().map(str::to_string),
            namespace: o["namespace"].as_str().map(str::to_string),
            name: o["name"].as_str().map(str::to_string),
        });
        Some(Self {
            user: e["user"]["username"].as_str()?.to_string(),
            verb: e["verb"].as_str()?.to_string(),
            request_uri: e["requestURI"].as_str().unwrap_or_default().to_string(),
            object,
            // 0 where the entry has no response (yet).
            code: e["responseStatus"]["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or_default(),
            message: e["responseStatus"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            at: e["requestReceivedTimestamp"].as_str()?.parse().ok()?,
        })
    }

    /// `create`, `update`, `patch`, `delete` or `deletecollection`.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// The resource's plural (`?` without one).
    pub fn resource(&self) -> &str {
        self.object.as_ref().map_or("?", |o| o.resource.as_str())
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object.as_ref()?.namespace.as_deref()
    }

    /// A child the operator server-side applies, of any kind (`ChildKind::ALL`), not its
    /// status nor an Event.
    pub fn is_child(&self) -> bool {
        ChildKind::ALL
            .iter()
            .any(|kind| kind.resource() == self.resource())
            && self
                .object
                .as_ref()
                .is_some_and(|o| o.subresource.is_none())
    }

    /// `verb resource ns/name → code`, for failure messages.
    pub fn describe(&self) -> String {
        let (ns, name) = self.object.as_ref().map_or(("", ""), |o| {
            (
                o.namespace.as_deref().unwrap_or(""),
                o.name.as_deref().unwrap_or(""),
            )
        });
        format!(
            "{} {} {ns}/{name} → {}",
            self.verb,
            self.resource(),
            self.code
        )
    }
}

/// Every entry of the log at `path` (none while it does not exist), in order.
pub fn read(path: &Path) -> Vec<Entry> {
    parse(&std::fs::read_to_string(path).unwrap_or_default())
}

/// Every entry of the log at `path`, which must exist: a test that finds nothing wrong in it
/// must have read it.
pub fn read_existing(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the audit log {}: {e}", path.display()));
    parse(&text)
}

fn parse(log: &str) -> Vec<Entry> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|e| Entry::parse(&e))
        .collect()
}

/// `system:serviceaccount:NS:NAME`, as the audit log names a ServiceAccount.
pub fn service_account(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// One write request (`create`, `update`, `patch`, `delete`, `deletecollection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub verb: String,
    /// The resource's plural, e.g. `configmaps`; subresources are not included.
    pub resource: String,
    /// Empty for a create, which the audit log records without a name until it is known.
    pub name: String,
    pub code: u16,
}

/// `verb resource → code`: how the tests print a write.
impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → {}", self.verb, self.resource, self.code)
    }
}

/// The writes ServiceAccount `default/<account>` made since `since`, in the order they came.
pub fn writes_by(audit_log: &Path, account: &str, since: Timestamp) -> Vec<Write> {
    let user = service_account("default", account);
    read(audit_log)
        .into_iter()
        .filter(|e| e.user == user && e.at >= since && e.is_write())
        .map(|e| Write {
            resource: e.resource().to_string(),
            name: e.object.and_then(|o| o.name).unwrap_or_default(),
            verb: e.verb,
            code: e.code,
        })
        .collect()
}
