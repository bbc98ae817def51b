//! Which connections to show: `--host`, `--port`, `--kind`, `--state`.
//!
//! A [`Filter`] selects finished [`ConnectionReport`]s; it never looks at packets, so a
//! filtered listing and its summary describe the same connections the unfiltered run
//! found, only fewer of them. Values of one criterion are alternatives (`--kind abort
//! --kind refused` keeps either); different criteria must all match.

use crate::model::{CloseKind, ConnectionReport, Side};
use crate::state::TcpState;
use serde::Serialize;
use std::fmt;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// Either endpoint's address is one of these.
    pub host: Vec<IpAddr>,
    /// Either endpoint's port is one of these.
    pub port: Vec<u16>,
    /// The close kind is one of these.
    pub kind: Vec<CloseKind>,
    /// Either side's end state is one of these.
    pub state: Vec<TcpState>,
}

impl Filter {
    /// True when no criterion is set: every connection matches.
    pub fn is_empty(&self) -> bool {
        self.host.is_empty()
            && self.port.is_empty()
            && self.kind.is_empty()
            && self.state.is_empty()
    }

    pub fn matches(&self, r: &ConnectionReport) -> bool {
        let sides = [Side::Client, Side::Server];
        (self.host.is_empty()
            || sides
                .iter()
                .any(|s| self.host.contains(&canonical(r.addr(*s).ip()))))
            && (self.port.is_empty()
                || sides.iter().any(|s| self.port.contains(&r.addr(*s).port())))
            && (self.kind.is_empty() || self.kind.contains(&r.close.kind))
            && (self.state.is_empty() || sides.iter().any(|s| self.state.contains(&r.state(*s))))
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

/// Normalises a `--host` value the same way as the connection addresses it is compared to.
pub fn parse_host(s: &str) -> Result<IpAddr, String> {
    let trimmed = s.trim().trim_start_matches('[').trim_end_matches(']');
    trimmed
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| format!("'{s}' is not an IPv4 or IPv6 address"))
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
            parse_host("[2001:db8::1]"),
            Ok("2001:db8::1".parse::<IpAddr>().expect("valid"))
        );
        assert!(parse_host("example.com").is_err());
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
