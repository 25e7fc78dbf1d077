//! `status` (also `kubectl wca status`): every WorkOSConvexAuth, across namespaces or in one,
//! with its conditions and JWKS URL as a table. Read with the user's kubeconfig, as
//! `check-token --resource` reads a resource; the table itself is pure.

use clap::Args;
use kube::api::{Api, ListParams};

use crate::api::WorkOSConvexAuth;
use crate::kubeconfig::{ClusterArgs, ClusterError};
use crate::printable::escaped;
use crate::reconcile::ConditionType;

/// Show every WorkOSConvexAuth's conditions and JWKS URL.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Only this resource (with -n, or in the context's namespace).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Only the resources in this namespace (default: every namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Output: the table, or the resources' status as json or yaml.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: Output,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `status -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Why the resources could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot list WorkOSConvexAuth resources{scope}: {message}")]
    List { scope: String, message: String },
    #[error("cannot read WorkOSConvexAuth {namespace}/{name}: {message}")]
    Get {
        namespace: String,
        name: String,
        message: String,
    },
}

/// The condition columns, always shown and in this order, so a missing condition reads `-`
/// rather than shifting columns; a type the status holds beyond these gets a column after them.
const CONDITIONS: [ConditionType; 5] = [
    ConditionType::Ready,
    ConditionType::ConfigReady,
    ConditionType::ProxyAvailable,
    ConditionType::PublicJwksUrl,
    ConditionType::ConvexSynced,
];

/// Lists the resources and prints the table (or, like kubectl, a note on stderr when there are
/// none).
pub async fn run(args: &StatusArgs) -> Result<(), StatusError> {
    let resources = list(args).await?;
    match args.output {
        Output::Table if resources.is_empty() => {
            eprintln!("{}", nothing_found(args.namespace.as_deref()));
        }
        Output::Table => print!(
            "{}",
            table(&resources, args.namespace.is_none() && args.name.is_none())
        ),
        Output::Json => println!("{}", structured(&resources, Output::Json)),
        Output::Yaml => print!("{}", structured(&resources, Output::Yaml)),
    }
    Ok(())
}

/// `-o json|yaml`: each resource's namespace, name and status, as a list (kubectl's shape of a
/// list: `items`).
pub fn structured(resources: &[WorkOSConvexAuth], output: Output) -> String {
    let items: Vec<serde_json::Value> = resources
        .iter()
        .map(|r| {
            serde_json::json!({
                "namespace": r.metadata.namespace,
                "name": r.metadata.name,
                "status": r.status,
            })
        })
        .collect();
    let list = serde_json::json!({ "items": items });
    match output {
        Output::Yaml => serde_saphyr::to_string(&list).unwrap_or_default(),
        _ => serde_json::to_string_pretty(&list).unwrap_or_default(),
    }
}

/// The resources in the namespace, or in every namespace; with a name, that one resource.
pub async fn list(args: &StatusArgs) -> Result<Vec<WorkOSConvexAuth>, StatusError> {
    let client = args.cluster.client().await?;
    if let Some(name) = &args.name {
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let api: Api<WorkOSConvexAuth> = Api::namespaced(client, &namespace);
        return api
            .get(name)
            .await
            .map(|r| vec![r])
            .map_err(|e| StatusError::Get {
                namespace,
                name: name.clone(),
                message: e.to_string(),
            });
    }
    let api: Api<WorkOSConvexAuth> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| StatusError::List {
            scope: scope(args.namespace.as_deref()),
            message: e.to_string(),
        })?;
    Ok(list.items)
}

fn scope(namespace: Option<&str>) -> String {
    namespace.map_or(String::new(), |ns| format!(" in namespace {ns}"))
}

/// What an empty list prints.
pub fn nothing_found(namespace: Option<&str>) -> String {
    format!("No WorkOSConvexAuth resources found{}.", scope(namespace))
}

/// The table: one row per resource, sorted by namespace and name; the NAMESPACE column only
/// across namespaces (as kubectl does). A condition cell is `True`, or `False:<Reason>` /
/// `Unknown:<Reason>` (no spaces, so `awk` splits the columns), or `-` when absent.
pub fn table(resources: &[WorkOSConvexAuth], with_namespace: bool) -> String {
    let mut types: Vec<String> = CONDITIONS.iter().map(|t| t.as_str().to_string()).collect();
    let mut extra: Vec<String> = resources
        .iter()
        .filter_map(|r| r.status.as_ref())
        .flat_map(|s| s.conditions.iter().map(|c| c.type_.clone()))
        .filter(|t| !types.contains(t))
        .collect();
    extra.sort();
    extra.dedup();
    types.extend(extra);

    let mut header: Vec<String> = Vec::new();
    if with_namespace {
        header.push("NAMESPACE".into());
    }
    header.push("NAME".into());
    header.extend(types.iter().map(|t| t.to_uppercase()));
    header.push("JWKS URL".into());

    let mut sorted: Vec<&WorkOSConvexAuth> = resources.iter().collect();
    sorted.sort_by_key(|r| (r.metadata.namespace.clone(), r.metadata.name.clone()));
    let mut rows = vec![header];
    for r in sorted {
        let mut row = Vec::new();
        if with_namespace {
            row.push(r.metadata.namespace.clone().unwrap_or_else(|| "-".into()));
        }
        row.push(r.metadata.name.clone().unwrap_or_else(|| "-".into()));
        let conditions = r.status.as_ref().map(|s| s.conditions.as_slice());
        for t in &types {
            let cell = conditions
                .and_then(|cs| cs.iter().find(|c| &c.type_ == t))
                .map_or_else(
                    || "-".to_string(),
                    |c| match (c.status.as_str(), c.reason.as_str()) {
                        ("True", _) => "True".to_string(),
                        (status, "") => status.to_string(),
                        (status, reason) => format!("{status}:{reason}"),
                    },
                );
            row.push(cell);
        }
        row.push(
            r.status
                .as_ref()
                .and_then(|s| s.jwks_url.clone())
                .unwrap_or_else(|| "-".into()),
        );
        rows.push(row);
    }
    align(&rows)
}

/// Columns padded to their widest cell and three spaces apart, as kubectl prints; no trailing
/// spaces. Cells come from status, which others than the operator may write: control and
/// reordering characters are escaped, never sent to the terminal.
fn align(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escaped(cell).into_owned()).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(ns: &str, name: &str, status: serde_json::Value) -> WorkOSConvexAuth {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clientId": "client_1"},
            "status": status,
        }))
        .unwrap()
    }

    fn condition(t: &str, status: &str, reason: &str) -> serde_json::Value {
        serde_json::json!({"type": t, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn rows_sorted_cells_named_and_unknown_types_appended() {
        let a = resource(
            "b",
            "one",
            serde_json::json!({
                "jwksUrl": "https://x/jwks",
                "conditions": [
                    condition("Ready", "False", "ConvexNotSynced"),
                    condition("ConfigReady", "True", "Generated"),
                    condition("Zeta", "Unknown", ""),
                ],
            }),
        );
        let b = resource("a", "two", serde_json::json!({}));
        assert_eq!(
            table(&[a.clone(), b.clone()], true),
            "\
NAMESPACE   NAME   READY                   CONFIGREADY   PROXYAVAILABLE   PUBLICJWKSURL   CONVEXSYNCED   ZETA      JWKS URL
a           two    -                       -             -                -               -              -         -
b           one    False:ConvexNotSynced   True          -                -               -              Unknown   https://x/jwks
"
        );
        assert_eq!(
            table(&[b], false),
            "\
NAME   READY   CONFIGREADY   PROXYAVAILABLE   PUBLICJWKSURL   CONVEXSYNCED   JWKS URL
two    -       -             -                -               -              -
"
        );
        assert_eq!(
            nothing_found(Some("apps")),
            "No WorkOSConvexAuth resources found in namespace apps."
        );
    }

    /// Status may be written by others than the operator: what it holds reaches the terminal
    /// escaped, never as an escape sequence.
    #[test]
    fn control_characters_from_status_are_escaped() {
        let r = resource(
            "a",
            "one",
            serde_json::json!({
                "jwksUrl": "https://x/\u{1b}]8;;https://evil/\u{7}jwks",
                "conditions": [condition("Ready", "False", "Bad\u{1b}[2J")],
            }),
        );
        let table = table(&[r], false);
        assert!(
            table
                .chars()
                .filter(|c| *c != '\n')
                .all(|c| !crate::printable::unsafe_char(c)),
            "{table:?}"
        );
        assert!(table.contains(r"False:Bad\u{1b}[2J"), "{table}");
        assert!(
            table.contains(r"https://x/\u{1b}]8;;https://evil/\u{7}jwks"),
            "{table}"
        );
    }
}
