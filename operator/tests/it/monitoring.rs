//! The chart's alerts and dashboard, checked against the real tools and the real metrics:
//!   - `promtool check rules` on the rule groups the chart renders (helm template), with the
//!     default thresholds and with others;
//!   - `promtool test rules` (tests/alerts/alerts_test.yaml): each alert fires from synthetic
//!     series, and a look-alike does not;
//!   - every metric the dashboard's panels and the alerts query is one the operator or its
//!     mirror exports: the names come from the controller's registry as encoded for a scrape,
//!     and from a real mirror's `/metrics` (serving a fake WorkOS's keys).
//!
//! promtool is Debian's `prometheus` package (tests/run.sh installs it); without it these tests
//! fail, they do not skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use wca_test_harness::{bin_dir, repo_root, run_ok};
use workos_convex_auth::controller::metrics::{Metrics, Readiness};
use workos_convex_auth::reconcile::Reason;

use super::support::mirror::{Mirror, fixture};
use wca_test_harness::fake_workos::FakeWorkos;

const PROMTOOL_HINT: &str = "promtool is missing: apt-get install prometheus (Debian's package ships promtool; bash tests/run.sh installs it)";

fn chart() -> PathBuf {
    repo_root().join("charts/workos-convex-auth")
}

fn helm_template(sets: &[&str], show_only: &str) -> String {
    let mut cmd = Command::new(bin_dir().expect("control-plane binaries").join("helm"));
    cmd.args(["template", "wca"])
        .arg(chart())
        .args(["-n", "wca-system", "--show-only", show_only]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run_ok(&mut cmd).unwrap_or_else(|e| panic!("helm template {sets:?}: {e}"))
}

fn document(yaml: &str) -> Value {
    serde_saphyr::from_multiple::<Value>(yaml)
        .expect("helm renders YAML")
        .into_iter()
        .find(|d| !d.is_null())
        .expect("one document")
}

/// The `spec` of the rendered PrometheusRule: a Prometheus rule file (`groups:`).
fn rendered_rules(sets: &[&str]) -> Value {
    let mut all = vec!["metrics.prometheusRule.enabled=true"];
    all.extend_from_slice(sets);
    let rule = document(&helm_template(&all, "templates/prometheusrule.yaml"));
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    rule["spec"].clone()
}

fn alerts(rules: &Value) -> Vec<&Value> {
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wca-monitoring-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Writes the rule file (JSON is YAML) as `alerts.yaml` in `dir`.
fn write_rules(dir: &Path, rules: &Value) -> PathBuf {
    let path = dir.join("alerts.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(rules).expect("JSON")).expect("write");
    path
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("{PROMTOOL_HINT} ({e})"),
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

const ALERTS: [&str; 5] = [
    "WcaMirrorKeysStale",
    "WcaMirrorAnswering503",
    "WcaUpstreamFetchFailing",
    "WcaReconcileErrors",
    "WcaResourceNotReady",
];

#[test]
fn promtool_accepts_the_rules_the_chart_renders() {
    let variants: [&[&str]; 2] = [
        &[],
        &[
            "metrics.prometheusRule.keyAgeSeconds=7200",
            "metrics.prometheusRule.mirror503For=10m",
            "metrics.prometheusRule.upstreamFailureWindow=1h",
            "metrics.prometheusRule.reconcileErrorsFor=30m",
            "metrics.prometheusRule.notReadySeconds=1800",
        ],
    ];
    for (i, sets) in variants.iter().enumerate() {
        let rules = rendered_rules(sets);
        let names: Vec<&str> = alerts(&rules)
            .iter()
            .filter_map(|r| r["alert"].as_str())
            .collect();
        assert_eq!(names, ALERTS, "{sets:?}");
        let dir = temp_dir(&format!("check-{i}"));
        write_rules(&dir, &rules);
        let out = promtool(&["check", "rules", "alerts.yaml"], &dir);
        assert!(out.status.success(), "{sets:?}: {}", text(&out));
        assert!(
            text(&out).contains("SUCCESS: 5 rules found"),
            "{}",
            text(&out)
        );
    }
    // The thresholds reach the expressions and durations.
    let custom = rendered_rules(variants[1]);
    let by_name = |name: &str| -> Value {
        (*alerts(&custom)
            .into_iter()
            .find(|r| r["alert"] == name)
            .expect(name))
        .clone()
    };
    assert!(
        by_name("WcaMirrorKeysStale")["expr"]
            .as_str()
            .is_some_and(|e| e.ends_with("> 7200"))
    );
    assert_eq!(by_name("WcaMirrorAnswering503")["for"], "10m");
    assert!(
        by_name("WcaUpstreamFetchFailing")["expr"]
            .as_str()
            .is_some_and(|e| e.contains("[1h]"))
    );
    assert_eq!(by_name("WcaReconcileErrors")["for"], "30m");
    assert!(
        by_name("WcaResourceNotReady")["expr"]
            .as_str()
            .is_some_and(|e| e.ends_with("> 1800"))
    );

    // And promtool does reject a broken expression: a pass above means something.
    let mut broken = rendered_rules(&[]);
    broken["groups"][0]["rules"][0]["expr"] = Value::from("max by (path (wca_proxy_ready)");
    let dir = temp_dir("check-broken");
    write_rules(&dir, &broken);
    assert!(
        !promtool(&["check", "rules", "alerts.yaml"], &dir)
            .status
            .success()
    );
}

/// The test file: which alerts its cases expect to fire.
fn alerts_expected_to_fire(tests: &Value) -> BTreeSet<String> {
    tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .filter(|case| case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .filter_map(|case| case["alertname"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn promtool_unit_tests_fire_every_alert() {
    let test_file = repo_root().join("tests/alerts/alerts_test.yaml");
    let test_text = std::fs::read_to_string(&test_file).expect("tests/alerts/alerts_test.yaml");
    let tests: Value = serde_saphyr::from_str(&test_text).expect("the test file is YAML");
    assert_eq!(
        alerts_expected_to_fire(&tests),
        ALERTS.iter().map(|a| a.to_string()).collect(),
        "every alert has a case where it fires"
    );

    let dir = temp_dir("unit");
    write_rules(&dir, &rendered_rules(&[]));
    std::fs::write(dir.join("alerts_test.yaml"), &test_text).expect("write");
    let out = promtool(&["test", "rules", "alerts_test.yaml"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SUCCESS"), "{}", text(&out));

    // The same cases against other thresholds fail: they test the chart's defaults.
    write_rules(
        &dir,
        &rendered_rules(&["metrics.prometheusRule.keyAgeSeconds=7200"]),
    );
    let out = promtool(&["test", "rules", "alerts_test.yaml"], &dir);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("WcaMirrorKeysStale"), "{}", text(&out));
}

/// Metric names in an OpenMetrics exposition: sample names, and for each `# TYPE` the names
/// its samples take (so a family with no sample yet still counts).
fn exposition_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#')
            && let Some(name) = line.split(['{', ' ']).next()
            && !name.is_empty()
        {
            names.insert(name.to_string());
        }
    }
    names
}

/// What the operator and its mirror export.
async fn exported_names() -> BTreeSet<String> {
    // prometheus-client leaves out a family with no series, # TYPE included: the state below
    // gives every family one (a resource that is not Ready, a failed reconcile, a mirror
    // holding a document).
    let controller = Metrics::default();
    controller.resources(Readiness {
        counts: [0, 1, 0],
        not_ready: vec![("apps".into(), "acme".into(), 1_800_000_000)],
    });
    controller.failed(Reason::KubernetesApi);
    let mut names = exposition_names(&controller.render());
    let fake = FakeWorkos::start(fixture("jwks-rsa.json")).await;
    let path = "/sso/jwks/client_01JDASHBOARD000000000000000";
    let mirror = Mirror::start(
        &[(path, format!("{}{path}", fake.base_url()))],
        Duration::from_secs(30),
        Duration::from_secs(3600),
    )
    .await;
    mirror.wait_ready().await;
    let scraped = mirror.metrics().await;
    let mirror_names = exposition_names(&scraped);
    assert!(
        mirror_names.contains("wca_proxy_requests_total"),
        "{scraped}"
    );
    names.extend(mirror_names);
    names
}

/// The metric names a PromQL expression selects: what is left once strings, label matchers,
/// ranges, grouping label lists, functions, keywords, numbers and Grafana variables are gone.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Strings, {…} and […] blanked out.
    let mut plain = String::with_capacity(expr.len());
    let mut closing: Option<char> = None;
    for c in expr.chars() {
        match closing {
            Some(end) if c == end => {
                closing = None;
                plain.push(' ');
            }
            Some(_) => {}
            None => match c {
                '"' | '\'' | '`' => closing = Some(c),
                '{' => closing = Some('}'),
                '[' => closing = Some(']'),
                _ => plain.push(c),
            },
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() || c == '.' {
            // A number (0.95, 1e3): never a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$') {
            if c == '(' && skip_group {
                // by (a, b): a label list, not selectors.
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                skip_group = false;
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':' | '$'))
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = chars[i..].iter().find(|c| !c.is_whitespace());
        if matches!(
            word.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        ) {
            skip_group = true;
            continue;
        }
        // Aggregations may be followed by `by (…)` rather than by their parenthesis.
        let keyword = matches!(
            word.as_str(),
            "bool"
                | "and"
                | "or"
                | "unless"
                | "offset"
                | "atan2"
                | "inf"
                | "nan"
                | "Inf"
                | "NaN"
                | "sum"
                | "min"
                | "max"
                | "avg"
                | "group"
                | "stddev"
                | "stdvar"
                | "count"
                | "count_values"
                | "bottomk"
                | "topk"
                | "quantile"
                | "limitk"
                | "limit_ratio"
        );
        if keyword || word.starts_with('$') || next == Some(&'(') {
            continue; // a keyword, a Grafana variable, or a function (or aggregation) call
        }
        names.insert(word);
    }
    names
}

#[test]
fn the_metric_name_extractor_finds_selectors_only() {
    assert_eq!(
        promql_metric_names(
            r#"histogram_quantile(0.95, sum by (le) (rate(a_bucket{path!~"/x|b_total"}[$__rate_interval]))) > on() group_left b_gauge unless c:recorded offset 5m"#
        ),
        ["a_bucket", "b_gauge", "c:recorded"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        promql_metric_names("time() - max by (a, b) (wca_x) > 600"),
        ["wca_x"].map(String::from).into()
    );
}

/// Every panel with queries, rows' nested panels included: (title, expressions).
fn panels(dashboard: &Value) -> Vec<(String, Vec<String>)> {
    fn walk(panels: &Value, out: &mut Vec<(String, Vec<String>)>) {
        for panel in panels.as_array().into_iter().flatten() {
            if panel["type"] != "row" {
                let exprs = panel["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["expr"].as_str().map(str::to_string))
                    .collect();
                out.push((panel["title"].as_str().unwrap_or("?").to_string(), exprs));
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_query_only_exported_metrics() {
    let exported = exported_names().await;
    for name in [
        "wca_resources",
        "wca_resource_not_ready_since_seconds",
        "wca_reconcile_errors_total",
        "wca_reconcile_duration_seconds_bucket",
        "wca_proxy_document_age_seconds",
        "wca_proxy_upstream_fetches_total",
    ] {
        assert!(exported.contains(name), "{name} not in {exported:?}");
    }

    // The dashboard as the chart ships it: the ConfigMap's data is the file, valid JSON.
    let file = std::fs::read_to_string(chart().join("files/dashboard.json")).expect("dashboard");
    let config_map = document(&helm_template(
        &["metrics.dashboard.enabled=true"],
        "templates/dashboard.yaml",
    ));
    assert_eq!(
        config_map["metadata"]["labels"]["grafana_dashboard"], "1",
        "the Grafana sidecar's label"
    );
    let shipped = config_map["data"]["workos-convex-auth.json"]
        .as_str()
        .expect("the dashboard in the ConfigMap");
    assert_eq!(shipped.trim_end(), file.trim_end());
    let dashboard: Value = serde_json::from_str(shipped).expect("the dashboard is valid JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());

    let panels = panels(&dashboard);
    assert!(panels.len() >= 10, "{panels:?}");
    let mut queried = BTreeSet::new();
    for (title, exprs) in &panels {
        assert!(!exprs.is_empty(), "panel {title:?} has no query");
        let names: BTreeSet<String> = exprs.iter().flat_map(|e| promql_metric_names(e)).collect();
        assert!(
            !names.is_empty(),
            "panel {title:?} queries no metric: {exprs:?}"
        );
        let unknown: Vec<&String> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "panel {title:?} queries {unknown:?}, which nothing exports (exported: {exported:?})"
        );
        queried.extend(names);
    }
    for name in ["wca_resources", "wca_proxy_document_age_seconds"] {
        assert!(queried.contains(name), "the dashboard shows {name}");
    }

    for rule in alerts(&rendered_rules(&[])) {
        let expr = rule["expr"].as_str().expect("expr");
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{expr}");
        let unknown: Vec<&String> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "alert {} queries {unknown:?}, which nothing exports",
            rule["alert"]
        );
    }

    // The check itself: a name nothing exports is caught.
    assert!(!exported.contains("wca_reconcile_error_total"));
}
