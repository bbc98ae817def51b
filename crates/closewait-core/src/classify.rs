//! The close classifier: from what the state machine recorded to one verdict per
//! connection.
//!
//! It reads only [`Conversation`] (the facts and states `tcp` recorded) and never looks at
//! segments itself, so a verdict can never disagree with the states a diagram draws.
//!
//! The rules, in the order they are tried (RFC 9293 §3.6 "Closing a Connection" names
//! the three ways a close can go: local user closes first, remote closes first, both at
//! once):
//!
//! 1. No handshake ever completed: `refused` (the SYN was answered by an acceptable RST,
//!    §3.10.7.3), `syn_timeout` (SYNs never answered), `handshake_incomplete` (SYN,ACK
//!    seen, no final ACK).
//! 2. A valid RST ended it: `fin_then_rst` if a FIN came first, else `abort`.
//! 3. Both sides sent FINs: `simultaneous` when each sent its FIN before acknowledging the
//!    other's (both went FIN-WAIT-1, §3.6 case 3), else `half_close` when the side that got
//!    the first FIN sent data in CLOSE-WAIT before its own FIN, else `graceful`.
//! 4. One FIN only: `unanswered_fin` (the peer sits in CLOSE-WAIT, or never acknowledged).
//! 5. Neither: `open`.
//!
//! A verdict's explanation is kept as facts ([`Explanation`]); the sentences are worded in
//! `explain`.

use crate::model::{Close, CloseKind, Explanation, Initiator, Side};
use crate::state::TcpState;
use crate::tcp::{Conversation, End, FirstClose, Moment, Reset};

/// Which end of the conversation plays each role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub client: End,
}

impl Roles {
    pub fn side_of(self, end: End) -> Side {
        if end == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }
    pub fn end_of(self, side: Side) -> End {
        match side {
            Side::Client => self.client,
            Side::Server => self.client.other(),
        }
    }
}

fn secs(m: Moment) -> f64 {
    crate::model::secs(m.ts_ns)
}

/// Classifies a finished conversation. `capture_end_ns` is the last timestamp of the whole
/// capture: how long a silent side has been waiting is measured to it.
pub fn classify(conv: &Conversation, roles: Roles, capture_end_ns: i64) -> Close {
    let client = &conv.ends[roles.client];
    let server = &conv.ends[roles.client.other()];
    let side = |end: End| roles.side_of(end);
    // Durations are computed in integer nanoseconds, then converted, so that they print
    // without float noise.
    let span = |from_ns: i64, to_ns: i64| ((to_ns - from_ns) as f64 / 1e9).max(0.0);

    let mut close = Close {
        kind: CloseKind::Open,
        initiator: Initiator::None,
        first: None,
        first_by: None,
        first_at: None,
        first_frame: None,
        idle_before_close: None,
        rst_by: conv.reset.map(|r| side(r.by)),
        who_failed_to_respond: None,
        waiting_since: None,
        waiting_for: None,
        explanation: Explanation::Open,
        http: None,
        captured_one_way: None,
    };
    if let Some(FirstClose { by, signal, at: m }) = conv.first_close {
        close.first = Some(signal);
        close.first_by = Some(side(by));
        close.first_at = Some(secs(m));
        close.first_frame = Some(m.frame());
        close.idle_before_close = conv
            .quiet_since
            .map(|q| ((m.ts_ns - q.ts_ns) as f64 / 1e9).max(0.0));
    }

    // 1. Handshake failures. A connection seen mid-stream was synchronized already.
    let synchronized = conv.established.is_some()
        || client.peer_fin_received.is_some()
        || server.peer_fin_received.is_some();
    if !synchronized {
        let server_answered = server.syn_ack.is_some();
        if let (Some(Reset { by, at: rm }), false) = (conv.reset, server_answered) {
            if side(by) == Side::Server {
                close.kind = CloseKind::Refused;
                close.explanation = Explanation::Refused {
                    after: span(client.syn.unwrap_or(rm).ts_ns, rm.ts_ns),
                };
                return close;
            }
        }
        if !server_answered && conv.reset.is_none() && client.syn.is_some() {
            close.kind = CloseKind::SynTimeout;
            let since = client.syn.unwrap_or(conv.first);
            close.who_failed_to_respond = Some(Side::Server);
            close.waiting_since = Some(secs(since));
            close.waiting_for = Some(span(since.ts_ns, capture_end_ns));
            close.explanation = Explanation::SynTimeout {
                syns: conv.dirs[roles.client].packets,
                over: span(since.ts_ns, conv.last.ts_ns),
            };
            return close;
        }
        if server_answered || conv.reset.is_some() {
            close.kind = CloseKind::HandshakeIncomplete;
            if server_answered && conv.reset.is_none() {
                let since = server.syn_ack.unwrap_or(conv.first);
                close.who_failed_to_respond = Some(Side::Client);
                close.waiting_since = Some(secs(since));
                close.waiting_for = Some(span(since.ts_ns, capture_end_ns));
            }
            close.initiator = match conv.reset {
                Some(r) => side(r.by).into(),
                None => Initiator::None,
            };
            close.explanation = match conv.reset {
                Some(r) => Explanation::HandshakeReset { by: side(r.by) },
                None => Explanation::HandshakeUnfinished,
            };
            return close;
        }
    }

    let first_by = match conv.first_close {
        Some(f) => f.by,
        None => {
            close.kind = CloseKind::Open;
            close.explanation = Explanation::Open;
            return close;
        }
    };
    let first_side = side(first_by);
    let first_end = &conv.ends[first_by];
    let other_end = &conv.ends[first_by.other()];
    close.initiator = first_side.into();

    // Who got a FIN and never answered with its own (before the end of the connection).
    let connection_end_ns = conv.reset.map(|r| r.at.ts_ns).unwrap_or(capture_end_ns);
    for i in [End::A, End::B] {
        let (end, peer) = (&conv.ends[i], &conv.ends[i.other()]);
        if peer.fin.is_some() && end.fin.is_none() {
            if let Some(since) = end.peer_fin_received.or(peer.fin) {
                // Only the side that received the FIN first (or the sole one) counts.
                if close.who_failed_to_respond.is_none() {
                    close.who_failed_to_respond = Some(side(i));
                    close.waiting_since = Some(secs(since));
                    close.waiting_for = Some(span(since.ts_ns, connection_end_ns));
                }
            }
        }
    }

    // 2. Ended by a valid RST.
    if let Some(Reset { by, at: rm }) = conv.reset {
        let rst_side = side(by);
        let fin_before = conv
            .ends
            .iter()
            .filter_map(|e| e.fin)
            .any(|f| f.ts_ns <= rm.ts_ns && f.frame() < rm.frame());
        if fin_before {
            close.kind = CloseKind::FinThenRst;
            close.explanation = Explanation::FinThenRst {
                first: first_side,
                rst_by: rst_side,
                after: span(conv.first_close.map_or(rm, |f| f.at).ts_ns, rm.ts_ns),
                silent: close.who_failed_to_respond,
            };
        } else {
            close.kind = CloseKind::Abort;
            close.initiator = rst_side.into();
            close.explanation = Explanation::Abort { by: rst_side };
        }
        return close;
    }

    // 3. Both FINs.
    if first_end.fin.is_some() && other_end.fin.is_some() {
        let both_active = conv.ends.iter().all(|e| {
            matches!(
                e.fin_sent_from,
                Some(TcpState::Established | TcpState::SynReceived)
            )
        });
        if both_active {
            close.kind = CloseKind::Simultaneous;
            close.initiator = Initiator::Both;
            close.explanation = Explanation::Simultaneous;
        } else if other_end.data_in_close_wait {
            close.kind = CloseKind::HalfClose;
            close.explanation = Explanation::HalfClose { first: first_side };
        } else {
            close.kind = CloseKind::Graceful;
            close.explanation = Explanation::Graceful {
                first: first_side,
                after: match other_end.fin.zip(other_end.peer_fin_received) {
                    Some((f, r)) if f.ts_ns - r.ts_ns > 0 => Some((f.ts_ns - r.ts_ns) as f64 / 1e9),
                    _ => None,
                },
            };
        }
        return close;
    }

    // 4. One FIN only.
    close.kind = CloseKind::UnansweredFin;
    close.explanation = match (other_end.state, close.waiting_for) {
        (TcpState::CloseWait, Some(w)) => Explanation::UnansweredFin {
            first: first_side,
            idle: close.idle_before_close,
            close_wait: w,
        },
        _ => Explanation::UnacknowledgedFin { first: first_side },
    };
    close
}

/// The netstat-style end state of each role.
pub fn end_states(conv: &Conversation, roles: Roles) -> (TcpState, TcpState) {
    (
        conv.ends[roles.client].state,
        conv.ends[roles.client.other()].state,
    )
}

#[cfg(test)]
mod tests {
    use crate::model::{CloseKind, CloseSignal, Initiator, Side};
    use crate::state::TcpState;
    use crate::testkit::*;

    #[test]
    fn client_closes_first_graceful_client_time_wait() {
        let mut w = Wire::new();
        w.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Graceful);
        assert_eq!(r.close.initiator, Initiator::Client);
        assert_eq!(r.close.first, Some(CloseSignal::Fin));
        assert_eq!(r.close.first_by, Some(Side::Client));
        assert_eq!(r.close.who_failed_to_respond, None);
        assert_eq!(r.client_state, TcpState::TimeWait);
        assert_eq!(r.server_state, TcpState::Closed);
        assert!(!r.role_inferred);
    }

    #[test]
    fn server_idle_close_client_never_closes_is_unanswered_fin() {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        let r = w.analyze_with_tail(105.0).remove(0);
        assert_eq!(r.close.kind, CloseKind::UnansweredFin);
        assert_eq!(r.close.initiator, Initiator::Server);
        assert_eq!(r.close.who_failed_to_respond, Some(Side::Client));
        assert_eq!(r.client_state, TcpState::CloseWait);
        assert_eq!(r.server_state, TcpState::FinWait2);
        let idle = r.close.idle_before_close.unwrap();
        assert!((idle - 15.002).abs() < 1e-6, "idle {idle}");
        let waiting = r.close.waiting_for.unwrap();
        assert!((waiting - 105.0).abs() < 0.01, "waiting {waiting}");
    }

    #[test]
    fn expired_fin_wait_2_then_late_write_is_fin_then_rst() {
        let mut w = Wire::new();
        w.exchange()
            .wait(1.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0)
            .wait(4.0)
            .send(C, PSH | ACK, 1101, 5202, 20)
            .send(S, RST, 5202, 0, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::FinThenRst);
        assert_eq!(r.close.initiator, Initiator::Server);
        assert_eq!(r.close.rst_by, Some(Side::Server));
        assert_eq!(r.close.who_failed_to_respond, Some(Side::Client));
        assert_eq!(
            (r.client_state, r.server_state),
            (TcpState::Closed, TcpState::Closed)
        );
    }

    #[test]
    fn keepalive_race_idle_is_measured_from_what_the_closer_saw() {
        let mut w = Wire::new();
        w.exchange()
            .wait(1.0)
            // The client's next request and the server's idle FIN cross on the wire: the
            // FIN does not acknowledge the request.
            .send(C, PSH | ACK, 1101, 5201, 50)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(S, RST, 5201, 0, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::FinThenRst);
        let idle = r.close.idle_before_close.unwrap();
        assert!((idle - 1.003).abs() < 1e-6, "idle {idle}");
    }

    #[test]
    fn server_closes_client_follows_server_time_wait() {
        let mut w = Wire::new();
        w.exchange()
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, FIN | ACK, 1101, 5202, 0)
            .send(S, ACK, 5202, 1102, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Graceful);
        assert_eq!(r.close.initiator, Initiator::Server);
        assert_eq!(
            (r.client_state, r.server_state),
            (TcpState::Closed, TcpState::TimeWait)
        );
    }

    #[test]
    fn simultaneous_close_both_time_wait() {
        let mut w = Wire::new();
        w.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1102, 5202, 0)
            .send(S, ACK, 5202, 1102, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Simultaneous);
        assert_eq!(r.close.initiator, Initiator::Both);
        assert_eq!(
            (r.client_state, r.server_state),
            (TcpState::TimeWait, TcpState::TimeWait)
        );
    }

    #[test]
    fn linger_zero_close_is_abort_by_client() {
        let mut w = Wire::new();
        w.exchange().send(C, RST | ACK, 1101, 5201, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Abort);
        assert_eq!(r.close.initiator, Initiator::Client);
        assert_eq!(r.close.first, Some(CloseSignal::Rst));
        assert_eq!(r.close.rst_by, Some(Side::Client));
    }

    #[test]
    fn connection_refused() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0).send(S, RST | ACK, 0, 1001, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Refused);
        assert_eq!(r.close.initiator, Initiator::None);
        assert_eq!(r.close.first_by, Some(Side::Server));
        assert_eq!(r.close.rst_by, Some(Side::Server));
    }

    #[test]
    fn syn_timeout_server_failed_to_respond() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0)
            .wait(1.0)
            .send(C, SYN, 1000, 0, 0)
            .wait(2.0)
            .send(C, SYN, 1000, 0, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::SynTimeout);
        assert_eq!(r.close.who_failed_to_respond, Some(Side::Server));
        assert_eq!(r.client_state, TcpState::SynSent);
        assert_eq!(r.packets.client, 3);
    }

    #[test]
    fn handshake_incomplete_client_never_acks() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0).send(S, SYN | ACK, 5000, 1001, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::HandshakeIncomplete);
        assert_eq!(r.close.who_failed_to_respond, Some(Side::Client));
        assert_eq!(r.server_state, TcpState::SynReceived);
    }

    #[test]
    fn half_close_server_keeps_sending() {
        let mut w = Wire::new();
        w.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, ACK, 5201, 1102, 0)
            .send(S, PSH | ACK, 5201, 1102, 1000)
            .send(C, ACK, 1102, 6201, 0)
            .send(S, FIN | ACK, 6201, 1102, 0)
            .send(C, ACK, 1102, 6202, 0);
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::HalfClose);
        assert_eq!(r.close.initiator, Initiator::Client);
        assert_eq!(
            (r.client_state, r.server_state),
            (TcpState::TimeWait, TcpState::Closed)
        );
    }

    #[test]
    fn open_connection() {
        let mut w = Wire::new();
        w.exchange();
        let r = w.only();
        assert_eq!(r.close.kind, CloseKind::Open);
        assert_eq!(
            (r.client_state, r.server_state),
            (TcpState::Established, TcpState::Established)
        );
    }

    #[test]
    fn port_reuse_after_time_wait_is_two_connections() {
        let mut w = Wire::new();
        w.exchange()
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, FIN | ACK, 1101, 5202, 0)
            .send(S, ACK, 5202, 1102, 0)
            .wait(2.0)
            .send(C, SYN, 90_000, 0, 0)
            .send(S, SYN | ACK, 70_000, 90_001, 0)
            .send(C, ACK, 90_001, 70_001, 0);
        let all = w.analyze();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].close.kind, CloseKind::Graceful);
        // The server's TIME_WAIT ended when the 4-tuple was reused.
        assert_eq!(all[0].server_state, TcpState::Closed);
        assert_eq!(all[1].close.kind, CloseKind::Open);
        assert_eq!(all[1].id, 1);
    }

    #[test]
    fn retransmitted_syn_is_same_connection() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0).wait(1.0).exchange();
        assert_eq!(w.analyze().len(), 1);
    }

    #[test]
    fn midstream_roles_inferred_from_ports() {
        let mut w = Wire::new();
        // The capture starts with the server's data.
        w.send(S, PSH | ACK, 5201, 1101, 10)
            .send(C, ACK, 1101, 5211, 0)
            .send(C, FIN | ACK, 1101, 5211, 0);
        let r = w.only();
        assert!(r.role_inferred);
        assert_eq!(r.client, w.client);
        assert_eq!(r.server, w.server);
        assert_eq!(r.close.kind, CloseKind::UnansweredFin);
        assert_eq!(r.close.first_by, Some(Side::Client));
    }

    #[test]
    fn time_wait_expires_when_capture_runs_on() {
        let mut w = Wire::new();
        w.exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let r = w.analyze_with_tail(61.0).remove(0);
        assert_eq!(r.client_state, TcpState::Closed);
        let last = r.timeline.client.last().unwrap();
        assert_eq!(last.frame, None);
    }

    #[test]
    fn diagram_records_carry_both_states() {
        let mut w = Wire::new();
        w.exchange()
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        let r = w.only();
        let segs = r.segments.unwrap();
        let last = segs.last().unwrap();
        assert_eq!(last.client_state, TcpState::CloseWait);
        assert_eq!(last.server_state, TcpState::FinWait2);
        assert_eq!(segs[0].seq, 0);
        assert_eq!(segs[1].ack, Some(1));
        assert_eq!(segs[0].flags, "SYN");
    }
}
