//! Test fixtures of the pipeline's pure steps: a resource from its spec in YAML, its `Valid`
//! and its children, named `apps/acme` with uid `uid-1`.

use crate::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
use crate::reconcile::{BuildContext, Children, InlineKeys, JwksUrls, Valid, build, validate};

/// The mirror image the fixtures build with.
pub const IMAGE: &str = "ghcr.io/example/workos-convex-auth:test";

pub fn resource(spec_yaml: &str) -> WorkOSConvexAuth {
    let spec: WorkOSConvexAuthSpec = serde_saphyr::from_str(spec_yaml).expect("spec YAML");
    let mut resource = WorkOSConvexAuth::new("acme", spec);
    resource.metadata.namespace = Some("apps".into());
    resource.metadata.uid = Some("uid-1".into());
    resource
}

pub fn valid(spec_yaml: &str) -> Valid {
    validate(
        &resource(spec_yaml),
        None,
        crate::reconcile::names::DEFAULT_CLUSTER_DOMAIN,
    )
    .expect("a valid spec")
}

pub fn context() -> BuildContext {
    BuildContext {
        default_image: IMAGE.into(),
        ..BuildContext::default()
    }
}

/// The children of a resource in mode Direct or Proxy.
pub fn children(spec_yaml: &str) -> Children {
    let valid = valid(spec_yaml);
    let urls = valid.served_urls.clone().expect("mode Direct or Proxy");
    build(&valid, &urls, &context())
}

/// The children of a resource in mode Inline, with `keys` embedded.
pub fn inline_children(spec_yaml: &str, keys: &InlineKeys) -> Children {
    let valid = valid(spec_yaml);
    let urls = JwksUrls::embedded(&valid, keys).expect("keys that fit");
    build(&valid, &urls, &context())
}

/// Every `--flag` a message names is one of `run`'s (clap's own list, aliases included) and
/// every `chart value x.y` a key of the chart's values.yaml; each flag comes with its value, and
/// a message that sends the reader to the cluster admin names at least one flag.
pub fn assert_named_flags_and_values_exist(messages: &[String]) {
    use clap::Args;
    let run = crate::controller::RunArgs::augment_args(clap::Command::new("run"));
    let flags: Vec<String> = run
        .get_arguments()
        .flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().into_iter().flatten())
        })
        .map(|long| format!("--{long}"))
        .collect();
    let values_yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/workos-convex-auth/values.yaml"
    ))
    .unwrap();
    let values: serde_json::Value = serde_saphyr::from_str(&values_yaml).unwrap();
    for message in messages {
        let named_flags: Vec<&str> = message
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
            .filter(|w| w.starts_with("--"))
            .collect();
        let named_values: Vec<&str> = message
            .match_indices("chart value ")
            .map(|(i, m)| {
                let rest = &message[i + m.len()..];
                rest.split(|c: char| !(c.is_alphanumeric() || c == '.'))
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('.')
            })
            .collect();
        if message.contains("cluster admin") {
            assert!(!named_flags.is_empty(), "names no flag: {message}");
        }
        assert_eq!(
            named_flags.len(),
            named_values.len(),
            "each flag with its chart value: {message}"
        );
        for flag in named_flags {
            assert!(
                flags.iter().any(|f| f == flag),
                "{flag} is not a flag of run: {message}"
            );
        }
        for value in named_values {
            let found = value
                .split('.')
                .try_fold(&values, |node, key| node.get(key));
            assert!(found.is_some(), "{value} is not a chart value: {message}");
        }
    }
}
