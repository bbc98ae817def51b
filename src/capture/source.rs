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
    inner: DynRead,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl ByteSource {
    pub(crate) fn new(inner: DynRead, capacity: usize) -> Self {
        ByteSource {
            inner,
            buf: vec![0; capacity.max(64)],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Stream offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
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
        if self.buf.len() - self.pos < n {
            // Move the partial record to the front; grow only if it still cannot fit.
            self.buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < n {
                let new_len = n.max(self.buf.len().saturating_mul(2));
                self.buf.resize(new_len, 0);
            }
        }
        while self.available() < n {
            match self.inner.read(&mut self.buf[self.end..]) {
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

    /// Consumes `n` buffered bytes (`n ≤ available()`) and returns them. The slice stays
    /// valid until the next call that takes `&mut self`.
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.available());
        let start = self.pos;
        self.pos += n;
        &self.buf[start..self.pos]
    }

    /// Gives back the unconsumed buffered bytes and the underlying reader, to stack a
    /// decompressor on top of them.
    pub(crate) fn into_parts(self) -> (Vec<u8>, DynRead) {
        let pending = self.buf[self.pos..self.end].to_vec();
        (pending, self.inner)
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
