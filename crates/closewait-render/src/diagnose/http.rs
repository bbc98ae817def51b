//! `advertised_timeout` and `connection_reuse`: what the HTTP/1.x conversations say per
//! service.
//!
//! Why: the seed's third fix is the server telling its clients its keep-alive timeout
//! (`Keep-Alive: timeout=N`) so that they never hold a connection the server will close.
//! That works only if the advertisement is the truth (the server does not close earlier)
//! and the clients honour it (they close, or stop reusing, a connection idle N seconds).
//! Each connection's `close.http` (core's `http_close`) says how its close compares with
//! the advertisement; this module adds them up per service. It also counts requests per
//! connection: a pool that reuses its connections makes many requests per handshake, one
//! that opens a connection per request pays a handshake and a TIME_WAIT each time.
//!
//! What it may not do: see beyond the capture. A server whose clients always close first
//! never shows its real idle timeout, and that is said rather than guessed.

use super::acc::{Members, Sketch};
use super::stats::{secs, Spread};
use super::{plural, Details, Finding, FindingId, Severity};
use closewait_core::http_close::{HttpCloseReason, VersusAdvertised};
use closewait_core::model::{ser_addr, ConnectionReport, Side};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The client and server settings that decide who closes an idle HTTP connection first,
/// named for the software people run.
pub(super) const CLIENT_KNOBS: &str = "Apache HttpClient: the default keep-alive strategy, \
    which honours Keep-Alive: timeout, setValidateAfterInactivity and evictIdleConnections; Python requests/urllib3: retries on the adapter (idempotent \
    methods only); Go: Transport.IdleConnTimeout below the server's timeout; nginx as a \
    client: upstream keepalive_timeout below the server's";

pub(super) const SERVER_KNOBS: &str = "Tomcat: keepAliveTimeout on each Connector, which it \
    advertises; nginx: keepalive_timeout's second parameter sends the Keep-Alive: \
    timeout header; Apache httpd: KeepAliveTimeout";

/// The numbers of an `advertised_timeout` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdvertisedDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// The `Keep-Alive: timeout` the server advertised most often (seconds); `null` when it
    /// advertised none.
    pub advertised: Option<u64>,
    /// Every advertised value and on how many connections.
    pub advertised_values: BTreeMap<u64, u64>,
    /// Idle closes by the server (its idle timeout, or the close a request later hit), with
    /// the idle time after its last response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_idle: Option<Spread>,
    /// Of those, how they compare with the advertisement.
    pub agrees: u64,
    pub earlier: u64,
    pub later: u64,
    /// Idle closes by the client, with the idle time after the last response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_idle: Option<Spread>,
    /// Connections the client still held idle when the advertised timeout had passed (the
    /// server closed them at or after it).
    pub held_past_advertised: u64,
    /// Requests written into connections the server had already closed.
    pub requests_hit_closed: u64,
}

/// The numbers of a `connection_reuse` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReuseDetails {
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Connections that carried HTTP/1.x, and the requests on them.
    pub connections: u64,
    pub requests: u64,
    /// Requests per connection: mean and the most on one connection.
    pub per_connection: f64,
    pub max_per_connection: u64,
    /// Connections that carried one request only.
    pub single_request: u64,
    /// Of those, closed by an idle timeout before a second request came.
    pub single_request_idle_closed: u64,
}

/// One service's HTTP facts.
#[derive(Default)]
struct Service {
    members: Members,
    connections: u64,
    requests: u64,
    max_requests: u64,
    single: u64,
    single_idle_closed: u64,
    advertised: BTreeMap<u64, u64>,
    server_idle: Sketch,
    versus: BTreeMap<VersusAdvertised, u64>,
    client_idle: Sketch,
    held_past: u64,
    hit_closed: u64,
}

#[derive(Default)]
pub(super) struct Acc {
    services: BTreeMap<SocketAddr, Service>,
}

impl Acc {
    pub fn add(&mut self, r: &ConnectionReport) {
        let Some(http) = r.http.as_deref().filter(|h| h.is_http()) else {
            return;
        };
        let s = self.services.entry(r.server).or_default();
        s.connections += 1;
        s.requests += http.requests;
        s.max_requests = s.max_requests.max(http.requests);
        if let Some(timeout) = http.keep_alive.and_then(|k| k.timeout_s) {
            *s.advertised.entry(timeout).or_default() += 1;
        }
        let close = r.close.http.as_deref();
        let idle_closed = close.is_some_and(|c| c.reason == HttpCloseReason::IdleTimeout);
        if http.requests == 1 {
            s.single += 1;
            s.single_idle_closed += u64::from(idle_closed);
        }
        let Some(close) = close else {
            s.members.add(r.id, 0.0, r.segments.is_some());
            return;
        };
        let idle = close.idle_after_response.unwrap_or(0.0);
        s.members.add(r.id, idle, r.segments.is_some());
        let server_idle_close = close.closed_by == Side::Server
            && matches!(
                close.reason,
                HttpCloseReason::IdleTimeout | HttpCloseReason::RequestHitClosedConnection
            );
        if close.reason == HttpCloseReason::RequestHitClosedConnection {
            s.hit_closed += 1;
        }
        if server_idle_close {
            if let Some(idle) = close.idle_after_response {
                s.server_idle.add(idle);
            }
            if let Some(versus) = close.versus_advertised {
                *s.versus.entry(versus).or_default() += 1;
                s.held_past += u64::from(versus != VersusAdvertised::Earlier);
            }
        } else if close.reason == HttpCloseReason::IdleTimeout {
            s.client_idle.add(idle);
        }
    }

    pub fn finish(self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (server, s) in self.services {
            findings.extend(advertised_finding(server, &s));
            findings.push(reuse_finding(server, &s));
        }
        findings
    }
}

fn advertised_finding(server: SocketAddr, s: &Service) -> Option<Finding> {
    let advertised = s
        .advertised
        .iter()
        .max_by_key(|&(&timeout, &n)| (n, std::cmp::Reverse(timeout)))
        .map(|(&timeout, _)| timeout);
    let server_idle = s.server_idle.spread();
    let client_idle = s.client_idle.spread();
    if advertised.is_none() && server_idle.is_none() {
        return None;
    }
    let count = |v| s.versus.get(&v).copied().unwrap_or(0);
    let (agrees, earlier, later) = (
        count(VersusAdvertised::Agrees),
        count(VersusAdvertised::Earlier),
        count(VersusAdvertised::Later),
    );
    let hit = s.hit_closed;
    let hit_clause = if hit > 0 {
        format!(
            "; {} written into {} it had already closed",
            plural(hit, "request was", "requests were"),
            if hit == 1 {
                "a connection"
            } else {
                "connections"
            }
        )
    } else {
        String::new()
    };
    let mut severity = Severity::Info;
    let (summary, mechanism, advice) = match (advertised, &server_idle) {
        (Some(t), Some(idle)) if earlier > 0 => {
            severity = Severity::Warning;
            (
                format!(
                    "{server} advertises Keep-Alive: timeout={t} but closed {earlier} of {} idle \
                     connections before that, after {}{hit_clause}.",
                    idle.n,
                    range(idle)
                ),
                format!(
                    "A client that honours the advertisement (HttpClient's default keep-alive \
                     strategy does) keeps a connection up to {t} s and reuses it; the server \
                     closes it earlier, so the client's next request meets a closed \
                     connection and is answered by RST."
                ),
                format!(
                    "Make the advertisement the truth: the header must say the timeout the \
                     server really applies ({SERVER_KNOBS}), or have the clients close idle \
                     connections well before {}.",
                    secs(idle.min)
                ),
            )
        }
        (Some(t), Some(idle)) => {
            if hit > 0 {
                severity = Severity::Warning;
            }
            let verdict = if later > agrees {
                "later than it says (the advertisement is shorter than its real timeout, \
                 harmless for clients that honour it)"
                    .to_string()
            } else {
                "as it says".to_string()
            };
            (
                format!(
                    "{server} advertises Keep-Alive: timeout={t} and closes idle connections \
                     after {}, {verdict}; the clients held {} idle past {t} s and the server \
                     closed {} first{hit_clause}.",
                    range(idle),
                    plural(s.held_past, "connection", "connections"),
                    if s.held_past == 1 { "it" } else { "them" },
                ),
                format!(
                    "A client that honours Keep-Alive: timeout={t} stops reusing a connection \
                     idle {t} s; most pools close it only when they next lease or sweep, so \
                     the server's FIN comes first and the connection waits in CLOSE_WAIT until \
                     then (the `timeout_mismatch` finding). A client that ignores it reuses \
                     the closed connection and its request is answered by RST."
                ),
                format!(
                    "Have the clients honour Keep-Alive: timeout={t} and close idle \
                     connections before it ({CLIENT_KNOBS}); or raise the server's timeout \
                     above the clients' ({SERVER_KNOBS})."
                ),
            )
        }
        (None, Some(idle)) => (
            format!(
                "{server} closes idle HTTP connections after {} without advertising it (no \
                 Keep-Alive: timeout header): its clients cannot adapt their pools to it{hit_clause}.",
                range(idle)
            ),
            "Only a server that says its keep-alive timeout lets a client stop reusing a \
             connection in time; otherwise each client must be configured with a shorter \
             idle timeout by hand, and a request sent as the server closes meets a RST."
                .to_string(),
            format!(
                "Advertise the timeout ({SERVER_KNOBS}), and keep the clients' idle timeout \
                 below {} ({CLIENT_KNOBS}).",
                secs(idle.min)
            ),
        ),
        (Some(t), None) => (
            format!(
                "{server} advertises Keep-Alive: timeout={t}; no idle connection reached it \
                 (the server closed none idle){}.",
                client_idle
                    .as_ref()
                    .map(|c| format!(
                        ": the clients closed {} themselves after {}",
                        plural(c.n, "idle connection", "idle connections"),
                        range(c)
                    ))
                    .unwrap_or_default()
            ),
            "The clients close idle connections before the server's advertised timeout: \
             TIME_WAIT stays on the clients and no request races the server's FIN. The \
             server's real timeout is not seen in this capture."
                .to_string(),
            "Nothing to change.".to_string(),
        ),
        (None, None) => return None,
    };
    let mut facts = Vec::new();
    if !s.advertised.is_empty() {
        let values: Vec<String> = s
            .advertised
            .iter()
            .map(|(t, n)| format!("timeout={t} on {}", plural(*n, "connection", "connections")))
            .collect();
        facts.push(format!("advertised Keep-Alive: {}", values.join(", ")));
    }
    if let Some(idle) = &server_idle {
        let mut fact = format!(
            "the server's idle closes: n={}, {} after its last response",
            idle.n,
            range(idle)
        );
        if agrees + earlier + later > 0 {
            fact += &format!(
                "; versus the advertisement: {agrees} agree, {earlier} earlier, {later} later"
            );
        }
        facts.push(fact);
    }
    if let Some(c) = &client_idle {
        facts.push(format!(
            "the clients' idle closes: n={}, {} after the last response",
            c.n,
            range(c)
        ));
    }
    Some(Finding {
        id: FindingId::AdvertisedTimeout,
        severity,
        summary,
        count: s.members.n,
        evidence: s.members.ids(),
        example: s.members.example(),
        mechanism,
        advice,
        details: Details::AdvertisedTimeout(AdvertisedDetails {
            server,
            advertised,
            advertised_values: s.advertised.clone(),
            server_idle,
            agrees,
            earlier,
            later,
            client_idle,
            held_past_advertised: s.held_past,
            requests_hit_closed: hit,
        }),
        facts,
        group: server.to_string(),
    })
}

/// `2.0 s`, or `2.0 s to 2.3 s` when the spread is wider than the rounding.
fn range(sp: &Spread) -> String {
    if sp.max - sp.min < 0.05 {
        secs(sp.median)
    } else {
        format!("{} to {}", secs(sp.min), secs(sp.max))
    }
}

fn reuse_finding(server: SocketAddr, s: &Service) -> Finding {
    let per_connection = s.requests as f64 / s.connections.max(1) as f64;
    let per_connection = (per_connection * 100.0).round() / 100.0;
    let summary = format!(
        "{} to {server} over {}: {per_connection:.2} per connection (at most {}); {} carried \
         a single request.",
        plural(s.requests, "HTTP request", "HTTP requests"),
        plural(s.connections, "connection", "connections"),
        s.max_requests,
        plural(s.single, "connection", "connections"),
    );
    let mechanism = "A pool that keeps its connections makes many requests per TCP handshake; \
                     each new connection costs a handshake (one round trip before the request) \
                     and leaves a TIME_WAIT socket behind (60 s on Linux) on the side that \
                     closes first."
        .to_string();
    let advice = if s.single_idle_closed * 2 > s.single.max(1) && s.single > 0 {
        format!(
            "{} of the single-request connections were closed idle before a second request \
             came: requests to this service come less often than the idle timeout. Send them \
             over fewer connections (a smaller pool), or let idle connections live longer on \
             both sides (server timeout above the clients')",
            s.single_idle_closed
        ) + "."
    } else if per_connection < 2.0 {
        "Most connections carry one request: check that the client reads each response to its \
         end (or closes it) so the connection returns to the pool, and that neither side sends \
         Connection: close."
            .to_string()
    } else {
        "Nothing to change: connections are reused.".to_string()
    };
    Finding {
        id: FindingId::ConnectionReuse,
        severity: Severity::Info,
        summary,
        count: s.connections,
        evidence: s.members.ids(),
        example: s.members.example(),
        mechanism,
        advice,
        details: Details::ConnectionReuse(ReuseDetails {
            server,
            connections: s.connections,
            requests: s.requests,
            per_connection,
            max_per_connection: s.max_requests,
            single_request: s.single,
            single_request_idle_closed: s.single_idle_closed,
        }),
        facts: vec![format!(
            "requests per connection: mean {per_connection:.2}, max {}; {} with one request{}",
            s.max_requests,
            s.single,
            if s.single > 0 {
                format!(" ({} of them closed idle)", s.single_idle_closed)
            } else {
                String::new()
            }
        )],
        group: server.to_string(),
    }
}
