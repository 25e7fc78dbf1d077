//! `render`: the objects the controller would apply for each resource in a YAML stream,
//! computed offline by the same `validate → build` steps.

use kube::ResourceExt;
use serde::Serialize;

use crate::api::WorkOSConvexAuth;
use crate::convex::generate::InvalidField;
use crate::reconcile::{
    BuildContext, Children, InlineKeys, JwksUrls, NotAllowed, Policy, admit, build, validate,
};

/// What offline rendering cannot read from a cluster.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// The client id for resources that use `spec.clientIdFrom`.
    pub client_id: Option<String>,
    /// Passed to `build` (mirror image).
    pub context: BuildContext,
    /// The keys to embed in mode Inline (`render --jwks FILE`), sanitised.
    pub inline_keys: Option<InlineKeys>,
    /// Apply the default admin policy (`render` does; `check-token`, which only explains the
    /// config a resource yields, does not).
    pub admit: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("input is not valid YAML: {0}")]
    Yaml(String),
    #[error(
        "document {index}: expected apiVersion workos-convex.io/v1alpha1, kind WorkOSConvexAuth; found {found}"
    )]
    NotAResource { index: usize, found: String },
    #[error("{resource}: {path}: {message}")]
    Decode {
        resource: String,
        path: String,
        message: String,
    },
    #[error("{resource}: {source}")]
    Invalid {
        resource: String,
        source: InvalidField,
    },
    #[error("{resource}: not allowed by the operator's default policy: {source}")]
    NotAllowed {
        resource: String,
        source: NotAllowed,
    },
    #[error("{resource}: spec.clientIdFrom cannot be read offline; pass --client-id client_…")]
    ClientIdOffline { resource: String },
}

/// Parses a stream of YAML documents into resources, naming the document and field on error.
pub fn parse_resources(input: &str) -> Result<Vec<WorkOSConvexAuth>, RenderError> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(input).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
        let (api_version, kind) = (
            doc["apiVersion"].as_str().unwrap_or("?"),
            doc["kind"].as_str().unwrap_or("?"),
        );
        if (api_version, kind) != ("workos-convex.io/v1alpha1", "WorkOSConvexAuth") {
            return Err(RenderError::NotAResource {
                index: index + 1,
                found: format!("{api_version} {kind}"),
            });
        }
        let resource = format!(
            "WorkOSConvexAuth {}",
            doc["metadata"]["name"].as_str().unwrap_or("(unnamed)")
        );
        let parsed = serde_path_to_error::deserialize(doc).map_err(|e| RenderError::Decode {
            resource,
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        out.push(parsed);
    }
    Ok(out)
}

/// Validates and builds the children of one resource, exactly as the controller does.
pub fn children_of(
    resource: &WorkOSConvexAuth,
    options: &RenderOptions,
) -> Result<Children, RenderError> {
    let name = format!(
        "WorkOSConvexAuth {}/{}",
        resource.namespace().unwrap_or_else(|| "default".into()),
        resource.name_any()
    );
    if resource.spec.client_id_from.is_some() && options.client_id.is_none() {
        return Err(RenderError::ClientIdOffline { resource: name });
    }
    let invalid = |source| RenderError::Invalid {
        resource: name.clone(),
        source,
    };
    let valid = validate(resource, options.client_id.as_deref()).map_err(invalid)?;
    if options.admit {
        // An operator started without policy flags would refuse it too.
        admit(&valid, &Policy::for_image(&options.context.default_image)).map_err(|source| {
            RenderError::NotAllowed {
                resource: name.clone(),
                source,
            }
        })?;
    }
    let urls = match (&valid.served_urls, &options.inline_keys) {
        (Some(served), _) => served.clone(),
        (None, Some(keys)) => JwksUrls::embedded(&valid, keys).map_err(invalid)?,
        (None, None) => {
            return Err(invalid(InvalidField::new(
                "spec.jwks.mode",
                "mode Inline needs the signing keys, which have not been fetched",
                "pass the keys (render --jwks FILE) or let the operator fetch them",
            )));
        }
    };
    Ok(build(&valid, &urls, &options.context))
}

/// Renders every resource of `input` as one multi-document YAML stream.
pub fn render(input: &str, options: &RenderOptions) -> Result<String, RenderError> {
    let mut documents = Vec::new();
    for resource in parse_resources(input)? {
        let c = children_of(&resource, options)?;
        documents.push(to_yaml(&c.config_map));
        documents.extend(c.deployment.as_ref().map(to_yaml));
        documents.extend(c.service.as_ref().map(to_yaml));
        documents.extend(c.pod_disruption_budget.as_ref().map(to_yaml));
        documents.extend(c.ingress.as_ref().map(to_yaml));
    }
    Ok(documents.iter().map(|d| format!("---\n{d}")).collect())
}

fn to_yaml<T: Serialize>(object: &T) -> String {
    serde_saphyr::to_string(object).expect("Kubernetes objects always serialise to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "apiVersion: workos-convex.io/v1alpha1\nkind: WorkOSConvexAuth\nmetadata: {name: acme, namespace: apps}\n";

    #[test]
    fn renders_config_map_and_mirror_in_order() {
        let out = render(
            &format!("{HEAD}spec: {{clientId: client_01A}}\n"),
            &RenderOptions::default(),
        )
        .unwrap();
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .collect();
        assert_eq!(
            kinds,
            ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"]
        );
    }

    #[test]
    fn errors_name_the_resource_and_the_field() {
        let err = render(
            &format!("{HEAD}spec: {{clientId: client_01A, algorithm: HS256}}\n"),
            &RenderOptions::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("WorkOSConvexAuth acme: spec.algorithm: unknown variant `HS256`"),
            "{msg}"
        );

        let err = render(
            &format!("{HEAD}spec: {{clientId: client_01A, authDomain: 'https://x.com'}}\n"),
            &RenderOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("WorkOSConvexAuth apps/acme: spec.authDomain:"),
            "{err}"
        );

        let err = render(
            "apiVersion: v1\nkind: ConfigMap\n",
            &RenderOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("document 1"), "{err}");
        assert!(matches!(
            render("a: [", &RenderOptions::default()),
            Err(RenderError::Yaml(_))
        ));
    }

    #[test]
    fn client_id_from_needs_an_override_offline() {
        let input =
            format!("{HEAD}spec: {{clientIdFrom: {{secretKeyRef: {{name: s, key: k}}}}}}\n");
        assert!(matches!(
            render(&input, &RenderOptions::default()),
            Err(RenderError::ClientIdOffline { .. })
        ));
        let opts = RenderOptions {
            client_id: Some("client_01B".into()),
            ..RenderOptions::default()
        };
        assert!(render(&input, &opts).unwrap().contains("client_01B"));
        // `--client-id` stands for the Secret's value: a wrong one is not printed either.
        let opts = RenderOptions {
            client_id: Some("postgres://admin:S3cr3t@db".into()),
            ..RenderOptions::default()
        };
        let err = render(&input, &opts).unwrap_err().to_string();
        assert!(!err.contains("S3cr3t"), "{err}");
        assert!(err.contains("key \"k\" of Secret \"s\""), "{err}");
    }
}
