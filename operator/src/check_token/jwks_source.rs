//! Getting the matched provider's keys the way Convex does: an `http(s)` GET that must answer
//! exactly 200 with an acceptable `Content-Type` (redirects followed), or a `data:` URL, which
//! skips HTTP and the `Content-Type` rule. The mirror's `Fetcher` is not reused on purpose: it
//! sanitises documents and sends a different `Accept`, and this tool must see what Convex sees.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::jwks::{ContentTypeError, check_content_type, error_chain};

/// Largest JWKS body read; WorkOS key sets are a few KiB.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 10;

/// A key set and what the server said when handing it over.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys {
    pub set: JwkSet,
    /// The HTTP status (always 200 here), or `None` for `data:` URLs and files.
    pub status: Option<u16>,
    /// The `Content-Type` header as sent, when fetched over HTTP.
    pub content_type: Option<String>,
}

/// Why Convex could not get the keys from a provider's `jwks`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksProblem {
    #[error("cannot fetch {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url} answered HTTP {status}; Convex needs exactly 200")]
    Status { url: String, status: u16 },
    #[error("{url} is served with a Content-Type Convex refuses: {error}")]
    ContentType {
        url: String,
        content_type: Option<String>,
        error: ContentTypeError,
    },
    #[error("{url}: the body exceeds {MAX_JWKS_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} is not a JWK set: {message}")]
    NotJwks { url: String, message: String },
    #[error("the jwks data: URL cannot be decoded: {0}")]
    DataUrl(String),
    #[error("jwks {0:?} is not an https://, http:// or data: URL")]
    Scheme(String),
}

/// Fetches or decodes the JWKS at `url`.
pub async fn load(url: &str) -> Result<Keys, JwksProblem> {
    if let Some(rest) = url.strip_prefix("data:") {
        let body = decode_data_url(rest)?;
        let set = parse_set(&body, "the jwks data: URL")?;
        return Ok(Keys {
            set,
            status: None,
            content_type: None,
        });
    }
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(JwksProblem::Scheme(url.to_string()));
    }
    tokio::time::timeout(TOTAL_TIMEOUT, fetch(url))
        .await
        .unwrap_or_else(|_| {
            Err(JwksProblem::Unreachable {
                url: url.to_string(),
                message: format!("no answer within {TOTAL_TIMEOUT:?}"),
            })
        })
}

/// Parses a JWKS document (from a file, a data: URL or a response body).
pub fn parse_set(body: &[u8], what: &str) -> Result<JwkSet, JwksProblem> {
    serde_json::from_slice(body).map_err(|e| JwksProblem::NotJwks {
        url: what.to_string(),
        message: e.to_string(),
    })
}

async fn fetch(url: &str) -> Result<Keys, JwksProblem> {
    let unreachable = |e: reqwest::Error| JwksProblem::Unreachable {
        url: url.to_string(),
        message: error_chain(e),
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!(
            "workos-convex-auth-check-token/",
            env!("CARGO_PKG_VERSION")
        ))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .build()
        .map_err(unreachable)?;
    let mut response = client
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(JwksProblem::Status {
            url: url.to_string(),
            status,
        });
    }
    let raw_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec());
    let content_type = raw_type
        .as_deref()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    check_content_type(raw_type.as_deref()).map_err(|error| JwksProblem::ContentType {
        url: url.to_string(),
        content_type: content_type.clone(),
        error,
    })?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(JwksProblem::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Keys {
        set: parse_set(&body, url)?,
        status: Some(status),
        content_type,
    })
}

/// Decodes what follows `data:`: `[mediatype][;base64],payload`, base64 or percent-encoded.
pub fn decode_data_url(rest: &str) -> Result<Vec<u8>, JwksProblem> {
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| JwksProblem::DataUrl("there is no ',' before the payload".into()))?;
    if meta.to_ascii_lowercase().ends_with(";base64") {
        // Accept padded or unpadded, standard or URL-safe alphabets: generators differ.
        let cleaned: String = payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace() && *c != '=')
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(cleaned)
            .map_err(|e| JwksProblem::DataUrl(format!("the base64 payload is invalid: {e}")))
    } else {
        percent_decode(payload)
    }
}

fn percent_decode(s: &str) -> Result<Vec<u8>, JwksProblem> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| JwksProblem::DataUrl(format!("bad percent-escape at byte {i}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode_base64_and_percent_encoding() {
        assert_eq!(
            decode_data_url("application/json;base64,eyJrZXlzIjpbXX0=").unwrap(),
            br#"{"keys":[]}"#
        );
        assert_eq!(
            decode_data_url("application/json;base64,eyJrZXlzIjpbXX0").unwrap(),
            br#"{"keys":[]}"#
        );
        assert_eq!(
            decode_data_url("application/json,%7B%22keys%22%3A%5B%5D%7D").unwrap(),
            br#"{"keys":[]}"#
        );
        assert!(matches!(
            decode_data_url("application/json,%7"),
            Err(JwksProblem::DataUrl(_))
        ));
        assert!(matches!(
            decode_data_url("nocomma"),
            Err(JwksProblem::DataUrl(_))
        ));
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        assert_eq!(
            load("ftp://x.com/jwks").await,
            Err(JwksProblem::Scheme("ftp://x.com/jwks".into()))
        );
    }
}
