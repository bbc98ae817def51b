//! Which connections to show: `--host` (an address or a CIDR network), `--port`, `--kind`,
//! `--state`, `--find` (text in the reassembled bytes, searched by the analysis:
//! [`ConnectionReport::found`]).
//!
//! A [`Filter`] selects finished [`ConnectionReport`]s; it never looks at packets, so a
//! filtered listing and its summary describe the same connections the unfiltered run
//! found, only fewer of them. Values of one criterion are alternatives (`--kind abort
//! --kind refused` keeps either); different criteria must all match.

use crate::model::{CloseKind, ConnectionReport, Side};
use crate::state::TcpState;
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Either endpoint's address is in one of these networks (a bare address is a /32 or
    /// /128).
    pub host: Vec<HostNet>,
    /// Either endpoint's port is one of these.
    pub port: Vec<u16>,
    /// The close kind is one of these.
    pub kind: Vec<CloseKind>,
    /// Either side's end state is one of these.
    pub state: Vec<TcpState>,
    /// The reassembled bytes of either direction contain this text (the analysis must
    /// have searched for it: [`crate::analyze::AnalyzeOptions::find`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub find: Option<String>,
}

impl Filter {
    /// True when no criterion is set: every connection matches.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
            && self.port.is_empty()
            && self.kind.is_empty()
            && self.state.is_empty()
            && self.find.is_none()
    }

    pub fn matches(&self, r: &ConnectionReport) -> bool {
        let sides = [Side::Client, Side::Server];
        (self.host.is_empty()
            || sides.iter().any(|s| {
                let ip = canonical(r.addr(*s).ip());
                self.host.iter().any(|net| net.contains(ip))
            }))
            && (self.port.is_empty()
                || sides.iter().any(|s| self.port.contains(&r.addr(*s).port())))
            && (self.kind.is_empty() || self.kind.contains(&r.close.kind))
            && (self.state.is_empty() || sides.iter().any(|s| self.state.contains(&r.state(*s))))
            && (self.find.is_none() || r.found)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) compares equal to its IPv4 form, so
/// `--host 10.0.0.1` finds it whichever way the capture spelled it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// A `--host` value: an address and how many leading bits of it must match (32 or 128 for
/// a bare address). Shown as written, `10.0.0.0/8` or `10.0.0.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostNet {
    addr: IpAddr,
    prefix: u8,
}

impl HostNet {
    /// True when `ip` (already canonical) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && network(ip, self.prefix) == self.addr
    }

    fn full_length(addr: IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }
}

impl fmt::Display for HostNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == Self::full_length(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl Serialize for HostNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The first `prefix` bits of `addr`, the rest zero.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// Parses a `--host` value: an IPv4 or IPv6 address (`10.0.0.1`, `[2001:db8::1]`) or a
/// network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), normalised the same way as
/// the connection addresses it is compared to (an IPv4-mapped IPv6 address or network is
/// its IPv4 form). A network with host bits set (`10.1.2.3/8`) is refused, as tcpdump's
/// `net` refuses it: it is more likely a typo than a meaning.
pub fn parse_host(s: &str) -> Result<HostNet, String> {
    let not_a_host = || {
        format!(
            "'{s}' is not an IPv4 or IPv6 address or network (10.0.0.1, 10.0.0.0/8, 2001:db8::/32)"
        )
    };
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((addr, len)) => (addr, Some(len.parse::<u8>().map_err(|_| not_a_host())?)),
        None => (s.trim(), None),
    };
    let addr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| not_a_host())?;
    let full = HostNet::full_length(addr);
    let prefix = prefix.unwrap_or(full);
    if prefix > full {
        return Err(format!(
            "'{s}': a prefix length is at most {full} for this address"
        ));
    }
    // `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
            (canonical(addr), prefix - 96)
        }
        _ => (addr, prefix),
    };
    let net = HostNet { addr, prefix };
    let network = network(addr, prefix);
    if network != addr {
        return Err(format!(
            "'{s}' has bits set past its /{prefix} prefix: did you mean {network}/{prefix}?"
        ));
    }
    Ok(net)
}

/// `host=10.0.0.2 port=8788 kind=unanswered_fin,abort state=CLOSE_WAIT`, or `none`.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: ToString>(v: &[T]) -> String {
            v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
        }
        let mut parts = Vec::new();
        if !self.host.is_empty() {
            parts.push(format!("host={}", list(&self.host)));
        }
        if !self.port.is_empty() {
            parts.push(format!("port={}", list(&self.port)));
        }
        if !self.kind.is_empty() {
            parts.push(format!("kind={}", list(&self.kind)));
        }
        if !self.state.is_empty() {
            parts.push(format!("state={}", list(&self.state)));
        }
        if let Some(text) = &self.find {
            parts.push(format!("find={text:?}"));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Initiator;
    use crate::testutil::ReportBuilder;

    #[test]
    fn empty_filter_keeps_everything() {
        let f = Filter::default();
        assert!(f.is_empty());
        assert!(f.matches(&ReportBuilder::new(0).build()));
        assert_eq!(f.to_string(), "none");
    }

    #[test]
    fn host_matches_either_endpoint() {
        let r = ReportBuilder::new(0)
            .client("10.0.0.1:40000")
            .server("10.0.0.2:80")
            .build();
        let by = |h: &str| Filter {
            host: vec![parse_host(h).expect("valid")],
            ..Default::default()
        };
        assert!(by("10.0.0.1").matches(&r));
        assert!(by("10.0.0.2").matches(&r));
        assert!(!by("10.0.0.3").matches(&r));
    }

    #[test]
    fn host_matches_ipv4_mapped_ipv6_endpoint() {
        let r = ReportBuilder::new(0).server("[::ffff:10.0.0.9]:80").build();
        let f = Filter {
            host: vec![parse_host("10.0.0.9").expect("valid")],
            ..Default::default()
        };
        assert!(f.matches(&r));
        assert_eq!(
            parse_host("[2001:db8::1]").map(|n| n.to_string()),
            Ok("2001:db8::1".to_string())
        );
        assert!(parse_host("example.com").is_err());
    }

    #[test]
    fn host_network_matches_the_addresses_inside_it() {
        let r = ReportBuilder::new(0)
            .client("10.1.2.3:40000")
            .server("192.168.7.9:80")
            .build();
        let by = |h: &str| Filter {
            host: vec![parse_host(h).expect("valid")],
            ..Default::default()
        };
        assert!(by("10.0.0.0/8").matches(&r));
        assert!(by("192.168.0.0/16").matches(&r));
        assert!(by("0.0.0.0/0").matches(&r));
        assert!(!by("10.2.0.0/16").matches(&r));
        assert!(!by("2001:db8::/32").matches(&r));
        let v6 = ReportBuilder::new(1).server("[2001:db8:5::1]:443").build();
        assert!(by("2001:db8::/32").matches(&v6));
        assert!(!by("2001:db9::/32").matches(&v6));
        assert_eq!(by("::ffff:10.0.0.0/104").to_string(), "host=10.0.0.0/8");
    }

    #[test]
    fn host_network_with_host_bits_or_a_long_prefix_is_refused() {
        let e = parse_host("10.1.2.3/8").expect_err("host bits set");
        assert!(e.contains("did you mean 10.0.0.0/8?"), "{e}");
        assert!(parse_host("10.0.0.0/33").is_err());
        assert!(parse_host("2001:db8::/129").is_err());
        assert!(parse_host("10.0.0.0/x").is_err());
        assert_eq!(
            parse_host("10.0.0.1/32").map(|n| n.to_string()),
            Ok("10.0.0.1".into())
        );
    }

    #[test]
    fn port_matches_either_endpoint() {
        let r = ReportBuilder::new(0)
            .client("10.0.0.1:40000")
            .server("10.0.0.2:8788")
            .build();
        for (port, hit) in [(40000, true), (8788, true), (80, false)] {
            let f = Filter {
                port: vec![port],
                ..Default::default()
            };
            assert_eq!(f.matches(&r), hit, "port {port}");
        }
    }

    #[test]
    fn close_wait_state_filter_finds_client_leak_and_skips_graceful() {
        let leak = ReportBuilder::new(0).unanswered_fin_by_server(5.0).build();
        let clean = ReportBuilder::new(1).build();
        let f = Filter {
            state: vec!["close-wait".parse().expect("valid state")],
            ..Default::default()
        };
        assert!(f.matches(&leak));
        assert!(!f.matches(&clean));
        // The server side's state counts too.
        let f2 = Filter {
            state: vec![TcpState::FinWait2],
            ..Default::default()
        };
        assert!(f2.matches(&leak));
    }

    #[test]
    fn values_of_one_criterion_are_alternatives_criteria_are_all_required() {
        let abort = ReportBuilder::new(0)
            .kind(CloseKind::Abort, Initiator::Client)
            .server("10.0.0.2:443")
            .build();
        let kinds = Filter {
            kind: vec![CloseKind::Refused, CloseKind::Abort],
            ..Default::default()
        };
        assert!(kinds.matches(&abort));
        let kinds_and_port = Filter {
            port: vec![80],
            ..kinds.clone()
        };
        assert!(!kinds_and_port.matches(&abort));
        assert_eq!(kinds_and_port.to_string(), "port=80 kind=refused,abort");
    }
}
