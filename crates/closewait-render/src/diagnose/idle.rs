//! `idle_timeout` and `timeout_mismatch`: who closes idle connections, after how long.
//!
//! When one side closes a connection that carried nothing for a while, the idle time
//! before its FIN (`close.idle_before_close`) measures its idle (keep-alive) timeout. The
//! same value connection after connection is a configured timer (Tomcat's
//! `keepAliveTimeout`, nginx's `keepalive_timeout`, a pool's `maxIdleTime`), so closewait
//! reports the median and spread per server endpoint (and per client host for a client
//! pool's own timeout).
//!
//! The seed's fix (5): the client's idle timeout must be shorter than the server's, so the
//! client closes first. Otherwise the server closes first: the client must notice the FIN
//! (or leak CLOSE_WAIT), a request can cross the FIN on the wire (RST), and TIME_WAIT lands
//! on the server.

use super::acc::{HostTable, Hosts, Members, Sketch};
use super::leak::leaking_side;
use super::stats::{secs, secs_precise, Spread};
use super::{Details, Finding, FindingId, Severity};
use closewait_core::model::{ser_addr, CloseSignal, ConnectionReport, Side};
use closewait_core::state::TcpState;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// An answer to the peer's FIN (the closing side's own FIN) this long after it is a slow
/// answer: an application that closes on EOF answers within milliseconds, a pool that
/// closes a connection only when it next hands it out (or sweeps) answers much later.
pub const SLOW_ANSWER_SECS: f64 = 0.5;

/// Seconds from `closer`'s FIN to the other side's FIN (its CLOSE_WAIT → LAST_ACK), when
/// `closer` closed first and the other side answered with its FIN.
pub(super) fn answer_delay(r: &ConnectionReport, closer: Side) -> Option<f64> {
    if r.close.first_by != Some(closer) || r.close.first != Some(CloseSignal::Fin) {
        return None;
    }
    let fin = r.close.first_at?;
    r.timeline
        .get(closer.other())
        .iter()
        .find(|c| c.state == TcpState::LastAck)
        .map(|c| (c.at - fin).max(0.0))
}

/// Below this much idleness a close is "right after the exchange", not an idle timeout.
const MIN_IDLE_SECS: f64 = 0.1;

/// The numbers of an `idle_timeout` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdleDetails {
    /// Who closes idle connections: `server` (its keep-alive timeout) or `client` (its
    /// pool's idle timeout).
    pub side: Side,
    /// The server endpoint.
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// For `side: client`, the client host whose pool closes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_host: Option<IpAddr>,
    /// For `side: client` on a server-side capture: the closing client hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hosts: Option<HostTable>,
    /// The median idle time before the FIN (or RST), seconds.
    pub seconds: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    /// Connections measured.
    pub samples: u64,
    /// True when the spread is narrow enough to be one configured timeout.
    pub fixed: bool,
    /// True when the closes come in sweeps (many at one instant): an evictor that closes
    /// connections idle at least its setting, which is then at most `min`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub swept: bool,
}

/// The numbers of a `timeout_mismatch` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MismatchDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// The server's inferred keep-alive timeout, seconds.
    pub server_seconds: f64,
    /// The client's inferred idle timeout, or `null` when the client never closes an idle
    /// connection first.
    #[serde(serialize_with = "ser_opt")]
    pub client_seconds: Option<f64>,
    /// Idle connections the server closed first.
    pub server_idle_closes: u64,
    /// Idle connections the client closed first.
    pub client_idle_closes: u64,
    /// Of the server's closes, how many the client never answered with its FIN.
    pub unanswered: u64,
    /// Of those, how many were still in CLOSE_WAIT at the end of the capture.
    pub leaked: u64,
    /// Seconds from the server's FIN to the client's answering FIN, over the answered
    /// idle closes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_delay: Option<Spread>,
    /// Answers that took `SLOW_ANSWER_SECS` (0.5 s) or more: sockets left in CLOSE_WAIT
    /// that long by a client that closes late.
    pub slow_answers: u64,
}

fn ser_opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.serialize_f64(*x),
        None => s.serialize_none(),
    }
}

/// What the idle closes of one group add up to.
#[derive(Default)]
pub(super) struct IdleGroup {
    pub idle: Sketch,
    pub members: Members,
    /// Of these closes, how many the other side never answered with its FIN.
    pub silent: u64,
    /// Of those, how many were still in CLOSE_WAIT at the end of the capture.
    pub leaked: u64,
    /// The closing hosts.
    pub hosts: Hosts,
    /// Seconds from the closer's FIN to the other side's answering FIN.
    pub answers: Sketch,
    /// Answers that took [`SLOW_ANSWER_SECS`] or more.
    pub slow: u64,
    /// Closes per instant (the FIN's time in [`SWEEP_WINDOW_SECS`] slots), for the first
    /// `acc::EXACT_SAMPLES` instants; later closes at new instants are counted in `lone`.
    instants: BTreeMap<i64, u64>,
    lone: u64,
}

/// Closes within this long of each other count as one instant (one sweep).
pub const SWEEP_WINDOW_SECS: f64 = 0.02;
/// A burst: at least this many closes at one instant.
const SWEEP_BURST: u64 = 3;

impl IdleGroup {
    /// (closes in bursts, bursts) when the group's closes come in sweeps: at least 80 % of
    /// them in bursts of [`SWEEP_BURST`] or more at one instant, and either the idle times
    /// vary (an evictor catches each connection at another point of its idleness) or
    /// there is a single burst (a sweep or one timer for connections opened together: the
    /// capture cannot tell, so the timeout is only bounded).
    fn sweeps(&self, idle: &Spread) -> Option<(u64, u64)> {
        // Neighbouring slots are one instant (a sweep straddling a slot boundary).
        let mut runs: Vec<u64> = Vec::new();
        let mut prev: Option<i64> = None;
        for (&slot, &c) in &self.instants {
            match (prev, runs.last_mut()) {
                (Some(p), Some(last)) if slot == p + 1 => *last += c,
                _ => runs.push(c),
            }
            prev = Some(slot);
        }
        let bursts: Vec<u64> = runs.into_iter().filter(|&c| c >= SWEEP_BURST).collect();
        let in_bursts: u64 = bursts.iter().sum();
        let n = self.members.n;
        let swept =
            !bursts.is_empty() && in_bursts * 5 >= n * 4 && (!idle.is_tight() || bursts.len() == 1);
        swept.then_some((in_bursts, bursts.len() as u64))
    }

    /// The server's idle timeout as every finding quotes it: a swept setting is at most the
    /// shortest idle seen (a client timeout between it and the median would still lose the
    /// race on some connections); a fixed one is the median.
    pub(super) fn timeout(&self, idle: &Spread) -> f64 {
        if self.sweeps(idle).is_some() {
            idle.min
        } else {
            idle.median
        }
    }
}

impl IdleGroup {
    fn add(&mut self, r: &ConnectionReport, idle: f64, closer: Side) {
        self.idle.add(idle);
        self.hosts.add(r.addr(closer).ip(), 1);
        if let Some(at) = r.close.first_at {
            let slot = (at / SWEEP_WINDOW_SECS).floor() as i64;
            if let Some(c) = self.instants.get_mut(&slot) {
                *c += 1;
            } else if self.instants.len() < super::acc::EXACT_SAMPLES {
                self.instants.insert(slot, 1);
            } else {
                self.lone += 1;
            }
        }
        if let Some(d) = answer_delay(r, closer) {
            self.answers.add(d);
            self.slow += u64::from(d >= SLOW_ANSWER_SECS);
        }
        self.members.add(
            r.id,
            r.close.idle_before_close.unwrap_or(0.0),
            r.segments.is_some(),
        );
        if r.close.who_failed_to_respond == Some(closer.other()) {
            self.silent += 1;
        }
        if leaking_side(r) == Some(closer.other()) {
            self.leaked += 1;
        }
    }

    fn merge(&mut self, o: IdleGroup) {
        self.idle.merge(o.idle);
        self.members.merge(o.members);
        self.silent += o.silent;
        self.leaked += o.leaked;
        self.hosts.merge(o.hosts);
        self.answers.merge(o.answers);
        self.slow += o.slow;
        for (slot, c) in o.instants {
            *self.instants.entry(slot).or_default() += c;
        }
        self.lone += o.lone;
    }
}

/// Idle closes per service (by the server) and per client host and service.
#[derive(Default)]
pub(super) struct Acc {
    by_server: BTreeMap<SocketAddr, IdleGroup>,
    /// Per client host and service; per service (host `None`) on a server-side capture.
    by_client: BTreeMap<(Option<IpAddr>, SocketAddr), IdleGroup>,
    /// The clients' idle closes per service, all client hosts together.
    client_all: BTreeMap<SocketAddr, Sketch>,
}

impl Acc {
    /// Regroups the clients' closes per service: the capture turned out server-side.
    pub fn fold(&mut self) {
        for ((_, service), g) in std::mem::take(&mut self.by_client) {
            self.by_client.entry((None, service)).or_default().merge(g);
        }
    }

    /// `many_clients`: the capture is server-side, group the clients per service.
    pub fn add(&mut self, r: &ConnectionReport, many_clients: bool) {
        if let Some(i) = idle_close(r, Side::Server) {
            self.by_server
                .entry(r.server)
                .or_default()
                .add(r, i, Side::Server);
        }
        if let Some(i) = idle_close(r, Side::Client) {
            let host = (!many_clients).then(|| r.client.ip());
            self.by_client
                .entry((host, r.server))
                .or_default()
                .add(r, i, Side::Client);
            self.client_all.entry(r.server).or_default().add(i);
        }
    }

    pub fn finish(self) -> IdleTimeouts {
        let mut out = IdleTimeouts {
            findings: Vec::new(),
            server: BTreeMap::new(),
            client: BTreeMap::new(),
        };
        for (service, g) in self.by_server {
            let spread = g.idle.spread().expect("non-empty group");
            out.findings
                .push(finding(Side::Server, service, None, &spread, &g));
            out.server.insert(service, (spread, g));
        }
        for ((host, service), g) in self.by_client {
            let spread = g.idle.spread().expect("non-empty group");
            out.findings
                .push(finding(Side::Client, service, host, &spread, &g));
        }
        for (service, sketch) in self.client_all {
            out.client
                .insert(service, sketch.spread().expect("non-empty group"));
        }
        out
    }
}

/// What the idle closes showed, for `mismatch` and the other modules.
pub(super) struct IdleTimeouts {
    pub findings: Vec<Finding>,
    /// Per service: the server's idle closes.
    pub server: BTreeMap<SocketAddr, (Spread, IdleGroup)>,
    /// Per service: the clients' idle closes (all client hosts together).
    pub client: BTreeMap<SocketAddr, Spread>,
}

impl IdleTimeouts {
    /// The server's idle timeout for `service`, the one number every finding's advice
    /// quotes (see [`IdleGroup::timeout`]).
    pub fn server_timeout(&self, service: SocketAddr) -> Option<f64> {
        self.server.get(&service).map(|(s, g)| g.timeout(s))
    }
}

/// Idle time before the close, when `side` closed first with a FIN after some idleness.
/// (A RST after idleness is an abort, a keep-alive giving up or a linger-0 close, not an
/// idle timeout; those are other findings.)
fn idle_close(r: &ConnectionReport, side: Side) -> Option<f64> {
    if r.close.first_by != Some(side) || r.close.first != Some(CloseSignal::Fin) {
        return None;
    }
    r.close.idle_before_close.filter(|&i| i >= MIN_IDLE_SECS)
}

fn finding(
    side: Side,
    service: SocketAddr,
    client_host: Option<IpAddr>,
    s: &Spread,
    g: &IdleGroup,
) -> Finding {
    let members = &g.members;
    let table = (side == Side::Client && client_host.is_none()).then(|| g.hosts.table());
    let who = match (side, client_host, &table) {
        (Side::Server, _, _) => format!("The server {service}"),
        (Side::Client, Some(h), _) => format!("The client {h}"),
        (Side::Client, None, Some(t)) => format!("The clients ({}{} hosts)", t.about(), t.hosts),
        (Side::Client, None, None) => "The client".to_string(),
    };
    // "The clients (24 hosts) close …", "The server … closes …".
    let closes = if table.is_some() { "close" } else { "closes" };
    let whom = match side {
        Side::Server => "idle connections".to_string(),
        Side::Client => format!("idle connections to {service}"),
    };
    let sample = if s.n == 1 {
        "n=1, a single sample".to_string()
    } else {
        format!(
            "n={}, p10 {}, p90 {}",
            s.n,
            secs_precise(s.p10),
            secs_precise(s.p90)
        )
    };
    let sweeps = g.sweeps(s);
    let summary = if let Some((in_bursts, bursts)) = sweeps {
        format!(
            "{who} {closes} {whom} in sweeps, after ≥ {} of idleness (swept: {in_bursts} of {} \
             closes in {} at one instant each, idle {} to {}).",
            secs(s.min),
            s.n,
            super::plural(bursts, "burst", "bursts"),
            secs(s.min),
            secs(s.max)
        )
    } else if s.n == 1 {
        let whom = whom.replacen("idle connections", "an idle connection", 1);
        format!("{who} closed {whom} after {} ({sample}).", secs(s.median))
    } else if s.is_tight() {
        format!("{who} {closes} {whom} after {} ({sample}).", secs(s.median))
    } else {
        format!(
            "{who} closed {whom} after {} to {} of idleness (median {}, n={}): not one \
             fixed timeout.",
            secs(s.p10),
            secs(s.p90),
            secs(s.median),
            s.n
        )
    };
    // Who sweeps: a client's evictor thread, or a server's periodic timeout check (Tomcat's
    // NIO poller looks at keep-alive timeouts about once a second: captures/23, 24).
    let sweeper = match side {
        Side::Client => {
            "an evictor thread such as HttpClient's IdleConnectionEvictor or a pool's \
                         maintenance task, run every so often"
        }
        Side::Server => {
            "a timeout check run every so often, such as Tomcat's poller, which \
                         looks at keep-alive timeouts about once a second"
        }
    };
    let mechanism = match side {
        _ if sweeps.is_some() => format!(
            "These connections were closed many at one instant, after {} to {} of \
             idleness: a sweep ({sweeper}) closes every connection idle \
             at least its setting, so the setting is at most {} and each connection waits up \
             to one sweep interval longer. (One burst may also be one timer for connections \
             opened together: the capture cannot tell.)",
            secs(s.min),
            secs(s.max),
            secs(s.min)
        ),
        Side::Server => format!(
            "Each of these connections carried no data for about {} before the server sent \
             its FIN. The same delay connection after connection is a configured keep-alive \
             timeout (Tomcat keepAliveTimeout, nginx keepalive_timeout, Apache \
             KeepAliveTimeout, a proxy's idle timeout).",
            secs(s.median)
        ),
        Side::Client => format!(
            "Each of these connections carried no data for about {} before the client sent \
             its FIN: the client's pool evicts idle connections after that long.",
            secs(s.median)
        ),
    };
    let advice = match side {
        Side::Server => format!(
            "Clients of {service} should close idle connections before the server does: \
             keep their pool idle timeout below {}.",
            secs(g.timeout(s))
        ),
        Side::Client => "Keep this below the server's keep-alive timeout, so the client \
                         always closes first."
            .to_string(),
    };
    Finding {
        id: FindingId::IdleTimeout,
        severity: Severity::Info,
        summary,
        count: s.n,
        evidence: members.ids(),
        example: members.example(),
        mechanism,
        advice,
        details: Details::IdleTimeout(IdleDetails {
            side,
            server: service,
            client_host,
            client_hosts: table.clone(),
            seconds: s.median,
            p10: s.p10,
            p90: s.p90,
            min: s.min,
            max: s.max,
            samples: s.n,
            fixed: s.is_tight() && sweeps.is_none(),
            swept: sweeps.is_some(),
        }),
        facts: {
            let mut facts = vec![format!(
                "idle before the {side}'s FIN: {}",
                super::stats::spread_text(s)
            )];
            if let Some(t) = &table {
                facts.push(format!("closing client hosts: {}", t.text()));
            }
            facts
        },
        group: format!(
            "{side} {} {service}",
            client_host.map(|h| h.to_string()).unwrap_or_default()
        ),
    }
}

/// `timeout_mismatch`: per service whose server closes idle connections, the client's idle
/// timeout is longer, or unknown because the client never closes first.
pub(super) fn mismatch(idle: &IdleTimeouts) -> Vec<Finding> {
    let mut out = Vec::new();
    for (service, (server, group)) in &idle.server {
        let client = idle.client.get(service);
        let client_secs = client.map(|s| s.median);
        let client_closes = client.map(|s| s.n).unwrap_or(0);
        if client_secs.is_some_and(|c| c < server.median) {
            continue;
        }
        let leaked = group.leaked;
        let answers = group.answers.spread();
        // The client never answered the FIN: CLOSE_WAIT at the end, or reset later.
        let silent = group.silent;
        // The one server timeout every finding quotes; a swept one is only bounded.
        let timeout = secs(group.timeout(server));
        let s = if group.sweeps(server).is_some() {
            format!("≥ {timeout}")
        } else {
            timeout.clone()
        };
        let (severity, summary) = match client_secs {
            Some(c) => (
                Severity::Warning,
                format!(
                    "The clients of {service} keep idle connections for {} but the server \
                     closes them after {s}: the server closes first.",
                    secs(c)
                ),
            ),
            None if silent > 0 => (
                Severity::Warning,
                format!(
                    "The client's idle timeout for {service} is unknown (it never closes an \
                     idle connection: {silent} of the server's {} closes went unanswered) while \
                     the server closes them after {s}: the server always closes first.",
                    server.n
                ),
            ),
            None if group.slow > 0 => (
                Severity::Warning,
                format!(
                    "The clients of {service} never close an idle connection first; the \
                     server does, after {s}, and the clients answer its FIN late: {} of {} \
                     answers took {} or more (up to {}), each socket in CLOSE_WAIT that long.",
                    group.slow,
                    answers.as_ref().map_or(0, |a| a.n),
                    secs(SLOW_ANSWER_SECS),
                    secs(answers.as_ref().map_or(0.0, |a| a.max))
                ),
            ),
            None => (
                Severity::Info,
                format!(
                    "The clients of {service} never close an idle connection first; the \
                     server does, after {s}, and the clients follow its FIN."
                ),
            ),
        };
        let mechanism = format!(
            "Whoever closes first sends the first FIN and holds TIME_WAIT; the other side \
             must notice the FIN or leak a CLOSE_WAIT socket. With the server's keep-alive \
             timeout ({s}) shorter than the client's, the server closes first, and a request \
             the client sends just as the server's FIN is on its way is answered by RST."
        ) + if group.slow > 0 {
            " A client that answers the FIN only after half a second or more closes the \
             connection when its pool next hands it out or sweeps (HttpClient honouring \
             `Keep-Alive: timeout`, urllib3), not when the FIN arrives: the milder cousin of \
             a CLOSE_WAIT leak."
        } else {
            ""
        };
        // A server that sweeps (Tomcat's poller) may close after as little as the shortest
        // idle seen: that is the bound a client must stay below.
        let below = timeout;
        let advice = format!(
            "Make the client's idle timeout shorter than the server's keep-alive timeout \
             (below {below}): the client then closes first, TIME_WAIT lands on the client, \
             not on the server, and no request races the server's FIN."
        );
        let mut facts = vec![format!(
            "server {service} closes idle connections after {} (n={})",
            secs_precise(server.median),
            server.n
        )];
        facts.push(match client_secs {
            Some(c) => format!(
                "clients close idle connections after {} (n={client_closes})",
                secs_precise(c)
            ),
            None => "clients: no idle connection closed by a client first".to_string(),
        });
        if let Some(a) = answers.as_ref().filter(|_| group.slow > 0) {
            facts.push(format!(
                "the server's FIN to the client's answering FIN: {}; {} at or over {}",
                super::stats::spread_text(a),
                group.slow,
                secs(SLOW_ANSWER_SECS)
            ));
        }
        if silent > 0 {
            facts.push(format!(
                "{silent} of the server's {} idle closes were never answered by the client's \
                 FIN ({leaked} still in CLOSE_WAIT at the end)",
                server.n
            ));
        }
        out.push(Finding {
            id: FindingId::TimeoutMismatch,
            severity,
            summary,
            count: server.n,
            evidence: group.members.ids(),
            example: group.members.example(),
            mechanism,
            advice,
            details: Details::TimeoutMismatch(MismatchDetails {
                server: *service,
                server_seconds: server.median,
                client_seconds: client_secs,
                server_idle_closes: server.n,
                client_idle_closes: client_closes,
                unanswered: silent,
                leaked,
                answer_delay: answers.clone(),
                slow_answers: group.slow,
            }),
            facts,
            group: service.to_string(),
        });
    }
    out
}
