//! Durations written the way Kubernetes users write them: `30s`, `5m`, `1h30m`, `250ms`.

use std::time::Duration;

/// A duration string that is not `<number><unit>` repeated, with unit one of ms, s, m, h.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected e.g. 30s, 5m, 24h or 1h30m (units ms, s, m, h)")]
pub struct InvalidDuration {
    pub input: String,
}

/// Parses `30s`, `5m`, `24h`, `1h30m`, `250ms`.
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
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else {
            return Err(invalid());
        };
        rest = &rest[len..];
        let part = unit
            .checked_mul(u32::try_from(value).map_err(|_| invalid())?)
            .ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Formats a duration back into the shortest `1h30m5s` form (whole seconds, or `ms` below one).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
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
        for s in ["5m", "24h", "1h30m5s", "250ms", "30s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
