//! Per-direction sequence tracking and the RFC 9293 endpoint state machine.
//!
//! A capture shows segments, not sockets. This module turns the segments of one connection
//! into the two endpoints' RFC 9293 states (§3.3.2, Figure 5), the single source of truth
//! that the classifier, the JSON timeline and the ladder diagrams all read.
//!
//! The rule for "when did an endpoint change state" is evidence from the wire:
//!
//! - a segment's own flags change its *sender's* state when it is seen (sending SYN, FIN or
//!   RST is something the sender did at that moment);
//! - a segment's ACK field is the evidence of what its sender has *received*: an endpoint
//!   moves to CLOSE-WAIT (or CLOSING, TIME-WAIT) once it acknowledges the peer's FIN, dated
//!   when the FIN arrived (the FIN's own moment, unless it sent something after the FIN
//!   that shows the FIN had not arrived yet: then the ACK's), because that is when the
//!   kernel changes state; the ACK may be delayed ~40 ms. An endpoint whose FIN is
//!   acknowledged moves on (FIN-WAIT-2, TIME-WAIT, CLOSED) when that acknowledgement is
//!   seen;
//! - segments from one sender arrive in the order sent: an ACK of an endpoint's FIN sent
//!   after the peer's own FIN reaches it after that FIN, so the endpoint has received the
//!   peer's FIN first (FIN-WAIT-1 → CLOSING → TIME-WAIT in a simultaneous close, never
//!   FIN-WAIT-2);
//! - a valid RST seen in the capture is taken as delivered: both endpoints are CLOSED.
//!
//! Every state change goes through one function, [`next`]: the segment handlers only turn
//! what a segment shows into [`Event`]s (sent a FIN, received the peer's FIN, a valid RST,
//! …), and `next` says which RFC 9293 transition each one takes, with the rule quoted. Its
//! edges are the rows of `state::TRANSITIONS`, the table the graph renderer draws. Times are
//! nanoseconds here; the report's seconds are made once, at the model boundary
//! ([`Change::to_model`]).
//!
//! This is what makes a simultaneous close visible from a single vantage point: a FIN whose
//! ACK field does not cover the peer's FIN was sent before its sender received that FIN, so
//! its sender went ESTABLISHED → FIN-WAIT-1 rather than CLOSE-WAIT → LAST-ACK.
//!
//! What a capture cannot know: whether a segment (or a RST) reached the other side, whether
//! an application called close() or shutdown(), or whether the kernel silently dropped an
//! orphaned FIN-WAIT-2 socket (Linux `net.ipv4.tcp_fin_timeout`). Those stay as the wire
//! last showed them; TIME-WAIT's end is the only timer applied (see [`Conversation::finish`]).
//!
//! This module never decides how a connection "ended": that is `classify`'s job.

use crate::model::{CloseSignal, DirectionStats, SegmentNote, StateChange};
use crate::segment::{Segment, TcpFlags};
use crate::state::{Event, TcpState};
use std::num::NonZeroU64;
use std::ops::{Index, IndexMut};

/// `a - b` in sequence space, as a signed distance (RFC 9293 §3.4: "comparisons … must use
/// modulo 2**32 arithmetic").
pub fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// `a < b` in sequence space.
pub fn seq_lt(a: u32, b: u32) -> bool {
    seq_diff(a, b) < 0
}

/// `a <= b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    seq_diff(a, b) <= 0
}

/// At most this many holes (sequence ranges not captured) are remembered per direction;
/// beyond that the oldest is given up as missing for good.
const MAX_HOLES: usize = 8;

/// A point in the capture: a timestamp and the frame number of the packet.
///
/// The frame is kept as one more than itself in a `NonZeroU64`, so that an
/// `Option<Moment>` takes 16 bytes instead of 24: a connection holds about twenty of them,
/// and a smaller connection is fewer cache lines written when it starts and read when it
/// is reported, and less memory per live connection in a flood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    pub ts_ns: i64,
    frame_plus_one: NonZeroU64,
}

impl Moment {
    pub fn new(ts_ns: i64, frame: u64) -> Self {
        Moment {
            ts_ns,
            frame_plus_one: frame_plus_one(frame),
        }
    }

    /// The frame number (Wireshark's `frame.number`).
    pub fn frame(&self) -> u64 {
        self.frame_plus_one.get() - 1
    }
}

/// A frame number kept as one more than itself, so that an `Option` of it needs no word of
/// its own ([`Moment`], [`Change`]). Saturating: frame u64::MAX (never reached by counting
/// packets) reads back as u64::MAX - 1.
fn frame_plus_one(frame: u64) -> NonZeroU64 {
    NonZeroU64::MIN.saturating_add(frame)
}

/// One of a conversation's two endpoints: `A` sent the first captured segment, `B` is its
/// peer. Roles (client, server) are decided later, from more than the first segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    A,
    B,
}

impl End {
    /// The other endpoint.
    pub fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }

    /// 0 for `A`, 1 for `B`: the index of the connection's addresses.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The endpoint at address index `i` (0: `A`, 1: `B`).
    pub fn of_index(i: usize) -> End {
        if i == 0 {
            End::A
        } else {
            End::B
        }
    }
}

/// A pair of per-endpoint values is indexed by [`End`].
impl<T> Index<End> for [T; 2] {
    type Output = T;
    #[inline]
    fn index(&self, end: End) -> &T {
        &self[end.index()]
    }
}

impl<T> IndexMut<End> for [T; 2] {
    #[inline]
    fn index_mut(&mut self, end: End) -> &mut T {
        &mut self[end.index()]
    }
}

/// The RFC 9293 state an endpoint moves to on `event`, or `None` when the event does not
/// move it from `state`. One arm per transition, each quoting the rule it implements
/// (RFC 9293 §3.10, the event processing, and Figure 5); every edge taken is a row of
/// [`crate::state::TRANSITIONS`] (a unit test checks every state and event).
#[inline]
pub fn next(state: TcpState, event: Event) -> Option<TcpState> {
    use Event::*;
    use TcpState::*;
    match (state, event) {
        // §3.10.1 OPEN, CLOSED state, active: "A SYN segment of the form <SEQ=ISS><CTL=SYN>
        // is sent. Set SND.UNA to ISS, SND.NXT to ISS+1, enter SYN-SENT state".
        (Closed, SendSyn) => Some(SynSent),
        // §3.10.7.2 LISTEN, "third, check for a SYN": "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>
        // is sent … and the connection state should be changed to SYN-RECEIVED".
        (Listen, SendSynAck) => Some(SynReceived),
        // The same rule seen from the connection's own socket: until its SYN,ACK the server
        // has no socket for this connection (only its listener), so netstat shows none and
        // its endpoint is CLOSED until then.
        (Closed, SendSynAck) => Some(SynReceived),
        // §3.10.7.3 SYN-SENT: "If SND.UNA > ISS (our SYN has been ACKed), change the
        // connection state to ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT>
        // <CTL=ACK> and send it" (seen as the ACK it sends for the SYN,ACK).
        (SynSent, ReceiveSynAck) => Some(Established),
        // §3.10.7.4 SYN-RECEIVED, "fifth, check the ACK field": "If SND.UNA < SEG.ACK =<
        // SND.NXT, then enter ESTABLISHED state and continue processing".
        (SynReceived, ReceiveAckOfSyn) => Some(Established),
        // §3.10.7.4 "fifth, check the ACK field": "if the ACK bit is off, drop the segment
        // and return" — only a synchronized endpoint sends a non-SYN segment with ACK, so
        // such a segment proves the handshake completed even when the capture missed it.
        (Closed | SynSent | SynReceived, HandshakeNotCaptured) => Some(Established),
        // §3.10.4 CLOSE, "ESTABLISHED STATE: … form a FIN segment and send it. In any case,
        // enter FIN-WAIT-1 state"; "SYN-RECEIVED STATE: If no SENDs have been issued and
        // there is no pending data to send, then form a FIN segment and send it, and enter
        // FIN-WAIT-1 state".
        (Established | SynReceived, SendFin) => Some(FinWait1),
        // §3.10.4 CLOSE, "CLOSE-WAIT STATE: Queue this request until all preceding SENDs
        // have been segmentized; then send a FIN segment, enter LAST-ACK state."
        (CloseWait, SendFin) => Some(LastAck),
        // §3.10.7.4 "eighth, check the FIN bit": "SYN-RECEIVED STATE, ESTABLISHED STATE:
        // Enter the CLOSE-WAIT state."
        (Established | SynReceived, ReceiveFin) => Some(CloseWait),
        // "FIN-WAIT-1 STATE: If our FIN has been ACKed (perhaps in this segment), then
        // enter TIME-WAIT …; otherwise, enter the CLOSING state." The ACK is its own event
        // (`ReceiveAckOfFin`), applied after: CLOSING, then TIME-WAIT.
        (FinWait1, ReceiveFin) => Some(Closing),
        // "FIN-WAIT-2 STATE: Enter the TIME-WAIT state."
        (FinWait2, ReceiveFin) => Some(TimeWait),
        // §3.10.7.4 "fifth, check the ACK field", "FIN-WAIT-1 STATE: … if the FIN segment
        // is now acknowledged, then enter FIN-WAIT-2 and continue processing in that state."
        (FinWait1, ReceiveAckOfFin) => Some(FinWait2),
        // "CLOSING STATE: … if the ACK acknowledges our FIN, then enter the TIME-WAIT
        // state; otherwise, ignore the segment."
        (Closing, ReceiveAckOfFin) => Some(TimeWait),
        // "LAST-ACK STATE: … If our FIN is now acknowledged, delete the TCB, enter the
        // CLOSED state, and return."
        (LastAck, ReceiveAckOfFin) => Some(Closed),
        // §3.10.8 "Time-Wait Timeout: If the time-wait timeout expires on a connection,
        // delete the TCB, enter the CLOSED state, and return."
        (TimeWait, TimeWaitTimeout) => Some(Closed),
        // §3.6.1: a host "MAY accept a new SYN from the remote TCP endpoint to reopen the
        // connection directly from TIME-WAIT state (MAY-2)"; Linux does
        // (tcp_timewait_state_process), and the old incarnation is gone.
        (TimeWait, NewSynInTimeWait) => Some(Closed),
        // §3.10.7.4 "second, check the RST bit": "… enter the CLOSED state, delete the
        // TCB, and return" (SYN-SENT: §3.10.7.3 "enter CLOSED state"); the sender aborted
        // (§3.10.5 ABORT: "send a reset segment … enter CLOSED state"). A RST in TIME-WAIT
        // also ends it (Linux default net.ipv4.tcp_rfc1337 = 0). §3.10.7.1: in CLOSED "An
        // incoming segment containing a RST is discarded."
        (
            Listen | SynSent | SynReceived | Established | FinWait1 | FinWait2 | CloseWait
            | Closing | LastAck | TimeWait,
            Reset,
        ) => Some(Closed),
        _ => None,
    }
}

/// What one endpoint has sent, as far as the capture shows.
#[derive(Clone, Debug, Default)]
pub struct Direction {
    /// Whether any segment from this endpoint has been seen.
    pub seen: bool,
    /// Initial sequence number, when its SYN was seen.
    pub isn: Option<u32>,
    /// Origin of relative sequence numbers: the ISN, or the first sequence number seen.
    pub base: u32,
    /// One past the highest sequence number sent (the sender's SND.NXT as observed).
    pub next_seq: u32,
    /// Highest acknowledgement number this endpoint sent: its RCV.NXT.
    pub highest_ack: Option<u32>,
    /// Last advertised window (raw field) and the window scale from its SYN.
    pub window: u16,
    pub window_scale: Option<u8>,
    /// Sequence number occupied by this endpoint's FIN.
    pub fin_seq: Option<u32>,
    /// Ranges `[start, end)` skipped in sequence space and not yet filled.
    holes: Vec<(u32, u32)>,
    /// A keep-alive probe was sent and not yet answered.
    keepalive_pending: bool,
    pub stats: DirectionStats,
    pub packets: u64,
    /// Payload bytes, each sequence number counted once.
    pub bytes: u64,
}

impl Direction {
    /// Missing bytes: holes still open plus the ones given up.
    pub fn missing_bytes(&self) -> u64 {
        self.stats.missing_bytes
            + self
                .holes
                .iter()
                .map(|&(s, e)| e.wrapping_sub(s) as u64)
                .sum::<u64>()
    }

    /// Records `[start, end)` as not captured.
    fn add_hole(&mut self, start: u32, end: u32) {
        if self.holes.len() == MAX_HOLES {
            let (s, e) = self.holes.remove(0);
            self.stats.missing_bytes += e.wrapping_sub(s) as u64;
        }
        self.holes.push((start, end));
    }

    /// Fills what of `[start, end)` lies in a hole; returns the bytes filled.
    fn fill_holes(&mut self, start: u32, end: u32) -> u32 {
        let mut filled = 0u32;
        let mut kept = Vec::new();
        for &(hs, he) in &self.holes {
            let os = if seq_lt(start, hs) { hs } else { start };
            let oe = if seq_lt(end, he) { end } else { he };
            if seq_lt(os, oe) {
                filled = filled.wrapping_add(oe.wrapping_sub(os));
                if seq_lt(hs, os) {
                    kept.push((hs, os));
                }
                if seq_lt(oe, he) {
                    kept.push((oe, he));
                }
            } else {
                kept.push((hs, he));
            }
        }
        self.holes = kept;
        filled
    }
}

/// One change of an endpoint's state, in capture time (nanoseconds); the report's
/// [`StateChange`] in seconds is made from it once, by [`Change::to_model`].
///
/// 24 bytes: the frame is kept as one more than itself, as [`Moment`] keeps it, so that
/// "no frame" costs no word of its own. Each endpoint holds six inline, and every new
/// connection writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub state: TcpState,
    pub at_ns: i64,
    frame_plus_one: Option<NonZeroU64>,
}

impl Change {
    /// A change to `state` at `at_ns`, caused by `frame` (`None`: a timer).
    pub fn new(state: TcpState, at_ns: i64, frame: Option<u64>) -> Change {
        Change {
            state,
            at_ns,
            frame_plus_one: frame.map(frame_plus_one),
        }
    }

    /// The frame that caused it, `None` for a timer (TIME-WAIT's end).
    pub fn frame(&self) -> Option<u64> {
        self.frame_plus_one.map(|f| f.get() - 1)
    }

    /// The report model's form: epoch seconds.
    pub fn to_model(&self) -> StateChange {
        StateChange {
            state: self.state,
            at: crate::model::secs(self.at_ns),
            frame: self.frame(),
        }
    }

    /// When it happened as the report dates it: its epoch seconds, back in nanoseconds.
    /// Timers run from this (TIME-WAIT's expiry, a connection's release), as they always
    /// have, so the expiry stays exactly what the report's own numbers give.
    pub fn reported_ns(&self) -> i64 {
        (crate::model::secs(self.at_ns) * 1e9).round() as i64
    }
}

/// An endpoint's state changes, stored inline up to six.
pub type StateChanges = smallvec::SmallVec<[Change; 6]>;

/// What the wire showed one endpoint doing, and its state.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub state: TcpState,
    /// State changes, oldest first. Inline: six hold a whole ordinary lifetime
    /// (SYN_RECEIVED … TIME_WAIT, CLOSED), so most connections allocate nothing here.
    pub changes: StateChanges,
    /// Its first SYN (without ACK) and its SYN,ACK.
    pub syn: Option<Moment>,
    pub syn_ack: Option<Moment>,
    /// Its first FIN, and the state it sent it from (ESTABLISHED: it closed actively;
    /// CLOSE-WAIT: it answered the peer's FIN).
    pub fin: Option<Moment>,
    pub fin_sent_from: Option<TcpState>,
    /// When the peer acknowledged its FIN.
    pub fin_acked: Option<Moment>,
    /// When the peer's FIN arrived at it (see the module doc: the FIN's own moment unless
    /// the capture shows it arrived later).
    pub peer_fin_received: Option<Moment>,
    /// It sent a segment after the peer's FIN was seen whose ACK field does not cover that
    /// FIN: the FIN had not arrived yet when it sent it, so its arrival is not the FIN's
    /// own moment.
    peer_fin_arrived_later: bool,
    /// Its first valid RST.
    pub rst: Option<Moment>,
    /// It sent new data while in CLOSE-WAIT (a half-close: it kept talking after the
    /// peer's FIN).
    pub data_in_close_wait: bool,
    /// Its last segment carrying data (keep-alive probes excluded), the sequence number
    /// just past that data, and the data segment before it.
    pub last_data: Option<Moment>,
    pub last_data_end: u32,
    pub prev_data: Option<Moment>,
}

impl Endpoint {
    fn new() -> Self {
        Endpoint {
            state: TcpState::Closed,
            changes: StateChanges::new(),
            syn: None,
            syn_ack: None,
            fin: None,
            fin_sent_from: None,
            fin_acked: None,
            peer_fin_received: None,
            peer_fin_arrived_later: false,
            rst: None,
            data_in_close_wait: false,
            last_data: None,
            last_data_end: 0,
            prev_data: None,
        }
    }

    /// Applies `event`, seen at `at_ns` in `frame`: the endpoint moves as [`next`] says
    /// and the change is recorded. Returns the state entered, if any.
    #[inline]
    pub fn apply(&mut self, event: Event, at_ns: i64, frame: Option<u64>) -> Option<TcpState> {
        match next(self.state, event) {
            Some(state) => {
                self.state = state;
                self.record(state, at_ns, frame);
                Some(state)
            }
            None => {
                // A RST finds this endpoint CLOSED before the capture showed it in any
                // state (a refused SYN: no socket had the port): no transition, but its
                // timeline starts here, CLOSED.
                if event == Event::Reset && self.changes.is_empty() {
                    self.record(TcpState::Closed, at_ns, frame);
                }
                None
            }
        }
    }

    /// [`Endpoint::apply`] for an event a segment at `at` shows.
    #[inline]
    fn apply_at(&mut self, event: Event, at: Moment) -> Option<TcpState> {
        self.apply(event, at.ts_ns, Some(at.frame()))
    }

    /// Records a change to `state` at `at_ns`, never dated before the change it follows: a
    /// capture's clock can step back (packets pass through in file order, see
    /// `capture::merge`), and a timeline out of time order would count one socket in two
    /// states at once in the states chart.
    fn record(&mut self, state: TcpState, at_ns: i64, frame: Option<u64>) {
        let at_ns = self
            .changes
            .last()
            .map_or(at_ns, |prev| at_ns.max(prev.at_ns));
        self.changes.push(Change::new(state, at_ns, frame));
    }

    /// When it entered TIME-WAIT, if it is there, as the report dates it (see
    /// [`Change::reported_ns`]).
    pub fn time_wait_since_ns(&self) -> Option<i64> {
        if self.state != TcpState::TimeWait {
            return None;
        }
        self.changes.last().map(Change::reported_ns)
    }

    /// Its timeline in the report model's form (seconds).
    pub fn timeline(&self) -> Vec<StateChange> {
        self.changes.iter().map(Change::to_model).collect()
    }
}

/// A small set of [`SegmentNote`]s, so the per-packet path allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoteSet(u16);

impl NoteSet {
    const ORDER: [SegmentNote; 9] = [
        SegmentNote::ReusedPorts,
        SegmentNote::PreviousSegmentNotCaptured,
        SegmentNote::Retransmission,
        SegmentNote::OutOfOrder,
        SegmentNote::KeepAlive,
        SegmentNote::KeepAliveAck,
        SegmentNote::ZeroWindow,
        SegmentNote::IgnoredRst,
        SegmentNote::ResetAfterClose,
    ];

    pub fn insert(&mut self, note: SegmentNote) {
        if let Some(i) = Self::ORDER.iter().position(|n| *n == note) {
            self.0 |= 1 << i;
        }
    }

    pub fn contains(self, note: SegmentNote) -> bool {
        Self::ORDER
            .iter()
            .position(|n| *n == note)
            .is_some_and(|i| self.0 & (1 << i) != 0)
    }

    pub fn to_vec(self) -> Vec<SegmentNote> {
        Self::ORDER
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// One segment as recorded for diagrams, with both endpoints' states after it (indexed by
/// [`End`]); roles are applied later.
#[derive(Clone, Debug)]
pub struct RecordedSegment {
    pub at: Moment,
    pub from: End,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub len: u32,
    pub window: u64,
    pub notes: NoteSet,
    pub states: [TcpState; 2],
}

/// The first FIN or valid RST of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstClose {
    pub by: End,
    pub signal: CloseSignal,
    pub at: Moment,
}

/// The first valid RST of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reset {
    pub by: End,
    pub at: Moment,
}

/// The two endpoints of one connection and what the wire showed of them, indexed by
/// [`End`] (`A` sent the first captured segment).
#[derive(Clone, Debug)]
pub struct Conversation {
    pub ends: [Endpoint; 2],
    pub dirs: [Direction; 2],
    pub first: Moment,
    pub last: Moment,
    /// The first segment was not a SYN: the capture started mid-connection.
    pub midstream: bool,
    /// The moment the three-way handshake completed (or the first segment, mid-stream).
    pub established: Option<Moment>,
    /// The first FIN or valid RST.
    pub first_close: Option<FirstClose>,
    /// The first valid RST.
    pub reset: Option<Reset>,
    /// The last activity the first closer knew of before it closed (see
    /// [`Conversation::last_activity_seen_by`]): the start of `idle_before_close`.
    pub quiet_since: Option<Moment>,
    /// Segments with both states after each, when recording was asked for.
    pub recorded: Option<Vec<RecordedSegment>>,
}

impl Conversation {
    /// Starts a conversation with its first segment's sender as endpoint `A`. Call
    /// [`Conversation::process`] with that segment next.
    pub fn new(first: &Segment, record: bool) -> Self {
        let at = Moment::new(first.ts_ns, first.frame);
        Conversation {
            ends: [Endpoint::new(), Endpoint::new()],
            dirs: [Direction::default(), Direction::default()],
            first: at,
            last: at,
            midstream: !first.flags.syn(),
            established: None,
            first_close: None,
            reset: None,
            quiet_since: None,
            recorded: record.then(Vec::new),
        }
    }

    /// The receive window `dir` advertised, scaled when both SYNs carried the window scale
    /// option (RFC 7323 §2.2); `None` when the scale is unknown (no SYN seen).
    fn scaled_window(&self, dir: End) -> Option<u64> {
        let d = &self.dirs[dir];
        let o = &self.dirs[dir.other()];
        match (d.isn, o.isn) {
            (Some(_), Some(_)) => match (d.window_scale, o.window_scale) {
                (Some(s), Some(_)) => Some((d.window as u64) << s.min(14)),
                _ => Some(d.window as u64),
            },
            _ => None,
        }
    }

    /// Would the endpoint `to` accept a RST carried by `seg` from `from`?
    fn rst_acceptable(&self, seg: &Segment, from: End) -> bool {
        let to = from.other();
        match self.ends[to].state {
            // RFC 9293 §3.10.7.3 (SYN-SENT): "If the ACK bit is set … If the RST bit is set:
            // If the ACK was acceptable, then signal to the user 'error: connection reset',
            // drop the segment, enter CLOSED state". Acceptable: SND.UNA < SEG.ACK =< SND.NXT.
            TcpState::SynSent => {
                seg.flags.ack()
                    && self.dirs[to]
                        .isn
                        .is_none_or(|isn| seg.ack == isn.wrapping_add(1))
            }
            // RFC 9293 §3.10.7.2 (LISTEN): "An incoming RST segment could not be valid …
            // An incoming RST should be ignored."
            TcpState::Listen => false,
            _ => {
                // RFC 9293 §3.10.7.4: "In all states except SYN-SENT, all reset (RST)
                // segments are validated by checking their SEQ fields. A reset is valid if
                // its sequence number is in the window." RFC 5961 §3.2 narrows the reset
                // to SEG.SEQ = RCV.NXT and answers other in-window RSTs with a challenge
                // ACK; either way an out-of-window RST is dropped silently.
                let sent = &self.dirs[from];
                let rcv_nxt = match (sent.seen && sent.packets > 1, self.dirs[to].highest_ack) {
                    (true, Some(a)) => {
                        if seq_lt(sent.next_seq, a) {
                            a
                        } else {
                            sent.next_seq
                        }
                    }
                    (true, None) => sent.next_seq,
                    (false, Some(a)) => a,
                    (false, None) => return true,
                };
                if seg.seq == rcv_nxt {
                    return true;
                }
                // Linux also accepts SEG.SEQ = RCV.NXT − 1 once the sender's FIN has been
                // received (tcp_reset_check: CLOSE-WAIT, LAST-ACK, CLOSING): a stack that
                // sent FIN and then aborts repeats the FIN's sequence number in its RST.
                if sent.fin_seq == Some(seg.seq) {
                    return true;
                }
                let window = match self.scaled_window(to) {
                    Some(w) => w,
                    // Scale unknown: assume the largest scale rather than reject a RST the
                    // receiver may well have accepted.
                    None => (self.dirs[to].window as u64) << 14,
                };
                // "If the RCV.WND is zero, no segments will be acceptable, but special
                // allowance should be made to accept valid ACKs, URGs, and RSTs" — only
                // SEG.SEQ = RCV.NXT, handled above.
                let ahead = seg.seq.wrapping_sub(rcv_nxt) as u64;
                seq_le(rcv_nxt, seg.seq) && ahead < window
            }
        }
    }

    /// Feeds one segment sent by endpoint `from`.
    pub fn process(&mut self, seg: &Segment, from: End) {
        let at = Moment::new(seg.ts_ns, seg.frame);
        self.last = at;
        let mut notes = NoteSet::default();
        let flags = seg.flags;

        {
            let d = &mut self.dirs[from];
            d.packets += 1;
            if flags.syn() {
                d.isn = Some(seg.seq);
                d.base = seg.seq;
                d.window_scale = seg.window_scale;
            }
            if !d.seen {
                d.seen = true;
                d.base = seg.seq;
                d.next_seq = seg.seq;
            }
            d.window = seg.window;
            if flags.ack() && !flags.rst() {
                d.highest_ack = Some(match d.highest_ack {
                    Some(a) if seq_lt(seg.ack, a) => a,
                    _ => seg.ack,
                });
            }
        }

        if self.ends.iter().all(|e| e.changes.is_empty()) {
            self.start_states(seg, from, at);
        }

        if flags.rst() {
            self.process_rst(seg, from, at, &mut notes);
            self.record(seg, from, at, notes);
            return;
        }

        let is_keepalive = self.track_sequence(seg, from, &mut notes);
        self.track_acknowledgement(seg, from, at, &mut notes);

        // SYN and SYN,ACK (`next`: CLOSED → SYN-SENT; CLOSED or LISTEN → SYN-RECEIVED). Until
        // its SYN,ACK the server has no socket for this connection (only its listener), so
        // its endpoint stays CLOSED, as netstat would show it.
        if flags.syn() && !flags.ack() {
            if self.ends[from].syn.is_none() {
                self.ends[from].syn = Some(at);
            }
            self.ends[from].apply_at(Event::SendSyn, at);
        } else if flags.syn() && flags.ack() {
            if self.ends[from].syn_ack.is_none() {
                self.ends[from].syn_ack = Some(at);
            }
            self.ends[from].apply_at(Event::SendSynAck, at);
        }

        // Data. A keep-alive probe's garbage byte is not data.
        if seg.payload_len > 0 && !is_keepalive {
            let end = &mut self.ends[from];
            if end.last_data.is_some_and(|m| m.frame() != at.frame()) {
                end.prev_data = end.last_data;
            }
            end.last_data = Some(at);
            end.last_data_end = seg.seq.wrapping_add(seg.payload_len);
            if self.ends[from].state == TcpState::CloseWait {
                self.ends[from].data_in_close_wait = true;
            }
        }

        // FIN (`next`: ESTABLISHED → FIN-WAIT-1, CLOSE-WAIT → LAST-ACK). A retransmitted
        // FIN is the same FIN.
        if flags.fin() && self.dirs[from].fin_seq.is_none() {
            self.dirs[from].fin_seq = Some(seg.seq.wrapping_add(seg.payload_len));
            let state = self.ends[from].state;
            self.ends[from].fin = Some(at);
            self.ends[from].fin_sent_from = Some(state);
            self.ends[from].apply_at(Event::SendFin, at);
            if self.first_close.is_none() {
                self.first_close = Some(FirstClose {
                    by: from,
                    signal: CloseSignal::Fin,
                    at,
                });
                self.quiet_since =
                    self.last_activity_seen_by(from, seg.flags.ack().then_some(seg.ack));
            }
        }
        if flags.fin() {
            self.dirs[from].stats.fins += 1;
        }

        self.record(seg, from, at, notes);
    }

    /// Initial states, from the first segment of the conversation.
    fn start_states(&mut self, seg: &Segment, from: End, at: Moment) {
        if seg.flags.syn() && !seg.flags.ack() {
            // Normal start: handled by the SYN rule.
        } else if seg.flags.syn() {
            // SYN,ACK first: the SYN was not captured; the peer sent it (SYN-SENT).
            self.ends[from.other()].apply_at(Event::SendSyn, at);
        } else {
            // Mid-stream: both synchronized, as far as anyone can tell.
            for end in &mut self.ends {
                end.apply_at(Event::HandshakeNotCaptured, at);
            }
            self.established = Some(at);
        }
    }

    fn process_rst(&mut self, seg: &Segment, from: End, at: Moment, notes: &mut NoteSet) {
        let to = from.other();
        self.dirs[from].stats.rsts += 1;
        if self.ends[from].state == TcpState::Closed && self.ends[to].state == TcpState::Closed {
            // Both gone already: a RST answering stray segments changes nothing.
            if self.reset.is_some() {
                notes.insert(SegmentNote::ResetAfterClose);
            }
            return;
        }
        if !self.rst_acceptable(seg, from) {
            self.dirs[from].stats.ignored_rsts += 1;
            notes.insert(SegmentNote::IgnoredRst);
            return;
        }
        if self.ends[to].fin.is_some() || self.ends[from].fin.is_some() {
            notes.insert(SegmentNote::ResetAfterClose);
        }
        // A valid RST: the sender aborted, the receiver resets (`next`, `Event::Reset`).
        self.ends[from].rst.get_or_insert(at);
        self.ends[from].apply_at(Event::Reset, at);
        self.ends[to].apply_at(Event::Reset, at);
        if self.reset.is_none() {
            self.reset = Some(Reset { by: from, at });
        }
        if self.first_close.is_none() {
            self.first_close = Some(FirstClose {
                by: from,
                signal: CloseSignal::Rst,
                at,
            });
            self.quiet_since = self.last_activity_seen_by(from, None);
        }
    }

    /// The last data exchange the endpoint `closer` knew of when it closed: its own last
    /// data, and the peer's last data that its FIN acknowledged (`ack`). Data the peer sent
    /// that crossed the FIN on the wire (the HTTP keep-alive race) had not reached the
    /// closer, so it does not count as activity the closer saw. Without any data, the end
    /// of the handshake.
    fn last_activity_seen_by(&self, closer: End, ack: Option<u32>) -> Option<Moment> {
        let own = self.ends[closer].last_data;
        let peer = &self.ends[closer.other()];
        let peer_seen = match (peer.last_data, ack) {
            (Some(_), Some(a)) if !seq_le(peer.last_data_end, a) => peer.prev_data,
            (m, _) => m,
        };
        [own, peer_seen]
            .into_iter()
            .flatten()
            .max_by_key(|m| (m.ts_ns, m.frame()))
            .or(self.established)
    }

    /// Sequence-space bookkeeping for what `from` sent: new data, holes, retransmissions,
    /// out-of-order segments, keep-alives, zero windows. Returns whether the segment is a
    /// keep-alive probe.
    fn track_sequence(&mut self, seg: &Segment, from: End, notes: &mut NoteSet) -> bool {
        let to = from.other();
        let flags = seg.flags;
        let peer_window_zero = self.dirs[to].seen && self.dirs[to].window == 0;
        let d = &mut self.dirs[from];
        let len = seg.seg_len();
        let first = d.packets == 1;

        // Wireshark's keep-alive rule: 0 or 1 byte, SEQ = SND.NXT − 1, no SYN/FIN/RST
        // (Linux `tcp_xmit_probe_skb` sends SND.UNA − 1 with no data). The same form is a
        // zero-window probe when the peer's window is closed.
        let is_keepalive = !first
            && !flags.syn()
            && !flags.fin()
            && seg.payload_len <= 1
            && seg.seq == d.next_seq.wrapping_sub(1)
            && !peer_window_zero;
        if is_keepalive {
            d.stats.keepalives += 1;
            d.keepalive_pending = true;
            notes.insert(SegmentNote::KeepAlive);
        } else if len > 0 {
            let end = seg.seq.wrapping_add(len);
            if first || seg.seq == d.next_seq {
                d.next_seq = end;
                d.bytes += seg.payload_len as u64;
            } else if seq_lt(d.next_seq, seg.seq) {
                // "Previous segment not captured".
                let (s, e) = (d.next_seq, seg.seq);
                d.add_hole(s, e);
                d.next_seq = end;
                d.bytes += seg.payload_len as u64;
                notes.insert(SegmentNote::PreviousSegmentNotCaptured);
            } else {
                // Only the payload's sequence numbers are bytes: a SYN occupies the one
                // before the payload and a FIN the one after it (RFC 9293 §3.4), so a
                // resent segment that adds only its FIN adds no data.
                let data_start = seg.seq.wrapping_add(flags.syn() as u32);
                let data_end = data_start.wrapping_add(seg.payload_len);
                let filled = d.fill_holes(data_start, data_end);
                if flags.fin() {
                    d.fill_holes(data_end, end);
                }
                let beyond = if seq_lt(d.next_seq, data_end) {
                    data_end.wrapping_sub(d.next_seq)
                } else {
                    0
                };
                if filled > 0 {
                    d.stats.out_of_order += 1;
                    notes.insert(SegmentNote::OutOfOrder);
                } else {
                    d.stats.retransmissions += 1;
                    notes.insert(SegmentNote::Retransmission);
                }
                if seq_lt(d.next_seq, end) {
                    d.next_seq = end;
                }
                let new = (filled as u64 + beyond as u64).min(seg.payload_len as u64);
                d.bytes += new;
            }
            d.keepalive_pending = false;
        }
        if seg.window == 0 && !flags.syn() {
            d.stats.zero_windows += 1;
            notes.insert(SegmentNote::ZeroWindow);
        }
        is_keepalive
    }

    /// What the ACK field of a segment from `from` tells: what `from` has received, and
    /// which of the peer's SYN/FIN are now acknowledged.
    fn track_acknowledgement(&mut self, seg: &Segment, from: End, at: Moment, notes: &mut NoteSet) {
        let to = from.other();
        if !seg.flags.ack() {
            return;
        }
        let ack = seg.ack;

        // Keep-alive ACK: a bare ACK answering the peer's probe with SEG.ACK = its SND.NXT.
        if self.dirs[to].keepalive_pending
            && seg.payload_len == 0
            && !seg.flags.syn()
            && !seg.flags.fin()
            && ack == self.dirs[to].next_seq
        {
            self.dirs[to].keepalive_pending = false;
            self.dirs[from].stats.keepalive_acks += 1;
            notes.insert(SegmentNote::KeepAliveAck);
        }

        // ACKed unseen segment: the peer sent sequence space the capture never saw.
        if self.dirs[to].seen && self.dirs[to].packets > 0 && seq_lt(self.dirs[to].next_seq, ack) {
            let gap = ack.wrapping_sub(self.dirs[to].next_seq);
            // Only believe modest gaps; a wild ACK is not evidence of gigabytes lost.
            if gap < (1 << 30) {
                let s = self.dirs[to].next_seq;
                self.dirs[to].add_hole(s, ack);
                self.dirs[to].next_seq = ack;
            }
        }

        let peer_isn = self.dirs[to].isn;
        let syn_acked = peer_isn.is_some_and(|isn| seq_le(isn.wrapping_add(1), ack));

        // It acknowledges the peer's SYN,ACK: SYN-SENT → ESTABLISHED.
        if self.ends[to].syn_ack.is_some() && syn_acked {
            self.ends[from].apply_at(Event::ReceiveSynAck, at);
        }
        // It acknowledges the peer's SYN: SYN-RECEIVED → ESTABLISHED for the peer.
        if self.dirs[to]
            .isn
            .is_some_and(|isn| seq_le(isn.wrapping_add(1), ack))
            && self.ends[to].apply_at(Event::ReceiveAckOfSyn, at).is_some()
            && self.established.is_none()
        {
            self.established = Some(at);
        }

        // Handshake segments missing from the capture: only a synchronized endpoint sends a
        // non-SYN segment with an ACK, so after a SYN such a segment proves the handshake
        // completed even when the SYN,ACK or the final ACK was not captured.
        if !seg.flags.syn()
            && self.established.is_none()
            && self.ends.iter().any(|e| e.syn.is_some())
        {
            for end in &mut self.ends {
                end.apply_at(Event::HandshakeNotCaptured, at);
            }
            self.established = Some(at);
        }

        // Segments from one sender arrive in the order sent: a segment from `from` sent
        // after its own FIN reaches the peer after that FIN, so when it acknowledges the
        // peer's FIN, the peer has received `from`'s FIN first (the simultaneous close:
        // FIN-WAIT-1 → CLOSING, then the ACK: CLOSING → TIME-WAIT).
        if let (Some(peer_fin), Some(_)) = (self.dirs[to].fin_seq, self.dirs[from].fin_seq) {
            if seq_le(peer_fin.wrapping_add(1), ack) && self.ends[to].peer_fin_received.is_none() {
                self.receive_fin(to, at);
            }
        }
        if let Some(peer_fin) = self.dirs[to].fin_seq {
            let covers = seq_le(peer_fin.wrapping_add(1), ack);
            if covers && self.ends[from].peer_fin_received.is_none() {
                self.receive_fin(from, at);
            } else if !covers && self.ends[from].peer_fin_received.is_none() {
                self.ends[from].peer_fin_arrived_later = true;
            }
            // The peer's FIN is acknowledged (`next`: FIN-WAIT-1 → FIN-WAIT-2, CLOSING →
            // TIME-WAIT, LAST-ACK → CLOSED).
            if covers && self.ends[to].fin_acked.is_none() {
                self.ends[to].fin_acked = Some(at);
                self.ends[to].apply_at(Event::ReceiveAckOfFin, at);
            }
        }
    }

    /// The endpoint `who` has received its peer's FIN (`next`: ESTABLISHED → CLOSE-WAIT,
    /// FIN-WAIT-1 → CLOSING, FIN-WAIT-2 → TIME-WAIT). `evidence` is the segment that
    /// proves it; the change is dated when the FIN arrived: the FIN's own moment, unless
    /// `who` sent something after the FIN that shows it had not arrived yet (then the
    /// evidence's moment).
    fn receive_fin(&mut self, who: End, evidence: Moment) {
        let fin = self.ends[who.other()].fin;
        let at = match fin {
            Some(f) if !self.ends[who].peer_fin_arrived_later => f,
            _ => evidence,
        };
        self.ends[who].peer_fin_received = Some(at);
        let Some(next) = self.ends[who].apply_at(Event::ReceiveFin, at) else {
            return;
        };
        // Dated back: the segments recorded since the FIN already show the new state.
        if at != evidence {
            if let Some(rec) = self.recorded.as_mut() {
                for r in rec.iter_mut().rev() {
                    if r.at.frame() < at.frame() {
                        break;
                    }
                    r.states[who] = next;
                }
            }
        }
    }

    fn record(&mut self, seg: &Segment, from: End, at: Moment, notes: NoteSet) {
        // RFC 7323 §2.2: "The window field in a segment where the SYN bit is set … MUST
        // NOT be scaled."
        if self.recorded.is_none() {
            return;
        }
        let window = if seg.flags.syn() {
            seg.window as u64
        } else {
            self.scaled_window(from).unwrap_or(seg.window as u64)
        };
        let states = [self.ends[End::A].state, self.ends[End::B].state];
        if let Some(rec) = self.recorded.as_mut() {
            rec.push(RecordedSegment {
                at,
                from,
                flags: seg.flags,
                seq: seg.seq,
                ack: seg.ack,
                len: seg.payload_len,
                window,
                notes,
                states,
            });
        }
    }

    /// Applies the timers a capture can be sure of, at the end of the capture:
    /// TIME-WAIT → CLOSED after `time_wait_secs` (RFC 9293 §3.10.8 "Time-Wait Timeout:
    /// … delete the TCB, enter the CLOSED state"; 2×MSL in the RFC, a fixed 60 s
    /// `TCP_TIMEWAIT_LEN` on Linux).
    pub fn finish(&mut self, capture_end_ns: i64, time_wait_secs: f64) {
        let tw_ns = (time_wait_secs * 1e9) as i64;
        for end in &mut self.ends {
            if let Some(since_ns) = end.time_wait_since_ns() {
                let expiry = since_ns.saturating_add(tw_ns);
                if expiry <= capture_end_ns {
                    end.apply(Event::TimeWaitTimeout, expiry, None);
                }
            }
        }
    }

    /// Both endpoints are done with the connection (CLOSED, or TIME-WAIT, which only
    /// absorbs retransmissions).
    pub fn is_finished(&self) -> bool {
        self.ends
            .iter()
            .all(|e| matches!(e.state, TcpState::Closed | TcpState::TimeWait))
            && (self.reset.is_some() || self.ends.iter().all(|e| e.fin.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const A: End = End::A;
    const B: End = End::B;

    /// The frame reads back as given, and an absent moment costs no extra word.
    #[test]
    fn moments_keep_their_frame_in_sixteen_bytes() {
        for frame in [0, 1, 2, 1 << 40, u64::MAX - 1] {
            assert_eq!(Moment::new(-5, frame).frame(), frame);
        }
        assert_eq!(Moment::new(0, u64::MAX).frame(), u64::MAX - 1);
        assert_eq!(std::mem::size_of::<Option<Moment>>(), 16);
    }

    #[test]
    fn state_changes_keep_their_frame_in_twenty_four_bytes() {
        for frame in [Some(0), Some(1), Some(1 << 40), Some(u64::MAX - 1), None] {
            assert_eq!(Change::new(TcpState::Closed, 7, frame).frame(), frame);
        }
        let saturated = Change::new(TcpState::Closed, 0, Some(u64::MAX));
        assert_eq!(saturated.frame(), Some(u64::MAX - 1));
        assert_eq!(std::mem::size_of::<Change>(), 24);
    }

    /// Every transition `next` can take, over every state and every event, is a row of the
    /// one table (`state::TRANSITIONS`) listing that event; every event a row lists makes
    /// `next` take exactly that row: the machine and the table cannot drift apart.
    #[test]
    fn next_takes_exactly_the_edges_of_the_transition_table() {
        use crate::state::{Event, TRANSITIONS};
        let mut taken = 0;
        for state in TcpState::ALL {
            for event in Event::ALL {
                if let Some(to) = next(state, event) {
                    taken += 1;
                    assert_ne!(state, to, "{state} on {event:?} loops");
                    assert!(
                        TRANSITIONS
                            .iter()
                            .any(|t| t.from == state && t.to == to && t.on.contains(&event)),
                        "{state} → {to} on {event:?} is not in the table"
                    );
                }
            }
        }
        let mut listed = 0;
        for t in TRANSITIONS {
            for event in t.on {
                listed += 1;
                assert_eq!(next(t.from, *event), Some(t.to), "{t:?} on {event:?}");
            }
        }
        assert_eq!(taken, listed);
        // One row per edge.
        for (i, t) in TRANSITIONS.iter().enumerate() {
            assert!(
                !TRANSITIONS[..i]
                    .iter()
                    .any(|u| (u.from, u.to) == (t.from, t.to)),
                "{t:?} twice"
            );
        }
    }

    /// Figure 5's rows of the table are the figure's twenty edges, in the table's order.
    #[test]
    fn rfc_edges_are_the_figure_rows_of_the_table() {
        use crate::state::{RFC_EDGES, TRANSITIONS};
        let figure: Vec<(TcpState, TcpState, &str)> = TRANSITIONS
            .iter()
            .filter_map(|t| t.figure.map(|text| (t.from, t.to, text)))
            .collect();
        assert_eq!(RFC_EDGES, figure.as_slice());
        assert_eq!(RFC_EDGES.len(), 20);
    }

    /// A timeline starts with the first state the capture shows; every later change is an
    /// edge of the table (here on a graceful close, a simultaneous close and a refusal).
    #[test]
    fn recorded_timelines_walk_only_table_edges() {
        use crate::state::TRANSITIONS;
        let mut graceful = established_with_exchange();
        graceful
            .send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, FIN | ACK, 5201, 1102, 0)
            .send(A, ACK, 1102, 5202, 0);
        let mut simultaneous = established_with_exchange();
        simultaneous
            .send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, ACK, 1102, 5202, 0)
            .send(B, ACK, 5202, 1102, 0);
        let mut refused = Wire::new();
        refused
            .send(A, SYN, 1000, 0, 0)
            .send(B, RST | ACK, 0, 1001, 0);
        for w in [graceful, simultaneous, refused] {
            let mut conv = w.conv.unwrap();
            conv.finish(conv.last.ts_ns + 61_000_000_000, 60.0);
            for end in &conv.ends {
                for pair in end.changes.windows(2) {
                    let (a, b) = (pair[0].state, pair[1].state);
                    assert!(
                        TRANSITIONS.iter().any(|t| t.from == a && t.to == b),
                        "{a} → {b}"
                    );
                }
            }
        }
    }

    /// Builds segments of a conversation between 10.0.0.1:40000 (A) and 10.0.0.2:80 (B).
    struct Wire {
        conv: Option<Conversation>,
        frame: u64,
        ts_ns: i64,
    }

    impl Wire {
        fn new() -> Self {
            Wire {
                conv: None,
                frame: 0,
                ts_ns: 1_700_000_000_000_000_000,
            }
        }

        fn send(&mut self, from: End, flags: u8, seq: u32, ack: u32, len: u32) -> &mut Self {
            self.frame += 1;
            self.ts_ns += 1_000_000;
            let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
            let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
            let (src, dst) = if from == A { (a, b) } else { (b, a) };
            let seg = Segment {
                ts_ns: self.ts_ns,
                frame: self.frame,
                window_scale: (flags & TcpFlags::SYN != 0).then_some(7),
                ..crate::testkit::segment(src, dst, flags, seq, ack, len)
            };
            let conv = self
                .conv
                .get_or_insert_with(|| Conversation::new(&seg, true));
            conv.process(&seg, from);
            self
        }

        fn states(&self) -> (TcpState, TcpState) {
            let c = self.conv.as_ref().unwrap();
            (c.ends[A].state, c.ends[B].state)
        }

        fn conv(&self) -> &Conversation {
            self.conv.as_ref().unwrap()
        }
    }

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN: u8 = TcpFlags::FIN;
    const RST: u8 = TcpFlags::RST;
    const PSH: u8 = TcpFlags::PSH;

    /// Handshake with ISNs 1000 (A) and 5000 (B), then a request and a response.
    fn established_with_exchange() -> Wire {
        let mut w = Wire::new();
        w.send(A, SYN, 1000, 0, 0)
            .send(B, SYN | ACK, 5000, 1001, 0)
            .send(A, ACK, 1001, 5001, 0)
            .send(A, PSH | ACK, 1001, 5001, 100)
            .send(B, ACK, 5001, 1101, 0)
            .send(B, PSH | ACK, 5001, 1101, 200)
            .send(A, ACK, 1101, 5201, 0);
        w
    }

    #[test]
    fn three_way_handshake_establishes_both() {
        let mut w = Wire::new();
        w.send(A, SYN, 1000, 0, 0);
        assert_eq!(w.states(), (TcpState::SynSent, TcpState::Closed));
        w.send(B, SYN | ACK, 5000, 1001, 0);
        assert_eq!(w.states(), (TcpState::SynSent, TcpState::SynReceived));
        w.send(A, ACK, 1001, 5001, 0);
        assert_eq!(w.states(), (TcpState::Established, TcpState::Established));
    }

    #[test]
    fn active_close_walks_fin_wait_1_fin_wait_2_time_wait() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0);
        assert_eq!(w.states(), (TcpState::FinWait1, TcpState::Established));
        w.send(B, ACK, 5201, 1102, 0);
        assert_eq!(w.states(), (TcpState::FinWait2, TcpState::CloseWait));
        w.send(B, FIN | ACK, 5201, 1102, 0);
        assert_eq!(w.states(), (TcpState::FinWait2, TcpState::LastAck));
        w.send(A, ACK, 1102, 5202, 0);
        assert_eq!(w.states(), (TcpState::TimeWait, TcpState::Closed));
        assert!(w.conv().is_finished());
        assert_eq!(w.conv().ends[B].fin_sent_from, Some(TcpState::CloseWait));
    }

    #[test]
    fn piggybacked_fin_ack_goes_close_wait_then_last_ack() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, FIN | ACK, 5201, 1102, 0);
        assert_eq!(w.states(), (TcpState::FinWait2, TcpState::LastAck));
        let c = w.conv();
        let changes: Vec<TcpState> = c.ends[B].changes.iter().map(|c| c.state).collect();
        assert!(changes.ends_with(&[TcpState::CloseWait, TcpState::LastAck]));
        w.send(A, ACK, 1102, 5202, 0);
        assert_eq!(w.states(), (TcpState::TimeWait, TcpState::Closed));
    }

    #[test]
    fn simultaneous_close_fins_cross() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            // B's FIN does not acknowledge A's FIN: it was sent before A's FIN arrived.
            .send(B, FIN | ACK, 5201, 1101, 0);
        assert_eq!(w.states(), (TcpState::FinWait1, TcpState::FinWait1));
        w.send(A, ACK, 1102, 5202, 0);
        assert_eq!(w.states().0, TcpState::Closing);
        w.send(B, ACK, 5202, 1102, 0);
        assert_eq!(w.states(), (TcpState::TimeWait, TcpState::TimeWait));
    }

    /// Each side's states with the frame of each change.
    fn timeline(w: &Wire, side: End) -> Vec<(TcpState, Option<u64>)> {
        w.conv().ends[side]
            .changes
            .iter()
            .map(|c| (c.state, c.frame()))
            .collect()
    }

    /// captures/05 from the client (A): A's FIN (frame 8), B's FIN crossing it (9), A's
    /// ACK of B's FIN (10), B's ACK of A's FIN (11). B received A's FIN before A's ACK
    /// (one sender's segments arrive in order), so B goes through CLOSING, not FIN-WAIT-2;
    /// A received B's FIN when it was seen (frame 9).
    #[test]
    fn simultaneous_close_both_sides_go_through_closing() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, ACK, 1102, 5202, 0)
            .send(B, ACK, 5202, 1102, 0);
        use TcpState::*;
        assert_eq!(
            timeline(&w, A)[2..],
            [
                (FinWait1, Some(8)),
                (Closing, Some(9)),
                (TimeWait, Some(11))
            ]
        );
        assert_eq!(
            timeline(&w, B)[2..],
            [
                (FinWait1, Some(9)),
                (Closing, Some(10)),
                (TimeWait, Some(10))
            ]
        );
        // The ladder's per-segment states agree with the timeline.
        let rec = w.conv().recorded.as_ref().unwrap();
        assert_eq!(rec[8].states, [Closing, FinWait1]);
        assert_eq!(rec[9].states, [Closing, TimeWait]);
    }

    /// The peer enters CLOSE-WAIT when the FIN arrives, not when its (delayed) ACK leaves.
    #[test]
    fn close_wait_starts_at_the_fin_not_at_its_delayed_ack() {
        let mut w = established_with_exchange();
        w.send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, ACK, 1101, 5202, 0);
        assert_eq!(
            timeline(&w, A).last(),
            Some(&(TcpState::CloseWait, Some(8)))
        );
        assert_eq!(
            w.conv().ends[A].peer_fin_received.map(|m| m.frame()),
            Some(8)
        );
        let rec = w.conv().recorded.as_ref().unwrap();
        assert_eq!(rec[7].states, [TcpState::CloseWait, TcpState::FinWait1]);
    }

    /// The capture's clock steps back 10 s between the FIN and its ACK (packets pass
    /// through in file order): B's FIN-WAIT-2 is not dated before its FIN-WAIT-1, so a
    /// timeline stays in time order and the states chart never counts B in both.
    #[test]
    fn a_clock_stepping_back_keeps_each_timeline_in_time_order() {
        let mut w = established_with_exchange();
        w.send(B, FIN | ACK, 5201, 1101, 0);
        w.ts_ns -= 10_000_000_000;
        w.send(A, ACK, 1101, 5202, 0);
        use TcpState::*;
        assert_eq!(w.states(), (CloseWait, FinWait2));
        for side in [A, B] {
            let changes = &w.conv().ends[side].changes;
            assert!(
                changes.windows(2).all(|c| c[0].at_ns <= c[1].at_ns),
                "{changes:?}"
            );
        }
        let b = &w.conv().ends[B].changes;
        assert_eq!(b[b.len() - 1].at_ns, b[b.len() - 2].at_ns);
    }

    /// Data that crossed the FIN shows the FIN had not arrived when it was sent: the
    /// arrival is then dated by the ACK that proves it.
    #[test]
    fn data_crossing_the_fin_dates_close_wait_at_the_ack() {
        let mut w = established_with_exchange();
        w.send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, PSH | ACK, 1101, 5201, 50)
            .send(A, ACK, 1151, 5202, 0);
        assert_eq!(
            timeline(&w, A).last(),
            Some(&(TcpState::CloseWait, Some(10)))
        );
    }

    #[test]
    fn unanswered_fin_leaves_peer_in_close_wait() {
        let mut w = established_with_exchange();
        w.send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, ACK, 1101, 5202, 0);
        assert_eq!(w.states(), (TcpState::CloseWait, TcpState::FinWait2));
        assert!(!w.conv().is_finished());
    }

    #[test]
    fn late_write_after_orphan_expiry_draws_valid_rst() {
        let mut w = established_with_exchange();
        w.send(B, FIN | ACK, 5201, 1101, 0)
            .send(A, ACK, 1101, 5202, 0)
            .send(A, PSH | ACK, 1101, 5202, 50)
            // Linux: no socket, bare RST with SEQ = the offending segment's ACK.
            .send(B, RST, 5202, 0, 0);
        assert_eq!(w.states(), (TcpState::Closed, TcpState::Closed));
        let c = w.conv();
        assert_eq!(c.reset.map(|r| r.by), Some(B));
        assert_eq!(
            c.first_close.map(|f| (f.by, f.signal)),
            Some((B, CloseSignal::Fin))
        );
    }

    #[test]
    fn out_of_window_rst_is_ignored() {
        let mut w = established_with_exchange();
        w.send(B, RST, 5201 + 10_000_000, 0, 0);
        assert_eq!(w.states(), (TcpState::Established, TcpState::Established));
        assert_eq!(w.conv().dirs[B].stats.ignored_rsts, 1);
        assert!(w.conv().reset.is_none());
    }

    #[test]
    fn rst_repeating_the_fin_sequence_number_is_accepted() {
        let mut w = established_with_exchange();
        // The server closes; the client's data reaches the closed socket; the server's
        // RST carries its FIN's sequence number (Linux accepts it: tcp_reset_check).
        w.send(A, PSH | ACK, 1101, 5201, 24)
            .send(B, FIN | ACK, 5201, 1101, 0)
            .send(B, RST, 5201, 0, 0);
        assert_eq!(w.states(), (TcpState::Closed, TcpState::Closed));
        assert_eq!(w.conv().dirs[B].stats.ignored_rsts, 0);
    }

    #[test]
    fn refused_syn_answered_by_rst_ack() {
        let mut w = Wire::new();
        w.send(A, SYN, 1000, 0, 0).send(B, RST | ACK, 0, 1001, 0);
        assert_eq!(w.states(), (TcpState::Closed, TcpState::Closed));
        assert_eq!(w.conv().reset.map(|r| r.by), Some(B));
    }

    #[test]
    fn rst_with_wrong_ack_in_syn_sent_is_ignored() {
        let mut w = Wire::new();
        w.send(A, SYN, 1000, 0, 0).send(B, RST | ACK, 0, 999, 0);
        assert_eq!(w.states().0, TcpState::SynSent);
    }

    #[test]
    fn retransmitted_fin_is_one_fin() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            .send(A, FIN | ACK, 1101, 5201, 0);
        let c = w.conv();
        assert_eq!(c.dirs[A].stats.fins, 2);
        assert_eq!(c.dirs[A].stats.retransmissions, 1);
        assert_eq!(c.ends[A].state, TcpState::FinWait1);
    }

    /// Data resent with the FIN the original lacked: the FIN's sequence number is not a
    /// byte of data (100 bytes, not 101).
    #[test]
    fn resent_data_with_fin_counts_no_extra_byte() {
        let mut w = established_with_exchange();
        w.send(A, PSH | ACK, 1101, 5201, 100)
            .send(A, FIN | PSH | ACK, 1101, 5201, 100);
        let d = &w.conv().dirs[A];
        assert_eq!(d.bytes, 200);
        assert_eq!(d.next_seq, 1202);
        assert_eq!(d.stats.retransmissions, 1);
    }

    #[test]
    fn keepalive_probe_and_ack_are_not_data() {
        let mut w = established_with_exchange();
        let before = w.conv().ends[A].last_data;
        w.send(A, ACK, 1100, 5201, 0).send(B, ACK, 5201, 1101, 0);
        let c = w.conv();
        assert_eq!(c.dirs[A].stats.keepalives, 1);
        assert_eq!(c.dirs[B].stats.keepalive_acks, 1);
        assert_eq!(c.dirs[A].stats.retransmissions, 0);
        assert_eq!(c.ends[A].last_data, before);
    }

    #[test]
    fn half_close_data_in_close_wait() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, PSH | ACK, 5201, 1102, 300);
        assert!(w.conv().ends[B].data_in_close_wait);
        assert_eq!(w.states().1, TcpState::CloseWait);
    }

    #[test]
    fn sequence_wraparound_tracks_fin() {
        let mut w = Wire::new();
        let isn = u32::MAX - 50;
        w.send(A, SYN, isn, 0, 0)
            .send(B, SYN | ACK, 5000, isn.wrapping_add(1), 0)
            .send(A, ACK, isn.wrapping_add(1), 5001, 0)
            .send(A, PSH | ACK, isn.wrapping_add(1), 5001, 100)
            .send(B, ACK, 5001, isn.wrapping_add(101), 0)
            .send(A, FIN | ACK, isn.wrapping_add(101), 5001, 0)
            .send(B, FIN | ACK, 5001, isn.wrapping_add(102), 0)
            .send(A, ACK, isn.wrapping_add(102), 5002, 0);
        assert_eq!(w.states(), (TcpState::TimeWait, TcpState::Closed));
        let c = w.conv();
        assert_eq!(c.dirs[A].bytes, 100);
        assert_eq!(c.dirs[A].stats.retransmissions, 0);
    }

    #[test]
    fn gap_then_fill_is_out_of_order_not_retransmission() {
        let mut w = established_with_exchange();
        w.send(A, ACK, 1201, 5201, 100); // 1101..1201 missing
        assert_eq!(w.conv().dirs[A].missing_bytes(), 100);
        w.send(A, ACK, 1101, 5201, 100);
        let c = w.conv();
        assert_eq!(c.dirs[A].stats.out_of_order, 1);
        assert_eq!(c.dirs[A].missing_bytes(), 0);
        assert_eq!(c.dirs[A].bytes, 300);
    }

    #[test]
    fn missing_syn_ack_still_establishes_on_client_ack() {
        let mut w = Wire::new();
        // The SYN,ACK was not captured; the client's ACK and data prove it arrived.
        w.send(A, SYN, 1000, 0, 0)
            .send(A, ACK, 1001, 5001, 0)
            .send(A, PSH | ACK, 1001, 5001, 10);
        assert_eq!(w.states(), (TcpState::Established, TcpState::Established));
        assert!(w.conv().established.is_some());
    }

    #[test]
    fn midstream_start_is_established() {
        let mut w = Wire::new();
        w.send(A, PSH | ACK, 77, 99, 10);
        assert_eq!(w.states(), (TcpState::Established, TcpState::Established));
        assert!(w.conv().midstream);
    }

    #[test]
    fn time_wait_expires_after_its_timeout() {
        let mut w = established_with_exchange();
        w.send(A, FIN | ACK, 1101, 5201, 0)
            .send(B, FIN | ACK, 5201, 1102, 0)
            .send(A, ACK, 1102, 5202, 0);
        let mut c = w.conv.take().unwrap();
        let end = c.last.ts_ns + 61_000_000_000;
        c.finish(end, 60.0);
        assert_eq!(c.ends[A].state, TcpState::Closed);
        assert_eq!(c.ends[A].changes.last().unwrap().frame(), None);
    }
}
