//! A Convex deployment's admin API, as far as the operator uses it: list and set environment
//! variables, and list the auth providers the deployed `auth.config.ts` evaluates to.
//!
//! Endpoints, read in convex-backend (`crates/local_backend/src/environment_variables.rs`,
//! `router.rs`, `public_api.rs`; `npm-packages/system-udfs/convex/_system/frontend/`):
//! - `GET /api/list_environment_variables` → `{"environmentVariables": {NAME: value}}`;
//! - `POST /api/update_environment_variables`, `{"changes": [{"name", "value"}]}` → 200, empty
//!   body; the backend re-evaluates the deployed auth config with the new values and refuses the
//!   whole change (400) when that fails;
//! - `POST /api/query` of `_system/frontend/listAuthProviders` (what the dashboard shows) →
//!   `{"status": "success", "value": [provider, …]}`.
//!
//! Every request carries `Authorization: Convex <admin key>`. Errors are JSON
//! `{"code", "message"}` (`crates/common/src/http/mod.rs`); 401 `BadAdminKey` for a wrong key,
//! 403 `BadDeployKey` / `OperationNotPermitted` for a missing or too weak one.
//!
//! The URL is a tenant's: requests follow the operator's address rules (no private ranges unless
//! allowed, https unless http is allowed), never follow redirects (the admin key must reach only
//! the URL the resource names), are rate-limited per deployment, bounded in time and in the
//! bytes read, and the key never appears in what they return.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode, redirect};
use serde::{Deserialize, Serialize};

use crate::jwks::{GuardedResolver, Refused, UpstreamRules, error_chain, refusal_in};

/// Convex's limit on a variable's value (`MAX_VALUE_LENGTH`, 8 KiB, inclusive).
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Most bytes read from any answer: the backend caps all variables together at 512 KiB.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Longest message of the deployment's quoted in status.
const MAX_MESSAGE_CHARS: usize = 300;

/// A deployment's admin key (or a Cloud deploy key). Never printed: `Debug` hides it, and
/// [`AdminKey::redact`] removes it from any text a deployment sends back.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(String);

impl AdminKey {
    /// A key as stored in the Secret (surrounding whitespace dropped, as `kubectl create secret
    /// --from-file` keeps a trailing newline).
    pub fn new(raw: &str) -> Option<Self> {
        let key = raw.trim();
        // Anything a header cannot carry is not a key.
        (!key.is_empty() && HeaderValue::from_str(key).is_ok()).then(|| Self(key.to_string()))
    }

    fn header(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Convex {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("Convex"));
        value.set_sensitive(true);
        value
    }

    /// `text` with every occurrence of the key replaced.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "[admin key]")
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey([redacted])")
    }
}

/// Why a request to a deployment failed. Messages quote the deployment (shortened, the key
/// removed) and never the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentError {
    /// 401/403: the key is wrong, for another deployment, or may not do this.
    #[error("the deployment refused the admin key (HTTP {status} {code}: {message})")]
    AdminKeyRefused {
        status: u16,
        code: String,
        message: String,
    },
    /// Any other error the deployment answered in Convex's format.
    #[error("the deployment refused the request (HTTP {status} {code}: {message})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the deployment: {0}")]
    Unreachable(String),
    #[error("the deployment did not answer within {0:?}")]
    Timeout(Duration),
    /// The operator's address rules forbid the URL; nothing was sent.
    #[error("the operator may not connect there: {0}")]
    NotAllowed(Refused),
    /// Not an answer a Convex deployment gives (an HTML page, a redirect, a proxy's error).
    #[error(
        "HTTP {status} with no Convex error in the body: is spec.convex.url a Convex deployment's URL?"
    )]
    Unexpected { status: u16 },
    #[error("the deployment's answer is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the operator's own rate limit for this deployment is spent; retried")]
    RateLimited,
    /// Every one of the operator's concurrent calls to Convex deployments is in use.
    #[error("all {0} of the operator's calls to Convex deployments at once are in use; retried")]
    Busy(usize),
}

/// A provider of the deployed auth config, as the deployment evaluated it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeployedProvider {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub jwks: Option<String>,
    #[serde(default)]
    pub algorithm: Option<String>,
    #[serde(rename = "applicationID", default)]
    pub application_id: Option<String>,
}

/// Bounds on the deployment client.
#[derive(Debug, Clone)]
pub struct DeploymentLimits {
    pub connect_timeout: Duration,
    /// One request, body included.
    pub request_timeout: Duration,
    /// Requests per second to one deployment (a burst of twice as many).
    pub per_second: NonZeroU32,
    /// Longest wait for the rate limit, or for a free call, before the reconcile gives up and
    /// retries later.
    pub max_wait: Duration,
    /// Calls to Convex deployments in flight at once, over all deployments: the sync's own pool,
    /// so slow deployments of some tenants hold at most this many, whatever they number.
    pub max_in_flight: usize,
}

impl Default for DeploymentLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            per_second: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            max_wait: Duration::from_secs(5),
            max_in_flight: 4,
        }
    }
}

impl DeploymentLimits {
    /// Inside a reconcile, which holds one of the workers every namespace shares: 5 s a request
    /// (connect included) to a deployment the tenant chose.
    pub fn for_reconcile() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            ..Self::default()
        }
    }
}

/// The admin-API client shared by every reconcile; cheap to clone.
#[derive(Clone)]
pub struct Deployments {
    client: reqwest::Client,
    rules: UpstreamRules,
    limits: DeploymentLimits,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for Deployments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployments")
            .field("rules", &self.rules)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Change<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Changes<'a> {
    changes: Vec<Change<'a>>,
}

/// The body of `POST /api/query` (convex-js `ConvexHttpClient`).
#[derive(Serialize)]
struct Query {
    path: &'static str,
    format: &'static str,
    args: [NoArgs; 1],
}

#[derive(Serialize)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariableList {
    environment_variables: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
enum QueryAnswer {
    Success {
        value: serde_json::Value,
    },
    Error {
        #[serde(rename = "errorMessage")]
        _error_message: String,
    },
}

impl Deployments {
    pub fn new(rules: UpstreamRules, limits: DeploymentLimits) -> Result<Self, String> {
        let builder = reqwest::Client::builder()
            .user_agent(concat!("workos-convex-auth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout);
        let client = rules
            .egress
            .apply(builder)
            .map_err(|e| e.to_string())?
            .dns_resolver(Arc::new(GuardedResolver::new(rules.clone())))
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let per_second = limits.per_second;
        let burst = per_second.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Ok(Self {
            client,
            rules,
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            )),
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight.max(1))),
            limits,
        })
    }

    /// Every variable's value, by name.
    pub async fn list_variables(
        &self,
        url: &str,
        key: &AdminKey,
    ) -> Result<BTreeMap<String, String>, DeploymentError> {
        let body = self
            .request(
                url,
                Method::GET,
                "/api/list_environment_variables",
                key,
                None,
            )
            .await?;
        let list: VariableList = serde_json::from_slice(&body)
            .map_err(|_| DeploymentError::Unexpected { status: 200 })?;
        Ok(list.environment_variables)
    }

    /// Sets `changes` (name, value) in one transaction.
    pub async fn set_variables(
        &self,
        url: &str,
        key: &AdminKey,
        changes: &[(&str, &str)],
    ) -> Result<(), DeploymentError> {
        let body = Changes {
            changes: changes
                .iter()
                .map(|(name, value)| Change { name, value })
                .collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|_| DeploymentError::TooLarge)?;
        self.request(
            url,
            Method::POST,
            "/api/update_environment_variables",
            key,
            Some(body),
        )
        .await
        .map(drop)
    }

    /// The providers the deployed auth config evaluates to; `None` when the deployment does not
    /// answer the dashboard's query (an older or a restricted backend): then nobody can tell.
    pub async fn auth_providers(
        &self,
        url: &str,
        key: &AdminKey,
    ) -> Result<Option<Vec<DeployedProvider>>, DeploymentError> {
        let query = Query {
            path: "_system/frontend/listAuthProviders",
            format: "convex_encoded_json",
            args: [NoArgs {}],
        };
        let body = serde_json::to_vec(&query).map_err(|_| DeploymentError::TooLarge)?;
        let answer = self
            .request(url, Method::POST, "/api/query", key, Some(body))
            .await?;
        match serde_json::from_slice(&answer) {
            Ok(QueryAnswer::Success { value }) => Ok(serde_json::from_value(value).ok()),
            Ok(QueryAnswer::Error { .. }) | Err(_) => Ok(None),
        }
    }

    async fn request(
        &self,
        url: &str,
        method: Method,
        path: &str,
        key: &AdminKey,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, DeploymentError> {
        let target = self
            .rules
            .check_url(&format!("{url}{path}"))
            .map_err(DeploymentError::NotAllowed)?;
        let deployment = url.to_string();
        let ready = self.limiter.until_key_ready(&deployment);
        tokio::time::timeout(self.limits.max_wait, ready)
            .await
            .map_err(|_| DeploymentError::RateLimited)?;
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        // Held until the answer is read (or the request times out).
        let _call = tokio::time::timeout(self.limits.max_wait, self.in_flight.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(DeploymentError::Busy(self.limits.max_in_flight))?;
        let mut request = self
            .client
            .request(method, target)
            .header(AUTHORIZATION, key.header());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let limit = self.limits.request_timeout;
        let exchange = async {
            let mut response = request.send().await.map_err(|e| classify(e, key, limit))?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| classify(e, key, limit))?
            {
                if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
                    return Err(DeploymentError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            answer(status, body, key)
        };
        // reqwest's timeout covers the body; this one also bounds our own reading.
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| DeploymentError::Timeout(limit))?
    }
}

/// `limit`: the timeout reqwest applied, named in the message when it fired.
fn classify(e: reqwest::Error, key: &AdminKey, limit: Duration) -> DeploymentError {
    if let Some(refused) = refusal_in(&e) {
        return DeploymentError::NotAllowed(refused);
    }
    if e.is_timeout() {
        return DeploymentError::Timeout(limit);
    }
    DeploymentError::Unreachable(shorten(&key.redact(&error_chain(e))))
}

/// A 200 is the answer; anything else is an error, in Convex's format or not.
fn answer(status: StatusCode, body: Vec<u8>, key: &AdminKey) -> Result<Vec<u8>, DeploymentError> {
    if status == StatusCode::OK {
        return Ok(body);
    }
    let Ok(ErrorBody { code, message }) = serde_json::from_slice::<ErrorBody>(&body) else {
        return Err(DeploymentError::Unexpected {
            status: status.as_u16(),
        });
    };
    let (code, message) = (shorten(&key.redact(&code)), shorten(&key.redact(&message)));
    let status = status.as_u16();
    if matches!(status, 401 | 403) {
        Err(DeploymentError::AdminKeyRefused {
            status,
            code,
            message,
        })
    } else {
        Err(DeploymentError::Refused {
            status,
            code,
            message,
        })
    }
}

/// At most [`MAX_MESSAGE_CHARS`] characters, control characters dropped.
fn shorten(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 22: the sync's own pool. With one call allowed, a second one waits at most
    /// `max_wait` while the first hangs on a deployment that never answers, and says why.
    #[tokio::test]
    async fn calls_beyond_the_pool_wait_briefly_then_say_busy() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                sockets.push(socket);
            }
        });
        let rules = UpstreamRules {
            allow_http: true,
            allowed_networks: vec![crate::jwks::parse_network("127.0.0.0/8").unwrap()],
            ..UpstreamRules::default()
        };
        let limits = DeploymentLimits {
            request_timeout: Duration::from_secs(3),
            max_wait: Duration::from_millis(200),
            max_in_flight: 1,
            ..DeploymentLimits::default()
        };
        let deployments = Deployments::new(rules, limits).unwrap();
        let key = AdminKey::new("k3y").unwrap();
        let first = {
            let (deployments, url, key) = (deployments.clone(), url.clone(), key.clone());
            tokio::spawn(async move { deployments.list_variables(&url, &key).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        let second = deployments.list_variables(&url, &key).await;
        assert_eq!(second, Err(DeploymentError::Busy(1)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            second
                .unwrap_err()
                .to_string()
                .contains("all 1 of the operator's calls")
        );
        assert!(matches!(
            first.await.unwrap(),
            Err(DeploymentError::Timeout(_))
        ));
        held.abort();
    }

    #[test]
    fn the_admin_key_is_never_printed() {
        let key = AdminKey::new(" self-hosted|0123abcd\n").unwrap();
        assert_eq!(format!("{key:?}"), "AdminKey([redacted])");
        assert_eq!(
            key.redact("bad key self-hosted|0123abcd here"),
            "bad key [admin key] here"
        );
        assert!(key.header().is_sensitive());
        assert!(AdminKey::new("  \n").is_none());
        assert!(AdminKey::new("a\u{7}b").is_none());
    }

    #[test]
    fn answers_are_classified_by_status_and_convex_error_code() {
        let key = AdminKey::new("k3y").unwrap();
        let body = |code: &str, msg: &str| {
            serde_json::to_vec(&serde_json::json!({"code": code, "message": msg})).unwrap()
        };
        assert_eq!(answer(StatusCode::OK, b"".to_vec(), &key), Ok(Vec::new()));
        assert!(matches!(
            answer(StatusCode::UNAUTHORIZED, body("BadAdminKey", "invalid k3y"), &key),
            Err(DeploymentError::AdminKeyRefused { status: 401, ref message, .. }) if message == "invalid [admin key]"
        ));
        assert!(matches!(
            answer(StatusCode::BAD_REQUEST, body("InvalidAuthConfig", "This change would make the auth config invalid"), &key),
            Err(DeploymentError::Refused { status: 400, ref code, .. }) if code == "InvalidAuthConfig"
        ));
        assert_eq!(
            answer(StatusCode::NOT_FOUND, b"<html>nope</html>".to_vec(), &key),
            Err(DeploymentError::Unexpected { status: 404 })
        );
        let long = "x".repeat(5000);
        let Err(DeploymentError::Refused { message, .. }) =
            answer(StatusCode::BAD_REQUEST, body("C", &long), &key)
        else {
            panic!("expected a refusal");
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
