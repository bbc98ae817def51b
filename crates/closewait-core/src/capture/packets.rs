//! The packets of the inputs as they are in the files, undecoded, in the merged order and
//! with the frame numbers [`super::SegmentStream`] gives them: for copying chosen packets
//! into a new capture (`--write-pcap`), byte for byte.
//!
//! It reads the files with the same readers, the same merge and the same numbering (one
//! frame per record, skipped or not), so a frame number from an analysis names the same
//! packet here. Each record is copied out of the reader's buffer (into one reused buffer
//! for a single input; one per input waiting in the merge otherwise): this pass copies what
//! the analysis only borrows, and is for the few connections someone chose to export.

use super::file::{CopiedRecord, FileReader, InputHeader};
use super::merge::Merge;
use super::{open_files, CaptureError, FileStats, InputSpec};

/// One packet, borrowed from the stream until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// 1-based, over the merged inputs (as `SegmentStream` and Wireshark count).
    pub frame: u64,
    /// Nanoseconds since the epoch.
    pub ts_ns: i64,
    /// `None` for a pcapng packet on an interface the file never declared.
    pub link_type: Option<u32>,
    /// The captured bytes, as in the file.
    pub data: &'a [u8],
    /// The length on the wire.
    pub orig_len: u32,
}

/// What a capture holding packets of these inputs should be, to keep what they say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamHeader {
    /// Every input is a classic pcap file of this one link type: a pcap file, in
    /// nanoseconds if any input is, with the largest snaplen.
    Pcap {
        link_type: u32,
        nanosecond: bool,
        snaplen: u32,
    },
    /// A pcapng input, or pcap inputs of different link types: pcapng, which has a link
    /// type per interface and nanosecond timestamps.
    PcapNg,
}

/// The records of one or more inputs, merged in timestamp order.
pub struct PacketStream {
    files: Vec<FileReader>,
    stats: Vec<FileStats>,
    warnings: Vec<String>,
    merge: Merge<CopiedRecord>,
    current: CopiedRecord,
    frame: u64,
    header: StreamHeader,
}

impl PacketStream {
    /// Opens every input and reads its header, as [`super::SegmentStream::open`] does.
    pub fn open(inputs: &[InputSpec]) -> Result<PacketStream, CaptureError> {
        let (files, stats) = open_files(inputs, true)?;
        let header = stream_header(files.iter().map(FileReader::header));
        Ok(PacketStream {
            merge: Merge::new(files.len()),
            files,
            stats,
            warnings: Vec::new(),
            current: CopiedRecord::default(),
            frame: 0,
            header,
        })
    }

    /// What a capture of these inputs' packets should be.
    pub fn header(&self) -> StreamHeader {
        self.header
    }

    /// The next packet in merged order; `None` when every input is finished (or stopped at
    /// damage, with a warning).
    pub fn next_packet(&mut self) -> Option<Packet<'_>> {
        let (stats, warnings) = (&mut self.stats, &mut self.warnings);
        if self.files.len() == 1 {
            if !self.files[0].next_copy(&mut stats[0], warnings, &mut self.current) {
                return None;
            }
        } else {
            let files = &mut self.files;
            self.current = self.merge.next(
                |i| {
                    let mut record = CopiedRecord::default();
                    files[i]
                        .next_copy(&mut stats[i], warnings, &mut record)
                        .then_some(record)
                },
                |record| record.ts_ns,
            )?;
        }
        self.frame += 1;
        let r = &self.current;
        Some(Packet {
            frame: self.frame,
            ts_ns: r.ts_ns,
            link_type: r.placed.then_some(r.link_type),
            data: &r.data,
            orig_len: r.orig_len,
        })
    }

    /// The warnings of the read (files cut short or corrupt, with their byte offsets).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// pcap when every input is pcap of one link type, else pcapng.
fn stream_header(inputs: impl Iterator<Item = InputHeader>) -> StreamHeader {
    let mut out: Option<StreamHeader> = None;
    for input in inputs {
        out = Some(match (out, input) {
            (
                None,
                InputHeader::Pcap {
                    link_type,
                    nanosecond,
                    snaplen,
                },
            ) => StreamHeader::Pcap {
                link_type,
                nanosecond,
                snaplen,
            },
            (
                Some(StreamHeader::Pcap {
                    link_type,
                    nanosecond,
                    snaplen,
                }),
                InputHeader::Pcap {
                    link_type: lt,
                    nanosecond: ns,
                    snaplen: len,
                },
            ) if lt == link_type => StreamHeader::Pcap {
                link_type,
                nanosecond: nanosecond || ns,
                snaplen: snaplen.max(len),
            },
            _ => StreamHeader::PcapNg,
        });
    }
    out.unwrap_or(StreamHeader::PcapNg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(link_type: u32, nanosecond: bool, snaplen: u32) -> InputHeader {
        InputHeader::Pcap {
            link_type,
            nanosecond,
            snaplen,
        }
    }

    #[test]
    fn pcap_inputs_of_one_link_type_give_pcap_in_the_finer_resolution() {
        let h = stream_header([pcap(1, false, 65535), pcap(1, true, 262144)].into_iter());
        assert_eq!(
            h,
            StreamHeader::Pcap {
                link_type: 1,
                nanosecond: true,
                snaplen: 262144
            }
        );
    }

    #[test]
    fn mixed_link_types_or_any_pcapng_give_pcapng() {
        let mixed = [pcap(1, false, 65535), pcap(113, false, 65535)];
        assert_eq!(stream_header(mixed.into_iter()), StreamHeader::PcapNg);
        let ng = [pcap(1, false, 65535), InputHeader::PcapNg];
        assert_eq!(stream_header(ng.into_iter()), StreamHeader::PcapNg);
    }
}
