//! Time as the core sees it: Unix milliseconds passed in by the caller, and RFC 3339 for JSON.

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch (UTC). The core never reads a clock: callers pass `now`.
pub type Millis = u64;

/// A number of seconds as configured (`2`, `0.5`, `1.25`) in milliseconds, rounded to the
/// nearest. `None` for anything that is not a finite, non-negative number of seconds or does
/// not fit [`Millis`].
pub fn parse_seconds(text: &str) -> Option<Millis> {
    let seconds: f64 = text.trim().parse().ok()?;
    let ms = (seconds * 1000.0).round();
    // 2^64 as f64: the first value past `Millis::MAX` (casting would saturate silently).
    (seconds.is_finite() && seconds >= 0.0 && ms < 18_446_744_073_709_551_616.0)
        .then_some(ms as Millis)
}

/// `2026-11-26T10:45:54.123Z` for a Unix-millisecond instant. RFC 3339 has four-digit years:
/// an instant after 9999-12-31T23:59:59.999Z (a grace period configured in millennia) is shown
/// as that instant. The calendar is `time`'s; the fields are written with `format!` rather than
/// `time`'s format-description interpreter, which would add about 20 KB to the gzip bundle.
pub fn rfc3339(ms: Millis) -> String {
    const LAST: &str = "9999-12-31T23:59:59.999Z";
    let nanos = i128::from(ms) * 1_000_000;
    // Out of range for `time` (years past 9999) is the only way this fails.
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return LAST.to_owned();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// An RFC 3339 date-time (`2027-01-31T00:00:00Z`, `2027-01-31T01:00:00.5+01:00`) as a Unix
/// millisecond instant (sub-millisecond digits dropped); an instant before 1970 reads as the
/// epoch (both are past). `None` for anything else (`time`'s well-known RFC 3339 parser).
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let instant = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
    let ms = instant.ok()?.unix_timestamp_nanos() / 1_000_000;
    // An instant before the epoch is as past as the epoch itself.
    Millis::try_from(ms.max(0)).ok()
}

/// The UTC day `ms` falls in, as whole days since 1970-01-01.
pub fn day_of(ms: Millis) -> u32 {
    u32::try_from(ms / DAY_MS).unwrap_or(u32::MAX)
}

/// One day in milliseconds.
pub const DAY_MS: Millis = 86_400_000;

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
        assert_eq!(
            parse_seconds("1.2345"),
            Some(1235),
            "rounded to the millisecond"
        );
        assert_eq!(parse_seconds("1e3"), Some(1_000_000));
    }

    #[test]
    fn malformed_or_negative_seconds_are_refused() {
        for bad in [
            "",
            ".",
            "-1",
            "two",
            "1..2",
            "NaN",
            "inf",
            "1,5",
            "18446744073709552",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc_3339_date_times_are_read_as_instants() {
        assert_eq!(
            parse_rfc3339("2026-11-26T10:45:54.123Z"),
            Some(1_795_689_954_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T11:45:54.123+01:00"),
            Some(1_795_689_954_123)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("0826-05-30T05:24:11Z"),
            Some(0),
            "before the epoch: past"
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(0));
        for bad in ["", "2026-11-26", "tomorrow"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn days_are_utc_days_since_1970() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(1_795_689_954_123), 20_783);
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

    #[test]
    fn instants_past_year_9999_show_the_last_one_rfc_3339_can_write() {
        // date -u -d @253402300799 +%FT%TZ → 9999-12-31T23:59:59Z
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_800_000), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(Millis::MAX), "9999-12-31T23:59:59.999Z");
    }
}
