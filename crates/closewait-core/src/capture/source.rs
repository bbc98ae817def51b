//! Byte sources: a file or standard input, gunzipped when it starts with the gzip magic,
//! read through one large buffer.
//!
//! [`ByteSource`] is the only owner of capture bytes. Format readers ask it for "at least
//! n bytes" and borrow records straight out of its buffer, so the hot path never copies or
//! allocates; the buffer grows only when a single record is larger than it (format readers
//! refuse absurd lengths before asking). Reads are large and incremental: a pipe from
//! `tcpdump -U -w -` is consumed as it arrives, never slurped.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

/// A reader that counts the raw bytes it hands out (before decompression), for progress
/// reporting and `FileStats::bytes`.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub(crate) type DynRead = Box<dyn Read + Send>;

/// A buffered, forward-only view of a byte stream, with the stream offset of every byte.
pub(crate) struct ByteSource {
    feed: Feed,
    /// Unconsumed bytes are `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`, modulo 2^64 (read ahead, the buffer starts with unused
    /// room, which may lie "before" the stream's first byte).
    base: u64,
    eof: bool,
}

/// Where a [`ByteSource`] gets its bytes.
enum Feed {
    /// Read on the caller's thread, straight into the buffer.
    Direct(DynRead),
    /// Read ahead by a thread of its own (see [`ByteSource::read_ahead`]).
    Ahead(ReadAhead),
}

/// The receiving end of a reading thread: chunks of the stream, each a buffer whose
/// first `headroom` bytes are left free, and the way back for buffers done with.
struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spare: Sender<Vec<u8>>,
    /// Free room at the start of every chunk: the end of a record cut by the previous
    /// chunk is copied there, so that records stay contiguous without copying the
    /// chunk ([`ReadAheadSize::headroom`]).
    headroom: usize,
}

/// How a read-ahead thread reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadAheadSize {
    /// Bytes read at a time.
    pub chunk: usize,
    /// Free room before each chunk's data: records up to this long that straddle two
    /// chunks are joined without copying the chunk; longer ones are gathered by copying.
    pub headroom: usize,
}

impl ReadAheadSize {
    /// `chunk` bytes at a time, with room for a record as large as tcpdump's default
    /// snaplen (256 KiB).
    pub(crate) fn with_chunk(chunk: usize) -> ReadAheadSize {
        ReadAheadSize {
            chunk,
            headroom: 256 * 1024 + 64,
        }
    }
}

/// Chunks in flight between the reading thread and the parser.
const CHUNKS_AHEAD: usize = 3;

impl ByteSource {
    pub(crate) fn new(inner: DynRead, capacity: usize) -> Self {
        ByteSource {
            feed: Feed::Direct(inner),
            buf: vec![0; capacity.max(64)],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// From now on, reads on a thread of its own, ahead of the parsing, a whole chunk at a
    /// time: the copying out of the kernel's page cache (a tenth of a whole analysis) and
    /// any decompression overlap with the work on the bytes. For files, not pipes: a
    /// chunk is handed over once full (or at the end). Does nothing when the stream has
    /// ended already, or when no thread can be started.
    pub(crate) fn read_ahead(&mut self, size: ReadAheadSize) {
        let ReadAheadSize { chunk, headroom } = size;
        let chunk = chunk.max(1);
        if self.eof || matches!(self.feed, Feed::Ahead(_)) {
            return;
        }
        let (chunk_tx, chunks) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
        let (spare, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let Feed::Direct(inner) =
            std::mem::replace(&mut self.feed, Feed::Direct(Box::new(io::empty())))
        else {
            return;
        };
        // The reader is handed back if the thread cannot be started.
        let (handed_tx, handed_rx) = std::sync::mpsc::channel::<DynRead>();
        let spawned = std::thread::Builder::new()
            .name("closewait-read".into())
            .spawn(move || {
                let mut inner = match handed_rx.recv() {
                    Ok(inner) => inner,
                    Err(_) => return,
                };
                loop {
                    let mut buf = spare_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(headroom + chunk));
                    buf.resize(headroom + chunk, 0);
                    // Fill the chunk (a decompressor hands out a few KiB per read): each
                    // chunk costs a hand-over between the threads.
                    let mut n = 0;
                    let mut failed = None;
                    while n < chunk {
                        match inner.read(&mut buf[headroom + n..]) {
                            Ok(0) => break,
                            Ok(k) => n += k,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    buf.truncate(headroom + n);
                    let last = n < chunk;
                    if n > 0 && chunk_tx.send(Ok(buf)).is_err() {
                        return; // the parser stopped
                    }
                    if let Some(e) = failed {
                        let _ = chunk_tx.send(Err(e));
                    }
                    if last {
                        return; // the end (or an error): the channel closes
                    }
                }
            });
        match spawned {
            Ok(_) => {
                let _ = handed_tx.send(inner);
                // From here on the buffer holds exactly the bytes up to `end`.
                self.buf.truncate(self.end);
                self.feed = Feed::Ahead(ReadAhead {
                    chunks,
                    spare,
                    headroom,
                });
            }
            Err(_) => self.feed = Feed::Direct(inner),
        }
    }

    /// Stream offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.wrapping_add(self.pos as u64)
    }

    /// Unconsumed bytes currently buffered.
    pub(crate) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// The buffered unconsumed bytes (at least `n` of them after `ensure(n)` returned true).
    pub(crate) fn peek(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Makes at least `n` bytes available, reading (and blocking on a pipe) as needed.
    /// Returns `Ok(false)` when the stream ends first; what was there stays available.
    pub(crate) fn ensure(&mut self, n: usize) -> io::Result<bool> {
        if self.available() >= n {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        match &self.feed {
            Feed::Direct(_) => self.ensure_direct(n),
            Feed::Ahead(_) => self.ensure_ahead(n),
        }
    }

    fn ensure_direct(&mut self, n: usize) -> io::Result<bool> {
        let Feed::Direct(inner) = &mut self.feed else {
            unreachable!("direct feed");
        };
        if self.buf.len() - self.pos < n {
            // Move the partial record to the front; grow only if it still cannot fit.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base = self.base.wrapping_add(self.pos as u64);
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < n {
                let new_len = n.max(self.buf.len().saturating_mul(2));
                self.buf.resize(new_len, 0);
            }
        }
        while self.end - self.pos < n {
            match inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(k) => self.end += k.min(self.buf.len() - self.end),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn ensure_ahead(&mut self, n: usize) -> io::Result<bool> {
        while self.available() < n {
            let Feed::Ahead(ahead) = &self.feed else {
                unreachable!("read-ahead feed");
            };
            let chunk = match ahead.chunks.recv() {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => {
                    self.eof = true;
                    return Err(e);
                }
                Err(_) => {
                    self.eof = true;
                    return Ok(false);
                }
            };
            self.take_chunk(chunk);
        }
        Ok(true)
    }

    /// Continues the buffered bytes with a chunk from the reading thread.
    fn take_chunk(&mut self, mut chunk: Vec<u8>) {
        let tail = self.end - self.pos;
        let Feed::Ahead(ahead) = &self.feed else {
            unreachable!("read-ahead feed");
        };
        let headroom = ahead.headroom;
        let done = if tail <= headroom {
            // The unconsumed end goes into the chunk's free room, just before its data.
            let start = headroom - tail;
            chunk[start..headroom].copy_from_slice(&self.buf[self.pos..self.end]);
            // The stream offset of the chunk's byte `start` is that of `buf[pos]`.
            self.base = self
                .base
                .wrapping_add(self.pos as u64)
                .wrapping_sub(start as u64);
            self.pos = start;
            self.end = chunk.len();
            std::mem::replace(&mut self.buf, chunk)
        } else {
            // A record larger than the free room: gather it in this buffer.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base = self.base.wrapping_add(self.pos as u64);
            self.buf.truncate(tail);
            self.buf.extend_from_slice(&chunk[headroom..]);
            self.pos = 0;
            self.end = self.buf.len();
            chunk
        };
        // The thread reuses buffers of chunk size; it may be gone already.
        if done.capacity() > headroom {
            let _ = ahead.spare.send(done);
        }
    }

    /// Consumes `n` buffered bytes (`n ≤ available()`) and returns them. The slice stays
    /// valid until the next call that takes `&mut self`.
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.available());
        let start = self.pos;
        self.pos += n;
        &self.buf[start..self.pos]
    }

    /// Gives back the unconsumed buffered bytes and the underlying reader, to stack a
    /// decompressor on top of them. Only before [`ByteSource::read_ahead`].
    pub(crate) fn into_parts(self) -> (Vec<u8>, DynRead) {
        let pending = self.buf[self.pos..self.end].to_vec();
        match self.feed {
            Feed::Direct(inner) => (pending, inner),
            Feed::Ahead(_) => unreachable!("into_parts after read_ahead"),
        }
    }
}

/// What a stream that is not a capture looks like, for `CaptureError::NotACapture`.
/// `head` is the first bytes of the stream (up to a few hundred).
pub(crate) fn describe_non_capture(head: &[u8]) -> String {
    if head.is_empty() {
        return "an empty file".to_string();
    }
    let compressed = [
        (&[0x28, 0xb5, 0x2f, 0xfd][..], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00][..], "xz"),
        (&b"BZh"[..], "bzip2"),
        (&[0x04, 0x22, 0x4d, 0x18][..], "lz4"),
    ];
    for (magic, name) in compressed {
        if head.starts_with(magic) {
            return format!(
                "{name}-compressed data (decompress it first; only gzip is read directly)"
            );
        }
    }
    if head.starts_with(b"PK\x03\x04") {
        return "a zip archive (extract the capture first)".to_string();
    }
    if head.starts_with(b"snoop\0\0\0") {
        return "a Solaris snoop capture (convert it with `editcap -F pcap`)".to_string();
    }
    if head.starts_with(&[0x7f, b'E', b'L', b'F']) {
        return "an ELF executable".to_string();
    }
    let text = head.strip_prefix(&[0xef, 0xbb, 0xbf][..]).unwrap_or(head);
    let trimmed = trim_ascii_start(text);
    if looks_like_html(trimmed) {
        return "an HTML page (a web page saved in place of the capture? download the file \
                itself)"
            .to_string();
    }
    if looks_like_text(text) {
        let first = String::from_utf8_lossy(trimmed)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let line: String = first.chars().take(40).collect();
        if looks_like_tcpdump_output(&first) {
            return format!(
                "text (starts with {line:?}), tcpdump's printed output rather than a capture: \
                 record with `tcpdump -w FILE`"
            );
        }
        return format!("text (starts with {line:?})");
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "data of an unknown format (starts with bytes {})",
        hex.join(" ")
    )
}

/// tcpdump's own messages, or a decoded packet line (`12:34:56.789012 IP a.1 > b.2: …`).
fn looks_like_tcpdump_output(line: &str) -> bool {
    if line.starts_with("tcpdump: ") || line.starts_with("reading from file ") {
        return true;
    }
    let mut words = line.split_whitespace();
    let time = words.next().unwrap_or("");
    let proto = words.next().unwrap_or("");
    let is_time = time.len() >= 8
        && time.as_bytes()[2] == b':'
        && time
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.');
    is_time && matches!(proto, "IP" | "IP6" | "ARP,")
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn looks_like_html(b: &[u8]) -> bool {
    let lower: Vec<u8> = b.iter().take(512).map(|c| c.to_ascii_lowercase()).collect();
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return true;
    }
    lower.starts_with(b"<")
        && [&b"<html"[..], b"<head", b"<body"]
            .iter()
            .any(|tag| lower.windows(tag.len()).any(|w| w == *tag))
}

fn looks_like_text(b: &[u8]) -> bool {
    // Cut a multi-byte character split at the end of the sample before checking UTF-8.
    let sample = &b[..b.len().min(512)];
    let valid = match std::str::from_utf8(sample) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            match std::str::from_utf8(&sample[..e.valid_up_to()]) {
                Ok(s) => s,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `chunk` bytes per read, like a pipe.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn ensure_gathers_small_reads_and_grows_for_big_records() {
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let r = Trickle {
            data: data.clone(),
            at: 0,
            chunk: 7,
        };
        let mut s = ByteSource::new(Box::new(r), 64);
        assert!(s.ensure(10).unwrap());
        assert_eq!(s.take(10), &data[..10]);
        assert_eq!(s.offset(), 10);
        // Larger than the buffer: it grows.
        assert!(s.ensure(300).unwrap());
        assert_eq!(s.take(300), &data[10..310]);
        assert!(s.ensure(690).unwrap());
        assert!(!s.ensure(691).unwrap());
        assert_eq!(s.available(), 690);
        assert_eq!(s.take(690), &data[310..]);
        assert_eq!(s.offset(), 1000);
    }

    /// Reading ahead hands out the same bytes at the same offsets as reading directly,
    /// for any chunk size, records straddling chunks, and records longer than the
    /// headroom (gathered by copying).
    #[test]
    fn read_ahead_gives_the_same_bytes_and_offsets() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let takes = [1usize, 3, 16, 100, 5, 4_000, 7, 12_000, 2, 9_999];
        for (chunk, headroom, pipe) in [(7, 16, 3), (64, 100, 64), (1000, 20_000, 333), (1, 8, 1)] {
            let r = Trickle {
                data: data.clone(),
                at: 0,
                chunk: pipe,
            };
            let mut s = ByteSource::new(Box::new(r), 64);
            assert!(s.ensure(10).unwrap());
            assert_eq!(s.take(10), &data[..10]);
            s.read_ahead(ReadAheadSize { chunk, headroom });
            let mut at = 10;
            for n in takes.iter().cycle() {
                let n = (*n).min(data.len() - at);
                if n == 0 {
                    break;
                }
                assert!(s.ensure(n).unwrap(), "chunk {chunk}, at {at}, n {n}");
                assert_eq!(s.offset(), at as u64);
                assert_eq!(s.take(n), &data[at..at + n], "chunk {chunk}, at {at}");
                at += n;
            }
            assert!(!s.ensure(1).unwrap());
            assert_eq!(s.available(), 0);
            assert_eq!(s.offset(), data.len() as u64);
        }
    }

    /// A read error on the reading thread reaches the parser after the bytes before it.
    #[test]
    fn read_ahead_passes_on_read_errors() {
        struct Fails(usize);
        impl Read for Fails {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = self.0.min(buf.len());
                buf[..n].fill(9);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut s = ByteSource::new(Box::new(Fails(100)), 64);
        s.read_ahead(ReadAheadSize {
            chunk: 30,
            headroom: 40,
        });
        assert!(s.ensure(100).unwrap());
        assert_eq!(s.take(100), &[9u8; 100][..]);
        let err = s.ensure(1).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        assert!(!s.ensure(1).unwrap());
    }

    #[test]
    fn non_captures_are_described() {
        assert_eq!(describe_non_capture(b""), "an empty file");
        assert_eq!(
            describe_non_capture(b"  <!DOCTYPE html><html>"),
            "an HTML page (a web page saved in place of the capture? download the file itself)"
        );
        assert_eq!(
            describe_non_capture(b"<?xml?>\n<html lang=en>"),
            "an HTML page (a web page saved in place of the capture? download the file itself)"
        );
        assert_eq!(
            describe_non_capture(b"hello world\nsecond line"),
            "text (starts with \"hello world\")"
        );
        assert!(describe_non_capture(&[0x28, 0xb5, 0x2f, 0xfd, 1]).starts_with("zstd"));
        assert!(describe_non_capture(&[0, 1, 2, 3, 0xff]).contains("00 01 02 03 ff"));
    }
}
