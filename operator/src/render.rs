//! `render`: the objects the controller would apply for each resource in a YAML stream,
//! computed offline by the same `validate → build` steps.

use kube::ResourceExt;
use serde::Serialize;

use crate::api::WorkOSConvexAuth;
use crate::convex::generate::InvalidField;
use crate::reconcile::sync::desired_values;
use crate::reconcile::{
    BuildContext, Children, InlineKeys, JwksUrls, NotAllowed, Policy, Valid, admit, build, validate,
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
    rendered(resource, options).map(|(_, _, children)| children)
}

/// The resource validated, its JWKS URLs and its children.
fn rendered(
    resource: &WorkOSConvexAuth,
    options: &RenderOptions,
) -> Result<(Valid, JwksUrls, Children), RenderError> {
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
    let valid = validate(
        resource,
        options.client_id.as_deref(),
        &options.context.cluster_domain,
    )
    .map_err(invalid)?;
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
    let children = build(&valid, &urls, &options.context);
    Ok((valid, urls, children))
}

/// With `spec.convex`: a YAML comment naming the variables the operator would set, and their
/// values (the offline render has no Secret to protect: the client id is the one passed).
fn convex_comment(valid: &Valid, urls: &JwksUrls) -> Option<String> {
    let target = valid.convex.as_ref()?;
    let mut out = format!(
        "# spec.convex: the operator keeps these variables current on {} (auth.config.ts reads them):\n",
        target.url
    );
    match desired_values(valid, urls) {
        Ok(values) => {
            for (variable, value) in values {
                out.push_str(&format!("#   {}={value}\n", variable.name()));
            }
        }
        Err(refused) => out.push_str(&format!("#   refused: {refused}\n")),
    }
    Some(out)
}

/// Renders every resource of `input` as one multi-document YAML stream.
pub fn render(input: &str, options: &RenderOptions) -> Result<String, RenderError> {
    let mut documents = Vec::new();
    for resource in parse_resources(input)? {
        let (valid, urls, c) = rendered(&resource, options)?;
        let config_map = to_yaml(&c.config_map);
        documents.push(match convex_comment(&valid, &urls) {
            Some(comment) => format!("{comment}{config_map}"),
            None => config_map,
        });
        documents.extend(c.mirror.deployment.as_ref().map(to_yaml));
        documents.extend(c.mirror.service.as_ref().map(to_yaml));
        documents.extend(c.mirror.pod_disruption_budget.as_ref().map(to_yaml));
        documents.extend(c.mirror.ingress.as_ref().map(to_yaml));
        documents.extend(c.mirror.http_route.as_ref().map(to_yaml));
        documents.extend(c.mirror.network_policy.as_ref().map(to_yaml));
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
    fn with_spec_convex_the_file_reads_variables_and_render_names_them() {
        let out = render(
            &format!(
                "{HEAD}spec: {{clientId: client_01A, jwks: {{mode: Direct}}, convex: {{url: 'https://happy-otter-123.convex.cloud/', adminKeySecretRef: {{name: convex, key: adminKey}}}}}}\n"
            ),
            &RenderOptions::default(),
        )
        .unwrap();
        assert!(
            out.starts_with("---\n# spec.convex: the operator keeps these variables current on https://happy-otter-123.convex.cloud (auth.config.ts reads them):\n#   WORKOS_CLIENT_ID=client_01A\n#   WORKOS_JWKS_URL=https://api.workos.com/sso/jwks/client_01A\n"),
            "{out}"
        );
        assert!(
            out.contains("const clientId = process.env.WORKOS_CLIENT_ID!;"),
            "{out}"
        );
        let err = render(
            &format!(
                "{HEAD}spec: {{clientId: client_01A, convex: {{url: 'https://u:p@x.convex.cloud/api', adminKeySecretRef: {{name: c, key: k}}}}}}\n"
            ),
            &RenderOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("spec.convex.url: the URL carries credentials"),
            "{err}"
        );
        assert!(!err.contains("u:p"), "{err}");
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
