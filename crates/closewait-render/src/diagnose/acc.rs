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
use serde::Serialize;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::IpAddr;

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

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: Sketch) {
        if other.n == 0 {
            return;
        }
        for v in &other.exact {
            self.add(*v);
        }
        if other.bins.is_empty() {
            return;
        }
        // `other` is binned: so is the result.
        for v in std::mem::take(&mut self.exact) {
            *self.bins.entry(bin(v)).or_default() += 1;
        }
        for (i, c) in other.bins {
            *self.bins.entry(i).or_default() += c;
        }
        if self.n == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.n += other.n - other.exact.len() as u64;
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
        self.push_id(id);
        if self.picks.len() < EXACT_SAMPLES {
            self.picks.push((metric, id, has_segments));
        }
    }

    /// Adds the members of `other`.
    pub fn merge(&mut self, other: Members) {
        self.n += other.n;
        for id in other.ids {
            self.push_id(id);
        }
        let room = EXACT_SAMPLES.saturating_sub(self.picks.len());
        self.picks.extend(other.picks.into_iter().take(room));
    }

    fn push_id(&mut self, id: u64) {
        if self.ids.len() < MAX_EVIDENCE {
            self.ids.push(id);
        } else if self.ids.peek().is_some_and(|&top| id < top) {
            self.ids.pop();
            self.ids.push(id);
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

/// Hosts tabulated exactly per group; connections of further hosts are counted together.
pub const MAX_HOSTS: usize = 10_000;

/// Connections per host, for a group that stands for many hosts (a service's clients on a
/// server-side capture).
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    counts: BTreeMap<IpAddr, u64>,
    /// Connections of hosts past [`MAX_HOSTS`].
    overflow: u64,
}

/// One row of a host table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostCount {
    pub host: IpAddr,
    pub connections: u64,
}

/// The top hosts of a group and how many more there are.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostTable {
    /// Distinct hosts (at least; see `acc::MAX_HOSTS`).
    pub hosts: u64,
    /// The hosts with the most connections, most first.
    pub top: Vec<HostCount>,
    /// Connections of the other hosts.
    pub others: u64,
}

/// Rows of a host table.
pub const TOP_HOSTS: usize = 5;

impl Hosts {
    pub fn add(&mut self, host: IpAddr, n: u64) {
        if let Some(c) = self.counts.get_mut(&host) {
            *c += n;
        } else if self.counts.len() < MAX_HOSTS {
            self.counts.insert(host, n);
        } else {
            self.overflow += n;
        }
    }

    pub fn merge(&mut self, other: Hosts) {
        for (h, n) in other.counts {
            self.add(h, n);
        }
        self.overflow += other.overflow;
    }

    pub fn table(&self) -> HostTable {
        let mut rows: Vec<HostCount> = self
            .counts
            .iter()
            .map(|(&host, &connections)| HostCount { host, connections })
            .collect();
        rows.sort_by(|a, b| b.connections.cmp(&a.connections).then(a.host.cmp(&b.host)));
        let others = rows
            .iter()
            .skip(TOP_HOSTS)
            .map(|r| r.connections)
            .sum::<u64>()
            + self.overflow;
        rows.truncate(TOP_HOSTS);
        HostTable {
            hosts: self.counts.len() as u64,
            top: rows,
            others,
        }
    }
}

impl HostTable {
    /// `10.0.0.1 (40), 10.0.0.2 (38) and 47 more hosts (200 connections)`.
    pub fn text(&self) -> String {
        let top: Vec<String> = self
            .top
            .iter()
            .map(|r| format!("{} ({})", r.host, r.connections))
            .collect();
        let more = self.hosts.saturating_sub(self.top.len() as u64);
        if more > 0 {
            format!(
                "{} and {more} more {} ({} connections)",
                top.join(", "),
                if more == 1 { "host" } else { "hosts" },
                self.others
            )
        } else {
            top.join(", ")
        }
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
    fn merged_sketches_and_members_count_everything() {
        let mut a = Sketch::default();
        let mut b = Sketch::default();
        (0..5000).for_each(|i| a.add(i as f64));
        (0..10).for_each(|i| b.add(i as f64 + 0.5));
        let mut c = b.clone();
        c.merge(a.clone());
        a.merge(b);
        assert_eq!(a.spread().unwrap().n, 5010);
        assert_eq!(c.spread().unwrap().n, 5010);
        assert_eq!(a.spread().unwrap().max, 4999.0);
        let mut m = Members::default();
        let mut o = Members::default();
        m.add(5, 1.0, true);
        o.add(3, 2.0, true);
        m.merge(o);
        assert_eq!((m.n, m.ids()), (2, vec![3, 5]));
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
