//! Human times for Unix timestamps, without a date library: UTC only, which is what token
//! claims are in.

/// `2027-01-15T08:00:00Z` for a Unix time in seconds.
pub fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `in 4m50s`, `10s ago` or `now`, for `then` seen from `now`.
pub fn relative(then: i64, now: i64) -> String {
    // Times come from untrusted tokens (and --now): saturate rather than overflow.
    match then.saturating_sub(now) {
        0 => "now".to_string(),
        d if d > 0 => format!("in {}", duration(d)),
        d => format!("{} ago", duration(d.saturating_neg())),
    }
}

/// `4m50s`, `2h3m`, `3d4h`: the two largest units, enough to read a token's lifetime.
pub fn duration(secs: i64) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut out = String::new();
    let mut rest = secs.max(0);
    let mut shown = 0;
    for (size, unit) in units {
        if rest >= size || (size == 1 && out.is_empty()) {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
            shown += 1;
            if shown == 2 {
                break;
            }
        } else if shown == 1 {
            // Stop after the largest unit when the next one is zero: "2h", not "2h0m".
            break;
        }
    }
    out
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(10), "10s");
        assert_eq!(duration(290), "4m50s");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(7380), "2h3m");
        assert_eq!(duration(277_200), "3d5h");
        assert_eq!(relative(100, 90), "in 10s");
        assert_eq!(relative(90, 100), "10s ago");
        assert_eq!(relative(5, 5), "now");
        assert!(relative(i64::MIN, i64::MAX).ends_with(" ago"));
        assert!(relative(i64::MAX, i64::MIN).starts_with("in "));
        assert!(utc(i64::MIN).ends_with("Z") && utc(i64::MAX).ends_with("Z"));
    }
}
