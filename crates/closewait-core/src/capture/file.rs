//! One input: open it, recognise what it is from its first bytes (never from its name),
//! and turn its records into decoded [`Item`]s.
//!
//! Mid-file trouble (truncation, corruption, read errors) never fails the run: the file
//! stops there with one warning naming the byte offset and the packets kept, and
//! `FileStats::truncated` is set.

use super::pcap::{is_pcap_magic, PcapReader};
use super::pcapng::{is_pcapng_magic, PcapNgReader};
use super::record::{Notes, StopKind};
use super::source::{describe_non_capture, ByteSource, CountingReader, DynRead, ReadAheadSize};
use super::{CaptureError, FileStats, OpenProblem};
use crate::decode::{decode_frame, decode_frame_into, Decoded, SkipReason};
use flate2::read::MultiGzDecoder;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One packet of one file, decoded, waiting for its turn in the merge. Readers decode
/// into an `Item` they are lent ([`FileReader::next_item`]), so the per-packet path never
/// moves one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub ts_ns: i64,
    pub file: usize,
    pub link_type: u32,
    /// `Ok`: `decoded` holds the packet's TCP segment; otherwise why it has none (and
    /// `decoded` is stale).
    pub outcome: Result<(), SkipReason>,
    pub decoded: Decoded,
    /// A further TCP segment of the frame before it (an 802.11 A-MSDU holds several):
    /// same frame, same timestamp.
    pub continuation: bool,
    /// Which of its file's two payload buffers holds the segment's captured payload
    /// ([`FileReader::payload`]).
    pub payload_buffer: u8,
}

impl Item {
    pub(crate) fn empty() -> Item {
        Item {
            ts_ns: 0,
            file: 0,
            link_type: 0,
            outcome: Err(SkipReason::NotTcp),
            decoded: Decoded::empty(),
            continuation: false,
            payload_buffer: 0,
        }
    }
}

/// The emptied buffer for the payload of the item being handed out now (the two are used
/// alternately, see `FileReader::payloads`).
fn payload_buffer<'b>(
    payloads: &'b mut [Vec<u8>; 2],
    next: &mut u8,
    item: &mut Item,
) -> &'b mut Vec<u8> {
    let which = *next;
    *next ^= 1;
    item.payload_buffer = which;
    let buffer = &mut payloads[usize::from(which)];
    buffer.clear();
    buffer
}

/// Subframes decoded at most per frame, after the first.
const MAX_SUBFRAMES: u8 = 16;

enum Format {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

/// How many bytes to look at when explaining what a non-capture is.
const SNIFF_LEN: usize = 512;

pub(crate) struct FileReader {
    /// The name used in messages.
    name: String,
    index: usize,
    src: ByteSource,
    format: Format,
    gzip: bool,
    raw_bytes: Arc<AtomicU64>,
    size: Option<u64>,
    done: bool,
    /// Further segments of the last frame read, handed out before the next frame. Its
    /// capacity is kept, so it allocates only the first few times it is used.
    pending: VecDeque<Item>,
    /// The payloads of `pending`, in the same order.
    pending_payloads: VecDeque<Vec<u8>>,
    /// The captured payload of the last two items handed out, alternately: the frame's
    /// bytes are gone once the next record is read, and a merge of several files reads
    /// one item ahead of the one it hands out, so two buffers keep it until it is used.
    payloads: [Vec<u8>; 2],
    /// The buffer the next item's payload goes to.
    next_payload: u8,
}

impl FileReader {
    /// Opens `reader` (a file or stdin), unwrapping gzip, and reads the capture header.
    /// `path` goes into `FileStats::path`, `name` into messages.
    pub(crate) fn open(
        index: usize,
        path: String,
        name: String,
        reader: DynRead,
        size: Option<u64>,
        buffer: usize,
    ) -> Result<(FileReader, FileStats), CaptureError> {
        let raw_bytes = Arc::new(AtomicU64::new(0));
        let mut src = ByteSource::new(
            Box::new(CountingReader::new(reader, raw_bytes.clone())),
            buffer,
        );
        let io_err = |source| CaptureError::Io {
            path: name.clone(),
            source,
        };
        src.ensure(4).map_err(io_err)?;
        let gzip = src.peek().starts_with(&[0x1f, 0x8b]);
        if gzip {
            // Stack the decompressor on the bytes already buffered plus the rest.
            let (pending, inner) = src.into_parts();
            let gz = MultiGzDecoder::new(io::Cursor::new(pending).chain(inner));
            src = ByteSource::new(Box::new(gz), buffer);
            if let Err(e) = src.ensure(4) {
                return Err(CaptureError::NotACapture {
                    path: name,
                    what: format!("gzip-compressed data that could not be decompressed ({e})"),
                });
            }
        }
        let wrap = |what: String| {
            if gzip {
                format!("gzip-compressed data that is not a capture; decompressed, it is {what}")
            } else {
                what
            }
        };
        let problem = |p: OpenProblem| match p {
            OpenProblem::NotACapture(what) => CaptureError::NotACapture {
                path: name.clone(),
                what: wrap(what),
            },
            OpenProblem::Corrupt { offset, what } => CaptureError::Corrupt {
                path: name.clone(),
                offset,
                what,
            },
            OpenProblem::Io(source) => CaptureError::Io {
                path: name.clone(),
                source,
            },
        };
        let (format, format_name) = if is_pcap_magic(src.peek()) {
            (
                Format::Pcap(PcapReader::open(&mut src).map_err(problem)?),
                "pcap",
            )
        } else if is_pcapng_magic(src.peek()) {
            (
                Format::PcapNg(PcapNgReader::open(&mut src).map_err(problem)?),
                "pcapng",
            )
        } else {
            // Best effort: a read error here changes nothing, the data is not a capture.
            let _ = src.ensure(SNIFF_LEN);
            let head = &src.peek()[..src.available().min(SNIFF_LEN)];
            return Err(CaptureError::NotACapture {
                path: name,
                what: wrap(describe_non_capture(head)),
            });
        };
        let stats = FileStats {
            path,
            format: format_name.to_string(),
            gzip,
            packets: 0,
            bytes: raw_bytes.load(Ordering::Relaxed),
            truncated: false,
        };
        Ok((
            FileReader {
                name,
                index,
                src,
                format,
                gzip,
                raw_bytes,
                size,
                done: false,
                pending: VecDeque::new(),
                pending_payloads: VecDeque::new(),
                payloads: [Vec::new(), Vec::new()],
                next_payload: 0,
            },
            stats,
        ))
    }

    /// Reads the rest of the input on a thread of its own (see
    /// [`ByteSource::read_ahead`]).
    pub(crate) fn read_ahead(&mut self, size: ReadAheadSize) {
        self.src.read_ahead(size);
    }

    /// Raw (compressed, for gzip) bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.raw_bytes.load(Ordering::Relaxed)
    }

    /// The end of capture the file itself states (pcapng `isb_endtime`), once read.
    pub(crate) fn statistics_ends(&self) -> &[super::pcapng::StatedEnd] {
        match &self.format {
            Format::PcapNg(r) => r.statistics_ends(),
            Format::Pcap(_) => &[],
        }
    }

    /// The input's name for messages (its path, or "standard input").
    pub(crate) fn name_for_messages(&self) -> &str {
        &self.name
    }

    /// Size on disk, when the input is a regular file.
    pub(crate) fn size(&self) -> Option<u64> {
        self.size
    }

    /// The captured payload of an item this reader handed out, valid until it hands out
    /// the second item after it.
    pub(crate) fn payload(&self, item: &Item) -> &[u8] {
        &self.payloads[usize::from(item.payload_buffer)]
    }

    /// Decodes the next packet of this file into `item`; `false` once the file is
    /// finished (`item` is then unspecified).
    pub(crate) fn next_item(
        &mut self,
        stats: &mut FileStats,
        warnings: &mut Vec<String>,
        item: &mut Item,
    ) -> bool {
        if let Some(pending) = self.pending.pop_front() {
            *item = pending;
            let bytes = self.pending_payloads.pop_front().unwrap_or_default();
            payload_buffer(&mut self.payloads, &mut self.next_payload, item)
                .extend_from_slice(&bytes);
            return true;
        }
        if self.done {
            return false;
        }
        let result = match &mut self.format {
            Format::Pcap(r) => r.next_packet(&mut self.src),
            Format::PcapNg(r) => {
                let mut notes = Notes {
                    file: &self.name,
                    warnings,
                };
                r.next_packet(&mut self.src, &mut notes)
            }
        };
        match result {
            Ok(Some(packet)) => {
                stats.packets += 1;
                item.ts_ns = packet.ts_ns;
                item.file = self.index;
                item.link_type = packet.link_type;
                item.continuation = false;
                let next_subframe = match packet.skip {
                    // A record the format reader could not place (a pcapng packet on an
                    // undeclared interface) is skipped with its reason.
                    Some(reason) => {
                        item.outcome = Err(reason);
                        None
                    }
                    None => {
                        let (outcome, next) = decode_frame_into(
                            packet.link_type,
                            packet.data,
                            packet.orig_len,
                            packet.ts_ns,
                            0,
                            &mut item.decoded,
                        );
                        item.outcome = outcome;
                        next
                    }
                };
                let payload = match item.outcome {
                    Ok(()) => item.decoded.payload(packet.data),
                    Err(_) => &[],
                };
                payload_buffer(&mut self.payloads, &mut self.next_payload, item)
                    .extend_from_slice(payload);
                // The frame's other TCP segments follow it; its other non-TCP subframes
                // are not counted (the frame is counted once, by its first subframe).
                let mut next = next_subframe;
                while let Some(i) = next.filter(|&i| i > 0 && i <= MAX_SUBFRAMES) {
                    let frame = decode_frame(
                        packet.link_type,
                        packet.data,
                        packet.orig_len,
                        packet.ts_ns,
                        i,
                    );
                    if let Ok(decoded) = frame.outcome {
                        self.pending_payloads
                            .push_back(decoded.payload(packet.data).to_vec());
                        self.pending.push_back(Item {
                            outcome: Ok(()),
                            decoded,
                            continuation: true,
                            ..*item
                        });
                    }
                    next = frame.next_subframe.filter(|&n| n > i);
                }
                true
            }
            Ok(None) => {
                self.finish();
                false
            }
            Err(stop) => {
                stats.truncated = true;
                let what = match stop.kind {
                    StopKind::Truncated => "capture cut short",
                    StopKind::Corrupt => "corrupt data",
                    // flate2 reports a cut gzip stream as an error, not as an end.
                    StopKind::Io if self.gzip => "compressed data cut short or corrupt",
                    StopKind::Io => "read error",
                };
                let of = if self.gzip {
                    " of the decompressed data"
                } else {
                    ""
                };
                warnings.push(format!(
                    "{}: {what} at byte offset {}{of} ({}); stopped reading this file and kept the {} packet(s) before it",
                    self.name, stop.offset, stop.detail, stats.packets
                ));
                self.finish();
                false
            }
        }
    }

    /// Frees the buffer and closes the input as soon as a file is done: a merge of many
    /// files should not hold them all.
    fn finish(&mut self) {
        self.done = true;
        self.src = ByteSource::new(Box::new(io::empty()), 0);
    }
}
