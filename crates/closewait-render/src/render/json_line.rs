//! A hand-written compact writer for one `--jsonl` connection line.
//!
//! Why: on big captures serde_json's generic path (a `Serializer` call per key through
//! `#[serde(flatten)]`'s map adapter, a `Formatter` call per punctuation byte) cost about a
//! quarter of the whole run, more than the analysis of the connection. This writer emits
//! the same bytes as `serde_json::to_writer` of the serde-derived `ConnectionLine`
//! (same key order, same number formats: `itoa` for integers, `zmij` shortest round-trip
//! for floats, `null` for non-finite floats, serde_json's string escapes). The tests
//! below, the shipped captures and the big benchmark capture check that byte for byte;
//! change the model and this writer together.
//!
//! How it stays cheap (several times faster than serde_json): one bound per line and plain
//! fixed-size copies into a kept buffer ([`LineWriter`], [`W`]); constant runs merged, enum
//! values precomputed with the key after them ([`Pieces`]); integers eight digits at a
//! time ([`digits8`]); floats by zmij.
//!
//! What it no longer does: a third round of optimisations (a memo of the line's
//! timestamps, of the last addresses and whole seconds; floats worked out exactly from
//! their bits instead of by zmij; the TCP counters as one template with digits patched
//! in) cut the output thread's CPU, but the analysis thread sets the pace of a
//! `--jsonl` run: removing all three changed its wall time by 0 % (each alone by under
//! 2 %, measured as docs/performance.md says), so they were removed with their ~400
//! lines. Measure wall time before adding such a mechanism back.

use closewait_core::http::{GiveUp, HttpConversation, HttpVersion, RequestLine};
use closewait_core::http_close::HttpClose;
use closewait_core::model::{
    Close, CloseKind, CloseSignal, ConnectionReport, DirectionStats, Initiator, PerSide, Side,
    StateChange,
};
use closewait_core::state::TcpState;
use std::net::SocketAddr;
use std::sync::LazyLock;

/// Writes `--jsonl` connection lines into a buffer it keeps between lines, where they
/// can be left to gather (see [`LineWriter::push_line`]).
///
/// Why a type rather than "append to a `Vec`": the writer copies pieces into an already
/// initialised slice, at least as long as the line can be, with plain indexed copies (see
/// [`W`]). Zero-filling that room for each line cost more than the line itself (a `memset`
/// of a few KB is one instruction per byte under callgrind's `rep stosb`); a buffer kept
/// at its high-water length is zero-filled only when a line may be longer than every line
/// before it.
#[derive(Default)]
pub struct LineWriter {
    /// Always initialised up to its `len()`; bytes past the lines are stale.
    buf: Vec<u8>,
    /// The length of the lines pushed since the last [`LineWriter::clear`].
    lines: usize,
    /// The line's explanation text (kept only to reuse the space).
    explanation: String,
    /// A line's `http` and `segments` members, written by serde (kept only to reuse the space).
    tail: Vec<u8>,
}

impl LineWriter {
    /// `{"type":"connection",…}` and a newline for `r`, alone.
    pub fn connection_line(&mut self, r: &ConnectionReport) -> &[u8] {
        self.clear();
        self.push_line(r);
        self.lines()
    }

    /// The lines pushed since the last [`LineWriter::clear`].
    pub fn lines(&self) -> &[u8] {
        &self.buf[..self.lines]
    }

    /// Forgets the lines (their room is kept).
    pub fn clear(&mut self) {
        self.lines = 0;
    }

    /// Appends the line of `r` ([`LineWriter::connection_line`]) to the lines. Why keep
    /// several: written out a few dozen at once, they go past the output's `BufWriter`
    /// instead of being copied into it, line by line.
    pub fn push_line(&mut self, r: &ConnectionReport) {
        self.explanation.clear();
        r.close
            .explained()
            .write_to(&mut self.explanation)
            .expect("writing to a String cannot fail");
        // Room for the line at its longest, so that no piece needs to check for room.
        let bound = HEAD_MAX
            + ENTRY_MAX * (r.timeline.client.len() + r.timeline.server.len())
            + escaped_max(&self.explanation)
            + r.close.http.as_deref().map_or(0, http_close_max)
            + b",\"http\":".len()
            + escaped_max(&r.zeek.conn_state)
            + escaped_max(&r.zeek.history)
            + r.http.as_deref().map_or(0, http_max);
        if bound > u32::MAX as usize {
            return self.serde_line(r); // a line of 4 GB: never in practice
        }
        let start = self.lines;
        if self.buf.len() < start + bound {
            self.buf.resize(start + bound + GROW_EXTRA, 0);
        }
        let mut w = W {
            b: &mut self.buf[start..start + bound],
            p: 0,
            t: &PIECES,
        };
        w.put(b"{\"type\":\"connection\",\"id\":");
        w.uint(r.id);
        w.put(b",\"client\":");
        w.addr(&r.client);
        w.put(b",\"server\":");
        w.addr(&r.server);
        if r.role_inferred {
            w.put(b",\"role_inferred\":true,\"start\":");
        } else {
            w.put(b",\"role_inferred\":false,\"start\":");
        }
        w.float(r.start);
        w.put(b",\"end\":");
        w.float(r.end);
        w.put(b",\"duration\":");
        w.float(r.duration);
        w.put(b",\"first_frame\":");
        w.uint(r.first_frame);
        w.put(b",\"last_frame\":");
        w.uint(r.last_frame);
        w.put(b",\"packets\":{\"client\":");
        w.uint(r.packets.client);
        w.put(b",\"server\":");
        w.uint(r.packets.server);
        w.put(b"},\"bytes\":{\"client\":");
        w.uint(r.bytes.client);
        w.put(b",\"server\":");
        w.uint(r.bytes.server);
        w.put(b"},\"close\":{\"kind\":");
        w.close(&r.close, &self.explanation);
        w.put(b",\"client_state\":");
        w.piece(&w.t.client_state[r.client_state as usize]);
        w.piece(&w.t.server_state[r.server_state as usize]);
        w.timeline(&r.timeline.client);
        w.put(b",\"server\":");
        w.timeline(&r.timeline.server);
        w.tcp(&r.tcp);
        w.str(&r.zeek.conn_state);
        w.put(b",\"history\":");
        w.str(&r.zeek.history);
        w.put(b"}");
        // The `http` member, written here on every connection that carried HTTP/1.x; its
        // ladder marks (kept only with recorded segments, like `segments`) go through serde.
        let http_by_serde = r.http.as_deref().filter(|http| !http.marks.is_empty());
        if let Some(http) = r.http.as_deref().filter(|http| http.marks.is_empty()) {
            w.http(http);
        }
        if http_by_serde.is_none() && r.segments.is_none() {
            w.put(b"}\n");
            self.lines = start + w.pos();
            return;
        }
        let n = w.pos();
        // The rare members (recording on: diagrams) go through serde into their own buffer
        // and are copied after the line's head: truncating `buf` here would make the next
        // line zero-fill its room again.
        self.tail.clear();
        if let Some(http) = http_by_serde {
            self.tail.extend_from_slice(b",\"http\":");
            serde_json::to_writer(&mut self.tail, http).expect("writing to memory cannot fail");
        }
        if let Some(segments) = &r.segments {
            self.tail.extend_from_slice(b",\"segments\":");
            serde_json::to_writer(&mut self.tail, segments).expect("writing to memory cannot fail");
        }
        self.tail.extend_from_slice(b"}\n");
        let head_end = start + n;
        let end = head_end + self.tail.len();
        if self.buf.len() < end {
            self.buf.resize(end + GROW_EXTRA, 0);
        }
        self.buf[head_end..end].copy_from_slice(&self.tail);
        self.lines = end;
    }

    fn serde_line(&mut self, r: &ConnectionReport) {
        self.buf.truncate(self.lines);
        serde_json::to_writer(&mut self.buf, &SerdeLine::of(r))
            .expect("writing to memory cannot fail");
        self.buf.push(b'\n');
        self.lines = self.buf.len();
    }
}

/// A connection line as serde_json writes it: the reference this writer matches, and its
/// fallback.
#[derive(serde::Serialize)]
struct SerdeLine<'a> {
    #[serde(rename = "type")]
    t: &'static str,
    #[serde(flatten)]
    c: &'a ConnectionReport,
}

impl<'a> SerdeLine<'a> {
    fn of(c: &'a ConnectionReport) -> Self {
        SerdeLine { t: "connection", c }
    }
}

/// A line's longest text apart from its timelines and strings: keys, punctuation, every
/// number at its longest (integers 20 bytes, floats 24, addresses [`ADDR_MAX`]) and the
/// padding some pieces write past their end (at most 48 bytes). A test writes a line with
/// every value at its longest into a buffer of exactly this bound.
const HEAD_MAX: usize = 2048;

/// The room a string takes at most: serde_json escapes a byte to at most 6 (`\u001f`).
fn escaped_max(s: &str) -> usize {
    6 * s.len() + 2
}

/// The room `,"http":{…}` takes at most (its marks aside, which serde writes): the
/// constant part with every number at its longest, each request line's strings escaped,
/// and each status-code entry (`"65535":` and a count).
fn http_max(http: &HttpConversation) -> usize {
    let request_max = |request: &RequestLine| {
        HTTP_REQUEST_MAX + escaped_max(&request.method) + escaped_max(&request.target)
    };
    let lines = [
        http.first_request.as_ref(),
        http.last_request.as_ref(),
        http.last_unanswered_request.as_ref().map(|u| &u.request),
    ];
    HTTP_MAX
        + lines.into_iter().flatten().map(request_max).sum::<usize>()
        + HTTP_STATUS_MAX * http.status_codes.len()
}

/// The room `close`'s `,"http":{…}` takes at most: the constant part with every name and
/// number at its longest, and the request line's strings escaped.
fn http_close_max(http: &HttpClose) -> usize {
    HTTP_CLOSE_MAX
        + http.request.as_ref().map_or(0, |request| {
            HTTP_REQUEST_MAX
                + escaped_max(&request.request.method)
                + escaped_max(&request.request.target)
        })
}

/// The constant part of `close`'s `,"http":{…}` (about 400 bytes at its longest).
const HTTP_CLOSE_MAX: usize = 512;

/// The constant part of `,"http":{…}` (about 520 bytes at its longest, with padding).
const HTTP_MAX: usize = 1024;
/// A request line's keys and version.
const HTTP_REQUEST_MAX: usize = 64;
/// One `"code":count,` entry, with padding.
const HTTP_STATUS_MAX: usize = 64;

/// How much more than needed the buffer grows, so that it grows a few times per run
/// rather than every few lines. Tests grow by exactly the bound, so that a line writing
/// past its bound panics there (an index out of bounds, never memory unsafety).
const GROW_EXTRA: usize = if cfg!(test) { 0 } else { 4096 };

/// The writer: `b[..p]` is the line so far; `b[p..]` is initialised room (zeros or stale
/// bytes of an earlier line) that pieces overwrite with plain indexed copies. Why:
/// `Vec::extend_from_slice` checks capacity and calls `memcpy` for each of the ~150 pieces
/// of a line; a copy of a constant-length piece into a slice compiles to a few moves and
/// one bounds check. A slice (rather than the `Vec`) also lets the compiler keep its
/// pointer and length in registers across the byte stores.
///
/// No function that is not inlined is passed the writer (or a pointer into it): once it
/// escapes so, the compiler keeps the cursor in memory, reloaded and stored around every
/// piece. So the writer's methods are inlined into `connection_line`, and the out-of-line
/// helpers (integers from 10^8, zmij) are free functions writing into a fixed-size window
/// at the cursor and returning their length.
struct W<'a> {
    b: &'a mut [u8],
    p: u32,
    t: &'static Pieces,
}

impl W<'_> {
    /// The cursor: where the next piece goes.
    #[inline(always)]
    fn pos(&self) -> usize {
        self.p as usize
    }

    /// The `N` bytes at the cursor. The cursor is a u32 (lines are under 4 GB; see
    /// `connection_line`), so `p + N` cannot overflow and the bounds check is a single
    /// comparison, where a usize cursor costs an overflow check too on every piece.
    #[inline(always)]
    fn at<const N: usize>(&mut self) -> &mut [u8; N] {
        let p = self.pos();
        (&mut self.b[p..p + N]).try_into().expect("N bytes")
    }

    /// Moves the cursor past `n` bytes just written (never past the end of `b`, which is
    /// at most `u32::MAX` long: every write is bounds-checked).
    #[inline(always)]
    fn skip(&mut self, n: usize) {
        self.p += n as u32;
    }

    /// A constant piece: its length is known at compile time, so the copy is inline.
    #[inline(always)]
    fn put<const N: usize>(&mut self, b: &[u8; N]) {
        *self.at::<N>() = *b;
        self.skip(N);
    }

    /// A [`Piece`]: all `N` bytes (a fixed-size copy), then the cursor past its text.
    #[inline(always)]
    fn piece<const N: usize>(&mut self, piece: &Piece<N>) {
        *self.at::<N>() = piece.bytes;
        self.skip(piece.len.into());
    }

    /// A piece of run-time length.
    #[inline(always)]
    fn put_var(&mut self, b: &[u8]) {
        let p = self.pos();
        self.b[p..p + b.len()].copy_from_slice(b);
        self.skip(b.len());
    }

    /// Decimal digits, as itoa writes them (at most 20 bytes, 8-byte stores). Most numbers
    /// in a line are counters that are 0 or 1 (one byte) or frame numbers, ports and
    /// byte counts below 10^8 (eight digits at once), both inline; longer numbers go out
    /// of line. Written straight into the room rather than into itoa's buffer and copied.
    #[inline(always)]
    fn uint(&mut self, v: u64) {
        if v < 10 {
            self.at::<1>()[0] = b'0' + v as u8;
            self.skip(1);
        } else if v < 100_000_000 {
            self.digits8_significant(v as u32);
        } else {
            let n = long_digits(self.at::<24>(), v);
            self.skip(n);
        }
    }

    /// `1 <= v < 10^8` without leading zeros: all eight digits at once (see [`digits8`]),
    /// one unaligned 8-byte store, then the cursor moves past the significant ones.
    #[inline(always)]
    fn digits8_significant(&mut self, v: u32) {
        let d = digits8(v);
        let leading_zeros = (d.trailing_zeros() / 8) as usize; // d != 0 as v >= 1
        let ascii = (d + 0x3030_3030_3030_3030) >> (8 * leading_zeros);
        *self.at::<8>() = ascii.to_le_bytes();
        self.skip(8 - leading_zeros);
    }

    /// A float (a timestamp or a duration). serde_json: non-finite floats are `null`,
    /// finite ones zmij's shortest form (at most 24 bytes).
    #[inline(always)]
    fn float(&mut self, v: f64) {
        if v.is_finite() {
            let n = zmij_text(self.at::<24>(), v);
            self.skip(n);
        } else {
            self.put(b"null");
        }
    }

    #[inline(always)]
    fn opt_float(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.float(v),
            None => self.put(b"null"),
        }
    }

    #[inline(always)]
    fn opt_uint(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.uint(v),
            None => self.put(b"null"),
        }
    }

    /// Any string, escaped as serde_json does (at most [`escaped_max`] bytes).
    #[inline(always)]
    fn str(&mut self, s: &str) {
        let b = s.as_bytes();
        if needs_escaping(b) {
            let escaped = serde_json::to_vec(s).expect("writing to memory cannot fail");
            self.put_var(&escaped);
        } else {
            self.put(b"\"");
            self.put_var(b);
            self.put(b"\"");
        }
    }

    /// `,"http":{…}` without marks, as serde writes [`HttpConversation`] (at most
    /// [`http_max`] bytes).
    #[inline(always)]
    fn http(&mut self, h: &HttpConversation) {
        self.put(b",\"http\":{\"requests\":");
        self.uint(h.requests);
        self.put(b",\"responses\":");
        self.uint(h.responses);
        self.put(b",\"version\":");
        self.http_version(h.version);
        self.put(b",\"first_request\":");
        self.request_line(h.first_request.as_ref());
        self.put(b",\"last_request\":");
        self.request_line(h.last_request.as_ref());
        self.put(b",\"status_codes\":{");
        for (i, (&code, &count)) in h.status_codes.iter().enumerate() {
            if i > 0 {
                self.put(b",");
            }
            self.put(b"\"");
            self.uint(code.into());
            self.put(b"\":");
            self.uint(count);
        }
        self.put(b"},\"last_request_says_close\":");
        self.bool(h.last_request_says_close);
        self.put(b",\"last_response_says_close\":");
        self.bool(h.last_response_says_close);
        self.put(b",\"last_response_persistent\":");
        match h.last_response_persistent {
            Some(persistent) => self.bool(persistent),
            None => self.put(b"null"),
        }
        self.put(b",\"keep_alive\":");
        match &h.keep_alive {
            Some(keep_alive) => {
                self.put(b"{\"timeout_s\":");
                self.opt_uint(keep_alive.timeout_s);
                self.put(b",\"max\":");
                self.opt_uint(keep_alive.max);
                self.put(b"}");
            }
            None => self.put(b"null"),
        }
        self.put(b",\"unanswered_requests\":");
        self.opt_uint(h.unanswered_requests);
        self.put(b",\"last_unanswered_request\":");
        match &h.last_unanswered_request {
            Some(unanswered) => {
                self.put(b"{\"request\":");
                self.request_line(Some(&unanswered.request));
                self.put(b",\"idempotent\":");
                self.bool(unanswered.idempotent);
                self.put(b"}");
            }
            None => self.put(b"null"),
        }
        self.put(b",\"switched_protocols\":");
        self.bool(h.switched_protocols);
        let gave_up = h.gave_up;
        self.put(b",\"gave_up\":{\"gap\":");
        self.uint(gave_up.count(GiveUp::Gap).into());
        self.put(b",\"oversized_head\":");
        self.uint(gave_up.count(GiveUp::OversizedHead).into());
        self.put(b",\"parse_error\":");
        self.uint(gave_up.count(GiveUp::ParseError).into());
        self.put(b",\"pipeline_overflow\":");
        self.uint(gave_up.count(GiveUp::PipelineOverflow).into());
        self.put(b"},\"first_request_at\":");
        self.opt_float(h.first_request_at);
        self.put(b",\"last_request_at\":");
        self.opt_float(h.last_request_at);
        self.put(b",\"last_response_at\":");
        self.opt_float(h.last_response_at);
        self.put(b",\"last_status\":");
        self.opt_uint(h.last_status.map(u64::from));
        self.put(b"}");
    }

    #[inline(always)]
    fn http_version(&mut self, version: Option<HttpVersion>) {
        match version {
            Some(HttpVersion::Http10) => self.put(b"\"HTTP/1.0\""),
            Some(HttpVersion::Http11) => self.put(b"\"HTTP/1.1\""),
            None => self.put(b"null"),
        }
    }

    #[inline(always)]
    fn request_line(&mut self, request: Option<&RequestLine>) {
        let Some(request) = request else {
            return self.put(b"null");
        };
        self.put(b"{\"method\":");
        self.str(&request.method);
        self.put(b",\"target\":");
        self.str(&request.target);
        self.put(b",\"version\":");
        self.http_version(Some(request.version));
        self.put(b"}");
    }

    #[inline(always)]
    fn bool(&mut self, v: bool) {
        if v {
            self.put(b"true");
        } else {
            self.put(b"false");
        }
    }

    /// `"ip:port"`, at most [`ADDR_MAX`] bytes.
    #[inline(always)]
    fn addr(&mut self, a: &SocketAddr) {
        match a {
            SocketAddr::V4(v4) => {
                let [a, b, c, d] = v4.ip().octets();
                self.put(b"\"");
                self.uint(a.into());
                self.put(b".");
                self.uint(b.into());
                self.put(b".");
                self.uint(c.into());
                self.put(b".");
                self.uint(d.into());
                self.put(b":");
                self.uint(v4.port().into());
                self.put(b"\"");
            }
            SocketAddr::V6(_) => {
                // std's Display (what serde's `collect_str` writes), into the room.
                use std::fmt::Write;
                self.put(b"\"");
                let mut f = SliceFmt {
                    buf: self.at::<{ ADDR_MAX - 2 }>(),
                    n: 0,
                };
                write!(f, "{a}").expect("an IPv6 socket address fits ADDR_MAX");
                let n = f.n;
                self.skip(n);
                self.put(b"\"");
            }
        }
    }

    /// From just after `"close":{"kind":`; each enum value comes with the key after it.
    #[inline(always)]
    fn close(&mut self, c: &Close, explanation: &str) {
        let t = self.t;
        self.piece(&t.kind[c.kind as usize]);
        self.piece(&t.initiator[c.initiator as usize]);
        self.piece(&t.first[signal_index(c.first)]);
        self.piece(&t.first_by[side_index(c.first_by)]);
        self.opt_float(c.first_at);
        self.put(b",\"first_frame\":");
        self.opt_uint(c.first_frame);
        self.put(b",\"idle_before_close\":");
        self.opt_float(c.idle_before_close);
        if c.rst_by.is_none()
            && c.who_failed_to_respond.is_none()
            && c.waiting_since.is_none()
            && c.waiting_for.is_none()
        {
            // The usual case (no RST, nobody left waiting): one constant run.
            self.put(
                b",\"rst_by\":null,\"who_failed_to_respond\":null,\"waiting_since\":null,\
                  \"waiting_for\":null,\"explanation\":",
            );
        } else {
            self.put(b",\"rst_by\":");
            self.piece(&t.rst_by[side_index(c.rst_by)]);
            self.piece(&t.who_failed_to_respond[side_index(c.who_failed_to_respond)]);
            self.opt_float(c.waiting_since);
            self.put(b",\"waiting_for\":");
            self.opt_float(c.waiting_for);
            self.put(b",\"explanation\":");
        }
        self.str(explanation);
        if let Some(http) = c.http.as_deref() {
            self.http_close(http);
        }
        self.put(b"}");
    }

    /// `,"http":{…}` of `close`, as serde writes [`HttpClose`] (at most [`http_close_max`]
    /// bytes).
    #[inline(always)]
    fn http_close(&mut self, h: &HttpClose) {
        self.put(b",\"http\":{\"reason\":\"");
        self.put_var(h.reason.as_str().as_bytes());
        self.put(b"\",\"closed_by\":");
        self.side(h.closed_by);
        if let Some(announcement) = h.announcement {
            self.put(b",\"announcement\":\"");
            self.put_var(announcement.as_str().as_bytes());
            self.put(b"\"");
        }
        self.put(b",\"idle_after_response\":");
        self.opt_float(h.idle_after_response);
        self.put(b",\"advertised_timeout\":");
        self.opt_uint(h.advertised_timeout);
        if let Some(versus) = h.versus_advertised {
            self.put(b",\"versus_advertised\":\"");
            self.put_var(versus.as_str().as_bytes());
            self.put(b"\"");
        }
        if let Some(request) = &h.request {
            self.put(b",\"request\":{\"request\":");
            self.request_line(Some(&request.request));
            self.put(b",\"idempotent\":");
            self.bool(request.idempotent);
            self.put(b"}");
        }
        if let Some(after) = h.written_after_close {
            self.put(b",\"written_after_close\":");
            self.float(after);
        }
        if let Some(unread) = &h.unread {
            self.put(b",\"unread\":{\"client\":");
            self.give_up(unread.client);
            self.put(b",\"server\":");
            self.give_up(unread.server);
            self.put(b"}");
        }
        self.put(b"}");
    }

    /// Why a direction stopped being read, or `null`.
    fn give_up(&mut self, why: Option<GiveUp>) {
        match why {
            Some(why) => {
                self.put(b"\"");
                self.put_var(why.as_str().as_bytes());
                self.put(b"\"");
            }
            None => self.put(b"null"),
        }
    }

    #[inline(always)]
    fn side(&mut self, side: Side) {
        match side {
            Side::Client => self.put(b"\"client\""),
            Side::Server => self.put(b"\"server\""),
        }
    }

    /// Each entry is written with a comma after it, the last one then replaced by `]`.
    #[inline(always)]
    fn timeline(&mut self, changes: &[StateChange]) {
        self.put(b"[");
        for c in changes {
            self.piece(&self.t.entry[c.state as usize]);
            self.float(c.at);
            match c.frame {
                Some(frame) => {
                    self.put(b",\"frame\":");
                    self.uint(frame);
                    self.put(b"},");
                }
                None => self.put(b",\"frame\":null},"),
            }
        }
        if !changes.is_empty() {
            self.p -= 1; // the last entry's comma
        }
        self.put(b"]");
    }

    /// From the `}` closing the timelines to `"conn_state":`.
    #[inline(always)]
    fn tcp(&mut self, tcp: &PerSide<DirectionStats>) {
        let (c, s) = (&tcp.client, &tcp.server);
        self.put(b"},\"tcp\":{\"client\":");
        self.stats(c);
        self.put(b",\"server\":");
        self.stats(s);
        self.put(b"},\"zeek\":{\"conn_state\":");
    }

    /// A side's counters.
    #[inline(always)]
    fn stats(&mut self, s: &DirectionStats) {
        self.put(b"{\"retransmissions\":");
        self.uint(s.retransmissions);
        self.put(b",\"out_of_order\":");
        self.uint(s.out_of_order);
        self.put(b",\"keepalives\":");
        self.uint(s.keepalives);
        self.put(b",\"keepalive_acks\":");
        self.uint(s.keepalive_acks);
        self.put(b",\"zero_windows\":");
        self.uint(s.zero_windows);
        self.put(b",\"missing_bytes\":");
        self.uint(s.missing_bytes);
        self.put(b",\"ignored_rsts\":");
        self.uint(s.ignored_rsts);
        self.put(b",\"fins\":");
        self.uint(s.fins);
        self.put(b",\"rsts\":");
        self.uint(s.rsts);
        self.put(b"}");
    }
}

/// An address's longest form with its quotes: `"[` + 8 full groups + `%` + a u32 scope
/// id + `]:65535"` is 60 bytes.
const ADDR_MAX: usize = 64;

/// One timeline entry at its longest: `{"state":"SYN_RECEIVED","at":` (a 32-byte
/// [`Piece`]) + float (24) + `,"frame":` + integer (20) + `},`.
const ENTRY_MAX: usize = 96;

/// A constant run of text, padded to `N` bytes so that it is copied as one fixed-size
/// block (two or three vector moves) instead of a `memcpy` of its length; the cursor then
/// moves by `len` only (the padding is overwritten by what follows).
#[derive(Clone, Copy)]
struct Piece<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Piece<N> {
    const EMPTY: Self = Piece {
        bytes: [0; N],
        len: 0,
    };

    fn of(parts: &[&[u8]]) -> Self {
        let mut piece = Self::EMPTY;
        for part in parts {
            let at = piece.len as usize;
            piece.bytes[at..at + part.len()].copy_from_slice(part);
            piece.len += part.len() as u8;
        }
        piece
    }
}

/// `"name"` for a value, `null` for none (JSON's spelling of serde's `Option`).
fn json_name(name: Option<&str>) -> Vec<u8> {
    match name {
        Some(name) => format!("\"{name}\"").into_bytes(),
        None => b"null".to_vec(),
    }
}

/// Every enum value's text with the constant key that follows it in a line, so that each
/// is one [`Piece`] copy: built once, from the enums' own `as_str` names.
struct Pieces {
    /// `{"state":"SYN_SENT","at":` by [`TcpState`].
    entry: [Piece<32>; TcpState::ALL.len()],
    /// `"SYN_SENT","server_state":` by [`TcpState`].
    client_state: [Piece<32>; TcpState::ALL.len()],
    /// `"SYN_SENT","timeline":{"client":` by [`TcpState`].
    server_state: [Piece<48>; TcpState::ALL.len()],
    /// `"graceful","initiator":` by [`CloseKind`].
    kind: [Piece<48>; CloseKind::ALL.len()],
    /// `"client","first":` by [`Initiator`].
    initiator: [Piece<32>; 4],
    /// `"FIN","first_by":` by [`signal_index`].
    first: [Piece<32>; 3],
    /// `"client","first_at":` by [`side_index`].
    first_by: [Piece<32>; 3],
    /// `"client","who_failed_to_respond":` by [`side_index`].
    rst_by: [Piece<48>; 3],
    /// `"client","waiting_since":` by [`side_index`].
    who_failed_to_respond: [Piece<32>; 3],
}

static PIECES: LazyLock<Pieces> = LazyLock::new(Pieces::build);

fn side_index(side: Option<Side>) -> usize {
    match side {
        None => 0,
        Some(Side::Client) => 1,
        Some(Side::Server) => 2,
    }
}

fn signal_index(signal: Option<CloseSignal>) -> usize {
    match signal {
        None => 0,
        Some(CloseSignal::Fin) => 1,
        Some(CloseSignal::Rst) => 2,
    }
}

impl Pieces {
    fn build() -> Pieces {
        let mut t = Pieces {
            entry: [Piece::EMPTY; TcpState::ALL.len()],
            client_state: [Piece::EMPTY; TcpState::ALL.len()],
            server_state: [Piece::EMPTY; TcpState::ALL.len()],
            kind: [Piece::EMPTY; CloseKind::ALL.len()],
            initiator: [Piece::EMPTY; 4],
            first: [Piece::EMPTY; 3],
            first_by: [Piece::EMPTY; 3],
            rst_by: [Piece::EMPTY; 3],
            who_failed_to_respond: [Piece::EMPTY; 3],
        };
        for s in TcpState::ALL {
            let name = json_name(Some(s.as_str()));
            t.entry[s as usize] = Piece::of(&[b"{\"state\":", &name, b",\"at\":"]);
            t.client_state[s as usize] = Piece::of(&[&name, b",\"server_state\":"]);
            t.server_state[s as usize] = Piece::of(&[&name, b",\"timeline\":{\"client\":"]);
        }
        for k in CloseKind::ALL {
            let name = json_name(Some(k.as_str()));
            t.kind[k as usize] = Piece::of(&[&name, b",\"initiator\":"]);
        }
        for i in [
            Initiator::Client,
            Initiator::Server,
            Initiator::Both,
            Initiator::None,
        ] {
            let name = json_name(Some(i.as_str()));
            t.initiator[i as usize] = Piece::of(&[&name, b",\"first\":"]);
        }
        for f in [None, Some(CloseSignal::Fin), Some(CloseSignal::Rst)] {
            let name = json_name(f.map(CloseSignal::as_str));
            t.first[signal_index(f)] = Piece::of(&[&name, b",\"first_by\":"]);
        }
        for s in [None, Some(Side::Client), Some(Side::Server)] {
            let name = json_name(s.map(Side::as_str));
            let i = side_index(s);
            t.first_by[i] = Piece::of(&[&name, b",\"first_at\":"]);
            t.rst_by[i] = Piece::of(&[&name, b",\"who_failed_to_respond\":"]);
            t.who_failed_to_respond[i] = Piece::of(&[&name, b",\"waiting_since\":"]);
        }
        t
    }
}

/// The eight decimal digits of `v < 10^8` (leading zeros included) as digit values 0–9,
/// one per byte, the most significant digit in the lowest byte (so that `to_le_bytes`
/// gives them in writing order). Splits into lanes of a u64 with multiply-and-shift
/// divisions, exact over each lane's range (checked exhaustively in a test):
/// `a / 100 == (a * 10486) >> 20` for `a < 10^4`, `b / 10 == (b * 103) >> 10` for
/// `b < 100`; no lane's product reaches the next lane.
fn digits8(v: u32) -> u64 {
    debug_assert!(v < 100_000_000);
    // Two 32-bit lanes: the first four digits low, the last four high.
    let x = (v / 10_000) as u64 | (((v % 10_000) as u64) << 32);
    // Four 16-bit lanes of two digits each.
    let hundreds = ((x * 10486) >> 20) & 0x0000_007f_0000_007f;
    let x = hundreds | ((x - hundreds * 100) << 16);
    // Eight 8-bit lanes of one digit each.
    let tens = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    tens | ((x - tens * 10) << 8)
}

#[inline(never)]
fn long_digits(out: &mut [u8; 24], v: u64) -> usize {
    if v < 10_000_000_000_000_000 {
        let n = digits8_significant(out, (v / 100_000_000) as u32);
        let low = digits8((v % 100_000_000) as u32) + 0x3030_3030_3030_3030;
        out[n..n + 8].copy_from_slice(&low.to_le_bytes());
        n + 8
    } else {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(v).as_bytes();
        out[..text.len()].copy_from_slice(text);
        text.len()
    }
}

/// `1 <= v < 10^8` without leading zeros at the start of `out` (8 bytes written): all
/// eight digits at once (see [`digits8`]), one unaligned 8-byte store; returns how many
/// are significant.
#[inline(always)]
fn digits8_significant(out: &mut [u8; 24], v: u32) -> usize {
    let d = digits8(v);
    let leading_zeros = (d.trailing_zeros() / 8) as usize; // d != 0 as v >= 1
    let ascii = (d + 0x3030_3030_3030_3030) >> (8 * leading_zeros);
    out[..8].copy_from_slice(&ascii.to_le_bytes());
    8 - leading_zeros
}

/// zmij's text of a finite `v` at the start of `out`; returns its length (at most 24).
#[inline(never)]
fn zmij_text(out: &mut [u8; 24], v: f64) -> usize {
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(v).as_bytes();
    copy_short(out, text);
    text.len()
}

/// Copies `s` (at most 24 bytes) to the front of `dst` with two overlapping fixed-size
/// copies instead of a `memcpy` call (zmij's text is 1–24 bytes).
fn copy_short(dst: &mut [u8; 24], s: &[u8]) {
    let n = s.len();
    if n >= 16 {
        dst[..16].copy_from_slice(&s[..16]);
        dst[n - 16..n].copy_from_slice(&s[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&s[..8]);
        dst[n - 8..n].copy_from_slice(&s[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&s[..4]);
        dst[n - 4..n].copy_from_slice(&s[n - 4..]);
    } else {
        dst[..n].copy_from_slice(s);
    }
}

/// `fmt::Write` into a slice (for IPv6 addresses, the one piece formatted by std).
struct SliceFmt<'a> {
    buf: &'a mut [u8],
    n: usize,
}

impl std::fmt::Write for SliceFmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        let dst = self.buf.get_mut(self.n..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// Whether serde_json escapes any byte of `s`: `"`, `\` and control characters.
/// Written as a fold without early exit, which the compiler vectorises (16 bytes per
/// step); explanations are ~65 bytes and never need escaping.
fn needs_escaping(s: &[u8]) -> bool {
    s.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::model::{
        CloseKind, CloseSignal, Initiator, SegmentNote, SegmentRecord, Side,
    };
    use closewait_core::state::TcpState;
    use closewait_core::testutil::ReportBuilder;

    /// What serde_json writes for the same line (the reference this writer must match).
    fn serde_line(r: &ConnectionReport) -> String {
        serde_json::to_string(&SerdeLine::of(r)).expect("serialise")
    }

    /// Writes `r` with `writer` (its buffer kept from earlier lines) and checks the line
    /// against serde_json's.
    fn assert_matches_serde(writer: &mut LineWriter, r: &ConnectionReport) {
        let line = writer.connection_line(r);
        assert_eq!(
            line.strip_suffix(b"\n").expect("newline"),
            serde_line(r).as_bytes()
        );
    }

    fn fast_line(r: &ConnectionReport) -> String {
        let line = LineWriter::default().connection_line(r).to_vec();
        let line = String::from_utf8(line).expect("utf-8");
        line.strip_suffix('\n')
            .expect("newline-terminated")
            .to_string()
    }

    #[test]
    fn graceful_and_leak_reports_match_serde_json_byte_for_byte() {
        let reports = [
            ReportBuilder::new(0).build(),
            ReportBuilder::new(7)
                .server("10.77.0.2:8788")
                .unanswered_fin_by_server(42.5)
                .build(),
        ];
        for r in &reports {
            assert_eq!(fast_line(r), serde_line(r));
        }
    }

    /// A connection whose close the HTTP conversation explains: `close.http` and the
    /// explanation's HTTP sentence, as serde writes them.
    #[test]
    fn http_close_verdict_matches_serde_json_byte_for_byte() {
        use closewait_core::http::{HttpConversation, KeepAliveAdvertised};
        let base = ReportBuilder::new(4).build();
        let fin_at = base.close.first_at.expect("fixture FIN");
        let mut r = ReportBuilder::new(4)
            .first_close(CloseSignal::Fin, Side::Server, fin_at, None)
            .http(HttpConversation {
                requests: 1,
                responses: 1,
                unanswered_requests: Some(0),
                last_response_persistent: Some(true),
                keep_alive: Some(KeepAliveAdvertised {
                    timeout_s: Some(2),
                    max: Some(100),
                }),
                last_response_at: Some(fin_at - 2.25),
                ..HttpConversation::default()
            })
            .build();
        // The conversation itself is written by its own piece; here only the verdict.
        r.http = None;
        let http = r.close.http.as_ref().expect("judged");
        assert_eq!(http.idle_after_response, Some(2.25));
        let line = fast_line(&r);
        assert_eq!(line, serde_line(&r));
        assert!(line.contains(
            "its idle (keep-alive) timeout; it advertised Keep-Alive: timeout=2, which agrees.\",\
             \"http\":{\"reason\":\"idle_timeout\",\"closed_by\":\"server\""
        ));
    }

    /// Every shape `close.http` takes: each reason, announcement and comparison, the
    /// optional members present and absent, a request line that needs escaping, and
    /// negative, zero and null times.
    #[test]
    fn every_http_close_shape_matches_serde_json_byte_for_byte() {
        use closewait_core::http::UnansweredRequest;
        use closewait_core::http_close::{Announcement, HttpCloseReason, VersusAdvertised};
        let request = |method: &str, target: &str| UnansweredRequest {
            request: RequestLine {
                method: method.into(),
                target: target.into(),
                version: HttpVersion::Http10,
            },
            idempotent: method == "GET",
        };
        let verdicts = [
            HttpClose {
                reason: HttpCloseReason::Announced,
                closed_by: Side::Server,
                announcement: Some(Announcement::ResponseHttp10),
                idle_after_response: Some(0.0),
                advertised_timeout: None,
                versus_advertised: None,
                request: None,
                written_after_close: None,
                unread: None,
            },
            HttpClose {
                reason: HttpCloseReason::Announced,
                closed_by: Side::Client,
                announcement: Some(Announcement::RequestConnectionClose),
                idle_after_response: None,
                advertised_timeout: Some(u64::MAX),
                versus_advertised: Some(VersusAdvertised::Later),
                request: None,
                written_after_close: None,
                unread: None,
            },
            HttpClose {
                reason: HttpCloseReason::IdleTimeout,
                closed_by: Side::Server,
                announcement: Some(Announcement::ResponseConnectionClose),
                idle_after_response: Some(14.999_999),
                advertised_timeout: Some(15),
                versus_advertised: Some(VersusAdvertised::Earlier),
                request: None,
                written_after_close: None,
                unread: None,
            },
            HttpClose {
                reason: HttpCloseReason::RequestHitClosedConnection,
                closed_by: Side::Server,
                announcement: None,
                idle_after_response: Some(2.000_001),
                advertised_timeout: Some(2),
                versus_advertised: Some(VersusAdvertised::Agrees),
                request: Some(request("POST", "/orders?q=\"a\\b\"\u{1}é…")),
                written_after_close: Some(-0.000_042),
                unread: None,
            },
            HttpClose {
                reason: HttpCloseReason::Neither,
                closed_by: Side::Client,
                announcement: None,
                idle_after_response: Some(f64::NAN),
                advertised_timeout: None,
                versus_advertised: None,
                request: Some(request("GET", "")),
                written_after_close: Some(1e-7),
                unread: Some(PerSide {
                    client: Some(GiveUp::PipelineOverflow),
                    server: Some(GiveUp::OversizedHead),
                }),
            },
            HttpClose {
                reason: HttpCloseReason::Unknown,
                closed_by: Side::Server,
                announcement: None,
                idle_after_response: None,
                advertised_timeout: None,
                versus_advertised: None,
                request: None,
                written_after_close: None,
                unread: Some(PerSide {
                    client: None,
                    server: Some(GiveUp::Gap),
                }),
            },
        ];
        for verdict in verdicts {
            let mut r = ReportBuilder::new(4).build();
            r.close.http = Some(Box::new(verdict.clone()));
            assert_eq!(fast_line(&r), serde_line(&r), "{verdict:?}");
        }
    }

    #[test]
    fn odd_values_match_serde_json_byte_for_byte() {
        let mut r = ReportBuilder::new(3).build();
        r.id = u64::MAX;
        r.client = "[2001:db8::1]:443".parse().expect("v6");
        r.server = "[::ffff:10.0.0.1]:65535".parse().expect("v6");
        r.role_inferred = true;
        r.start = 1_700_000_000.123_456_7;
        r.end = f64::NAN;
        r.duration = f64::INFINITY;
        r.close.first = Some(CloseSignal::Rst);
        r.close.first_by = Some(Side::Server);
        r.close.rst_by = Some(Side::Client);
        r.close.first_at = Some(-0.0);
        r.close.idle_before_close = Some(1e-7);
        r.close.waiting_for = Some(f64::NEG_INFINITY);
        r.close.first_frame = Some(0);
        r.close.explanation =
            "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f} é ✓".into();
        r.zeek.history = "Sh\"\u{1}".into();
        r.timeline.client.push(StateChange {
            state: TcpState::TimeWait,
            at: 1e21,
            frame: None,
        });
        r.timeline.server.clear();
        r.tcp.server.missing_bytes = u64::MAX;
        assert_eq!(fast_line(&r), serde_line(&r));

        r.segments = Some(vec![SegmentRecord {
            frame: 3,
            ts: 1.5,
            from: Side::Client,
            flags: "FIN, ACK".into(),
            seq: 1,
            ack: None,
            abs_seq: 9,
            abs_ack: 10,
            len: 0,
            window: 65535,
            notes: vec![SegmentNote::Retransmission],
            client_state: TcpState::FinWait1,
            server_state: TcpState::Established,
        }]);
        assert_eq!(fast_line(&r), serde_line(&r));
        r.segments = Some(Vec::new());
        assert_eq!(fast_line(&r), serde_line(&r));
    }

    /// Numbers worth checking: every value up to 10^5, each power of ten and its
    /// neighbours, the eight-digit fast path's edge, the extremes, and pseudo-random values
    /// of every length.
    fn interesting_u64s() -> Vec<u64> {
        let mut v: Vec<u64> = (0..=100_000).collect();
        for k in 0..=19 {
            let p = 10u64.pow(k);
            v.extend([p - 1, p, p + 1, p.saturating_mul(3)]);
        }
        v.extend([99_999_999, 100_000_000, u64::MAX - 1, u64::MAX]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.push(x >> (x % 64)); // every length, not only 20-digit values
        }
        v
    }

    #[test]
    fn integers_are_written_as_itoa_writes_them() {
        // 20 digits at most, and the 8-byte stores of 8-digit groups may go past them.
        let mut buf = vec![0; 20 + 8];
        for v in interesting_u64s() {
            let mut w = W {
                b: &mut buf,
                p: 0,
                t: &PIECES,
            };
            w.uint(v);
            let n = w.pos();
            assert_eq!(&buf[..n], itoa::Buffer::new().format(v).as_bytes(), "{v}");
        }
    }

    #[test]
    fn digits8_lane_divisions_are_exact_over_their_ranges() {
        for a in 0..10_000u64 {
            assert_eq!((a * 10486) >> 20, a / 100, "{a}");
        }
        for b in 0..100u64 {
            assert_eq!((b * 103) >> 10, b / 10, "{b}");
        }
        for v in (0..100_000_000).step_by(9_973).chain([99_999_999]) {
            let digits = format!("{v:08}")
                .bytes()
                .map(|c| c - b'0')
                .collect::<Vec<u8>>();
            assert_eq!(digits8(v).to_le_bytes().as_slice(), digits, "{v}");
        }
    }

    #[test]
    fn integers_in_every_field_match_serde_json() {
        let values = interesting_u64s();
        let mut writer = LineWriter::default();
        for (i, chunk) in values.chunks(17).step_by(97).enumerate() {
            let at = |k: usize| chunk[k % chunk.len()];
            let mut r = ReportBuilder::new(0).build();
            r.id = at(0);
            r.first_frame = at(1);
            r.last_frame = at(2);
            r.packets = PerSide {
                client: at(3),
                server: at(4),
            };
            r.bytes = PerSide {
                client: at(5),
                server: at(6),
            };
            r.close.first_frame = Some(at(7)).filter(|_| i % 3 != 0);
            r.timeline.client[0].frame = Some(at(8));
            r.tcp.client.retransmissions = at(9);
            r.tcp.client.missing_bytes = at(10);
            r.tcp.server.keepalives = at(11);
            r.tcp.server.rsts = at(12);
            r.tcp.server.fins = at(13);
            r.client = SocketAddr::new(
                std::net::Ipv4Addr::from((at(14) as u32).to_be_bytes()).into(),
                at(15) as u16,
            );
            assert_matches_serde(&mut writer, &r);
        }
    }

    #[test]
    fn a_reused_writer_leaves_nothing_of_a_longer_line_before() {
        let mut long = ReportBuilder::new(2).build();
        long.id = u64::MAX;
        long.close.explanation = "x".repeat(5000).into();
        long.timeline.client = vec![long.timeline.client[0].clone(); 100];
        let short = ReportBuilder::new(1).build();
        let mut segments = ReportBuilder::new(3).build();
        segments.segments = Some(Vec::new());
        let mut writer = LineWriter::default();
        for r in [&long, &short, &long, &segments, &short, &segments, &long] {
            let line = writer.connection_line(r).to_vec();
            assert_eq!(line, format!("{}\n", serde_line(r)).into_bytes());
        }
    }

    /// Every field at its longest, so that a line writing more than its bound panics here
    /// (tests give the writer exactly the bound).
    #[test]
    fn longest_values_everywhere_match_serde_json() {
        let longest_float = -2.225_073_858_507_201_4e-308; // 24 bytes in zmij's form
        assert_eq!(zmij::Buffer::new().format_finite(longest_float).len(), 24);
        let v6 = std::net::SocketAddrV6::new(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse()
                .expect("v6"),
            65535,
            u32::MAX,
            u32::MAX,
        );
        let mut r = ReportBuilder::new(0).build();
        r.id = u64::MAX;
        r.client = v6.into();
        r.server = v6.into();
        r.role_inferred = true;
        (r.start, r.end, r.duration) = (longest_float, longest_float, longest_float);
        (r.first_frame, r.last_frame) = (u64::MAX, u64::MAX);
        r.packets = PerSide {
            client: u64::MAX,
            server: u64::MAX,
        };
        r.bytes = r.packets.clone();
        r.close = Close {
            kind: CloseKind::HandshakeIncomplete,
            initiator: Initiator::Server,
            first: Some(CloseSignal::Fin),
            first_by: Some(Side::Server),
            first_at: Some(longest_float),
            first_frame: Some(u64::MAX),
            idle_before_close: Some(longest_float),
            rst_by: Some(Side::Server),
            who_failed_to_respond: Some(Side::Server),
            waiting_since: Some(longest_float),
            waiting_for: Some(longest_float),
            explanation: "\u{1}".repeat(300).into(),
            http: None,
            captured_one_way: None,
        };
        (r.client_state, r.server_state) = (TcpState::SynReceived, TcpState::SynReceived);
        let change = StateChange {
            state: TcpState::SynReceived,
            at: longest_float,
            frame: Some(u64::MAX),
        };
        r.timeline = PerSide {
            client: vec![change.clone(); 50],
            server: vec![change; 50],
        };
        let stats = DirectionStats {
            retransmissions: u64::MAX,
            out_of_order: u64::MAX,
            keepalives: u64::MAX,
            keepalive_acks: u64::MAX,
            zero_windows: u64::MAX,
            missing_bytes: u64::MAX,
            ignored_rsts: u64::MAX,
            fins: u64::MAX,
            rsts: u64::MAX,
        };
        r.tcp = PerSide {
            client: stats.clone(),
            server: stats,
        };
        r.zeek.conn_state = "\"".repeat(100);
        r.zeek.history = "\\".repeat(100);
        assert_eq!(fast_line(&r), serde_line(&r));
    }

    /// Timestamps: repeats, near misses (neighbouring bit patterns, `0.0` / `-0.0`), runs
    /// of distinct values and their repeats, non-finite values between them; and durations
    /// equal to timestamps.
    #[test]
    fn repeated_and_nearly_equal_floats_match_serde_json() {
        let t = closewait_core::model::secs(1_796_157_203_755_309_100);
        let next = f64::from_bits(t.to_bits() + 1);
        let mut values = vec![t, t, next, t, 0.0, -0.0, 0.0, f64::NAN, t, 0.1 + 0.2, 0.3];
        values.extend((0..20).map(|i| t + f64::from(i) * 1e-6));
        values.extend((0..20).rev().map(|i| t + f64::from(i) * 1e-6));
        values.extend([
            f64::INFINITY,
            1e21,
            1e21,
            5e-324,
            5e-324,
            f64::MAX,
            -f64::MAX,
        ]);
        let mut r = ReportBuilder::new(1).build();
        let changes: Vec<StateChange> = values
            .iter()
            .enumerate()
            .map(|(i, &at)| StateChange {
                state: TcpState::ALL[i % TcpState::ALL.len()],
                at,
                frame: Some(i as u64).filter(|i| i % 4 != 0),
            })
            .collect();
        r.timeline = PerSide {
            client: changes.clone(),
            server: changes.into_iter().rev().collect(),
        };
        let mut writer = LineWriter::default();
        for (start, end, duration, first_at) in [
            (t, t, 0.0, Some(t)),
            (t, next, t, Some(next)),
            (-0.0, 0.0, -0.0, None),
            (f64::NAN, t, f64::NEG_INFINITY, Some(f64::NAN)),
        ] {
            (r.start, r.end, r.duration) = (start, end, duration);
            r.close.first_at = first_at;
            r.close.waiting_since = first_at;
            r.close.idle_before_close = Some(duration);
            assert_matches_serde(&mut writer, &r);
        }
    }

    #[test]
    fn copy_short_copies_every_length() {
        let src: Vec<u8> = (1..=24).collect();
        for n in 0..=24 {
            let mut dst = [0u8; 24];
            copy_short(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|&b| b == 0), "{n}");
        }
    }

    /// The all-zero fast path of `DirectionStats`, and each counter non-zero on its own.
    #[test]
    fn each_counter_alone_matches_serde_json() {
        let mut writer = LineWriter::default();
        let mut r = ReportBuilder::new(1).build();
        for field in 0..10 {
            for value in [1, 9, 10, 12345, u64::MAX] {
                let mut s = DirectionStats::default();
                let slot = match field {
                    0 => &mut s.retransmissions,
                    1 => &mut s.out_of_order,
                    2 => &mut s.keepalives,
                    3 => &mut s.keepalive_acks,
                    4 => &mut s.zero_windows,
                    5 => &mut s.missing_bytes,
                    6 => &mut s.ignored_rsts,
                    7 => &mut s.fins,
                    8 => &mut s.rsts,
                    _ => &mut s.fins, // and none but fins/rsts: the fast path with 0
                };
                *slot = if field == 9 { 0 } else { value };
                r.tcp = PerSide {
                    client: s.clone(),
                    server: DirectionStats { rsts: value, ..s },
                };
                assert_matches_serde(&mut writer, &r);
            }
        }
        // Four different single digits, and each at 10 alone.
        for (i, ten) in [(0, false), (0, true), (1, true), (2, true), (3, true)] {
            let mut d = [2, 3, 4, 5];
            if ten {
                d[i] = 10;
            }
            r.tcp.client = DirectionStats {
                fins: d[0],
                rsts: d[1],
                ..Default::default()
            };
            r.tcp.server = DirectionStats {
                fins: d[2],
                rsts: d[3],
                ..Default::default()
            };
            assert_matches_serde(&mut writer, &r);
        }
    }

    /// Every byte value alone and inside text, at every position in a 16-byte block, in
    /// the explanation and Zeek's strings (the escape check is vectorised).
    #[test]
    fn every_byte_in_strings_matches_serde_json() {
        let mut writer = LineWriter::default();
        let mut r = ReportBuilder::new(1).build();
        for b in 0..=0x7fu8 {
            for at in [0, 1, 15, 16, 17, 40] {
                let mut text = "The client closed first; the server answered.".to_string();
                text.insert(at, b as char);
                r.close.explanation = text.clone().into();
                r.zeek.history = text[..at + 1].to_string();
                r.zeek.conn_state = (b as char).to_string();
                assert_matches_serde(&mut writer, &r);
            }
        }
        r.close.explanation = "é ✓ \u{80} \u{10ffff} \u{2028}".into();
        r.zeek.history = String::new();
        assert_matches_serde(&mut writer, &r);
    }

    /// The `http` member: empty, with every field at its longest, with strings to escape,
    /// and with marks (written by serde after the head).
    #[test]
    fn http_matches_serde_json() {
        use closewait_core::http::{
            GiveUps, HttpConversation, HttpMark, KeepAliveAdvertised, RequestLine,
            UnansweredRequest,
        };
        let mut writer = LineWriter::default();
        let mut r = ReportBuilder::new(1).build();
        r.http = Some(Box::default());
        assert_matches_serde(&mut writer, &r);
        let line = |method: &str, target: &str, version| RequestLine {
            method: method.into(),
            target: target.into(),
            version,
        };
        let full = HttpConversation {
            requests: u64::MAX,
            responses: 3,
            version: Some(HttpVersion::Http11),
            first_request: Some(line("GET", "/orders?id=1", HttpVersion::Http10)),
            last_request: Some(line("POST", "/a\"b\\c\u{1}é\u{2028}", HttpVersion::Http11)),
            status_codes: [(100, 1), (200, u64::MAX), (u16::MAX, 0)]
                .into_iter()
                .collect(),
            last_request_says_close: true,
            last_response_says_close: false,
            last_response_persistent: Some(false),
            keep_alive: Some(KeepAliveAdvertised {
                timeout_s: Some(u64::MAX),
                max: None,
            }),
            unanswered_requests: Some(0),
            last_unanswered_request: Some(UnansweredRequest {
                request: line(
                    &"\u{7f}".repeat(300),
                    &"/x".repeat(500),
                    HttpVersion::Http10,
                ),
                idempotent: false,
            }),
            switched_protocols: true,
            gave_up: GiveUps {
                client: Some(GiveUp::PipelineOverflow),
                server: Some(GiveUp::PipelineOverflow),
            },
            first_request_at: Some(1_764_939_600.123_456),
            last_request_at: Some(f64::NAN),
            last_response_at: Some(-0.0),
            last_status: Some(u16::MAX),
            marks: Vec::new(),
        };
        r.http = Some(Box::new(full.clone()));
        assert_matches_serde(&mut writer, &r);
        let mut persistent = full.clone();
        persistent.last_response_persistent = Some(true);
        persistent.keep_alive = Some(KeepAliveAdvertised::default());
        persistent.status_codes.clear();
        persistent.last_unanswered_request = None;
        persistent.version = Some(HttpVersion::Http10);
        r.http = Some(Box::new(persistent));
        assert_matches_serde(&mut writer, &r);
        let mut marked = full;
        marked.marks.push(HttpMark {
            frame: 4,
            sender: Side::Client,
            label: "GET /orders HTTP/1.1".into(),
        });
        r.http = Some(Box::new(marked));
        assert_matches_serde(&mut writer, &r);
        r.segments = Some(Vec::new());
        assert_matches_serde(&mut writer, &r);
    }

    /// Every state, close kind, initiator and optional side/signal (the piece tables).
    #[test]
    fn every_enum_value_matches_serde_json() {
        let mut writer = LineWriter::default();
        let mut r = ReportBuilder::new(1).build();
        let sides = [None, Some(Side::Client), Some(Side::Server)];
        let initiators = [
            Initiator::Client,
            Initiator::Server,
            Initiator::Both,
            Initiator::None,
        ];
        for (i, state) in TcpState::ALL.into_iter().enumerate() {
            let other = TcpState::ALL[(i + 3) % TcpState::ALL.len()];
            (r.client_state, r.server_state) = (state, other);
            r.timeline.client[0].state = state;
            r.timeline.server[0].state = other;
            for (k, kind) in CloseKind::ALL.into_iter().enumerate() {
                r.close.kind = kind;
                r.close.initiator = initiators[(i + k) % 4];
                r.close.first = [None, Some(CloseSignal::Fin), Some(CloseSignal::Rst)][k % 3];
                r.close.first_by = sides[(i + k) % 3];
                r.close.rst_by = sides[(i + 2 * k) % 3];
                r.close.who_failed_to_respond = sides[(2 * i + k) % 3];
                assert_matches_serde(&mut writer, &r);
            }
        }
    }

    /// Addresses: the same address again, the same IP with another port, another IP,
    /// IPv6 between them, and shorter text after longer text.
    #[test]
    fn repeated_addresses_match_serde_json() {
        let addrs = [
            "10.78.0.2:80",
            "10.78.0.2:80",
            "10.78.0.2:8080",
            "10.78.0.2:8",
            "255.255.255.255:65535",
            "1.2.3.4:5",
            "0.0.0.0:0",
            "0.0.0.0:0",
            "[2001:db8::1]:80",
            "0.0.0.0:0",
            "255.255.255.255:1",
            "255.255.255.25:1",
        ];
        let mut writer = LineWriter::default();
        let mut r = ReportBuilder::new(1).build();
        for (i, client) in addrs.iter().enumerate() {
            for server in [addrs[(i + 5) % addrs.len()], addrs[i]] {
                r.client = client.parse().expect("addr");
                r.server = server.parse().expect("addr");
                assert_matches_serde(&mut writer, &r);
            }
        }
    }

    /// The fallback for lines too long for the u32 cursor writes the same line.
    #[test]
    fn the_serde_fallback_writes_the_same_line() {
        let mut writer = LineWriter::default();
        let r = ReportBuilder::new(7).unanswered_fin_by_server(42.5).build();
        let fast = writer.connection_line(&r).to_vec();
        writer.clear();
        writer.serde_line(&r);
        assert_eq!(writer.lines(), fast.as_slice());
    }

    /// Lines pushed one after another, longer and shorter ones, with segments and through
    /// the fallback between them, read as each one alone.
    #[test]
    fn gathered_lines_are_the_lines_one_after_another() {
        let mut long = ReportBuilder::new(2).build();
        long.close.explanation = "x".repeat(5000).into();
        let short = ReportBuilder::new(1).build();
        let mut segments = ReportBuilder::new(3).build();
        segments.segments = Some(Vec::new());
        let mut writer = LineWriter::default();
        for _ in 0..2 {
            let mut expected = String::new();
            for r in [&short, &long, &segments, &short, &long, &short] {
                writer.push_line(r);
                expected += &format!("{}\n", serde_line(r));
            }
            writer.serde_line(&short);
            writer.push_line(&segments);
            expected += &format!("{}\n{}\n", serde_line(&short), serde_line(&segments));
            assert_eq!(writer.lines(), expected.as_bytes());
            writer.clear();
        }
    }
}
