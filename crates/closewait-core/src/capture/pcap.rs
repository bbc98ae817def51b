//! Classic libpcap files: a 24-byte global header, then 16-byte record headers each
//! followed by the captured bytes.
//!
//! Four magics are recognised (pcap-parser's `parse_pcap_header` reads the global header):
//! microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) timestamps, each in either byte
//! order, plus Kuznetzov's "modified" format (0xa1b2cd34, 24-byte record headers). In a
//! nanosecond file the second timestamp field, named `ts_usec` everywhere, holds
//! nanoseconds.
//!
//! Records are parsed here by hand (four u32s) so the hot path allocates nothing and every
//! problem has an exact byte offset.

use super::record::{max_caplen, ts_from_parts, RawPacket, Stop};
use super::source::ByteSource;
use super::OpenProblem;
use pcap_parser::pcap::parse_pcap_header;

/// Length of the global header.
const HEADER_LEN: usize = 24;

/// Whether these first four bytes are a classic pcap magic.
pub(crate) fn is_pcap_magic(head: &[u8]) -> bool {
    matches!(
        head.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x34, 0xcd, 0xb2, 0xa1]
        )
    )
}

#[derive(Debug)]
pub(crate) struct PcapReader {
    big_endian: bool,
    nanosecond: bool,
    record_header_len: usize,
    link_type: u32,
    snaplen: u32,
}

impl PcapReader {
    /// Reads the global header (the source starts with a pcap magic).
    pub(crate) fn open(src: &mut ByteSource) -> Result<PcapReader, OpenProblem> {
        if !src.ensure(HEADER_LEN).map_err(OpenProblem::Io)? {
            return Err(OpenProblem::NotACapture(format!(
                "a pcap file cut short in its header ({} of {HEADER_LEN} bytes)",
                src.available()
            )));
        }
        let header = match parse_pcap_header(&src.peek()[..HEADER_LEN]) {
            Ok((_, h)) => h,
            Err(_) => {
                return Err(OpenProblem::NotACapture(
                    "data starting with a pcap magic but no readable pcap header".into(),
                ))
            }
        };
        if header.version_major != 2 {
            return Err(OpenProblem::Corrupt {
                offset: 4,
                what: format!(
                    "unsupported pcap version {}.{} (expected 2.4)",
                    header.version_major, header.version_minor
                ),
            });
        }
        src.take(HEADER_LEN);
        Ok(PcapReader {
            big_endian: header.is_bigendian(),
            nanosecond: header.is_nanosecond_precision(),
            record_header_len: if header.is_modified_format() { 24 } else { 16 },
            // The upper bits of the field carry FCS information (pcap spec §"LinkType"):
            // the link type proper is the low 16 bits.
            link_type: (header.network.0 as u32) & 0xffff,
            snaplen: header.snaplen,
        })
    }

    /// The file's link type (the low 16 bits of the header's field).
    pub(crate) fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Whether the file's timestamps are in nanoseconds.
    pub(crate) fn nanosecond(&self) -> bool {
        self.nanosecond
    }

    pub(crate) fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The four fields every record header starts with: seconds, fraction, captured
    /// length, length on the wire.
    fn record_header(&self, head: &[u8]) -> [u32; 4] {
        let field = |at: usize| [head[at], head[at + 1], head[at + 2], head[at + 3]];
        let fields = [field(0), field(4), field(8), field(12)];
        if self.big_endian {
            fields.map(u32::from_be_bytes)
        } else {
            fields.map(u32::from_le_bytes)
        }
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// Nanoseconds since the epoch of a record's two timestamp fields.
    fn ts_ns(&self, ts_sec: u32, ts_frac: u32) -> i64 {
        let frac_ns = if self.nanosecond {
            i64::from(ts_frac)
        } else {
            i64::from(ts_frac) * 1000
        };
        // 32-bit seconds and fraction cannot leave the range `ts_from_parts` clamps to:
        // (2^32 − 1) × 10^9 + (2^32 − 1) × 1000 < 2^62.
        let ns = i64::from(ts_sec) * 1_000_000_000 + frac_ns;
        debug_assert_eq!(ns, ts_from_parts(i64::from(ts_sec), frac_ns));
        ns
    }

    /// The next record, `Ok(None)` at a clean end of file.
    pub(crate) fn next_packet<'s>(
        &mut self,
        src: &'s mut ByteSource,
    ) -> Result<Option<RawPacket<'s>>, Stop> {
        let hlen = self.record_header_len;
        let limit = max_caplen(self.snaplen);
        // Fast path: the whole record is already buffered and believable.
        let buffered = src.peek();
        if let Some(head) = buffered.get(..16) {
            let [ts_sec, ts_frac, caplen, orig_len] = self.record_header(head);
            let total = hlen + caplen as usize;
            if caplen <= limit && buffered.len() >= total {
                let ts_ns = self.ts_ns(ts_sec, ts_frac);
                let record = src.take(total);
                return Ok(Some(RawPacket {
                    ts_ns,
                    link_type: self.link_type,
                    data: &record[hlen..],
                    orig_len: orig_len.max(caplen),
                    skip: None,
                }));
            }
        }
        let offset = src.offset();
        if !src.ensure(hlen).map_err(|e| Stop::io(offset, &e))? {
            if src.available() == 0 {
                return Ok(None);
            }
            return Err(Stop::truncated(
                offset,
                format!(
                    "record header cut short ({} of {hlen} bytes)",
                    src.available()
                ),
            ));
        }
        let head = src.peek();
        let ts_sec = self.u32_at(head, 0);
        let ts_frac = self.u32_at(head, 4);
        let caplen = self.u32_at(head, 8);
        let orig_len = self.u32_at(head, 12);
        if caplen > limit {
            return Err(Stop::corrupt(
                offset,
                format!(
                    "record claims {caplen} captured bytes (snaplen {}, at most {limit} believable)",
                    self.snaplen
                ),
            ));
        }
        let total = hlen + caplen as usize;
        if !src.ensure(total).map_err(|e| Stop::io(offset, &e))? {
            return Err(Stop::truncated(
                offset,
                format!(
                    "record data cut short ({} of {caplen} bytes)",
                    src.available().saturating_sub(hlen)
                ),
            ));
        }
        let ts_ns = self.ts_ns(ts_sec, ts_frac);
        let record = src.take(total);
        Ok(Some(RawPacket {
            ts_ns,
            link_type: self.link_type,
            data: &record[hlen..],
            orig_len: orig_len.max(caplen),
            skip: None,
        }))
    }
}
