//! The test API server's audit log (tests/harness: every request a ServiceAccount makes,
//! metadata only), read as typed writes.

use std::fmt;
use std::path::Path;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

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
    let user = format!("system:serviceaccount:default:{account}");
    std::fs::read_to_string(audit_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["user"]["username"] == user.as_str())
        .filter(|e| {
            e["requestReceivedTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|at| at >= since)
        })
        .filter(|e| {
            matches!(
                e["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            )
        })
        .map(|e| Write {
            verb: e["verb"].as_str().unwrap_or("?").to_string(),
            resource: e["objectRef"]["resource"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
            name: e["objectRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            code: e["responseStatus"]["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or_default(),
        })
        .collect()
}
