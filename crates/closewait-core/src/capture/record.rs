//! What format readers hand to the file reader: one captured packet, borrowed from the
//! [`ByteSource`](super::source::ByteSource) buffer, or the reason reading must stop.

/// One packet record, borrowed from the source buffer.
#[derive(Debug)]
pub(crate) struct RawPacket<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    pub link_type: u32,
    /// The captured bytes (at most the snaplen).
    pub data: &'a [u8],
    /// The length on the wire (never below `data.len()`).
    pub orig_len: u32,
    /// The record is readable but its packet cannot be decoded (counted under this
    /// reason and skipped).
    pub skip: Option<crate::decode::SkipReason>,
}

/// Why a format reader stopped in the middle of a file. Everything read before stays.
#[derive(Debug)]
pub(crate) struct Stop {
    /// Stream offset (in decompressed bytes for gzip files) of the record that failed.
    pub offset: u64,
    pub kind: StopKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopKind {
    /// The stream ended inside a record (tcpdump killed, file still being written,
    /// download cut short).
    Truncated,
    /// A record that cannot be right (absurd length, mismatched trailer…).
    Corrupt,
    /// The operating system or the decompressor reported an error.
    Io,
}

impl Stop {
    pub(crate) fn truncated(offset: u64, detail: impl Into<String>) -> Stop {
        Stop {
            offset,
            kind: StopKind::Truncated,
            detail: detail.into(),
        }
    }
    pub(crate) fn corrupt(offset: u64, detail: impl Into<String>) -> Stop {
        Stop {
            offset,
            kind: StopKind::Corrupt,
            detail: detail.into(),
        }
    }
    pub(crate) fn io(offset: u64, err: &std::io::Error) -> Stop {
        Stop {
            offset,
            kind: StopKind::Io,
            detail: err.to_string(),
        }
    }
}

/// Warnings a format reader wants to give once per file (Simple Packet Blocks without
/// timestamps, odd timestamp resolutions…).
pub(crate) struct Notes<'a> {
    pub file: &'a str,
    pub warnings: &'a mut Vec<String>,
}

impl Notes<'_> {
    pub(crate) fn warn(&mut self, msg: std::fmt::Arguments<'_>) {
        self.warnings.push(format!("{}: {}", self.file, msg));
    }
}

/// Records longer than this are treated as corruption rather than allocated, unless the
/// file's snaplen announces larger ones (then up to [`HARD_MAX_RECORD`]). 256 KiB is
/// tcpdump's and Wireshark's default snaplen (`MAXIMUM_SNAPLEN`).
pub(crate) const MAX_RECORD: u32 = 256 * 1024;
/// No record is ever read above this, whatever the header says.
pub(crate) const HARD_MAX_RECORD: u32 = 16 * 1024 * 1024;

/// Largest believable captured length for a file or interface with this snaplen
/// (Wireshark's rule: above max(snaplen, 256 KiB) a record is corrupt).
pub(crate) fn max_caplen(snaplen: u32) -> u32 {
    MAX_RECORD.max(snaplen.min(HARD_MAX_RECORD))
}

/// Latest timestamp handed out: 2^62 ns after the epoch (year 2116, beyond any pcap's
/// 32-bit seconds). Timestamps are clamped to `0..=MAX_TS_NS`, so the difference of any
/// two of them, and a timestamp plus any timer of the analysis, fit in an `i64`: a hostile
/// pcapng timestamp cannot overflow a duration downstream.
pub(crate) const MAX_TS_NS: i64 = 1 << 62;

/// Clamps a timestamp into `0..=MAX_TS_NS` (see there).
pub(crate) fn clamp_ts(ns: i128) -> i64 {
    ns.clamp(0, i128::from(MAX_TS_NS)) as i64
}

/// Nanoseconds since the epoch from whole seconds and nanoseconds, clamped (see
/// [`MAX_TS_NS`]).
pub(crate) fn ts_from_parts(secs: i64, nanos: i64) -> i64 {
    clamp_ts(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}
