//! The capture formats written, by hand from their specifications (a few fixed layouts;
//! the format readers' crate, pcap-parser, reads and does not write them).
//!
//! - pcap (draft-ietf-opsawg-pcap): a 24-byte header (magic `0xa1b2c3d4` for microsecond
//!   timestamps, `0xa1b23c4d` for nanoseconds; version 2.4; snaplen; link type), then per
//!   packet a 16-byte record header (seconds, fraction, captured length, length on the
//!   wire) and the bytes. Written little-endian.
//! - pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, an Interface Description
//!   Block per link type (written before the first packet that uses it, as §4.2 allows:
//!   "an IDB MUST be placed before any block that references it"), `if_tsresol` 9
//!   (nanoseconds), then an Enhanced Packet Block per packet, its data padded to 32 bits.

use crate::capture::StreamHeader;
use std::io::{self, Write};

/// Writes packets to `out` in the format `header` says.
pub struct CaptureWriter<'w> {
    out: io::BufWriter<&'w mut dyn Write>,
    header: StreamHeader,
    /// pcapng: the interface of each link type, in the order declared.
    interfaces: Vec<u32>,
}

impl<'w> CaptureWriter<'w> {
    /// Writes the file header (pcap's, or pcapng's Section Header Block).
    pub fn new(out: &'w mut dyn Write, header: StreamHeader) -> io::Result<CaptureWriter<'w>> {
        let mut w = CaptureWriter {
            out: io::BufWriter::with_capacity(256 * 1024, out),
            header,
            interfaces: Vec::new(),
        };
        match header {
            StreamHeader::Pcap {
                link_type,
                nanosecond,
                snaplen,
            } => {
                let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
                w.u32(magic)?;
                w.u16(2)?;
                w.u16(4)?;
                w.u32(0)?; // thiszone
                w.u32(0)?; // sigfigs
                w.u32(snaplen)?;
                w.u32(link_type)?;
            }
            StreamHeader::PcapNg => {
                w.u32(0x0A0D_0D0A)?;
                w.u32(28)?;
                w.u32(0x1A2B_3C4D)?; // byte-order magic
                w.u16(1)?;
                w.u16(0)?;
                w.out.write_all(&u64::MAX.to_le_bytes())?; // section length: not given
                w.u32(28)?;
            }
        }
        Ok(w)
    }

    /// Writes one packet. In a pcap file `link_type` is the file's.
    pub fn packet(
        &mut self,
        link_type: u32,
        ts_ns: i64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let ts = u64::try_from(ts_ns).unwrap_or(0);
        let caplen = u32::try_from(data.len()).map_err(|_| io::Error::other("packet too large"))?;
        match self.header {
            StreamHeader::Pcap { nanosecond, .. } => {
                let (secs, frac) = (ts / 1_000_000_000, ts % 1_000_000_000);
                let frac = if nanosecond { frac } else { frac / 1000 };
                self.u32(secs as u32)?;
                self.u32(frac as u32)?;
                self.u32(caplen)?;
                self.u32(orig_len.max(caplen))?;
                self.out.write_all(data)
            }
            StreamHeader::PcapNg => {
                let interface = self.interface(link_type)?;
                let padded = data.len().div_ceil(4) * 4;
                let total = 32 + padded as u32;
                self.u32(6)?;
                self.u32(total)?;
                self.u32(interface)?;
                self.u32((ts >> 32) as u32)?;
                self.u32(ts as u32)?;
                self.u32(caplen)?;
                self.u32(orig_len.max(caplen))?;
                self.out.write_all(data)?;
                self.out.write_all(&[0; 3][..padded - data.len()])?;
                self.u32(total)
            }
        }
    }

    /// Flushes what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The pcapng interface of `link_type`, declared (an IDB) the first time.
    fn interface(&mut self, link_type: u32) -> io::Result<u32> {
        if let Some(i) = self.interfaces.iter().position(|&l| l == link_type) {
            return Ok(i as u32);
        }
        self.u32(1)?;
        self.u32(32)?;
        self.u16(link_type as u16)?;
        self.u16(0)?; // reserved
        self.u32(0)?; // snaplen: no limit
        self.u16(9)?; // if_tsresol
        self.u16(1)?;
        self.out.write_all(&[9, 0, 0, 0])?; // 10^-9 s, padded
        self.u32(0)?; // opt_endofopt
        self.u32(32)?;
        self.interfaces.push(link_type);
        Ok(self.interfaces.len() as u32 - 1)
    }

    fn u16(&mut self, v: u16) -> io::Result<()> {
        self.out.write_all(&v.to_le_bytes())
    }

    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.out.write_all(&v.to_le_bytes())
    }
}
