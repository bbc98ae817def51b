//! Capture reading: pcap/pcapng/gzip/stdin, several files merged in timestamp order.
//!
//! This stage turns bytes into [`Segment`]s and nothing else: it knows file formats
//! (`pcap.rs`, `pcapng.rs`), compression and buffering (`source.rs`, `file.rs`) and
//! merging (`merge.rs`), hands each packet to [`crate::decode`], and numbers frames over
//! the merged order. It never looks at TCP state.
//!
//! Design choices:
//! - the format is recognised from the first bytes, never from the file name; gzip
//!   (`1f 8b`) is unwrapped transparently, and anything else gets a
//!   [`CaptureError::NotACapture`] that says what it looks like;
//! - everything streams: one buffer per input (1 MiB, smaller when many files are merged),
//!   records borrowed from it and decoded into one reused `Decoded`, no per-packet
//!   allocation or copy, so a pipe from `tcpdump -U -w -` works and hundreds of MB cost no
//!   memory; a single big file is read ahead by a thread of its own (`source.rs`), and
//!   files are decoded ahead of the analysis on another (`decode_ahead.rs`);
//! - hostile or damaged input never panics and never fails the run once the header is
//!   read: a file cut short or corrupt in the middle stops there with a warning (file,
//!   byte offset, packets kept) and `truncated: true`. Record lengths are checked before
//!   anything is read or allocated. The crate's own loop owns the buffer, so the
//!   no-progress refill loops of pcap-parser's streaming readers cannot happen here.

mod decode_ahead;
mod file;
mod merge;
mod packets;
mod pcap;
mod pcapng;
mod record;
mod source;
#[cfg(test)]
mod tests;
mod time;
mod window;

pub use decode_ahead::SegmentFeed;
pub use packets::{Packet, PacketStream, StreamHeader};
pub use time::parse_moment;
pub use window::TimeWindow;
#[cfg(test)]
pub(crate) mod testutil;

use crate::decode::{link_type_name, SkipReason, TunnelKind, MAX_TUNNEL_DEPTH};
use crate::segment::Segment;
use file::{FileReader, Item};
use merge::Merge;
use record::Notes;
use serde::Serialize;
use source::ReadAheadSize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

/// Where packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Path(PathBuf),
    /// `-`: standard input.
    Stdin,
}

impl InputSpec {
    /// `-` means standard input, anything else a path.
    pub fn from_arg(arg: &str) -> InputSpec {
        if arg == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::Path(PathBuf::from(arg))
        }
    }
}

/// How long after the last packet a pcapng's stated end of capture is still believed.
const STATED_END_MAX_AFTER_NS: i64 = 86_400 * 1_000_000_000;

/// What was read, for the JSON `capture` object.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureStats {
    pub files: Vec<FileStats>,
    pub packets: PacketCounts,
    /// Link types seen, by name (`EN10MB`, `LINUX_SLL2`, …) with packet counts.
    pub link_types: BTreeMap<String, u64>,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    /// Epoch seconds of the end of the capture (see [`CaptureStats::end_ts`]); `null` when
    /// the capture has no packets.
    pub end: Option<f64>,
    /// Where [`CaptureStats::end`] comes from.
    pub end_source: Option<EndSource>,
    /// `--from`/`--until` when given: only packets inside were analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<window::WindowStats>,
    pub warnings: Vec<String>,
    /// Segments that arrived after their connection was reset or closed and reported
    /// (none: left out).
    #[serde(skip_serializing_if = "crate::model::PostCloseStats::is_empty")]
    pub post_close: crate::model::PostCloseStats,
    /// The end of the capture the analysis measured open connections to, epoch
    /// nanoseconds (exact, unlike [`CaptureStats::end`]): a second pass over the capture
    /// finishes its connections at the same moment (see `crate::second_pass`).
    #[serde(skip)]
    pub analysis_end_ns: Option<i64>,
}

impl CaptureStats {
    /// Epoch seconds of the end of the capture: the moment after which nothing more is
    /// known about any connection. The best end known: the user's `--capture-end`, else
    /// the latest `isb_endtime` of a pcapng file (when the capture program stopped, often
    /// seconds after the last packet), else the last packet of any kind (of every merged
    /// file). Every consumer that needs "the end of the capture" (waiting times, hedges in
    /// findings, charts) asks here.
    pub fn end_ts(&self) -> Option<f64> {
        self.end.or(self.last_ts)
    }

    /// Sets the end of the capture the user gave (`--capture-end`), refusing one before
    /// the last packet: the packets prove the capture was still running then.
    pub fn set_user_end(&mut self, end_ns: i64) -> Result<(), CaptureError> {
        let end = ns_to_secs(end_ns);
        if let Some(last) = self.last_ts.filter(|&last| end < last) {
            return Err(CaptureError::EndBeforeLastPacket { end, last });
        }
        self.end = Some(end);
        self.end_source = Some(EndSource::User);
        Ok(())
    }
}

/// Where the end of the capture comes from (the JSON `capture.end_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndSource {
    /// The last packet of any kind: a legacy pcap does not record when the capture stopped.
    LastPacket,
    /// A pcapng Interface Statistics Block's `isb_endtime` (dumpcap, tshark).
    InterfaceStatistics,
    /// `--capture-end`.
    User,
    /// `--until`, before the end the files tell: the window ends there.
    Until,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FileStats {
    /// As given: the path, or `-` for standard input.
    pub path: String,
    /// `pcap` or `pcapng`.
    pub format: String,
    pub gzip: bool,
    /// Packet records read from this file.
    pub packets: u64,
    /// Bytes read from the file as stored (compressed bytes for gzip).
    pub bytes: u64,
    /// Reading stopped early: the file was cut short or corrupt (see the warnings).
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PacketCounts {
    pub total: u64,
    /// TCP segments decoded and handed on. One per packet, except that a frame carrying an
    /// 802.11 A-MSDU (Aruba's GRE) can hold several.
    pub tcp: u64,
    /// Packets not analysed, by reason (`not_tcp`, `ip_fragment`, `unsupported_link_type`…).
    pub skipped: BTreeMap<String, u64>,
    /// TCP segments found inside tunnels, by kind of tunnel (`gre`, `vxlan`, `gtp_u`…;
    /// see [`TunnelKind`]). A segment inside nested tunnels counts once for each kind.
    pub tunnels: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a capture file: {what}")]
    NotACapture { path: String, what: String },
    /// `--capture-end` before the last packet.
    #[error(
        "--capture-end {end:.6} is before the last packet of the capture ({last:.6}): the \
         capture was still running then"
    )]
    EndBeforeLastPacket { end: f64, last: f64 },
    /// The capture header itself is unusable (unsupported version, broken first block).
    /// Damage after the header is a warning, not an error.
    #[error("{path}: corrupt capture header at byte offset {offset}: {what}")]
    Corrupt {
        path: String,
        offset: u64,
        what: String,
    },
}

/// Why a header could not be read, before the file's name is attached.
#[derive(Debug)]
pub(crate) enum OpenProblem {
    NotACapture(String),
    Corrupt { offset: u64, what: String },
    Io(std::io::Error),
}

/// Inputs from this size on are read ahead on a thread of their own (when alone).
const READ_AHEAD_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// Buffer per input: 1 MiB, less when many inputs are merged (at least 64 KiB; a buffer
/// grows for a record larger than itself anyway).
fn buffer_size(inputs: usize) -> usize {
    (32 * 1024 * 1024 / inputs.max(1)).clamp(64 * 1024, 1024 * 1024)
}

/// Opens every input and reads its capture header, in order; no packet is read yet. Fails
/// on the first input that cannot be opened or is not a capture.
fn open_files(
    inputs: &[InputSpec],
    read_ahead: bool,
) -> Result<(Vec<FileReader>, Vec<FileStats>), CaptureError> {
    let buffer = buffer_size(inputs.len());
    let mut files = Vec::with_capacity(inputs.len());
    let mut stats = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let (path, name, reader, size): (String, String, Box<dyn Read + Send>, _) = match input {
            InputSpec::Path(p) => {
                let shown = p.display().to_string();
                let f = std::fs::File::open(p).map_err(|source| CaptureError::Io {
                    path: shown.clone(),
                    source,
                })?;
                let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                (shown.clone(), shown, Box::new(f), size)
            }
            InputSpec::Stdin => (
                "-".to_string(),
                "standard input".to_string(),
                Box::new(std::io::stdin()),
                None,
            ),
        };
        let (file, file_stats) = FileReader::open(index, path, name, reader, size, buffer)?;
        files.push(file);
        stats.push(file_stats);
    }
    // One big input (the common case of a long run) is read ahead on a thread of its
    // own; a merge of many files would want a thread per file and keeps reading on
    // this one, and a small file is read before a thread would have started.
    if let [file] = files.as_mut_slice() {
        if read_ahead && file.size().is_some_and(|size| size >= READ_AHEAD_MIN_BYTES) {
            file.read_ahead(ReadAheadSize::with_chunk(buffer));
        }
    }
    Ok((files, stats))
}

/// A stream of TCP segments from one or more inputs.
pub struct SegmentStream {
    files: Vec<FileReader>,
    merge: Merge<Item>,
    stats: CaptureStats,
    frame: u64,
    min_ts_ns: Option<i64>,
    max_ts_ns: Option<i64>,
    last_ts_ns: Option<i64>,
    /// The packet being handed out: readers decode into it in place.
    current: Item,
    /// Packets per link type, counted by number and named once at the end.
    link_counts: LinkCounts,
    warned_link_types: Vec<u32>,
    warned_fragment: bool,
    warned_tunnel_fragment: bool,
    /// Packets whose timestamp is earlier than the packet before them in merged order.
    backwards: Backwards,
    /// Only packets inside it are handed out (`--from`/`--until`).
    window: TimeWindow,
    /// The latest timestamp of any packet, inside the window or not: the files' own end.
    file_max_ts_ns: Option<i64>,
}

impl SegmentStream {
    /// Opens every input and reads its capture header; no packet is read yet. Fails on
    /// the first input that cannot be opened or is not a capture.
    pub fn open(inputs: &[InputSpec]) -> Result<SegmentStream, CaptureError> {
        let (files, stats) = open_files(inputs, true)?;
        Ok(Self::from_files(files, stats))
    }

    /// [`open`](Self::open) for a stream that will be read on a thread of its own
    /// ([`SegmentFeed`]): the file is read on that thread too, not ahead on a third one.
    /// Measured: the decoding thread parses a chunk it has just copied out of the page
    /// cache while it is still in its core's cache, where a chunk read ahead elsewhere
    /// has to come over from the other core.
    pub fn open_to_decode_ahead(inputs: &[InputSpec]) -> Result<SegmentStream, CaptureError> {
        let (files, stats) = open_files(inputs, false)?;
        Ok(Self::from_files(files, stats))
    }

    /// [`SegmentStream::open_readers`] reading ahead on a thread, as a big file is
    /// read: for tests of that path.
    #[cfg(test)]
    pub(crate) fn open_readers_ahead(
        inputs: Vec<(String, Box<dyn Read + Send>)>,
        size: ReadAheadSize,
    ) -> Result<SegmentStream, CaptureError> {
        let mut stream = Self::open_readers(inputs)?;
        for file in &mut stream.files {
            file.read_ahead(size);
        }
        Ok(stream)
    }

    /// Like [`open`](Self::open), over readers already open (in-memory captures, sockets…).
    /// Each input is `(name, reader)`; the name stands in for the path in stats and
    /// messages.
    pub fn open_readers(
        inputs: Vec<(String, Box<dyn Read + Send>)>,
    ) -> Result<SegmentStream, CaptureError> {
        let buffer = buffer_size(inputs.len());
        let mut files = Vec::with_capacity(inputs.len());
        let mut stats = Vec::with_capacity(inputs.len());
        for (index, (name, reader)) in inputs.into_iter().enumerate() {
            let (file, file_stats) =
                FileReader::open(index, name.clone(), name, reader, None, buffer)?;
            files.push(file);
            stats.push(file_stats);
        }
        Ok(Self::from_files(files, stats))
    }

    fn from_files(files: Vec<FileReader>, file_stats: Vec<FileStats>) -> SegmentStream {
        SegmentStream {
            merge: Merge::new(files.len()),
            files,
            stats: CaptureStats {
                files: file_stats,
                ..CaptureStats::default()
            },
            frame: 0,
            min_ts_ns: None,
            max_ts_ns: None,
            last_ts_ns: None,
            current: Item::empty(),
            link_counts: LinkCounts::default(),
            warned_link_types: Vec::new(),
            warned_fragment: false,
            warned_tunnel_fragment: false,
            backwards: Backwards::default(),
            window: TimeWindow::default(),
            file_max_ts_ns: None,
        }
    }

    /// Hands out only the packets inside `window` (as `editcap -A/-B` would cut the file):
    /// the others are counted as skipped (`outside_window`) and never decoded further;
    /// frame numbers stay those of the whole file, as Wireshark shows them.
    pub fn set_window(&mut self, window: TimeWindow) {
        self.window = window;
    }

    /// The next TCP segment in merged timestamp order, with its frame number; `None` when
    /// every input is finished. Non-TCP packets are counted in the stats and skipped.
    /// The segment is borrowed from the stream's own buffer, which the next call reuses.
    pub fn next_segment(&mut self) -> Option<&Segment> {
        loop {
            let stats = &mut self.stats;
            if self.files.len() == 1 {
                // One input (the common case): decode straight into the current item.
                if !self.files[0].next_item(
                    &mut stats.files[0],
                    &mut stats.warnings,
                    &mut self.current,
                ) {
                    return None;
                }
            } else {
                let files = &mut self.files;
                self.current = self.merge.next(
                    |i| {
                        let mut item = Item::empty();
                        files[i]
                            .next_item(&mut stats.files[i], &mut stats.warnings, &mut item)
                            .then_some(item)
                    },
                    |item| item.ts_ns,
                )?;
            }
            if self.account() {
                let segment = &mut self.current.decoded.segment;
                segment.frame = self.frame;
                return Some(segment);
            }
        }
    }

    /// The captured payload of the segment [`SegmentStream::next_segment`] handed out last
    /// (empty when none was captured).
    pub fn payload(&self) -> &[u8] {
        match self.files.get(self.current.file) {
            Some(file) => file.payload(&self.current),
            None => &[],
        }
    }

    /// Counts the current packet in the stats; returns whether it is a TCP segment.
    fn account(&mut self) -> bool {
        let item = &self.current;
        if item.continuation {
            // Another segment of the frame just counted.
            if item.outcome.is_err() || !self.window.contains(item.ts_ns) {
                return false;
            }
            self.count_segment();
            return true;
        }
        self.frame += 1;
        self.stats.packets.total += 1;
        let lt = item.link_type;
        // A packet on an undeclared pcapng interface has no link type to count.
        if item.outcome != Err(SkipReason::UnknownInterface) {
            self.link_counts.count(lt);
        }
        let ts = item.ts_ns;
        if let Some(prev) = self
            .last_ts_ns
            .filter(|&prev| ts < prev - BACKWARDS_NOTED_NS)
        {
            self.backwards.note(item.file, self.frame, prev - ts);
        }
        self.last_ts_ns = Some(ts);
        if self.file_max_ts_ns.is_none_or(|m| ts > m) {
            self.file_max_ts_ns = Some(ts);
        }
        if !self.window.contains(ts) {
            bump(&mut self.stats.packets.skipped, OUTSIDE_WINDOW);
            return false;
        }
        if self.min_ts_ns.is_none_or(|m| ts < m) {
            self.min_ts_ns = Some(ts);
        }
        if self.max_ts_ns.is_none_or(|m| ts > m) {
            self.max_ts_ns = Some(ts);
        }
        match item.outcome {
            Ok(()) => {
                let first_fragment = item.decoded.first_fragment;
                let tunnel_fragment = item.decoded.tunnel_fragment;
                let file = item.file;
                self.count_segment();
                if tunnel_fragment && !self.warned_tunnel_fragment {
                    self.warned_tunnel_fragment = true;
                    let name = &self.files[file].name_for_messages();
                    Notes {
                        file: name,
                        warnings: &mut self.stats.warnings,
                    }
                    .warn(format_args!(
                        "TCP segments inside tunnels whose outer IP datagram is split into \
                         fragments (first seen at frame {}); closewait does not reassemble \
                         IP: each segment is read from the first fragment (its lengths from \
                         the inner headers), the other fragments are counted as ip_fragment",
                        self.frame
                    ));
                }
                if first_fragment && !self.warned_fragment {
                    self.warned_fragment = true;
                    let name = &self.files[file].name_for_messages();
                    Notes {
                        file: name,
                        warnings: &mut self.stats.warnings,
                    }
                    .warn(format_args!(
                        "TCP segments split into IP fragments (first seen at frame {}); \
                         closewait does not reassemble IP, so their lengths cover the first fragment only",
                        self.frame
                    ));
                }
                true
            }
            Err(reason) => {
                let stats = &mut self.stats;
                bump(&mut stats.packets.skipped, reason.as_str());
                if reason == SkipReason::UnsupportedLinkType
                    && !self.warned_link_types.contains(&item.link_type)
                {
                    self.warned_link_types.push(item.link_type);
                    let name = &self.files[item.file].name_for_messages();
                    let lt = item.link_type;
                    let lt_name = link_type_name(lt).unwrap_or("unknown");
                    Notes {
                        file: name,
                        warnings: &mut stats.warnings,
                    }
                    .warn(format_args!(
                        "link type {lt} ({lt_name}) is not supported; its packets are counted as skipped (unsupported_link_type)"
                    ));
                }
                false
            }
        }
    }

    /// Counts the current item's segment, and each kind of tunnel around it once.
    #[inline]
    fn count_segment(&mut self) {
        let packets = &mut self.stats.packets;
        packets.tcp += 1;
        let tunnels = &self.current.decoded.tunnels;
        if tunnels.is_empty() {
            return;
        }
        // Each kind once per segment, however deep it is nested.
        let mut seen: [Option<TunnelKind>; MAX_TUNNEL_DEPTH] = [None; MAX_TUNNEL_DEPTH];
        for (i, kind) in tunnels.iter().enumerate() {
            if !seen.contains(&Some(kind)) {
                bump(&mut packets.tunnels, kind.as_str());
            }
            seen[i] = Some(kind);
        }
    }

    /// What was read (complete once `next_segment` returned `None`).
    pub fn into_stats(mut self) -> CaptureStats {
        for &(lt, count) in &self.link_counts.0 {
            let name = match link_type_name(lt) {
                Some(name) => name.to_string(),
                None => format!("LINKTYPE_{lt}"),
            };
            *self.stats.link_types.entry(name).or_default() += count;
        }
        let unreadable = self
            .stats
            .packets
            .skipped
            .get(SkipReason::UnsupportedLinkType.as_str())
            .copied()
            .unwrap_or(0);
        let outside = self
            .stats
            .packets
            .skipped
            .get(OUTSIDE_WINDOW)
            .copied()
            .unwrap_or(0);
        let total = self.stats.packets.total - outside;
        if total > 0 && unreadable == total {
            // Not "no TCP connections": nothing could be looked at.
            self.stats.warnings.push(format!(
                "none of the {total} packets could be read: every one is of a link type \
                 closewait does not support, so the capture may well hold TCP connections \
                 that were not analysed; capture on an Ethernet, loopback or `any` interface \
                 (or convert the file to a supported link type)"
            ));
        }
        self.stats.first_ts = self.min_ts_ns.map(ns_to_secs);
        self.stats.last_ts = self.max_ts_ns.map(ns_to_secs);
        if let Some((end, source)) = self.end_ns() {
            let (end, source) = match self.window.until_ns {
                Some(until) if until < end => (until, EndSource::Until),
                _ => (end, source),
            };
            self.stats.end = Some(ns_to_secs(end));
            self.stats.end_source = Some(source);
        }
        self.stats.window = self.window.is_set().then(|| self.window.stats());
        for (file, stats) in self.files.iter().zip(self.stats.files.iter_mut()) {
            stats.bytes = file.bytes_read();
        }
        if let Some((file, frame)) = self.backwards.first {
            let b = &self.backwards;
            let name = self.files[file].name_for_messages();
            self.stats.warnings.push(format!(
                "{name}: timestamps jump back by more than 1 s {} time(s) (first at frame \
                 {frame}, by up to {:.6} s); those packets are analysed in the order they \
                 were captured, and durations across a jump are unreliable",
                b.count,
                b.max_step_ns as f64 / 1e9
            ));
        }
        self.stats
    }

    /// Bytes read so far over all inputs, as stored (compressed bytes for gzip): with
    /// [`total_bytes`](Self::total_bytes), a progress bar.
    pub fn bytes_consumed(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_read()).sum()
    }

    /// The summed size of the inputs, when all are regular files.
    pub fn total_bytes(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size()).sum()
    }

    /// The end of the capture as the files tell it (once read to their end): the latest
    /// pcapng `isb_endtime` when it is after the last packet, else the last packet (the
    /// latest timestamp of every merged file). `None` without packets.
    pub fn end_ns(&self) -> Option<(i64, EndSource)> {
        let last = self.file_max_ts_ns?;
        // A stated end is believed when it is at or after the last packet and within a
        // day of it; in the interface's resolution first, else read as microseconds
        // (dumpcap 4.0). Anything else (a clock step, a damaged block) is passed over.
        let believable = |ns: i64| ns >= last && ns - last <= STATED_END_MAX_AFTER_NS;
        let stated = self
            .files
            .iter()
            .flat_map(|f| f.statistics_ends())
            .filter_map(|e| {
                [e.ns, e.as_micros_ns]
                    .into_iter()
                    .find(|&ns| believable(ns))
            })
            .max();
        Some(match stated {
            Some(end) if end > last => (end, EndSource::InterfaceStatistics),
            _ => (last, EndSource::LastPacket),
        })
    }

    /// Timestamp of the last packet handed out or skipped (any packet, TCP or not).
    pub fn last_ts_ns(&self) -> Option<i64> {
        self.last_ts_ns
    }

    /// Packets read so far, TCP or not: the frame number of the last one.
    pub fn frames_read(&self) -> u64 {
        self.frame
    }
}

impl Iterator for SegmentStream {
    type Item = Segment;
    fn next(&mut self) -> Option<Segment> {
        self.next_segment().copied()
    }
}

/// Steps back smaller than this are ordinary (multi-queue capture, several CPUs stamping
/// packets) and go unremarked.
const BACKWARDS_NOTED_NS: i64 = 1_000_000_000;

/// Timestamps that jumped back: kept in capture order (the packets are real, their clock
/// is not), counted, and named once in a warning.
#[derive(Debug, Default)]
struct Backwards {
    count: u64,
    /// Input index and frame of the first.
    first: Option<(usize, u64)>,
    max_step_ns: i64,
}

impl Backwards {
    fn note(&mut self, file: usize, frame: u64, step_ns: i64) {
        self.count += 1;
        self.first.get_or_insert((file, frame));
        self.max_step_ns = self.max_step_ns.max(step_ns);
    }
}

/// Packets per link-type number, in order of first appearance: a capture has one link
/// type, or a few (pcapng interfaces), so the first entry is nearly always the one.
#[derive(Debug, Default)]
struct LinkCounts(Vec<(u32, u64)>);

impl LinkCounts {
    fn count(&mut self, link_type: u32) {
        match self.0.iter_mut().find(|(lt, _)| *lt == link_type) {
            Some((_, n)) => *n += 1,
            None => self.0.push((link_type, 1)),
        }
    }
}

/// The skip reason of packets outside `--from`/`--until`.
pub const OUTSIDE_WINDOW: &str = "outside_window";

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// Epoch seconds as a float (sub-microsecond precision is lost at today's epochs).
fn ns_to_secs(ns: i64) -> f64 {
    ns.div_euclid(1_000_000_000) as f64 + ns.rem_euclid(1_000_000_000) as f64 / 1e9
}
