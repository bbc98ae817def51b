//! Instants for people: epoch seconds as a UTC calendar date and time, for the HTML
//! report's headings and the Zeek log's header (one formatter, so they agree).

/// Epoch seconds as `2026-11-24 06:42:31.774 UTC` (proleptic Gregorian calendar).
pub fn utc(epoch: f64) -> String {
    if !epoch.is_finite() {
        return "?".to_string();
    }
    let millis = (epoch * 1000.0).round() as i64;
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 → civil date, counting in 400-year eras of 146 097 days that
    // start on 1 March, so the leap day falls at the end of each era-year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{ms:03} UTC",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400.5), "2000-02-29 00:00:00.500 UTC");
        assert_eq!(utc(1_700_000_000.0), "2023-11-14 22:13:20.000 UTC");
        assert_eq!(utc(-1.0), "1969-12-31 23:59:59.000 UTC");
        assert_eq!(utc(f64::NAN), "?");
    }
}
