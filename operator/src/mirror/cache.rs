//! The served document of one mirror: what is held, since when, and whether it may be served.
//!
//! Readers (requests) only `load` an `Arc`; the refresher swaps in a new one. No locks, and the
//! clock is passed in so the state machine is tested without sleeping.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::http::HeaderValue;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::jwks::PublicJwks;

/// A document ready to serve: body and strong `ETag`, computed once.
#[derive(Debug, PartialEq, Eq)]
pub struct Document {
    /// The sanitised JSON.
    pub body: Bytes,
    /// `"<first 32 hex digits of the body's SHA-256>"`.
    pub etag: HeaderValue,
    /// Key ids in document order.
    pub kids: Vec<String>,
}

impl Document {
    /// Wraps a sanitised document and computes its `ETag`.
    pub fn new(jwks: PublicJwks) -> Self {
        let digest = Sha256::digest(&jwks.body);
        let mut etag = String::with_capacity(34);
        etag.push('"');
        for byte in &digest[..16] {
            let _ = write!(etag, "{byte:02x}");
        }
        etag.push('"');
        // Quotes and hex digits are always a valid header value.
        let etag =
            HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Self {
            body: jwks.body,
            etag,
            kids: jwks.kids,
        }
    }
}

/// The held document and when the upstream last vouched for it (200 or 304).
#[derive(Debug)]
pub struct Entry {
    /// The document.
    pub doc: Arc<Document>,
    /// Last successful contact with the upstream about this document.
    pub validated_at: Instant,
}

/// Whether a mirror can serve, as of a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No valid document has been fetched yet.
    Missing,
    /// A document is held and was validated `age` ago, within max-stale.
    Servable {
        /// Time since the upstream last vouched for it.
        age: Duration,
    },
    /// The held document was validated longer than max-stale ago: it is withheld.
    Expired {
        /// Time since the upstream last vouched for it.
        age: Duration,
    },
}

/// What a fresh upstream document did to the held one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First document, or different bytes from the one held.
    Replaced,
    /// Same bytes as the held document; only its validation time moved.
    Unchanged,
}

/// The document slot of one mirror.
#[derive(Debug)]
pub struct Slot {
    entry: ArcSwapOption<Entry>,
    max_stale: Duration,
}

impl Slot {
    /// An empty slot whose documents expire `max_stale` after their last validation.
    pub fn new(max_stale: Duration) -> Self {
        Self {
            entry: ArcSwapOption::empty(),
            max_stale,
        }
    }

    /// Records a valid document from the upstream, fetched at `now`.
    pub fn on_fresh(&self, jwks: PublicJwks, now: Instant) -> Change {
        let held = self.entry.load_full();
        let (doc, change) = match held {
            Some(entry) if entry.doc.body == jwks.body => {
                (Arc::clone(&entry.doc), Change::Unchanged)
            }
            _ => (Arc::new(Document::new(jwks)), Change::Replaced),
        };
        self.entry.store(Some(Arc::new(Entry {
            doc,
            validated_at: now,
        })));
        change
    }

    /// Records a 304 at `now`; returns false (and changes nothing) if no document is held.
    pub fn on_not_modified(&self, now: Instant) -> bool {
        let Some(entry) = self.entry.load_full() else {
            return false;
        };
        self.entry.store(Some(Arc::new(Entry {
            doc: Arc::clone(&entry.doc),
            validated_at: now,
        })));
        true
    }

    /// The document to serve at `now`, if any may be served. This is the request path.
    pub fn servable(&self, now: Instant) -> Option<Arc<Document>> {
        let guard = self.entry.load();
        let entry = guard.as_ref()?;
        (now.saturating_duration_since(entry.validated_at) <= self.max_stale)
            .then(|| Arc::clone(&entry.doc))
    }

    /// Whether the slot can serve at `now`, and how old its document is.
    pub fn freshness(&self, now: Instant) -> Freshness {
        let guard = self.entry.load();
        let Some(entry) = guard.as_ref() else {
            return Freshness::Missing;
        };
        let age = now.saturating_duration_since(entry.validated_at);
        if age <= self.max_stale {
            Freshness::Servable { age }
        } else {
            Freshness::Expired { age }
        }
    }

    /// The held document, servable or not (for metrics).
    pub fn held(&self) -> Option<Arc<Document>> {
        self.entry.load().as_ref().map(|e| Arc::clone(&e.doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwks(body: &str, kids: &[&str]) -> PublicJwks {
        PublicJwks {
            body: Bytes::from(body.to_string()),
            kids: kids.iter().map(|k| k.to_string()).collect(),
        }
    }

    const STALE: Duration = Duration::from_secs(60);

    #[test]
    fn empty_slot_serves_nothing_and_ignores_304() {
        let slot = Slot::new(STALE);
        let now = Instant::now();
        assert_eq!(slot.freshness(now), Freshness::Missing);
        assert!(slot.servable(now).is_none());
        assert!(!slot.on_not_modified(now));
        assert_eq!(slot.freshness(now), Freshness::Missing);
    }

    #[test]
    fn serves_until_max_stale_then_withholds() {
        let slot = Slot::new(STALE);
        let t0 = Instant::now();
        assert_eq!(
            slot.on_fresh(jwks(r#"{"keys":[1]}"#, &["a"]), t0),
            Change::Replaced
        );
        assert_eq!(
            slot.freshness(t0 + STALE),
            Freshness::Servable { age: STALE }
        );
        assert_eq!(slot.servable(t0 + STALE).unwrap().kids, ["a"]);
        let late = t0 + STALE + Duration::from_millis(1);
        assert_eq!(
            slot.freshness(late),
            Freshness::Expired {
                age: STALE + Duration::from_millis(1)
            }
        );
        assert!(slot.servable(late).is_none());
        assert!(
            slot.held().is_some(),
            "the document is withheld, not forgotten"
        );
    }

    #[test]
    fn a_304_or_identical_body_extends_life_and_keeps_the_etag() {
        let slot = Slot::new(STALE);
        let t0 = Instant::now();
        slot.on_fresh(jwks(r#"{"keys":[1]}"#, &["a"]), t0);
        let etag = slot.held().unwrap().etag.clone();
        assert!(slot.on_not_modified(t0 + Duration::from_secs(50)));
        assert!(slot.servable(t0 + Duration::from_secs(100)).is_some());
        assert_eq!(
            slot.on_fresh(
                jwks(r#"{"keys":[1]}"#, &["a"]),
                t0 + Duration::from_secs(100)
            ),
            Change::Unchanged
        );
        assert!(slot.servable(t0 + Duration::from_secs(150)).is_some());
        assert_eq!(slot.held().unwrap().etag, etag);
    }

    #[test]
    fn a_new_body_replaces_the_document_and_its_etag() {
        let slot = Slot::new(STALE);
        let t0 = Instant::now();
        slot.on_fresh(jwks(r#"{"keys":[1]}"#, &["a"]), t0);
        let old = slot.held().unwrap();
        assert_eq!(
            slot.on_fresh(jwks(r#"{"keys":[2]}"#, &["b"]), t0),
            Change::Replaced
        );
        let new = slot.held().unwrap();
        assert_ne!(old.etag, new.etag);
        assert_eq!(new.kids, ["b"]);
        let etag = new.etag.to_str().unwrap();
        assert!(
            etag.len() == 34
                && etag.starts_with('"')
                && etag.ends_with('"')
                && !etag.starts_with("W/")
        );
    }
}
