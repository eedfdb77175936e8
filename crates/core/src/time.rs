//! Time as the core sees it: Unix milliseconds passed in by the caller, and RFC 3339 for JSON.

/// Milliseconds since the Unix epoch (UTC). The core never reads a clock: callers pass `now`.
pub type Millis = u64;

/// A number of seconds as configured (`2`, `0.5`, `1.25`; at most millisecond precision) in
/// milliseconds. Parsed by hand: `str::parse::<f64>` would add about 10 KB of wasm.
pub fn parse_seconds(text: &str) -> Option<Millis> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    if fraction.len() > 3 {
        return None;
    }
    let whole: Millis = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: Millis = format!("{fraction:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(fraction)
}

/// `2026-11-26T10:45:54.123Z` for a Unix-millisecond instant.
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_seconds_become_milliseconds() {
        assert_eq!(parse_seconds("2"), Some(2000));
        assert_eq!(parse_seconds(" 0.5 "), Some(500));
        assert_eq!(parse_seconds("1.25"), Some(1250));
        assert_eq!(parse_seconds(".1"), Some(100));
        assert_eq!(parse_seconds("3."), Some(3000));
        assert_eq!(parse_seconds("0"), Some(0));
    }

    #[test]
    fn malformed_or_negative_seconds_are_refused() {
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "two",
            "1.2345",
            "1..2",
            "+2",
            "18446744073709552",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn epoch_formats_as_1970() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn known_instants_format_like_date_does() {
        // date -u -d @1795689954 +%FT%TZ
        assert_eq!(rfc3339(1_795_689_954_123), "2026-11-26T10:45:54.123Z");
        // leap day: date -u -d @1709208000
        assert_eq!(rfc3339(1_709_208_000_000), "2024-02-29T12:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }
}
