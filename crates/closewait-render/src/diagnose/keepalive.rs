//! `keepalive` and `dead_peer`: TCP keep-alive probes and what they found.
//!
//! Linux's keep-alive timer (`tcp_keepalive_timer`, RFC 1122 §4.2.3.6) sends a probe (an
//! ACK with `seq = SND.UNA − 1` and no data) once the connection has received nothing for
//! `tcp_keepalive_time` (per socket: `TCP_KEEPIDLE`); while probes go unanswered it sends
//! another every `tcp_keepalive_intvl` (`TCP_KEEPINTVL`), and after `tcp_keepalive_probes`
//! (`TCP_KEEPCNT`) unanswered ones it resets the connection and reports ETIMEDOUT. An
//! answered probe counts as traffic, so the next one comes `tcp_keepalive_time` after the
//! answer. From the segment records closewait therefore measures:
//!
//! - time: from the last segment received from the peer to a probe (answered regime);
//! - intvl: between consecutive unanswered probes, and from the last one to the RST;
//! - probes: how many unanswered probes preceded the prober's RST.
//!
//! Without segment records only the counts (`tcp.*.keepalives`, `keepalive_acks`) are
//! known, and the settings stay `null`.

use super::acc::{HostTable, Hosts, Members, Sketch};
use super::stats::{secs, secs_precise, Spread};
use super::{plural, Ctx, Details, Finding, FindingId, Severity};
use closewait_core::model::{ser_addr, CloseKind, ConnectionReport, SegmentNote, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Linux defaults: `tcp_keepalive_time` 7200 s, `tcp_keepalive_intvl` 75 s,
/// `tcp_keepalive_probes` 9.
pub const LINUX_DEFAULTS: (u64, u64, u64) = (7200, 75, 9);

/// Inferred keep-alive settings of one host (medians over its connections).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KeepaliveSettings {
    /// Seconds of idleness before a probe (`tcp_keepalive_time` / `TCP_KEEPIDLE`).
    pub time: Option<f64>,
    /// Seconds between unanswered probes (`tcp_keepalive_intvl` / `TCP_KEEPINTVL`).
    pub intvl: Option<f64>,
    /// Unanswered probes before giving up (`tcp_keepalive_probes` / `TCP_KEEPCNT`).
    pub probes: Option<u64>,
    /// The whole-second values these most likely come from (the settings are in seconds).
    pub tcp_keepalive_time: Option<u64>,
    pub tcp_keepalive_intvl: Option<u64>,
    pub tcp_keepalive_probes: Option<u64>,
    /// Measurements behind each value.
    pub time_samples: u64,
    pub intvl_samples: u64,
    pub probes_samples: u64,
}

/// The numbers of a `keepalive` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeepaliveDetails {
    /// The side that sends the probes, and its address (`null` for the clients of a
    /// service on a server-side capture).
    pub prober: Side,
    pub host: Option<IpAddr>,
    /// On a server-side capture, the service the probing clients connect to.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_addr"
    )]
    pub service: Option<SocketAddr>,
    /// On a server-side capture, the probing client hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hosts: Option<HostTable>,
    pub connections: u64,
    pub probes_sent: u64,
    pub probes_answered: u64,
    pub settings: KeepaliveSettings,
}

/// The numbers of a `dead_peer` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadPeerDetails {
    pub prober: Side,
    /// The prober's address (`null` for the clients of a service on a server-side capture).
    pub host: Option<IpAddr>,
    /// The endpoint that stopped answering; when the server probes the clients of a
    /// server-side capture, the service whose clients did.
    #[serde(serialize_with = "ser_addr")]
    pub peer: SocketAddr,
    /// On a server-side capture, the client hosts: the probing ones, or (`peer_is_service`)
    /// the ones that stopped answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hosts: Option<HostTable>,
    /// Connections the prober reset after unanswered probes.
    pub reset: u64,
    /// Connections whose last probes were still unanswered at the end of the capture.
    pub unanswered_at_end: u64,
    /// Seconds from the peer's last segment to the prober's RST.
    pub silent_before_reset: Option<Spread>,
}

/// What the probes of one side of one connection show.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ProbeTrace {
    pub probes: u64,
    pub answered: u64,
    pub idle: Vec<f64>,
    pub intervals: Vec<f64>,
    /// Unanswered probes before the prober's RST.
    pub gave_up_after: Option<u64>,
    /// Seconds from the peer's last segment to the prober's RST.
    pub silent_before_reset: Option<f64>,
    /// Unanswered probes at the end of the connection, without a RST.
    pub unanswered_at_end: u64,
    /// True when measured from segment records, false when only counted.
    pub timed: bool,
}

/// The keep-alive probes `side` sent on `r`.
pub(crate) fn trace(r: &ConnectionReport, side: Side) -> Option<ProbeTrace> {
    let probes = r.tcp.get(side).keepalives;
    if probes == 0 {
        return None;
    }
    let Some(segs) = &r.segments else {
        let answered = r.tcp.get(side.other()).keepalive_acks;
        let gave_up =
            r.close.kind == CloseKind::Abort && r.close.rst_by == Some(side) && answered < probes;
        return Some(ProbeTrace {
            probes,
            answered,
            gave_up_after: gave_up.then_some(probes - answered),
            ..ProbeTrace::default()
        });
    };
    let mut t = ProbeTrace {
        timed: true,
        ..ProbeTrace::default()
    };
    let mut last_rx: Option<f64> = None;
    let mut pending: Option<f64> = None;
    let mut run = 0u64;
    for s in segs {
        if s.from != side {
            if s.notes.contains(&SegmentNote::KeepAliveAck) {
                t.answered += 1;
            }
            last_rx = Some(s.ts);
            pending = None;
            run = 0;
            continue;
        }
        if s.notes.contains(&SegmentNote::KeepAlive) {
            t.probes += 1;
            match (pending, last_rx) {
                (Some(prev), _) => t.intervals.push(s.ts - prev),
                (None, Some(rx)) => t.idle.push(s.ts - rx),
                (None, None) => {}
            }
            pending = Some(s.ts);
            run += 1;
        } else if s.flags.contains("RST") {
            if let Some(prev) = pending {
                // Linux resets at the timer tick after the last probe, one interval on.
                t.intervals.push(s.ts - prev);
                t.gave_up_after = Some(run);
                t.silent_before_reset = last_rx.map(|rx| s.ts - rx);
                run = 0;
            }
            break;
        } else if s.len > 0 {
            pending = None;
            run = 0;
        }
    }
    t.unanswered_at_end = run;
    Some(t)
}

/// The whole number of seconds a measured value most likely comes from (timer slack makes
/// a 1 s setting show as 1.02 s), if it is close to one.
fn whole_seconds(x: f64) -> Option<u64> {
    let r = x.round();
    (r >= 1.0 && (x - r).abs() <= 0.05 * r + 0.05).then_some(r as u64)
}

/// The lower median of counted values.
fn median_u64(counts: &BTreeMap<u64, u64>) -> Option<u64> {
    let n: u64 = counts.values().sum();
    if n == 0 {
        return None;
    }
    let k = (n - 1) / 2;
    let mut seen = 0;
    counts.iter().find_map(|(&v, &c)| {
        seen += c;
        (k < seen).then_some(v)
    })
}

/// The probes of one prober host (or of a service's client hosts), added up.
#[derive(Default)]
struct Prober {
    members: Members,
    sent: u64,
    answered: u64,
    timed: bool,
    idle: Sketch,
    intervals: Sketch,
    /// Unanswered probes before giving up → connections.
    gave_up: BTreeMap<u64, u64>,
    peers: BTreeMap<Peer, Dead>,
    /// The probing hosts.
    hosts: Hosts,
}

impl Prober {
    fn merge(&mut self, o: Prober) {
        self.members.merge(o.members);
        self.sent += o.sent;
        self.answered += o.answered;
        self.timed |= o.timed;
        self.idle.merge(o.idle);
        self.intervals.merge(o.intervals);
        merge_counts(&mut self.gave_up, o.gave_up);
        for (peer, d) in o.peers {
            self.peers.entry(peer).or_default().merge(d);
        }
        self.hosts.merge(o.hosts);
    }
}

fn merge_counts(into: &mut BTreeMap<u64, u64>, from: BTreeMap<u64, u64>) {
    for (k, n) in from {
        *into.entry(k).or_default() += n;
    }
}

/// Who stopped answering a prober.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// One endpoint.
    Endpoint(SocketAddr),
    /// Clients of this service, when the server probes on a server-side capture.
    ClientsOf(SocketAddr),
}

/// The connections of one peer that stopped answering a prober.
#[derive(Default)]
struct Dead {
    members: Members,
    reset: u64,
    silent: Sketch,
    gave_up: BTreeMap<u64, u64>,
    /// The client hosts (probing, or not answering).
    hosts: Hosts,
}

impl Dead {
    fn merge(&mut self, o: Dead) {
        self.members.merge(o.members);
        self.reset += o.reset;
        self.silent.merge(o.silent);
        merge_counts(&mut self.gave_up, o.gave_up);
        self.hosts.merge(o.hosts);
    }
}

/// Keep-alive probes per (probing side, host, service): the findings are per prober host,
/// all its services together; on a server-side capture the probing clients are grouped per
/// service instead (host `None`) and the clients the server gave up on per service. The
/// timings are read from the segment records as each connection is added.
#[derive(Default)]
pub(super) struct Acc {
    probers: BTreeMap<(Side, Option<IpAddr>, SocketAddr), Prober>,
    /// The capture turned out server-side (see [`Acc::fold`]).
    many_clients: bool,
}

impl Acc {
    pub fn add(&mut self, r: &ConnectionReport) {
        for side in [Side::Client, Side::Server] {
            let Some(t) = trace(r, side) else { continue };
            let host = (side == Side::Server || !self.many_clients).then(|| r.addr(side).ip());
            let p = self.probers.entry((side, host, r.server)).or_default();
            let segs = r.segments.is_some();
            p.members.add(r.id, r.tcp.get(side).keepalives as f64, segs);
            p.hosts.add(r.addr(side).ip(), 1);
            p.sent += t.probes;
            p.answered += t.answered;
            p.timed |= t.timed;
            t.idle.iter().for_each(|&x| p.idle.add(x));
            t.intervals.iter().for_each(|&x| p.intervals.add(x));
            if let Some(g) = t.gave_up_after {
                *p.gave_up.entry(g).or_default() += 1;
            }
            if t.gave_up_after.is_some() || t.unanswered_at_end >= 2 {
                let peer = match side {
                    Side::Server if self.many_clients => Peer::ClientsOf(r.server),
                    _ => Peer::Endpoint(r.addr(side.other())),
                };
                let d = p.peers.entry(peer).or_default();
                d.members.add(r.id, r.end, segs);
                d.hosts.add(r.client.ip(), 1);
                if let Some(g) = t.gave_up_after {
                    d.reset += 1;
                    *d.gave_up.entry(g).or_default() += 1;
                }
                if let Some(x) = t.silent_before_reset {
                    d.silent.add(x);
                }
            }
        }
    }

    /// Regroups the probing clients per service and the clients the server gave up on per
    /// service: the capture turned out server-side.
    pub fn fold(&mut self) {
        self.many_clients = true;
        for ((side, host, service), mut p) in std::mem::take(&mut self.probers) {
            let host = if side == Side::Client { None } else { host };
            if side == Side::Server {
                for (_, d) in std::mem::take(&mut p.peers) {
                    p.peers
                        .entry(Peer::ClientsOf(service))
                        .or_default()
                        .merge(d);
                }
            }
            self.probers
                .entry((side, host, service))
                .or_default()
                .merge(p);
        }
    }

    pub fn finish(self, ctx: &Ctx) -> Vec<Finding> {
        // A prober host's services together; a service's probing clients on their own.
        let mut groups: BTreeMap<(Side, Option<IpAddr>, Option<SocketAddr>), Prober> =
            BTreeMap::new();
        for ((side, host, service), p) in self.probers {
            let service = host.is_none().then_some(service);
            groups.entry((side, host, service)).or_default().merge(p);
        }
        let mut out = Vec::new();
        for ((side, host, service), p) in &groups {
            out.push(keepalive_finding(ctx, *side, *host, *service, p));
            for (peer, dead) in &p.peers {
                out.push(dead_peer_finding(*side, *host, *peer, dead));
            }
        }
        out
    }
}

fn ser_opt_addr<S: serde::Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => ser_addr(a, s),
        None => s.serialize_none(),
    }
}

fn settings_of(p: &Prober) -> KeepaliveSettings {
    let time = p.idle.spread();
    let intvl = p.intervals.spread();
    let probes = median_u64(&p.gave_up);
    KeepaliveSettings {
        time: time.as_ref().map(|s| s.median),
        intvl: intvl.as_ref().map(|s| s.median),
        probes,
        tcp_keepalive_time: time.as_ref().and_then(|s| whole_seconds(s.median)),
        tcp_keepalive_intvl: intvl.as_ref().and_then(|s| whole_seconds(s.median)),
        tcp_keepalive_probes: probes,
        time_samples: time.map(|s| s.n).unwrap_or(0),
        intvl_samples: intvl.map(|s| s.n).unwrap_or(0),
        probes_samples: p.gave_up.values().sum(),
    }
}

/// "the client 10.0.0.1", or "the clients (12 hosts)" of a service on a server-side capture.
fn prober_text(side: Side, host: Option<IpAddr>, hosts: &Hosts) -> String {
    match host {
        Some(h) => format!("the {side} {h}"),
        None => format!(
            "the {side}s ({})",
            hosts.table().hosts_text("host", "hosts")
        ),
    }
}

fn keepalive_finding(
    ctx: &Ctx,
    side: Side,
    host: Option<IpAddr>,
    service: Option<SocketAddr>,
    p: &Prober,
) -> Finding {
    let n = p.members.n;
    let table = host.is_none().then(|| p.hosts.table());
    let (sent, answered) = (p.sent, p.answered);
    let st = settings_of(p);
    let timed = p.timed;

    let mut parts = Vec::new();
    if let Some(t) = st.time {
        parts.push(format!("after {} idle", secs(t)));
    }
    if let Some(i) = st.intvl {
        parts.push(format!("every {} while unanswered", secs(i)));
    }
    if let Some(p) = st.probes {
        parts.push(format!("giving up after {p} unanswered"));
    }
    let how = if parts.is_empty() {
        String::new()
    } else {
        format!(" {}", parts.join(", "))
    };
    let answered_text = if answered == sent {
        "all answered".to_string()
    } else {
        format!("{answered} answered")
    };
    let summary = match service {
        // A service's clients: name the service and count its connections.
        Some(service) => format!(
            "T{} of {service} send TCP keep-alive probes{how}: {} on {n} of its {}, \
             {answered_text}.",
            &prober_text(side, host, &p.hosts)[1..],
            plural(sent, "probe", "probes"),
            plural(
                ctx.per_service.get(&service).copied().unwrap_or(n),
                "connection",
                "connections"
            )
        ),
        None => format!(
            "T{} sends TCP keep-alive probes{how}: {} on {}, {answered_text}.",
            &prober_text(side, host, &p.hosts)[1..],
            plural(sent, "probe", "probes"),
            plural(n, "connection", "connections")
        ),
    };

    let (dt, di, dp) = LINUX_DEFAULTS;
    let name = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "?".into());
    let defaults = st.tcp_keepalive_time == Some(dt)
        && st.tcp_keepalive_intvl.is_none_or(|i| i == di)
        && st.probes.is_none_or(|p| p == dp);
    let origin = if st.tcp_keepalive_time.is_none() {
        String::new()
    } else if defaults {
        " These are the Linux defaults.".to_string()
    } else {
        format!(
            " Likely settings: TCP_KEEPIDLE={}, TCP_KEEPINTVL={}, TCP_KEEPCNT={} on the \
             socket (or the sysctls tcp_keepalive_time/intvl/probes; Linux defaults \
             {dt}/{di}/{dp}).",
            name(st.tcp_keepalive_time),
            name(st.tcp_keepalive_intvl),
            name(st.tcp_keepalive_probes)
        )
    };
    let mechanism = format!(
        "After tcp_keepalive_time without receiving anything, the kernel sends a probe (an \
         ACK one byte behind, no data); an answer proves the peer alive, and after \
         tcp_keepalive_probes unanswered probes tcp_keepalive_intvl apart it resets the \
         connection (ETIMEDOUT).{origin}{}",
        if st.intvl.is_none() && timed {
            " Every probe was answered, so the interval and count cannot be seen here."
        } else if !timed {
            " Segment records were not kept, so only the counts are known."
        } else {
            ""
        }
    );
    let advice = "Keep-alive finds dead peers and keeps NAT and firewall state alive; it does \
                  not close idle connections the peer has closed (that takes a FIN). Keep \
                  its idle time below the idle timeout of any firewall or NAT on the path."
        .to_string();
    let mut facts = vec![format!(
        "{} probes sent, {} answered, on {}",
        sent,
        answered,
        plural(n, "connection", "connections")
    )];
    if let Some(t) = &table {
        facts.push(format!("probing client hosts: {}", t.text()));
    }
    let opt = |v: Option<f64>| v.map(secs_precise).unwrap_or_else(|| "unknown".into());
    facts.push(format!(
        "idle before a probe {} (n={}), interval {} (n={}), probes before giving up {} (n={})",
        opt(st.time),
        st.time_samples,
        opt(st.intvl),
        st.intvl_samples,
        st.probes
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into()),
        st.probes_samples
    ));
    Finding {
        id: FindingId::Keepalive,
        severity: Severity::Info,
        summary,
        count: n,
        evidence: p.members.ids(),
        example: p.members.example(),
        mechanism,
        advice,
        details: Details::Keepalive(KeepaliveDetails {
            prober: side,
            host,
            service,
            client_hosts: table,
            connections: n,
            probes_sent: sent,
            probes_answered: answered,
            settings: st,
        }),
        facts,
        group: match (host, service) {
            (Some(h), _) => format!("{side} {h}"),
            (None, s) => format!("{side} {}", s.map(|s| s.to_string()).unwrap_or_default()),
        },
    }
}

fn dead_peer_finding(side: Side, host: Option<IpAddr>, peer: Peer, dead: &Dead) -> Finding {
    let n = dead.members.n;
    let folded = host.is_none() || matches!(peer, Peer::ClientsOf(_));
    let table = folded.then(|| dead.hosts.table());
    let prober = prober_text(side, host, &dead.hosts);
    let (peer, peer_text, peer_name, answer) = match peer {
        Peer::Endpoint(a) => (a, a.to_string(), a.to_string(), "does"),
        Peer::ClientsOf(service) => (
            service,
            format!(
                "Clients of {service} ({})",
                dead.hosts.table().hosts_text("host", "hosts")
            ),
            format!("the clients of {service}"),
            "do",
        ),
    };
    let reset = dead.reset;
    let at_end = n - reset;
    let silent = dead.silent.spread();
    let probes = median_u64(&dead.gave_up);
    let summary = if reset > 0 {
        format!(
            "{peer_text} stopped answering: {prober} gave up on {} after {} unanswered \
             keep-alive probes and reset {}{}.",
            plural(reset, "connection", "connections"),
            probes
                .map(|p| p.to_string())
                .unwrap_or_else(|| "its".into()),
            if reset == 1 { "it" } else { "them" },
            silent
                .as_ref()
                .map(|s| format!(" ({} after the peer's last segment)", secs(s.median)))
                .unwrap_or_default()
        )
    } else {
        format!(
            "{peer_text} {answer} not answer keep-alive probes from {prober} on {} (still \
             unanswered when the capture ended).",
            plural(at_end, "connection", "connections")
        )
    };
    let mechanism = "Keep-alive probes must be acknowledged by any live TCP; none came back, \
                     so the peer host is down, unreachable, or a firewall or NAT on the path \
                     drops the connection's packets (its state expired). The prober's \
                     application gets ETIMEDOUT; the peer, if alive, still believes the \
                     connection open (half-open)."
        .to_string();
    let advice = format!(
        "Check what happened to {peer_name} (crash, failover, firewall or NAT idle timeout) at \
         that time; if a middlebox drops idle flows, set the keep-alive idle time below its \
         timeout. The application should treat ETIMEDOUT as a broken connection and reconnect."
    );
    Finding {
        id: FindingId::DeadPeer,
        severity: Severity::Warning,
        summary,
        count: n,
        evidence: dead.members.ids(),
        example: dead.members.example(),
        mechanism,
        advice,
        details: Details::DeadPeer(DeadPeerDetails {
            prober: side,
            host,
            peer,
            client_hosts: table.clone(),
            reset,
            unanswered_at_end: at_end,
            silent_before_reset: silent.clone(),
        }),
        facts: std::iter::once(format!(
            "{reset} reset by the {side} after unanswered probes, {at_end} still unanswered at \
             the end{}",
            silent
                .map(|s| format!(
                    "; peer silent for {} before the RST (median)",
                    secs(s.median)
                ))
                .unwrap_or_default()
        ))
        .chain(table.map(|t| format!("client hosts: {}", t.text())))
        .collect(),
        group: format!(
            "{side} {} {peer}",
            host.map(|h| h.to_string()).unwrap_or_default()
        ),
    }
}
