//! `closewait netstat`: the seed's first step, done by the tool.
//!
//! Before anyone captures a packet, the seed looked at `netstat -np` on the sick host:
//! ~200 sockets in CLOSE_WAIT towards a few backends, ephemeral local ports, service ports
//! on the other end, so *this host is the client*, the servers closed first and the client
//! never did. This module reads saved `netstat`/`ss` output and draws that conclusion for
//! every remote service: which side this host is, how many sockets sit in each state, what
//! each state means for that side, which closes to look for in a capture and the tcpdump
//! filter that records them.
//!
//! It only reads text; it never looks at the live system (the output may come from another
//! machine, pasted into a ticket). Stages, one module each:
//!
//! ```text
//! parse    lines → Socket (state, local, remote, process)
//! side     Socket → which side this host is, grouped per service
//! explain  (side, state, count) → words, severity, what to look for in a capture
//! render   text and JSON
//! ```

pub mod explain;
pub mod parse;
pub mod render;
pub mod side;

use closewait_core::state::TcpState;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

pub use parse::{parse, parse_endpoint, parse_in_state, Parsed, Skipped};
pub use side::{analyze, Group, NetstatReport, RoleReason};

/// Which side of its connections this host is (decided in [`side`], read by [`explain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    Server,
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
            Role::Unknown => "unknown",
        }
    }
}

/// The tool whose output was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    Netstat,
    Ss,
    /// Lines of both.
    Mixed,
}

impl Tool {
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Netstat => "netstat",
            Tool::Ss => "ss",
            Tool::Mixed => "netstat and ss",
        }
    }
}

/// One TCP socket line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    /// 1-based line number in the input.
    pub line: usize,
    pub state: TcpState,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub recv_q: Option<u64>,
    pub send_q: Option<u64>,
    /// The owning process, when the output has it (`netstat -p`, `ss -p`).
    pub process: Option<Process>,
}

/// An address column: host and port, either possibly a wildcard or a name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: Host,
    pub port: Port,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// `*`, `0.0.0.0`, `::`.
    Any,
    /// IPv4-mapped IPv6 addresses are stored as IPv4.
    Ip(IpAddr),
    /// A resolved name (output taken without `-n`).
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Port {
    Any,
    Num(u16),
    /// A service name (output taken without `-n`): always a service port.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Any => f.write_str("*"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Any => f.write_str("*"),
            Port::Num(n) => write!(f, "{n}"),
            Port::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The process owning a socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Process {
    pub name: Option<String>,
    pub pid: Option<u32>,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.pid) {
            (Some(n), Some(p)) => write!(f, "{n} (pid {p})"),
            (Some(n), None) => f.write_str(n),
            (None, Some(p)) => write!(f, "pid {p}"),
            (None, None) => f.write_str("?"),
        }
    }
}

/// Linux's default `net.ipv4.ip_local_port_range` is 32768–60999; BSD, macOS and Windows
/// (IANA, RFC 6335 §6) use 49152–65535. A port at or above 32768 is taken for an ephemeral
/// (client) port; below, for a service. Both ranges are covered.
pub const EPHEMERAL_FROM: u16 = 32768;

impl Port {
    /// Looks like a port the kernel picked for an outgoing connection.
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Port::Num(n) if *n >= EPHEMERAL_FROM)
    }
}
