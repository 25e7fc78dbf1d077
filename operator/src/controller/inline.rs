//! Mode Inline: the operator fetches the keys itself (with the mirror's fetcher, so the same
//! validation and sanitising apply) and remembers them per resource between refreshes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::jwks::{FetchError, FetchOutcome, Fetcher, Validators};
use crate::reconcile::InlineKeys;

/// Keys fetched for one resource.
#[derive(Debug, Clone)]
struct Held {
    /// Where they came from: a resource whose upstream or client id changed fetches again.
    urls: Vec<String>,
    keys: InlineKeys,
    kids: Vec<String>,
    fetched: Instant,
}

/// Per-resource memory of fetched keys, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct InlineKeyCache {
    held: Mutex<HashMap<String, Held>>,
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
        key: &str,
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
                        key.to_string(),
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
                    tracing::warn!(resource = key, error = %e, "refreshing inline keys failed; keeping the last good ones");
                    Ok(Fetched {
                        keys: h.keys,
                        kids: h.kids,
                    })
                }
                _ => Err(e),
            },
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut map) = self.held.lock() {
            map.remove(key);
        }
    }

    /// Drops the keys of every resource not in `live` (deleted resources: without a finalizer
    /// the controller is never called for them); returns how many entries remain.
    pub fn retain(&self, live: &HashSet<String>) -> usize {
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
