//! Where the providers come from: a config file, a resource rendered offline, or a live
//! resource's ConfigMap. Whatever the source, the result is the provider list in config order.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;

use crate::api::{JwksMode, WorkOSConvexAuth};
use crate::convex::config::{AuthConfig, CustomJwtProvider};
use crate::convex::generate::WORKOS_API_HOST;
use crate::convex::rules::normalize_issuer;
use crate::reconcile::{BuildContext, InlineKeys};
use crate::render::{RenderError, RenderOptions, children_of, parse_resources};

/// The ConfigMap key holding the config as JSON.
pub const CONFIG_KEY: &str = "auth.config.json";

/// One entry of `providers`, as Convex reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// `type: "customJwt"`: what WorkOS tokens need, and what check-token verifies.
    CustomJwt(CustomJwtProvider),
    /// `type: "oidc"` or no type: Convex verifies these with OIDC discovery, which check-token
    /// does not do; they still take part in the walk, since Convex tries them in order.
    Oidc {
        domain: String,
        application_id: String,
    },
}

/// The providers of one config, in order, and where they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Providers {
    /// Human description of the source, e.g. `auth.config.json` or `ConfigMap apps/acme-convex-auth`.
    pub origin: String,
    pub entries: Vec<Provider>,
}

impl Providers {
    /// The `customJwt` entries as an [`AuthConfig`], and each one's index in `entries`.
    pub fn custom_jwt(&self) -> (AuthConfig, Vec<usize>) {
        let (positions, providers) = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Provider::CustomJwt(c) => Some((i, c.clone())),
                Provider::Oidc { .. } => None,
            })
            .unzip();
        (AuthConfig { providers }, positions)
    }
}

/// Why the providers could not be loaded. Every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{origin} is not JSON ({message}); pass the generated auth.config.json, or export your config's object as JSON"
    )]
    NotJson { origin: String, message: String },
    #[error("{origin} has no \"providers\" list; a Convex auth config is {{\"providers\": [...]}}")]
    NoProviders { origin: String },
    #[error(
        "{origin}: provider {number}: {problem}; Convex refuses this config on push, so fix it first"
    )]
    Provider {
        origin: String,
        number: usize,
        problem: String,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(
        "{path} holds {count} WorkOSConvexAuth resources; put the one to check in its own file"
    )]
    ResourceCount { path: PathBuf, count: usize },
    #[error(
        "{resource} uses jwks.mode Inline, which embeds the keys in the config: pass --jwks FILE with the key set, or check the deployed config with --resource or --config"
    )]
    InlineNeedsJwks { resource: String },
    #[error("{0} is not a usable JWKS for mode Inline: {1}")]
    InlineJwks(PathBuf, String),
    #[error("--resource {0:?} is not NAMESPACE/NAME")]
    ResourceArg(String),
    #[error("cannot reach the cluster: {0}; pass --kubeconfig or check your current context")]
    Cluster(String),
    #[error("cannot read {what}: {message}")]
    Kube { what: String, message: String },
    #[error(
        "ConfigMap {namespace}/{name} has no {CONFIG_KEY} key yet; has the operator reconciled {namespace}/{resource}? (kubectl describe wca -n {namespace} {resource})"
    )]
    NoConfigKey {
        namespace: String,
        name: String,
        resource: String,
    },
}

/// Reads a config file: JSON, or the generated `auth.config.ts`/`.js` whose object is JSON.
pub fn from_config_file(path: &Path) -> Result<Providers, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text, &path.display().to_string())
}

/// Parses a config's text, leniently about its wrapping and strictly about its providers.
pub fn parse_config(text: &str, origin: &str) -> Result<Providers, SourceError> {
    let value: Value = serde_json::from_str(text)
        .or_else(|first| {
            generated_module_object(text)
                .and_then(|object| serde_json::from_str(object).ok())
                .ok_or(first)
        })
        .map_err(|e| SourceError::NotJson {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
    let list = value
        .get("providers")
        .and_then(Value::as_array)
        .ok_or_else(|| SourceError::NoProviders {
            origin: origin.to_string(),
        })?;
    let entries = list
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse_provider(v).map_err(|problem| SourceError::Provider {
                origin: origin.to_string(),
                number: i + 1,
                problem,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Providers {
        origin: origin.to_string(),
        entries,
    })
}

/// The object literal of a generated `export default {...} satisfies AuthConfig;` module.
fn generated_module_object(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("export default")?;
    let rest = rest.trim().trim_end_matches(';').trim_end();
    Some(
        rest.strip_suffix("satisfies AuthConfig")
            .unwrap_or(rest)
            .trim(),
    )
}

/// Applies the lint Convex's backend runs on push, so a config it would refuse is never
/// "explained" as if it were deployed.
fn parse_provider(v: &Value) -> Result<Provider, String> {
    let object = v.as_object().ok_or("is not an object")?;
    if let Some(key) = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case("applicationID") && *k != "applicationID")
    {
        return Err(format!(
            "{key:?} is misspelled; Convex reads \"applicationID\""
        ));
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" is not a string")),
        }
    };
    let required = |key: &str| -> Result<String, String> {
        text(key)?.ok_or_else(|| format!("\"{key}\" is missing"))
    };
    let application_id = text("applicationID")?;
    match text("type")?.as_deref() {
        Some("customJwt") => {
            if object.contains_key("domain") {
                return Err("a customJwt provider has \"domain\"; use \"issuer\"".into());
            }
            let issuer = required("issuer")?;
            let algorithm = required("algorithm")?;
            if algorithm != "RS256" && algorithm != "ES256" {
                return Err(format!(
                    "algorithm {algorithm:?} is not exactly \"RS256\" or \"ES256\""
                ));
            }
            if application_id.is_none()
                && normalize_issuer(&issuer) == format!("https://{WORKOS_API_HOST}")
            {
                return Err(format!(
                    "issuer {issuer} without applicationID would accept every WorkOS customer's tokens (InsecureConfiguration); set applicationID to your client id"
                ));
            }
            Ok(Provider::CustomJwt(CustomJwtProvider {
                kind: "customJwt".into(),
                issuer,
                algorithm,
                jwks: required("jwks")?,
                application_id,
            }))
        }
        None | Some("oidc") => {
            if object.contains_key("issuer") {
                return Err(
                    "an OIDC provider (no \"type\", or \"oidc\") has \"issuer\"; for WorkOS tokens add \"type\": \"customJwt\"".into(),
                );
            }
            Ok(Provider::Oidc {
                domain: required("domain")?,
                application_id: application_id.ok_or("\"applicationID\" is missing")?,
            })
        }
        Some(other) => Err(format!(
            "type {other:?} is neither \"customJwt\" nor \"oidc\""
        )),
    }
}

/// Renders the one resource of a YAML file offline, as `render` does.
pub fn from_resource_file(
    path: &Path,
    client_id: Option<&str>,
    inline_jwks: Option<&Path>,
) -> Result<Providers, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut resources = parse_resources(&text)?;
    if resources.len() != 1 {
        return Err(SourceError::ResourceCount {
            path: path.to_path_buf(),
            count: resources.len(),
        });
    }
    let resource = resources.remove(0);
    let name = format!(
        "WorkOSConvexAuth {}",
        resource.metadata.name.as_deref().unwrap_or("(unnamed)")
    );
    let inline_keys = match (&resource.spec.jwks.mode, inline_jwks) {
        (JwksMode::Inline, None) => return Err(SourceError::InlineNeedsJwks { resource: name }),
        (JwksMode::Inline, Some(file)) => {
            let raw = std::fs::read(file).map_err(|source| SourceError::Read {
                path: file.to_path_buf(),
                source,
            })?;
            let doc = crate::jwks::sanitize(&raw)
                .map_err(|e| SourceError::InlineJwks(file.to_path_buf(), e.to_string()))?;
            let keys = String::from_utf8_lossy(&doc.body).into_owned();
            Some(InlineKeys {
                workos: keys.clone(),
                authkit: Some(keys),
            })
        }
        _ => None,
    };
    let options = RenderOptions {
        client_id: client_id.map(str::to_string),
        context: BuildContext {
            default_image: crate::DEFAULT_IMAGE.to_string(),
            ..BuildContext::default()
        },
        inline_keys,
        admit: false,
    };
    let children = children_of(&resource, &options)?;
    let entries = children
        .config
        .providers
        .into_iter()
        .map(Provider::CustomJwt)
        .collect();
    Ok(Providers {
        origin: format!("{} (rendered from {})", name, path.display()),
        entries,
    })
}

/// Reads a live resource's ConfigMap: the config the deploy step actually pushes.
pub async fn from_cluster(
    resource: &str,
    cluster: &crate::kubeconfig::ClusterArgs,
) -> Result<Providers, SourceError> {
    let (namespace, name) = resource
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| SourceError::ResourceArg(resource.to_string()))?;
    let client = cluster
        .client()
        .await
        .map_err(|e| SourceError::Cluster(e.0))?;
    let kube_error = |what: String| {
        move |e: kube::Error| SourceError::Kube {
            what,
            message: e.to_string(),
        }
    };
    let wca: WorkOSConvexAuth = Api::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(kube_error(format!("WorkOSConvexAuth {namespace}/{name}")))?;
    let config_map_name = wca
        .status
        .as_ref()
        .and_then(|s| s.config_map_name.clone())
        .unwrap_or_else(|| {
            crate::reconcile::names::config_map_name(name, wca.spec.config_map.name.as_deref())
        });
    let config_map: ConfigMap = Api::namespaced(client, namespace)
        .get(&config_map_name)
        .await
        .map_err(kube_error(format!(
            "ConfigMap {namespace}/{config_map_name}"
        )))?;
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_KEY))
        .ok_or_else(|| SourceError::NoConfigKey {
            namespace: namespace.to_string(),
            name: config_map_name.clone(),
            resource: name.to_string(),
        })?;
    parse_config(
        text,
        &format!("ConfigMap {namespace}/{config_map_name} ({CONFIG_KEY})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(provider: &str) -> String {
        match parse_config(&format!("{{\"providers\": [{provider}]}}"), "c.json") {
            Err(SourceError::Provider { problem, .. }) => problem,
            other => panic!("expected a provider error, got {other:?}"),
        }
    }

    #[test]
    fn refuses_what_convex_refuses_on_push() {
        let cj = r#""type": "customJwt", "jwks": "https://x.com/j""#;
        assert!(
            problem(&format!(
                r#"{{{cj}, "issuer": "https://a.com", "algorithm": "rs256"}}"#
            ))
            .contains("not exactly")
        );
        assert!(
            problem(&format!(
                r#"{{{cj}, "issuer": "https://api.workos.com/", "algorithm": "RS256"}}"#
            ))
            .contains("InsecureConfiguration")
        );
        assert!(
            problem(&format!(
                r#"{{{cj}, "issuer": "https://a.com", "algorithm": "RS256", "applicationId": "x"}}"#
            ))
            .contains("misspelled")
        );
        assert!(
            problem(
                r#"{"domain": "https://a.com", "issuer": "https://a.com", "applicationID": "x"}"#
            )
            .contains("has \"issuer\"")
        );
        assert!(problem(r#"{"type": "jwt", "issuer": "https://a.com"}"#).contains("neither"));
        assert!(problem(r#""oops""#).contains("not an object"));
    }

    #[test]
    fn reads_oidc_entries_and_the_generated_typescript() {
        let ts = "// Generated\nimport type { AuthConfig } from \"convex/server\";\n\nexport default {\n  \"providers\": [{\"domain\": \"https://a.com\", \"applicationID\": \"app\"}]\n} satisfies AuthConfig;\n";
        let p = parse_config(ts, "auth.config.ts").unwrap();
        assert_eq!(
            p.entries,
            [Provider::Oidc {
                domain: "https://a.com".into(),
                application_id: "app".into()
            }]
        );
        assert_eq!(p.custom_jwt().0.providers.len(), 0);
    }

    #[test]
    fn garbage_config_is_named() {
        let err = parse_config("not json", "x.json").unwrap_err().to_string();
        assert!(err.starts_with("x.json is not JSON"), "{err}");
        let err = parse_config("{}", "x.json").unwrap_err().to_string();
        assert!(err.contains("no \"providers\" list"), "{err}");
    }
}
