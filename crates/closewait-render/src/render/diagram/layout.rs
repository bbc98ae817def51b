//! The ladder every diagram format draws: which segments are shown, where they sit on the
//! time axis, and what each lifeline says beside them.
//!
//! This is the one place that decides *what* a ladder shows; the format modules only decide
//! *how* it looks. It reads the report model (segment records with both endpoints' states
//! after each segment, the timeline's timer-driven changes, the close verdict) and never
//! re-runs the state machine, so a diagram cannot disagree with a verdict.
//!
//! The vertical axis is measured in *units*: one unit is the least room a row gets (one
//! line of text, one arrow in SVG). Between two rows, time adds room in proportion to the
//! seconds between them; a gap of `fold_after` seconds or more is cut out and drawn as a
//! marked break ("… 15.0 s idle …") unless the axis is linear.

use closewait_core::model::{
    CloseKind, ConnectionReport, PerSide, SegmentNote, SegmentRecord, Side,
};
use closewait_core::state::TcpState;
use std::collections::BTreeMap;

/// How time maps to height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeAxis {
    /// Proportional, with idle gaps of `fold_after` seconds or more folded into a break.
    #[default]
    Proportional,
    /// Proportional throughout, nothing folded (the whole ladder is scaled to fit).
    Linear,
}

/// What to draw; shared by every format.
#[derive(Clone, Debug, PartialEq)]
pub struct LadderOptions {
    pub time: TimeAxis,
    /// Show every segment (no folding of data-heavy stretches).
    pub all: bool,
    /// Absolute sequence/acknowledgement numbers instead of relative ones.
    pub absolute: bool,
    /// Gaps at least this long (seconds) are folded into a break on a proportional axis.
    pub fold_after: f64,
    /// Epoch seconds of the end of the capture (its best-known end,
    /// [`closewait_core::capture::CaptureStats::end_ts`], else the last packet of any connection); the
    /// ladder runs to it, so a side left waiting is seen waiting. `None`: the connection's
    /// own last segment.
    pub capture_end: Option<f64>,
}

impl Default for LadderOptions {
    fn default() -> Self {
        LadderOptions {
            time: TimeAxis::Proportional,
            all: false,
            absolute: false,
            fold_after: 1.0,
            capture_end: None,
        }
    }
}

/// Extra units that a gap of `fold_after` seconds gets on a proportional axis: the longest
/// unfolded gap is at most this tall.
const PROPORTIONAL_UNITS: f64 = 5.0;
/// On a linear axis the whole connection gets at most this many extra units.
const LINEAR_MAX_UNITS: f64 = 60.0;
/// A stretch of at least this many unremarkable segments is folded (unless `all`) …
const FOLD_RUN: usize = 16;
/// … keeping this many shown at each end of it.
const FOLD_KEEP: usize = 3;

/// One segment drawn as an arrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    pub frame: u64,
    pub from: Side,
    /// Wireshark's spelling: `SYN`, `SYN, ACK`, `FIN, ACK`, `RST`, `PSH, ACK`.
    pub flags: String,
    pub len: u32,
    pub seq: u32,
    pub ack: Option<u32>,
    pub notes: Vec<SegmentNote>,
    /// Both endpoints' states after this segment.
    pub states: PerSide<TcpState>,
    /// Whether each side's state changed with this segment (the label to write beside it).
    pub changed: PerSide<bool>,
    /// The HTTP/1.x head(s) this segment began (`GET /orders HTTP/1.1`, `HTTP/1.1 200 OK`),
    /// from the conversation's marks.
    pub http: Option<String>,
}

impl Arrow {
    pub fn is_rst(&self) -> bool {
        self.flags.contains("RST")
    }

    /// The arrow's main label: flags, payload length, Wireshark's analysis notes.
    pub fn label(&self) -> String {
        let mut s = self.flags.clone();
        if self.len > 0 {
            s.push_str(&format!(" len={}", self.len));
        }
        for n in &self.notes {
            s.push_str(&format!(" [{}]", note_name(*n)));
        }
        if let Some(http) = &self.http {
            s.push_str(": ");
            s.push_str(http);
        }
        s
    }

    /// Sequence and acknowledgement numbers.
    pub fn detail(&self) -> String {
        match self.ack {
            Some(a) => format!("seq={} ack={}", self.seq, a),
            None => format!("seq={}", self.seq),
        }
    }

    pub fn changed(&self, side: Side) -> Option<TcpState> {
        self.changed.get(side).then(|| *self.states.get(side))
    }
}

/// Wireshark's Info-column wording for a segment note.
pub fn note_name(n: SegmentNote) -> &'static str {
    match n {
        SegmentNote::Retransmission => "TCP Retransmission",
        SegmentNote::OutOfOrder => "TCP Out-Of-Order",
        SegmentNote::KeepAlive => "TCP Keep-Alive",
        SegmentNote::KeepAliveAck => "TCP Keep-Alive ACK",
        SegmentNote::ZeroWindow => "TCP ZeroWindow",
        SegmentNote::PreviousSegmentNotCaptured => "TCP Previous segment not captured",
        SegmentNote::IgnoredRst => "RST ignored: out of window",
        SegmentNote::ResetAfterClose => "RST after close",
        SegmentNote::ReusedPorts => "TCP Port numbers reused",
    }
}

/// A stretch of segments folded into one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Folded {
    pub segments: usize,
    /// Segments carrying payload, by sender; the others are pure ACKs and window updates.
    pub data_segments: PerSide<usize>,
    /// Payload bytes in the folded segments, by sender.
    pub bytes: PerSide<u64>,
    pub first_frame: u64,
    pub last_frame: u64,
    /// Seconds from the first to the last folded segment.
    pub secs: f64,
    /// HTTP heads begun in the folded segments, by sender (requests, responses).
    pub http_heads: PerSide<usize>,
}

impl Folded {
    /// "1030 data segments, 1.5 MB from the server, 400 ACKs, 23.8 ms": on a bulk transfer
    /// the receiver's ACKs are interleaved with the data, and a bare segment count would
    /// read as that many data segments.
    pub fn label(&self) -> String {
        let b = &self.bytes;
        let data_segments = self.data_segments.client + self.data_segments.server;
        let acks = self.segments - data_segments;
        let data = match (b.client, b.server) {
            (0, 0) => "no data".to_string(),
            (c, 0) => format!("{} from the client", human_bytes(c)),
            (0, s) => format!("{} from the server", human_bytes(s)),
            (c, s) => format!("client {}, server {}", human_bytes(c), human_bytes(s)),
        };
        let mut parts = Vec::with_capacity(4);
        if data_segments > 0 {
            parts.push(format!("{data_segments} data segments"));
        }
        parts.push(data);
        let heads = &self.http_heads;
        if heads.client > 0 {
            parts.push(plural(heads.client, "request", "requests"));
        }
        if heads.server > 0 {
            parts.push(plural(heads.server, "response", "responses"));
        }
        if acks > 0 {
            parts.push(format!("{acks} ACK{}", if acks == 1 { "" } else { "s" }));
        }
        parts.push(human_secs(self.secs));
        parts.join(", ")
    }
}

/// What a row of the ladder is.
#[derive(Clone, Debug, PartialEq)]
pub enum RowKind {
    Arrow(Arrow),
    /// A folded idle gap of this many seconds.
    Idle {
        secs: f64,
    },
    Folded(Folded),
    /// A state change caused by a timer, not a segment (TIME_WAIT expiry).
    Timer {
        side: Side,
        state: TcpState,
    },
    /// The end of the capture (or of the connection's records) with both end states.
    End {
        states: PerSide<TcpState>,
        /// Said about a side left waiting: "client in CLOSE_WAIT for 1.2 s, never sent FIN".
        note: Option<String>,
    },
}

/// One row: its height on the axis (units from the top) and time (seconds from the first
/// segment).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub y: f64,
    pub t: f64,
    pub kind: RowKind,
}

/// A stretch of one lifeline spent in one state, in units.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub side: Side,
    pub state: TcpState,
    pub y0: f64,
    pub y1: f64,
    /// Seconds spent in it (up to the end row).
    pub secs: f64,
}

/// The finished ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct Ladder {
    pub id: u64,
    pub client: String,
    pub server: String,
    pub kind: CloseKind,
    /// One line: kind, who went first, end states.
    pub headline: String,
    /// The classifier's own sentences.
    pub explanation: String,
    /// States before the first segment, when the capture starts with the client's SYN: both
    /// CLOSED (the state machine counts the server as CLOSED until its SYN-ACK proves a
    /// listener); `None` for a capture that starts mid-connection.
    pub initial: Option<PerSide<TcpState>>,
    pub rows: Vec<Row>,
    pub bands: Vec<Band>,
    /// The `y` of the last row.
    pub height: f64,
    pub absolute: bool,
    pub time: TimeAxis,
}

impl Ladder {
    pub fn side_label(&self, side: Side) -> String {
        match side {
            Side::Client => format!("client {}", self.client),
            Side::Server => format!("server {}", self.server),
        }
    }

    pub fn title(&self) -> String {
        format!("Connection {}: {} → {}", self.id, self.client, self.server)
    }

    pub fn arrows(&self) -> impl Iterator<Item = &Arrow> {
        self.rows.iter().filter_map(|r| match &r.kind {
            RowKind::Arrow(a) => Some(a),
            _ => None,
        })
    }
}

/// Why the ladder cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LadderError {
    #[error("connection {0} has no segment records (analyze with RecordSegments for this id)")]
    NoRecords(u64),
    #[error("connection {0} has no segments")]
    Empty(u64),
}

/// An item on the time axis before rows are placed.
enum Item {
    Seg(usize),
    Fold(std::ops::Range<usize>),
    Timer(Side, TcpState, f64),
    End(f64),
}

/// Builds the ladder of one connection.
pub fn build(report: &ConnectionReport, opts: &LadderOptions) -> Result<Ladder, LadderError> {
    let segs = report
        .segments
        .as_deref()
        .ok_or(LadderError::NoRecords(report.id))?;
    let first = segs.first().ok_or(LadderError::Empty(report.id))?;
    let t0 = first.ts;
    let last_ts = segs.last().map(|s| s.ts).unwrap_or(t0);

    let initial = (first.from == Side::Client && first.flags == "SYN").then_some(PerSide {
        client: TcpState::Closed,
        server: TcpState::Closed,
    });

    // Timer-driven changes (no frame): TIME_WAIT expiry.
    let mut timers: Vec<(Side, TcpState, f64)> = Vec::new();
    for side in [Side::Client, Side::Server] {
        for c in report.timeline.get(side) {
            if c.frame.is_none() {
                timers.push((side, c.state, c.at));
            }
        }
    }
    timers.sort_by(|a, b| a.2.total_cmp(&b.2));

    // Without the capture's end, a side left waiting still tells how long it waited.
    let waited_until = match (report.close.waiting_since, report.close.waiting_for) {
        (Some(since), Some(secs)) => since + secs,
        _ => report.end,
    };
    let end_at = opts
        .capture_end
        .unwrap_or(waited_until.max(report.end))
        .max(last_ts);
    let items = items(segs, &timers, end_at, opts);
    let http_labels = http_labels(report);

    // Place rows.
    let scale = match opts.time {
        TimeAxis::Proportional => PROPORTIONAL_UNITS / opts.fold_after,
        TimeAxis::Linear => {
            let span = end_at - t0;
            if span > 0.0 {
                (PROPORTIONAL_UNITS / opts.fold_after).min(LINEAR_MAX_UNITS / span)
            } else {
                0.0
            }
        }
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut y = if initial.is_some() { 1.0 } else { 0.0 };
    let mut prev_t: Option<f64> = None;
    let mut prev_states: Option<PerSide<TcpState>> = initial.clone();
    for item in items {
        let (t_start, t_end) = match &item {
            Item::Seg(i) => (segs[*i].ts, segs[*i].ts),
            Item::Fold(r) => (segs[r.start].ts, segs[r.end - 1].ts),
            Item::Timer(_, _, at) => (*at, *at),
            Item::End(at) => (*at, *at),
        };
        if let Some(p) = prev_t {
            let dt = (t_start - p).max(0.0);
            if opts.time == TimeAxis::Proportional && dt >= opts.fold_after {
                y += 1.0;
                rows.push(Row {
                    y,
                    t: p - t0,
                    kind: RowKind::Idle { secs: dt },
                });
                y += 1.0;
            } else {
                y += 1.0 + dt * scale;
            }
        }
        let kind = match item {
            Item::Seg(i) => {
                let mut arrow = arrow(&segs[i], prev_states.as_ref());
                arrow.http = http_labels.get(&segs[i].frame).map(|(_, l)| l.clone());
                prev_states = Some(arrow.states.clone());
                RowKind::Arrow(arrow)
            }
            Item::Fold(r) => {
                let mut bytes = PerSide::<u64>::default();
                let mut data_segments = PerSide::<usize>::default();
                let mut http_heads = PerSide::<usize>::default();
                for s in &segs[r.clone()] {
                    if let Some((sender, label)) = http_labels.get(&s.frame) {
                        *http_heads.get_mut(*sender) += label.split("; ").count();
                    }
                    *bytes.get_mut(s.from) += u64::from(s.len);
                    if s.len > 0 {
                        *data_segments.get_mut(s.from) += 1;
                    }
                }
                RowKind::Folded(Folded {
                    segments: r.len(),
                    data_segments,
                    bytes,
                    first_frame: segs[r.start].frame,
                    last_frame: segs[r.end - 1].frame,
                    secs: t_end - t_start,
                    http_heads,
                })
            }
            Item::Timer(side, state, _) => {
                if let Some(p) = prev_states.as_mut() {
                    *p.get_mut(side) = state;
                }
                RowKind::Timer { side, state }
            }
            Item::End(_) => RowKind::End {
                states: PerSide {
                    client: report.client_state,
                    server: report.server_state,
                },
                note: waiting_note(report),
            },
        };
        rows.push(Row {
            y,
            t: t_start - t0,
            kind,
        });
        // A folded stretch still takes the room its duration would.
        y += (t_end - t_start) * scale;
        prev_t = Some(t_end);
    }
    let height = y;
    let bands = bands(&rows, initial.as_ref(), height);
    Ok(Ladder {
        id: report.id,
        client: report.client.to_string(),
        server: report.server.to_string(),
        kind: report.close.kind,
        headline: headline(report),
        explanation: report.close.explained().to_string(),
        initial,
        rows,
        bands,
        height,
        absolute: opts.absolute,
        time: opts.time,
    })
    .map(|mut l| {
        if opts.absolute {
            absolute_numbers(&mut l, segs);
        }
        l
    })
}

/// Segments, folds, timers and the end, in time order.
fn items(
    segs: &[SegmentRecord],
    timers: &[(Side, TcpState, f64)],
    end_at: f64,
    opts: &LadderOptions,
) -> Vec<Item> {
    // A segment is remarkable when it carries SYN/FIN/RST, changes a state, has a note,
    // or is the first or last one; the others may be folded in long stretches.
    let remarkable: Vec<bool> = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let changed = i == 0
                || segs[i - 1].client_state != s.client_state
                || segs[i - 1].server_state != s.server_state;
            changed
                || i + 1 == segs.len()
                || !s.notes.is_empty()
                || s.flags.contains("SYN")
                || s.flags.contains("FIN")
                || s.flags.contains("RST")
        })
        .collect();
    let mut seg_items: Vec<Item> = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        if remarkable[i] || opts.all {
            seg_items.push(Item::Seg(i));
            i += 1;
            continue;
        }
        // A run of unremarkable segments, cut at long idle gaps (those stay visible).
        let mut j = i + 1;
        while j < segs.len() && !remarkable[j] && segs[j].ts - segs[j - 1].ts < opts.fold_after {
            j += 1;
        }
        if j - i >= FOLD_RUN {
            for k in i..i + FOLD_KEEP {
                seg_items.push(Item::Seg(k));
            }
            seg_items.push(Item::Fold(i + FOLD_KEEP..j - FOLD_KEEP));
            for k in j - FOLD_KEEP..j {
                seg_items.push(Item::Seg(k));
            }
        } else {
            for k in i..j {
                seg_items.push(Item::Seg(k));
            }
        }
        i = j;
    }
    // Merge timers in by time (a timer at the same instant as a segment comes after it).
    let mut out = Vec::with_capacity(seg_items.len() + timers.len() + 1);
    let mut timers = timers.iter().peekable();
    for item in seg_items {
        let t = match &item {
            Item::Seg(i) => segs[*i].ts,
            Item::Fold(r) => segs[r.start].ts,
            _ => f64::MAX,
        };
        while let Some(&&(side, state, at)) = timers.peek() {
            if at < t {
                out.push(Item::Timer(side, state, at));
                timers.next();
            } else {
                break;
            }
        }
        out.push(item);
    }
    for &(side, state, at) in timers {
        out.push(Item::Timer(side, state, at));
    }
    out.push(Item::End(end_at));
    out
}

fn arrow(s: &SegmentRecord, prev: Option<&PerSide<TcpState>>) -> Arrow {
    let states = PerSide {
        client: s.client_state,
        server: s.server_state,
    };
    let changed = PerSide {
        client: prev.is_none_or(|p| p.client != s.client_state),
        server: prev.is_none_or(|p| p.server != s.server_state),
    };
    Arrow {
        frame: s.frame,
        from: s.from,
        flags: s.flags.clone(),
        len: s.len,
        seq: s.seq,
        ack: s.ack,
        notes: s.notes.clone(),
        states,
        changed,
        http: None,
    }
}

/// The ladder shows at most this much of an HTTP head's line (a request target can be
/// 200 bytes long).
const HTTP_LABEL_CHARS: usize = 60;

/// Each frame that began HTTP heads, with their lines (`; `-joined when one segment began
/// several, as pipelined requests do), cut to [`HTTP_LABEL_CHARS`].
fn http_labels(report: &ConnectionReport) -> BTreeMap<u64, (Side, String)> {
    let mut labels: BTreeMap<u64, (Side, String)> = BTreeMap::new();
    let marks = report.http.as_deref().map(|h| h.marks.as_slice());
    for mark in marks.unwrap_or_default() {
        let line: String = if mark.label.chars().count() > HTTP_LABEL_CHARS {
            let mut cut: String = mark.label.chars().take(HTTP_LABEL_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            mark.label.to_string()
        };
        labels
            .entry(mark.frame)
            .and_modify(|(_, l)| {
                l.push_str("; ");
                l.push_str(&line);
            })
            .or_insert((mark.sender, line));
    }
    labels
}

/// `1 request`, `3 responses`.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn absolute_numbers(l: &mut Ladder, segs: &[SegmentRecord]) {
    for row in &mut l.rows {
        if let RowKind::Arrow(a) = &mut row.kind {
            if let Some(s) = segs.iter().find(|s| s.frame == a.frame) {
                a.seq = s.abs_seq;
                a.ack = a.ack.map(|_| s.abs_ack);
            }
        }
    }
}

/// Each lifeline's stretches of one state, from the rows.
fn bands(rows: &[Row], initial: Option<&PerSide<TcpState>>, height: f64) -> Vec<Band> {
    let mut out = Vec::new();
    for side in [Side::Client, Side::Server] {
        let mut cur: Option<(TcpState, f64, f64)> = initial.map(|i| (*i.get(side), 0.0, 0.0));
        let mut close = |cur: &mut Option<(TcpState, f64, f64)>, y: f64, t: f64| {
            if let Some((state, y0, t0)) = cur.take() {
                if y > y0 {
                    out.push(Band {
                        side,
                        state,
                        y0,
                        y1: y,
                        secs: (t - t0).max(0.0),
                    });
                }
            }
        };
        for row in rows {
            let next = match &row.kind {
                RowKind::Arrow(a) => Some(*a.states.get(side)),
                RowKind::Timer { side: s, state } if *s == side => Some(*state),
                RowKind::End { states, .. } => Some(*states.get(side)),
                _ => None,
            };
            if let Some(state) = next {
                if cur.as_ref().is_none_or(|c| c.0 != state) {
                    close(&mut cur, row.y, row.t);
                    cur = Some((state, row.y, row.t));
                }
            }
            if let RowKind::End { .. } = row.kind {
                close(&mut cur, height, row.t);
            }
        }
    }
    out
}

/// One line: what kind of close, who went first, where each side was left.
pub fn headline(r: &ConnectionReport) -> String {
    let c = &r.close;
    let first = match (c.first, c.first_by) {
        (Some(sig), Some(by)) => format!("; first {} by the {}", sig.as_str(), by),
        _ => String::new(),
    };
    format!(
        "{}{}; at the end: client {}, server {}",
        c.kind, first, r.client_state, r.server_state
    )
}

/// Said of a side left waiting: the CLOSE_WAIT leak, an unanswered SYN or SYN-ACK, or a
/// FIN never answered before the RST.
fn waiting_note(r: &ConnectionReport) -> Option<String> {
    let c = &r.close;
    let side = c.who_failed_to_respond?;
    let secs = c.waiting_for?;
    if r.state(side) == TcpState::CloseWait {
        return Some(if secs < 0.001 {
            format!("{side} had not sent its FIN when the capture ended: CLOSE_WAIT")
        } else {
            format!(
                "{side} never sent its FIN: CLOSE_WAIT for {} until capture end",
                human_secs(secs)
            )
        });
    }
    match c.kind {
        CloseKind::SynTimeout => Some(format!(
            "{side} never answered the SYN ({} until capture end)",
            human_secs(secs)
        )),
        CloseKind::HandshakeIncomplete => Some(format!(
            "{side} never completed the handshake ({} until capture end)",
            human_secs(secs)
        )),
        CloseKind::FinThenRst => Some(format!(
            "{side} never sent its FIN: {} from the peer's FIN to the RST",
            human_secs(secs)
        )),
        _ => None,
    }
}

/// Seconds for people: `850 µs`, `12.4 ms`, `1.002 s` ([`closewait_core::seconds::human`]).
pub use closewait_core::seconds::human as human_secs;

/// Bytes for people, decimal units: `36 B`, `12.3 kB`, `1.2 MB`.
pub fn human_bytes(b: u64) -> String {
    let f = b as f64;
    if b < 1000 {
        format!("{b} B")
    } else if f < 1e6 {
        format!("{:.1} kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.1} MB", f / 1e6)
    } else {
        format!("{:.1} GB", f / 1e9)
    }
}

/// Seconds from the first segment, as every format prints them.
pub fn rel_time(t: f64) -> String {
    format!("{t:.6}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use closewait_core::testkit::*;

    /// Scenario 2 of the seed: the server closes an idle keep-alive connection, the client
    /// ACKs the FIN and never closes.
    fn server_idle_close_client_leak() -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        let mut all = w.analyze_with_tail(105.0);
        all.remove(0)
    }

    #[test]
    fn idle_gap_is_folded_and_end_row_names_close_wait() {
        let r = server_idle_close_client_leak();
        let l = build(&r, &LadderOptions::default()).unwrap();
        let idles: Vec<f64> = l
            .rows
            .iter()
            .filter_map(|r| match r.kind {
                RowKind::Idle { secs } => Some(secs),
                _ => None,
            })
            .collect();
        assert_eq!(idles.len(), 2, "{:#?}", l.rows);
        assert!((idles[0] - 15.001).abs() < 0.01);
        assert!((idles[1] - 105.0).abs() < 0.01);
        match &l.rows.last().unwrap().kind {
            RowKind::End { states, note } => {
                assert_eq!(states.client, TcpState::CloseWait);
                assert_eq!(states.server, TcpState::FinWait2);
                assert!(note.as_deref().unwrap().contains("CLOSE_WAIT for"));
            }
            k => panic!("last row {k:?}"),
        }
        assert_eq!(l.initial.as_ref().unwrap().server, TcpState::Closed);
        let cw = l
            .bands
            .iter()
            .find(|b| b.state == TcpState::CloseWait)
            .unwrap();
        assert_eq!(cw.side, Side::Client);
        assert!((cw.secs - 105.0).abs() < 0.01, "{cw:?}");
    }

    #[test]
    fn linear_axis_folds_nothing() {
        let r = server_idle_close_client_leak();
        let opts = LadderOptions {
            time: TimeAxis::Linear,
            ..LadderOptions::default()
        };
        let l = build(&r, &opts).unwrap();
        assert!(!l
            .rows
            .iter()
            .any(|r| matches!(r.kind, RowKind::Idle { .. })));
        assert!(
            l.height <= 9.0 + 1.0 + LINEAR_MAX_UNITS + 0.01,
            "{}",
            l.height
        );
    }

    #[test]
    fn data_heavy_middle_is_folded_unless_all() {
        let mut w = Wire::new();
        w.send(C, SYN, 1000, 0, 0)
            .send(S, SYN | ACK, 5000, 1001, 0)
            .send(C, ACK, 1001, 5001, 0);
        let mut seq = 5001;
        for _ in 0..30 {
            w.send(S, ACK, seq, 1001, 1000);
            seq += 1000;
        }
        w.send(C, FIN | ACK, 1001, seq, 0)
            .send(S, FIN | ACK, seq, 1002, 0)
            .send(C, ACK, 1002, seq + 1, 0);
        let r = w.only();
        let l = build(&r, &LadderOptions::default()).unwrap();
        let folded: Vec<&Folded> = l
            .rows
            .iter()
            .filter_map(|r| match &r.kind {
                RowKind::Folded(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(folded.len(), 1);
        // The first data segment changes the client's state (handshake ACK ⇒ server
        // ESTABLISHED is on the client's ACK), so the run is segments 2..=20 of the data.
        assert_eq!(folded[0].bytes.server, folded[0].segments as u64 * 1000);
        assert!(
            folded[0].label().contains("from the server"),
            "{}",
            folded[0].label()
        );
        let all = build(
            &r,
            &LadderOptions {
                all: true,
                ..LadderOptions::default()
            },
        )
        .unwrap();
        assert_eq!(all.arrows().count(), 36);
    }

    /// The request and status lines ride on the arrows of the segments that began them;
    /// a head inside a folded run is counted in the fold's label.
    #[test]
    fn http_heads_label_their_arrows_and_folded_runs_count_them() {
        use closewait_core::http::{HttpConversation, HttpMark};
        let mut r = bulk_download(40);
        let segs = r.segments.clone().expect("recorded");
        let data = |from: Side| segs.iter().filter(move |s| s.from == from && s.len > 0);
        let request = data(Side::Client).next().expect("request").frame;
        let response = data(Side::Server).next().expect("response").frame;
        // A later server data segment that ends up inside the fold.
        let folded = data(Side::Server).nth(20).expect("mid-download").frame;
        let mark = |frame, sender, label: &str| HttpMark {
            frame,
            sender,
            label: label.into(),
        };
        r.http = Some(Box::new(HttpConversation {
            requests: 1,
            responses: 2,
            marks: vec![
                mark(request, Side::Client, "GET /big HTTP/1.1"),
                mark(response, Side::Server, "HTTP/1.1 200 OK"),
                mark(
                    folded,
                    Side::Server,
                    &format!("HTTP/1.1 200 {}", "x".repeat(80)),
                ),
            ],
            ..HttpConversation::default()
        }));
        let ladder = build(&r, &LadderOptions::default()).unwrap();
        let labels: Vec<String> = ladder
            .arrows()
            .filter(|a| a.http.is_some())
            .map(Arrow::label)
            .collect();
        assert_eq!(
            labels,
            [
                "PSH, ACK len=100: GET /big HTTP/1.1",
                "PSH, ACK len=200: HTTP/1.1 200 OK"
            ]
        );
        let fold = ladder
            .rows
            .iter()
            .find_map(|row| match &row.kind {
                RowKind::Folded(f) => Some(f),
                _ => None,
            })
            .expect("a folded run");
        assert_eq!(fold.http_heads.server, 1);
        assert!(fold.label().contains(", 1 response, "), "{}", fold.label());
    }

    /// A download as a real kernel sends it: MSS-sized data from the server with the
    /// client's ACK after every second segment, then the server's close.
    pub(crate) fn bulk_download(data_segments: u32) -> ConnectionReport {
        let mut w = Wire::new();
        w.exchange();
        let mut seq = 5201;
        for i in 0..data_segments {
            w.send(S, ACK, seq, 1101, 1448);
            seq += 1448;
            if i % 2 == 1 {
                w.send(C, ACK, 1101, seq, 0);
            }
        }
        w.send(S, FIN | ACK, seq, 1101, 0)
            .send(C, ACK, 1101, seq + 1, 0)
            .send(C, FIN | ACK, 1101, seq + 1, 0)
            .send(S, ACK, seq + 1, 1102, 0);
        w.only()
    }

    #[test]
    fn bulk_download_fold_counts_data_segments_apart_from_acks() {
        let l = build(&bulk_download(40), &LadderOptions::default()).unwrap();
        let folded: Vec<&Folded> = l
            .rows
            .iter()
            .filter_map(|r| match &r.kind {
                RowKind::Folded(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(folded.len(), 1);
        let f = folded[0];
        let acks = f.segments - f.data_segments.server;
        assert_eq!(f.data_segments.client, 0);
        assert!(f.data_segments.server > acks && acks > 0, "{f:?}");
        assert_eq!(f.bytes.server, f.data_segments.server as u64 * 1448);
        assert_eq!(
            f.label(),
            format!(
                "{} data segments, {} from the server, {acks} ACKs, {}",
                f.data_segments.server,
                human_bytes(f.bytes.server),
                human_secs(f.secs)
            )
        );
    }

    #[test]
    fn fold_label_names_what_was_folded() {
        let f = |data: (usize, usize), bytes: (u64, u64), segments| Folded {
            segments,
            data_segments: PerSide {
                client: data.0,
                server: data.1,
            },
            bytes: PerSide {
                client: bytes.0,
                server: bytes.1,
            },
            first_frame: 10,
            last_frame: 10 + segments as u64 - 1,
            secs: 0.0238,
            http_heads: PerSide::default(),
        };
        assert_eq!(
            f((0, 1030), (0, 1_491_440), 1430).label(),
            "1030 data segments, 1.5 MB from the server, 400 ACKs, 23.8 ms"
        );
        assert_eq!(
            f((20, 0), (20_000, 0), 20).label(),
            "20 data segments, 20.0 kB from the client, 23.8 ms"
        );
        assert_eq!(
            f((10, 10), (5_000, 7_000), 21).label(),
            "20 data segments, client 5.0 kB, server 7.0 kB, 1 ACK, 23.8 ms"
        );
        assert_eq!(f((0, 0), (0, 0), 18).label(), "no data, 18 ACKs, 23.8 ms");
    }

    #[test]
    fn no_records_is_an_error() {
        let mut r = server_idle_close_client_leak();
        r.segments = None;
        assert_eq!(
            build(&r, &LadderOptions::default()),
            Err(LadderError::NoRecords(0))
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human_secs(0.000033), "33 µs");
        assert_eq!(human_secs(0.0432), "43.2 ms");
        assert_eq!(human_secs(1.0024), "1.002 s");
        assert_eq!(human_secs(15.0), "15.0 s");
        assert_eq!(human_secs(105.2), "105 s");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_bytes(36), "36 B");
    }
}
