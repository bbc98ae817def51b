//! What a count of sockets in one state means, for the side this host is.
//!
//! The same state says opposite things depending on the side: CLOSE_WAIT on a client means
//! the server closed and the client application never did; FIN_WAIT_2 on a server means the
//! server closed and the *clients* never did (their CLOSE_WAIT seen from the other end).
//! The rules are RFC 9293's (§3.3.2, Figure 5; §3.6 closing a connection):
//!
//! - a side that receives a FIN goes ESTABLISHED → CLOSE-WAIT and stays there until its
//!   own user calls CLOSE: no timer ends CLOSE-WAIT, only the application can;
//! - the side that sends the first FIN goes FIN-WAIT-1 → (ACK) FIN-WAIT-2 → (peer's FIN)
//!   TIME-WAIT, and holds TIME-WAIT for 2×MSL (Linux: 60 s, `TCP_TIMEWAIT_LEN`);
//! - Linux ends an *orphaned* FIN-WAIT-2 (the application has closed the socket) after
//!   `net.ipv4.tcp_fin_timeout`, 60 s by default.
//!
//! Each [`Finding`] also says what the same connections look like in a capture, in the
//! vocabulary of `closewait analyze` (close kind) and `closewait diagnose` (finding id).

use super::Role;
use crate::diagnose::{FindingId, Severity};
use closewait_core::model::CloseKind;
use closewait_core::state::TcpState;
use serde::Serialize;

/// One state of one group of sockets, explained.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub state: TcpState,
    pub count: u64,
    pub severity: Severity,
    /// The whole verdict in one sentence: count, state, service, side and meaning.
    pub summary: String,
    /// What the state means for this side, one clause ("the server closed them and …").
    pub meaning: String,
    /// What the same connections look like on the wire.
    pub look_for: String,
    /// The close kind `closewait analyze` gives these connections.
    pub kind: Option<CloseKind>,
    /// The finding `closewait diagnose` raises for them.
    pub finding: Option<FindingId>,
}

/// The explanation of `count` sockets in `state` when this host is `role`; `held_by` names
/// the process(es) owning them, when known. `None` for states that need none (LISTEN,
/// ESTABLISHED, CLOSED).
pub fn explain(role: Role, state: TcpState, count: u64, held_by: Option<&str>) -> Option<Finding> {
    let held = held_by
        .map(|p| format!("; {p} holds them"))
        .unwrap_or_default();
    let (severity, meaning, look_for, kind, finding) = match role {
        Role::Server => server(state, &held)?,
        Role::Client => peer_is_server(state, "the server", &held)?,
        Role::Unknown => peer_is_server(state, "the peer", &held)?,
    };
    Some(Finding {
        state,
        count,
        severity,
        summary: String::new(),
        meaning,
        look_for,
        kind,
        finding,
    })
}

type Words = (
    Severity,
    String,
    String,
    Option<CloseKind>,
    Option<FindingId>,
);

/// This host opened the connections (or the side is unknown and `peer` says so).
fn peer_is_server(state: TcpState, peer: &str, held: &str) -> Option<Words> {
    use Severity::*;
    Some(match state {
        TcpState::CloseWait => (
            Error,
            format!("{peer} closed them and your application never did{held}"),
            format!(
                "{peer}'s FIN (often once the connection has sat idle: a keep-alive timeout), \
                 this host's ACK, then no FIN from this host. `closewait analyze` calls them \
                 unanswered_fin with this host as who_failed_to_respond; `closewait diagnose` \
                 reports a close_wait_leak and, from the idle time before each FIN, \
                 {peer}'s idle timeout"
            ),
            Some(CloseKind::UnansweredFin),
            Some(FindingId::CloseWaitLeak),
        ),
        TcpState::FinWait2 => (
            Warning,
            format!(
                "this host closed them and {peer} acknowledged, but {peer} has not closed its \
                 side: its application is slow to close or leaks sockets in CLOSE_WAIT \
                 (Linux drops an orphaned FIN_WAIT_2 after net.ipv4.tcp_fin_timeout, 60 s)"
            ),
            format!(
                "this host's FIN, {peer}'s ACK, then no FIN from {peer}: unanswered_fin with \
                 {peer} as who_failed_to_respond"
            ),
            Some(CloseKind::UnansweredFin),
            Some(FindingId::CloseWaitLeak),
        ),
        TcpState::FinWait1 => (
            Warning,
            format!(
                "this host closed them but {peer} has not acknowledged the FIN: {peer} or the \
                 path to it is gone, or its receive window is closed"
            ),
            "this host's FIN retransmitted with no ACK in return".to_string(),
            Some(CloseKind::UnansweredFin),
            None,
        ),
        TcpState::Closing => (
            Info,
            format!(
                "this host and {peer} closed at the same moment (simultaneous close); \
                 normally over within a round trip"
            ),
            "two FINs crossing on the wire: simultaneous".to_string(),
            Some(CloseKind::Simultaneous),
            None,
        ),
        TcpState::LastAck => (
            Warning,
            format!(
                "{peer} closed first, your application then closed too, and the last ACK has \
                 not come: normally brief; lasting ones mean {peer} vanished"
            ),
            format!("{peer}'s FIN, then this host's FIN retransmitted with no ACK"),
            Some(CloseKind::UnansweredFin),
            None,
        ),
        TcpState::TimeWait => (
            Info,
            "this host closed first (the active close) and keeps each 4-tuple for 60 s on \
             Linux: normal; many of them mean many short-lived connections (reuse them: \
             keep-alive, a pool) and, at thousands, ephemeral ports running out"
                .to_string(),
            "this host's FIN first: graceful, closed by this host".to_string(),
            Some(CloseKind::Graceful),
            None,
        ),
        TcpState::SynSent => (
            Warning,
            format!(
                "connection attempts get no answer: {peer} is down or a firewall drops the SYNs"
            ),
            "SYNs retransmitted with no SYN-ACK (syn_timeout), or answered by RST (refused)"
                .to_string(),
            Some(CloseKind::SynTimeout),
            Some(FindingId::SynTimeout),
        ),
        TcpState::SynReceived => (
            Warning,
            format!(
                "handshakes half done: this host answered {peer}'s SYN and the final ACK has \
                 not arrived"
            ),
            "SYN, SYN-ACK retransmitted, no ACK: handshake_incomplete".to_string(),
            Some(CloseKind::HandshakeIncomplete),
            None,
        ),
        TcpState::Established | TcpState::Listen | TcpState::Closed => return None,
    })
}

/// This host accepted the connections: the peers are its clients.
fn server(state: TcpState, held: &str) -> Option<Words> {
    use Severity::*;
    Some(match state {
        TcpState::CloseWait => (
            Error,
            format!(
                "the clients closed them and your server application never did{held}: a \
                 request handler that does not close its socket, or threads stuck"
            ),
            "the client's FIN, this host's ACK, then no FIN from this host: unanswered_fin \
             with the server as who_failed_to_respond; `closewait diagnose` reports a \
             close_wait_leak on the server side"
                .to_string(),
            Some(CloseKind::UnansweredFin),
            Some(FindingId::CloseWaitLeak),
        ),
        TcpState::FinWait2 => (
            Warning,
            "this host closed them (typically an idle keep-alive timeout) and the clients \
             acknowledged but never closed theirs: the clients probably leak sockets in \
             CLOSE_WAIT (run `closewait netstat` on a client host); Linux drops an orphaned \
             FIN_WAIT_2 after net.ipv4.tcp_fin_timeout, 60 s"
                .to_string(),
            "this host's FIN after an idle period, the client's ACK, then no FIN from the \
             client: unanswered_fin with the client as who_failed_to_respond; `closewait \
             diagnose` reports the client's close_wait_leak and this server's idle_timeout"
                .to_string(),
            Some(CloseKind::UnansweredFin),
            Some(FindingId::CloseWaitLeak),
        ),
        TcpState::FinWait1 => (
            Warning,
            "this host closed them but the clients have not acknowledged the FIN: they are \
             gone, or their receive windows are closed"
                .to_string(),
            "this host's FIN retransmitted with no ACK in return".to_string(),
            Some(CloseKind::UnansweredFin),
            None,
        ),
        TcpState::Closing => (
            Info,
            "this host and the clients closed at the same moment (simultaneous close); \
             normally over within a round trip"
                .to_string(),
            "two FINs crossing on the wire: simultaneous".to_string(),
            Some(CloseKind::Simultaneous),
            None,
        ),
        TcpState::LastAck => (
            Warning,
            "the clients closed first, this host closed too, and the last ACK has not come: \
             normally brief; lasting ones mean the clients vanished"
                .to_string(),
            "the client's FIN, then this host's FIN retransmitted with no ACK".to_string(),
            Some(CloseKind::UnansweredFin),
            None,
        ),
        TcpState::TimeWait => (
            Info,
            "this host closed first and keeps each 4-tuple for 60 s on Linux: normal for idle \
             timeouts and `Connection: close`, but on a busy server they add up; when clients \
             close first (a client idle timeout shorter than the server's), TIME_WAIT lands \
             on them instead"
                .to_string(),
            "this host's FIN first: graceful, closed by the server; `closewait diagnose` \
             reports server_time_wait"
                .to_string(),
            Some(CloseKind::Graceful),
            Some(FindingId::ServerTimeWait),
        ),
        TcpState::SynReceived => (
            Warning,
            "handshakes half done: the clients' final ACKs do not arrive (lossy path, spoofed \
             SYNs), or the accept queue is full"
                .to_string(),
            "SYN, SYN-ACK retransmitted, no ACK: handshake_incomplete".to_string(),
            Some(CloseKind::HandshakeIncomplete),
            None,
        ),
        TcpState::SynSent => (
            Warning,
            "connection attempts from this host's service port get no answer".to_string(),
            "SYNs retransmitted with no SYN-ACK: syn_timeout".to_string(),
            Some(CloseKind::SynTimeout),
            Some(FindingId::SynTimeout),
        ),
        TcpState::Established | TcpState::Listen | TcpState::Closed => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_wait_on_a_client_is_the_application_not_closing() {
        let f = explain(Role::Client, TcpState::CloseWait, 45, Some("java (pid 7)"))
            .expect("explained");
        assert_eq!(f.severity, Severity::Error);
        assert!(f
            .meaning
            .starts_with("the server closed them and your application never did"));
        assert!(f.meaning.contains("java (pid 7) holds them"));
        assert_eq!(f.finding, Some(FindingId::CloseWaitLeak));
    }

    #[test]
    fn fin_wait_2_on_a_server_points_at_the_clients() {
        let f = explain(Role::Server, TcpState::FinWait2, 45, None).expect("explained");
        assert!(f
            .meaning
            .contains("the clients probably leak sockets in CLOSE_WAIT"));
        assert!(f.look_for.contains("client as who_failed_to_respond"));
    }

    #[test]
    fn established_and_listen_need_no_words() {
        for role in [Role::Client, Role::Server, Role::Unknown] {
            assert_eq!(explain(role, TcpState::Established, 3, None), None);
            assert_eq!(explain(role, TcpState::Listen, 1, None), None);
        }
    }
}
