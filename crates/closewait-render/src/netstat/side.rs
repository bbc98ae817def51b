//! Which side this host is, per socket, and the sockets grouped per service.
//!
//! A socket line names two endpoints but not who connected to whom. The evidence, strongest
//! first:
//!
//! 1. **A listener**: a LISTEN socket on the local port (same address or a wildcard) means
//!    the host accepted the connection: server.
//! 2. **A named port** (output taken without `-n`): only service ports have names.
//! 3. **Ephemeral ports**: the kernel picks the local port of an outgoing connection from
//!    the ephemeral range (Linux 32768–60999, IANA 49152–65535, both ≥
//!    [`EPHEMERAL_FROM`](super::EPHEMERAL_FROM)); an ephemeral local port facing a
//!    non-ephemeral remote one is a client, the reverse a server. This is the seed's
//!    reasoning.
//! 4. **Sharing**: many sockets on one local port with different peers is a service here;
//!    many local ports towards one remote endpoint is a service there.
//! 5. **The lower port**, as a last guess.
//!
//! Client sockets are grouped by the remote endpoint (the service this host uses), server
//! sockets by the local one (the service this host offers). Everything is kept in sorted
//! maps, so the same input always gives the same output.

use super::explain::{explain, Finding};
use super::{Endpoint, Host, Parsed, Port, Process, Role, Skipped, Socket, Tool};
use crate::diagnose::Severity;
use closewait_core::state::TcpState;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Why a socket was given its role (see the module doc for the order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleReason {
    Listening,
    NamedPort,
    EphemeralLocalPort,
    EphemeralRemotePort,
    SharedLocalPort,
    SharedRemote,
    LowerPort,
    NoEvidence,
}

impl RoleReason {
    /// The reason as words, completing "this host is the client: …".
    pub fn text(self) -> &'static str {
        match self {
            RoleReason::Listening => "a LISTEN socket on that port",
            RoleReason::NamedPort => "only service ports have names",
            RoleReason::EphemeralLocalPort => "ephemeral local ports",
            RoleReason::EphemeralRemotePort => "ephemeral remote ports",
            RoleReason::SharedLocalPort => "one local port, many peers",
            RoleReason::SharedRemote => "many local ports towards one remote port",
            RoleReason::LowerPort => "a guess: the lower port is taken for the service",
            RoleReason::NoEvidence => "no port tells",
        }
    }
}

/// Socket counts per state, in RFC order; serialised as `{"CLOSE_WAIT": 45, …}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub BTreeMap<TcpState, u64>);

impl StateCounts {
    pub fn get(&self, s: TcpState) -> u64 {
        self.0.get(&s).copied().unwrap_or(0)
    }
    fn add(&mut self, s: TcpState) {
        *self.0.entry(s).or_default() += 1;
    }
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u64)> + '_ {
        self.0.iter().map(|(s, n)| (*s, *n))
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (state, n) in &self.0 {
            m.serialize_entry(state.as_str(), n)?;
        }
        m.end()
    }
}

/// A process and how many of a group's sockets it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Holder {
    #[serde(flatten)]
    pub process: Process,
    pub sockets: u64,
}

/// The capture that shows these connections closing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaptureHint {
    /// A tcpdump command line recording only this service's connections.
    pub tcpdump: String,
    /// What to run on the file afterwards.
    pub then: String,
}

/// The sockets between this host and one service, with what they mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The service: the remote endpoint when this host is the client, the local one when it
    /// is the server.
    pub service: Endpoint,
    pub role: Role,
    /// The evidence for `role` shared by most of the group's sockets.
    pub role_reason: RoleReason,
    pub sockets: u64,
    pub states: StateCounts,
    /// Client: local ports in use; server: distinct client addresses.
    pub peers: u64,
    /// Server only: the client addresses with the most sockets (at most 10), most first.
    pub clients: Vec<PeerCount>,
    /// Client only: the local ports, lowest and highest.
    pub local_ports: Option<(u16, u16)>,
    /// Client only: this host also listens on the service (both ends are here: loopback).
    pub served_here: bool,
    /// Owning processes, most sockets first (`-p` output only).
    pub processes: Vec<Holder>,
    /// States that mean something for this side, most severe first.
    pub findings: Vec<Finding>,
    /// Worst severity of the findings.
    pub severity: Option<Severity>,
    /// Present when a finding is a warning or an error.
    pub capture: Option<CaptureHint>,
}

/// A client address and its socket count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerCount {
    pub host: String,
    pub sockets: u64,
}

/// A LISTEN socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub local: Endpoint,
    pub process: Option<Process>,
}

/// The whole analysis of one input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetstatReport {
    pub tool: Option<Tool>,
    /// Lines read.
    pub lines: usize,
    /// TCP sockets read, listeners included.
    pub sockets: u64,
    /// Per state, over all sockets.
    pub totals: StateCounts,
    pub listening: Vec<Listener>,
    /// Most severe first, then most sockets.
    pub groups: Vec<Group>,
    /// Lines that looked like TCP sockets but could not be read.
    pub skipped: Vec<Skipped>,
}

impl NetstatReport {
    pub fn worst(&self) -> Option<Severity> {
        self.groups.iter().filter_map(|g| g.severity).max()
    }
}

/// Decides sides, groups and explains.
pub fn analyze(parsed: &Parsed) -> NetstatReport {
    let listening: Vec<Listener> = parsed
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::Listen)
        .map(|s| Listener {
            local: s.local.clone(),
            process: s.process.clone(),
        })
        .collect();
    let conns: Vec<&Socket> = parsed
        .sockets
        .iter()
        .filter(|s| s.state != TcpState::Listen)
        .collect();
    let sharing = Sharing::of(&conns);

    #[derive(Default)]
    struct Acc {
        states: StateCounts,
        reasons: BTreeMap<RoleReason, u64>,
        peers: BTreeMap<String, u64>,
        ports: BTreeSet<u16>,
        processes: BTreeMap<Process, u64>,
        /// Per state, the processes holding sockets in it.
        holders: BTreeMap<TcpState, BTreeSet<Process>>,
    }
    let mut groups: BTreeMap<(Role, Endpoint), Acc> = BTreeMap::new();
    let mut totals = StateCounts::default();
    for s in &parsed.sockets {
        totals.add(s.state);
    }
    for s in &conns {
        let (role, reason) = role_of(s, &listening, &sharing);
        let service = match role {
            Role::Server => s.local.clone(),
            Role::Client | Role::Unknown => s.remote.clone(),
        };
        let acc = groups.entry((role, service)).or_default();
        acc.states.add(s.state);
        *acc.reasons.entry(reason).or_default() += 1;
        match role {
            Role::Server => {
                *acc.peers.entry(s.remote.host.to_string()).or_default() += 1;
            }
            Role::Client | Role::Unknown => {
                *acc.peers.entry(s.local.port.to_string()).or_default() += 1;
                if let Port::Num(p) = s.local.port {
                    acc.ports.insert(p);
                }
            }
        }
        if let Some(p) = &s.process {
            *acc.processes.entry(p.clone()).or_default() += 1;
            acc.holders.entry(s.state).or_default().insert(p.clone());
        }
    }

    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((role, service), acc)| {
            let role_reason = acc
                .reasons
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(r, _)| *r)
                .unwrap_or(RoleReason::NoEvidence);
            let mut findings: Vec<Finding> = acc
                .states
                .iter()
                .filter_map(|(state, n)| {
                    let held = acc.holders.get(&state).map(|ps| {
                        ps.iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    explain(role, state, n, held.as_deref())
                })
                .collect();
            findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
            for f in &mut findings {
                f.summary = sentence(f, role, role_reason, &service);
            }
            let severity = findings.iter().map(|f| f.severity).max();
            let capture = severity
                .filter(|s| *s >= Severity::Warning)
                .map(|_| capture_hint(&service));
            let mut processes: Vec<Holder> = acc
                .processes
                .into_iter()
                .map(|(process, sockets)| Holder { process, sockets })
                .collect();
            processes.sort_by_key(|h| std::cmp::Reverse(h.sockets));
            let served_here =
                role == Role::Client && listening.iter().any(|l| covers(&l.local, &service));
            let mut clients: Vec<PeerCount> = match role {
                Role::Server => acc
                    .peers
                    .iter()
                    .map(|(host, n)| PeerCount {
                        host: host.clone(),
                        sockets: *n,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            clients.sort_by_key(|c| std::cmp::Reverse(c.sockets));
            clients.truncate(10);
            Group {
                clients,
                sockets: acc.states.iter().map(|(_, n)| n).sum(),
                states: acc.states,
                peers: acc.peers.len() as u64,
                local_ports: match (role, acc.ports.first(), acc.ports.last()) {
                    (Role::Client, Some(lo), Some(hi)) => Some((*lo, *hi)),
                    _ => None,
                },
                served_here,
                processes,
                findings,
                severity,
                capture,
                service,
                role,
                role_reason,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.sockets.cmp(&a.sockets))
            .then(a.service.cmp(&b.service))
            .then(a.role.cmp(&b.role))
    });
    NetstatReport {
        tool: parsed.tool,
        lines: parsed.lines,
        sockets: parsed.sockets.len() as u64,
        totals,
        listening,
        groups: out,
        skipped: parsed.skipped.clone(),
    }
}

/// How many distinct peers share each local port, and how many local ports each remote
/// endpoint is reached from.
struct Sharing {
    peers_of_local_port: BTreeMap<Port, BTreeSet<Endpoint>>,
    ports_towards_remote: BTreeMap<Endpoint, BTreeSet<Port>>,
}

impl Sharing {
    fn of(conns: &[&Socket]) -> Sharing {
        let mut peers_of_local_port: BTreeMap<Port, BTreeSet<Endpoint>> = BTreeMap::new();
        let mut ports_towards_remote: BTreeMap<Endpoint, BTreeSet<Port>> = BTreeMap::new();
        for s in conns {
            peers_of_local_port
                .entry(s.local.port.clone())
                .or_default()
                .insert(s.remote.clone());
            ports_towards_remote
                .entry(s.remote.clone())
                .or_default()
                .insert(s.local.port.clone());
        }
        Sharing {
            peers_of_local_port,
            ports_towards_remote,
        }
    }
}

/// Whether a listener on `l` accepts connections to `ep`.
fn covers(l: &Endpoint, ep: &Endpoint) -> bool {
    l.port == ep.port && (l.host == Host::Any || l.host == ep.host)
}

/// The side this host is for one socket, and why.
fn role_of(s: &Socket, listening: &[Listener], sharing: &Sharing) -> (Role, RoleReason) {
    if listening.iter().any(|l| covers(&l.local, &s.local)) {
        return (Role::Server, RoleReason::Listening);
    }
    let named = |p: &Port| matches!(p, Port::Name(_));
    match (named(&s.local.port), named(&s.remote.port)) {
        (false, true) => return (Role::Client, RoleReason::NamedPort),
        (true, false) => return (Role::Server, RoleReason::NamedPort),
        _ => {}
    }
    match (s.local.port.is_ephemeral(), s.remote.port.is_ephemeral()) {
        (true, false) if s.remote.port != Port::Any => {
            return (Role::Client, RoleReason::EphemeralLocalPort)
        }
        (false, true) if s.local.port != Port::Any => {
            return (Role::Server, RoleReason::EphemeralRemotePort)
        }
        _ => {}
    }
    let peers = sharing
        .peers_of_local_port
        .get(&s.local.port)
        .map_or(0, BTreeSet::len);
    let ports = sharing
        .ports_towards_remote
        .get(&s.remote)
        .map_or(0, BTreeSet::len);
    if peers >= 2 && peers > ports {
        return (Role::Server, RoleReason::SharedLocalPort);
    }
    if ports >= 2 && ports > peers {
        return (Role::Client, RoleReason::SharedRemote);
    }
    match (&s.local.port, &s.remote.port) {
        (Port::Num(l), Port::Num(r)) if l < r => (Role::Server, RoleReason::LowerPort),
        (Port::Num(l), Port::Num(r)) if l > r => (Role::Client, RoleReason::LowerPort),
        _ => (Role::Unknown, RoleReason::NoEvidence),
    }
}

/// `45 sockets in CLOSE_WAIT towards 10.77.0.2:8788 (this host is the client: ephemeral
/// local ports): the server closed them and your application never did.`
fn sentence(f: &Finding, role: Role, reason: RoleReason, service: &Endpoint) -> String {
    let n = if f.count == 1 {
        "1 socket".to_string()
    } else {
        format!("{} sockets", f.count)
    };
    let (towards, side) = match role {
        Role::Client => ("towards", "this host is the client".to_string()),
        Role::Server => ("on", "this host is the server".to_string()),
        Role::Unknown => ("with", "which side this host is is unclear".to_string()),
    };
    format!(
        "{n} in {} {towards} {service} ({side}: {}): {}.",
        f.state,
        reason.text(),
        f.meaning
    )
}

/// `tcpdump -i any -w closewait.pcap host 10.77.0.2 and port 8788`, and the diagnosis.
fn capture_hint(service: &Endpoint) -> CaptureHint {
    let mut filter = Vec::new();
    if !matches!(service.host, Host::Any) {
        filter.push(format!("host {}", service.host));
    }
    if !matches!(service.port, Port::Any) {
        filter.push(format!("port {}", service.port));
    }
    let mut tcpdump = "tcpdump -i any -w closewait.pcap".to_string();
    if filter.is_empty() {
        tcpdump.push_str(" tcp");
    } else {
        tcpdump.push(' ');
        tcpdump.push_str(&filter.join(" and "));
    }
    CaptureHint {
        tcpdump,
        then: "closewait diagnose closewait.pcap".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netstat::parse;

    type Shape = (Role, String, RoleReason, Vec<(TcpState, u64)>);

    fn groups(text: &str) -> Vec<Shape> {
        analyze(&parse(text))
            .groups
            .into_iter()
            .map(|g| {
                (
                    g.role,
                    g.service.to_string(),
                    g.role_reason,
                    g.states.iter().collect(),
                )
            })
            .collect()
    }

    #[test]
    fn ephemeral_local_ports_make_this_host_the_client() {
        let g = groups(
            "CLOSE-WAIT 1 0 10.77.0.1:34506 10.77.0.2:8788\n\
             CLOSE-WAIT 1 0 10.77.0.1:34520 10.77.0.2:8788\n\
             ESTAB 0 0 10.77.0.1:34524 10.77.0.2:8788\n",
        );
        assert_eq!(
            g,
            vec![(
                Role::Client,
                "10.77.0.2:8788".to_string(),
                RoleReason::EphemeralLocalPort,
                vec![(TcpState::Established, 1), (TcpState::CloseWait, 2)]
            )]
        );
    }

    #[test]
    fn a_listener_makes_this_host_the_server_even_on_a_high_port() {
        let g = groups(
            "LISTEN 0 128 *:50051 *:*\n\
             FIN-WAIT-2 0 0 10.0.0.2:50051 10.0.0.9:40000\n\
             FIN-WAIT-2 0 0 10.0.0.2:50051 10.0.0.8:40000\n",
        );
        assert_eq!(g.len(), 1);
        assert_eq!(
            (g[0].0, g[0].1.as_str(), g[0].2),
            (Role::Server, "10.0.0.2:50051", RoleReason::Listening)
        );
    }

    #[test]
    fn many_local_ports_towards_one_high_port_is_a_client() {
        let g = groups(
            "ESTAB 0 0 10.0.0.1:40001 10.0.0.2:50051\n\
             ESTAB 0 0 10.0.0.1:40002 10.0.0.2:50051\n",
        );
        assert_eq!((g[0].0, g[0].2), (Role::Client, RoleReason::SharedRemote));
    }

    #[test]
    fn lower_port_is_the_last_guess() {
        // Both ports ephemeral-looking, one socket: the lower one is taken for the service.
        let g = groups("ESTAB 0 0 10.0.0.1:40001 10.0.0.2:50051\n");
        assert_eq!((g[0].0, g[0].2), (Role::Server, RoleReason::LowerPort));
        let g = groups("ESTAB 0 0 10.0.0.1:50051 10.0.0.2:40001\n");
        assert_eq!((g[0].0, g[0].2), (Role::Client, RoleReason::LowerPort));
    }

    #[test]
    fn close_wait_group_comes_first_with_a_capture_hint() {
        let r = analyze(&parse(
            "ESTAB 0 0 10.0.0.1:40001 10.0.0.3:443\n\
             ESTAB 0 0 10.0.0.1:40002 10.0.0.3:443\n\
             ESTAB 0 0 10.0.0.1:40003 10.0.0.3:443\n\
             CLOSE-WAIT 1 0 [::ffff:10.0.0.1]:40004 [::ffff:10.0.0.2]:80\n",
        ));
        assert_eq!(r.groups[0].service.to_string(), "10.0.0.2:80");
        assert_eq!(r.groups[0].severity, Some(Severity::Error));
        assert_eq!(
            r.groups[0].capture.as_ref().map(|c| c.tcpdump.as_str()),
            Some("tcpdump -i any -w closewait.pcap host 10.0.0.2 and port 80")
        );
        assert_eq!(r.groups[1].capture, None);
        assert_eq!(r.worst(), Some(Severity::Error));
    }
}
