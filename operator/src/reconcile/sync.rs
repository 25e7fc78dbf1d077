//! Step 6 (`spec.convex` only): the Convex deployment's environment variables the env-driven
//! auth config reads, kept equal to the values this reconcile generated.
//!
//! Read first, write only the variables that differ, in one request (the backend re-evaluates
//! the deployed auth config with them and refuses the whole change if that fails). A deployment
//! confirmed current is not asked again for [`CONFIRM_EVERY`] unless a value changes, so a
//! settled resource costs no request at all between confirmations and never a write.
//! Variables the resource does not manage are never touched, and none is ever unset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use super::names::ResourceKey;
use super::policy::{NotAllowed, Policy, check_convex};
use super::read::SourceMissing;
use super::urls::JwksUrls;
use super::validate::{ConvexTarget, Valid};
use crate::convex::config::{AuthConfig, Variable};
use crate::convex::deployment::{
    AdminKey, DeployedProvider, DeploymentError, Deployments, MAX_VALUE_BYTES,
};

/// How long a deployment confirmed current is trusted before it is read again (someone may
/// have changed a variable by hand, with `npx convex env set`).
pub const CONFIRM_EVERY: Duration = Duration::from_secs(600);
/// How often a deployment whose auth config does not use the variables yet is looked at: the
/// push (`npx convex deploy`) happens outside Kubernetes, so no watch reports it.
pub const AWAITING_PUSH_RESYNC: Duration = Duration::from_secs(30);

/// The variables are current on the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub url: String,
    /// Every variable the resource manages, in order.
    pub variables: Vec<Variable>,
    /// The ones this reconcile wrote.
    pub written: Vec<Variable>,
    /// Whether the deployed auth config evaluates to this resource's providers; `None` when the
    /// deployment does not say.
    pub in_use: Option<bool>,
}

/// Why the variables are not current.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFailed {
    /// The admin's policy: Convex sync is off, or the host is not listed. Nothing was read or
    /// sent.
    #[error(transparent)]
    NotAllowed(NotAllowed),
    #[error(transparent)]
    AdminKeyMissing(SourceMissing),
    /// The operator may not read the admin key's Secret (403).
    #[error(transparent)]
    Forbidden(super::forbidden::Forbidden),
    /// The Secret does not say the key is for this deployment: nothing was sent.
    #[error(
        "Secret {namespace}/{secret} (spec.convex.adminKeySecretRef.name) is not marked for {url}: the operator sends an admin key only to the deployment its Secret names; add the annotation: kubectl annotate secret -n {namespace} {secret} {CONVEX_URL_ANNOTATION}={url}"
    )]
    KeyNotForUrl {
        namespace: String,
        secret: String,
        url: String,
    },
    #[error(
        "{} would be {bytes} bytes, over Convex's limit of {MAX_VALUE_BYTES} for a variable's value: use spec.jwks.mode Proxy or Direct, whose JWKS URL is short (mode Inline embeds the keys)",
        variable.name()
    )]
    ValueTooLarge { variable: Variable, bytes: usize },
    #[error("{url}: {error}")]
    Deployment { url: String, error: DeploymentError },
}

/// What each variable should hold: the client id and the JWKS URLs this reconcile generated.
/// Pure.
pub fn desired_values(
    valid: &Valid,
    urls: &JwksUrls,
) -> Result<Vec<(Variable, String)>, SyncFailed> {
    let mut values = Vec::new();
    for variable in valid.providers.env_driven().variables() {
        let value = match variable {
            Variable::ClientId => valid.client_id.clone(),
            Variable::JwksUrl => urls.workos.clone(),
            // Validation resolves an AuthKit URL whenever the plan has an AuthKit provider.
            Variable::AuthkitJwksUrl => urls.authkit.clone().unwrap_or_else(|| urls.workos.clone()),
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(SyncFailed::ValueTooLarge {
                variable,
                bytes: value.len(),
            });
        }
        values.push((variable, value));
    }
    Ok(values)
}

/// The values that differ from what the deployment holds. Pure.
pub fn differences<'a>(
    desired: &'a [(Variable, String)],
    current: &BTreeMap<String, String>,
) -> Vec<&'a (Variable, String)> {
    desired
        .iter()
        .filter(|(variable, value)| current.get(variable.name()) != Some(value))
        .collect()
}

/// Whether the deployed providers include every generated one (a user may merge them into an
/// auth config with other providers). Pure.
pub fn config_in_use(generated: &AuthConfig, deployed: &[DeployedProvider]) -> bool {
    generated.providers.iter().all(|p| {
        deployed.iter().any(|d| {
            d.kind.as_deref() == Some("customJwt")
                && d.issuer.as_deref() == Some(p.issuer.as_str())
                && d.jwks.as_deref() == Some(p.jwks.as_str())
                && d.algorithm.as_deref() == Some(p.algorithm.as_str())
                && d.application_id == p.application_id
        })
    })
}

/// What was last confirmed on a resource's deployment.
#[derive(Debug, Clone)]
struct Confirmed {
    digest: u64,
    at: Instant,
    in_use: Option<bool>,
}

/// Per resource: the last confirmation, so a settled resource asks nothing.
#[derive(Debug, Default)]
pub struct SyncMemory {
    confirmed: Mutex<HashMap<ResourceKey, Confirmed>>,
}

impl SyncMemory {
    /// What a recent confirmation of the same values found out about the deployed config.
    fn recent(&self, key: &ResourceKey, digest: u64) -> Option<Option<bool>> {
        self.lock()
            .get(key)
            .filter(|c| c.digest == digest && c.at.elapsed() < CONFIRM_EVERY)
            .map(|c| c.in_use)
    }

    fn remember(&self, key: &ResourceKey, digest: u64, in_use: Option<bool>) {
        self.lock().insert(
            key.clone(),
            Confirmed {
                digest,
                at: Instant::now(),
                in_use,
            },
        );
    }

    fn forget(&self, key: &ResourceKey) {
        self.lock().remove(key);
    }

    /// Drops what is remembered of resources that are gone.
    pub fn retain(&self, live: &HashSet<ResourceKey>) {
        self.lock().retain(|key, _| live.contains(key));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceKey, Confirmed>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts).
        self.confirmed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The annotation a Secret must carry, with `spec.convex.url` as its value, before the operator
/// sends the admin key it holds there: whoever may write a `WorkOSConvexAuth` cannot otherwise
/// send any Secret of the namespace to any host.
pub const CONVEX_URL_ANNOTATION: &str = "workos-convex.io/convex-url";

/// What the sync step needs from the context.
pub struct SyncContext<'a> {
    pub client: &'a Client,
    /// The admin's rules on where admin keys may go.
    pub policy: &'a Policy,
    pub deployments: &'a Deployments,
    pub memory: &'a SyncMemory,
}

/// Step 6, I/O: makes the deployment's variables equal to the generated values. The outer
/// error is the apiserver's (reading the admin key), the inner one the sync's, which status
/// reports.
pub async fn sync(
    ctx: &SyncContext<'_>,
    valid: &Valid,
    target: &ConvexTarget,
    urls: &JwksUrls,
    config: &AuthConfig,
) -> Result<Result<Synced, SyncFailed>, kube::Error> {
    if let Err(refused) = admitted(target, ctx.policy) {
        return Ok(Err(refused));
    }
    let admin_key = match read_admin_key(ctx.client, valid, target).await? {
        Ok(key) => key,
        Err(missing) => return Ok(Err(missing)),
    };
    Ok(sync_with_key(ctx, valid, target, urls, config, &admin_key).await)
}

async fn sync_with_key(
    ctx: &SyncContext<'_>,
    valid: &Valid,
    target: &ConvexTarget,
    urls: &JwksUrls,
    config: &AuthConfig,
    admin_key: &AdminKey,
) -> Result<Synced, SyncFailed> {
    let desired = desired_values(valid, urls)?;
    let variables: Vec<Variable> = desired.iter().map(|(v, _)| *v).collect();
    let key = ResourceKey::new(&valid.namespace, &valid.name);
    let digest = digest(&target.url, &desired, config);
    if let Some(in_use) = ctx.memory.recent(&key, digest) {
        return Ok(Synced {
            url: target.url.clone(),
            variables,
            written: Vec::new(),
            in_use,
        });
    }
    let failed = |error| SyncFailed::Deployment {
        url: target.url.clone(),
        error,
    };
    let current = ctx
        .deployments
        .list_variables(&target.url, admin_key)
        .await
        .map_err(failed)?;
    let changes = differences(&desired, &current);
    if !changes.is_empty() {
        let pairs: Vec<(&str, &str)> = changes
            .iter()
            .map(|(v, value)| (v.name(), value.as_str()))
            .collect();
        ctx.deployments
            .set_variables(&target.url, admin_key, &pairs)
            .await
            .map_err(failed)?;
    }
    let in_use = ctx
        .deployments
        .auth_providers(&target.url, admin_key)
        .await
        .map_err(failed)?
        .map(|deployed| config_in_use(config, &deployed));
    // Until the push, each reconcile looks again; a deployment that uses the values, or cannot
    // say, is left alone for a while.
    if in_use == Some(false) {
        ctx.memory.forget(&key);
    } else {
        ctx.memory.remember(&key, digest, in_use);
    }
    Ok(Synced {
        url: target.url.clone(),
        variables,
        written: changes.iter().map(|(v, _)| *v).collect(),
        in_use,
    })
}

/// Whether the policy lets the admin key go to the target at all. Pure.
pub fn admitted(target: &ConvexTarget, policy: &Policy) -> Result<(), SyncFailed> {
    let url = url::Url::parse(&target.url).map_err(|_| {
        SyncFailed::NotAllowed(NotAllowed {
            field: "spec.convex.url".into(),
            problem: "not a URL".into(),
            fix: "write the deployment's URL as the dashboard shows it".into(),
        })
    })?;
    check_convex(&url, policy).map_err(SyncFailed::NotAllowed)
}

/// Whether `annotation` (the Secret's [`CONVEX_URL_ANNOTATION`]) names `url` (normalised as
/// `spec.convex.url` is: scheme and host lower case, no trailing slash). Pure.
pub fn marked_for(annotation: Option<&str>, url: &str) -> bool {
    let normalised = |text: &str| {
        url::Url::parse(text.trim())
            .ok()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
    };
    annotation
        .and_then(normalised)
        .is_some_and(|marked| Some(marked) == normalised(url))
}

/// The admin key from `spec.convex.adminKeySecretRef` (a `get` by name; never listed, never
/// quoted), if its Secret is marked for the target's URL.
async fn read_admin_key(
    client: &Client,
    valid: &Valid,
    target: &ConvexTarget,
) -> Result<Result<AdminKey, SyncFailed>, kube::Error> {
    let r = &target.admin_key;
    let ns = &valid.namespace;
    let secret = match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&r.name)
        .await
    {
        Ok(secret) => secret,
        Err(e) => {
            return match super::forbidden::Forbidden::of(&e, "get", "secrets", ns, &r.name) {
                Some(forbidden) => Ok(Err(SyncFailed::Forbidden(forbidden))),
                None => Err(e),
            };
        }
    };
    // One answer for a missing Secret and a missing key: status is readable by roles that
    // cannot read Secrets, and must not tell which names exist.
    let missing = || {
        SyncFailed::AdminKeyMissing(SourceMissing(format!(
            "Secret {ns}/{} (spec.convex.adminKeySecretRef) does not exist or has no key {:?}: create it with the deployment's admin key under that key, annotated {CONVEX_URL_ANNOTATION}={}",
            r.name, r.key, target.url
        )))
    };
    let Some(secret) = secret else {
        return Ok(Err(missing()));
    };
    let annotation = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONVEX_URL_ANNOTATION));
    if !marked_for(annotation.map(String::as_str), &target.url) {
        return Ok(Err(SyncFailed::KeyNotForUrl {
            namespace: ns.clone(),
            secret: r.name.clone(),
            url: target.url.clone(),
        }));
    }
    let Some(value) = secret.data.as_ref().and_then(|d| d.get(&r.key)) else {
        return Ok(Err(missing()));
    };
    Ok(std::str::from_utf8(&value.0)
        .ok()
        .and_then(AdminKey::new)
        .ok_or_else(|| {
            SyncFailed::AdminKeyMissing(SourceMissing(format!(
                "key {:?} of Secret {ns}/{} (spec.convex.adminKeySecretRef) is empty or not text; its value is not shown: store the admin key from the Convex dashboard (or `docker compose exec backend ./generate_admin_key.sh`) there",
                r.key, r.name
            )))
        }))
}

/// Identifies what a confirmation covered: the deployment, the values and the providers.
fn digest(url: &str, desired: &[(Variable, String)], config: &AuthConfig) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    url.hash(&mut hasher);
    desired.hash(&mut hasher);
    config.to_json().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::valid;

    #[test]
    fn a_secret_is_marked_for_a_url_after_the_same_normalisation_only() {
        let url = "https://happy-otter-123.convex.cloud";
        for marked in [
            "https://happy-otter-123.convex.cloud",
            "https://happy-otter-123.convex.cloud/",
            "HTTPS://Happy-Otter-123.convex.cloud",
            " https://happy-otter-123.convex.cloud ",
        ] {
            assert!(marked_for(Some(marked), url), "{marked}");
        }
        for not_marked in [
            None,
            Some(""),
            Some("happy-otter-123.convex.cloud"),
            Some("http://happy-otter-123.convex.cloud"),
            Some("https://happy-otter-124.convex.cloud"),
            Some("https://happy-otter-123.convex.cloud:8443"),
            Some("https://happy-otter-123.convex.cloud.evil.com"),
        ] {
            assert!(!marked_for(not_marked, url), "{not_marked:?}");
        }
    }

    fn urls(workos: &str, authkit: Option<&str>) -> JwksUrls {
        JwksUrls {
            workos: workos.into(),
            authkit: authkit.map(Into::into),
            cluster_internal: false,
        }
    }

    #[test]
    fn the_variables_are_the_client_id_and_the_jwks_urls() {
        let v = valid("clientId: client_01A");
        let values = desired_values(&v, &urls("https://m/sso/jwks/client_01A", None)).unwrap();
        assert_eq!(
            values,
            [
                (Variable::ClientId, "client_01A".to_string()),
                (
                    Variable::JwksUrl,
                    "https://m/sso/jwks/client_01A".to_string()
                ),
            ]
        );
        let v = valid("{clientId: client_01A, authkitDomain: acme.authkit.app}");
        let values = desired_values(&v, &urls("https://m/w", Some("https://m/a"))).unwrap();
        assert_eq!(
            values[2],
            (Variable::AuthkitJwksUrl, "https://m/a".to_string())
        );
    }

    #[test]
    fn a_value_over_8_kib_is_refused_not_cut() {
        let v = valid("clientId: client_01A");
        let fits = format!(
            "data:application/json;base64,{}",
            "A".repeat(MAX_VALUE_BYTES - 29)
        );
        assert_eq!(fits.len(), MAX_VALUE_BYTES);
        assert!(desired_values(&v, &urls(&fits, None)).is_ok());
        let over = format!("{fits}A");
        let err = desired_values(&v, &urls(&over, None)).unwrap_err();
        assert_eq!(
            err,
            SyncFailed::ValueTooLarge {
                variable: Variable::JwksUrl,
                bytes: MAX_VALUE_BYTES + 1
            }
        );
        assert!(
            err.to_string()
                .contains("WORKOS_JWKS_URL would be 8193 bytes"),
            "{err}"
        );
    }

    #[test]
    fn only_differing_values_are_written_and_others_are_ignored() {
        let desired = vec![
            (Variable::ClientId, "client_01A".to_string()),
            (Variable::JwksUrl, "https://new".to_string()),
        ];
        let current = BTreeMap::from([
            ("WORKOS_CLIENT_ID".to_string(), "client_01A".to_string()),
            ("WORKOS_JWKS_URL".to_string(), "https://old".to_string()),
            ("OPENAI_API_KEY".to_string(), "sk-…".to_string()),
        ]);
        let changes = differences(&desired, &current);
        assert_eq!(changes, [&(Variable::JwksUrl, "https://new".to_string())]);
        assert!(differences(&desired[..1], &current).is_empty());
        assert_eq!(differences(&desired, &BTreeMap::new()).len(), 2);
    }

    #[test]
    fn in_use_when_every_generated_provider_is_deployed() {
        let v = valid("clientId: client_01A");
        let config = v.providers.with_jwks("https://m/j", None);
        let deployed = |config: &AuthConfig| -> Vec<DeployedProvider> {
            serde_json::from_value(serde_json::to_value(&config.providers).unwrap()).unwrap()
        };
        assert!(config_in_use(&config, &deployed(&config)));
        // Merged with another provider: still in use.
        let mut merged = deployed(&config);
        merged.push(DeployedProvider {
            kind: None,
            issuer: None,
            jwks: None,
            algorithm: None,
            application_id: Some("clerk".into()),
        });
        assert!(config_in_use(&config, &merged));
        // An older push with another JWKS URL, or nothing pushed: not in use.
        let old = v.providers.with_jwks("https://old/j", None);
        assert!(!config_in_use(&config, &deployed(&old)));
        assert!(!config_in_use(&config, &[]));
    }
}
