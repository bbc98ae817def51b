//! pcapng files (draft-ietf-opsawg-pcapng): a sequence of blocks `type, length, body,
//! length`, grouped in sections.
//!
//! What matters for closewait:
//! - a Section Header Block (SHB) starts a section, fixes its byte order and **resets the
//!   interface list**; a file may hold several sections (e.g. `cat a.pcapng b.pcapng`);
//! - each Interface Description Block (IDB) declares one interface: its link type, snaplen,
//!   `if_tsresol` (10^-n or 2^-n seconds, default 10^-6) and `if_tsoffset` (seconds added
//!   to every timestamp). Packets of one file may come from interfaces with different
//!   link types and resolutions (`dumpcap -i eth0 -i lo`);
//! - packets come in Enhanced Packet Blocks (interface id, 64-bit timestamp), Simple
//!   Packet Blocks (interface 0, **no timestamp**) or obsolete Packet Blocks (16-bit
//!   interface id);
//! - an Interface Statistics Block (ISB) says when the capture on an interface ended
//!   (`isb_endtime`, written by dumpcap and tshark when they stop): often seconds after the
//!   last packet, so it is the better end of the capture ([`PcapNgReader::statistics_end_ns`]);
//! - every other block (name resolution, secrets, custom) is skipped.
//!
//! Blocks are parsed by hand from their fixed layouts. pcap-parser 0.17's block parsers
//! were considered and not used: its EPB parser allocates an options vector per packet,
//! its IDB option decoding reads `if_tsoffset` as little-endian whatever the section's
//! byte order, and its `build_ts_resolution` rejects every binary (2^-n) resolution
//! (it compares the value *with* the flag bit against 63).

use super::record::{clamp_ts, max_caplen, RawPacket, Stop, HARD_MAX_RECORD};
use super::source::ByteSource;
use super::{Notes, OpenProblem};
use crate::decode::SkipReason;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const PB_OBSOLETE: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const ISB: u32 = 0x0000_0005;
const EPB: u32 = 0x0000_0006;
/// The byte-order magic of a section header, as read in the section's own byte order.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
/// ISB option: the capture's end on the interface, a 64-bit timestamp in the interface's
/// resolution, as two 32-bit halves (high first) like an EPB's. (`isb_starttime`, code 2,
/// says nothing about the end.)
const OPT_ISB_ENDTIME: u16 = 3;

/// Non-packet blocks larger than this are treated as corruption.
const MAX_OTHER_BLOCK: u32 = HARD_MAX_RECORD;

/// Whether these first four bytes are a pcapng Section Header Block.
pub(crate) fn is_pcapng_magic(head: &[u8]) -> bool {
    head.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a][..])
}

/// How to turn an interface's timestamp units into nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// units × n (resolution coarser than a nanosecond, a divisor of 10^9).
    Mul(u64),
    /// units ÷ n (resolution finer than a nanosecond, a multiple of 10^9).
    Div(u64),
    /// units × 10^9 ÷ units-per-second (binary resolutions).
    Ratio(u64),
}

impl TsScale {
    fn from_units_per_second(res: u64) -> TsScale {
        const NS: u64 = 1_000_000_000;
        if res != 0 && NS % res == 0 {
            TsScale::Mul(NS / res)
        } else if res % NS == 0 {
            TsScale::Div(res / NS)
        } else {
            TsScale::Ratio(res)
        }
    }

    fn to_ns(self, units: u64) -> i128 {
        match self {
            TsScale::Mul(m) => i128::from(units) * i128::from(m),
            TsScale::Div(d) => i128::from(units / d),
            TsScale::Ratio(r) => (u128::from(units) * 1_000_000_000 / u128::from(r)) as i128,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    fn ts_ns(&self, high: u32, low: u32) -> i64 {
        let units = (u64::from(high) << 32) | u64::from(low);
        clamp_ts(self.scale.to_ns(units).saturating_add(self.offset_ns))
    }
}

/// An end of capture an Interface Statistics Block states, read in the interface's
/// resolution as the format says, and in microseconds: dumpcap 4.0 (measured, Debian's
/// 4.0.17) writes the ISB times in microseconds even on an interface whose `if_tsresol` is
/// nanoseconds, where the packets are in nanoseconds. Which reading is right is decided
/// against the packets (the end cannot be before the last packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatedEnd {
    pub(crate) ns: i64,
    pub(crate) as_micros_ns: i64,
}

/// An interface in microseconds, for [`StatedEnd::as_micros_ns`].
const MICROS: Interface = Interface {
    link_type: 0,
    snaplen: 0,
    scale: TsScale::Mul(1000),
    offset_ns: 0,
};

#[derive(Debug)]
pub(crate) struct PcapNgReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the previous packet, given to Simple Packet Blocks.
    last_ts_ns: i64,
    warned_spb: bool,
    warned_tsresol: bool,
    warned_interface: bool,
    sections: u32,
    /// The `isb_endtime` of every Interface Statistics Block read so far, each read two
    /// ways (see [`StatedEnd`]).
    statistics_ends: Vec<StatedEnd>,
}

impl PcapNgReader {
    /// Reads the first Section Header Block (the source starts with its magic).
    pub(crate) fn open(src: &mut ByteSource) -> Result<PcapNgReader, OpenProblem> {
        if !src.ensure(12).map_err(OpenProblem::Io)? {
            return Err(OpenProblem::NotACapture(format!(
                "a pcapng file cut short in its first block ({} bytes)",
                src.available()
            )));
        }
        if byte_order(&src.peek()[8..12]).is_none() {
            return Err(OpenProblem::NotACapture(
                "data starting with a pcapng section header magic but no byte-order magic".into(),
            ));
        }
        let mut reader = PcapNgReader {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts_ns: 0,
            warned_spb: false,
            warned_tsresol: false,
            warned_interface: false,
            sections: 0,
            statistics_ends: Vec::new(),
        };
        let mut scratch = Vec::new();
        let mut notes = Notes {
            file: "",
            warnings: &mut scratch,
        };
        match reader.next_block(src, &mut notes) {
            Ok(Some(_)) | Ok(None) => {}
            Err(stop) => {
                return Err(OpenProblem::Corrupt {
                    offset: stop.offset,
                    what: format!("first section header: {}", stop.detail),
                })
            }
        }
        Ok(reader)
    }

    fn u16_at(&self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
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

    /// The next packet, `Ok(None)` at a clean end of file.
    pub(crate) fn next_packet<'s>(
        &mut self,
        src: &'s mut ByteSource,
        notes: &mut Notes<'_>,
    ) -> Result<Option<RawPacket<'s>>, Stop> {
        // Non-packet blocks are consumed inside `next_block`; loop until a packet or the
        // end. Two passes over the borrow: first find out whether the next block is a
        // packet, then take it.
        loop {
            match self.next_block(src, notes)? {
                None => return Ok(None),
                Some(true) => break,
                Some(false) => continue,
            }
        }
        Ok(Some(self.take_packet(src, notes)?))
    }

    /// Reads one block header and validates its length. Non-packet blocks are consumed and
    /// interpreted; for a packet block, the whole block is buffered but left unconsumed and
    /// `Some(true)` is returned.
    fn next_block(
        &mut self,
        src: &mut ByteSource,
        notes: &mut Notes<'_>,
    ) -> Result<Option<bool>, Stop> {
        let offset = src.offset();
        if !src.ensure(8).map_err(|e| Stop::io(offset, &e))? {
            if src.available() == 0 {
                return Ok(None);
            }
            return Err(Stop::truncated(
                offset,
                format!("block header cut short ({} of 8 bytes)", src.available()),
            ));
        }
        // The SHB type reads the same in both byte orders; its byte-order magic, after the
        // length, says how to read the length and everything up to the next SHB.
        if src.peek()[..4] == SHB.to_le_bytes() {
            if !src.ensure(12).map_err(|e| Stop::io(offset, &e))? {
                return Err(Stop::truncated(offset, "section header cut short"));
            }
            match byte_order(&src.peek()[8..12]) {
                Some(big) => self.big_endian = big,
                None => {
                    return Err(Stop::corrupt(
                        offset,
                        "section header without byte-order magic",
                    ))
                }
            }
        }
        let head = src.peek();
        let block_type = self.u32_at(head, 0);
        let block_len = self.u32_at(head, 4);
        if block_len < 12 || block_len % 4 != 0 {
            return Err(Stop::corrupt(
                offset,
                format!("block of type 0x{block_type:08x} with impossible length {block_len}"),
            ));
        }
        let is_packet = matches!(block_type, EPB | SPB | PB_OBSOLETE);
        let limit = if is_packet {
            // Header, data padded to 32 bits, and room for options.
            let snaplen = self.interfaces.iter().map(|i| i.snaplen).max().unwrap_or(0);
            max_caplen(snaplen).saturating_add(32 + 4 + 64 * 1024)
        } else {
            MAX_OTHER_BLOCK
        };
        if block_len > limit {
            return Err(Stop::corrupt(
                offset,
                format!(
                    "block of type 0x{block_type:08x} claims {block_len} bytes (at most {limit} believable)"
                ),
            ));
        }
        let len = block_len as usize;
        if !src.ensure(len).map_err(|e| Stop::io(offset, &e))? {
            return Err(Stop::truncated(
                offset,
                format!(
                    "block of type 0x{block_type:08x} cut short ({} of {block_len} bytes)",
                    src.available()
                ),
            ));
        }
        let block = &src.peek()[..len];
        let trailer = self.u32_at(block, len - 4);
        if trailer != block_len {
            return Err(Stop::corrupt(
                offset,
                format!(
                    "block of type 0x{block_type:08x}: trailing length {trailer} differs from leading length {block_len}"
                ),
            ));
        }
        if is_packet {
            return Ok(Some(true));
        }
        match block_type {
            SHB => {
                // Version 1.x; the section length (which may be -1) is not needed.
                if len < 28 {
                    return Err(Stop::corrupt(
                        offset,
                        "section header shorter than 28 bytes",
                    ));
                }
                let major = self.u16_at(block, 12);
                if major != 1 {
                    return Err(Stop::corrupt(
                        offset,
                        format!("unsupported pcapng version {major}"),
                    ));
                }
                self.interfaces.clear();
                self.sections += 1;
            }
            IDB => {
                if len < 20 {
                    return Err(Stop::corrupt(
                        offset,
                        "interface description shorter than 20 bytes",
                    ));
                }
                let iface = self.parse_idb(block, notes);
                self.interfaces.push(iface);
            }
            ISB if len >= 24 => {
                if let Some(end) = self.parse_isb(block) {
                    self.statistics_ends.push(end);
                }
            }
            _ => {}
        }
        src.take(len);
        Ok(Some(false))
    }

    /// The ends of capture the Interface Statistics Blocks of the file stated
    /// (`isb_endtime`), once the file has been read to its end (dumpcap writes them last).
    pub(crate) fn statistics_ends(&self) -> &[StatedEnd] {
        &self.statistics_ends
    }

    /// Interface Statistics Block: interface id, timestamp (high, low), options. The end
    /// of the capture is `isb_endtime`; without it (an ISB taken during the capture), the
    /// block's own timestamp, which is when the statistics were taken. `None` for an
    /// undeclared interface.
    fn parse_isb(&self, block: &[u8]) -> Option<StatedEnd> {
        let iface = self.interfaces.get(self.u32_at(block, 8) as usize)?;
        let both = |high: u32, low: u32| StatedEnd {
            ns: iface.ts_ns(high, low),
            as_micros_ns: MICROS.ts_ns(high, low),
        };
        let taken = both(self.u32_at(block, 12), self.u32_at(block, 16));
        let mut end = None;
        self.each_option(&block[20..block.len() - 4], |code, value| {
            if code == OPT_ISB_ENDTIME && value.len() == 8 {
                end = Some(both(self.u32_at(value, 0), self.u32_at(value, 4)));
            }
        });
        Some(end.unwrap_or(taken))
    }

    /// Calls `f` with each option's code and value, up to `opt_endofopt` or the first
    /// option that overruns the block. Values are padded to 32 bits.
    fn each_option(&self, options: &[u8], mut f: impl FnMut(u16, &[u8])) {
        let mut at = 0usize;
        while at + 4 <= options.len() {
            let code = self.u16_at(options, at);
            let olen = usize::from(self.u16_at(options, at + 2));
            let value_at = at + 4;
            let Some(value) = options.get(value_at..value_at + olen) else {
                break;
            };
            if code == OPT_ENDOFOPT {
                break;
            }
            f(code, value);
            at = value_at + olen.div_ceil(4) * 4;
        }
    }

    /// Interface Description Block: link type (u16), reserved, snaplen, options.
    fn parse_idb(&mut self, block: &[u8], notes: &mut Notes<'_>) -> Interface {
        let link_type = u32::from(self.u16_at(block, 8));
        let snaplen = self.u32_at(block, 12);
        let mut tsresol: u8 = 6;
        let mut offset_s: i64 = 0;
        let big_endian = self.big_endian;
        self.each_option(&block[16..block.len() - 4], |code, value| match code {
            OPT_IF_TSRESOL if !value.is_empty() => tsresol = value[0],
            OPT_IF_TSOFFSET if value.len() >= 8 => {
                let v = [
                    value[0], value[1], value[2], value[3], value[4], value[5], value[6], value[7],
                ];
                offset_s = if big_endian {
                    i64::from_be_bytes(v)
                } else {
                    i64::from_le_bytes(v)
                };
            }
            _ => {}
        });
        let res = match ts_units_per_second(tsresol) {
            Some(r) => r,
            None => {
                if !self.warned_tsresol {
                    self.warned_tsresol = true;
                    notes.warn(format_args!(
                        "interface with invalid if_tsresol {tsresol:#04x}; microseconds assumed"
                    ));
                }
                1_000_000
            }
        };
        Interface {
            link_type,
            snaplen,
            scale: TsScale::from_units_per_second(res),
            offset_ns: i128::from(offset_s) * 1_000_000_000,
        }
    }

    /// Consumes the packet block `next_block` left buffered and returns its packet.
    fn take_packet<'s>(
        &mut self,
        src: &'s mut ByteSource,
        notes: &mut Notes<'_>,
    ) -> Result<RawPacket<'s>, Stop> {
        let offset = src.offset();
        let head = src.peek();
        let block_type = self.u32_at(head, 0);
        let len = self.u32_at(head, 4) as usize;
        let body_end = len - 4;
        let (iface_id, ts, caplen, orig_len, data_at) = match block_type {
            EPB | PB_OBSOLETE => {
                if len < 32 {
                    return Err(Stop::corrupt(offset, "packet block shorter than 32 bytes"));
                }
                let iface_id = if block_type == EPB {
                    self.u32_at(head, 8)
                } else {
                    u32::from(self.u16_at(head, 8))
                };
                let high = self.u32_at(head, 12);
                let low = self.u32_at(head, 16);
                let caplen = self.u32_at(head, 20);
                let orig_len = self.u32_at(head, 24);
                if 28 + caplen as usize > body_end {
                    return Err(Stop::corrupt(
                        offset,
                        format!(
                            "packet block claims {caplen} captured bytes but holds {}",
                            body_end - 28
                        ),
                    ));
                }
                (iface_id, Some((high, low)), caplen, orig_len, 28)
            }
            _ => {
                // Simple Packet Block: original length, then data up to the trailer; the
                // captured length is the smaller of the two.
                if len < 16 {
                    return Err(Stop::corrupt(
                        offset,
                        "simple packet block shorter than 16 bytes",
                    ));
                }
                let orig_len = self.u32_at(head, 8);
                let caplen = orig_len.min((body_end - 12) as u32);
                (0, None, caplen, orig_len, 12)
            }
        };
        let Some(iface) = self.interfaces.get(iface_id as usize).copied() else {
            // The block itself is sound (its lengths agree): skip its packet, counted, and
            // read on.
            if !self.warned_interface {
                self.warned_interface = true;
                notes.warn(format_args!(
                    "packet block at byte offset {offset} on interface {iface_id}, but the \
                     section declares {} interface(s); such packets are counted as skipped \
                     (unknown_interface)",
                    self.interfaces.len()
                ));
            }
            src.take(len);
            return Ok(RawPacket {
                ts_ns: self.last_ts_ns,
                link_type: 0,
                data: &[],
                orig_len: 0,
                skip: Some(SkipReason::UnknownInterface),
            });
        };
        let ts_ns = match ts {
            Some((high, low)) => iface.ts_ns(high, low),
            None => {
                if !self.warned_spb {
                    self.warned_spb = true;
                    notes.warn(format_args!(
                        "Simple Packet Blocks carry no timestamp; they were given the previous packet's time"
                    ));
                }
                self.last_ts_ns
            }
        };
        self.last_ts_ns = ts_ns;
        let block = src.take(len);
        let data = &block[data_at..data_at + caplen as usize];
        Ok(RawPacket {
            ts_ns,
            link_type: iface.link_type,
            data,
            orig_len: orig_len.max(caplen),
            skip: None,
        })
    }
}

/// `if_tsresol`: with the top bit clear, units of 10^-n s; set, 2^-n s. `None` when the
/// resolution does not fit in 64 bits.
fn ts_units_per_second(tsresol: u8) -> Option<u64> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

/// `Some(big_endian)` for a valid byte-order magic.
fn byte_order(b: &[u8]) -> Option<bool> {
    let v = [b[0], b[1], b[2], b[3]];
    if u32::from_le_bytes(v) == BYTE_ORDER_MAGIC {
        Some(false)
    } else if u32::from_be_bytes(v) == BYTE_ORDER_MAGIC {
        Some(true)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_decimal_and_binary() {
        assert_eq!(ts_units_per_second(6), Some(1_000_000));
        assert_eq!(ts_units_per_second(9), Some(1_000_000_000));
        assert_eq!(ts_units_per_second(0), Some(1));
        assert_eq!(ts_units_per_second(0x80 | 10), Some(1024));
        assert_eq!(ts_units_per_second(0x80 | 63), Some(1 << 63));
        assert_eq!(ts_units_per_second(20), None);
        assert_eq!(ts_units_per_second(0x80 | 64), None);
    }

    #[test]
    fn timestamp_scales() {
        assert_eq!(
            TsScale::from_units_per_second(1_000_000),
            TsScale::Mul(1000)
        );
        assert_eq!(
            TsScale::from_units_per_second(1_000_000_000),
            TsScale::Mul(1)
        );
        assert_eq!(
            TsScale::from_units_per_second(1_000_000_000_000),
            TsScale::Div(1000)
        );
        // 2^-10 s: 1 unit = 976562.5 ns.
        let s = TsScale::from_units_per_second(1024);
        assert_eq!(s, TsScale::Ratio(1024));
        assert_eq!(s.to_ns(1024), 1_000_000_000);
        assert_eq!(s.to_ns(1), 976_562);
    }
}
