//! Reads the client id named by `spec.clientIdFrom`.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::Api;

use crate::api::{ClientIdSource, KeyRef};

/// The referenced object or key is missing: a message that names it and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceMissing(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Missing(#[from] SourceMissing),
    #[error("reading spec.clientIdFrom: {0}")]
    Api(#[from] kube::Error),
}

/// Reads the client id; a Secret is read by name (`get` only), never listed.
pub async fn read_client_id(
    client: &Client,
    namespace: &str,
    source: &ClientIdSource,
) -> Result<String, ReferenceError> {
    match (&source.secret_key_ref, &source.config_map_key_ref) {
        (Some(r), _) => {
            let secret = Api::<Secret>::namespaced(client.clone(), namespace)
                .get_opt(&r.name)
                .await?;
            let value = secret
                .as_ref()
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .map(|v| String::from_utf8_lossy(&v.0).into_owned());
            found(
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
                .await?;
            let value = cm
                .as_ref()
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get(&r.key))
                .cloned();
            found(
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

fn found(
    kind: &str,
    field: &str,
    ns: &str,
    r: &KeyRef,
    exists: bool,
    value: Option<String>,
) -> Result<String, ReferenceError> {
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
