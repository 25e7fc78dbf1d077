//! Helpers of the benchmarks (`controller.rs`, `ha.rs`), which are programs of their own.
#![allow(dead_code)]

use std::path::Path;

use anyhow::Context;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;
use workos_convex_auth::api::{JwksMode, WorkOSConvexAuth};

/// The tests' typed fixtures (`operator/tests/support/fixtures.rs`): the benchmarks build their
/// resources the same way.
#[path = "../../tests/support/fixtures.rs"]
mod fixtures;

/// Resource `name` in `mode`, built from the crate's typed spec.
pub fn resource(name: &str, mode: JwksMode) -> WorkOSConvexAuth {
    let mut spec = fixtures::spec("client_01BENCH");
    spec.jwks.mode = mode;
    fixtures::resource(name, spec)
}

/// A process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One request of the audit log (ResponseComplete stage).
pub struct Audited {
    pub user: String,
    pub verb: String,
    pub resource: String,
    /// The namespace of the object, empty for cluster-scoped ones.
    pub namespace: String,
    /// The HTTP status of the answer.
    pub code: u64,
}

/// Counts of `verb resource[/subresource] code`, for a row that says what the writes were.
pub fn breakdown<'a>(
    entries: impl Iterator<Item = &'a Audited>,
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for e in entries {
        *counts
            .entry(format!("{} {} {}", e.verb, e.resource, e.code))
            .or_default() += 1;
    }
    counts
}

impl Audited {
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// Every completed request in the apiserver's audit log, from line `from` on; and the next line.
pub fn audited(log: &Path, from: usize) -> (Vec<Audited>, usize) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let entries = lines
        .iter()
        .skip(from)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["stage"] == "ResponseComplete")
        .map(|e| Audited {
            user: e["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            verb: e["verb"].as_str().unwrap_or_default().to_string(),
            resource: e["objectRef"]["resource"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            namespace: e["objectRef"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            code: e["responseStatus"]["code"].as_u64().unwrap_or_default(),
        })
        .collect();
    (entries, lines.len())
}

/// `default/<name>`'s ServiceAccount user name, as the audit log writes it.
pub fn service_account(name: &str) -> String {
    format!("system:serviceaccount:default:{name}")
}

/// A sample of the operator's `/metrics`.
pub async fn metric(admin: &str, sample: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{sample} in /metrics"))
}

/// How many WorkOSConvexAuth resources are Ready, in every namespace.
pub async fn ready_count(client: &Client) -> anyhow::Result<usize> {
    let all: Api<WorkOSConvexAuth> = Api::all(client.clone());
    Ok(all
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        })
        .count())
}
