//! Small statistics over durations, and the fixed formatting every renderer uses for them.
//!
//! Percentiles interpolate linearly between the closest ranks (the "type 7" definition of
//! R and NumPy's default), so p50 of an even-sized sample is the mean of the two middle
//! values. All values are rounded to the microsecond, the resolution of most captures, so
//! JSON output is the same on every machine.

use serde::Serialize;

/// The distribution of a sample of seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Sample size.
    pub n: u64,
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for an empty sample; non-finite values are ignored.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Spread {
            n: v.len() as u64,
            min: round6(v[0]),
            p10: round6(percentile(&v, 0.10)),
            median: round6(percentile(&v, 0.50)),
            p90: round6(percentile(&v, 0.90)),
            max: round6(v[v.len() - 1]),
        })
    }

    /// A spread from already computed quantiles (rounded to the microsecond).
    pub fn from_parts(n: u64, min: f64, p10: f64, median: f64, p90: f64, max: f64) -> Spread {
        Spread {
            n,
            min: round6(min),
            p10: round6(p10),
            median: round6(median),
            p90: round6(p90),
            max: round6(max),
        }
    }

    /// True when the middle 80 % of the sample lies within 10 % of the median (plus 50 ms
    /// for timer and scheduling jitter): the mark of one configured timeout rather than
    /// chance.
    pub fn is_tight(&self) -> bool {
        self.p90 - self.p10 <= 0.10 * self.median + 0.05
    }
}

/// Linear interpolation between closest ranks, `q` in 0..=1, `sorted` non-empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Rounds to the microsecond.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// A duration for a sentence (`1.0 s`) or where precision matters (`14.98 s`): the
/// styles of [`closewait_core::seconds`].
pub use closewait_core::seconds::{precise as secs_precise, sentence as secs};

/// A rate as a number: `23.8`, `0.50`.
pub fn rate(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `n=200, p10 14.98 s, median 15.00 s, p90 15.02 s`.
pub fn spread_text(s: &Spread) -> String {
    format!(
        "n={}, min {}, p10 {}, median {}, p90 {}, max {}",
        s.n,
        secs_precise(s.min),
        secs_precise(s.p10),
        secs_precise(s.median),
        secs_precise(s.p90),
        secs_precise(s.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let s = Spread::of([1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.n, 4);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 4.0);
        assert!((s.p10 - 1.3).abs() < 1e-9);
        assert!((s.p90 - 3.7).abs() < 1e-9);
    }

    #[test]
    fn single_sample_spread_is_that_sample() {
        let s = Spread::of([1.0042]).unwrap();
        assert_eq!(
            (s.min, s.p10, s.median, s.p90, s.max),
            (1.0042, 1.0042, 1.0042, 1.0042, 1.0042)
        );
        assert!(s.is_tight());
    }

    #[test]
    fn empty_sample_has_no_spread() {
        assert!(Spread::of(Vec::<f64>::new()).is_none());
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn tight_means_one_timeout() {
        let tight = Spread::of((0..200).map(|i| 14.98 + (i % 5) as f64 * 0.01)).unwrap();
        assert!(tight.is_tight());
        let loose = Spread::of([1.0, 5.0, 9.0, 30.0]).unwrap();
        assert!(!loose.is_tight());
    }

    #[test]
    fn fixed_formatting() {
        assert_eq!(secs(1.0), "1.0 s");
        assert_eq!(secs(15.02), "15.0 s");
        assert_eq!(secs(0.35), "0.350 s");
        assert_eq!(secs(7200.4), "7200 s");
        assert_eq!(secs_precise(14.984), "14.98 s");
        assert_eq!(secs_precise(1.0042), "1.004 s");
        assert_eq!(rate(23.81), "23.8");
        assert_eq!(rate(0.5), "0.50");
    }
}
