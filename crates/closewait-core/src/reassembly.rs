//! One direction of a TCP connection as a byte stream: segments in, the stream's bytes out in
//! order, with every missing piece said out loud as a [`Delivery::Gap`].
//!
//! Why: to say *why* a connection closed (an HTTP `Connection: close`, a request written into
//! a connection the server had closed) closewait has to read what the applications said, and
//! a capture holds segments, not a stream: retransmitted, overlapping, out of order, cut by
//! the snaplen, wrapping around 2^32, or never captured at all. This module turns them into
//! the stream an application read, and never guesses: a byte it did not see is a gap, never a
//! zero or a byte from a later segment.
//!
//! What it may not do:
//! - Grow with its input. Out-of-order bytes are held up to [`Limits::max_buffered`] (a fixed
//!   overhead counted per held piece, so many tiny pieces cannot beat the cap); past it, the
//!   oldest hole is given up as a gap. Past [`Limits::max_stream`] bytes nothing is stored,
//!   only counted: a parser of request and response heads never needs whole bodies.
//! - Know about SYN and FIN. They occupy sequence space but carry no stream bytes: the caller
//!   passes the sequence number of the first data byte (`SYN seq + 1`) to [`Reassembler::new`],
//!   only the data's sequence number to [`Reassembler::push`] (a SYN carrying data: `seq + 1`),
//!   and a FIN's sequence number (the one after the last data byte) to
//!   [`Reassembler::finish`].
//! - Judge which copy of an overlapping byte is right. Like Linux, the first copy to arrive
//!   wins; later copies that differ are counted ([`ReassemblyStats::conflicting_bytes`]) so a
//!   caller can say so. Bytes already delivered are not kept, so a retransmission of them is
//!   counted as a duplicate but cannot be compared.
//!
//! - Wait for bytes the receiver already has. When the peer's ACK moves past what the
//!   capture holds (the capturing host dropped packets, the ring buffer overflowed), the
//!   caller says so with [`Reassembler::skip_to`] and the bytes up to the ACK become a gap,
//!   so a parser stuck on them skips a body of known length or gives up at once instead of
//!   stalling until the connection ends.
//!
//! How the flow layer calls it (`flow::streams`): for every segment of one direction that
//! carries the ACK flag, `skip_to(ack)` on the *other* direction's reassembler, before the
//! segment's own payload is read (the acknowledged bytes were sent before it), and only
//! while that reassembler holds bytes behind a hole ([`Reassembler::buffered`] > 0): a
//! hole with nothing captured after it keeps nobody waiting, and the check costs nothing
//! on the in-order path. The ACK is capped at [`Reassembler::held_end_seq`], the end of
//! what the capture has: SYN and FIN occupy sequence space but carry no stream bytes, so an
//! ACK of the SYN is the first data byte's sequence number and changes nothing, and the
//! ACK of a FIN the capture has not seen yet (FIN + 1) must not make its slot a missing
//! byte; bytes past the cap that the capture holds later (clocks reordering data after its
//! ACK, `-i any` on several interfaces) are then still read. Bytes *inside* a hole that
//! show up after their ACK are duplicates of a gap already declared.
//!
//! Sequence numbers become 64-bit stream offsets relative to the next byte to deliver, using
//! RFC 9293 §3.4's modulo 2^32 arithmetic ([`crate::tcp::seq_diff`]), so a stream longer than
//! 4 GiB or starting near 2^32 reads the same as any other.

use crate::tcp::seq_diff;
use std::collections::{BTreeMap, VecDeque};

/// How much one direction may hold. The defaults fit HTTP/1.x heads (a few KiB each) over
/// many requests on one keep-alive connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes held out of order waiting for a hole to fill, plus [`PIECE_OVERHEAD`] per held
    /// piece. Default 64 KiB (a typical receive window's worth).
    pub max_buffered: usize,
    /// Stream bytes the consumer wants at all: bytes at offsets past it are counted
    /// ([`ReassemblyStats::beyond_limit_bytes`]) and dropped. Default 1 MiB.
    pub max_stream: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffered: 64 * 1024,
            max_stream: 1024 * 1024,
        }
    }
}

/// What one held out-of-order piece costs against [`Limits::max_buffered`] besides its
/// bytes: roughly its map entry and vector header.
pub const PIECE_OVERHEAD: usize = 64;

/// The stream, in order: contiguous bytes, or a run known to be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Bytes the sender sent, starting at stream offset `offset` (0 = first data byte).
    Data { offset: u64, bytes: Vec<u8> },
    /// `len` bytes at `offset` that will never be delivered: cut by the snaplen, a hole the
    /// out-of-order budget gave up on, or a hole still open when the direction finished.
    Gap { offset: u64, len: u64 },
}

impl Delivery {
    /// Stream offset of the first byte this covers.
    pub fn offset(&self) -> u64 {
        match self {
            Delivery::Data { offset, .. } | Delivery::Gap { offset, .. } => *offset,
        }
    }

    /// How many stream bytes this covers (never 0).
    pub fn len(&self) -> u64 {
        match self {
            Delivery::Data { bytes, .. } => bytes.len() as u64,
            Delivery::Gap { len, .. } => *len,
        }
    }

    /// Always false: the reassembler never delivers an empty item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stream offset just past this item: the next item's offset.
    pub fn end(&self) -> u64 {
        self.offset() + self.len()
    }
}

/// Counts of what happened to the bytes pushed, for callers that want to say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Bytes delivered as [`Delivery::Data`].
    pub delivered_bytes: u64,
    /// Bytes delivered as [`Delivery::Gap`].
    pub gap_bytes: u64,
    /// Bytes that arrived again (retransmission, overlap) and were dropped: first copy wins.
    pub duplicate_bytes: u64,
    /// Of the duplicates, those that differed from the held first copy.
    pub conflicting_bytes: u64,
    /// Bytes at stream offsets past [`Limits::max_stream`], counted and dropped.
    pub beyond_limit_bytes: u64,
    /// Holes given up because holding the data after them would pass the budget.
    pub holes_given_up: u64,
    /// The most [`Reassembler::buffered`] ever was when a push returned.
    pub peak_buffered: usize,
}

/// A held out-of-order piece: bytes seen, or bytes known missing (a snaplen-cut tail).
#[derive(Clone, Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Missing(u64),
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Piece::Bytes(bytes) => bytes.len() as u64,
            Piece::Missing(len) => *len,
        }
    }

    fn cost(&self) -> usize {
        PIECE_OVERHEAD
            + match self {
                Piece::Bytes(bytes) => bytes.len(),
                Piece::Missing(_) => 0,
            }
    }
}

/// One direction's reassembler. Push segments in capture order, then drain
/// [`Reassembler::deliveries`] (draining after every push keeps the ready queue short; it
/// never holds more than [`Limits::max_stream`] bytes).
#[derive(Clone, Debug)]
pub struct Reassembler {
    /// Sequence number of stream offset 0.
    first_seq: u32,
    limits: Limits,
    /// Stream offset of the next byte to deliver: everything before it is in `ready` or gone.
    next_offset: u64,
    /// Out-of-order pieces by stream offset; none overlap and all start after `next_offset`.
    pending: BTreeMap<u64, Piece>,
    /// Cost of `pending` against `limits.max_buffered`.
    buffered: usize,
    ready: VecDeque<Delivery>,
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler whose stream starts at sequence number `first_data_seq` (the SYN's
    /// sequence number + 1; for a connection captured mid-stream, the first data seen).
    pub fn new(first_data_seq: u32, limits: Limits) -> Self {
        Reassembler {
            first_seq: first_data_seq,
            limits,
            next_offset: 0,
            pending: BTreeMap::new(),
            buffered: 0,
            ready: VecDeque::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// One segment's payload: `seq` is the sequence number of its first data byte,
    /// `captured` the payload bytes the capture holds and `wire_len` the payload length on
    /// the wire (from the IP length). `captured` shorter than `wire_len` means the snaplen
    /// cut the tail off: that tail becomes a gap. Bytes past `wire_len` (link padding) are
    /// ignored.
    pub fn push(&mut self, seq: u32, captured: &[u8], wire_len: u32) {
        let wire_len = u64::from(wire_len);
        let captured = &captured[..captured.len().min(wire_len as usize)];
        // RFC 9293 §3.4: "Since the space is finite, all arithmetic dealing with sequence
        // numbers must be performed modulo 2^32": the signed distance from the next expected
        // byte places the segment within 2^31 bytes either side of it.
        let distance = seq_diff(seq, self.next_seq());
        let behind = if distance < 0 {
            u64::from(distance.unsigned_abs())
        } else {
            0
        };
        // RFC 9293 §3.10.7.4: "If a segment's contents straddle the boundary between old and
        // new, only the new parts are processed." Old bytes were delivered: duplicates.
        let already_delivered = behind.min(wire_len);
        self.stats.duplicate_bytes += already_delivered;
        if already_delivered == wire_len {
            self.note_peak();
            return;
        }
        let start = if distance < 0 {
            self.next_offset
        } else {
            self.next_offset.saturating_add(distance as u64)
        };
        let captured = captured.get(already_delivered as usize..).unwrap_or(&[]);
        let len = wire_len - already_delivered;

        let wanted = len.min(self.limits.max_stream.saturating_sub(start));
        self.stats.beyond_limit_bytes += len - wanted;
        let captured = &captured[..captured.len().min(wanted as usize)];
        let missing_tail = wanted - captured.len() as u64;
        if wanted > 0 {
            if start == self.next_offset && self.pending.is_empty() {
                // The common case: the next bytes, nothing held.
                self.deliver_bytes(captured.to_vec());
                self.deliver_gap(missing_tail);
            } else {
                self.hold(start, captured.len() as u64, Some(captured));
                self.hold(start + captured.len() as u64, missing_tail, None);
                self.deliver_contiguous();
                self.keep_within_budget();
            }
        }
        self.note_peak();
    }

    /// [`Reassembler::push`] without the copy, for the common case: when the segment's
    /// bytes are exactly the next bytes of the stream, all captured, with nothing held or
    /// waiting to be drained, they count as delivered and are handed back, to be read
    /// where they lie instead of being copied into a [`Delivery`]. Otherwise the segment is
    /// pushed as usual and `None` returned.
    pub fn push_next<'a>(
        &mut self,
        seq: u32,
        captured: &'a [u8],
        wire_len: u32,
    ) -> Option<&'a [u8]> {
        let len = u64::from(wire_len);
        let in_order = seq == self.next_seq()
            && self.pending.is_empty()
            && self.ready.is_empty()
            && captured.len() as u64 >= len
            && self.next_offset.saturating_add(len) <= self.limits.max_stream;
        if !in_order || len == 0 {
            self.push(seq, captured, wire_len);
            return None;
        }
        self.next_offset += len;
        self.stats.delivered_bytes += len;
        Some(&captured[..wire_len as usize])
    }

    /// The direction ended. Every hole still open becomes a gap and every held piece is
    /// delivered. `end_seq`, when known, is the sequence number just past the last data byte
    /// (a FIN's sequence number): bytes up to it that were never seen become a final gap.
    pub fn finish(&mut self, end_seq: Option<u32>) {
        while let Some(&first) = self.pending.keys().next() {
            self.deliver_gap(first - self.next_offset);
            self.deliver_contiguous();
        }
        if let Some(end_seq) = end_seq {
            let distance = seq_diff(end_seq, self.next_seq());
            if distance > 0 {
                let missing = distance as u64;
                let wanted = missing.min(self.limits.max_stream.saturating_sub(self.next_offset));
                self.stats.beyond_limit_bytes += missing - wanted;
                self.deliver_gap(wanted);
            }
        }
    }

    /// The receiver acknowledged every byte before `seq` (its ACK number), so the sender sent
    /// them all: whatever the capture never saw up to there is a gap now, not a hole that a
    /// later segment might fill. Held pieces before `seq` are delivered with the holes
    /// between them as gaps; a piece reaching past `seq` is delivered whole. An ACK at or
    /// behind the next byte to deliver changes nothing.
    ///
    /// Why: without it, a consumer waiting on bytes the capture lost (the capturing host
    /// dropped them, the ring buffer overflowed) waits until [`Reassembler::finish`], and
    /// everything the sender sent after them sits in the out-of-order budget or is given
    /// up. With it, the hole closes as soon as the peer says it has the bytes, so an HTTP
    /// parser skips a body of known length and reads the next head.
    pub fn skip_to(&mut self, seq: u32) {
        // RFC 9293 §3.4: an acceptable ACK satisfies SND.UNA < SEG.ACK =< SND.NXT, compared
        // modulo 2^32; one at or before the next byte to deliver says nothing new.
        let distance = seq_diff(seq, self.next_seq());
        if distance <= 0 {
            return;
        }
        let target = self.next_offset + distance as u64;
        while let Some(&first) = self.pending.keys().next() {
            if first >= target {
                break;
            }
            self.deliver_gap(first - self.next_offset);
            self.deliver_contiguous();
        }
        if target > self.next_offset {
            // Past `max_stream` nothing is delivered; those bytes are not counted as
            // beyond the limit either (they were never pushed, and every later ACK would
            // count them again).
            let missing = target - self.next_offset;
            self.deliver_gap(missing.min(self.limits.max_stream.saturating_sub(self.next_offset)));
            self.deliver_contiguous();
        }
        self.note_peak();
    }

    /// The sequence number just past the last byte held out of order, when any is held:
    /// how far the capture has seen this direction past its first hole.
    pub fn held_end_seq(&self) -> Option<u32> {
        let (&start, piece) = self.pending.last_key_value()?;
        Some(self.first_seq.wrapping_add((start + piece.len()) as u32))
    }

    /// The next piece of the stream, in order, if one is ready.
    pub fn next_delivery(&mut self) -> Option<Delivery> {
        self.ready.pop_front()
    }

    /// Everything ready, in stream order.
    pub fn deliveries(&mut self) -> impl Iterator<Item = Delivery> + '_ {
        self.ready.drain(..)
    }

    /// Stream offset of the next byte to be delivered: how far the stream is known.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// What the held out-of-order pieces cost against [`Limits::max_buffered`].
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// The sequence number of the next byte to deliver (RFC 9293's RCV.NXT, as far as the
    /// capture knows it): stream offsets wrap modulo 2^32 onto sequence numbers.
    fn next_seq(&self) -> u32 {
        self.first_seq.wrapping_add(self.next_offset as u32)
    }

    /// RFC 9293 §3.10.7.4: "Segments with higher beginning sequence numbers may be held for
    /// later processing." Holds `[start, start + len)` (bytes, or known missing when `bytes` is `None`) where
    /// nothing is held yet: the first copy of a byte wins, later differing copies are counted.
    fn hold(&mut self, start: u64, len: u64, bytes: Option<&[u8]>) {
        if len == 0 {
            return;
        }
        let end = start + len;
        let mut uncovered: Vec<(u64, u64)> = Vec::new();
        let mut cursor = start;
        let reaching_in = self.pending.range(..start).next_back();
        for (&held_start, held) in reaching_in
            .into_iter()
            .chain(self.pending.range(start..end))
        {
            let held_end = held_start + held.len();
            if held_end <= cursor {
                continue;
            }
            if held_start > cursor {
                uncovered.push((cursor, held_start));
            }
            let (overlap_start, overlap_end) = (held_start.max(cursor), held_end.min(end));
            if bytes.is_some() {
                self.stats.duplicate_bytes += overlap_end - overlap_start;
            }
            if let (Some(new), Piece::Bytes(old)) = (bytes, held) {
                let new = &new[(overlap_start - start) as usize..(overlap_end - start) as usize];
                let old = &old
                    [(overlap_start - held_start) as usize..(overlap_end - held_start) as usize];
                let differing = new.iter().zip(old).filter(|(a, b)| a != b).count();
                self.stats.conflicting_bytes += differing as u64;
            }
            cursor = overlap_end;
        }
        if cursor < end {
            uncovered.push((cursor, end));
        }
        for (from, to) in uncovered {
            let piece = match bytes {
                Some(bytes) => {
                    Piece::Bytes(bytes[(from - start) as usize..(to - start) as usize].to_vec())
                }
                None => Piece::Missing(to - from),
            };
            self.buffered += piece.cost();
            self.pending.insert(from, piece);
        }
    }

    /// Delivers held pieces while the first one starts at the next offset.
    fn deliver_contiguous(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next_offset {
                break;
            }
            let piece = entry.remove();
            self.buffered -= piece.cost();
            match piece {
                Piece::Bytes(bytes) => self.deliver_bytes(bytes),
                Piece::Missing(len) => self.deliver_gap(len),
            }
        }
    }

    /// Past the budget, the first hole can no longer be filled: it becomes a gap and what
    /// follows it is delivered, until the held pieces fit again.
    fn keep_within_budget(&mut self) {
        while self.buffered > self.limits.max_buffered {
            let Some(&first) = self.pending.keys().next() else {
                break;
            };
            self.stats.holes_given_up += 1;
            self.deliver_gap(first - self.next_offset);
            self.deliver_contiguous();
        }
    }

    fn deliver_bytes(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let len = bytes.len() as u64;
        self.ready.push_back(Delivery::Data {
            offset: self.next_offset,
            bytes,
        });
        self.next_offset += len;
        self.stats.delivered_bytes += len;
    }

    fn deliver_gap(&mut self, len: u64) {
        if len == 0 {
            return;
        }
        match self.ready.back_mut() {
            Some(Delivery::Gap { len: last, .. }) => *last += len,
            _ => self.ready.push_back(Delivery::Gap {
                offset: self.next_offset,
                len,
            }),
        }
        self.next_offset += len;
        self.stats.gap_bytes += len;
    }

    fn note_peak(&mut self) {
        self.stats.peak_buffered = self.stats.peak_buffered.max(self.buffered);
    }
}

#[cfg(test)]
mod tests;
