//! Durations written the way Kubernetes users write them: `30s`, `5m`, `1h30m`, `250ms`.

use std::time::Duration;

/// The longest duration accepted: 2^32 - 1 seconds, about 136 years. Far beyond any interval
/// anyone means, it keeps every duration's formatted form readable by the parser and the
/// mirror's arithmetic on it (deadlines, jitter) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(u32::MAX as u64);

/// A duration string that is not `<number><unit>` repeated, with unit one of ms, s, m, h, or
/// longer than [`MAX_DURATION`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected e.g. 30s, 5m, 24h or 1h30m (units ms, s, m, h; at most 1193046h)"
)]
pub struct InvalidDuration {
    pub input: String,
}

/// Parses `30s`, `5m`, `24h`, `1h30m`, `250ms`, up to [`MAX_DURATION`].
pub fn parse_duration(input: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration {
        input: input.to_string(),
    };
    let mut total = Duration::ZERO;
    let mut rest = input;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (part, len) = if rest.starts_with("ms") {
            (Some(Duration::from_millis(value)), 2)
        } else if rest.starts_with('s') {
            (Some(Duration::from_secs(value)), 1)
        } else if rest.starts_with('m') {
            (value.checked_mul(60).map(Duration::from_secs), 1)
        } else if rest.starts_with('h') {
            (value.checked_mul(3600).map(Duration::from_secs), 1)
        } else {
            return Err(invalid());
        };
        rest = &rest[len..];
        total = part
            .and_then(|part| total.checked_add(part))
            .filter(|total| *total <= MAX_DURATION)
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Formats a duration back into the shortest `1h30m5s250ms` form, so that every duration the
/// parser accepts reads back the same: the operator passes the resource's durations to the
/// mirror as arguments this way. Below a millisecond, which the parser never produces, is dropped.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 {
        return format!("{millis}ms");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    if millis > 0 {
        out += &format!("{millis}ms");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_combinations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m5s"), Ok(Duration::from_secs(5405)));
    }

    #[test]
    fn refuses_malformed_input() {
        for bad in ["", "5", "m", "5x", "-5s", "5 m", "1.5h", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "5m", "24h", "1h30m5s", "250ms", "30s", "0ms", "10s500ms", "1h1ms",
        ] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    /// Found by tests/it/properties.rs: `10s500ms` used to format as `10s`, so a resource's
    /// refreshInterval reached the mirror's arguments half a second short.
    #[test]
    fn keeps_the_milliseconds_above_one_second() {
        assert_eq!(format_duration(Duration::from_millis(10_500)), "10s500ms");
        assert_eq!(
            parse_duration(&format_duration(Duration::from_millis(3_600_001))),
            Ok(Duration::from_millis(3_600_001))
        );
    }

    /// Found by tests/it/properties.rs: `4294967295h4294967295h` was accepted (each number fit in
    /// 32 bits) but formatted as `8589934590h`, which the parser refused, so the mirror would
    /// have refused the arguments the operator gave it. Now the total is bounded instead.
    #[test]
    fn bounds_the_total_so_every_accepted_duration_formats_back() {
        assert_eq!(parse_duration("4294967295s"), Ok(MAX_DURATION));
        assert_eq!(format_duration(MAX_DURATION), "1193046h28m15s");
        assert_eq!(parse_duration("1193046h28m15s"), Ok(MAX_DURATION));
        for too_long in ["4294967296s", "1193046h28m15s1ms", "4294967295h4294967295h"] {
            assert!(parse_duration(too_long).is_err(), "{too_long:?}");
        }
        let message = parse_duration("99999999h").unwrap_err().to_string();
        assert!(message.ends_with("at most 1193046h)"), "{message}");
    }
}
