//! Durations in seconds as closewait writes them for people, every style in one place.
//!
//! - [`three_decimals`]: the fixed `1.002` of the text table and the explanations, written
//!   without `fmt`'s float machinery when that gives the same digits (it runs once per
//!   connection in the JSON lines);
//! - [`human`]: the ladder diagrams' and charts' labels, `850 µs`, `12.4 ms`, `1.002 s`;
//! - [`sentence`]: diagnose's findings, `0.350 s`, `15.0 s`, `7200 s`;
//! - [`precise`]: diagnose's percentiles, `0.042 s`, `14.98 s`.

use std::fmt;

/// `v` as `format!("{v:.3}")` writes it. Worked out from `v * 1000` rounded when that
/// cannot differ from rounding `v`'s exact value: `0 <= v * 1000 < 2^32`, where the
/// product is within 2^-21 of the exact one, and not within 10^-6 of a half (a tie, or
/// close to one). std's formatting otherwise.
pub fn three_decimals<W: fmt::Write>(out: &mut W, v: f64) -> fmt::Result {
    let t = v * 1000.0;
    let rounded = t.round();
    if !(v.is_sign_positive() && t < 4_294_967_296.0 && ((t - rounded).abs() - 0.5).abs() > 1e-6) {
        return write!(out, "{v:.3}");
    }
    let ms = rounded as u64;
    out.write_str(itoa::Buffer::new().format(ms / 1000))?;
    let frac = ms % 1000;
    let digits = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    out.write_str(std::str::from_utf8(&digits).expect("ASCII digits"))
}

/// `v` at three decimals, as a `String` (`format!("{v:.3}")`).
pub fn three_decimals_string(v: f64) -> String {
    let mut out = String::with_capacity(8);
    three_decimals(&mut out, v).expect("writing to a String");
    out
}

/// Seconds for people: `850 µs`, `12.4 ms`, `1.002 s`, `15.0 s`, `105 s`.
pub fn human(s: f64) -> String {
    if s < 0.001 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 10.0 {
        format!("{s:.3} s")
    } else if s < 100.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// A duration for a sentence: `1.0 s`, `15.0 s`, `0.350 s`, `7200 s`.
pub fn sentence(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0} s")
    } else if x >= 1.0 {
        format!("{x:.1} s")
    } else {
        format!("{x:.3} s")
    }
}

/// A duration where precision matters (percentiles): `14.98 s`, `1.004 s`, `0.042 s`.
pub fn precise(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.1} s")
    } else if x >= 10.0 {
        format!("{x:.2} s")
    } else {
        format!("{x:.3} s")
    }
}

#[cfg(test)]
mod tests {
    /// Durations as the classifier makes them (integer nanoseconds over 10^9), ties and
    /// near-ties at three decimals, and values outside the worked-out range.
    #[test]
    fn three_decimals_writes_what_format_writes() {
        let check = |v: f64| {
            let mut out = String::new();
            super::three_decimals(&mut out, v).expect("String");
            assert_eq!(out, format!("{v:.3}"), "{v:e} {:#x}", v.to_bits());
        };
        for ns in (0..1_000_000i64).chain((0..1_000_000).map(|k| k * 1_999_999 + 7)) {
            check(ns as f64 / 1e9);
        }
        for k in 0..200_000u32 {
            // x.xxx5 (near-)ties and exact binary ties.
            let tie = f64::from(k) / 2000.0;
            for v in [tie, f64::from_bits(tie.to_bits() + 1), k as f64 / 16.0] {
                check(v);
                check(f64::from_bits(v.to_bits().saturating_sub(1)));
            }
        }
        for v in [
            -0.0,
            -1.0,
            -0.0004,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            4_294_967.295,
            4_294_967.295_5,
            4_294_967.296,
            1e300,
            5e-324,
            f64::MAX,
        ] {
            check(v);
        }
    }
}
