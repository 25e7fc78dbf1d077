use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::meta::child_meta;
use crate::convex::config::AuthConfig;
use crate::reconcile::names;
use crate::reconcile::validate::Valid;

/// Data keys of the generated ConfigMap.
pub const TS_KEY: &str = "auth.config.ts";
pub const JS_KEY: &str = "auth.config.js";
pub const JSON_KEY: &str = "auth.config.json";

/// Kubernetes refuses a ConfigMap whose data exceeds 1 MiB; keep room for metadata.
pub const MAX_DATA_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// Bytes of keys and values, as the apiserver counts them against its limit.
pub fn data_bytes(config_map: &ConfigMap) -> usize {
    config_map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len().saturating_add(v.len()))
        .fold(0, usize::saturating_add)
}

pub fn config_map(valid: &Valid, config: &AuthConfig, jwks_url: &str) -> ConfigMap {
    let source = valid.display();
    // With spec.convex the file reads the values from the deployment's variables, which the
    // operator sets; without it, the values are written into the file.
    let (typescript, javascript) = if valid.convex.is_some() {
        let env_driven = valid.providers.env_driven();
        (
            env_driven.to_typescript(&source),
            env_driven.to_javascript(&source),
        )
    } else {
        (config.to_typescript(&source), config.to_javascript(&source))
    };
    let data = BTreeMap::from([
        (TS_KEY.to_string(), typescript),
        (JS_KEY.to_string(), javascript),
        (JSON_KEY.to_string(), config.to_json()),
        ("WORKOS_CLIENT_ID".to_string(), valid.client_id.clone()),
        ("WORKOS_JWKS_URL".to_string(), jwks_url.to_string()),
    ]);
    ConfigMap {
        metadata: child_meta(
            valid,
            valid.config_map_name.clone(),
            names::COMPONENT_CONFIG,
        ),
        data: Some(data),
        ..ConfigMap::default()
    }
}
