//! `server_time_wait`: a server that actively closes most of its connections.
//!
//! TIME_WAIT belongs to the side that sends the first FIN (RFC 9293 §3.6; both sides on a
//! simultaneous close) and lasts 2×MSL, a fixed 60 s on Linux (`TCP_TIMEWAIT_LEN`). A
//! client holding it costs one of its own ephemeral ports for a minute; a busy server
//! holding it for every connection accumulates rate × 60 s sockets (memory,
//! `tcp_max_tw_buckets` overflow). The seed's fix (5) is to let the clients close first.

use super::acc::{Members, Sketch};
use super::idle::IdleTimeouts;
use super::stats::{rate, secs, Spread};
use super::{Ctx, Details, Finding, FindingId, Severity};
use closewait_core::model::{ser_addr, CloseKind, CloseSignal, ConnectionReport, Side};
use closewait_core::state::TcpState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Linux's TIME_WAIT length (`TCP_TIMEWAIT_LEN`), for the projection.
pub const LINUX_TIME_WAIT_SECS: f64 = 60.0;

/// A single close is an anecdote, not a rate.
const MIN_ACTIVE_CLOSES: u64 = 2;

/// A rate is projected to a TIME_WAIT population only when the server's closes span at
/// least this long: one TIME_WAIT length, the time the population takes to reach its steady
/// state. A burst of closes is reported as a count, not extrapolated.
pub const MIN_PROJECTION_SECS: f64 = 60.0;

/// At this many projected server sockets in TIME_WAIT the finding becomes a warning.
const WARN_PROJECTED: f64 = 10_000.0;

/// The numbers of a `server_time_wait` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeWaitDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Connections the server closed first (its FIN first, or a simultaneous close).
    pub active_closes: u64,
    /// Connections to the server that were closed at all (FIN or RST).
    pub closed: u64,
    /// Of the active closes, how many reached TIME_WAIT on the server in the capture.
    pub reached_time_wait: u64,
    /// Server sockets still in TIME_WAIT at the end of the capture.
    pub in_time_wait_at_end: u64,
    /// Active closes per second, from the first to the last of them.
    pub per_second: f64,
    /// Seconds from the first to the last active close.
    pub closes_span: f64,
    /// Server sockets in TIME_WAIT at that rate, with Linux's 60 s TIME_WAIT; `null` when
    /// the closes span less than `MIN_PROJECTION_SECS` (60 s): a burst is not a rate.
    pub projected_time_wait: Option<f64>,
    /// Idle time before the server's FIN.
    pub idle_before_close: Option<Spread>,
}

fn server_closed_first(r: &ConnectionReport) -> bool {
    r.close.kind == CloseKind::Simultaneous
        || (r.close.first == Some(CloseSignal::Fin) && r.close.first_by == Some(Side::Server))
}

fn closed(r: &ConnectionReport) -> bool {
    !matches!(
        r.close.kind,
        CloseKind::Open
            | CloseKind::Refused
            | CloseKind::SynTimeout
            | CloseKind::HandshakeIncomplete
    )
}

/// One server's closes.
#[derive(Default)]
struct Group {
    /// Connections to the server that were closed at all.
    closed: u64,
    /// Those the server closed first.
    active: Members,
    /// Of those, the ones that reached TIME_WAIT on the server in the capture.
    reached: Members,
    at_end: u64,
    idle: Sketch,
    /// First and last active close.
    first_close: f64,
    last_close: f64,
}

/// Closes per server endpoint.
#[derive(Default)]
pub(super) struct Acc {
    groups: BTreeMap<SocketAddr, Group>,
}

impl Acc {
    pub fn add(&mut self, r: &ConnectionReport) {
        if !closed(r) {
            return;
        }
        let g = self.groups.entry(r.server).or_default();
        g.closed += 1;
        if !server_closed_first(r) {
            return;
        }
        let metric = r.close.first_at.unwrap_or(r.start);
        if g.active.n == 0 {
            (g.first_close, g.last_close) = (metric, metric);
        } else {
            g.first_close = g.first_close.min(metric);
            g.last_close = g.last_close.max(metric);
        }
        let segs = r.segments.is_some();
        g.active.add(r.id, metric, segs);
        if r.timeline
            .server
            .iter()
            .any(|c| c.state == TcpState::TimeWait)
        {
            g.reached.add(r.id, metric, segs);
        }
        if r.server_state == TcpState::TimeWait {
            g.at_end += 1;
        }
        if let Some(i) = r.close.idle_before_close {
            g.idle.add(i);
        }
    }

    pub fn finish(self, ctx: &Ctx, idle: &IdleTimeouts) -> Vec<Finding> {
        let span = ctx.capture_secs();
        let mut out = Vec::new();
        for (service, g) in self.groups {
            out.extend(finding(service, &g, span, idle));
        }
        out
    }
}

fn finding(service: SocketAddr, g: &Group, span: f64, idle: &IdleTimeouts) -> Option<Finding> {
    {
        let n = g.active.n;
        let closed = g.closed;
        if n < MIN_ACTIVE_CLOSES || n * 2 <= closed {
            return None;
        }
        let reached = g.reached.n;
        let at_end = g.at_end;
        let closes_span = (g.last_close - g.first_close).max(0.0);
        let per_second = if closes_span > 0.0 {
            (n - 1) as f64 / closes_span
        } else {
            0.0
        };
        let projected =
            (closes_span >= MIN_PROJECTION_SECS).then_some(per_second * LINUX_TIME_WAIT_SECS);
        let idle_spread = g.idle.spread();
        let idle_timeout = idle.server_timeout(service);
        let closes_at_once = idle_spread.as_ref().is_some_and(|s| s.median < 0.1);

        let summary = match projected {
            Some(p) => format!(
                "The server {service} closes {n} of {closed} connections itself (its FIN \
                 first), so TIME_WAIT (60 s on Linux) lands on the server: {} closes/s, up to \
                 about {p:.0} server sockets in TIME_WAIT at that rate.",
                rate(per_second)
            ),
            None => format!(
                "The server {service} closes {n} of {closed} connections itself (its FIN \
                 first), so TIME_WAIT (60 s on Linux) lands on the server: {n} sockets in \
                 {}.",
                secs(closes_span)
            ),
        };
        let mechanism = "TIME_WAIT belongs to the side that sends the first FIN (RFC 9293 \
                         §3.6) and lasts 2×MSL, a fixed 60 s on Linux (TCP_TIMEWAIT_LEN), \
                         keeping the 4-tuple reserved. On a busy server that closes most \
                         connections these accumulate, rate × 60 s of them; on the clients \
                         they would be spread over many hosts."
            .to_string();
        let advice = if closes_at_once {
            "The server closes right after each response (HTTP/1.0 or `Connection: close`): \
             enable keep-alive, or have the clients close first (they send the last request \
             with `Connection: close` and close after reading the response)."
                .to_string()
        } else {
            format!(
                "Let the clients close first: make their idle timeout shorter than the \
                 server's keep-alive timeout{}, so TIME_WAIT lands on the clients.",
                idle_timeout
                    .map(|t| format!(" ({})", secs(t)))
                    .unwrap_or_default()
            )
        };
        let mut facts = vec![
            format!(
                "server {service} sent the first FIN on {n} of {closed} closed connections; \
                 {reached} reached TIME_WAIT in the capture, {at_end} still in TIME_WAIT at \
                 its end"
            ),
            match projected {
                Some(p) => format!(
                    "{n} active closes over {}: {} closes/s × 60 s = about {p:.0} in \
                     TIME_WAIT at once",
                    secs(closes_span),
                    rate(per_second)
                ),
                None => format!(
                    "{n} active closes within {} ({} of capture): too short a span to \
                     project a TIME_WAIT population (closes must span at least {})",
                    secs(closes_span),
                    secs(span),
                    secs(MIN_PROJECTION_SECS)
                ),
            },
        ];
        if reached < n {
            facts.push(format!(
                "{} never reached TIME_WAIT: the client had not sent its FIN when the capture \
                 ended (or reset instead)",
                n - reached
            ));
        }
        Some(Finding {
            id: FindingId::ServerTimeWait,
            severity: if projected.is_some_and(|p| p >= WARN_PROJECTED) {
                Severity::Warning
            } else {
                Severity::Info
            },
            summary,
            count: n,
            evidence: g.active.ids(),
            // Draw a connection that shows the server's TIME_WAIT, if one does.
            example: if reached == 0 {
                g.active.example()
            } else {
                g.reached.example()
            },
            mechanism,
            advice,
            details: Details::ServerTimeWait(TimeWaitDetails {
                server: service,
                active_closes: n,
                closed,
                reached_time_wait: reached,
                in_time_wait_at_end: at_end,
                per_second: super::stats::round6(per_second),
                closes_span: super::stats::round6(closes_span),
                projected_time_wait: projected.map(super::stats::round6),
                idle_before_close: idle_spread,
            }),
            facts,
            group: service.to_string(),
        })
    }
}
