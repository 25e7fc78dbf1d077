//! The README's table of the chart's values, generated from `values.yaml` and its `# --`
//! comments (the helm-docs convention): the test renders the table and fails when the README
//! section between the markers differs.
//!
//! Regenerate after changing values.yaml: `UPDATE_README=1 cargo test -p workos-convex-auth --test it chart_values`.
//!
//! A key gets a row when it has a `# --` comment (its description, continued by the `#` lines
//! below it), or when it is a leaf (a scalar, a list, an empty map) with no documented parent;
//! an undocumented map is described by its keys' rows. Every row must have a description.

use serde_json::Value;
use wca_test_harness::repo_root;

const START: &str = "<!-- chart-values:start (generated from charts/workos-convex-auth/values.yaml: UPDATE_README=1 cargo test -p workos-convex-auth --test it chart_values) -->";
const END: &str = "<!-- chart-values:end -->";

#[derive(Debug)]
struct Row {
    key: String,
    kind: &'static str,
    default: String,
    description: String,
}

fn lookup<'a>(values: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(values, |v, k| v.get(k))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// The rows of `values.yaml`, in file order. `values` is the same file parsed, for the defaults.
fn rows(text: &str, values: &Value) -> Vec<Row> {
    // (indent, key, documented by itself or an ancestor)
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    let mut doc: Option<String> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            doc = None; // a blank line ends a comment block
            continue;
        }
        if let Some(first) = trimmed.strip_prefix("# --") {
            doc = Some(first.trim().to_string());
            continue;
        }
        if let Some(more) = trimmed.strip_prefix('#') {
            if let Some(d) = doc.as_mut() {
                d.push(' ');
                d.push_str(more.trim());
            }
            continue;
        }
        if trimmed.starts_with('-') {
            continue; // an item of a block list: part of its key's value
        }
        let Some((key, _)) = trimmed.split_once(':') else {
            panic!("values.yaml: cannot read {line:?}");
        };
        while stack.last().is_some_and(|(i, _, _)| *i >= indent) {
            stack.pop();
        }
        let parent_documented = stack.last().is_some_and(|(_, _, d)| *d);
        let mut path: Vec<String> = stack.iter().map(|(_, k, _)| k.clone()).collect();
        path.push(key.trim().to_string());
        let value = lookup(values, &path)
            .unwrap_or_else(|| panic!("values.yaml: {} not in the parsed file", path.join(".")));
        let has_keys = value.as_object().is_some_and(|o| !o.is_empty());
        let description = doc.take();
        let documented = description.is_some();
        if documented || (!parent_documented && !has_keys) {
            rows.push(Row {
                key: path.join("."),
                kind: kind(value),
                default: serde_json::to_string(value).expect("JSON"),
                description: description.unwrap_or_default(),
            });
        }
        stack.push((
            indent,
            key.trim().to_string(),
            parent_documented || documented,
        ));
    }
    rows
}

fn cell(text: &str) -> String {
    // Runs of spaces (from aligned comment lines) collapse; `|` would end the cell.
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from("| value | type | default | description |\n|---|---|---|---|\n");
    for row in rows {
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            row.key,
            row.kind,
            cell(&row.default),
            cell(&row.description)
        ));
    }
    out
}

fn generated() -> (Vec<Row>, String) {
    let path = repo_root().join("charts/workos-convex-auth/values.yaml");
    let text = std::fs::read_to_string(&path).expect("values.yaml");
    let values: Value = serde_saphyr::from_str(&text).expect("values.yaml is YAML");
    let rows = rows(&text, &values);
    let table = table(&rows);
    (rows, table)
}

#[test]
fn every_value_has_a_row_with_a_description() {
    let (rows, _) = generated();
    let undocumented: Vec<&str> = rows
        .iter()
        .filter(|r| r.description.is_empty())
        .map(|r| r.key.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "values without a `# --` comment in values.yaml: {undocumented:?}"
    );
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    for key in [
        "image.repository",
        "watchNamespaces",
        "logLevel",
        "extraEnv",
        "podSecurityContext",
        "securityContext",
        "metrics.prometheusRule.keyAgeSeconds",
        "metrics.dashboard.labels",
        "tests.enabled",
    ] {
        assert!(keys.contains(&key), "{key} has no row: {keys:?}");
    }
    // A documented map is one row: its keys are in its default.
    assert!(!keys.iter().any(|k| k.starts_with("securityContext.")));
    let security = rows.iter().find(|r| r.key == "securityContext").unwrap();
    assert!(security.default.contains("\"readOnlyRootFilesystem\":true"));
}

#[test]
fn the_readme_values_table_is_generated_from_values_yaml() {
    let (_, table) = generated();
    let readme_path = repo_root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the markers\n{START}\n{END}");
    };
    let body_start = start + START.len() + 1;
    let current = &readme[body_start..end];
    if current != table {
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..body_start], &readme[end..]);
            std::fs::write(&readme_path, updated).expect("write README.md");
        } else {
            panic!(
                "the README's values table differs from values.yaml; regenerate it: UPDATE_README=1 cargo test -p workos-convex-auth --test it chart_values"
            );
        }
    }
}
