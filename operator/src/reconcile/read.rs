//! I/O, the pipeline's first step: reads what the resource refers to, the client id named by
//! `spec.clientIdFrom`.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::{Client, ResourceExt};

use super::forbidden::Forbidden;
use crate::api::{ClientIdSource, KeyRef, WorkOSConvexAuth};

/// The referenced object or key is missing: a message that names it and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceMissing(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Missing(#[from] SourceMissing),
    /// The operator may not read it (403): never silent, the status names what grants it.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("reading spec.clientIdFrom: {0}")]
    Api(#[from] kube::Error),
}

/// The client id read from `spec.clientIdFrom`, or `None` when the resource sets `clientId`
/// itself (or both, which `validate` refuses).
pub async fn referenced_client_id(
    client: &Client,
    resource: &WorkOSConvexAuth,
) -> Result<Option<String>, ReadError> {
    match (&resource.spec.client_id, &resource.spec.client_id_from) {
        (None, Some(source)) => {
            let namespace = resource.namespace().unwrap_or_default();
            read_client_id(client, &namespace, source).await.map(Some)
        }
        _ => Ok(None),
    }
}

/// A failed `get`: [`ReadError::Forbidden`] for a 403, else the API error (retried).
fn api_error(error: kube::Error, resource: &'static str, namespace: &str, name: &str) -> ReadError {
    match Forbidden::of(&error, "get", resource, namespace, name) {
        Some(forbidden) => ReadError::Forbidden(forbidden),
        None => ReadError::Api(error),
    }
}

/// Reads the client id; a Secret is read by name (`get` only), never listed.
async fn read_client_id(
    client: &Client,
    namespace: &str,
    source: &ClientIdSource,
) -> Result<String, ReadError> {
    match (&source.secret_key_ref, &source.config_map_key_ref) {
        (Some(r), _) => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(&r.name)
                .await
                .map_err(|e| api_error(e, "secrets", namespace, &r.name))?;
            let value = secret
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .map(|v| String::from_utf8_lossy(&v.0).into_owned());
            value_or_missing(
                "Secret",
                "secretKeyRef",
                namespace,
                r,
                secret.is_some(),
                value,
            )
        }
        (None, Some(r)) => {
            let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .get_opt(&r.name)
                .await
                .map_err(|e| api_error(e, "configmaps", namespace, &r.name))?;
            let value = cm
                .as_ref()
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .cloned();
            value_or_missing(
                "ConfigMap",
                "configMapKeyRef",
                namespace,
                r,
                cm.is_some(),
                value,
            )
        }
        (None, None) => Err(SourceMissing(
            "spec.clientIdFrom names neither a Secret nor a ConfigMap".into(),
        )
        .into()),
    }
}

fn value_or_missing(
    kind: &str,
    field: &str,
    ns: &str,
    r: &KeyRef,
    exists: bool,
    value: Option<String>,
) -> Result<String, ReadError> {
    let name = &r.name;
    match (exists, value) {
        (_, Some(v)) => Ok(v),
        (false, _) => Err(SourceMissing(format!(
            "{kind} {ns}/{name} (spec.clientIdFrom.{field}.name) does not exist: create it with the client id under key {:?}",
            r.key
        ))
        .into()),
        (true, None) => Err(SourceMissing(format!(
            "{kind} {ns}/{name} has no key {:?} (spec.clientIdFrom.{field}.key): add it, or point key at the key that holds the client id",
            r.key
        ))
        .into()),
    }
}
