//! Bytes the capture lost but the receiver acknowledged, through the whole pipeline (flow
//! table, state machine, reassembly, HTTP parser): the ACK turns the hole into a gap as
//! soon as the capture holds bytes after it, and never past what the capture holds. And
//! the bytes before the parser started: which connections they leave HTTP, and which not.

use crate::analyze::{AnalyzeOptions, Analyzer};
use crate::http::{GiveUp, HttpConversation};
use crate::http_close::HttpCloseReason;
use crate::model::{secs, ConnectionReport};
use crate::testkit::{Wire, ACK, C, FIN, PSH, RST, S, SYN};

/// A conversation whose segments carry bytes; some are sent but never captured.
struct Talk {
    wire: Wire,
    payloads: Vec<Vec<u8>>,
    /// Next sequence number of the client and of the server.
    next: [u32; 2],
}

fn side(from_client: bool) -> usize {
    usize::from(!from_client)
}

impl Talk {
    /// The handshake, with the client's and the server's ISN.
    fn open(client_isn: u32, server_isn: u32) -> Talk {
        let mut talk = Talk {
            wire: Wire::new(),
            payloads: Vec::new(),
            next: [client_isn.wrapping_add(1), server_isn.wrapping_add(1)],
        };
        talk.segment(C, SYN, client_isn, 0, &[]);
        talk.segment(S, SYN | ACK, server_isn, talk.next[0], &[]);
        talk.segment(C, ACK, talk.next[0], talk.next[1], &[]);
        talk
    }

    fn segment(&mut self, from_client: bool, flags: u8, seq: u32, ack: u32, bytes: &[u8]) {
        self.wire
            .send(from_client, flags, seq, ack, bytes.len() as u32);
        self.payloads.push(bytes.to_vec());
    }

    /// Bytes sent and captured, acknowledging everything the other side sent.
    fn data(&mut self, from_client: bool, bytes: &[u8]) -> &mut Talk {
        let (me, peer) = (side(from_client), side(!from_client));
        let (seq, ack) = (self.next[me], self.next[peer]);
        self.segment(from_client, PSH | ACK, seq, ack, bytes);
        self.next[me] = seq.wrapping_add(bytes.len() as u32);
        self
    }

    /// [`Talk::data`], returning when the segment was captured (epoch seconds).
    fn data_at(&mut self, from_client: bool, bytes: &[u8]) -> f64 {
        self.data(from_client, bytes);
        secs(self.wire.segments.last().expect("a segment").ts_ns)
    }

    /// Bytes sent (and received) that the capture never saw.
    fn lost(&mut self, from_client: bool, bytes: &[u8]) -> &mut Talk {
        let me = side(from_client);
        self.next[me] = self.next[me].wrapping_add(bytes.len() as u32);
        self.wire.wait(0.001);
        self
    }

    /// A pure ACK of `ack`.
    fn ack_to(&mut self, from_client: bool, ack: u32) -> &mut Talk {
        let seq = self.next[side(from_client)];
        self.segment(from_client, ACK, seq, ack, &[]);
        self
    }

    /// A pure ACK of everything the other side sent.
    fn ack(&mut self, from_client: bool) -> &mut Talk {
        self.ack_to(from_client, self.next[side(!from_client)])
    }

    /// FIN (with ACK); `captured` false: sent, never captured.
    fn fin(&mut self, from_client: bool, captured: bool) -> &mut Talk {
        let (me, peer) = (side(from_client), side(!from_client));
        let (seq, ack) = (self.next[me], self.next[peer]);
        if captured {
            self.segment(from_client, FIN | ACK, seq, ack, &[]);
        } else {
            self.wire.wait(0.001);
        }
        self.next[me] = seq.wrapping_add(1);
        self
    }

    /// `secs` idle, then the server closes and the client follows.
    fn server_closes_after(&mut self, secs: f64) -> &mut Talk {
        self.wait(secs).fin(S, true).fin(C, true).ack(S)
    }

    fn wait(&mut self, secs: f64) -> &mut Talk {
        self.wire.wait(secs);
        self
    }

    fn report(&self) -> ConnectionReport {
        let mut analyzer = Analyzer::new(&AnalyzeOptions::default());
        let mut out = Vec::new();
        for (seg, payload) in self.wire.segments.iter().zip(&self.payloads) {
            analyzer.push_with_payload(seg, payload, &mut |r| out.push(r));
        }
        analyzer.finish(self.wire.ts_ns, &mut |r| out.push(r));
        assert_eq!(out.len(), 1, "one connection: {out:#?}");
        out.remove(0)
    }

    fn http(&self) -> HttpConversation {
        *self.report().http.expect("an HTTP conversation")
    }
}

/// Requests and responses read, and how often a direction gave up at a gap.
fn counts(http: &HttpConversation) -> (u64, u64, u32) {
    (
        http.requests,
        http.responses,
        http.gave_up.count(GiveUp::Gap),
    )
}

const GET_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_B: &[u8] = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
/// A response whose 20-byte body follows in two segments of 10.
const OK_20_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n";
const BODY_1: &[u8] = b"0123456789";
const BODY_2: &[u8] = b"abcdefghij";
const OK_EMPTY: &[u8] = b"HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5\r\n\r\n";

/// GET /a answered with a 20-byte body whose first half the capture lost.
fn body_half_lost(server_isn: u32) -> Talk {
    let mut talk = Talk::open(1000, server_isn);
    talk.data(C, GET_A)
        .data(S, OK_20_HEAD)
        .lost(S, BODY_1)
        .data(S, BODY_2);
    talk
}

/// GET /a answered with a 20-byte body whose first half the capture lost, then GET /b
/// answered; the server idle-closes 5 s later.
fn lost_body_then_second_exchange(server_isn: u32) -> Talk {
    let mut talk = body_half_lost(server_isn);
    talk.ack(C)
        .data(C, GET_B)
        .data(S, OK_EMPTY)
        .ack(C)
        .server_closes_after(5.0);
    talk
}

#[test]
fn lost_body_segment_is_skipped_at_the_ack_and_the_next_response_read_when_it_came() {
    let talk = lost_body_then_second_exchange(5000);
    let response_b_at = secs(talk.wire.segments[8].ts_ns);
    assert_eq!(talk.payloads[8], OK_EMPTY);
    let report = talk.report();
    let http = report.http.as_deref().expect("HTTP");
    // The gap fell inside a body of known length: skipped.
    assert_eq!(counts(http), (2, 2, 0));
    assert_eq!(http.unanswered_requests, Some(0));
    // Read when it arrived, not when the connection ended.
    assert_eq!(http.last_response_at, Some(response_b_at));
    let close = report.close.http.as_deref().expect("an HTTP close");
    assert_eq!(close.reason, HttpCloseReason::IdleTimeout);
    assert_eq!(close.idle_after_response, Some(5.002));
}

#[test]
fn lost_body_across_sequence_wraparound_reads_the_same() {
    // The server's stream crosses 2^32 inside the lost half of the body.
    let server_isn = u32::MAX - (OK_20_HEAD.len() as u32) - 4;
    let talk = lost_body_then_second_exchange(server_isn);
    let response_b_at = secs(talk.wire.segments[8].ts_ns);
    let http = talk.http();
    assert_eq!(counts(&http), (2, 2, 0));
    assert_eq!(http.last_response_at, Some(response_b_at));
}

#[test]
fn lost_response_head_gives_the_responses_up_at_the_ack_and_requests_still_count() {
    let mut talk = Talk::open(1000, 5000);
    talk.data(C, GET_A)
        .lost(S, OK_EMPTY)
        .data(C, GET_B)
        .data(S, OK_EMPTY)
        .ack(C)
        .data(C, GET_A)
        .wait(1.0)
        .fin(C, true)
        .fin(S, true)
        .ack(C);
    let http = talk.http();
    // A gap between messages cannot be skipped.
    assert_eq!(counts(&http), (3, 0, 1));
    assert_eq!(http.unanswered_requests, None, "pairing unknown");
}

#[test]
fn retransmission_seen_after_the_ack_is_a_duplicate_of_the_declared_gap() {
    let mut talk = body_half_lost(5000);
    talk.ack(C);
    // The lost half shows up after the ACK that declared it a gap (a spurious
    // retransmission, or a capture whose clock put it late).
    let body_1_seq = talk.next[1] - 20;
    let ack = talk.next[0];
    talk.segment(S, PSH | ACK, body_1_seq, ack, BODY_1);
    let response_b_at = talk.data(C, GET_B).data_at(S, OK_EMPTY);
    talk.ack(C).server_closes_after(5.0);
    let http = talk.http();
    assert_eq!(counts(&http), (2, 2, 0));
    assert_eq!(http.last_response_at, Some(response_b_at));
}

#[test]
fn ack_of_a_fin_the_capture_missed_is_not_a_missing_byte() {
    // The body's second half is held behind the lost first half; the server's FIN is
    // lost too and the client acknowledges it (FIN + 1): the skip stops at the end of the
    // held bytes, so the message ends complete and nothing is given up.
    let mut talk = body_half_lost(5000);
    talk.fin(S, false).ack(C).wait(3.0).fin(C, true);
    let http = talk.http();
    assert_eq!(counts(&http), (1, 1, 0));
}

#[test]
fn ack_past_what_the_capture_holds_leaves_later_segments_readable() {
    // The client's ACK covers the whole first response and the second one, which the
    // capture shows only after the ACK (its clock reordered them): the skip stops at the
    // held bytes, and the second response is read when it comes.
    let mut talk = body_half_lost(5000);
    let late_seq = talk.next[1];
    talk.ack_to(C, late_seq + OK_EMPTY.len() as u32);
    let ack = talk.next[0];
    talk.segment(S, PSH | ACK, late_seq, ack, OK_EMPTY);
    talk.next[1] = late_seq + OK_EMPTY.len() as u32;
    talk.server_closes_after(2.0);
    let http = talk.http();
    assert_eq!(counts(&http), (1, 2, 0));
}

#[test]
fn acks_before_any_data_change_nothing() {
    // ACKs far ahead of anything sent, before either side sent a byte, then an ordinary
    // exchange.
    let mut talk = Talk::open(1000, 5000);
    talk.ack_to(C, 5000 + 100_000).ack_to(S, 1000 + 100_000);
    let response_at = talk.data(C, GET_A).data_at(S, OK_EMPTY);
    talk.ack(C).server_closes_after(2.0);
    let http = talk.http();
    assert_eq!(counts(&http), (1, 1, 0));
    assert_eq!(http.last_response_at, Some(response_at));
}

#[test]
fn rst_with_ack_skips_like_any_ack() {
    // The client aborts with RST|ACK acknowledging the whole body, half of which the
    // capture lost; the held half is read then (the body is complete: nothing given up).
    let mut talk = body_half_lost(5000);
    let (seq, ack) = (talk.next[0], talk.next[1]);
    talk.segment(C, RST | ACK, seq, ack, &[]);
    let http = talk.http();
    assert_eq!(counts(&http), (1, 1, 0));
}

/// FTP (and SMTP, POP3…) greet first: the server's `220` comes before the client's first
/// word, which looks like a method (`USER` is a token) but is no request. The greeting,
/// sent before the parser started, is a gap in the server's direction; with no head read
/// and the client's bytes rejected, the connection is not HTTP and has no `http`.
#[test]
fn a_server_greeting_then_a_command_is_not_http() {
    let mut talk = Talk::open(1000, 5000);
    talk.data(S, b"220 ftp ready\r\n").ack(C);
    talk.data(C, b"USER zeek\r\n").ack(S);
    talk.data(S, b"230 USER OK\r\n").ack(C);
    talk.server_closes_after(1.0);
    assert_eq!(talk.report().http, None);
}

/// A greeting (or the tail of a response the capture began in) before a request that
/// parses: the requests are HTTP, and the skipped start of the server's direction is
/// reported as the gap it is.
#[test]
fn server_bytes_before_a_real_request_still_leave_the_requests_read() {
    let mut talk = Talk::open(1000, 5000);
    talk.data(S, b"tail of something\r\n").ack(C);
    talk.data(C, GET_A).ack(S);
    talk.server_closes_after(1.0);
    assert_eq!(counts(&talk.http()), (1, 0, 1));
}
