//! `resets`, `half_open`, `refused`, `syn_timeout`: connections that ended abnormally.
//!
//! - `refused`: the SYN was answered by RST (RFC 9293 §3.10.7.1: nothing listens).
//! - `syn_timeout`: SYNs never answered (dropped by a firewall, host down, backlog full).
//! - `half_open`: a bare RST (no ACK flag) answering data, with no FIN before: the sender
//!   had no socket for the connection any more (§3.10.7.1 "If the state is CLOSED (i.e.,
//!   TCB does not exist) … a reset is sent in response to any incoming segment"), so the
//!   other side had been talking to nobody.
//! - `resets`: other aborts, per resetting side and service (SO_LINGER 0, close() with
//!   unread data: RFC 2525 §2.17).
//!
//! Connections already explained by `late_write_rst` or `dead_peer` are left out.

use super::acc::{HostTable, Hosts, Members, Sketch};
use super::keepalive::trace;
use super::late_write::is_late_write;
use super::stats::{secs, Spread};
use super::{plural, Details, Finding, FindingId, Severity};
use closewait_core::model::{ser_addr, CloseKind, ConnectionReport, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The numbers of a `resets` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResetDetails {
    /// The side that sent the RST, and its address.
    pub reset_by: Side,
    /// `null` for clients on a server-side capture (then `hosts` has them).
    pub host: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostTable>,
    #[serde(serialize_with = "ser_addr")]
    pub service: SocketAddr,
    /// RST with no FIN before it.
    pub aborts: u64,
    /// RST after a FIN (that the resetting side did not send first).
    pub after_fin: u64,
}

/// The numbers of a `refused` or `syn_timeout` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Failed attempts.
    pub attempts: u64,
    /// Connections to the same endpoint that did get established.
    pub established: u64,
    /// SYNs sent by the failed attempts, retransmissions included.
    pub syns: u64,
    /// Seconds from the first to the last SYN of each failed attempt (`syn_timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrying_for: Option<Spread>,
}

/// The numbers of a `half_open` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HalfOpenDetails {
    /// The side that had no socket any more.
    pub forgot: Side,
    /// `null` for clients on a server-side capture (then `hosts` has them).
    pub host: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostTable>,
    #[serde(serialize_with = "ser_addr")]
    pub service: SocketAddr,
}

fn established(r: &ConnectionReport) -> bool {
    !matches!(
        r.close.kind,
        CloseKind::Refused | CloseKind::SynTimeout | CloseKind::HandshakeIncomplete
    )
}

/// True when the RST that aborted `r` was bare (no ACK) and answered data or a probe from
/// the peer: the resetting side had no socket. Needs segment records.
fn is_half_open(r: &ConnectionReport) -> bool {
    if r.close.kind != CloseKind::Abort {
        return false;
    }
    let (Some(segs), Some(by)) = (&r.segments, r.close.rst_by) else {
        return false;
    };
    let Some(pos) = segs
        .iter()
        .position(|s| s.from == by && s.flags.contains("RST"))
    else {
        return false;
    };
    let bare = !segs[pos].flags.contains("ACK");
    let answered_peer = pos > 0 && segs[pos - 1].from == by.other() && {
        let p = &segs[pos - 1];
        p.len > 0 || !p.notes.is_empty()
    };
    bare && answered_peer
}

/// RST after unanswered keep-alive probes: reported as `dead_peer`.
fn is_dead_peer(r: &ConnectionReport) -> bool {
    r.close
        .rst_by
        .and_then(|s| trace(r, s))
        .is_some_and(|t| t.gave_up_after.is_some())
}

/// Failed attempts to one server.
#[derive(Default)]
struct Failed {
    members: Members,
    syns: u64,
    durations: Sketch,
}

/// Resets by one (side, host, service).
#[derive(Default)]
struct Resets {
    members: Members,
    after_fin: u64,
    /// The resetting hosts.
    hosts: Hosts,
}

impl Resets {
    fn merge(&mut self, o: Resets) {
        self.members.merge(o.members);
        self.after_fin += o.after_fin;
        self.hosts.merge(o.hosts);
    }
}

/// Key of a reset group: (resetting side, its host, service); the host is `None` for
/// clients on a server-side capture.
type ResetKey = (Side, Option<IpAddr>, SocketAddr);

/// Abnormal endings per server or per (resetting side, host, service).
#[derive(Default)]
pub(super) struct Acc {
    established: BTreeMap<SocketAddr, u64>,
    refused: BTreeMap<SocketAddr, Failed>,
    timeouts: BTreeMap<SocketAddr, Failed>,
    half: BTreeMap<ResetKey, Resets>,
    resets: BTreeMap<ResetKey, Resets>,
}

impl Acc {
    /// Regroups the clients' resets per service: the capture turned out server-side.
    pub fn fold(&mut self) {
        for map in [&mut self.half, &mut self.resets] {
            for ((by, host, service), g) in std::mem::take(map) {
                let host = if by == Side::Client { None } else { host };
                map.entry((by, host, service)).or_default().merge(g);
            }
        }
    }

    /// `many_clients`: the capture is server-side, group the clients per service.
    pub fn add(&mut self, r: &ConnectionReport, many_clients: bool) {
        if established(r) {
            *self.established.entry(r.server).or_default() += 1;
        }
        let segs = r.segments.is_some();
        let failed = match r.close.kind {
            CloseKind::Refused => self.refused.entry(r.server).or_default(),
            CloseKind::SynTimeout => self.timeouts.entry(r.server).or_default(),
            CloseKind::Abort | CloseKind::FinThenRst => {
                let Some(by) = r.close.rst_by else { return };
                if is_late_write(r) || is_dead_peer(r) {
                    return;
                }
                let ip = r.addr(by).ip();
                let key = (
                    by,
                    (by == Side::Server || !many_clients).then_some(ip),
                    r.server,
                );
                let g = if is_half_open(r) {
                    self.half.entry(key).or_default()
                } else {
                    self.resets.entry(key).or_default()
                };
                g.members.add(r.id, r.duration, segs);
                g.after_fin += u64::from(r.close.kind == CloseKind::FinThenRst);
                g.hosts.add(ip, 1);
                return;
            }
            _ => return,
        };
        failed.members.add(r.id, r.duration, segs);
        failed.syns += r.packets.client;
        failed.durations.add(r.duration);
    }

    pub fn finish(self) -> Vec<Finding> {
        let mut out = Vec::new();
        let ok = |server| self.established.get(server).copied().unwrap_or(0);
        for (server, g) in &self.refused {
            out.push(failed(FindingId::Refused, *server, g, ok(server)));
        }
        for (server, g) in &self.timeouts {
            out.push(failed(FindingId::SynTimeout, *server, g, ok(server)));
        }
        for ((by, host, service), g) in &self.half {
            out.push(half_open(*by, *host, *service, g));
        }
        for ((by, host, service), g) in &self.resets {
            out.push(reset(*by, *host, *service, g));
        }
        out
    }
}

fn failed(id: FindingId, server: SocketAddr, g: &Failed, ok: u64) -> Finding {
    let n = g.members.n;
    let syns = g.syns;
    let retrying = (id == FindingId::SynTimeout)
        .then(|| g.durations.spread())
        .flatten();
    let attempts = plural(n, "connection attempt", "connection attempts");
    let ok_text = if ok == 0 {
        "none succeeded".to_string()
    } else {
        format!(
            "{ok} other {} succeeded",
            if ok == 1 { "connection" } else { "connections" }
        )
    };
    let (summary, mechanism, advice) = if id == FindingId::Refused {
        (
            format!(
                "{attempts} to {server} {} refused: the SYN was answered by RST ({ok_text}).",
                if n == 1 { "was" } else { "were" }
            ),
            "A RST answering a SYN means no socket listens on that address and port (RFC \
             9293 §3.10.7.1), or a firewall rejects the connection with a reset. connect() \
             fails at once with ECONNREFUSED."
                .to_string(),
            format!(
                "Check that the service is running and listening on {server} (`ss -ltn` on the \
                 server), that the client uses the right address and port, and for firewall \
                 REJECT rules."
            ),
        )
    } else {
        let longest = retrying.as_ref().map(|s| s.max).unwrap_or(0.0);
        (
            format!(
                "{attempts} to {server} got no answer: {} over up to {} ({ok_text}).",
                plural(syns, "SYN", "SYNs"),
                secs(longest)
            ),
            "An unanswered SYN is retransmitted with backoff (Linux: tcp_syn_retries, 6 by \
             default, about 127 s) until connect() fails with ETIMEDOUT. No answer at all \
             means the SYNs or the SYN,ACKs are dropped: the host is down or unreachable, a \
             firewall drops them, or the listen queue is full."
                .to_string(),
            format!(
                "Check the route and firewall DROP rules towards {server}, whether the server \
                 is up, and its listen backlog (nstat ListenOverflows/ListenDrops); give the \
                 client a connect timeout shorter than its callers' timeouts."
            ),
        )
    };
    let mut facts = vec![format!(
        "{n} failed, {ok} established to {server}; {} sent by the failed attempts",
        plural(syns, "SYN", "SYNs")
    )];
    if let Some(s) = &retrying {
        facts.push(format!(
            "retrying for min {}, median {}, max {} (until the capture ended or the client \
             gave up)",
            secs(s.min),
            secs(s.median),
            secs(s.max)
        ));
    }
    Finding {
        id,
        severity: if ok == 0 {
            Severity::Error
        } else {
            Severity::Warning
        },
        summary,
        count: n,
        evidence: g.members.ids(),
        example: g.members.example(),
        mechanism,
        advice,
        details: Details::Failed(FailedDetails {
            server,
            attempts: n,
            established: ok,
            syns,
            retrying_for: retrying,
        }),
        facts,
        group: server.to_string(),
    }
}

fn who(side: Side, host: Option<IpAddr>, service: SocketAddr, g: &Resets) -> String {
    match (side, host) {
        (Side::Client, Some(host)) => format!("The client {host}"),
        (Side::Client, None) => {
            let t = g.hosts.table();
            format!("Clients ({}{} hosts)", t.about(), t.hosts)
        }
        (Side::Server, _) => format!("The server {service}"),
    }
}

/// The host table of a group folded over many client hosts, and its line for people.
fn table(host: Option<IpAddr>, g: &Resets) -> (Option<HostTable>, Option<String>) {
    if host.is_some() {
        return (None, None);
    }
    let t = g.hosts.table();
    let line = format!("client hosts: {}", t.text());
    (Some(t), Some(line))
}

fn half_open(by: Side, host: Option<IpAddr>, service: SocketAddr, g: &Resets) -> Finding {
    let n = g.members.n;
    let (hosts, hosts_line) = table(host, g);
    let other = by.other();
    Finding {
        id: FindingId::HalfOpen,
        severity: Severity::Warning,
        summary: format!(
            "{} had no socket any more for {} {} and answered the {other}'s segments with \
             a bare RST: the {other} had been using a half-open connection.",
            who(by, host, service, g),
            plural(n, "connection", "connections"),
            match by {
                Side::Client => format!("to {service}"),
                Side::Server => "of its clients".to_string(),
            }
        ),
        count: n,
        evidence: g.members.ids(),
        example: g.members.example(),
        mechanism: format!(
            "A RST without ACK flag, answering data on an established connection with no FIN \
             before it, comes from a host with no socket for that connection (RFC 9293 \
             §3.10.7.1): the {by} restarted, crashed or dropped the connection silently \
             (or a middlebox lost its state), and the {other} did not know."
        ),
        advice: "Use TCP keep-alive or application heartbeats on long-lived connections so \
                 the survivor notices, and reconnect (and retry idempotent requests) on \
                 ECONNRESET."
            .to_string(),
        details: Details::HalfOpen(HalfOpenDetails {
            forgot: by,
            host,
            hosts,
            service,
        }),
        facts: [format!(
            "bare RST from the {by} answering the {other}'s data, no FIN before"
        )]
        .into_iter()
        .chain(hosts_line)
        .collect(),
        group: super::group_of(by, host, service),
    }
}

fn reset(by: Side, host: Option<IpAddr>, service: SocketAddr, g: &Resets) -> Finding {
    let n = g.members.n;
    let (hosts, hosts_line) = table(host, g);
    let after_fin = g.after_fin;
    let aborts = n - after_fin;
    let whom = match by {
        Side::Client => format!("to {service}"),
        Side::Server => "of its clients".to_string(),
    };
    let advice = match by {
        Side::Client => "If the client sets SO_LINGER to 0 to avoid TIME_WAIT, make sure no \
                         response is lost and prefer a shorter idle timeout instead; otherwise \
                         read the whole response before close()."
            .to_string(),
        Side::Server => "Have the server read the whole request (including pipelined ones) \
                         before close(), or shut down writing first (shutdown(SHUT_WR)) and \
                         drain; do not set SO_LINGER 0 unless the peer can tolerate \
                         ECONNRESET."
            .to_string(),
    };
    Finding {
        id: FindingId::Resets,
        severity: Severity::Warning,
        summary: format!(
            "{} aborted {} {whom} with RST instead of closing with FIN.",
            who(by, host, service, g),
            plural(n, "connection", "connections")
        ),
        count: n,
        evidence: g.members.ids(),
        example: g.members.example(),
        mechanism: "A RST instead of a FIN is an abortive close: SO_LINGER with a zero \
                    timeout, or close() with unread data in the receive buffer (Linux then \
                    sends RST, RFC 2525 §2.17). The socket skips TIME_WAIT, data still in \
                    flight is discarded, and the peer's next read or write fails with \
                    ECONNRESET."
            .to_string(),
        advice,
        details: Details::Resets(ResetDetails {
            reset_by: by,
            host,
            hosts,
            service,
            aborts,
            after_fin,
        }),
        facts: [format!(
            "{aborts} RST with no FIN before, {after_fin} RST after the peer's FIN"
        )]
        .into_iter()
        .chain(hosts_line)
        .collect(),
        group: super::group_of(by, host, service),
    }
}
