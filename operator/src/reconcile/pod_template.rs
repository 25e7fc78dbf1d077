//! `spec.proxy.podTemplate`, pure: its syntax (step 1, validate), the admin's policy on it
//! (step 1b) and how it is merged with the operator-wide defaults into the mirror's pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSpec, Toleration};

use super::names;
use crate::api::{MirrorPodMetadata, MirrorPodSpec, MirrorPodTemplate};
use crate::convex::generate::{InvalidField, is_dns_name};

/// What every mirror pod gets from the operator's flags (chart values `mirror.*`), before the
/// resource's own `spec.proxy.podTemplate` is added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MirrorPodDefaults {
    /// `--mirror-image-pull-secrets`.
    pub image_pull_secrets: Vec<String>,
    /// `--mirror-node-selector`: a resource may add keys, never change these.
    pub node_selector: BTreeMap<String, String>,
    /// `--mirror-tolerations`.
    pub tolerations: Vec<Toleration>,
    /// `--mirror-priority-class`, used when a resource names none (and always allowed).
    pub priority_class_name: Option<String>,
}

/// Label keys the operator sets on every mirror pod: its Deployment's selector and the label
/// the operator finds its children by. A template may not set them.
pub fn reserved_label(key: &str) -> bool {
    names::labels("", names::COMPONENT_MIRROR).contains_key(key) || key == "pod-template-hash"
}

/// Step 1: keys and values the apiserver would refuse on the Deployment, refused here with the
/// field that holds them (a refused apply would name only the Deployment).
pub fn check_syntax(template: &MirrorPodTemplate) -> Result<(), InvalidField> {
    const FIELD: &str = "spec.proxy.podTemplate";
    if let Some(MirrorPodMetadata {
        labels,
        annotations,
    }) = &template.metadata
    {
        check_labels(&format!("{FIELD}.metadata.labels"), labels)?;
        for key in annotations.keys() {
            check_key(&format!("{FIELD}.metadata.annotations"), key)?;
        }
    }
    if let Some(spec) = &template.spec {
        check_labels(&format!("{FIELD}.spec.nodeSelector"), &spec.node_selector)?;
    }
    Ok(())
}

fn check_labels(field: &str, labels: &BTreeMap<String, String>) -> Result<(), InvalidField> {
    for (key, value) in labels {
        check_key(field, key)?;
        if !(value.is_empty() || is_name_part(value)) {
            return Err(InvalidField::new(
                format!("{field}[{key:?}]"),
                format!("{value:?} is not a label value"),
                "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            ));
        }
    }
    Ok(())
}

/// A qualified name, as Kubernetes checks label and annotation keys: `[prefix/]name`, the
/// prefix a DNS subdomain.
fn check_key(field: &str, key: &str) -> Result<(), InvalidField> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_none_or(is_dns_name) && is_name_part(name) {
        return Ok(());
    }
    Err(InvalidField::new(
        format!("{field}[{key:?}]"),
        "not a valid key",
        "write it as name or prefix/name: the prefix a DNS name (example.com), the name at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
    ))
}

fn is_name_part(s: &str) -> bool {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    s.len() <= 63
        && edge(s.bytes().next())
        && edge(s.bytes().last())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The mirror pod's labels: the operator's own, then the template's (which cannot override
/// them: [`reserved_label`] keys are refused by the policy).
pub fn pod_labels(resource: &str, template: &MirrorPodTemplate) -> BTreeMap<String, String> {
    let mut labels = names::labels(resource, names::COMPONENT_MIRROR);
    if let Some(metadata) = &template.metadata {
        for (key, value) in &metadata.labels {
            labels.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    labels
}

/// The template's annotations, absent when there are none.
pub fn pod_annotations(template: &MirrorPodTemplate) -> Option<BTreeMap<String, String>> {
    template
        .metadata
        .as_ref()
        .map(|m| m.annotations.clone())
        .filter(|a| !a.is_empty())
}

/// Fills the placement fields of the mirror's pod: the operator-wide defaults, the resource's
/// template added to them. Lists are joined without repeats; on a shared node selector key
/// the operator's value stays (the policy refuses a template that changes one).
pub fn place(pod: &mut PodSpec, defaults: &MirrorPodDefaults, template: &MirrorPodTemplate) {
    let empty = MirrorPodSpec::default();
    let own = template.spec.as_ref().unwrap_or(&empty);
    let mut node_selector = defaults.node_selector.clone();
    for (key, value) in &own.node_selector {
        node_selector
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    let pull_secrets = defaults
        .image_pull_secrets
        .iter()
        .map(|name| LocalObjectReference { name: name.clone() });
    let tolerations = defaults.tolerations.iter().chain(&own.tolerations).cloned();
    pod.node_selector = (!node_selector.is_empty()).then_some(node_selector);
    pod.tolerations = non_empty(unique(tolerations));
    pod.image_pull_secrets = non_empty(unique(
        pull_secrets.chain(own.image_pull_secrets.iter().cloned()),
    ));
    pod.affinity = own.affinity.clone();
    pod.topology_spread_constraints = non_empty(own.topology_spread_constraints.clone());
    pod.priority_class_name = own
        .priority_class_name
        .clone()
        .or_else(|| defaults.priority_class_name.clone());
}

/// `items` in order, each once.
fn unique<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut all: Vec<T> = Vec::new();
    for item in items {
        if !all.contains(&item) {
            all.push(item);
        }
    }
    all
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> MirrorPodTemplate {
        serde_saphyr::from_str(yaml).expect("a template")
    }

    #[test]
    fn keys_and_values_kubernetes_would_refuse_are_refused_with_their_field() {
        for (yaml, field) in [
            (
                "{metadata: {labels: {'-bad': x}}}",
                "spec.proxy.podTemplate.metadata.labels[\"-bad\"]",
            ),
            (
                "{metadata: {labels: {team: 'a b'}}}",
                "spec.proxy.podTemplate.metadata.labels[\"team\"]",
            ),
            (
                "{metadata: {annotations: {'Example.com/x': y}}}",
                "spec.proxy.podTemplate.metadata.annotations[\"Example.com/x\"]",
            ),
            (
                "{spec: {nodeSelector: {'a/b/c': x}}}",
                "spec.proxy.podTemplate.spec.nodeSelector[\"a/b/c\"]",
            ),
        ] {
            let error = check_syntax(&template(yaml)).expect_err(yaml);
            assert_eq!(error.field, field, "{yaml}");
        }
        check_syntax(&template(
            "{metadata: {labels: {team: a, example.com/tier: web-1}, annotations: {example.com/x: 'any value: at all'}}, spec: {nodeSelector: {kubernetes.io/os: linux, pool: ''}}}",
        ))
        .expect("valid keys and values");
    }

    #[test]
    fn the_template_is_added_to_the_defaults_without_repeats_and_keeps_the_operators_keys() {
        let defaults = MirrorPodDefaults {
            image_pull_secrets: vec!["regcred".into()],
            node_selector: BTreeMap::from([("pool".into(), "system".into())]),
            tolerations: vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }],
            priority_class_name: Some("mirrors".into()),
        };
        let own = template(
            "{spec: {nodeSelector: {pool: other, zone: a}, tolerations: [{key: dedicated, operator: Exists}, {key: gpu, operator: Exists, effect: NoSchedule}], imagePullSecrets: [{name: regcred}, {name: team-pull}]}}",
        );
        let mut pod = PodSpec::default();
        place(&mut pod, &defaults, &own);
        assert_eq!(
            pod.node_selector,
            Some(BTreeMap::from([
                ("pool".into(), "system".into()),
                ("zone".into(), "a".into())
            ]))
        );
        let tolerations: Vec<_> = pod.tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 2, "{tolerations:?}");
        let pulls: Vec<String> = pod
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(pulls, ["regcred", "team-pull"]);
        assert_eq!(pod.priority_class_name.as_deref(), Some("mirrors"));

        let mut bare = PodSpec::default();
        place(
            &mut bare,
            &MirrorPodDefaults::default(),
            &MirrorPodTemplate::default(),
        );
        assert_eq!(bare, PodSpec::default(), "nothing set, nothing added");
    }

    #[test]
    fn the_operators_labels_stay_and_are_reserved() {
        let own = template("{metadata: {labels: {app.kubernetes.io/instance: other, team: a}}}");
        let labels = pod_labels("x", &own);
        assert_eq!(labels["app.kubernetes.io/instance"], "x");
        assert_eq!(labels["team"], "a");
        for key in [
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "pod-template-hash",
        ] {
            assert!(reserved_label(key), "{key}");
        }
        assert!(!reserved_label("team"));
    }
}
