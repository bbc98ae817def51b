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

        let summary = format!(
            "{} to {service} {} answered by RST: the {writer} wrote into {} the {closer} had \
             already closed ({} after the {closer}'s FIN{}).",
            plural(n, "request", "requests"),
            if n == 1 { "was" } else { "were" },
            if n == 1 {
                "a connection"
            } else {
                "connections"
            },
            secs(gaps.median),
            if n > 1 { ", median" } else { "" }
        );
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
        let advice = match writer {
            Side::Client => format!(
                "Close pooled connections as soon as they read EOF and validate a connection \
                 before reusing it; keep the client's idle timeout below the server's{} so \
                 the client closes first; retry idempotent requests once on a connection \
                 reset.",
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
            }),
            facts,
            group: format!("{service} {closer}"),
        }
    }
}
