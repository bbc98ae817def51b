//! Bounded per-group state for the streaming diagnosis.
//!
//! A finding is about a group of connections (per service, per leaking host…), and a busy
//! server's capture has hundreds of thousands of them. The diagnosis therefore never keeps
//! the connections: each group keeps its count, a [`Sketch`] per measured duration, the
//! lowest [`MAX_EVIDENCE`] connection ids and a few candidates for its example
//! ([`Members`]). Memory grows with the number of groups, not of connections.
//!
//! What that costs in precision, and only once a group is large:
//!
//! - quantiles are exact up to [`EXACT_SAMPLES`] values per sketch; past that, values go
//!   into logarithmic bins [`GAMMA`] apart and a quantile is read as its bin's midpoint,
//!   within ±0.5 % of the exact value (plus 1 µs); min and max stay exact;
//! - `evidence` lists the lowest [`MAX_EVIDENCE`] ids (`count` has them all);
//! - the example is the median of the first [`EXACT_SAMPLES`] members seen.

use super::stats::Spread;
use std::collections::{BTreeMap, BinaryHeap};

/// Values kept exactly per sketch, and example candidates per group.
pub const EXACT_SAMPLES: usize = 4096;
/// Connection ids listed per finding.
pub const MAX_EVIDENCE: usize = 1000;
/// Ratio between consecutive bins of a sketch past [`EXACT_SAMPLES`]: a bin's midpoint is
/// within (γ−1)/(γ+1) < 0.5 % of any value in it.
pub const GAMMA: f64 = 1.01;
/// Values at or below this many seconds share one bin, read as 0.
const ZERO: f64 = 1e-6;

/// A quantile sketch of seconds: exact while small, logarithmic bins past that.
#[derive(Clone, Debug, Default)]
pub struct Sketch {
    exact: Vec<f64>,
    bins: BTreeMap<i32, u64>,
    n: u64,
    min: f64,
    max: f64,
}

impl Sketch {
    /// Adds a value; non-finite values are ignored.
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.n += 1;
        if self.bins.is_empty() && self.exact.len() < EXACT_SAMPLES {
            self.exact.push(x);
            return;
        }
        for v in std::mem::take(&mut self.exact) {
            *self.bins.entry(bin(v)).or_default() += 1;
        }
        *self.bins.entry(bin(x)).or_default() += 1;
    }

    /// The distribution, `None` when empty.
    pub fn spread(&self) -> Option<Spread> {
        if self.bins.is_empty() {
            return Spread::of(self.exact.iter().copied());
        }
        let q = |q: f64| self.quantile(q);
        Some(Spread::from_parts(
            self.n,
            self.min,
            q(0.10),
            q(0.50),
            q(0.90),
            self.max,
        ))
    }

    /// Type-7 quantile over the binned values (each read as its bin's midpoint).
    fn quantile(&self, q: f64) -> f64 {
        let pos = q * (self.n - 1) as f64;
        let lo = pos.floor() as u64;
        let hi = pos.ceil() as u64;
        let (a, b) = (self.rank(lo), self.rank(hi));
        a + (b - a) * (pos - lo as f64)
    }

    /// The value of the `k`-th smallest (0-based).
    fn rank(&self, k: u64) -> f64 {
        let mut seen = 0;
        for (&i, &c) in &self.bins {
            seen += c;
            if k < seen {
                return bin_value(i).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

fn bin(x: f64) -> i32 {
    if x <= ZERO {
        i32::MIN
    } else {
        (x.ln() / GAMMA.ln()).ceil() as i32
    }
}

fn bin_value(i: i32) -> f64 {
    if i == i32::MIN {
        0.0
    } else {
        // Bin i holds (γ^(i−1), γ^i]; its midpoint is within (γ−1)/(γ+1) of both ends.
        let hi = GAMMA.powi(i);
        hi * 2.0 / (GAMMA + 1.0)
    }
}

/// The members of a group: how many, the lowest ids, and example candidates.
#[derive(Clone, Debug, Default)]
pub struct Members {
    pub n: u64,
    /// Max-heap of the lowest ids.
    ids: BinaryHeap<u64>,
    /// (metric, id, segments recorded) of the first members.
    picks: Vec<(f64, u64, bool)>,
}

impl Members {
    /// Adds a connection; `metric` ranks it for the example, `has_segments` says whether it
    /// can be drawn.
    pub fn add(&mut self, id: u64, metric: f64, has_segments: bool) {
        self.n += 1;
        if self.ids.len() < MAX_EVIDENCE {
            self.ids.push(id);
        } else if self.ids.peek().is_some_and(|&top| id < top) {
            self.ids.pop();
            self.ids.push(id);
        }
        if self.picks.len() < EXACT_SAMPLES {
            self.picks.push((metric, id, has_segments));
        }
    }

    /// The listed ids, ascending.
    pub fn ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.ids.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// The most representative member: the one at the median of the metric, preferring
    /// members whose segments were recorded (a diagram needs them).
    pub fn example(&self) -> Option<u64> {
        if self.picks.is_empty() {
            return None;
        }
        let mut ranked = self.picks.clone();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mid = (ranked.len() - 1) / 2;
        if ranked[mid].2 {
            return Some(ranked[mid].1);
        }
        // Nearest (by rank) member with segments; the median one if none has any.
        (1..ranked.len())
            .flat_map(|d| [mid.checked_sub(d), Some(mid + d)])
            .flatten()
            .filter(|&i| i < ranked.len())
            .find(|&i| ranked[i].2)
            .map(|i| ranked[i].1)
            .or(Some(ranked[mid].1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_sketch_is_exact() {
        let mut s = Sketch::default();
        for x in [1.0, 2.0, 3.0, 4.0] {
            s.add(x);
        }
        assert_eq!(s.spread(), Spread::of([1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn large_sketch_stays_within_half_a_percent() {
        let values: Vec<f64> = (0..50_000)
            .map(|i| 0.5 + (i as f64 * 0.618_033_988_7).fract() * 20.0)
            .collect();
        let mut s = Sketch::default();
        for &v in &values {
            s.add(v);
        }
        let exact = Spread::of(values.iter().copied()).unwrap();
        let got = s.spread().unwrap();
        assert_eq!(got.n, exact.n);
        assert_eq!((got.min, got.max), (exact.min, exact.max));
        for (a, b) in [
            (got.p10, exact.p10),
            (got.median, exact.median),
            (got.p90, exact.p90),
        ] {
            assert!((a - b).abs() <= 0.005 * b + 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn evidence_keeps_the_lowest_ids() {
        let mut m = Members::default();
        for id in (0..5000u64).rev() {
            m.add(id, id as f64, false);
        }
        assert_eq!(m.n, 5000);
        assert_eq!(m.ids(), (0..MAX_EVIDENCE as u64).collect::<Vec<_>>());
    }

    #[test]
    fn example_prefers_drawable_members_near_the_median() {
        let mut m = Members::default();
        m.add(1, 1.0, true);
        m.add(2, 2.0, false);
        m.add(3, 3.0, true);
        assert_eq!(m.example(), Some(1));
    }
}
