//! Moments typed by a user (`--capture-end`): epoch seconds (`1796470800`,
//! `1796470800.25`) or RFC 3339 / ISO 8601 with an offset (`2026-12-05T11:40:00Z`,
//! `2026-12-05T12:40:00.5+01:00`, a space instead of the `T`). A time without an offset is
//! refused: its zone would be a guess.

/// Epoch nanoseconds of `s`, or why it is not a moment.
pub fn parse_moment(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "'{s}' is not a time: give epoch seconds (1796470800.25) or RFC 3339 with an \
             offset (2026-12-05T11:40:00Z, 2026-12-05T12:40:00+01:00)"
        )
    };
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch(s).ok_or_else(bad);
    }
    rfc3339(s).ok_or_else(bad)
}

/// `SECS[.FRACTION]`, fraction to the nanosecond.
fn epoch(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || secs.len() > 11 {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    Some(secs * 1_000_000_000 + fraction_ns(frac)?)
}

/// Up to 9 digits after the point, as nanoseconds (`5` → 500 000 000).
fn fraction_ns(frac: &str) -> Option<i64> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<9}");
    padded.parse().ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from, to| num_in(s, from, to);
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second (:60) is read as the second after :59.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let rest = &s[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    let offset_s = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zb = zone.as_bytes();
            if zone.len() != 6 || zb[3] != b':' {
                return None;
            }
            let (h, m) = (num_in(zone, 1, 3)?, num_in(zone, 4, 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1_000_000_000 + fraction_ns(frac)?)
}

fn num_in(s: &str, from: usize, to: usize) -> Option<i64> {
    let part = s.get(from..to)?;
    if !part.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_moment;

    #[test]
    fn epoch_seconds_with_and_without_fraction() {
        assert_eq!(parse_moment("1796470800"), Ok(1_796_470_800_000_000_000));
        assert_eq!(parse_moment("1796470800.25"), Ok(1_796_470_800_250_000_000));
        assert_eq!(
            parse_moment("1796470800.000000001"),
            Ok(1_796_470_800_000_000_001)
        );
        assert!(parse_moment("1796470800.0000000001").is_err());
        assert!(parse_moment(".5").is_err());
        assert!(parse_moment("").is_err());
    }

    #[test]
    fn rfc3339_with_an_offset() {
        // date -d 2026-12-05T11:40:00Z +%s → 1796470800
        assert_eq!(
            parse_moment("2026-12-05T11:40:00Z"),
            Ok(1_796_470_800_000_000_000)
        );
        assert_eq!(
            parse_moment("2026-12-05T12:40:00.5+01:00"),
            Ok(1_796_470_800_500_000_000)
        );
        assert_eq!(
            parse_moment("2026-12-05 06:40:00-05:00"),
            Ok(1_796_470_800_000_000_000)
        );
        assert_eq!(parse_moment("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_moment("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000_000_000)
        );
    }

    #[test]
    fn times_without_offset_or_impossible_are_refused() {
        for bad in [
            "2026-12-05T11:40:00",
            "2026-12-05",
            "2026-02-30T00:00:00Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T11:40:00+1:00",
            "yesterday",
            "2026-12-05T11:40:00.Z",
        ] {
            let err = parse_moment(bad).expect_err(bad);
            assert!(err.contains("RFC 3339"), "{err}");
        }
    }
}
