//! `close_wait_leak`: the side that received a FIN and never closed.
//!
//! RFC 9293 §3.6: a side that receives a FIN goes ESTABLISHED → CLOSE-WAIT and stays there
//! until *its user* issues CLOSE; no timer ends CLOSE-WAIT. So a socket still in CLOSE_WAIT
//! at the end of the capture is an application that has not called close() after the
//! peer's FIN: the seed's "200 sockets in CLOSE_WAIT". Connections are grouped by leaking
//! side, leaking host and remote service, so that one line says "45 of your 50 connections
//! to 10.77.0.2:8788".

use super::acc::{HostTable, Hosts, Members, Sketch, MAX_EVIDENCE};
use super::idle::{IdleTimeouts, SLOW_ANSWER_SECS};
use super::stats::{secs, secs_precise, spread_text, Spread};
use super::{Ctx, Details, Finding, FindingId, Severity};
use closewait_core::model::{ser_addr, CloseSignal, ConnectionReport, Side};
use closewait_core::state::TcpState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The numbers of a `close_wait_leak` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeakDetails {
    /// `client` or `server`: the role of the side left in CLOSE_WAIT.
    pub leaking_side: Side,
    /// The IP address of the leaking side; `null` when many client hosts leak (a
    /// server-side capture), then `leaking_hosts` has them.
    pub leaking_host: Option<IpAddr>,
    /// On a server-side capture, the leaking client hosts: how many, the top ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaking_hosts: Option<HostTable>,
    /// The other end: the service (`ip:port`) when the client leaks, the client host(s)
    /// when the server leaks.
    pub remote: String,
    /// The server endpoint of these connections.
    #[serde(serialize_with = "ser_addr")]
    pub service: SocketAddr,
    /// All connections to that service in the capture.
    pub connections_to_service: u64,
    /// Seconds from the peer's FIN to the end of the capture: how long each socket has been
    /// in CLOSE_WAIT (at least).
    pub durations: Spread,
    /// Seconds the connection had been idle when the peer sent its FIN.
    pub idle_before_fin: Option<Spread>,
}

/// One leaking group's members. Kept exactly: a socket in CLOSE_WAIT is still open at the
/// end of the capture, so the analysis holds its whole connection state until then anyway;
/// 24 bytes more per leaked socket do not change how memory grows.
#[derive(Default)]
struct Group {
    /// (the CLOSE_WAIT clock, id, segments recorded) per connection.
    conns: Vec<(Clock, u64, bool)>,
    idle: Sketch,
    /// Client hosts, when the server leaks.
    clients: Hosts,
    /// Leaking client hosts, when the client leaks.
    leakers: Hosts,
}

/// When a socket's CLOSE_WAIT started: at the peer's FIN (measured to the capture's end,
/// known only when the capture has been read), or a length the report already gives.
#[derive(Clone, Copy)]
enum Clock {
    Since(f64),
    For(f64),
}

impl Clock {
    fn secs(self, capture_end: f64) -> f64 {
        match self {
            Clock::Since(at) => (capture_end - at).max(0.0),
            Clock::For(s) => s,
        }
    }
}

/// Leaking connections per (leaking side, leaking host, service); on a server-side
/// capture leaking clients are grouped per service (host `None`).
#[derive(Default)]
pub(super) struct Acc {
    groups: BTreeMap<(Side, Option<IpAddr>, SocketAddr), Group>,
}

impl Acc {
    /// `many_clients`: the capture is server-side, group leaking clients per service.
    pub fn add(&mut self, r: &ConnectionReport, many_clients: bool) {
        let Some(side) = leaking_side(r) else { return };
        let host = (side == Side::Server || !many_clients).then(|| r.addr(side).ip());
        let g = self.groups.entry((side, host, r.server)).or_default();
        if side == Side::Client {
            g.leakers.add(r.client.ip(), 1);
        }
        g.conns.push((clock(r, side), r.id, r.segments.is_some()));
        if let Some(i) = r.close.idle_before_close {
            g.idle.add(i);
        }
        if side == Side::Server {
            g.clients.add(r.client.ip(), 1);
        }
    }

    /// Regroups leaking clients per service: the capture turned out server-side.
    pub fn fold(&mut self) {
        let groups = std::mem::take(&mut self.groups);
        for ((side, host, service), g) in groups {
            let host = if side == Side::Client { None } else { host };
            let into = self.groups.entry((side, host, service)).or_default();
            into.conns.extend(g.conns);
            into.idle.merge(g.idle);
            into.clients.merge(g.clients);
            into.leakers.merge(g.leakers);
        }
    }

    /// `idle` tells how late answered closes were answered, for the hedge.
    pub fn finish(self, ctx: &Ctx, idle: &IdleTimeouts) -> Vec<Finding> {
        self.groups
            .into_iter()
            .map(|((side, host, service), g)| {
                let answered = match side {
                    Side::Client => idle
                        .server
                        .get(&service)
                        .and_then(|(_, g)| g.answers.spread()),
                    Side::Server => None,
                };
                let server_timeout = idle.server_timeout(service);
                finding(
                    ctx,
                    side,
                    host,
                    service,
                    &g,
                    answered.map(|a| a.max),
                    server_timeout,
                )
            })
            .collect()
    }
}

/// The side still in CLOSE_WAIT at the end of the capture, if any.
pub(super) fn leaking_side(r: &ConnectionReport) -> Option<Side> {
    let side = r.close.who_failed_to_respond?;
    (r.state(side) == TcpState::CloseWait).then_some(side)
}

/// Seconds from the peer's FIN to the end of the capture, once that is known.
fn clock(r: &ConnectionReport, side: Side) -> Clock {
    match (r.close.first, r.close.first_by, r.close.first_at) {
        (Some(CloseSignal::Fin), Some(by), Some(at)) if by == side.other() => Clock::Since(at),
        _ => Clock::For(r.close.waiting_for.unwrap_or(0.0)),
    }
}

/// "after 1.0 s idle", "right after the last data", "".
pub(super) fn idle_phrase(idle: Option<&Spread>) -> String {
    match idle {
        Some(s) if s.median >= 0.1 => {
            if s.is_tight() {
                format!(" after {} idle", secs(s.median))
            } else {
                format!(
                    " after {} to {} idle (median {})",
                    secs(s.p10),
                    secs(s.p90),
                    secs(s.median)
                )
            }
        }
        Some(_) => " right after the last data".to_string(),
        None => String::new(),
    }
}

fn finding(
    ctx: &Ctx,
    side: Side,
    host: Option<IpAddr>,
    service: SocketAddr,
    g: &Group,
    slowest_answer: Option<f64>,
    server_timeout: Option<f64>,
) -> Finding {
    let table = host.is_none().then(|| g.leakers.table());
    let n = g.conns.len() as u64;
    let total = ctx.per_service.get(&service).copied().unwrap_or(n);
    let durations = Spread::of(g.conns.iter().map(|c| c.0.secs(ctx.capture_end)))
        .expect("a group has at least one connection");
    let idle = g.idle.spread();
    let closer = side.other();
    let idle_text = idle_phrase(idle.as_ref());

    let mut remotes: Vec<String> = Vec::new();
    if side == Side::Server {
        match g.clients.few(3) {
            Some(few) => remotes = few.iter().map(|h| h.to_string()).collect(),
            None => remotes.push(g.clients.table().hosts_text("client host", "client hosts")),
        }
    }
    let remote = match side {
        Side::Client => service.to_string(),
        Side::Server => remotes.join(", "),
    };

    let how_many = if table.is_some() {
        format!("{n} of the {total} connections")
    } else if n == 1 && total == 1 {
        "Your connection".to_string()
    } else if n == total {
        format!("All {n} of your connections")
    } else {
        format!("{n} of your {total} connections")
    };
    let them = if n == 1 { "it" } else { "them" };
    let summary = match side {
        // The leaking hosts are a subset of the service's clients: name them apart from
        // the service's total so the headline never says "701 connections from 41 hosts".
        Side::Client if table.is_some() => format!(
            "{how_many} to {service} (from {}) {} closed by the server{idle_text} and the \
             clients never closed {them} (CLOSE_WAIT).",
            table
                .as_ref()
                .map_or_else(String::new, |t| t.hosts_text("client host", "client hosts")),
            if n == 1 { "was" } else { "were" }
        ),
        Side::Client => format!(
            "{how_many} to {service} {} closed by the server{idle_text} and your client \
             never closed {them} (CLOSE_WAIT).",
            if n == 1 { "was" } else { "were" }
        ),
        Side::Server => format!(
            "{how_many} to your server {service} {} closed by the client ({remote}){idle_text} \
             and your server never closed {them} (CLOSE_WAIT).",
            if n == 1 { "was" } else { "were" }
        ),
    };

    // The hedge matters only when the capture ended before a late but answering
    // application would have answered: within SLOW_ANSWER_SECS of the last FIN, or within
    // the slowest answer seen to this service.
    let wait_enough = slowest_answer.unwrap_or(0.0).max(SLOW_ANSWER_SECS);
    let short = durations.max < wait_enough;
    let mechanism = format!(
        "The {closer} sent FIN{idle_text}; the {side}'s kernel acknowledged it and the socket \
         entered CLOSE_WAIT, which no timer ends: it lasts until the application calls \
         close() (RFC 9293 §3.6). {} Meanwhile each one holds a file descriptor, and the \
         {closer}'s half sits in FIN_WAIT_2 until tcp_fin_timeout (60 s on Linux) drops it; \
         a request sent later on such a connection is answered by RST.{}",
        match side {
            Side::Client =>
                "A pool that does not read from idle connections never sees \
                             the EOF, so it neither closes nor evicts them.",
            Side::Server =>
                "A handler that does not close the socket when read() returns 0 \
                             (EOF) leaves it there forever.",
        },
        if short {
            format!(
                " The capture ended only {} after the last of these FINs; an application \
                 that closes on EOF answers within milliseconds, usually with its own FIN \
                 instead of the bare ACK seen here, but a pool that closes late answers \
                 {}, so a longer capture would settle it.",
                secs(durations.max),
                match slowest_answer {
                    Some(a) if a >= SLOW_ANSWER_SECS =>
                        format!("after up to {} (as others did here)", secs(a)),
                    _ => format!("after {} or more", secs(SLOW_ANSWER_SECS)),
                }
            )
        } else {
            String::new()
        }
    );
    let advice = match side {
        Side::Client => {
            // The idle_timeout finding's number when there is one, so the whole diagnosis
            // quotes one timeout; else this group's own idle before the FIN.
            let timeout = match server_timeout.or(idle.as_ref().map(|s| s.median)) {
                Some(t) if t >= 0.1 => format!("below {}", secs(t)),
                _ => "below the server's keep-alive timeout".to_string(),
            };
            format!(
                "Your connection pool does not notice server-side closes. Set its idle timeout \
                 {timeout}, or evict idle connections, or have the server keep connections \
                 longer."
            )
        }
        Side::Server => "Your server does not close connections after the client's FIN. Close \
                         the socket when read() returns 0 (EOF), and look for code paths \
                         (errors, timeouts) that drop a connection without closing it."
            .to_string(),
    };

    let who = match (&table, host) {
        (Some(t), _) => t.hosts_text("client host", "client hosts"),
        (None, Some(h)) => h.to_string(),
        (None, None) => String::new(),
    };
    let mut facts = vec![format!(
        "leaking side: {side} {who}; remote: {remote}; {n} of {total} connections to \
         {service} left in CLOSE_WAIT"
    )];
    if let Some(t) = &table {
        facts.push(format!("leaking client hosts: {}", t.text()));
    }
    facts.extend([format!(
        "in CLOSE_WAIT from the {closer}'s FIN to the end of the capture: min {}, \
             median {}, max {}",
        secs_precise(durations.min),
        secs_precise(durations.median),
        secs_precise(durations.max)
    )]);
    if let Some(s) = &idle {
        facts.push(format!(
            "idle before the {closer}'s FIN: {}",
            spread_text(s)
        ));
    }

    Finding {
        id: FindingId::CloseWaitLeak,
        severity: Severity::Error,
        summary,
        count: n,
        evidence: {
            let mut ids: Vec<u64> = g.conns.iter().map(|c| c.1).collect();
            ids.sort_unstable();
            ids.truncate(MAX_EVIDENCE);
            ids
        },
        example: {
            let mut m = Members::default();
            for &(c, id, segs) in &g.conns {
                m.add(id, c.secs(ctx.capture_end), segs);
            }
            m.example()
        },
        mechanism,
        advice,
        details: Details::CloseWaitLeak(LeakDetails {
            leaking_side: side,
            leaking_host: host,
            leaking_hosts: table,
            remote,
            service,
            connections_to_service: total,
            durations,
            idle_before_fin: idle,
        }),
        facts,
        group: super::group_of(side, host, service),
    }
}
