//! Fetching a JWKS document from an upstream, with every limit a hostile or broken upstream
//! could otherwise exploit: connect and total timeouts, a body cap and a redirect limit.

use std::time::Duration;

use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use reqwest::{StatusCode, redirect};

use super::upstream::{GuardedResolver, Refused, UpstreamRules, same_origin};
use super::{ContentTypeError, JwksError, PublicJwks, check_content_type, max_age, sanitize};

/// Bounds on one upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    /// Time allowed to establish the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, body included.
    pub total_timeout: Duration,
    /// Largest body accepted; WorkOS key sets are a few KiB.
    pub max_body_bytes: usize,
    /// Redirects followed before giving up (Convex follows redirects too).
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(15),
            max_body_bytes: 256 * 1024,
            max_redirects: 3,
        }
    }
}

impl FetchLimits {
    /// The operator's own fetches (mode Inline) run inside a reconcile, which holds one of the
    /// workers every namespace shares: a tenant's upstream gets 5 s in all, not 15.
    pub fn for_reconcile() -> Self {
        Self {
            total_timeout: Duration::from_secs(5),
            ..Self::default()
        }
    }
}

/// Cache validators from a previous answer, sent back to ask "has it changed?".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The upstream's `ETag`, verbatim.
    pub etag: Option<String>,
    /// The upstream's `Last-Modified`, verbatim.
    pub last_modified: Option<String>,
}

impl Validators {
    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A new, valid document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshDocument {
    /// The sanitised document.
    pub jwks: PublicJwks,
    /// Validators for the next conditional request.
    pub validators: Validators,
    /// The upstream's `Cache-Control` lifetime, unclamped.
    pub max_age: Option<Duration>,
}

/// The result of a successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The upstream sent a document and it is valid.
    Fresh(FreshDocument),
    /// The upstream confirmed (304) that the document behind the validators is still current.
    NotModified {
        /// The upstream's `Cache-Control` lifetime on the 304, unclamped.
        max_age: Option<Duration>,
    },
}

/// Why a fetch produced no usable document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// The connection could not be established.
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    /// The connect or total timeout passed.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// More redirects than allowed, or a loop.
    #[error("the upstream redirected too many times")]
    Redirects,
    /// Any status other than 200 (or 304 to a conditional request).
    #[error("the upstream answered HTTP {0}")]
    Status(u16),
    /// The body is larger than the cap.
    #[error("the upstream body exceeds {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The `Content-Type` would be refused by Convex.
    #[error(transparent)]
    ContentType(#[from] ContentTypeError),
    /// The document is not a valid public JWKS.
    #[error(transparent)]
    Invalid(#[from] JwksError),
    /// Any other transport failure (reset connection, malformed HTTP, ...).
    #[error("upstream transport error: {0}")]
    Transport(String),
    /// The upstream rules forbid the request (scheme, address, redirect): nothing was sent to
    /// the refused address.
    #[error("refused: {0}")]
    Refused(#[from] Refused),
}

impl FetchError {
    /// A short, fixed label for metrics (`outcome="..."`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Setup(_) => "setup",
            Self::Connect(_) => "connect",
            Self::Timeout => "timeout",
            Self::Redirects => "redirects",
            Self::Status(_) => "status",
            Self::TooLarge { .. } => "too_large",
            Self::ContentType(_) => "content_type",
            Self::Invalid(_) => "invalid",
            Self::Transport(_) => "transport",
            Self::Refused(_) => "refused",
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        if let Some(refused) = refusal_in(&e) {
            return Self::Refused(refused);
        }
        if e.is_timeout() {
            return Self::Timeout;
        }
        if e.is_redirect() {
            return Self::Redirects;
        }
        let connect = e.is_connect();
        let message = error_chain(e);
        if connect {
            Self::Connect(message)
        } else {
            Self::Transport(message)
        }
    }
}

/// Our own refusal (from the resolver or the redirect policy), wherever reqwest wrapped it.
pub(crate) fn refusal_in(e: &reqwest::Error) -> Option<Refused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = cause {
        if let Some(refused) = inner.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        cause = inner.source();
    }
    None
}

/// Fetches JWKS documents; cheap to clone, holds one connection pool.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: FetchLimits,
    rules: UpstreamRules,
}

impl Fetcher {
    /// Builds a fetcher (rustls, no cookies, the egress proxy of `rules` and no other) applying
    /// `limits` to every request and `rules` to every address it connects to and every redirect.
    pub fn new(limits: FetchLimits, rules: UpstreamRules) -> Result<Self, FetchError> {
        let max_redirects = limits.max_redirects;
        let builder = reqwest::Client::builder()
            .user_agent(concat!("workos-convex-auth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.total_timeout);
        let client = rules
            .egress
            .apply(builder)
            .map_err(|e| FetchError::Setup(e.to_string()))?
            .dns_resolver(std::sync::Arc::new(GuardedResolver::new(rules.clone())))
            .redirect(redirect::Policy::custom(move |attempt| {
                let Some(first) = attempt.previous().first() else {
                    return attempt.follow();
                };
                if !same_origin(first, attempt.url()) {
                    let to = attempt.url().origin().ascii_serialization();
                    return attempt.error(Refused::CrossOriginRedirect(to));
                }
                if attempt.previous().len() > max_redirects {
                    return attempt.error("too many redirects");
                }
                attempt.follow()
            }))
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        Ok(Self {
            client,
            limits,
            rules,
        })
    }

    /// The limits this fetcher applies.
    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// Fetches `url`, conditionally when `validators` hold anything, and returns the sanitised
    /// document only if the status, `Content-Type`, size and content all pass.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let exchange = self.exchange(url, validators);
        // reqwest's timeout covers the body too; this outer one also bounds our own reading.
        tokio::time::timeout(self.limits.total_timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn exchange(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        // The scheme and an IP-literal host are checked here: reqwest resolves no IP literal.
        let url = self.rules.check_url(url)?;
        let mut request = self
            .client
            .get(url)
            .header(ACCEPT, "application/jwk-set+json, application/json");
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
        let mut response = request.send().await.map_err(FetchError::from_reqwest)?;
        let headers = response.headers().clone();
        let max_age = max_age(headers.get(CACHE_CONTROL).map(|v| v.as_bytes()));
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED if !validators.is_empty() => {
                return Ok(FetchOutcome::NotModified { max_age });
            }
            other => return Err(FetchError::Status(other.as_u16())),
        }
        check_content_type(headers.get(CONTENT_TYPE).map(|v| v.as_bytes()))?;
        let limit = self.limits.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::from_reqwest)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        let jwks = sanitize(&body)?;
        Ok(FetchOutcome::Fresh(FreshDocument {
            jwks,
            validators: validators_of(&headers),
            max_age,
        }))
    }
}

fn validators_of(headers: &HeaderMap) -> Validators {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    Validators {
        etag: text(ETAG),
        last_modified: text(LAST_MODIFIED),
    }
}

/// reqwest's top-level message is terse ("error sending request"); the causes say what failed.
/// The URL is left out: the caller already names it.
pub(crate) fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}
