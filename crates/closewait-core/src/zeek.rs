//! Zeek-compatible `conn_state` and `history`, computed by an observer that follows Zeek's own
//! TCP analyzer rather than closewait's RFC 9293 state machine.
//!
//! Why a second state machine: Zeek's `conn.log` is what many people already read, and its
//! two columns mean precisely what Zeek's endpoint tracker does, quirks included (an
//! originator whose SYN was never answered stays "SYN sent" however much data it sends; a
//! FIN from either side makes that side "closed" whatever the peer did). Deriving them from
//! closewait's RFC states would agree on textbook connections and drift everywhere else, so
//! this module re-implements Zeek's documented behaviour on its own, from the same
//! [`Segment`]s, and never looks at `tcp.rs`.
//!
//! What it mirrors (facts from Zeek's `conn.log` documentation and its TCP analyzer):
//! - per-endpoint states INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED,
//!   RESET and their transitions;
//! - history letters `s h a d f r t w g i q ^` (upper case for the originator): `a d i q`
//!   at most once per direction; `s h f r` again only when the sequence number differs from
//!   the last one of that letter; `t w g` on the 1st, 10th, 100th… occurrence;
//! - the `conn_state` decision table (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH,
//!   SHR, OTH), including the sizes it consults for REJ.
//!
//! What it cannot mirror:
//! - `c` (bad checksum): a [`Segment`] carries no checksum verdict, so `c` never appears.
//! - `g` (content gap) is approximated: Zeek reports a gap when its stream reassembler is
//!   asked to deliver data an ACK covers but the capture never showed. Here each direction
//!   keeps the contiguous edge plus one block above a hole, which is exact for one loss at
//!   a time and may under-report interleaved losses. Zeek reassembles only when some
//!   analyzer wants the stream; this module assumes it always does.
//! - `x` (analysis partial, set by application-layer analyzers) never appears.
//! - Who the originator is: Zeek takes the first packet's sender and flips the roles when
//!   that packet is a SYN-ACK or mid-stream traffic from one of its "likely server ports"
//!   (a set that depends on the analyzers loaded). The caller (the flow table) makes that
//!   choice with its own port rule and passes `flipped`, which becomes the leading `^`.
//!   Zeek's later flip (a SYN-ACK captured before its SYN, then the SYN) is not repeated:
//!   the roles stay the caller's, and both endpoints end up established as in Zeek.
//! - Timers: Zeek removes a connection when one of its timers fires, and the next packet
//!   of the 4-tuple starts a new conn.log row. This observer mirrors that splitting
//!   ([`ZeekTracker::rows`]): `tcp_attempt_delay` (5 s after the first packet, if the
//!   originator's SYN is still unanswered), `tcp_reset_delay` (5 s after a RST),
//!   `tcp_close_delay` (5 s after the second FIN), `tcp_partial_close_delay` (3 s after a
//!   FIN from one side while the other never spoke), `tcp_inactivity_timeout` (5 min of
//!   silence), and a SYN arriving once either side has closed or reset (Zeek's connection
//!   reuse). A timer fires when the first packet past its deadline arrives, as in Zeek's
//!   packet-driven clock. Zeek's `duration` is approximated by first to last packet.
//! - Sequence numbers are tracked modulo 2^32 (Zeek counts wraps); only connections moving
//!   4 GiB or more in one direction can differ.

use crate::model::{secs, ZeekRowCounts, ZeekView};
use crate::segment::Segment;

/// Zeek's per-endpoint TCP states (`TCP_ENDPOINT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EpState {
    /// Nothing seen from this side yet.
    Inactive,
    /// Sent a SYN, no SYN-ACK from the peer seen.
    SynSent,
    /// An originator that opened with a SYN-ACK.
    SynAckSent,
    /// Sent something without a SYN first (joined mid-stream).
    Partial,
    Established,
    /// Sent a FIN.
    Closed,
    /// Sent a RST.
    Reset,
}

/// Bits of the "seen once" history letters, one set per direction.
mod seen {
    pub const SYN: u8 = 0x01;
    pub const FIN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const FIN_RST: u8 = 0x08;
    pub const DATA: u8 = 0x10;
    pub const ACK: u8 = 0x20;
    pub const MULTI_FLAG: u8 = 0x40;
}

/// Zeek's "data is only worth a sequence-number update if it is not absurdly far away"
/// threshold for SYN and RST segments (1 MiB).
const TOO_LARGE_SEQ_DELTA: i32 = 1 << 20;

/// Sequence space is circular: the signed distance from `b` to `a` (RFC 9293 §3.4).
fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// True for 1, 10, 100, …: the counts at which Zeek writes another `t`, `w` or `g`.
fn is_power_of_ten(n: u32) -> bool {
    let mut p = 1u32;
    loop {
        if n == p {
            return true;
        }
        match p.checked_mul(10) {
            Some(next) if next <= n => p = next,
            _ => return false,
        }
    }
}

/// Zeek's `tcp_attempt_delay`, `tcp_reset_delay` and `tcp_close_delay` (init-bare.zeek).
const ATTEMPT_DELAY_NS: i64 = 5_000_000_000;
const RESET_DELAY_NS: i64 = 5_000_000_000;
const CLOSE_DELAY_NS: i64 = 5_000_000_000;
/// Zeek's `tcp_partial_close_delay`.
const PARTIAL_CLOSE_DELAY_NS: i64 = 3_000_000_000;
/// Zeek's `tcp_inactivity_timeout` (5 min).
const INACTIVITY_TIMEOUT_NS: i64 = 300_000_000_000;

/// One conn.log row finished by one of Zeek's timers (or by the end of the connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedRow {
    /// The row's originator is the connection's first row's originator (false: the row
    /// was started by the other side).
    pub same_orig: bool,
    /// Capture times (ns) of the row's first and last packets.
    pub start_ns: i64,
    pub last_ns: i64,
    pub conn_state: &'static str,
    pub history: String,
    /// Payload bytes by sequence numbers (Zeek's `orig_bytes`, `resp_bytes`).
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    /// Bytes acknowledged but never seen (Zeek's `missed_bytes`).
    pub missed_bytes: u64,
    pub orig_pkts: u64,
    pub resp_pkts: u64,
}

/// The rows of a tracker and the clock of its current one, kept apart so that the tracker
/// of an ordinary connection stays small.
#[derive(Clone, Debug, Default)]
struct RowClock {
    /// Capture times (ns) of the current row's first and last packets.
    start_ns: i64,
    last_ns: i64,
    /// When the current row's close/reset timer fires (`i64::MAX`: none set).
    delete_at: i64,
    /// Packets of the current row from its originator and responder.
    pkts: [u32; 2],
}

/// One side of the connection, as Zeek's endpoint tracker sees it.
#[derive(Clone, Debug)]
struct Endpoint {
    state: EpState,
    prev_state: EpState,
    /// Initial sequence number (or first seen minus one when no SYN was seen).
    start_seq: u32,
    /// One past the highest sequence number this side has sent.
    last_seq: u32,
    /// Highest acknowledgement the peer sent for this side's data.
    ack_seq: u32,
    /// Relative sequence numbers of the last SYN, FIN (its end) and RST, to decide whether
    /// a repeated one is new.
    last_syn: u32,
    last_fin: u32,
    last_rst: u32,
    /// Relative sequence number just past this side's FIN (valid when `fin_seen`).
    fin_seq: u32,
    fin_seen: bool,
    /// Whether the side's current ESTABLISHED state came from an unsolicited SYN-ACK from
    /// the responder (lets a late SYN from the originator complete the handshake).
    synack_unsolicited: bool,
    /// `seen::*` bits.
    seen: u8,
    retransmits: u32,
    zero_windows: u32,
    gaps: u32,
    /// Bytes declared missing (Zeek's missed_bytes of this side's stream).
    missed: u32,
    /// Reassembly of this side's stream, relative sequence numbers (data starts at 1):
    /// everything below `next` was delivered or declared missing, nothing below `trim` is
    /// kept, and `[hole_lo, hole_hi)` is data seen above a hole (empty when equal).
    next: u32,
    trim: u32,
    hole_lo: u32,
    hole_hi: u32,
}

impl Endpoint {
    fn new() -> Self {
        Endpoint {
            state: EpState::Inactive,
            prev_state: EpState::Inactive,
            start_seq: 0,
            last_seq: 0,
            ack_seq: 0,
            last_syn: 0,
            last_fin: 0,
            last_rst: 0,
            fin_seq: 0,
            fin_seen: false,
            synack_unsolicited: false,
            seen: 0,
            retransmits: 0,
            zero_windows: 0,
            gaps: 0,
            missed: 0,
            next: 1,
            trim: 1,
            hole_lo: 0,
            hole_hi: 0,
        }
    }

    fn set_state(&mut self, s: EpState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    /// Restart the sequence bookkeeping at `seq` (a SYN, or a guess from a first packet).
    fn init_seqs(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    fn rel(&self, seq: u32) -> u32 {
        seq.wrapping_sub(self.start_seq)
    }

    /// "Clean" for gap reporting: established, or closed by a FIN after being established.
    fn is_clean(&self) -> bool {
        self.state == EpState::Established
            || (self.state == EpState::Closed && self.prev_state == EpState::Established)
    }

    /// True if none of this side's data was acknowledged (the SYN octet aside).
    fn no_data_acked(&self) -> bool {
        let d = self.ack_seq.wrapping_sub(self.start_seq);
        d == 0 || d == 1
    }

    /// Payload bytes by sequence numbers, as Zeek's `orig$size`/`resp$size`.
    fn size(&self, peer_state: EpState) -> u64 {
        // A half-open connection found and aborted: its sequence numbers mean nothing.
        if self.prev_state == EpState::SynSent
            && self.state == EpState::Reset
            && peer_state == EpState::Inactive
            && !self.no_data_acked()
        {
            return 0;
        }
        let top = if seq_delta(self.last_seq, self.ack_seq) > 0 {
            self.last_seq
        } else {
            self.ack_seq
        };
        let mut size = top.wrapping_sub(self.start_seq) as u64;
        // Neither the SYN nor the FIN octet is payload.
        size = size.saturating_sub(1);
        if self.fin_seen && size != 0 {
            size -= 1;
        }
        size
    }
}

/// Zeek's history letters (ASCII), inline up to 16: an ordinary connection's history
/// (`ShADadFf`) needs no allocation.
type History = smallvec::SmallVec<[u8; 16]>;

/// Zeek's view of one connection, fed segment by segment. About 220 bytes.
#[derive(Clone, Debug)]
pub struct ZeekTracker {
    orig: Endpoint,
    resp: Endpoint,
    history: History,
    /// Zeek's "partial connection" flag (the first packet of a side was not a clean SYN).
    partial: bool,
    first_seen_orig: bool,
    first_seen_resp: bool,
    /// The current row's originator is the connection's first row's responder.
    swapped: bool,
    clock: RowClock,
    /// Rows Zeek's timers finished before the current one (none for most connections).
    /// Boxed on purpose: one word in every tracker instead of a `Vec`'s three.
    #[allow(clippy::box_collection)]
    earlier: Option<Box<Vec<FinishedRow>>>,
}

impl ZeekTracker {
    /// `flipped`: true when the originator chosen by the caller is not the sender of the
    /// connection's first packet (Zeek marks such a direction flip with '^' in history).
    pub fn new(flipped: bool) -> Self {
        ZeekTracker {
            orig: Endpoint::new(),
            resp: Endpoint::new(),
            history: if flipped {
                History::from_slice(b"^")
            } else {
                History::new()
            },
            partial: false,
            first_seen_orig: false,
            first_seen_resp: false,
            swapped: false,
            clock: RowClock {
                start_ns: 0,
                last_ns: 0,
                delete_at: i64::MAX,
                pkts: [0; 2],
            },
            earlier: None,
        }
    }

    /// Whether Zeek would have removed the connection before `seg` arrived, so that `seg`
    /// starts a new row.
    fn ends_before(&self, seg: &Segment) -> bool {
        let clock = &self.clock;
        if clock.pkts == [0, 0] {
            return false;
        }
        let t = seg.ts_ns;
        let attempt_unanswered = matches!(self.orig.state, EpState::SynSent | EpState::SynAckSent)
            && self.resp.state == EpState::Inactive;
        let closed = |s: EpState| matches!(s, EpState::Closed | EpState::Reset);
        // Zeek's IsReuse: an initial SYN once either side has closed opens a new connection
        // (a SYN with a new sequence number is a new connection to the flow table already).
        let reuse = seg.flags.syn()
            && !seg.flags.ack()
            && (closed(self.orig.state) || closed(self.resp.state));
        t >= clock.delete_at
            || t.saturating_sub(clock.last_ns) > INACTIVITY_TIMEOUT_NS
            || (attempt_unanswered && t >= clock.start_ns.saturating_add(ATTEMPT_DELAY_NS))
            || reuse
    }

    /// The current row as Zeek would log it now.
    fn current_row(&self) -> FinishedRow {
        FinishedRow {
            same_orig: !self.swapped,
            start_ns: self.clock.start_ns,
            last_ns: self.clock.last_ns,
            conn_state: self.conn_state(),
            history: history_string(&self.history),
            orig_bytes: self.orig.size(self.resp.state),
            resp_bytes: self.resp.size(self.orig.state),
            missed_bytes: u64::from(self.orig.missed) + u64::from(self.resp.missed),
            orig_pkts: u64::from(self.clock.pkts[0]),
            resp_pkts: u64::from(self.clock.pkts[1]),
        }
    }

    /// Every conn.log row of the connection so far, oldest first (the last one still open).
    pub fn rows(&self) -> Vec<FinishedRow> {
        let mut rows: Vec<FinishedRow> = self.earlier.as_deref().cloned().unwrap_or_default();
        rows.push(self.current_row());
        rows
    }

    /// Sets the close/reset timer after the states moved, as Zeek's analyzer does when an
    /// endpoint closes or resets.
    fn arm_delete_timer(&mut self, before: (EpState, EpState), t: i64) {
        let now = (self.orig.state, self.resp.state);
        if now == before {
            return;
        }
        let reset = |s: EpState| s == EpState::Reset;
        let closed = |s: EpState| s == EpState::Closed;
        let silent = |s: EpState| matches!(s, EpState::Inactive | EpState::Partial);
        let delay = if (reset(now.0) && !reset(before.0)) || (reset(now.1) && !reset(before.1)) {
            RESET_DELAY_NS
        } else if closed(now.0) && closed(now.1) {
            CLOSE_DELAY_NS
        } else if (closed(now.0) && silent(now.1)) || (closed(now.1) && silent(now.0)) {
            PARTIAL_CLOSE_DELAY_NS
        } else {
            return;
        };
        self.clock.delete_at = self.clock.delete_at.min(t.saturating_add(delay));
    }

    /// Finishes the current row and starts a new one whose first packet is `seg`; returns
    /// whether `seg`'s sender is the new row's originator seen from the caller (see
    /// [`ZeekTracker::observe`]).
    fn start_new_row(&mut self, seg: &Segment, from_orig: bool) -> bool {
        let finished = self.current_row();
        let mut earlier = self.earlier.take().unwrap_or_default();
        earlier.push(finished);
        // Zeek's originator of the new connection: the sender, unless its first packet is a
        // SYN-ACK or comes mid-stream from a well-known port (the flow table's rule).
        let flipped = if seg.flags.syn() {
            seg.flags.ack()
        } else {
            seg.src.port() < 1024 && seg.dst.port() >= 1024
        };
        // The sender's side relative to the connection's first row.
        let sender_is_first_orig = from_orig != self.swapped;
        let orig_is_first_orig = sender_is_first_orig != flipped;
        *self = ZeekTracker::new(flipped);
        self.swapped = !orig_is_first_orig;
        self.earlier = Some(earlier);
        !flipped
    }

    /// Feed every segment of the connection in capture order. `from_orig`: sent by the
    /// originator (upper-case letters in the history).
    pub fn observe(&mut self, seg: &Segment, from_orig: bool) {
        // `from_orig` names the connection's first row's originator; within a later row
        // started by the other side the letters are the other way round.
        let mut from_orig = from_orig != self.swapped;
        if self.ends_before(seg) {
            from_orig = self.start_new_row(seg, from_orig);
        }
        let clock = &mut self.clock;
        if clock.pkts == [0, 0] {
            clock.start_ns = seg.ts_ns;
        }
        clock.last_ns = clock.last_ns.max(seg.ts_ns);
        let count = &mut clock.pkts[usize::from(!from_orig)];
        *count = count.saturating_add(1);
        let before = (self.orig.state, self.resp.state);
        self.observe_in_row(seg, from_orig);
        self.arm_delete_timer(before, seg.ts_ns);
    }

    /// [`ZeekTracker::observe`] within the current row.
    fn observe_in_row(&mut self, seg: &Segment, from_orig: bool) {
        let f = seg.flags;
        let len = seg.payload_len;
        let base_seq = seg.seq;
        let ack_seq = seg.ack;

        self.update_partial(from_orig, f.syn(), f.ack());

        // Sequence space of the segment: SYN and FIN count one each; a RST's payload is
        // not part of the stream.
        let mut seg_len = len + f.syn() as u32 + f.fin() as u32;
        if f.rst() {
            seg_len -= len;
        }
        let seq_end = base_seq.wrapping_add(seg_len);

        let (ep, _) = self.sides(from_orig);
        init_endpoint(ep, f.syn(), base_seq, seq_end);
        let rel_seq = ep.rel(base_seq);
        let seq_underflow = seq_delta(base_seq, ep.start_seq) < 0;

        self.update_history(from_orig, f.syn(), f.fin(), f.rst(), f.ack(), rel_seq, len);

        let (ep, peer) = self.sides(from_orig);
        // A zero window is news unless it comes with or after this side's RST, or after the
        // peer's FIN (nothing more to receive then).
        let zero_window = seg.window == 0
            && !f.rst()
            && peer.state != EpState::Closed
            && ep.state != EpState::Reset;
        if zero_window {
            ep.zero_windows += 1;
            let n = ep.zero_windows;
            self.scaled_letter(from_orig, b'W', n);
        }

        let (ep, peer) = self.sides(from_orig);
        if f.fin() {
            ep.fin_seen = true;
            ep.fin_seq = rel_seq.wrapping_add(seg_len);
        }

        let mut rel_ack = 0u32;
        if f.ack() {
            if peer.state == EpState::Inactive {
                // First word from the peer's direction: number its stream as if its SYN had
                // been seen just below what we acknowledge.
                rel_ack = 1;
                let s = ack_seq.wrapping_sub(1);
                peer.start_seq = s;
                peer.ack_seq = s;
                peer.last_seq = s;
            } else if seq_delta(ack_seq, peer.start_seq) < 0 {
                rel_ack = 0;
            } else {
                rel_ack = peer.rel(ack_seq);
                // Acknowledgements in RSTs are not trusted.
                if !f.rst() {
                    let d = seq_delta(ack_seq, peer.ack_seq);
                    let broken = ack_seq == 0 && d > TOO_LARGE_SEQ_DELTA;
                    if !broken && d > 0 {
                        peer.ack_seq = ack_seq;
                    }
                }
            }
        }

        let (ep, _) = self.sides(from_orig);
        let delta_last = seq_delta(seq_end, ep.last_seq);
        let mut retransmit = false;
        if (f.syn() || f.rst())
            && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta_last)
        {
            // Implausible jump on a SYN or RST: do not move last_seq.
        } else if f.fin() && ep.last_seq == ep.start_seq.wrapping_add(1) {
            // Only the SYN seen so far: trust the FIN even if it seems to go backwards.
            ep.last_seq = seq_end;
        } else if ep.state == EpState::Reset {
            // After its own RST, a side's sequence numbers are not trusted.
        } else if delta_last > 0 {
            ep.last_seq = seq_end;
        } else if len > 0 {
            // Payload that does not advance the highest sequence seen: a retransmission
            // (which, as in Zeek, includes one-byte keep-alive probes).
            retransmit = true;
        }
        if retransmit {
            ep.retransmits += 1;
            let n = ep.retransmits;
            self.scaled_letter(from_orig, b'T', n);
        }

        self.update_state(from_orig, base_seq, len, f.syn(), f.fin(), f.rst(), f.ack());

        if f.ack() {
            // Runs after the state update so that gaps revealed by a closing segment are
            // judged by the states it produced.
            self.ack_received(!from_orig, rel_ack);
        }

        let fully_captured = seg.captured_payload_len >= len;
        if len > 0 && !f.rst() && !seq_underflow && fully_captured {
            let data_seq = if f.syn() {
                rel_seq.wrapping_add(1)
            } else {
                rel_seq
            };
            let (ep, _) = self.sides(from_orig);
            data_sent(ep, data_seq, len);
        }

        if from_orig {
            self.first_seen_orig = true;
        } else {
            self.first_seen_resp = true;
        }
    }

    /// Zeek's conn_state and history for what was observed so far.
    /// Zeek's conn_state and history of the connection's first conn.log row (the one its
    /// first packet opened); [`ZeekTracker::rows`] has them all.
    pub fn view(&self) -> ZeekView {
        match self.earlier.as_deref().and_then(|rows| rows.first()) {
            Some(first) => ZeekView {
                conn_state: first.conn_state.to_string(),
                history: first.history.clone(),
                ..ZeekView::default()
            },
            None => ZeekView {
                conn_state: self.conn_state().to_string(),
                history: history_string(&self.history),
                ..ZeekView::default()
            },
        }
    }

    /// Every conn.log row of the finished connection, the first with the later ones in
    /// its `later_rows`. `first_orig_is_client`: the first row's originator is the
    /// connection's client. With `take`, the tracker's buffers are emptied (it is done).
    pub fn log_view(&mut self, first_orig_is_client: bool, take: bool) -> ZeekView {
        let current = self.current_row();
        let earlier = if take {
            self.history.clear();
            self.earlier.take().map(|rows| *rows)
        } else {
            self.earlier.as_deref().cloned()
        };
        let to_view = |r: FinishedRow| ZeekView {
            conn_state: r.conn_state.to_string(),
            history: r.history,
            row: ZeekRowCounts {
                orig_is_client: r.same_orig == first_orig_is_client,
                start: secs(r.start_ns),
                duration: r.last_ns.saturating_sub(r.start_ns) as f64 / 1e9,
                orig_bytes: r.orig_bytes,
                resp_bytes: r.resp_bytes,
                missed_bytes: r.missed_bytes,
                orig_pkts: r.orig_pkts,
                resp_pkts: r.resp_pkts,
            },
            later_rows: Vec::new(),
        };
        match earlier {
            None => to_view(current),
            Some(rows) => {
                let mut all = rows
                    .into_iter()
                    .chain(std::iter::once(current))
                    .map(to_view);
                let mut first = all.next().expect("at least the current row");
                first.later_rows = all.collect();
                first
            }
        }
    }

    fn sides(&mut self, from_orig: bool) -> (&mut Endpoint, &mut Endpoint) {
        if from_orig {
            (&mut self.orig, &mut self.resp)
        } else {
            (&mut self.resp, &mut self.orig)
        }
    }

    fn update_partial(&mut self, from_orig: bool, syn: bool, ack: bool) {
        if from_orig {
            if !self.first_seen_orig {
                self.partial = !syn || ack;
            }
        } else if !self.first_seen_resp && !self.partial {
            self.partial = !syn;
        }
    }

    fn push(&mut self, from_orig: bool, letter: u8) {
        let c = if from_orig {
            letter.to_ascii_uppercase()
        } else {
            letter.to_ascii_lowercase()
        };
        self.history.push(c);
    }

    /// Records `letter` the first time `bit` is seen in this direction; returns whether it
    /// had been seen before.
    fn once(&mut self, from_orig: bool, bit: u8, letter: u8) -> bool {
        let ep = if from_orig {
            &mut self.orig
        } else {
            &mut self.resp
        };
        if ep.seen & bit != 0 {
            return true;
        }
        ep.seen |= bit;
        self.push(from_orig, letter);
        false
    }

    fn scaled_letter(&mut self, from_orig: bool, letter: u8, count: u32) {
        if is_power_of_ten(count) {
            self.push(from_orig, letter);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_history(
        &mut self,
        from_orig: bool,
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
        rel_seq: u32,
        len: u32,
    ) {
        let control = syn as u8 + fin as u8 + rst as u8;
        if control > 1 {
            // FIN+RST is "inconsistent"; SYN with FIN or RST is "multi-flag".
            if fin && rst {
                self.once(from_orig, seen::FIN_RST, b'I');
            } else {
                self.once(from_orig, seen::MULTI_FLAG, b'Q');
            }
        } else if syn {
            let letter = if ack { b'H' } else { b'S' };
            let again = self.once(from_orig, seen::SYN, letter);
            let ep = self.sides(from_orig).0;
            let differs = rel_seq != ep.last_syn;
            ep.last_syn = rel_seq;
            if again && differs {
                self.push(from_orig, letter);
            }
        } else if fin {
            // A FIN's sequence number is the one after its data.
            let fin_at = rel_seq.wrapping_add(len);
            let again = self.once(from_orig, seen::FIN, b'F');
            let ep = self.sides(from_orig).0;
            let differs = fin_at != ep.last_fin;
            ep.last_fin = fin_at;
            if again && differs {
                self.push(from_orig, b'F');
            }
        } else if rst {
            let again = self.once(from_orig, seen::RST, b'R');
            let ep = self.sides(from_orig).0;
            let differs = rel_seq != ep.last_rst;
            ep.last_rst = rel_seq;
            if again && differs {
                self.push(from_orig, b'R');
            }
        } else if len > 0 {
            self.once(from_orig, seen::DATA, b'D');
        } else if ack {
            self.once(from_orig, seen::ACK, b'A');
        }
    }

    /// Zeek's endpoint state machine: the sender's state moves, sometimes the peer's too.
    #[allow(clippy::too_many_arguments)]
    fn update_state(
        &mut self,
        from_orig: bool,
        base_seq: u32,
        len: u32,
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
    ) {
        let orig_state = self.orig.state;
        let (ep, peer) = self.sides(from_orig);
        match ep.state {
            EpState::Inactive => {
                if syn {
                    if from_orig {
                        if !ack
                            && peer.state == EpState::Established
                            && peer.synack_unsolicited
                            && base_seq == ep.start_seq
                        {
                            // The SYN-ACK was captured before its SYN (Zeek flips roles here
                            // and establishes both sides; the roles are ours already).
                            ep.set_state(EpState::Established);
                        } else if ack {
                            ep.set_state(EpState::SynAckSent);
                        } else {
                            ep.set_state(EpState::SynSent);
                        }
                    } else {
                        // A SYN (normally a SYN-ACK) from the responder establishes it, and
                        // the originator too if its SYN was seen.
                        if !ack && peer.state == EpState::SynAckSent && base_seq == ep.start_seq {
                            // The originator's SYN-ACK answered this SYN before it was
                            // captured (Zeek flips roles here; ours stay).
                            peer.set_state(EpState::Established);
                        }
                        if peer.state == EpState::SynSent {
                            peer.set_state(EpState::Established);
                        }
                        if peer.state == EpState::Inactive {
                            ep.synack_unsolicited = true;
                        }
                        ep.set_state(EpState::Established);
                    }
                }
                if fin {
                    ep.set_state(EpState::Closed);
                }
                if rst {
                    ep.set_state(EpState::Reset);
                }
                if ep.state == EpState::Inactive {
                    if !from_orig && len == 0 && orig_state == EpState::SynSent {
                        // Some stacks ACK a SYN before answering it: not a partial side.
                    } else if ack && peer.state == EpState::Established {
                        // The peer's SYN-ACK was seen, our SYN was not: we are established.
                        ep.set_state(EpState::Established);
                        self.partial = false;
                        if from_orig {
                            self.first_seen_orig = true;
                        } else {
                            self.first_seen_resp = true;
                        }
                    } else {
                        ep.set_state(EpState::Partial);
                    }
                }
            }
            EpState::SynSent | EpState::SynAckSent => {
                if fin {
                    ep.set_state(EpState::Closed);
                }
                if rst {
                    ep.set_state(EpState::Reset);
                }
            }
            EpState::Established | EpState::Partial => {
                if syn && ep.state == EpState::Partial && peer.state == EpState::Inactive && !ack {
                    ep.set_state(EpState::SynSent);
                }
                if fin && !rst {
                    ep.set_state(EpState::Closed);
                    // A FIN answering a peer that sent FIN then RST: that was a normal close.
                    if peer.state == EpState::Reset && peer.prev_state == EpState::Closed {
                        peer.set_state(EpState::Closed);
                    }
                }
                if rst {
                    ep.set_state(EpState::Reset);
                }
            }
            EpState::Closed => {
                // After a FIN exchange a RST changes nothing; after a lone FIN it does.
                if rst && peer.state != EpState::Closed {
                    ep.set_state(EpState::Reset);
                }
            }
            EpState::Reset => {}
        }
    }

    /// The peer of `stream_of_orig`'s side acknowledged up to `rel_ack`: declare any data
    /// below it that was never seen a content gap.
    fn ack_received(&mut self, stream_of_orig: bool, rel_ack: u32) {
        let partial = self.partial;
        let (ep, peer) = self.sides(stream_of_orig);
        let mut up_to = rel_ack;
        // The FIN octet is not data.
        if ep.fin_seen && up_to >= ep.fin_seq {
            up_to = ep.fin_seq.wrapping_sub(1);
        }
        if up_to <= ep.trim {
            return;
        }
        let mut gaps = 0u32;
        if up_to > ep.next && !(up_to <= 2 && partial) {
            // Only gaps while both sides are cleanly established or closing count; other
            // states produce false ones (RST sequence numbers, unseen starts of partials).
            let report = ep.is_clean() && peer.is_clean();
            if ep.hole_hi > ep.hole_lo && ep.hole_lo < up_to {
                if ep.hole_lo > ep.next {
                    gaps += report as u32;
                    if report {
                        ep.missed = ep.missed.saturating_add(ep.hole_lo - ep.next);
                    }
                }
                ep.next = ep.next.max(ep.hole_hi);
                ep.hole_lo = 0;
                ep.hole_hi = 0;
            }
            if up_to > ep.next {
                gaps += report as u32;
                if report {
                    ep.missed = ep.missed.saturating_add(up_to - ep.next);
                }
                ep.next = up_to;
            }
        }
        ep.trim = up_to;
        if ep.hole_hi <= ep.trim {
            ep.hole_lo = 0;
            ep.hole_hi = 0;
        }
        for _ in 0..gaps {
            let (ep, _) = self.sides(stream_of_orig);
            ep.gaps += 1;
            let n = ep.gaps;
            self.scaled_letter(stream_of_orig, b'G', n);
        }
    }

    fn conn_state(&self) -> &'static str {
        use EpState::*;
        let os = self.orig.state;
        let rs = self.resp.state;
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            let sizes_zero = self.orig.size(rs) == 0 && self.resp.size(os) == 0;
            if matches!(os, SynSent | SynAckSent) || (os == Reset && sizes_zero) {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if r_inactive {
                if syn_then_rst(&self.history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

/// The history letters as a string (they are ASCII).
fn history_string(history: &[u8]) -> String {
    String::from_utf8_lossy(history).into_owned()
}

/// Zeek's test for RSTOS0: history (after an optional `^`) starts with the originator's
/// `S` and reaches an originator `R` before any of `H A F G I Q` from the originator.
fn syn_then_rst(history: &[u8]) -> bool {
    let h = history.strip_prefix(b"^").unwrap_or(history);
    let Some(rest) = h.strip_prefix(b"S") else {
        return false;
    };
    for c in rest {
        match c {
            b'R' => return true,
            b'H' | b'A' | b'F' | b'G' | b'I' | b'Q' => return false,
            _ => {}
        }
    }
    false
}

/// Sets up (or re-sets on a new SYN) a side's sequence bookkeeping before the segment is
/// interpreted.
fn init_endpoint(ep: &mut Endpoint, syn: bool, first_seq: u32, seq_end: u32) {
    match ep.state {
        EpState::Inactive => {
            if syn {
                ep.init_seqs(first_seq, seq_end);
            } else {
                // Joined mid-stream: number as if a SYN had come just before, and make sure
                // this first segment is not taken for a retransmission.
                ep.init_seqs(first_seq.wrapping_sub(1), first_seq);
            }
        }
        EpState::SynSent | EpState::SynAckSent => {
            if syn && first_seq != ep.start_seq {
                ep.init_seqs(first_seq, seq_end);
            }
        }
        EpState::Established | EpState::Partial => {
            if syn {
                // Guess that this SYN is the one that really opens the connection.
                ep.init_seqs(first_seq, seq_end);
            }
        }
        EpState::Reset => {
            // Sequence numbers that came from a RST are replaced by a later SYN's.
            if syn && ep.prev_state == EpState::Inactive {
                ep.init_seqs(first_seq, seq_end);
            }
        }
        EpState::Closed => {}
    }
}

/// New payload `[seq, seq+len)` (relative) from this side, as Zeek's reassembler takes it.
fn data_sent(ep: &mut Endpoint, seq: u32, len: u32) {
    let mut lo = seq;
    let hi = seq.wrapping_add(len);
    if hi <= ep.trim {
        return; // already acknowledged
    }
    lo = lo.max(ep.trim);
    if lo <= ep.next {
        if hi > ep.next {
            ep.next = hi;
            // Filling a hole delivers what was waiting above it.
            if ep.hole_hi > ep.hole_lo && ep.hole_lo <= ep.next {
                ep.next = ep.next.max(ep.hole_hi);
                ep.hole_lo = 0;
                ep.hole_hi = 0;
            }
        }
    } else if ep.hole_hi > ep.hole_lo {
        ep.hole_lo = ep.hole_lo.min(lo);
        ep.hole_hi = ep.hole_hi.max(hi);
    } else {
        ep.hole_lo = lo;
        ep.hole_hi = hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::TcpFlags;
    use crate::testkit::segment;
    use std::net::SocketAddr;

    const C: &str = "10.0.0.1:40000";
    const S: &str = "10.0.0.2:80";
    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const RST: u8 = TcpFlags::RST;
    const PSH: u8 = TcpFlags::PSH;

    /// A conversation between client (ISN 1000) and server (ISN 5000) written as absolute
    /// sequence numbers.
    struct Conv {
        z: ZeekTracker,
        frame: u64,
        /// Added to every later segment's time (see [`Conv::wait`]).
        offset_ns: i64,
    }

    impl Conv {
        fn new() -> Self {
            Conv {
                z: ZeekTracker::new(false),
                frame: 0,
                offset_ns: 0,
            }
        }
        fn flipped() -> Self {
            Conv {
                z: ZeekTracker::new(true),
                frame: 0,
                offset_ns: 0,
            }
        }
        fn seg(&mut self, from_orig: bool, flags: u8, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.seg_win(from_orig, flags, seq, ack, len, 1000)
        }
        fn seg_win(
            &mut self,
            from_orig: bool,
            flags: u8,
            seq: u32,
            ack: u32,
            len: u32,
            window: u16,
        ) -> &mut Self {
            self.frame += 1;
            let (src, dst): (SocketAddr, SocketAddr) = if from_orig {
                (C.parse().unwrap(), S.parse().unwrap())
            } else {
                (S.parse().unwrap(), C.parse().unwrap())
            };
            let s = Segment {
                ts_ns: self.frame as i64 * 1_000_000 + self.offset_ns,
                frame: self.frame,
                window,
                ..segment(src, dst, flags, seq, ack, len)
            };
            self.z.observe(&s, from_orig);
            self
        }
        /// Client → server.
        fn c(&mut self, flags: u8, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.seg(true, flags, seq, ack, len)
        }
        /// Server → client.
        fn s(&mut self, flags: u8, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.seg(false, flags, seq, ack, len)
        }
        fn handshake(&mut self) -> &mut Self {
            self.c(SYN, 1000, 0, 0)
                .s(SYN | ACK, 5000, 1001, 0)
                .c(ACK, 1001, 5001, 0)
        }
        /// Client sends 100 bytes, server answers 200.
        fn exchange(&mut self) -> &mut Self {
            self.c(PSH | ACK, 1001, 5001, 100)
                .s(ACK, 5001, 1101, 0)
                .s(PSH | ACK, 5001, 1101, 200)
                .c(ACK, 1101, 5201, 0)
        }
        fn view(&self) -> (String, String) {
            let v = self.z.view();
            (v.conn_state, v.history)
        }
        /// Lets `secs` seconds pass before the next segment.
        fn wait(&mut self, secs: f64) -> &mut Self {
            self.offset_ns += (secs * 1e9) as i64;
            self
        }
        /// (conn_state, history, orig_pkts, resp_pkts) of every conn.log row.
        fn rows(&self) -> Vec<(&'static str, String, u64, u64)> {
            self.z
                .rows()
                .into_iter()
                .map(|r| (r.conn_state, r.history, r.orig_pkts, r.resp_pkts))
                .collect()
        }
    }

    fn row(
        state: &'static str,
        history: &str,
        orig: u64,
        resp: u64,
    ) -> (&'static str, String, u64, u64) {
        (state, history.to_string(), orig, resp)
    }

    #[test]
    fn unanswered_syn_then_data_after_attempt_delay_is_a_new_midstream_row() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0).c(ACK, 1001, 5001, 0).wait(5.0);
        c.c(PSH | ACK, 1001, 5001, 100).c(FIN | ACK, 1101, 5001, 0);
        assert_eq!(c.rows(), [row("S0", "SA", 2, 0), row("SH", "DF", 2, 0)]);
        // The JSON view keeps the connection's first row.
        assert_eq!(c.view(), st("S0", "SA"));
    }

    #[test]
    fn refused_syn_retried_with_same_seq_is_one_rej_row_per_syn() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0).s(RST | ACK, 0, 1001, 0);
        c.c(SYN, 1000, 0, 0).s(RST | ACK, 0, 1001, 0);
        assert_eq!(c.rows(), [row("REJ", "Sr", 1, 1), row("REJ", "Sr", 1, 1)]);
    }

    #[test]
    fn stray_segment_within_reset_delay_stays_in_the_row() {
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(RST | ACK, 1101, 5201, 0)
            .wait(4.0);
        c.s(PSH | ACK, 5201, 1101, 10);
        assert_eq!(c.rows().len(), 1);
        assert_eq!(c.rows()[0].0, "RSTO");
    }

    #[test]
    fn stray_segment_after_reset_delay_starts_a_new_row_from_its_sender() {
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(RST | ACK, 1101, 5201, 0)
            .wait(15.0);
        // The server's probe, 15 s on: Zeek removed the connection 5 s after the RST.
        c.s(ACK, 5200, 1101, 1);
        let rows = c.z.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].conn_state, rows[0].history.as_str()),
            ("RSTO", "ShADadR")
        );
        assert_eq!(
            (rows[1].conn_state, rows[1].history.as_str()),
            ("OTH", "^d")
        );
        // Its sender (the server, port 80, to an ephemeral port) is Zeek's responder still,
        // by the same flip (`^`) Zeek makes for mid-stream traffic from a server port.
        assert!(rows[1].same_orig);
        assert_eq!((rows[1].orig_pkts, rows[1].resp_pkts), (0, 1));
    }

    #[test]
    fn both_fins_then_silence_past_close_delay_ends_the_row() {
        let mut c = Conv::new();
        c.handshake()
            .c(FIN | ACK, 1001, 5001, 0)
            .s(FIN | ACK, 5001, 1002, 0)
            .c(ACK, 1002, 5002, 0)
            .wait(6.0)
            .c(ACK, 1002, 5002, 0);
        let rows = c.rows();
        assert_eq!(rows[0], row("SF", "ShAFf", 4, 2));
        assert_eq!(rows.len(), 2);
    }

    fn st(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn handshake_data_client_fin_first_is_sf() {
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(FIN | ACK, 1101, 5201, 0)
            .s(FIN | ACK, 5201, 1102, 0)
            .c(ACK, 1102, 5202, 0);
        assert_eq!(c.view(), st("SF", "ShADadFf"));
    }

    #[test]
    fn responder_closes_first_is_sf_with_f_before_capital_f() {
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .s(FIN | ACK, 5201, 1101, 0)
            .c(FIN | ACK, 1101, 5202, 0)
            .s(ACK, 5202, 1102, 0);
        assert_eq!(c.view(), st("SF", "ShADadfF"));
    }

    #[test]
    fn unanswered_syn_is_s0() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0);
        assert_eq!(c.view(), st("S0", "S"));
    }

    #[test]
    fn retransmitted_syn_same_seq_adds_no_letter() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0).c(SYN, 1000, 0, 0).c(SYN, 1000, 0, 0);
        assert_eq!(c.view(), st("S0", "S"));
    }

    #[test]
    fn syn_answered_by_rst_is_rej() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0).s(RST | ACK, 0, 1001, 0);
        assert_eq!(c.view(), st("REJ", "Sr"));
    }

    #[test]
    fn originator_rst_after_established_is_rsto() {
        let mut c = Conv::new();
        c.handshake().exchange().c(RST | ACK, 1101, 5201, 0);
        assert_eq!(c.view(), st("RSTO", "ShADadR"));
    }

    #[test]
    fn responder_rst_after_established_is_rstr() {
        let mut c = Conv::new();
        c.handshake().exchange().s(RST | ACK, 5201, 1101, 0);
        assert_eq!(c.view(), st("RSTR", "ShADadr"));
    }

    #[test]
    fn syn_then_originator_rst_without_answer_is_rstos0() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0).c(RST, 1001, 0, 0);
        assert_eq!(c.view(), st("RSTOS0", "SR"));
    }

    #[test]
    fn midstream_data_one_way_is_oth() {
        // mpls-in-vlan.pcap: a single data segment towards port 80.
        let mut c = Conv::new();
        c.c(PSH | ACK, 1001, 5001, 100);
        assert_eq!(c.view(), st("OTH", "D"));
    }

    #[test]
    fn midstream_data_from_responder_with_flip_is_oth_caret_d() {
        // mpls-in-vlan.pcap: "^d", the first packet came from the server port.
        let mut c = Conv::flipped();
        c.s(PSH | ACK, 5001, 1001, 100);
        assert_eq!(c.view(), st("OTH", "^d"));
    }

    #[test]
    fn established_not_closed_is_s1() {
        let mut c = Conv::new();
        c.handshake().exchange();
        assert_eq!(c.view(), st("S1", "ShADad"));
    }

    #[test]
    fn originator_fin_unanswered_is_s2() {
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(FIN | ACK, 1101, 5201, 0)
            .s(ACK, 5201, 1102, 0);
        assert_eq!(c.view(), st("S2", "ShADadF"));
    }

    #[test]
    fn responder_fin_unanswered_is_s3_the_close_wait_leak() {
        // The motivating case: the server closes an idle keep-alive connection, the client
        // acknowledges and never sends its own FIN.
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .s(FIN | ACK, 5201, 1101, 0)
            .c(ACK, 1101, 5202, 0);
        assert_eq!(c.view(), st("S3", "ShADadf"));
    }

    #[test]
    fn client_side_half_duplex_syn_data_no_answer_is_s0_sad() {
        // ssh.client-side-half-duplex.pcap: only the client's direction was captured.
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0)
            .c(ACK, 1001, 5001, 0)
            .c(PSH | ACK, 1001, 5001, 50)
            .c(PSH | ACK, 1051, 5101, 50);
        assert_eq!(c.view(), st("S0", "SAD"));
    }

    #[test]
    fn client_side_half_duplex_with_fin_is_sh_sadf() {
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0)
            .c(ACK, 1001, 5001, 0)
            .c(PSH | ACK, 1001, 5001, 50)
            .c(FIN | ACK, 1051, 5101, 0);
        assert_eq!(c.view(), st("SH", "SADF"));
    }

    #[test]
    fn server_side_half_duplex_is_shr_caret_h() {
        // ssh.server-side-half-duplex.pcap: "^hdaf", only the server's direction.
        let mut c = Conv::flipped();
        c.s(SYN | ACK, 5000, 1001, 0)
            .s(PSH | ACK, 5001, 1001, 30)
            .s(ACK, 5031, 1101, 0)
            .s(FIN | ACK, 5031, 1101, 0);
        assert_eq!(c.view(), st("SHR", "^hdaf"));
    }

    #[test]
    fn missing_syn_flipped_is_sf_caret_h() {
        // tcp/missing-syn.pcap: "^hADdFaf", the capture starts with the SYN-ACK.
        let mut c = Conv::flipped();
        c.s(SYN | ACK, 5000, 1001, 0)
            .c(ACK, 1001, 5001, 0)
            .c(PSH | ACK, 1001, 5001, 100)
            .s(PSH | ACK, 5001, 1101, 200)
            .c(FIN | ACK, 1101, 5201, 0)
            .s(ACK, 5201, 1102, 0)
            .s(FIN | ACK, 5201, 1102, 0)
            .c(ACK, 1102, 5202, 0);
        assert_eq!(c.view(), st("SF", "^hADdFaf"));
    }

    #[test]
    fn responder_synack_then_rst_without_syn_is_rstrh() {
        // modbus trace: "Dr" after the originator's RST ended an earlier connection is RSTRH
        // when the originator was only partial; here the classic SYN-ACK, RST.
        let mut c = Conv::flipped();
        c.s(SYN | ACK, 5000, 1001, 0).s(RST, 5001, 0, 0);
        assert_eq!(c.view(), st("RSTRH", "^hr"));
    }

    #[test]
    fn partial_data_then_responder_rst_is_rstrh_dr() {
        // modbus-and-non-modbus-p502.pcap: "RSTRH Dr".
        let mut c = Conv::new();
        c.c(PSH | ACK, 1001, 5001, 10).s(RST, 5001, 0, 0);
        assert_eq!(c.view(), st("RSTRH", "Dr"));
    }

    #[test]
    fn syn_then_rst_answer_seen_first_then_originator_rst_is_rsto_shr() {
        // modbus-and-non-modbus-p502.pcap: "RSTO ShR" (a scanner's half-open probe).
        let mut c = Conv::new();
        c.c(SYN, 1000, 0, 0)
            .s(SYN | ACK, 5000, 1001, 0)
            .c(RST, 1001, 0, 0);
        assert_eq!(c.view(), st("RSTO", "ShR"));
    }

    #[test]
    fn fin_then_rst_from_same_side_then_peer_fin_is_sf() {
        // A FIN then RST from the client, then the server's FIN: Zeek turns the client back
        // to closed, a normal termination.
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(FIN | ACK, 1101, 5201, 0)
            .c(RST | ACK, 1102, 5201, 0)
            .s(FIN | ACK, 5201, 1102, 0);
        assert_eq!(c.view(), st("SF", "ShADadFRf"));
    }

    #[test]
    fn rst_after_both_fins_keeps_sf() {
        // ftp-auth-tls "RSTR ShAdDafr" is the other order; after a full FIN exchange a RST
        // changes no state but still writes its letter.
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .c(FIN | ACK, 1101, 5201, 0)
            .s(FIN | ACK, 5201, 1102, 0)
            .c(RST, 1102, 0, 0);
        assert_eq!(c.view(), st("SF", "ShADadFfR"));
    }

    #[test]
    fn retransmitted_data_writes_t_once_then_at_ten() {
        let mut c = Conv::new();
        c.handshake().c(PSH | ACK, 1001, 5001, 100);
        for _ in 0..9 {
            c.c(PSH | ACK, 1001, 5001, 100);
        }
        assert_eq!(c.view().1, "ShADT");
        c.c(PSH | ACK, 1001, 5001, 100);
        assert_eq!(c.view().1, "ShADTT");
    }

    #[test]
    fn keepalive_probe_counts_as_retransmission() {
        // One byte at SND.NXT-1: Zeek's rule is "payload that does not advance the
        // highest sequence", so the probe is a 't'.
        let mut c = Conv::new();
        c.handshake()
            .exchange()
            .s(ACK, 5200, 1101, 1)
            .c(ACK, 1101, 5201, 0);
        assert_eq!(c.view().1, "ShADadt");
    }

    #[test]
    fn zero_window_from_responder_is_w() {
        let mut c = Conv::new();
        c.handshake().c(PSH | ACK, 1001, 5001, 100);
        c.seg_win(false, ACK, 5001, 1101, 0, 0);
        assert_eq!(c.view(), st("S1", "ShADaw"));
    }

    #[test]
    fn zero_window_with_rst_is_not_w() {
        let mut c = Conv::new();
        c.handshake();
        c.seg_win(false, RST | ACK, 5001, 1001, 0, 0);
        assert_eq!(c.view(), st("RSTR", "ShAr"));
    }

    #[test]
    fn repeated_fin_with_same_seq_is_one_f_new_seq_is_another() {
        let mut c = Conv::new();
        c.handshake()
            .c(FIN | ACK, 1001, 5001, 0)
            .c(FIN | ACK, 1001, 5001, 0);
        assert_eq!(c.view().1, "ShAF");
        // A FIN carrying data ends further on: a new 'F'.
        c.c(FIN | ACK, 1001, 5001, 10);
        assert_eq!(c.view().1, "ShAFF");
    }

    #[test]
    fn fin_rst_together_is_i_and_syn_fin_is_q() {
        let mut c = Conv::new();
        c.handshake().c(FIN | RST | ACK, 1001, 5001, 0);
        assert_eq!(c.view(), st("RSTO", "ShAI"));
        let mut c = Conv::new();
        c.c(SYN | FIN, 1000, 0, 0);
        assert_eq!(c.view(), st("SH", "Q"));
    }

    #[test]
    fn data_acked_but_never_seen_is_a_gap() {
        // miss_end_data.pcap shape: the server's data is acknowledged beyond what the
        // capture showed.
        let mut c = Conv::new();
        c.handshake()
            .c(PSH | ACK, 1001, 5001, 100)
            .s(ACK, 5001, 1101, 0)
            .s(PSH | ACK, 5001, 1101, 200)
            // 300 more bytes from the server were never captured.
            .c(ACK, 1101, 5501, 0)
            .s(FIN | ACK, 5501, 1101, 0)
            .c(FIN | ACK, 1101, 5502, 0);
        assert_eq!(c.view(), st("SF", "ShADadgfF"));
    }

    #[test]
    fn out_of_order_data_filled_before_ack_is_no_gap() {
        // The late segment does not advance the highest sequence seen, so Zeek calls it
        // a retransmission ('T'), but the hole is filled before the ACK: no 'g'.
        let mut c = Conv::new();
        c.handshake()
            .c(PSH | ACK, 1101, 5001, 100)
            .c(PSH | ACK, 1001, 5001, 100)
            .s(ACK, 5001, 1201, 0);
        assert_eq!(c.view(), st("S1", "ShADTa"));
    }

    #[test]
    fn truncated_payload_acked_is_a_gap() {
        // Zeek does not reassemble what the snaplen cut off, so acknowledging it reveals
        // a gap.
        let mut c = Conv::new();
        c.handshake();
        let mut s = Segment {
            frame: 9,
            window: 100,
            captured_payload_len: 50,
            ..segment(
                C.parse().unwrap(),
                S.parse().unwrap(),
                PSH | ACK,
                1001,
                5001,
                1000,
            )
        };
        c.z.observe(&s, true);
        s.src = S.parse().unwrap();
        s.dst = C.parse().unwrap();
        s.seq = 5001;
        s.ack = 2001;
        s.flags = TcpFlags(ACK);
        s.payload_len = 0;
        s.captured_payload_len = 0;
        c.z.observe(&s, false);
        assert_eq!(c.view(), st("S1", "ShADaG"));
    }

    #[test]
    fn synack_captured_before_syn_still_establishes() {
        // Reordered capture (two interfaces): SYN-ACK, then SYN, then the rest.
        let mut c = Conv::flipped();
        c.s(SYN | ACK, 5000, 1001, 0)
            .c(SYN, 1000, 0, 0)
            .c(ACK, 1001, 5001, 0)
            .exchange()
            .c(FIN | ACK, 1101, 5201, 0)
            .s(FIN | ACK, 5201, 1102, 0);
        assert_eq!(c.view().0, "SF");
    }

    #[test]
    fn rstos0_pattern_matches_zeek_regex() {
        assert!(syn_then_rst(b"SR"));
        assert!(syn_then_rst(b"^SR"));
        assert!(syn_then_rst(b"SaR"));
        assert!(syn_then_rst(b"SThR"));
        assert!(!syn_then_rst(b"SAR"));
        assert!(!syn_then_rst(b"R"));
        assert!(!syn_then_rst(b"DSR"));
    }

    #[test]
    fn scaled_letters_at_powers_of_ten() {
        let hits: Vec<u32> = (1..=1000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(hits, vec![1, 10, 100, 1000]);
        assert!(!is_power_of_ten(0));
        assert!(is_power_of_ten(1_000_000_000));
        assert!(!is_power_of_ten(u32::MAX));
    }

    #[test]
    fn tracker_stays_small() {
        // 216 bytes: the row clock (first, last packet, timer, packet counts) added 40.
        assert!(std::mem::size_of::<ZeekTracker>() <= 224);
    }
}
