//! Background refresh of one mirrored document: the only code that contacts an upstream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::cache::{Change, Freshness};
use super::metrics::FetchResult;
use super::server::Shared;
use crate::jwks::{FetchOutcome, Fetcher, Validators};

/// Shortest interval an upstream's `max-age` (or `no-cache`) can push us to, so that it cannot
/// make us hammer it; never longer than `--refresh` itself.
const MIN_REFRESH: Duration = Duration::from_secs(10);
/// First retry delay after a failure; doubles per consecutive failure up to `--refresh`.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// Delay before the next fetch after a success: the upstream's `max-age` may shorten the
/// interval (down to a floor) but never lengthen it past `--refresh`, so rotations stay visible.
pub(crate) fn success_delay(refresh: Duration, max_age: Option<Duration>) -> Duration {
    let floor = MIN_REFRESH.min(refresh);
    max_age.unwrap_or(refresh).clamp(floor, refresh)
}

/// Delay before retrying after `failures` consecutive failures (1 = first).
pub(crate) fn failure_delay(refresh: Duration, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << exponent).min(refresh)
}

/// Spreads refreshes of many replicas over the last fifth of the interval (never later).
fn jitter(delay: Duration) -> Duration {
    // Checked: `mul_f64` panics on overflow, and `delay` comes from flags.
    Duration::try_from_secs_f64(delay.as_secs_f64() * rand::rng().random_range(0.8..=1.0))
        .unwrap_or(delay)
}

/// Fetches mirror `index` now, then forever on the schedule above. Aborted at shutdown.
pub(crate) async fn run(shared: Arc<Shared>, index: usize, fetcher: Fetcher, refresh: Duration) {
    let Some(mirror) = shared.mirrors.get(index) else {
        return;
    };
    let (path, url) = (mirror.spec.path.as_str(), mirror.spec.url.as_str());
    let mut validators = Validators::default();
    let mut failures: u32 = 0;
    loop {
        let outcome = fetcher.fetch(url, &validators).await;
        let now = Instant::now();
        let delay = match outcome {
            Ok(FetchOutcome::Fresh(fresh)) => {
                let kids = fresh.jwks.kids.clone();
                let change = mirror.slot.on_fresh(fresh.jwks, now);
                validators = fresh.validators;
                let result = match change {
                    Change::Replaced => {
                        tracing::info!(path, upstream = url, ?kids, "serving new JWKS document");
                        FetchResult::Fresh
                    }
                    Change::Unchanged => FetchResult::Unchanged,
                };
                shared.metrics.fetch(index, result);
                recovered(path, &mut failures);
                success_delay(refresh, fresh.max_age)
            }
            Ok(FetchOutcome::NotModified { max_age }) => {
                // A 304 with nothing held cannot happen (no validators are sent then), but
                // drop the validators so the next request is unconditional if it somehow does.
                if !mirror.slot.on_not_modified(now) {
                    validators = Validators::default();
                }
                shared.metrics.fetch(index, FetchResult::NotModified);
                recovered(path, &mut failures);
                success_delay(refresh, max_age)
            }
            Err(error) => {
                shared.metrics.fetch(index, FetchResult::Failed(&error));
                failures = failures.saturating_add(1);
                match mirror.slot.freshness(now) {
                    Freshness::Servable { age } => tracing::warn!(
                        path, upstream = url, %error, failures, age_s = age.as_secs(),
                        "JWKS refresh failed; still serving the last good document"
                    ),
                    Freshness::Missing => tracing::warn!(
                        path, upstream = url, %error, failures, "JWKS fetch failed; nothing to serve yet"
                    ),
                    Freshness::Expired { age } => tracing::error!(
                        path, upstream = url, %error, failures, age_s = age.as_secs(),
                        "JWKS refresh failed past max-stale; answering 503"
                    ),
                }
                failure_delay(refresh, failures)
            }
        };
        tokio::time::sleep(jitter(delay)).await;
    }
}

fn recovered(path: &str, failures: &mut u32) {
    if *failures > 0 {
        tracing::info!(path, after_failures = *failures, "JWKS upstream recovered");
        *failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn max_age_shortens_within_bounds_but_never_lengthens() {
        let refresh = S(300);
        assert_eq!(success_delay(refresh, None), refresh);
        assert_eq!(success_delay(refresh, Some(S(3600))), refresh);
        assert_eq!(success_delay(refresh, Some(S(60))), S(60));
        assert_eq!(success_delay(refresh, Some(S(0))), MIN_REFRESH);
        let short = Duration::from_millis(200);
        assert_eq!(success_delay(short, Some(S(0))), short);
        assert_eq!(success_delay(short, Some(S(300))), short);
    }

    #[test]
    fn failures_back_off_up_to_refresh() {
        let refresh = S(300);
        assert_eq!(failure_delay(refresh, 1), Duration::from_millis(500));
        assert_eq!(failure_delay(refresh, 2), S(1));
        assert_eq!(failure_delay(refresh, 4), S(4));
        assert_eq!(failure_delay(refresh, 100), refresh);
        assert_eq!(
            failure_delay(Duration::from_millis(200), 1),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn jitter_never_delays_past_the_interval() {
        for _ in 0..1000 {
            let d = jitter(S(100));
            assert!(d >= S(80) && d <= S(100), "{d:?}");
        }
    }
}
