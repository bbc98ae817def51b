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
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
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

/// Hosts counted exactly per group. Past that, the group's table is a Space-Saving summary
/// of this many hosts (see [`Hosts`]).
pub const MAX_HOSTS: usize = 300;

/// Connections per host, for a group that stands for many hosts (a service's clients on a
/// server-side capture).
///
/// Exact while the group has at most [`MAX_HOSTS`] hosts (every shipped capture). Past that
/// it is a Space-Saving summary (Metwally, Agrawal and El Abbadi, 2005): a host not in the
/// table takes the place of the one with the fewest connections and inherits its count as
/// its possible overcount. Every host's count is then at most its overcount (at most
/// `N / MAX_HOSTS` for a group of `N` connections) above the truth and never below, and
/// every host with more than `N / MAX_HOSTS` connections is in the table. The distinct
/// hosts are then estimated by a [`Distinct`] sketch.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    /// Host → (connections, overcount).
    counts: BTreeMap<IpAddr, (u64, u64)>,
    /// (connections, host) of every counted host once the table is full: which one to
    /// replace next.
    by_count: BTreeSet<(u64, IpAddr)>,
    /// Connections added.
    total: u64,
    /// Distinct hosts, once there are more than [`MAX_HOSTS`].
    distinct: Option<Box<Distinct>>,
}

/// One row of a host table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostCount {
    pub host: IpAddr,
    pub connections: u64,
    /// How far `connections` may be above the truth, once the group has more hosts than
    /// closewait counts exactly (`acc::MAX_HOSTS`); absent when exact.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_overcount: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The top hosts of a group and how many more there are.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostTable {
    /// Distinct hosts (an estimate when `approximate`).
    pub hosts: u64,
    /// The hosts with the most connections, most first.
    pub top: Vec<HostCount>,
    /// Connections of the other hosts.
    pub others: u64,
    /// True when the group had more hosts than closewait counts exactly: `hosts` is
    /// estimated (±1.6 %), `others` is at least what it says.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
}

/// Rows of a host table.
pub const TOP_HOSTS: usize = 5;

impl Hosts {
    pub fn add(&mut self, host: IpAddr, n: u64) {
        self.count(host, n, 0);
    }

    /// Adds `n` connections of `host`, `over` of which may be too many.
    fn count(&mut self, host: IpAddr, n: u64, over: u64) {
        self.total += n;
        if let Some(d) = &mut self.distinct {
            d.insert(host);
        }
        if let Some((c, o)) = self.counts.get_mut(&host) {
            if self.by_count.remove(&(*c, host)) {
                self.by_count.insert((*c + n, host));
            }
            *c += n;
            *o += over;
            return;
        }
        if self.counts.len() < MAX_HOSTS {
            self.counts.insert(host, (n, over));
            return;
        }
        if self.distinct.is_none() {
            // No host was replaced yet: the table holds every host seen so far.
            let mut d = Box::new(Distinct::default());
            self.counts.keys().for_each(|&h| d.insert(h));
            d.insert(host);
            self.distinct = Some(d);
        }
        if self.by_count.is_empty() {
            self.by_count = self.counts.iter().map(|(&h, &(c, _))| (c, h)).collect();
        }
        // Space-Saving: the new host replaces the least counted one and inherits its count,
        // which it may or may not have had.
        let (least, gone) = self.by_count.pop_first().expect("the table is full");
        self.counts.remove(&gone);
        self.counts.insert(host, (least + n, least + over));
        self.by_count.insert((least + n, host));
    }

    pub fn merge(&mut self, other: Hosts) {
        if let Some(theirs) = &other.distinct {
            let mine = self.distinct.get_or_insert_with(|| {
                let mut d = Box::new(Distinct::default());
                self.counts.keys().for_each(|&h| d.insert(h));
                d
            });
            mine.merge(theirs);
        }
        for (h, (n, over)) in other.counts {
            self.count(h, n, over);
        }
    }

    /// The hosts in address order, when there are at most `limit` of them.
    pub fn few(&self, limit: usize) -> Option<Vec<IpAddr>> {
        (self.distinct.is_none() && self.counts.len() <= limit)
            .then(|| self.counts.keys().copied().collect())
    }

    /// Distinct hosts: exact up to [`MAX_HOSTS`], estimated past that.
    pub fn distinct(&self) -> u64 {
        match &self.distinct {
            Some(d) => d.estimate().max(self.counts.len() as u64),
            None => self.counts.len() as u64,
        }
    }

    pub fn table(&self) -> HostTable {
        let mut rows: Vec<HostCount> = self
            .counts
            .iter()
            .map(|(&host, &(connections, max_overcount))| HostCount {
                host,
                connections,
                max_overcount,
            })
            .collect();
        rows.sort_by(|a, b| b.connections.cmp(&a.connections).then(a.host.cmp(&b.host)));
        rows.truncate(TOP_HOSTS);
        let shown: u64 = rows.iter().map(|r| r.connections).sum();
        HostTable {
            hosts: self.distinct(),
            top: rows,
            others: self.total.saturating_sub(shown),
            approximate: self.distinct.is_some(),
        }
    }
}

/// Registers of a [`Distinct`] sketch (2^12): its standard error is 1.04 / √4096 ≈ 1.6 %.
const DISTINCT_BITS: u32 = 12;

/// A HyperLogLog sketch (Flajolet, Fusy, Gandouet and Meunier, 2007) of distinct hosts:
/// 4 KiB however many hosts, within about ±1.6 % (one standard error), and, for up to
/// about 10 000 hosts, counted by linear counting, which is closer still.
#[derive(Clone, Debug)]
pub struct Distinct {
    registers: Vec<u8>,
}

impl Default for Distinct {
    fn default() -> Distinct {
        Distinct {
            registers: vec![0; 1 << DISTINCT_BITS],
        }
    }
}

impl Distinct {
    pub fn insert(&mut self, host: IpAddr) {
        let h = hash_host(host);
        let register = (h >> (64 - DISTINCT_BITS)) as usize;
        let rank = ((h << DISTINCT_BITS) | (1 << (DISTINCT_BITS - 1))).leading_zeros() + 1;
        let r = &mut self.registers[register];
        *r = (*r).max(rank as u8);
    }

    pub fn merge(&mut self, other: &Distinct) {
        for (a, b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(*b);
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let raw = alpha * m * m / sum;
        let empty = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && empty > 0 {
            // Few hosts for the registers: linear counting is the better estimate.
            m * (m / empty as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

/// A well-mixed 64-bit hash of an address (SplitMix64's finaliser), the same on every run.
fn hash_host(host: IpAddr) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    match host {
        IpAddr::V4(a) => mix(u32::from(a) as u64),
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            mix(mix(bits as u64 ^ 0x9e37_79b9_7f4a_7c15) ^ (bits >> 64) as u64)
        }
    }
}

impl HostTable {
    /// `10.0.0.1 (40), 10.0.0.2 (38) and 47 more hosts (200 connections)`; past
    /// `acc::MAX_HOSTS` hosts, `10.0.0.1 (40), 10.0.0.2 (≈38) and ≈4700 more hosts (at
    /// least 20000 connections)`.
    pub fn text(&self) -> String {
        let top: Vec<String> = self
            .top
            .iter()
            .map(|r| {
                let about = if r.max_overcount > 0 { "≈" } else { "" };
                format!("{} ({about}{})", r.host, r.connections)
            })
            .collect();
        let more = self.hosts.saturating_sub(self.top.len() as u64);
        if more > 0 {
            format!(
                "{} and {}{more} more {} ({}{})",
                top.join(", "),
                self.about(),
                if more == 1 { "host" } else { "hosts" },
                if self.approximate { "at least " } else { "" },
                super::plural(self.others, "connection", "connections")
            )
        } else {
            top.join(", ")
        }
    }

    /// `≈` before an estimated host count, else nothing.
    pub fn about(&self) -> &'static str {
        if self.approximate {
            "≈"
        } else {
            ""
        }
    }

    /// `41 client hosts`, `≈4921 client hosts` when estimated.
    pub fn hosts_text(&self, one: &str, many: &str) -> String {
        format!("{}{}", self.about(), super::plural(self.hosts, one, many))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_other_host_with_one_connection_is_singular() {
        let table = HostTable {
            hosts: 2,
            top: vec![HostCount {
                host: "10.0.0.1".parse().unwrap(),
                connections: 3,
                max_overcount: 0,
            }],
            others: 1,
            approximate: false,
        };
        assert_eq!(table.text(), "10.0.0.1 (3) and 1 more host (1 connection)");
    }

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

    fn host(i: u32) -> IpAddr {
        IpAddr::from([10, 2, (i >> 8) as u8, i as u8])
    }

    #[test]
    fn host_table_is_exact_up_to_max_hosts() {
        let mut h = Hosts::default();
        for i in 0..MAX_HOSTS as u32 {
            h.add(host(i), 1 + (i % 3) as u64);
        }
        let t = h.table();
        assert_eq!((t.hosts, t.approximate), (MAX_HOSTS as u64, false));
        assert!(t
            .top
            .iter()
            .all(|r| r.max_overcount == 0 && r.connections == 3));
        let total: u64 = (0..MAX_HOSTS as u64).map(|i| 1 + i % 3).sum();
        assert_eq!(t.others, total - 15);
        assert!(!t.text().contains('≈'));
    }

    #[test]
    fn many_hosts_keep_the_heavy_hitters_within_the_space_saving_bound() {
        // 20 000 hosts, host i with about 60 000 / (i + 1) connections (Zipf), interleaved.
        let hosts = 20_000u32;
        let want = |i: u32| (60_000 / (i as u64 + 1)).max(1);
        let mut h = Hosts::default();
        let mut truth = BTreeMap::new();
        let mut round = 0;
        loop {
            let mut any = false;
            for i in 0..hosts {
                if want(i) > round {
                    h.add(host(i), 1);
                    *truth.entry(host(i)).or_insert(0u64) += 1;
                    any = true;
                }
            }
            if !any {
                break;
            }
            round += 1;
        }
        let n: u64 = truth.values().sum();
        let t = h.table();
        assert!(t.approximate);
        let top: Vec<IpAddr> = (0..5).map(host).collect();
        assert_eq!(t.top.iter().map(|r| r.host).collect::<Vec<_>>(), top);
        for r in &t.top {
            let exact = truth[&r.host];
            assert!(r.connections >= exact && r.connections - exact <= r.max_overcount);
            assert!(r.max_overcount <= n / MAX_HOSTS as u64);
        }
        let err = (t.hosts as f64 - hosts as f64).abs() / hosts as f64;
        assert!(err < 0.05, "{} hosts estimated for {hosts}", t.hosts);
        assert!(t.text().contains(" and ≈"), "{}", t.text());
    }

    #[test]
    fn merged_host_tables_count_every_host() {
        let mut a = Hosts::default();
        let mut b = Hosts::default();
        (0..200).for_each(|i| a.add(host(i), 1));
        (100..400).for_each(|i| b.add(host(i), 2));
        a.merge(b);
        let t = a.table();
        assert!(t.approximate);
        assert!((388..=412).contains(&t.hosts), "{}", t.hosts);
        assert_eq!(
            t.others + t.top.iter().map(|r| r.connections).sum::<u64>(),
            800
        );
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
