//! `late_write_rst`: requests lost to connections the peer had already closed.
//!
//! The side that closed first (FIN) later answers the other side's data with RST: the other
//! side wrote into a connection that was gone. Two Linux paths lead there (see PEERS.md C3):
//! data arriving on a socket the application has closed is answered by RST,ACK
//! (`TCPAbortOnData`, the keep-alive race when the request crosses the FIN), and once the
//! orphaned FIN_WAIT_2 socket has been dropped (`tcp_fin_timeout`, 60 s) there is no socket
//! at all and the kernel answers with a bare RST (`seq = SEG.ACK`, no ACK flag, RFC 9293
//! §3.10.7.1). Either way the request is lost unless the client retries it.
//!
//! The connection-level verdict says it: `fin_then_rst` with the RST from the side that
//! sent the FIN and the other side never having sent its own. Segment records, when
//! present, add the RST's flags and confirm the late data.

use super::acc::{Members, Sketch};
use super::idle::IdleTimeouts;
use super::stats::{secs, Spread};
use super::{plural, Details, Finding, FindingId, Severity};
use closewait_core::model::{
    ser_addr, CloseKind, CloseSignal, ConnectionReport, SegmentNote, Side,
};
use closewait_core::state::TcpState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The numbers of a `late_write_rst` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LateWriteDetails {
    /// The side that closed first and then reset.
    pub closer: Side,
    #[serde(serialize_with = "ser_addr")]
    pub service: SocketAddr,
    /// Seconds from the closer's FIN to its RST.
    pub fin_to_rst: Spread,
    /// RSTs without ACK flag (Linux's answer to data for a closed or vanished socket).
    pub bare_rst: u64,
    /// RSTs with ACK flag.
    pub rst_ack: u64,
    /// Requests sent before the closer's FIN had arrived (they crossed it on the wire).
    pub crossed_fin: u64,
    /// Connections whose late data was seen in segment records (0 when none were kept).
    pub late_data_seen: u64,
    /// The HTTP requests that met the closed connections, when the conversations were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<LateRequests>,
}

/// The HTTP requests of a `late_write_rst` group (`close.http` of each connection).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LateRequests {
    /// Requests answered by the RST.
    pub requests: u64,
    /// Of those, with a method that is not idempotent (RFC 9110 §9.2.2): no client may
    /// retry them automatically.
    pub non_idempotent: u64,
    /// Up to [`MAX_REQUEST_EXAMPLES`] distinct request lines (`POST /orders`), the
    /// non-idempotent ones first.
    pub examples: Vec<String>,
    /// A distinct line was left out of `examples`.
    #[serde(skip)]
    lines_dropped: bool,
}

/// Request lines quoted per finding.
pub const MAX_REQUEST_EXAMPLES: usize = 3;

impl LateRequests {
    fn add(&mut self, method: &str, target: &str, idempotent: bool) {
        self.requests += 1;
        self.non_idempotent += u64::from(!idempotent);
        let line = format!("{method} {target}");
        if self.examples.contains(&line) {
            return;
        }
        if !idempotent {
            // Non-idempotent lines go before the idempotent ones, and push them out.
            let at = self.examples.partition_point(|l| !is_idempotent_line(l));
            self.examples.insert(at, line);
            self.lines_dropped |= self.examples.len() > MAX_REQUEST_EXAMPLES;
            self.examples.truncate(MAX_REQUEST_EXAMPLES);
        } else if self.examples.len() < MAX_REQUEST_EXAMPLES {
            self.examples.push(line);
        } else {
            self.lines_dropped = true;
        }
    }

    /// `1 request (GET /?ms=300)`, `3 requests (2 non-idempotent: POST /orders…)`: the
    /// lines quoted are the non-idempotent ones when there are any.
    fn phrase(&self) -> String {
        let (kind, quoted): (String, Vec<&String>) = match (self.non_idempotent, self.requests) {
            (0, 1) => (String::new(), self.examples.iter().collect()),
            (0, _) => ("all idempotent: ".into(), self.examples.iter().collect()),
            (m, n) => (
                if m == n && n == 1 {
                    "non-idempotent: ".into()
                } else {
                    format!("{m} non-idempotent: ")
                },
                self.examples
                    .iter()
                    .filter(|l| !is_idempotent_line(l))
                    .collect(),
            ),
        };
        let more = if self.lines_dropped { "…" } else { "" };
        let lines: Vec<&str> = quoted.iter().map(|l| l.as_str()).collect();
        format!(
            "{} ({kind}{}{more})",
            plural(self.requests, "request", "requests"),
            lines.join(", ")
        )
    }
}

fn is_idempotent_line(line: &str) -> bool {
    let method = line.split(' ').next().unwrap_or_default();
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// The time of the RST that ended a connection.
fn rst_at(r: &ConnectionReport) -> Option<f64> {
    let by = r.close.rst_by?;
    r.timeline
        .get(by)
        .iter()
        .rev()
        .find(|c| c.state == TcpState::Closed && c.frame.is_some())
        .map(|c| c.at)
}

pub(super) fn is_late_write(r: &ConnectionReport) -> bool {
    r.close.kind == CloseKind::FinThenRst
        && r.close.first == Some(CloseSignal::Fin)
        && r.close.first_by.is_some()
        && r.close.rst_by == r.close.first_by
        && r.close.who_failed_to_respond == r.close.first_by.map(Side::other)
}

fn fin_to_rst(r: &ConnectionReport) -> f64 {
    match (r.close.first_at, rst_at(r)) {
        (Some(f), Some(x)) => (x - f).max(0.0),
        _ => 0.0,
    }
}

/// (RST flags, late data seen) from the segment records.
fn rst_facts(r: &ConnectionReport) -> (Option<bool>, bool) {
    let (Some(segs), Some(closer), Some(fin_at)) =
        (&r.segments, r.close.first_by, r.close.first_at)
    else {
        return (None, false);
    };
    let rst = segs
        .iter()
        .find(|s| s.from == closer && s.flags.contains("RST") && s.ts >= fin_at);
    let late_data = segs.iter().any(|s| {
        s.from == closer.other()
            && s.len > 0
            && s.ts > fin_at
            && !s.notes.contains(&SegmentNote::KeepAlive)
            && rst.is_none_or(|x| s.frame < x.frame)
    });
    (rst.map(|x| !x.flags.contains("ACK")), late_data)
}

/// True when the late data left before its sender had received the closer's FIN: the
/// recorded state of the writer after its first data segment past the FIN is still
/// ESTABLISHED (a segment acknowledging the FIN would have moved it to CLOSE_WAIT).
fn crossed_fin(r: &ConnectionReport) -> bool {
    let (Some(segs), Some(closer), Some(fin_at)) =
        (&r.segments, r.close.first_by, r.close.first_at)
    else {
        return false;
    };
    let writer = closer.other();
    segs.iter()
        .find(|s| s.from == writer && s.len > 0 && s.ts >= fin_at)
        .is_some_and(|s| {
            let st = match writer {
                Side::Client => s.client_state,
                Side::Server => s.server_state,
            };
            st == TcpState::Established
        })
}

/// One (service, closer) group of late writes.
#[derive(Default)]
struct Group {
    members: Members,
    gaps: Sketch,
    bare: u64,
    rst_ack: u64,
    late_seen: u64,
    crossed: u64,
    http: LateRequests,
}

/// Late writes per (service, side that closed first). The RST's flags, the late data and
/// whether the request crossed the FIN are read from the segment records as each
/// connection is added.
#[derive(Default)]
pub(super) struct Acc {
    groups: BTreeMap<(SocketAddr, Side), Group>,
}

impl Acc {
    pub fn add(&mut self, r: &ConnectionReport) {
        if !is_late_write(r) {
            return;
        }
        let Some(closer) = r.close.first_by else {
            return;
        };
        let g = self.groups.entry((r.server, closer)).or_default();
        let gap = fin_to_rst(r);
        g.members.add(r.id, gap, r.segments.is_some());
        g.gaps.add(gap);
        let (bare, late) = rst_facts(r);
        match bare {
            Some(true) => g.bare += 1,
            Some(false) => g.rst_ack += 1,
            None => {}
        }
        g.late_seen += u64::from(late);
        g.crossed += u64::from(crossed_fin(r));
        let hit = r.close.http.as_deref().filter(|h| {
            h.reason == closewait_core::http_close::HttpCloseReason::RequestHitClosedConnection
        });
        if let Some(request) = hit.and_then(|h| h.request.as_ref()) {
            let line = &request.request;
            g.http.add(&line.method, &line.target, request.idempotent);
        }
    }

    pub fn finish(self, idle: &IdleTimeouts) -> Vec<Finding> {
        self.groups
            .into_iter()
            .map(|((service, closer), g)| finding(service, closer, &g, idle))
            .collect()
    }
}

fn finding(service: SocketAddr, closer: Side, g: &Group, idle: &IdleTimeouts) -> Finding {
    {
        let n = g.members.n;
        let writer = closer.other();
        let gaps = g.gaps.spread().expect("non-empty group");
        let (bare, rst_ack, late_seen) = (g.bare, g.rst_ack, g.late_seen);

        let http = (g.http.requests > 0).then(|| g.http.clone());
        let connections = if n == 1 {
            "a connection"
        } else {
            "connections"
        };
        let after_fin = format!(
            "{} after the {closer}'s FIN{}",
            secs(gaps.median),
            if n > 1 { ", median" } else { "" }
        );
        let summary = match &http {
            Some(http) => format!(
                "{} to {service} {} written into {connections} the {closer} had already closed: \
                 the {writer} saw a reset ({after_fin}).",
                http.phrase(),
                if http.requests == 1 { "was" } else { "were" },
            ),
            None => format!(
                "{} to {service} {} answered by RST: the {writer} wrote into {connections} the \
                 {closer} had already closed ({after_fin}).",
                plural(n, "request", "requests"),
                if n == 1 { "was" } else { "were" },
            ),
        };
        let crossed = g.crossed;
        let how = if crossed * 2 > n {
            "; the request crossed the FIN on the wire (the keep-alive race)".to_string()
        } else {
            format!(
                ", then sent a request on one {} after its FIN had arrived",
                secs(gaps.median)
            )
        };
        let mechanism = format!(
            "The {closer} closed these connections (FIN) and the {writer} kept them{how}. Once \
             the {closer}'s application has closed its socket, data for it cannot be delivered: \
             Linux answers with RST at once, whether the orphaned socket is still in FIN_WAIT_2 \
             or already dropped by tcp_fin_timeout (60 s by default). The {writer}'s request \
             fails with ECONNRESET or an empty response, and is lost unless retried."
        );
        let server_timeout = idle.server_timeout(service);
        let http_advice = match &http {
            Some(h) if h.non_idempotent > 0 => format!(
                " {} of these requests cannot be retried safely (not idempotent): they failed \
                 for the application. Client settings: {}. Server settings: {}.",
                h.non_idempotent,
                super::http::CLIENT_KNOBS,
                super::http::SERVER_KNOBS
            ),
            Some(_) => format!(
                " Client settings: {}. Server settings: {}.",
                super::http::CLIENT_KNOBS,
                super::http::SERVER_KNOBS
            ),
            None => String::new(),
        };
        let advice = match writer {
            Side::Client => format!(
                "Close pooled connections as soon as they read EOF and validate a connection \
                 before reusing it; keep the client's idle timeout below the server's{} so \
                 the client closes first; retry idempotent requests once on a connection \
                 reset.{http_advice}",
                server_timeout
                    .map(|t| format!(" ({})", secs(t)))
                    .unwrap_or_default()
            ),
            Side::Server => "The server writes to connections its clients have closed: stop \
                             writing once read() returns 0 (EOF) and close the socket."
                .to_string(),
        };
        let mut facts = vec![format!(
            "{closer}'s FIN to its RST: min {}, median {}, max {}",
            secs(gaps.min),
            secs(gaps.median),
            secs(gaps.max)
        )];
        if bare + rst_ack > 0 {
            facts.push(format!(
                "the {closer}'s RST: {bare} bare RST (no ACK flag, sent for a socket the \
                 application had closed or that no longer existed), {rst_ack} RST,ACK"
            ));
        }
        if let Some(h) = &http {
            facts.push(format!(
                "HTTP requests answered by the RST: {} ({} idempotent, {} not): {}",
                h.requests,
                h.requests - h.non_idempotent,
                h.non_idempotent,
                h.examples.join(", ")
            ));
        }
        if crossed > 0 {
            facts.push(format!(
                "{crossed} of {n} requests were sent before the {closer}'s FIN had arrived"
            ));
        }
        if late_seen > 0 {
            facts.push(format!(
                "late data from the {writer} after the FIN seen on {late_seen} of {n}"
            ));
        }
        Finding {
            id: FindingId::LateWriteRst,
            severity: Severity::Warning,
            summary,
            count: n,
            evidence: g.members.ids(),
            example: g.members.example(),
            mechanism,
            advice,
            details: Details::LateWrite(LateWriteDetails {
                closer,
                service,
                fin_to_rst: gaps,
                bare_rst: bare,
                rst_ack,
                late_data_seen: late_seen,
                crossed_fin: crossed,
                http,
            }),
            facts,
            group: format!("{service} {closer}"),
        }
    }
}
