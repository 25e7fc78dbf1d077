//! I/O, the pipeline's fetch step: the JWKS URLs Convex will use. In modes Direct and Proxy
//! they follow from the spec; in mode Inline the operator fetches the keys itself (with the
//! mirror's fetcher, so the same validation and sanitising apply), embeds them, and remembers
//! them per resource between refreshes.

use crate::reconcile::names::ResourceKey;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::children::InlineKeys;
use super::urls::JwksUrls;
use super::validate::Valid;
use crate::convex::generate::InvalidField;
use crate::jwks::{FetchError, FetchOutcome, Fetcher, Validators};

/// What the fetch step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub urls: JwksUrls,
    /// The key ids of the embedded keys (mode Inline), for status and the rotation event.
    pub key_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchFailed {
    /// The upstream did not give usable keys; retried with backoff.
    #[error(
        "fetching the signing keys from {urls} failed: {error}; check spec.jwks.upstreamBase and that the operator can reach it"
    )]
    Unavailable { urls: String, error: FetchError },
    /// The keys do not fit the ConfigMap they would be embedded in.
    #[error(transparent)]
    TooLarge(#[from] InvalidField),
}

/// The fetch step: the URLs from the spec, or in mode Inline the keys embedded as URLs.
pub async fn keys(
    valid: &Valid,
    cache: &InlineKeyCache,
    fetcher: &Fetcher,
) -> Result<Keys, FetchFailed> {
    if let Some(urls) = &valid.served_urls {
        return Ok(Keys {
            urls: urls.clone(),
            key_ids: Vec::new(),
        });
    }
    let upstreams = valid.upstreams();
    let fetched = cache
        .get(
            fetcher,
            &cache_key(valid),
            &upstreams,
            valid.refresh_interval,
            valid.max_stale,
        )
        .await
        .map_err(|error| FetchFailed::Unavailable {
            urls: upstreams.join(", "),
            error,
        })?;
    Ok(Keys {
        urls: JwksUrls::embedded(valid, &fetched.keys)?,
        key_ids: fetched.kids,
    })
}

/// The cache's key of a resource.
pub fn cache_key(valid: &Valid) -> ResourceKey {
    ResourceKey::new(&valid.namespace, &valid.name)
}

/// Keys fetched for one resource.
#[derive(Debug, Clone)]
struct Held {
    /// Where they came from: a resource whose upstream or client id changed fetches again.
    urls: Vec<String>,
    keys: InlineKeys,
    kids: Vec<String>,
    fetched: Instant,
}

/// Per-resource memory of fetched keys.
#[derive(Debug, Default)]
pub struct InlineKeyCache {
    held: Mutex<HashMap<ResourceKey, Held>>,
}

/// Keys to embed, their ids, and whether they were fetched just now.
pub struct Fetched {
    pub keys: InlineKeys,
    pub kids: Vec<String>,
}

impl InlineKeyCache {
    /// Returns held keys younger than `refresh`, else fetches `urls` (WorkOS first, then the
    /// AuthKit domain, if any). On a failed refresh, keys younger than `max_stale` are kept.
    pub async fn get(
        &self,
        fetcher: &Fetcher,
        key: &ResourceKey,
        urls: &[String],
        refresh: Duration,
        max_stale: Duration,
    ) -> Result<Fetched, FetchError> {
        let held = self
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(key).cloned())
            .filter(|h| h.urls == urls);
        if let Some(h) = &held
            && h.fetched.elapsed() < refresh
        {
            return Ok(Fetched {
                keys: h.keys.clone(),
                kids: h.kids.clone(),
            });
        }
        match fetch_all(fetcher, urls).await {
            Ok((keys, kids)) => {
                if let Ok(mut map) = self.held.lock() {
                    map.insert(
                        key.clone(),
                        Held {
                            urls: urls.to_vec(),
                            keys: keys.clone(),
                            kids: kids.clone(),
                            fetched: Instant::now(),
                        },
                    );
                }
                Ok(Fetched { keys, kids })
            }
            Err(e) => match held {
                Some(h) if h.fetched.elapsed() < max_stale => {
                    tracing::warn!(resource = %key, error = %e, "refreshing inline keys failed; keeping the last good ones");
                    Ok(Fetched {
                        keys: h.keys,
                        kids: h.kids,
                    })
                }
                _ => Err(e),
            },
        }
    }

    pub fn forget(&self, key: &ResourceKey) {
        if let Ok(mut map) = self.held.lock() {
            map.remove(key);
        }
    }

    /// Drops the keys of every resource not in `live` (deleted resources: without a finalizer
    /// the controller is never called for them); returns how many entries remain.
    pub fn retain(&self, live: &HashSet<ResourceKey>) -> usize {
        self.held.lock().map_or(0, |mut map| {
            map.retain(|key, _| live.contains(key));
            map.len()
        })
    }
}

async fn fetch_all(
    fetcher: &Fetcher,
    urls: &[String],
) -> Result<(InlineKeys, Vec<String>), FetchError> {
    let mut docs = Vec::new();
    let mut kids = Vec::new();
    for url in urls {
        match fetcher.fetch(url, &Validators::default()).await? {
            FetchOutcome::Fresh(doc) => {
                kids.extend(doc.jwks.kids.iter().cloned());
                docs.push(String::from_utf8_lossy(&doc.jwks.body).into_owned());
            }
            // No validators were sent, so a 304 would be a broken upstream.
            FetchOutcome::NotModified { .. } => return Err(FetchError::Status(304)),
        }
    }
    let mut docs = docs.into_iter();
    let workos = docs.next().unwrap_or_default();
    Ok((
        InlineKeys {
            workos,
            authkit: docs.next(),
        },
        kids,
    ))
}
