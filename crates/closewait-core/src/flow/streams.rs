//! What a connection's bytes say: each direction reassembled ([`Reassembler`]) and read as
//! HTTP/1.x ([`HttpParser`]) or searched for `--find` text.
//!
//! Why here: the flow table is where a segment meets its connection, and reading the bytes
//! needs both (the sequence numbers of the handshake, which endpoint sent what). The work
//! itself belongs to `reassembly` and `http`; this module only decides which connections
//! get it and feeds them.
//!
//! What it may not do: cost anything for a connection that needs nothing. A connection is
//! `Undecided` (two flags) until the first payload of each direction is seen; unless
//! `--find` asks for every connection, only one whose first payload bytes look like
//! HTTP/1.x (an upper-case method token and a space, or `HTTP/1.`) gets a reassembler
//! and a parser; any other becomes `Ignored` without allocating anything. Memory per tracked
//! connection is bounded by the reassembly [`Limits`] of each direction (64 KiB held out of
//! order, see [`STREAM_LIMITS`]) plus one head per direction in the parser
//! ([`crate::http::MAX_HEAD_BYTES`]) and the `--find` carry-over (the text's length), and
//! all of it is freed once both directions have finished (FIN, RST, or the connection is
//! handed over).
//!
//! Bytes the capture lost (the capturing host dropped them) are given up as soon as the
//! receiver's ACK says it has them and the capture holds bytes after them
//! ([`Reassembler::skip_to`]): the parser skips them inside a body of known length, or
//! gives that direction up, and what follows is read when it arrived, not when the
//! connection ends.

use super::index::prefetch_read_bytes;
use crate::http::{Arrival, GiveUp, HttpConversation, HttpParser};
use crate::model::{secs, Side};
use crate::reassembly::{Delivery, Limits, Reassembler};
use crate::segment::Segment;
use crate::tcp::{seq_diff, Conversation};
use std::sync::Arc;

/// Reassembly limits of each direction of a tracked connection: out-of-order bytes held up
/// to 64 KiB (a receive window's worth), and the stream never cut (bodies pass through
/// the parser, which skips them by their framing without storing them, and `--find`
/// searches all of them).
pub const STREAM_LIMITS: Limits = Limits {
    max_buffered: 64 * 1024,
    max_stream: u64::MAX,
};

/// Bytes of bookkeeping an allocator keeps just before a block (glibc: the chunk size
/// word and the previous chunk's), read and written when the block is freed.
const ALLOCATOR_HEADER: usize = 16;

/// `--find`'s text, shared by every connection.
pub type FindText = Arc<[u8]>;

/// What one connection does with its bytes.
#[derive(Clone, Debug, Default)]
pub enum Streams {
    /// No payload seen from the endpoints marked yet.
    Undecided {
        payload_seen: [bool; 2],
    },
    /// Neither direction started like HTTP/1.x, and no `--find`: the bytes are not read.
    #[default]
    Ignored,
    Tracked(Box<Tracked>),
    /// Both directions finished: what they said, kept compact until the report (a
    /// finished connection can wait a minute in TIME-WAIT before it is reported).
    Done {
        http: Option<Box<HttpConversation>>,
        found: bool,
    },
}

impl Streams {
    /// The state of a new connection: tracked from the start when `--find` reads every
    /// connection, else undecided.
    pub fn new(find: Option<&FindText>) -> Streams {
        match find {
            Some(text) => Streams::Tracked(Box::new(Tracked::new(Some(text.clone())))),
            None => Streams::Undecided {
                payload_seen: [false; 2],
            },
        }
    }

    /// Feeds a segment sent by endpoint `from`, after the state machine has seen it (so
    /// its ISN is known); `payload` is its captured payload (possibly shorter than
    /// `seg.captured_payload_len` when the caller has no bytes).
    pub fn process(&mut self, seg: &Segment, payload: &[u8], from: usize, conv: &Conversation) {
        match self {
            Streams::Undecided { payload_seen } => {
                if seg.payload_len == 0 || payload_seen[from] {
                    return;
                }
                payload_seen[from] = true;
                let Some(sender) = http_sender(payload) else {
                    if payload_seen[1 - from] {
                        *self = Streams::Ignored;
                    }
                    return;
                };
                let mut tracked = Box::new(Tracked::new(None));
                // The other direction sent bytes already: they were not read.
                let skipped = payload_seen[1 - from];
                tracked.start_http(from, sender, conv.recorded.is_some(), skipped);
                tracked.process(seg, payload, from, conv);
                *self = Streams::Tracked(tracked);
            }
            Streams::Tracked(tracked) => {
                if tracked.http.is_none() && tracked.find.is_some() && seg.payload_len > 0 {
                    tracked.decide_http(from, payload, conv.recorded.is_some());
                }
                tracked.process(seg, payload, from, conv);
                if tracked.finished == [true; 2] {
                    self.end();
                }
            }
            Streams::Ignored | Streams::Done { .. } => {}
        }
    }

    /// The connection is handed over: whatever is still open ends here (held bytes are
    /// delivered after gaps) and the state is freed.
    pub fn end(&mut self) {
        if matches!(self, Streams::Tracked(_)) {
            if let Streams::Tracked(mut tracked) = std::mem::take(self) {
                *self = tracked.end();
            }
        }
    }

    /// Whether bytes are still being read: [`Streams::end`] has something to do.
    pub fn is_reading(&self) -> bool {
        matches!(self, Streams::Tracked(_))
    }

    /// The HTTP conversation, once [`Streams::end`] ran: moved out (`take`) or copied.
    pub fn http(&mut self, take: bool) -> Option<Box<HttpConversation>> {
        match self {
            Streams::Done { http, .. } if take => http.take(),
            Streams::Done { http, .. } => http.clone(),
            _ => None,
        }
    }

    /// Asks the CPU to fetch the finished HTTP conversation (its box and the allocator's
    /// header before it): a connection handed over is read (to copy its conversation
    /// into the report) or dropped (its box reused) long after the conversation was
    /// last touched, on a thread whose caches never held it. Only a hint: call it a
    /// little ahead, once the connection's own lines are fetched.
    #[inline]
    pub fn prefetch_http(&self) {
        if let Streams::Done {
            http: Some(http), ..
        } = self
        {
            let start = (&**http as *const HttpConversation)
                .cast::<u8>()
                .wrapping_sub(ALLOCATOR_HEADER);
            prefetch_read_bytes(
                start,
                ALLOCATOR_HEADER + std::mem::size_of::<HttpConversation>(),
            );
        }
    }

    /// Whether `--find`'s text was found in either direction.
    pub fn found(&self) -> bool {
        match self {
            Streams::Done { found, .. } => *found,
            Streams::Tracked(tracked) => tracked.found,
            _ => false,
        }
    }
}

/// Who sent bytes that start like an HTTP/1.x message: a request line starts with a
/// method token (RFC 9112 §3: `method SP request-target SP HTTP-version`; every registered
/// method is upper-case letters and `-`) and a space, a status line with `HTTP/1.`
/// (§4). Anything else (TLS records, SSH banners, binary protocols) is not read.
pub fn http_sender(payload: &[u8]) -> Option<Side> {
    if payload.starts_with(b"HTTP/1.") {
        return Some(Side::Server);
    }
    let method = payload
        .iter()
        .take(MAX_METHOD_CHECKED + 1)
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_')
        .count();
    (method > 0 && method <= MAX_METHOD_CHECKED && payload.get(method) == Some(&b' '))
        .then_some(Side::Client)
}

/// The longest method [`http_sender`] recognises (`VERSION-CONTROL` is 15).
const MAX_METHOD_CHECKED: usize = 20;

/// A tracked connection: each endpoint's direction and what reads it.
#[derive(Clone, Debug)]
pub struct Tracked {
    /// Per endpoint index: the direction it sends, from its first data byte on; `None`
    /// before it is known where the stream starts, and again once finished.
    dirs: [Option<Reassembler>; 2],
    finished: [bool; 2],
    http: Option<HttpParser>,
    /// The HTTP side of endpoint 0 (endpoint 1 has the other).
    side_of_first: Side,
    find: Option<Finder>,
    found: bool,
    /// The segment seen last: what dates bytes delivered when the connection is handed
    /// over.
    last_arrival: Option<Arrival>,
}

impl Tracked {
    fn new(find: Option<FindText>) -> Tracked {
        Tracked {
            dirs: [None, None],
            finished: [false; 2],
            http: None,
            side_of_first: Side::Client,
            find: find.map(Finder::new),
            found: false,
            last_arrival: None,
        }
    }

    /// Starts parsing HTTP: endpoint `from` sent bytes that start like a message of
    /// `sender`'s. `skipped`: the other endpoint sent bytes already that the parser will
    /// never see.
    fn start_http(&mut self, from: usize, sender: Side, marks: bool, skipped: bool) {
        self.side_of_first = if from == 0 { sender } else { sender.other() };
        let mut parser = if marks {
            HttpParser::with_marks()
        } else {
            HttpParser::new()
        };
        if skipped {
            parser.gap(self.side(1 - from), 1);
        }
        self.http = Some(parser);
    }

    /// With `--find` every connection is tracked from its first segment; HTTP parsing
    /// starts as it would without it, at the first payload of either direction.
    fn decide_http(&mut self, from: usize, payload: &[u8], marks: bool) {
        let seen = |dir: &Option<Reassembler>| dir.as_ref().is_some_and(|r| r.next_offset() > 0);
        if seen(&self.dirs[from]) {
            return;
        }
        if let Some(sender) = http_sender(payload) {
            let skipped = seen(&self.dirs[1 - from]) || self.finished[1 - from];
            self.start_http(from, sender, marks, skipped);
        }
    }

    fn side(&self, endpoint: usize) -> Side {
        if endpoint == 0 {
            self.side_of_first
        } else {
            self.side_of_first.other()
        }
    }

    fn process(&mut self, seg: &Segment, payload: &[u8], from: usize, conv: &Conversation) {
        // Before the segment's own bytes (the bytes it acknowledges were sent before it),
        // and even from an endpoint that finished sending: it still acknowledges.
        self.skip_acknowledged(seg, from);
        if self.finished[from] {
            return;
        }
        let flags = seg.flags;
        // RFC 9293 §3.4: the SYN occupies the sequence number before the first data byte.
        let data_seq = seg.seq.wrapping_add(u32::from(flags.syn()));
        if self.dirs[from].is_none() && (seg.payload_len > 0 || flags.fin()) {
            let start = match conv.dirs[from].isn {
                Some(isn) => isn.wrapping_add(1),
                None => data_seq,
            };
            self.dirs[from] = Some(Reassembler::new(start, STREAM_LIMITS));
        }
        let arrival = Arrival {
            ts: secs(seg.ts_ns),
            frame: seg.frame,
        };
        self.last_arrival = Some(arrival);
        if seg.payload_len > 0 {
            let reassembler = self.dirs[from].as_mut();
            // In order and whole (almost every segment): read where it lies.
            let next = reassembler.and_then(|r| r.push_next(data_seq, payload, seg.payload_len));
            if let Some(bytes) = next {
                self.read(from, bytes, Some(arrival));
            }
        }
        let Some(reassembler) = self.dirs[from].as_mut() else {
            return;
        };
        let ended = flags.fin() || flags.rst();
        if ended {
            // A FIN's sequence number follows the last data byte; a RST's says nothing
            // sure about what was sent before it.
            let end = flags.fin().then(|| data_seq.wrapping_add(seg.payload_len));
            reassembler.finish(end);
        }
        self.drain(from, Some(arrival));
        if ended {
            self.dirs[from] = None;
            self.finished[from] = true;
        }
    }

    /// The ACK of a segment endpoint `from` sent: the other endpoint's bytes before it
    /// reached their receiver, so a hole in them that the capture still holds bytes after
    /// is bytes the capture lost (the capturing host dropped them), not bytes still to
    /// come: they become a gap now and what was held after them is read, instead of
    /// waiting for the connection to end (or the 64 KiB budget to give the hole up). See
    /// the `reassembly` module doc for why the ACK is capped at what the capture holds.
    fn skip_acknowledged(&mut self, seg: &Segment, from: usize) {
        let to = 1 - from;
        // Cheap first: in order, nothing is held and nothing waits.
        let waiting = |r: &&mut Reassembler| seg.flags.ack() && r.buffered() > 0;
        let Some(reassembler) = self.dirs[to].as_mut().filter(waiting) else {
            return;
        };
        let Some(held_end) = reassembler.held_end_seq() else {
            return;
        };
        // RFC 9293 §3.4: SEG.ACK is "the next sequence number the sender of the segment is
        // expecting to receive", compared modulo 2^32.
        let acked = if seq_diff(seg.ack, held_end) > 0 {
            held_end
        } else {
            seg.ack
        };
        reassembler.skip_to(acked);
        // The held bytes arrived earlier; the ACK is when the capture knows they are next.
        let arrival = Arrival {
            ts: secs(seg.ts_ns),
            frame: seg.frame,
        };
        self.drain(to, Some(arrival));
    }

    /// Hands what direction `from` has ready to the parser and the finder.
    fn drain(&mut self, from: usize, arrival: Option<Arrival>) {
        let side = self.side(from);
        let Some(reassembler) = self.dirs[from].as_mut() else {
            return;
        };
        while let Some(delivery) = reassembler.next_delivery() {
            match delivery {
                Delivery::Data { bytes, .. } => {
                    read_bytes(
                        &mut self.http,
                        &mut self.find,
                        &mut self.found,
                        (side, from),
                        &bytes,
                        arrival,
                    );
                }
                Delivery::Gap { len, .. } => {
                    if let Some(parser) = self.http.as_mut() {
                        parser.gap(side, len);
                    }
                    if let Some(finder) = self.find.as_mut() {
                        finder.gap(from);
                    }
                }
            }
        }
    }

    /// The next bytes endpoint `from` sent, in stream order.
    fn read(&mut self, from: usize, bytes: &[u8], arrival: Option<Arrival>) {
        let side = self.side(from);
        read_bytes(
            &mut self.http,
            &mut self.find,
            &mut self.found,
            (side, from),
            bytes,
            arrival,
        );
    }

    /// Both directions end now: what they said.
    fn end(&mut self) -> Streams {
        for from in 0..2 {
            if let Some(reassembler) = self.dirs[from].as_mut() {
                reassembler.finish(None);
                // Held bytes delivered after a gap now arrived by the last segment at
                // the latest.
                self.drain(from, self.last_arrival);
            }
        }
        let http = self
            .http
            .take()
            .map(HttpParser::finish_boxed)
            .filter(|conversation| worth_reporting(conversation));
        Streams::Done {
            http,
            found: self.found,
        }
    }
}

/// Hands bytes in stream order to the parser and the finder (a function of the fields,
/// not a method: the reassembler that delivered them is borrowed meanwhile).
fn read_bytes(
    http: &mut Option<HttpParser>,
    find: &mut Option<Finder>,
    found: &mut bool,
    (side, from): (Side, usize),
    bytes: &[u8],
    arrival: Option<Arrival>,
) {
    if let Some(parser) = http.as_mut() {
        parser.feed_at(side, bytes, arrival);
    }
    if let Some(finder) = find.as_mut().filter(|_| !*found) {
        *found = finder.search(from, bytes);
    }
}

/// Whether a conversation that started like HTTP/1.x goes into the report: when a head
/// was read, or when heads were cut short (by the snaplen, or missing from the capture):
/// the reader should know the bytes were HTTP but could not be read. One where no head
/// was read and a direction met a parse error was some other protocol whose first word
/// looked like a method, and is left out: SMTP's `EHLO host`, or FTP's `USER name` after
/// the server's `220` greeting (bytes sent before the parser started, which count as a
/// gap in the server's direction, so a gap alone does not make it HTTP).
fn worth_reporting(conversation: &HttpConversation) -> bool {
    let gave_up = conversation.gave_up;
    let cut_short = gave_up.count(GiveUp::Gap) > 0 || gave_up.count(GiveUp::OversizedHead) > 0;
    conversation.is_http() || (cut_short && gave_up.count(GiveUp::ParseError) == 0)
}

/// `--find`: the text searched in both directions as their bytes are delivered, found
/// across segment boundaries by carrying the last `len - 1` bytes of each direction over.
#[derive(Clone, Debug)]
struct Finder {
    text: FindText,
    /// Per endpoint: the end of what it sent so far, at most `text.len() - 1` bytes.
    carry: [Vec<u8>; 2],
}

impl Finder {
    fn new(text: FindText) -> Finder {
        Finder {
            text,
            carry: [Vec::new(), Vec::new()],
        }
    }

    /// Whether the text ends within `bytes`, the next bytes endpoint `from` sent.
    fn search(&mut self, from: usize, bytes: &[u8]) -> bool {
        let text = &*self.text;
        if text.is_empty() {
            return true;
        }
        let keep = text.len() - 1;
        let carry = &mut self.carry[from];
        // Across the boundary: the carried end and the start of the new bytes.
        if !carry.is_empty() {
            let mut joined = carry.clone();
            joined.extend_from_slice(&bytes[..bytes.len().min(keep)]);
            if memchr::memmem::find(&joined, text).is_some() {
                return true;
            }
        }
        if memchr::memmem::find(bytes, text).is_some() {
            return true;
        }
        if bytes.len() >= keep {
            carry.clear();
            carry.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else {
            carry.extend_from_slice(bytes);
            let excess = carry.len().saturating_sub(keep);
            carry.drain(..excess);
        }
        false
    }

    /// Bytes of endpoint `from` are missing: text cannot be found across them.
    fn gap(&mut self, from: usize) {
        self.carry[from].clear();
    }
}

#[cfg(test)]
mod tests;
