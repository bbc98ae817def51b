//! HTTP/1.x over one connection's reassembled bytes: what was asked, what was answered,
//! and what the server promised about keeping the connection open.
//!
//! Why: a close is only half explained by TCP. The seed's fix is a server telling its
//! clients `Keep-Alive: timeout=N` so they never write into a connection the server is
//! about to close, and a late write that meets a RST is harmless only if the request was
//! idempotent. Both facts live in the HTTP heads, so this module reads them (issue 19).
//!
//! What it does: one `MessageStream` per direction takes bytes in whatever chunks the
//! reassembler delivers them, buffers a head until its empty line (at most
//! [`MAX_HEAD_BYTES`]), hands it to `httparse` (the field's head parser: no hand-written
//! request-line or header grammar here), and then *skips* the body by its framing
//! (RFC 9112 §6.3): bodies are never stored, so memory per connection is bounded by one
//! head per direction. [`HttpParser`] pairs responses with requests in order (a pipelining
//! queue of what each request needs from its response) and keeps the [`HttpConversation`]
//! summary the report model will carry.
//!
//! What it may not do: guess. Missing bytes ([`HttpParser::gap`]) are skipped only where
//! the framing says exactly how many body bytes remain; anywhere else (inside a head, a
//! chunk-size line, between messages, or a gap longer than the body) the direction gives
//! up, counted in [`GiveUps`], and stays silent until the connection ends. It never
//! resynchronises: the only marker of a message start is `METHOD SP target SP HTTP/1.x` or
//! `HTTP/1.x SP status`, and a body may contain exactly those bytes (a proxied page, a log
//! upload), so a resynchronised parser could count requests that were never made.
//! Bytes that are not HTTP/1.x at all (TLS records, HTTP/2's preface, SSH banners) fail
//! `httparse`'s check of the first few bytes and give up at once; TLS stays opaque.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;

use compact_str::CompactString;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use crate::model::Side;

/// The longest head (request or status line plus header section) buffered before the
/// direction gives up. Servers cap theirs at 8 KiB (nginx `large_client_header_buffers`,
/// Tomcat `maxHttpHeaderSize`) to 16 KiB; a longer head is hostile or not HTTP.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Request targets are kept to this many bytes (cut at a character boundary, `…`
/// appended): enough to recognise an endpoint, not a place to store query strings.
pub const MAX_TARGET_BYTES: usize = 200;

/// Methods longer than this are cut the same way (a method is a token of any length).
const MAX_METHOD_BYTES: usize = 32;

/// Requests written ahead of their responses (pipelining) that the parser remembers; a
/// client further ahead than this is not a browser or a pool, and the request direction
/// gives up rather than grow.
pub const MAX_PIPELINED_REQUESTS: usize = 4096;

/// Header fields `httparse` parses per head; more is a parse error (servers refuse ~100).
const MAX_HEADERS: usize = 128;

/// Before a head is complete, `httparse` checks its first bytes this often: enough for a
/// method or `HTTP/1.`, so TLS or other binary protocols give up at once, and cheap
/// (a head split byte by byte is not re-parsed 16 Ki times).
const EARLY_CHECK_BYTES: usize = 16;

/// At most this many [`HttpMark`]s are kept per connection (marks are kept only for
/// connections whose segments are recorded, which hold a record per segment anyway).
pub const MAX_MARKS: usize = 10_000;

/// When bytes fed to the parser arrived: the segment that delivered them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    /// Capture time, epoch seconds.
    pub ts: f64,
    /// Frame number (1-based).
    pub frame: u64,
}

/// An HTTP/1.x version, as `httparse` reports it (its minor version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HttpVersion {
    #[serde(rename = "HTTP/1.0")]
    Http10,
    #[serde(rename = "HTTP/1.1")]
    Http11,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
        }
    }

    fn from_minor(minor: u8) -> HttpVersion {
        if minor == 0 {
            HttpVersion::Http10
        } else {
            HttpVersion::Http11
        }
    }
}

/// A request line as the summary keeps it: method and target, both cut to a sane length.
/// Both are [`CompactString`]s: up to 24 bytes (every method, most targets) live inside
/// the struct, so a conversation is copied and dropped without touching the heap (a
/// report copies each one across threads; see `analyze::analyze_pipelined`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestLine {
    pub method: CompactString,
    pub target: CompactString,
    pub version: HttpVersion,
}

impl RequestLine {
    /// RFC 9110 §9.2.2: "the request methods defined by this specification, PUT, DELETE,
    /// and safe request methods are idempotent"; the safe ones (§9.2.1) are GET, HEAD,
    /// OPTIONS and TRACE. Method names are case-sensitive (§9.1). An idempotent request
    /// that met a closed connection can be retried; a POST cannot (§9.2.2: "a client
    /// SHOULD NOT automatically retry a request with a non-idempotent method").
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }
}

/// The request written last that never got a response: on a connection the server had
/// closed, the one that met the RST.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnansweredRequest {
    pub request: RequestLine,
    pub idempotent: bool,
}

/// The parameters of the server's `Keep-Alive` header (RFC 2068 §19.7.1.1, kept out of
/// RFC 9110 but sent by Tomcat and Apache): `Keep-Alive: timeout=5, max=100`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KeepAliveAdvertised {
    /// Seconds the server keeps an idle connection open.
    pub timeout_s: Option<u64>,
    /// Requests the server still serves on this connection.
    pub max: Option<u64>,
}

/// Which direction stopped parsing, and why. Each direction gives up at most once, so the
/// JSON's counts per reason (`http.gave_up`: `{"gap", "oversized_head", "parse_error",
/// "pipeline_overflow"}`, each 0, 1 or 2) are worked out from the two reasons; which side
/// gave up is in `close.http.unread` when it matters (an `unknown` close).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GiveUps {
    /// Why the client's requests stopped being read (`None`: read to the end).
    pub client: Option<GiveUp>,
    /// Why the server's responses stopped being read.
    pub server: Option<GiveUp>,
}

impl GiveUps {
    /// Whether a direction gave up: part of the conversation was not read.
    pub fn any(&self) -> bool {
        self.client.is_some() || self.server.is_some()
    }

    /// How many directions gave up for `reason` (0, 1 or 2).
    pub fn count(&self, reason: GiveUp) -> u32 {
        u32::from(self.client == Some(reason)) + u32::from(self.server == Some(reason))
    }

    /// `sender`'s messages stop being read, for `reason` (the first reason stays).
    fn record(&mut self, sender: Side, reason: GiveUp) {
        let by_sender = match sender {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        };
        by_sender.get_or_insert(reason);
    }
}

impl Serialize for GiveUps {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut counts = serializer.serialize_struct("GiveUps", GiveUp::ALL.len())?;
        for reason in GiveUp::ALL {
            counts.serialize_field(reason.as_str(), &self.count(reason))?;
        }
        counts.end()
    }
}

/// One connection's HTTP/1.x conversation, as the report model will carry it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HttpConversation {
    /// Request heads parsed (client → server).
    pub requests: u64,
    /// Response heads parsed (server → client), interim 1xx included.
    pub responses: u64,
    /// The version of the last message seen (a response's if any, else a request's).
    pub version: Option<HttpVersion>,
    pub first_request: Option<RequestLine>,
    pub last_request: Option<RequestLine>,
    /// How many responses carried each status code.
    pub status_codes: StatusCodes,
    /// The last request carried `Connection: close`.
    pub last_request_says_close: bool,
    /// The last response carried `Connection: close`: the server announced its close.
    pub last_response_says_close: bool,
    /// Whether the connection persists after the last response, by RFC 9112 §9.3
    /// (explicit `close`, else HTTP/1.1 persists, HTTP/1.0 only with `keep-alive`).
    pub last_response_persistent: Option<bool>,
    /// The server's latest `Keep-Alive: timeout=N, max=M`.
    pub keep_alive: Option<KeepAliveAdvertised>,
    /// Requests never answered by a final (non-1xx) response; `None` when the response
    /// direction gave up and pairing is unknown.
    pub unanswered_requests: Option<u64>,
    pub last_unanswered_request: Option<UnansweredRequest>,
    /// A 101 or an accepted CONNECT: the rest of the connection is another protocol.
    pub switched_protocols: bool,
    pub gave_up: GiveUps,
    /// Epoch seconds of the segment whose bytes completed the first request head, the last
    /// request head and the last response head (the idle time before a close is measured
    /// from the last of them).
    pub first_request_at: Option<f64>,
    pub last_request_at: Option<f64>,
    pub last_response_at: Option<f64>,
    /// The status code of the last final (non-1xx) response.
    pub last_status: Option<u16>,
    /// Where each message head started, for the ladder's arrow labels: kept only when the
    /// connection's segments are recorded (diagrams), and bounded as those are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<HttpMark>,
}

/// How many responses carried each status code, in ascending order of code; written as a
/// JSON object (`{"200": 3, "404": 1}`) like a map. Most connections see one or two codes,
/// which are kept inline: no allocation per connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCodes(SmallVec<[(u16, u64); 2]>);

impl StatusCodes {
    /// One more response with status `code`.
    pub fn count(&mut self, code: u16) {
        self.add(code, 1);
    }

    /// `responses` more responses with status `code`, kept in ascending order of code.
    pub fn add(&mut self, code: u16, responses: u64) {
        match self.0.binary_search_by_key(&code, |&(seen, _)| seen) {
            Ok(at) => self.0[at].1 += responses,
            Err(at) => self.0.insert(at, (code, responses)),
        }
    }

    /// (code, responses) in ascending order of code.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&u16, &u64)> {
        self.0.iter().map(|(code, count)| (code, count))
    }

    /// The response counts, in ascending order of code.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &u64> {
        self.0.iter().map(|(_, count)| count)
    }

    /// How many responses carried `code`.
    pub fn get(&self, code: u16) -> Option<u64> {
        self.iter().find(|(&c, _)| c == code).map(|(_, &n)| n)
    }

    /// How many different codes were seen.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl<'a> IntoIterator for &'a StatusCodes {
    type Item = (&'a u16, &'a u64);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (u16, u64)>, fn(&'a (u16, u64)) -> (&'a u16, &'a u64)>;

    /// As [`StatusCodes::iter`] (so a `for` loop reads it as it read a map).
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(code, count)| (code, count))
    }
}

impl FromIterator<(u16, u64)> for StatusCodes {
    fn from_iter<I: IntoIterator<Item = (u16, u64)>>(pairs: I) -> StatusCodes {
        let mut codes = StatusCodes::default();
        for (code, count) in pairs {
            codes.add(code, count);
        }
        codes
    }
}

impl<const N: usize> From<[(u16, u64); N]> for StatusCodes {
    fn from(pairs: [(u16, u64); N]) -> StatusCodes {
        pairs.into_iter().collect()
    }
}

impl PartialEq<BTreeMap<u16, u64>> for StatusCodes {
    fn eq(&self, other: &BTreeMap<u16, u64>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl Serialize for StatusCodes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (code, count) in self.iter() {
            map.serialize_entry(code, count)?;
        }
        map.end()
    }
}

/// One message head on the wire: the frame whose bytes began it and its one-line summary
/// (`GET /orders HTTP/1.1`, `HTTP/1.1 200`). The label is inline up to 24 bytes: a
/// diagnosis records segments (and so marks) for every connection, and a heap string per
/// head was a tenth of its analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpMark {
    pub frame: u64,
    pub sender: Side,
    pub label: CompactString,
}

impl HttpConversation {
    /// Keeps a mark (up to [`MAX_MARKS`]).
    fn mark(&mut self, frame: u64, sender: Side, label: CompactString) {
        if self.marks.len() < MAX_MARKS {
            self.marks.push(HttpMark {
                frame,
                sender,
                label,
            });
        }
    }

    /// At least one HTTP/1.x head was recognised.
    pub fn is_http(&self) -> bool {
        self.requests > 0 || self.responses > 0
    }
}

/// Why a direction stopped parsing (its JSON spelling names its count in `http.gave_up`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GiveUp {
    /// Bytes were missing somewhere their length could not be skipped.
    Gap,
    /// A head (or a chunk-size or trailer line) longer than [`MAX_HEAD_BYTES`].
    OversizedHead,
    /// Not HTTP/1.x, or a head or framing `httparse` and RFC 9112 reject.
    ParseError,
    /// More than [`MAX_PIPELINED_REQUESTS`] requests ahead of their responses.
    PipelineOverflow,
}

impl GiveUp {
    /// Every reason, in the order of `http.gave_up`'s counts.
    pub const ALL: [GiveUp; 4] = [
        GiveUp::Gap,
        GiveUp::OversizedHead,
        GiveUp::ParseError,
        GiveUp::PipelineOverflow,
    ];

    /// The JSON spelling (`close.http.unread`), also the Parquet columns' value.
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::Gap => "gap",
            GiveUp::OversizedHead => "oversized_head",
            GiveUp::ParseError => "parse_error",
            GiveUp::PipelineOverflow => "pipeline_overflow",
        }
    }
}

/// How a message's body is delimited once its head is parsed (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    NoBody,
    Length(u64),
    Chunked,
    UntilClose,
    /// 101 Switching Protocols or a CONNECT tunnel: no longer HTTP/1.x.
    Opaque,
}

/// Where a direction is inside its current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between messages or inside a head: head bytes are buffered until the empty line.
    Head(HeadScan),
    Body {
        remaining: u64,
    },
    ChunkSizeLine,
    ChunkData {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    ChunkDataEnd,
    Trailers,
    UntilClose,
    Opaque,
    GaveUp,
}

/// End-of-head detection: the head ends at the first empty line (RFC 9112 §2.1:
/// `*( field-line CRLF ) CRLF`; §2.2 lets a recipient accept a bare LF as a line end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadScan {
    MidLine,
    LineStart,
    LineStartAfterCr,
}

/// What a [`MessageStream`] calls with each complete head and the frame that began it:
/// reads the head and says how its body is framed.
type OnHead<'a> = dyn FnMut(&[u8], u64) -> Result<Framing, GiveUp> + 'a;

/// One direction's incremental parser: bytes in any chunks, heads buffered, bodies
/// skipped.
#[derive(Clone, Debug)]
struct MessageStream {
    /// Who sends these bytes: the client sends requests, the server responses.
    sender: Side,
    phase: Phase,
    /// The head being read, or the current chunk-size or trailer line.
    buffer: Vec<u8>,
    /// The frame whose bytes began the head being read (0: unknown).
    head_began: u64,
}

impl MessageStream {
    fn new(sender: Side) -> MessageStream {
        MessageStream {
            sender,
            phase: Phase::Head(HeadScan::LineStart),
            buffer: Vec::new(),
            head_began: 0,
        }
    }

    fn give_up(&mut self, reason: GiveUp) -> Result<(), GiveUp> {
        self.phase = Phase::GaveUp;
        self.buffer = Vec::new();
        Err(reason)
    }

    /// Reads `input`, which arrived in frame `frame` (0: unknown); `on_head` parses each
    /// complete head (with the frame that began it) and says how its body is framed.
    /// Returns the reason when the direction gives up (once).
    fn feed(
        &mut self,
        mut input: &[u8],
        frame: u64,
        on_head: &mut OnHead<'_>,
    ) -> Result<(), GiveUp> {
        while !input.is_empty() {
            match self.phase {
                Phase::Head(scan) => {
                    if self.buffer.is_empty() {
                        // RFC 9112 §2.2: "a server that is expecting to receive and parse
                        // a request-line SHOULD ignore at least one empty line (CRLF)
                        // received prior to the request-line."
                        let blank = input.iter().take_while(|b| matches!(b, b'\r' | b'\n'));
                        input = &input[blank.count()..];
                        if input.is_empty() {
                            break;
                        }
                        self.head_began = frame;
                    }
                    let (taken, complete, scan) = scan_head(input, scan);
                    if self.buffer.len() + taken > MAX_HEAD_BYTES {
                        return self.give_up(GiveUp::OversizedHead);
                    }
                    let checked = self.buffer.len() >= EARLY_CHECK_BYTES;
                    // A head whole in the input (the usual case) is read where it lies.
                    let whole = complete && self.buffer.is_empty();
                    if !whole {
                        self.buffer.extend_from_slice(&input[..taken]);
                    }
                    let head = &input[..taken];
                    input = &input[taken..];
                    if complete {
                        let head = if whole { head } else { &self.buffer };
                        let framing = match on_head(head, self.head_began) {
                            Ok(framing) => framing,
                            Err(reason) => return self.give_up(reason),
                        };
                        self.buffer.clear();
                        self.buffer.shrink_to(EARLY_CHECK_BYTES * 16);
                        self.phase = match framing {
                            Framing::NoBody | Framing::Length(0) => {
                                Phase::Head(HeadScan::LineStart)
                            }
                            Framing::Length(remaining) => Phase::Body { remaining },
                            Framing::Chunked => Phase::ChunkSizeLine,
                            Framing::UntilClose => Phase::UntilClose,
                            Framing::Opaque => Phase::Opaque,
                        };
                    } else {
                        self.phase = Phase::Head(scan);
                        // Only the first bytes, whatever this chunk brought: the verdict
                        // must not depend on where the segments cut the head.
                        let start = &self.buffer[..self.buffer.len().min(EARLY_CHECK_BYTES)];
                        if !checked && !head_start_plausible(self.sender, start) {
                            return self.give_up(GiveUp::ParseError);
                        }
                    }
                }
                Phase::Body { remaining } | Phase::ChunkData { remaining } => {
                    let skipped = remaining.min(input.len() as u64);
                    input = &input[skipped as usize..];
                    self.skip_body(skipped);
                }
                Phase::ChunkSizeLine => {
                    if !self.take_line(&mut input)? {
                        break;
                    }
                    // RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data
                    // CRLF; last-chunk = 1*("0") [ chunk-ext ] CRLF. Extensions are
                    // skipped (httparse checks their syntax).
                    let size = match httparse::parse_chunk_size(&self.buffer) {
                        Ok(httparse::Status::Complete((_, size))) => size,
                        _ => return self.give_up(GiveUp::ParseError),
                    };
                    self.buffer.clear();
                    self.phase = if size == 0 {
                        Phase::Trailers
                    } else {
                        Phase::ChunkData { remaining: size }
                    };
                }
                Phase::ChunkDataEnd => {
                    if !self.take_line(&mut input)? {
                        break;
                    }
                    if !is_empty_line(&self.buffer) {
                        return self.give_up(GiveUp::ParseError);
                    }
                    self.buffer.clear();
                    self.phase = Phase::ChunkSizeLine;
                }
                Phase::Trailers => {
                    // RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section
                    // CRLF: trailer fields up to an empty line. Their content is not used.
                    if !self.take_line(&mut input)? {
                        break;
                    }
                    let done = is_empty_line(&self.buffer);
                    self.buffer.clear();
                    if done {
                        self.phase = Phase::Head(HeadScan::LineStart);
                    }
                }
                Phase::UntilClose | Phase::Opaque | Phase::GaveUp => break,
            }
        }
        Ok(())
    }

    fn skip_body(&mut self, skipped: u64) {
        match &mut self.phase {
            Phase::Body { remaining } => {
                *remaining -= skipped;
                if *remaining == 0 {
                    self.phase = Phase::Head(HeadScan::LineStart);
                }
            }
            Phase::ChunkData { remaining } => {
                *remaining -= skipped;
                if *remaining == 0 {
                    self.phase = Phase::ChunkDataEnd;
                }
            }
            _ => {}
        }
    }

    /// Buffers one line (up to and including its LF): true when it is complete in
    /// `self.buffer`, false when `input` ended first.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<bool, GiveUp> {
        let (taken, complete) = match input.iter().position(|&b| b == b'\n') {
            Some(lf) => (lf + 1, true),
            None => (input.len(), false),
        };
        if self.buffer.len() + taken > MAX_HEAD_BYTES {
            self.give_up(GiveUp::OversizedHead)?;
        }
        self.buffer.extend_from_slice(&input[..taken]);
        *input = &input[taken..];
        Ok(complete)
    }

    /// `len` bytes are missing. Only a body of known remaining length can absorb them.
    fn gap(&mut self, len: u64) -> Result<(), GiveUp> {
        match self.phase {
            Phase::Body { remaining } | Phase::ChunkData { remaining } if len <= remaining => {
                self.skip_body(len);
                Ok(())
            }
            // Read-until-close: every byte up to the close is body, missing ones too.
            Phase::UntilClose | Phase::Opaque | Phase::GaveUp => Ok(()),
            _ => self.give_up(GiveUp::Gap),
        }
    }
}

/// Scans `input` for the end of a head: (bytes belonging to the head, whether the head
/// is complete, the scan state to resume from). Inside a line only a LF matters, so the
/// scan jumps from one LF to the next (`memchr`) and looks at the bytes after it.
fn scan_head(input: &[u8], mut scan: HeadScan) -> (usize, bool, HeadScan) {
    let mut at = 0;
    loop {
        scan = match (scan, input.get(at)) {
            (_, None) => return (input.len(), false, scan),
            (HeadScan::LineStart | HeadScan::LineStartAfterCr, Some(b'\n')) => {
                return (at + 1, true, HeadScan::LineStart)
            }
            (HeadScan::LineStart, Some(b'\r')) => {
                at += 1;
                HeadScan::LineStartAfterCr
            }
            _ => match memchr::memchr(b'\n', &input[at..]) {
                Some(lf) => {
                    at += lf + 1;
                    HeadScan::LineStart
                }
                None => return (input.len(), false, HeadScan::MidLine),
            },
        };
    }
}

fn is_empty_line(line: &[u8]) -> bool {
    matches!(line, b"\n" | b"\r\n")
}

/// `httparse` on an incomplete head: an error in the first bytes means not HTTP/1.x
/// (a TLS record starts with 0x16, not a method token or `HTTP/`).
fn head_start_plausible(sender: Side, bytes: &[u8]) -> bool {
    let mut headers = no_headers();
    match sender {
        Side::Client => httparse::Request::new(&mut [])
            .parse_with_uninit_headers(bytes, &mut headers)
            .is_ok(),
        Side::Server => httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(
                &mut httparse::Response::new(&mut []),
                bytes,
                &mut headers,
            )
            .is_ok(),
    }
}

/// Room for [`MAX_HEADERS`] header fields, left uninitialised: `httparse` writes the ones
/// it parses, and zeroing 4 KiB for every head cost more than parsing a short one.
fn no_headers<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// What a request needs its response to know: whether a body can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingRequest {
    Head,
    Connect,
    Other,
}

/// The header facts this module reads from one head.
#[derive(Debug, Default)]
struct HeadFacts {
    says_close: bool,
    says_keep_alive: bool,
    /// Transfer-Encoding present; whether its final coding is chunked.
    transfer_encoding: Option<bool>,
    content_length: Option<Result<u64, ()>>,
    keep_alive: Option<KeepAliveAdvertised>,
}

impl HeadFacts {
    fn read(headers: &[httparse::Header<'_>]) -> HeadFacts {
        let mut facts = HeadFacts::default();
        for header in headers {
            let Some(field) = KnownField::of(header.name) else {
                continue;
            };
            let value = header.value;
            match field {
                KnownField::Connection => {
                    // RFC 9110 §7.6.1: Connection = #connection-option, case-insensitive.
                    for option in list_items(value) {
                        facts.says_close |= option.eq_ignore_ascii_case(b"close");
                        facts.says_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                KnownField::TransferEncoding => {
                    // RFC 9112 §6.1: codings are listed in the order applied, across all
                    // Transfer-Encoding fields; what matters is the final one.
                    if let Some(last) = list_items(value).last() {
                        facts.transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
                    }
                }
                KnownField::ContentLength => {
                    // RFC 9110 §8.6: a list of identical values may be accepted as that
                    // one value; differing or non-numeric values are an error (RFC 9112
                    // §6.3 #5).
                    let mut items = list_items(value).peekable();
                    if items.peek().is_none() {
                        facts.content_length = Some(Err(()));
                    }
                    for item in items {
                        let parsed = parse_digits(item).ok_or(());
                        facts.content_length = match (facts.content_length, parsed) {
                            (None, parsed) => Some(parsed),
                            (Some(Ok(seen)), Ok(new)) if seen == new => Some(Ok(seen)),
                            _ => Some(Err(())),
                        };
                    }
                }
                KnownField::KeepAlive => {
                    let advertised = facts.keep_alive.get_or_insert_with(Default::default);
                    read_keep_alive(value, advertised);
                }
            }
        }
        facts
    }
}

/// The header fields [`HeadFacts`] reads; any other is skipped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KnownField {
    Connection,
    TransferEncoding,
    ContentLength,
    KeepAlive,
}

impl KnownField {
    /// Field names are case-insensitive (RFC 9110 §5.1). The length picks the one
    /// candidate, so most fields (`Date`, `Server`, `Content-Type`…) cost one comparison of
    /// lengths.
    fn of(name: &str) -> Option<KnownField> {
        let (known, field) = match name.len() {
            10 if name.as_bytes()[0].eq_ignore_ascii_case(&b'c') => {
                ("connection", KnownField::Connection)
            }
            10 => ("keep-alive", KnownField::KeepAlive),
            14 => ("content-length", KnownField::ContentLength),
            17 => ("transfer-encoding", KnownField::TransferEncoding),
            _ => return None,
        };
        name.eq_ignore_ascii_case(known).then_some(field)
    }
}

impl HeadFacts {
    /// RFC 9112 §6.3 rules 3 to 8: how the body of a message from `sender` is delimited
    /// (rules 1 and 2, which depend on the request and status, are applied first).
    fn framing(&self, sender: Side) -> Result<Framing, GiveUp> {
        match (self.transfer_encoding, self.content_length, sender) {
            // "3. If a message is received with both a Transfer-Encoding and a
            // Content-Length header field, the Transfer-Encoding overrides the
            // Content-Length."
            (Some(true), _, _) => Ok(Framing::Chunked),
            // "If a Transfer-Encoding header field is present in a response and the
            // chunked transfer coding is not the final encoding, the message body length
            // is determined by reading the connection until it is closed by the server."
            (Some(false), _, Side::Server) => Ok(Framing::UntilClose),
            // "If a Transfer-Encoding header field is present in a request and the
            // chunked transfer coding is not the final encoding, the message body length
            // cannot be determined reliably; the server MUST respond with the 400 (Bad
            // Request) status code and then close the connection."
            (Some(false), _, Side::Client) => Err(GiveUp::ParseError),
            // "5. If a message is received without Transfer-Encoding and with an invalid
            // Content-Length header field, then the message framing is invalid".
            (None, Some(Err(())), _) => Err(GiveUp::ParseError),
            // "6. If a valid Content-Length header field is present without
            // Transfer-Encoding, its decimal value defines the expected message body
            // length in octets."
            (None, Some(Ok(length)), _) => Ok(Framing::Length(length)),
            // "7. If this is a request message and none of the above are true, then the
            // message body length is zero".
            (None, None, Side::Client) => Ok(Framing::NoBody),
            // "8. Otherwise, this is a response message without a declared message body
            // length, so the message body length is determined by the number of octets
            // received prior to the server closing the connection."
            (None, None, Side::Server) => Ok(Framing::UntilClose),
        }
    }
}

/// The items of a comma-separated header list (RFC 9110 §5.6.1), trimmed, empty ones
/// dropped.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_whitespace)
        .filter(|item| !item.is_empty())
}

/// `bytes` without the spaces and tabs (RFC 9110 §5.6.3 OWS) around it.
fn trim_whitespace(bytes: &[u8]) -> &[u8] {
    let is_text = |b: &u8| !matches!(b, b' ' | b'\t');
    let Some(start) = bytes.iter().position(is_text) else {
        return &[];
    };
    let end = bytes
        .iter()
        .rposition(is_text)
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

/// A non-empty run of ASCII digits as a number; `None` for anything else or an overflow.
fn parse_digits(text: impl AsRef<[u8]>) -> Option<u64> {
    let text = text.as_ref();
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |number, &b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        number.checked_mul(10)?.checked_add(digit)
    })
}

/// `Keep-Alive: timeout=5, max=100`, read leniently: parameter names in any case,
/// spaces around `=`, quoted values, `;` as well as `,` between parameters, unknown or
/// malformed parameters ignored.
fn read_keep_alive(value: impl AsRef<[u8]>, advertised: &mut KeepAliveAdvertised) {
    for parameter in value.as_ref().split(|&b| b == b',' || b == b';') {
        let Some(equals) = parameter.iter().position(|&b| b == b'=') else {
            continue;
        };
        let name = trim_whitespace(&parameter[..equals]);
        let number = trim_whitespace(&parameter[equals + 1..]);
        let unquoted = number
            .iter()
            .position(|&b| b != b'"')
            .unwrap_or(number.len());
        let number = &number[unquoted..];
        let number = &number[..number.iter().rposition(|&b| b != b'"').map_or(0, |l| l + 1)];
        let Some(number) = parse_digits(number) else {
            continue;
        };
        if name.eq_ignore_ascii_case(b"timeout") {
            advertised.timeout_s = Some(number);
        } else if name.eq_ignore_ascii_case(b"max") {
            advertised.max = Some(number);
        }
    }
}

fn cut(text: &str, max_bytes: usize) -> CompactString {
    if text.len() <= max_bytes {
        return CompactString::from(text);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    compact_str::format_compact!("{}…", &text[..end])
}

/// Both directions of one connection and the conversation they add up to. Feed it the
/// reassembled bytes of each direction ([`HttpParser::feed`]) and the holes
/// ([`HttpParser::gap`]), then read [`HttpParser::finish`].
#[derive(Clone, Debug)]
pub struct HttpParser {
    requests: MessageStream,
    responses: MessageStream,
    /// Requests sent and not yet answered by a final response, oldest first.
    awaiting_response: AwaitingResponse,
    /// Boxed from the start: the finished conversation is handed over as it is, without
    /// copying its ~400 bytes out of the parser.
    conversation: Box<HttpConversation>,
    /// Whether [`HttpConversation::marks`] are kept.
    keep_marks: bool,
}

impl Default for HttpParser {
    fn default() -> Self {
        HttpParser::new()
    }
}

impl HttpParser {
    pub fn new() -> HttpParser {
        HttpParser {
            requests: MessageStream::new(Side::Client),
            responses: MessageStream::new(Side::Server),
            awaiting_response: AwaitingResponse::new(),
            conversation: Box::default(),
            keep_marks: false,
        }
    }

    /// A parser that also keeps [`HttpConversation::marks`] (for ladder diagrams).
    pub fn with_marks() -> HttpParser {
        HttpParser {
            keep_marks: true,
            ..HttpParser::new()
        }
    }

    /// The next bytes `sender` sent, in stream order, in chunks of any size.
    pub fn feed(&mut self, sender: Side, bytes: &[u8]) {
        self.feed_at(sender, bytes, None);
    }

    /// [`HttpParser::feed`] with the segment the bytes arrived in: a head completed by
    /// them is dated by it (`first_request_at`, `last_request_at`, `last_response_at`).
    pub fn feed_at(&mut self, sender: Side, bytes: &[u8], arrival: Option<Arrival>) {
        let HttpParser {
            requests,
            responses,
            awaiting_response,
            conversation,
            keep_marks,
        } = self;
        let frame = arrival.map_or(0, |a| a.frame);
        let ts = arrival.map(|a| a.ts);
        let keep_marks = *keep_marks;
        let outcome = match sender {
            Side::Client => requests.feed(bytes, frame, &mut |head, began| {
                let framing = read_request(head, awaiting_response, conversation)?;
                conversation.last_request_at = ts;
                if conversation.requests == 1 {
                    conversation.first_request_at = ts;
                }
                if keep_marks {
                    if let Some(line) = &conversation.last_request {
                        let version = line.version.as_str();
                        let mut label = CompactString::with_capacity(
                            line.method.len() + line.target.len() + version.len() + 2,
                        );
                        label.push_str(&line.method);
                        label.push(' ');
                        label.push_str(&line.target);
                        label.push(' ');
                        label.push_str(version);
                        conversation.mark(began, Side::Client, label);
                    }
                }
                Ok(framing)
            }),
            Side::Server => responses.feed(bytes, frame, &mut |head, began| {
                let (framing, version, status) =
                    read_response(head, awaiting_response, conversation)?;
                conversation.last_response_at = ts;
                if keep_marks {
                    let mut label = CompactString::new(version.as_str());
                    label.push(' ');
                    label.push_str(itoa::Buffer::new().format(status));
                    conversation.mark(began, Side::Server, label);
                }
                Ok(framing)
            }),
        };
        self.settle(sender, outcome);
    }

    /// `len` bytes `sender` sent are missing from the capture.
    pub fn gap(&mut self, sender: Side, len: u64) {
        let outcome = match sender {
            Side::Client => self.requests.gap(len),
            Side::Server => self.responses.gap(len),
        };
        self.settle(sender, outcome);
    }

    fn settle(&mut self, sender: Side, outcome: Result<(), GiveUp>) {
        if let Err(reason) = outcome {
            self.conversation.gave_up.record(sender, reason);
        }
        if self.conversation.switched_protocols {
            for stream in [&mut self.requests, &mut self.responses] {
                if stream.phase != Phase::GaveUp {
                    stream.phase = Phase::Opaque;
                    stream.buffer = Vec::new();
                }
            }
        }
    }

    /// The conversation so far, with the requests still awaiting a response counted as
    /// unanswered.
    pub fn conversation(&self) -> HttpConversation {
        let mut conversation = (*self.conversation).clone();
        Self::count_unanswered(&self.responses, &self.awaiting_response, &mut conversation);
        fill_first_request(&mut conversation);
        conversation
    }

    /// The finished conversation (the connection ended).
    pub fn finish(self) -> HttpConversation {
        *self.finish_boxed()
    }

    /// [`HttpParser::finish`], in the box the parser kept it in.
    pub fn finish_boxed(self) -> Box<HttpConversation> {
        let mut conversation = self.conversation;
        Self::count_unanswered(&self.responses, &self.awaiting_response, &mut conversation);
        fill_first_request(&mut conversation);
        conversation
    }

    /// Counts the requests still awaiting a response as unanswered.
    fn count_unanswered(
        responses: &MessageStream,
        awaiting_response: &AwaitingResponse,
        conversation: &mut HttpConversation,
    ) {
        if responses.phase != Phase::GaveUp && !conversation.switched_protocols {
            let unanswered = awaiting_response.len() as u64;
            conversation.unanswered_requests = Some(unanswered);
            // Responses come in request order (RFC 9112 §9.3.2), so if any request is
            // unanswered, the last one written is.
            if unanswered > 0 {
                conversation.last_unanswered_request =
                    conversation
                        .last_request
                        .clone()
                        .map(|request| UnansweredRequest {
                            idempotent: request.is_idempotent(),
                            request,
                        });
            }
        }
    }
}

/// The requests awaiting their responses, oldest first: a queue that lives inside the
/// parser (no allocation) while at most 16 requests are pipelined, which is every pool and
/// browser; a deeper pipeline spills to the heap, up to [`MAX_PIPELINED_REQUESTS`].
#[derive(Clone, Debug, Default)]
struct AwaitingResponse(SmallVec<[PendingRequest; 16]>);

impl AwaitingResponse {
    fn new() -> AwaitingResponse {
        AwaitingResponse(SmallVec::new())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn push_back(&mut self, request: PendingRequest) {
        self.0.push(request);
    }

    fn front(&self) -> Option<&PendingRequest> {
        self.0.first()
    }

    /// Moves the rest forward: at most [`MAX_PIPELINED_REQUESTS`] bytes.
    fn pop_front(&mut self) -> Option<PendingRequest> {
        (!self.0.is_empty()).then(|| self.0.remove(0))
    }
}

/// `first_request` is kept empty while it is `last_request` (see [`read_request`]).
fn fill_first_request(conversation: &mut HttpConversation) {
    if conversation.first_request.is_none() {
        conversation.first_request = conversation.last_request.clone();
    }
}

fn read_request(
    head: &[u8],
    awaiting_response: &mut AwaitingResponse,
    conversation: &mut HttpConversation,
) -> Result<Framing, GiveUp> {
    let mut headers = no_headers();
    let mut request = httparse::Request::new(&mut []);
    let (Ok(httparse::Status::Complete(_)), Some(method), Some(target), Some(minor)) = (
        request.parse_with_uninit_headers(head, &mut headers),
        request.method,
        request.path,
        request.version,
    ) else {
        return Err(GiveUp::ParseError);
    };
    if awaiting_response.len() >= MAX_PIPELINED_REQUESTS {
        return Err(GiveUp::PipelineOverflow);
    }
    let facts = HeadFacts::read(request.headers);
    let line = RequestLine {
        method: cut(method, MAX_METHOD_BYTES),
        target: cut(target, MAX_TARGET_BYTES),
        version: HttpVersion::from_minor(minor),
    };
    awaiting_response.push_back(match method {
        "HEAD" => PendingRequest::Head,
        "CONNECT" => PendingRequest::Connect,
        _ => PendingRequest::Other,
    });
    conversation.requests += 1;
    conversation.version = Some(line.version);
    conversation.last_request_says_close = facts.says_close;
    // While parsing, `first_request` stays empty as long as the first request is the last
    // one (most connections carry one): no copy of its strings per connection.
    if conversation.requests > 1 && conversation.first_request.is_none() {
        conversation.first_request = conversation.last_request.take();
    }
    conversation.last_request = Some(line);
    facts.framing(Side::Client)
}

/// Reads one response head into the conversation: how its body is framed, its version
/// and status code.
fn read_response(
    head: &[u8],
    awaiting_response: &mut AwaitingResponse,
    conversation: &mut HttpConversation,
) -> Result<(Framing, HttpVersion, u16), GiveUp> {
    let mut seen = (HttpVersion::Http11, 0);
    let framing = read_response_framing(head, awaiting_response, conversation, &mut seen)?;
    Ok((framing, seen.0, seen.1))
}

/// [`read_response`], writing the head's version and status code to `seen`.
fn read_response_framing(
    head: &[u8],
    awaiting_response: &mut AwaitingResponse,
    conversation: &mut HttpConversation,
    seen: &mut (HttpVersion, u16),
) -> Result<Framing, GiveUp> {
    let mut headers = no_headers();
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        head,
        &mut headers,
    );
    let (Ok(httparse::Status::Complete(_)), Some(status), Some(minor)) =
        (parsed, response.code, response.version)
    else {
        return Err(GiveUp::ParseError);
    };
    let facts = HeadFacts::read(response.headers);
    let version = HttpVersion::from_minor(minor);
    *seen = (version, status);
    conversation.responses += 1;
    conversation.version = Some(version);
    conversation.status_codes.count(status);
    let interim = (100..200).contains(&status);
    // An interim response leaves its request waiting for the final one; a response with
    // no request before it (the request direction gave up) is read as a GET's.
    let request = if interim && status != 101 {
        awaiting_response.front().copied()
    } else {
        awaiting_response.pop_front()
    }
    .unwrap_or(PendingRequest::Other);
    if !interim {
        conversation.last_status = Some(status);
        conversation.last_response_says_close = facts.says_close;
        // RFC 9112 §9.3: "If the 'close' connection option is present, the connection
        // will not persist after the current response; else, if the received protocol is
        // HTTP/1.1 (or later), the connection will persist after the current response;
        // else, if the received protocol is HTTP/1.0, the 'keep-alive' connection option
        // is present, [...] the message is a response, [...] the connection will persist
        // after the current response; otherwise, the connection will close after the
        // current response."
        conversation.last_response_persistent =
            Some(!facts.says_close && (version == HttpVersion::Http11 || facts.says_keep_alive));
    }
    if facts.keep_alive.is_some() {
        conversation.keep_alive = facts.keep_alive;
    }
    // RFC 9112 §6.3, for responses:
    // "1. Any response to a HEAD request and any response with a 1xx (Informational),
    // 204 (No Content), or 304 (Not Modified) status code is always terminated by the
    // first empty line after the header fields [...] and thus cannot contain content".
    if status == 101 {
        conversation.switched_protocols = true;
        return Ok(Framing::Opaque);
    }
    if request == PendingRequest::Head || interim || status == 204 || status == 304 {
        return Ok(Framing::NoBody);
    }
    // "2. Any 2xx (Successful) response to a CONNECT request implies that the connection
    // will become a tunnel immediately after the empty line that concludes the header
    // fields."
    if request == PendingRequest::Connect && (200..300).contains(&status) {
        conversation.switched_protocols = true;
        return Ok(Framing::Opaque);
    }
    facts.framing(Side::Server)
}

#[cfg(test)]
mod tests;
