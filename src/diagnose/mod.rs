//! Diagnosis: from one report per connection to a handful of findings a person can act on.
//!
//! A capture of the seed's problem has hundreds of connections that all ended the same way;
//! nobody wants hundreds of lines. This stage groups connections by what went wrong and by
//! whom (leaking host, remote service), measures what the group has in common (how long the
//! server waited before closing, how long sockets sat in CLOSE_WAIT) and says, per group,
//! what it means and what to change.
//!
//! It reads only the report model ([`ConnectionReport`]) and the capture totals; it never
//! re-runs the state machine, so a finding can never disagree with the per-connection
//! verdicts. Per-segment records (`ConnectionReport::segments`) are used where present
//! (keep-alive timings, the flags of a RST) and the findings degrade to counts without them.
//!
//! One module per family of findings:
//!
//! | module       | finding ids                                   |
//! |--------------|-----------------------------------------------|
//! | `leak`       | `close_wait_leak`                             |
//! | `idle`       | `idle_timeout`, `timeout_mismatch`            |
//! | `time_wait`  | `server_time_wait`                            |
//! | `late_write` | `late_write_rst`                              |
//! | `keepalive`  | `keepalive`, `dead_peer`                      |
//! | `resets`     | `resets`, `refused`, `syn_timeout`, `half_open` |
//! | `clear`      | `all_clear`                                   |

mod clear;
mod idle;
mod keepalive;
mod late_write;
mod leak;
pub mod render;
mod resets;
pub mod stats;
mod time_wait;

use crate::capture::CaptureStats;
use crate::model::ConnectionReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

pub use stats::Spread;

/// How bad a finding is. Ordered: `Info < Warning < Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            _ => Err(format!(
                "unknown severity '{s}' (one of: info, warning, error)"
            )),
        }
    }
}

/// The kind of a finding: a stable slug, the JSON `id`. Several findings may share an id
/// (one per group: per leaking host and service, per server endpoint…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingId {
    /// First, because it only ever appears alone or with informational findings, and then
    /// it is the headline.
    AllClear,
    CloseWaitLeak,
    LateWriteRst,
    DeadPeer,
    SynTimeout,
    Refused,
    HalfOpen,
    Resets,
    TimeoutMismatch,
    ServerTimeWait,
    IdleTimeout,
    Keepalive,
}

impl FindingId {
    pub const ALL: [FindingId; 12] = [
        FindingId::AllClear,
        FindingId::CloseWaitLeak,
        FindingId::LateWriteRst,
        FindingId::DeadPeer,
        FindingId::SynTimeout,
        FindingId::Refused,
        FindingId::HalfOpen,
        FindingId::Resets,
        FindingId::TimeoutMismatch,
        FindingId::ServerTimeWait,
        FindingId::IdleTimeout,
        FindingId::Keepalive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingId::CloseWaitLeak => "close_wait_leak",
            FindingId::LateWriteRst => "late_write_rst",
            FindingId::DeadPeer => "dead_peer",
            FindingId::SynTimeout => "syn_timeout",
            FindingId::Refused => "refused",
            FindingId::HalfOpen => "half_open",
            FindingId::Resets => "resets",
            FindingId::TimeoutMismatch => "timeout_mismatch",
            FindingId::ServerTimeWait => "server_time_wait",
            FindingId::IdleTimeout => "idle_timeout",
            FindingId::Keepalive => "keepalive",
            FindingId::AllClear => "all_clear",
        }
    }

    /// A title for headings.
    pub fn title(self) -> &'static str {
        match self {
            FindingId::CloseWaitLeak => "CLOSE_WAIT leak",
            FindingId::LateWriteRst => "Requests lost to closed connections",
            FindingId::DeadPeer => "Dead peer detected by keep-alive",
            FindingId::SynTimeout => "Connection attempts timed out",
            FindingId::Refused => "Connections refused",
            FindingId::HalfOpen => "Half-open connections",
            FindingId::Resets => "Connections reset",
            FindingId::TimeoutMismatch => "Idle timeout mismatch",
            FindingId::ServerTimeWait => "TIME_WAIT on the server",
            FindingId::IdleTimeout => "Idle (keep-alive) timeout",
            FindingId::Keepalive => "TCP keep-alive",
            FindingId::AllClear => "Nothing wrong",
        }
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing closewait concluded about a group of connections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    /// The one-sentence verdict.
    pub summary: String,
    /// How many connections the finding is about (for `all_clear`: all of them).
    pub count: u64,
    /// Connection ids (`tcp.stream`), ascending.
    pub evidence: Vec<u64>,
    /// The most representative connection of the group (the one diagrams draw).
    pub example: Option<u64>,
    /// How it happens, in two or three sentences.
    pub mechanism: String,
    /// What to change.
    pub advice: String,
    /// The finding's own numbers, flattened into the finding's JSON object.
    #[serde(flatten)]
    pub details: Details,
    /// The numbers as short lines for people (text and Markdown); JSON has `details`.
    #[serde(skip)]
    pub facts: Vec<String>,
    /// Orders findings of the same id (e.g. by service), for stable output.
    #[serde(skip)]
    pub(crate) group: String,
}

/// The numbers of each kind of finding. Serialised flat into the finding (untagged).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    CloseWaitLeak(leak::LeakDetails),
    IdleTimeout(idle::IdleDetails),
    TimeoutMismatch(idle::MismatchDetails),
    ServerTimeWait(time_wait::TimeWaitDetails),
    LateWrite(late_write::LateWriteDetails),
    Keepalive(keepalive::KeepaliveDetails),
    DeadPeer(keepalive::DeadPeerDetails),
    Resets(resets::ResetDetails),
    Failed(resets::FailedDetails),
    HalfOpen(resets::HalfOpenDetails),
    AllClear(clear::AllClearDetails),
}

pub use clear::AllClearDetails;
pub use idle::{IdleDetails, MismatchDetails};
pub use keepalive::{DeadPeerDetails, KeepaliveDetails, KeepaliveSettings};
pub use late_write::LateWriteDetails;
pub use leak::LeakDetails;
pub use resets::{FailedDetails, HalfOpenDetails, ResetDetails};
pub use time_wait::TimeWaitDetails;

/// The result: findings, most severe first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Connections diagnosed.
    pub connections: u64,
    /// Epoch seconds of the first and last packet of the capture.
    pub capture_start: Option<f64>,
    pub capture_end: Option<f64>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// The most severe finding's severity.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// What every finding module sees: the reports in id order and a few totals.
pub(crate) struct Ctx<'a> {
    pub reports: Vec<&'a ConnectionReport>,
    pub capture_start: f64,
    pub capture_end: f64,
    /// Connections per server endpoint.
    pub per_service: BTreeMap<SocketAddr, u64>,
}

impl<'a> Ctx<'a> {
    fn new(reports: &'a [ConnectionReport], capture: &CaptureStats) -> Ctx<'a> {
        let mut sorted: Vec<&ConnectionReport> = reports.iter().collect();
        sorted.sort_by_key(|r| r.id);
        let last_seen = sorted
            .iter()
            .map(|r| {
                let waited = match (r.close.waiting_since, r.close.waiting_for) {
                    (Some(s), Some(w)) => s + w,
                    _ => r.end,
                };
                r.end.max(waited)
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let first_seen = sorted.iter().map(|r| r.start).fold(f64::INFINITY, f64::min);
        let capture_end = capture.last_ts.unwrap_or(last_seen);
        let capture_start = capture.first_ts.unwrap_or(first_seen);
        let mut per_service = BTreeMap::new();
        for r in &sorted {
            *per_service.entry(r.server).or_insert(0) += 1;
        }
        Ctx {
            reports: sorted,
            capture_start: if capture_start.is_finite() {
                capture_start
            } else {
                0.0
            },
            capture_end: if capture_end.is_finite() {
                capture_end
            } else {
                0.0
            },
            per_service,
        }
    }

    pub fn capture_secs(&self) -> f64 {
        (self.capture_end - self.capture_start).max(0.0)
    }
}

/// Diagnoses a set of connection reports (any order).
pub fn diagnose(reports: &[ConnectionReport], capture: &CaptureStats) -> Diagnosis {
    let ctx = Ctx::new(reports, capture);
    let mut findings = Vec::new();
    findings.extend(leak::find(&ctx));
    let idle = idle::find(&ctx);
    findings.extend(idle::mismatch(&idle));
    findings.extend(time_wait::find(&ctx, &idle));
    findings.extend(late_write::find(&ctx, &idle));
    findings.extend(idle.findings);
    findings.extend(keepalive::find(&ctx));
    findings.extend(resets::find(&ctx));
    if !findings.iter().any(|f| f.severity >= Severity::Warning) {
        findings.push(clear::find(&ctx));
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(&b.id))
            .then(b.count.cmp(&a.count))
            .then(a.group.cmp(&b.group))
    });
    Diagnosis {
        connections: ctx.reports.len() as u64,
        capture_start: capture.first_ts.or(if ctx.reports.is_empty() {
            None
        } else {
            Some(stats::round6(ctx.capture_start))
        }),
        capture_end: capture.last_ts.or(if ctx.reports.is_empty() {
            None
        } else {
            Some(stats::round6(ctx.capture_end))
        }),
        findings,
    }
}

/// Connection ids, ascending.
pub(crate) fn ids(conns: &[&ConnectionReport]) -> Vec<u64> {
    let mut v: Vec<u64> = conns.iter().map(|r| r.id).collect();
    v.sort_unstable();
    v
}

/// The most representative connection of a group: the one at the median of `metric`,
/// preferring connections whose segments were recorded (a diagram needs them).
pub(crate) fn representative(
    conns: &[&ConnectionReport],
    metric: impl Fn(&ConnectionReport) -> f64,
) -> Option<u64> {
    if conns.is_empty() {
        return None;
    }
    let mut ranked: Vec<(f64, u64, bool)> = conns
        .iter()
        .map(|r| (metric(r), r.id, r.segments.is_some()))
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mid = (ranked.len() - 1) / 2;
    if ranked[mid].2 {
        return Some(ranked[mid].1);
    }
    // Nearest (by rank) connection with segments; the median one if none has any.
    (1..ranked.len())
        .flat_map(|d| [mid.checked_sub(d), Some(mid + d)])
        .flatten()
        .filter(|&i| i < ranked.len())
        .find(|&i| ranked[i].2)
        .map(|i| ranked[i].1)
        .or(Some(ranked[mid].1))
}

/// `1 connection`, `2 connections`.
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests;
