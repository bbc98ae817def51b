//! The report model: what closewait knows about each connection once it has ended.
//!
//! Every renderer (text, JSON, diagrams, charts) reads these types and nothing else: no
//! renderer re-runs the state machine. The field names are the JSON contract documented in
//! `docs/json.md`; change them only together with that page.

use crate::state::TcpState;
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;

/// One of the two endpoints of a connection, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value for each side, serialised as `{ "client": …, "server": … }`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PerSide<T> {
    pub client: T,
    pub server: T,
}

impl<T> PerSide<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }
    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }
}

/// How a connection ended: exactly one per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// Both FINs sent and acknowledged, one side first.
    Graceful,
    /// Each side sent its FIN before receiving the other's (RFC 9293 §3.6 case 3).
    Simultaneous,
    /// The side that got the first FIN kept sending data before its own FIN.
    HalfClose,
    /// A RST with no FIN before it.
    Abort,
    /// A FIN was sent and the connection still ended by RST.
    FinThenRst,
    /// A FIN was sent; the peer never sent its own and no RST came by the end of the capture.
    UnansweredFin,
    /// SYN answered by RST.
    Refused,
    /// SYNs never answered.
    SynTimeout,
    /// SYN and SYN-ACK seen, the handshake never completed.
    HandshakeIncomplete,
    /// Established, no FIN or RST seen.
    Open,
}

impl CloseKind {
    pub const ALL: [CloseKind; 10] = [
        CloseKind::Graceful,
        CloseKind::Simultaneous,
        CloseKind::HalfClose,
        CloseKind::Abort,
        CloseKind::FinThenRst,
        CloseKind::UnansweredFin,
        CloseKind::Refused,
        CloseKind::SynTimeout,
        CloseKind::HandshakeIncomplete,
        CloseKind::Open,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseKind::Graceful => "graceful",
            CloseKind::Simultaneous => "simultaneous",
            CloseKind::HalfClose => "half_close",
            CloseKind::Abort => "abort",
            CloseKind::FinThenRst => "fin_then_rst",
            CloseKind::UnansweredFin => "unanswered_fin",
            CloseKind::Refused => "refused",
            CloseKind::SynTimeout => "syn_timeout",
            CloseKind::HandshakeIncomplete => "handshake_incomplete",
            CloseKind::Open => "open",
        }
    }
}

impl fmt::Display for CloseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CloseKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        CloseKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| {
                let all: Vec<&str> = CloseKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown close kind '{s}' (one of: {})", all.join(", "))
            })
    }
}

/// Who started the close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Client,
    Server,
    Both,
    None,
}

impl From<Side> for Initiator {
    fn from(s: Side) -> Self {
        match s {
            Side::Client => Initiator::Client,
            Side::Server => Initiator::Server,
        }
    }
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Client => "client",
            Initiator::Server => "server",
            Initiator::Both => "both",
            Initiator::None => "none",
        }
    }
}

/// The first teardown signal of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CloseSignal {
    #[serde(rename = "FIN")]
    Fin,
    #[serde(rename = "RST")]
    Rst,
}

impl CloseSignal {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseSignal::Fin => "FIN",
            CloseSignal::Rst => "RST",
        }
    }
}

/// The close verdict for one connection. Serialised by hand (below): its `explanation`
/// is the TCP sentences followed by the HTTP one.
#[derive(Clone, Debug, PartialEq)]
pub struct Close {
    pub kind: CloseKind,
    pub initiator: Initiator,
    /// `FIN` or `RST`: the first teardown segment (a valid RST only).
    pub first: Option<CloseSignal>,
    pub first_by: Option<Side>,
    /// Epoch seconds of the first FIN/RST.
    pub first_at: Option<f64>,
    /// Frame number of the first FIN/RST (Wireshark's `frame.number`).
    pub first_frame: Option<u64>,
    /// Seconds from the last segment carrying data (either direction) to the first FIN/RST.
    pub idle_before_close: Option<f64>,
    /// Who sent the valid RST that ended the connection.
    pub rst_by: Option<Side>,
    /// The side that got a FIN, acknowledged it and sent no FIN of its own within the
    /// capture; or the side that never answered a SYN.
    pub who_failed_to_respond: Option<Side>,
    /// Epoch seconds since when that side has been silent about its FIN (or SYN-ACK).
    pub waiting_since: Option<f64>,
    /// Seconds from `waiting_since` to the end of the capture.
    pub waiting_for: Option<f64>,
    /// One or two sentences saying what happened, for people (TCP only: the HTTP
    /// sentence is added from `http` when written, see [`Close::explained`]).
    pub explanation: Explanation,
    /// What the HTTP/1.x conversation says about the close (`http_close::judge`); absent
    /// without HTTP or without a close.
    pub http: Option<Box<crate::http_close::HttpClose>>,
    /// The side whose packets alone the capture holds though the other side's provably
    /// existed ([`ConnectionReport::captured_one_way`]); the explanation says so. Not a
    /// JSON field of its own.
    pub captured_one_way: Option<Side>,
}

impl Close {
    /// The explanation as people read it: the TCP sentences, then the HTTP one if any.
    pub fn explained(&self) -> Explained<'_> {
        Explained(self)
    }
}

/// [`Close::explained`]: written with `Display` or [`Explained::write_to`].
pub struct Explained<'a>(&'a Close);

impl Explained<'_> {
    pub fn write_to<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        self.0.explanation.write_to(out)?;
        match self.0.captured_one_way {
            Some(Side::Client) => out.write_str(
                " Only the client's packets were captured, though it completed its handshake: \
                 the server's are missing from the capture, not absent.",
            )?,
            Some(Side::Server) => out.write_str(
                " Only the server's packets were captured, though it sent data after its \
                 SYN,ACK: the client's are missing from the capture, not absent.",
            )?,
            None => {}
        }
        if let Some(http) = &self.0.http {
            out.write_str(" ")?;
            http.write_to(out)?;
        }
        Ok(())
    }
}

impl fmt::Display for Explained<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// Field by field as a derive would, except that `explanation` is [`Close::explained`]
/// and `http` is left out when absent.
impl Serialize for Close {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = if self.http.is_some() { 13 } else { 12 };
        let mut c = s.serialize_struct("Close", fields)?;
        c.serialize_field("kind", &self.kind)?;
        c.serialize_field("initiator", &self.initiator)?;
        c.serialize_field("first", &self.first)?;
        c.serialize_field("first_by", &self.first_by)?;
        c.serialize_field("first_at", &self.first_at)?;
        c.serialize_field("first_frame", &self.first_frame)?;
        c.serialize_field("idle_before_close", &self.idle_before_close)?;
        c.serialize_field("rst_by", &self.rst_by)?;
        c.serialize_field("who_failed_to_respond", &self.who_failed_to_respond)?;
        c.serialize_field("waiting_since", &self.waiting_since)?;
        c.serialize_field("waiting_for", &self.waiting_for)?;
        c.serialize_field("explanation", &CollectStr(&self.explained()))?;
        if let Some(http) = &self.http {
            c.serialize_field("http", http)?;
        }
        c.end()
    }
}

/// Serialises a `Display` as its text.
struct CollectStr<'a, T: fmt::Display>(&'a T);

impl<T: fmt::Display> Serialize for CollectStr<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// The sentences of a close verdict, kept as the facts they are worded from and written
/// out when rendered (serialised as their text; the wording is in `explain`).
///
/// Why not a `String`: formatting one for every connection (a `format!`, a float with
/// three decimals, a heap allocation and its free) cost more on the output thread than
/// the rest of building the report, and the text table never shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum Explanation {
    /// The server answered the SYN with RST, `after` seconds after the first SYN.
    Refused { after: f64 },
    /// `syns` SYNs over `over` seconds got no answer.
    SynTimeout { syns: u64, over: f64 },
    /// The handshake never completed: `by` reset it.
    HandshakeReset { by: Side },
    /// The server answered the SYN; the client never completed the handshake.
    HandshakeUnfinished,
    /// No FIN or RST seen.
    Open,
    /// `first` sent FIN first; `rst_by` reset the connection `after` seconds later, and
    /// `silent` had not sent its own FIN.
    FinThenRst {
        first: Side,
        rst_by: Side,
        after: f64,
        silent: Option<Side>,
    },
    /// `by` aborted the connection with RST, no FIN before it.
    Abort { by: Side },
    /// Both sides sent FIN before receiving the other's.
    Simultaneous,
    /// `first` closed first; the other side sent data in CLOSE_WAIT before closing too.
    HalfClose { first: Side },
    /// `first` closed first; the other side answered with its FIN, `after` seconds later
    /// when that was more than zero.
    Graceful { first: Side, after: Option<f64> },
    /// `first` sent FIN (after `idle` seconds idle); the other side acknowledged it and sat
    /// in CLOSE_WAIT for `close_wait` seconds until the end of the capture.
    UnansweredFin {
        first: Side,
        idle: Option<f64>,
        close_wait: f64,
    },
    /// `first` sent FIN; the other side neither acknowledged it nor sent its own.
    UnacknowledgedFin { first: Side },
    /// Any other text (hand-made reports, tests).
    Text(String),
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// As its text, the same bytes as the `String` it replaces.
impl Serialize for Explanation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl From<String> for Explanation {
    fn from(text: String) -> Self {
        Explanation::Text(text)
    }
}

impl From<&str> for Explanation {
    fn from(text: &str) -> Self {
        Explanation::Text(text.to_string())
    }
}

/// One change of an endpoint's RFC 9293 state, as inferred from the wire.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateChange {
    pub state: TcpState,
    /// Epoch seconds.
    pub at: f64,
    /// The frame that caused it, or `null` for a change caused by a timer (TIME_WAIT
    /// expiry) rather than by a segment.
    pub frame: Option<u64>,
}

/// Per-direction TCP bookkeeping, named after Wireshark's `tcp.analysis.*` flags.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DirectionStats {
    /// Segments that repeated sequence space already seen (`tcp.analysis.retransmission`).
    pub retransmissions: u64,
    /// Segments that arrived below the highest sequence seen, filling a gap
    /// (`tcp.analysis.out_of_order`).
    pub out_of_order: u64,
    /// Keep-alive probes sent (`tcp.analysis.keep_alive`): seq = SND.NXT−1, 0 or 1 byte.
    pub keepalives: u64,
    /// Acknowledgements of the peer's keep-alive probes (`tcp.analysis.keep_alive_ack`).
    pub keepalive_acks: u64,
    /// Segments advertising a zero receive window (`tcp.analysis.zero_window`).
    pub zero_windows: u64,
    /// Sequence space this side sent that the capture never saw
    /// (`tcp.analysis.lost_segment`, "Previous segment not captured").
    pub missing_bytes: u64,
    /// RSTs this side sent that the receiver would have ignored (RFC 9293 §3.10.7.4 /
    /// RFC 5961 §3.2: sequence number outside the receive window).
    pub ignored_rsts: u64,
    /// FIN segments sent, counting retransmissions.
    pub fins: u64,
    /// RST segments sent, valid or not.
    pub rsts: u64,
}

/// Zeek's view of the connection, per Zeek's documented `conn.log` definitions: the
/// conn.log row its first packet opened, and any later rows Zeek's timers split off
/// (`closewait analyze --format zeek` writes them all; the JSON report shows the first).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ZeekView {
    pub conn_state: String,
    pub history: String,
    /// The row's other conn.log columns.
    #[serde(skip)]
    pub row: ZeekRowCounts,
    /// Rows Zeek starts on the same 4-tuple after its close, reset, attempt or inactivity
    /// timer removed this one (their own `later_rows` are empty).
    #[serde(skip)]
    pub later_rows: Vec<ZeekView>,
}

/// Segments that arrived on a connection's 4-tuple after the connection was reset or
/// closed and reported, none of them a SYN (which would have started a new connection):
/// a late retransmission, a probe, the peer's answer to them. They belong to that
/// connection and are counted here instead of being taken for a new one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PostClose {
    /// The connection they belong to.
    pub id: u64,
    #[serde(serialize_with = "ser_addr")]
    pub client: SocketAddr,
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// Segments from each side.
    pub client_segments: u64,
    pub server_segments: u64,
    /// Capture times (epoch seconds) of the first and last of them.
    pub first: f64,
    pub last: f64,
    /// Zeek's conn.log rows for them: Zeek had removed the connection by then (its
    /// `tcp_reset_delay`/`tcp_close_delay` are no longer than closewait's hold of a
    /// finished connection), so it logs them as new rows.
    #[serde(skip)]
    pub zeek: Vec<ZeekView>,
}

/// Post-close traffic of a capture ([`PostClose`]), in the JSON `capture` object when
/// there is any.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PostCloseStats {
    /// Segments counted, and the connections they belong to.
    pub segments: u64,
    pub connections: u64,
    /// Per connection, in the order the table forgot them (the first 10 000).
    pub by_connection: Vec<PostClose>,
}

impl PostCloseStats {
    pub fn is_empty(&self) -> bool {
        self.segments == 0
    }
}

/// The conn.log columns of a Zeek row besides `conn_state` and `history`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ZeekRowCounts {
    /// Zeek's originator is the connection's client (false: its server).
    pub orig_is_client: bool,
    /// Capture time of the row's first packet (epoch seconds) and to its last.
    pub start: f64,
    pub duration: f64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    pub missed_bytes: u64,
    pub orig_pkts: u64,
    pub resp_pkts: u64,
}

/// What a segment meant, in Wireshark's vocabulary where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentNote {
    Retransmission,
    OutOfOrder,
    KeepAlive,
    KeepAliveAck,
    ZeroWindow,
    PreviousSegmentNotCaptured,
    /// A RST the receiver would ignore (outside its window).
    IgnoredRst,
    /// A RST that answered data sent after the peer's socket was gone.
    ResetAfterClose,
    /// The port pair reused by a new connection (`tcp.analysis.reused_ports`).
    ReusedPorts,
}

/// One segment of a connection, with both endpoints' states after it: the raw material of
/// ladder diagrams. Recorded only when asked for (it costs memory per segment).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentRecord {
    pub frame: u64,
    /// Epoch seconds.
    pub ts: f64,
    pub from: Side,
    /// Wireshark's flag spelling: `SYN`, `SYN, ACK`, `FIN, ACK`, `RST`, …
    pub flags: String,
    /// Sequence number relative to the sender's ISN (or first seen sequence number).
    pub seq: u32,
    /// Acknowledgement number relative to the receiver's ISN; `null` without ACK flag.
    pub ack: Option<u32>,
    pub abs_seq: u32,
    pub abs_ack: u32,
    /// Payload bytes (from the IP lengths).
    pub len: u32,
    /// The receive window this segment advertises, scaled when the scale is known.
    pub window: u64,
    pub notes: Vec<SegmentNote>,
    pub client_state: TcpState,
    pub server_state: TcpState,
}

/// Everything closewait says about one connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectionReport {
    /// 0-based, in order of each connection's first packet; equal to Wireshark's
    /// `tcp.stream` for captures without mid-stream oddities.
    pub id: u64,
    #[serde(serialize_with = "ser_addr")]
    pub client: SocketAddr,
    #[serde(serialize_with = "ser_addr")]
    pub server: SocketAddr,
    /// True when no SYN told which side is the client and roles were inferred from ports.
    pub role_inferred: bool,
    /// Epoch seconds of the first and last packet.
    pub start: f64,
    pub end: f64,
    pub duration: f64,
    pub first_frame: u64,
    pub last_frame: u64,
    pub packets: PerSide<u64>,
    /// TCP payload bytes sent by each side, counted once per sequence number.
    pub bytes: PerSide<u64>,
    pub close: Close,
    pub client_state: TcpState,
    pub server_state: TcpState,
    /// Each side's state changes, oldest first; the last entry is the end state.
    pub timeline: PerSide<Vec<StateChange>>,
    pub tcp: PerSide<DirectionStats>,
    pub zeek: ZeekView,
    /// What the reassembled byte streams said at the HTTP/1.x layer; absent when the
    /// connection's first payload did not look like HTTP/1.x, when it turned out not to be
    /// (a parse error before any head), or when no payload was captured. Boxed: most connections of a
    /// large capture have none, and a report stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Box<crate::http::HttpConversation>>,
    /// `--find`'s text was in the reassembled bytes of either direction (always false
    /// without `--find`). Not serialised: `--find` is a filter, and what it selected is
    /// the listing itself.
    #[serde(skip)]
    pub found: bool,
    /// Per-segment records, present only when recording was requested (diagrams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<SegmentRecord>>,
}

impl ConnectionReport {
    /// The side whose packets alone the capture holds, when the other side's provably
    /// existed. A client that sent an ACK after its SYN had received the SYN,ACK (RFC 9293
    /// §3.10.7.3: in SYN-SENT, "If SND.UNA > ISS (our SYN has been ACKed), change the
    /// connection state to ESTABLISHED, form an ACK segment … and send it"); a server that
    /// sent data after its SYN,ACK had the handshake's ACK (an application writes to an
    /// accepted, established socket). With no packet at all from the other side, its
    /// packets were sent but not captured: asymmetric routing, a one-way capture filter or
    /// mirror port. A silent peer without that proof (a SYN never answered, a dead host
    /// probed by keep-alives) is not taken for one.
    pub fn captured_one_way(&self) -> Option<Side> {
        let starts_in =
            |timeline: &[StateChange], state| timeline.first().is_some_and(|c| c.state == state);
        let client_completed_handshake = starts_in(&self.timeline.client, TcpState::SynSent)
            && self
                .timeline
                .client
                .iter()
                .any(|c| c.state == TcpState::Established);
        let server_sent_after_handshake =
            starts_in(&self.timeline.server, TcpState::SynReceived) && self.bytes.server > 0;
        if self.packets.server == 0 && self.packets.client > 0 && client_completed_handshake {
            Some(Side::Client)
        } else if self.packets.client == 0 && self.packets.server > 0 && server_sent_after_handshake
        {
            Some(Side::Server)
        } else {
            None
        }
    }

    pub fn state(&self, side: Side) -> TcpState {
        match side {
            Side::Client => self.client_state,
            Side::Server => self.server_state,
        }
    }
    pub fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
}

/// `ip:port`, IPv6 as `[ip]:port` (std's `SocketAddr` Display already does this).
pub fn ser_addr<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(a)
}

/// Nanoseconds since the epoch to float seconds, the JSON time unit.
pub fn secs(ts_ns: i64) -> f64 {
    ts_ns as f64 / 1e9
}
