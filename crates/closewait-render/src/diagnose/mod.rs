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
//! | `http`       | `advertised_timeout`, `connection_reuse`      |
//! | `resets`     | `resets`, `refused`, `syn_timeout`, `half_open` |
//! | `clear`      | `all_clear`                                   |
//! | `capture_loss` | `capture_loss`                              |

mod acc;
mod capture_loss;
mod clear;
pub mod display_filter;
mod http;
mod idle;
mod keepalive;
mod late_write;
mod leak;
mod resets;
pub mod stats;
mod time_wait;

use closewait_core::capture::CaptureStats;
use closewait_core::model::{self, ConnectionReport};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

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
    /// Next: what the capture does not hold qualifies every finding after it.
    CaptureLoss,
    CloseWaitLeak,
    LateWriteRst,
    DeadPeer,
    SynTimeout,
    Refused,
    HalfOpen,
    Resets,
    TimeoutMismatch,
    AdvertisedTimeout,
    ServerTimeWait,
    IdleTimeout,
    ConnectionReuse,
    Keepalive,
}

impl FindingId {
    pub const ALL: [FindingId; 15] = [
        FindingId::AllClear,
        FindingId::CaptureLoss,
        FindingId::CloseWaitLeak,
        FindingId::LateWriteRst,
        FindingId::DeadPeer,
        FindingId::SynTimeout,
        FindingId::Refused,
        FindingId::HalfOpen,
        FindingId::Resets,
        FindingId::TimeoutMismatch,
        FindingId::AdvertisedTimeout,
        FindingId::ServerTimeWait,
        FindingId::IdleTimeout,
        FindingId::ConnectionReuse,
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
            FindingId::AdvertisedTimeout => "advertised_timeout",
            FindingId::ConnectionReuse => "connection_reuse",
            FindingId::ServerTimeWait => "server_time_wait",
            FindingId::IdleTimeout => "idle_timeout",
            FindingId::Keepalive => "keepalive",
            FindingId::AllClear => "all_clear",
            FindingId::CaptureLoss => "capture_loss",
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
            FindingId::AdvertisedTimeout => "Advertised keep-alive timeout",
            FindingId::ConnectionReuse => "HTTP requests per connection",
            FindingId::ServerTimeWait => "TIME_WAIT on the server",
            FindingId::IdleTimeout => "Idle (keep-alive) timeout",
            FindingId::Keepalive => "TCP keep-alive",
            FindingId::AllClear => "Nothing wrong",
            FindingId::CaptureLoss => "Bytes the capture does not hold",
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
    AdvertisedTimeout(http::AdvertisedDetails),
    ConnectionReuse(http::ReuseDetails),
    ServerTimeWait(time_wait::TimeWaitDetails),
    LateWrite(late_write::LateWriteDetails),
    Keepalive(keepalive::KeepaliveDetails),
    DeadPeer(keepalive::DeadPeerDetails),
    Resets(resets::ResetDetails),
    Failed(resets::FailedDetails),
    HalfOpen(resets::HalfOpenDetails),
    AllClear(clear::AllClearDetails),
    CaptureLoss(capture_loss::CaptureLossDetails),
}

pub use capture_loss::{CaptureLossDetails, TOO_MUCH_LOSS_PERCENT};
pub use clear::AllClearDetails;
pub use http::{AdvertisedDetails, ReuseDetails};
pub use idle::{IdleDetails, MismatchDetails};
pub use keepalive::{DeadPeerDetails, KeepaliveDetails, KeepaliveSettings};
pub use late_write::{LateRequests, LateWriteDetails};
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
    /// Each with its `display_filter` in JSON ([`Finding::display_filter`]).
    #[serde(serialize_with = "display_filter::with_filters")]
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// The most severe finding's severity.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// What every finding module sees when the findings are written: the capture's span and
/// the connections per server endpoint.
pub(crate) struct Ctx {
    pub capture_start: f64,
    pub capture_end: f64,
    /// Connections per server endpoint.
    pub per_service: BTreeMap<SocketAddr, u64>,
}

impl Ctx {
    pub fn capture_secs(&self) -> f64 {
        (self.capture_end - self.capture_start).max(0.0)
    }
}

/// With more client hosts than this the capture is taken as server-side (or on a router):
/// findings about clients are made per service, with a table of the client hosts, instead
/// of one per client host. One host is a client-side capture (the seed's app server); a
/// few allow for a capture taken on a pair of clients.
pub const FEW_CLIENT_HOSTS: usize = 4;

/// The streaming diagnosis: feed it each connection as it finishes ([`Self::add`], any
/// order), then [`Self::finish`] with the capture's totals. It keeps bounded state per
/// group of connections (see `acc`), never the connections themselves; a connection's
/// segment records are read while it is added and may be dropped right after.
#[derive(Default)]
pub struct DiagnosisBuilder {
    connections: u64,
    first_seen: f64,
    last_seen: f64,
    per_service: BTreeMap<SocketAddr, u64>,
    /// Client hosts seen, up to [`FEW_CLIENT_HOSTS`] + 1.
    clients: BTreeSet<IpAddr>,
    /// More than [`FEW_CLIENT_HOSTS`] client hosts: a server-side capture.
    many_clients: bool,
    leak: leak::Acc,
    idle: idle::Acc,
    time_wait: time_wait::Acc,
    late_write: late_write::Acc,
    keepalive: keepalive::Acc,
    http: http::Acc,
    resets: resets::Acc,
    clear: clear::Acc,
    capture_loss: capture_loss::Acc,
}

impl DiagnosisBuilder {
    pub fn new() -> DiagnosisBuilder {
        DiagnosisBuilder {
            first_seen: f64::INFINITY,
            last_seen: f64::NEG_INFINITY,
            ..DiagnosisBuilder::default()
        }
    }

    /// Adds one finished connection.
    pub fn add(&mut self, r: &ConnectionReport) {
        self.connections += 1;
        let waited = match (r.close.waiting_since, r.close.waiting_for) {
            (Some(s), Some(w)) => s + w,
            _ => r.end,
        };
        self.last_seen = self.last_seen.max(r.end.max(waited));
        self.first_seen = self.first_seen.min(r.start);
        *self.per_service.entry(r.server).or_insert(0) += 1;
        if !self.many_clients
            && self.clients.insert(r.client.ip())
            && self.clients.len() > FEW_CLIENT_HOSTS
        {
            {
                // A server-side capture: findings about clients become one per service,
                // with a table of client hosts.
                self.many_clients = true;
                self.clients.clear();
                self.leak.fold();
                self.idle.fold();
                self.resets.fold();
                self.keepalive.fold();
            }
        }
        // Captured one way only: every close would look unanswered. Only capture_loss
        // reads such a connection (and says it left the others out).
        let one_way = self.capture_loss.add(r);
        if one_way {
            return;
        }
        self.leak.add(r, self.many_clients);
        self.idle.add(r, self.many_clients);
        self.time_wait.add(r);
        self.late_write.add(r);
        self.keepalive.add(r);
        self.http.add(r);
        self.resets.add(r, self.many_clients);
        self.clear.add(r);
    }

    /// Connections added so far.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// The findings, most severe first.
    pub fn finish(self, capture: &CaptureStats) -> Diagnosis {
        let capture_end = capture.end_ts().unwrap_or(self.last_seen);
        let capture_start = capture.first_ts.unwrap_or(self.first_seen);
        let ctx = Ctx {
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
            per_service: self.per_service,
        };
        let mut findings = Vec::new();
        let idle = self.idle.finish();
        findings.extend(self.leak.finish(&ctx, &idle));
        findings.extend(idle::mismatch(&idle));
        findings.extend(self.time_wait.finish(&ctx, &idle));
        findings.extend(self.late_write.finish(&idle));
        findings.extend(idle.findings);
        findings.extend(self.keepalive.finish(&ctx));
        findings.extend(self.http.finish());
        findings.extend(self.resets.finish());
        let fragments = capture.packets.skipped.contains_key("ip_fragment");
        findings.extend(self.capture_loss.finish(fragments));
        if !findings.iter().any(|f| f.severity >= Severity::Warning) {
            findings.push(self.clear.finish(self.connections));
        }
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.id.cmp(&b.id))
                .then(b.count.cmp(&a.count))
                .then(a.group.cmp(&b.group))
        });
        let any = self.connections > 0;
        Diagnosis {
            connections: self.connections,
            capture_start: capture
                .first_ts
                .or(any.then(|| stats::round6(ctx.capture_start))),
            capture_end: capture
                .end_ts()
                .or(any.then(|| stats::round6(ctx.capture_end))),
            findings,
        }
    }
}

/// Diagnoses a set of connection reports (any order): [`DiagnosisBuilder`] over them.
pub fn diagnose(reports: &[ConnectionReport], capture: &CaptureStats) -> Diagnosis {
    let mut b = DiagnosisBuilder::new();
    for r in reports {
        b.add(r);
    }
    b.finish(capture)
}

/// A finding's sort key from its side, host (none for a per-service group of many client
/// hosts) and service.
pub(crate) fn group_of(side: model::Side, host: Option<IpAddr>, service: SocketAddr) -> String {
    format!(
        "{side} {} {service}",
        host.map(|h| h.to_string()).unwrap_or_default()
    )
}

/// `1 connection`, `2 connections`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests;
