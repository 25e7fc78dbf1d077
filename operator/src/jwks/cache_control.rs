//! Reading `Cache-Control: max-age` from an upstream response.

use std::time::Duration;

/// The freshness lifetime an upstream's `Cache-Control` header grants, if it states one.
///
/// `no-store` and `no-cache` count as zero (revalidate at once); otherwise the first valid
/// `max-age=N`. Callers clamp the result: an upstream must not be able to stop or storm refreshes.
pub fn max_age(cache_control: Option<&[u8]>) -> Option<Duration> {
    let value = std::str::from_utf8(cache_control?).ok()?;
    let mut found = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, raw)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
            && found.is_none()
        {
            found = raw
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age(Some(b"public, max-age=300")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age(Some(b"Max-Age=\"60\", public")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age(Some(b"max-age=60, no-cache")), Some(Duration::ZERO));
        assert_eq!(max_age(Some(b"no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(Some(b"public")), None);
        assert_eq!(max_age(Some(b"max-age=-1")), None);
        assert_eq!(max_age(None), None);
    }
}
