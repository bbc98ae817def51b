//! Writing the packets of chosen connections to a new capture (`--write-pcap`), for
//! Wireshark: every packet of each connection, its bytes, timestamp and link type as the
//! input has them.
//!
//! Why a pass of its own: the analysis borrows each packet from the reader's buffer and
//! keeps none, so it cannot write them; keeping them would cost memory per packet of the
//! whole capture. The commands choose connections in a first pass (a filter, a finding),
//! remember each one as its 4-tuple and first and last frame ([`Selection`], a few dozen
//! bytes per connection), and this pass reads the inputs again and copies the frames of
//! those 4-tuples within those frame ranges, stopping after the last one. A connection owns
//! every packet of its 4-tuple between its first and last frame: the flow table has one
//! live connection per 4-tuple, and a reused port pair starts a new connection only after
//! the old one's last packet.
//!
//! What is left out, because the analysis never gave it to the connection: IP fragments
//! after the first of a fragmented segment, and ICMP errors about the connection. What is
//! not copied: pcapng interface names, comments and other per-packet options.
//!
//! The capture written: pcap when every input is pcap of one link type (nanosecond
//! timestamps when any input has them), else pcapng with one interface per link type and
//! nanosecond timestamps ([`StreamHeader`]); see `writer`.

mod writer;

use crate::capture::{CaptureError, InputSpec, PacketStream, StreamHeader};
use crate::decode::decode_frame;
use crate::flow::FlowKey;
use crate::model::ConnectionReport;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;

pub use writer::CaptureWriter;

/// Subframes of one frame looked at (an 802.11 A-MSDU holds several TCP segments), as the
/// capture reader does.
const MAX_SUBFRAMES: u8 = 16;

/// The connections to write: per 4-tuple, the frame ranges of its connections.
#[derive(Debug, Default)]
pub struct Selection {
    flows: HashMap<FlowKey, Vec<(u64, u64)>>,
    connections: u64,
    last_frame: u64,
}

impl Selection {
    /// Adds one connection of a first pass.
    pub fn add(&mut self, r: &ConnectionReport) {
        self.add_frames(r.client, r.server, r.first_frame, r.last_frame);
    }

    /// Adds the connection between `a` and `b` from `first_frame` to `last_frame`.
    pub fn add_frames(&mut self, a: SocketAddr, b: SocketAddr, first_frame: u64, last_frame: u64) {
        self.flows
            .entry(FlowKey::between(&a, &b))
            .or_default()
            .push((first_frame, last_frame));
        self.connections += 1;
        self.last_frame = self.last_frame.max(last_frame);
    }

    /// Connections added.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Whether the packet of `frame` between `a` and `b` belongs to a chosen connection.
    fn holds(&self, a: &SocketAddr, b: &SocketAddr, frame: u64) -> bool {
        self.flows
            .get(&FlowKey::between(a, b))
            .is_some_and(|spans| spans.iter().any(|&(f, l)| (f..=l).contains(&frame)))
    }
}

/// What [`write_connections`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub packets: u64,
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// The inputs' warnings of this pass (damage found on the second read).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("writing the capture: {0}")]
    Write(#[from] std::io::Error),
}

/// Reads `inputs` again (as the first pass read them: same merge, same frame numbers) and
/// writes the packets of the `selection`'s connections to `out`, in the inputs' order.
pub fn write_connections(
    inputs: &[InputSpec],
    selection: &Selection,
    out: &mut dyn Write,
) -> Result<Written, ExportError> {
    let mut stream = PacketStream::open(inputs)?;
    let header = stream.header();
    let mut writer = CaptureWriter::new(out, header)?;
    let mut packets = 0;
    while let Some(p) = stream.next_packet() {
        if p.frame > selection.last_frame {
            break;
        }
        let Some(link_type) = p.link_type else {
            continue;
        };
        if belongs(selection, link_type, p.data, p.orig_len, p.ts_ns, p.frame) {
            writer.packet(link_type, p.ts_ns, p.data, p.orig_len)?;
            packets += 1;
        }
    }
    writer.finish()?;
    Ok(Written {
        packets,
        format: match header {
            StreamHeader::Pcap { .. } => "pcap",
            StreamHeader::PcapNg => "pcapng",
        },
        warnings: stream.warnings().to_vec(),
    })
}

/// Whether a TCP segment of the frame (any subframe) belongs to a chosen connection.
fn belongs(
    selection: &Selection,
    link_type: u32,
    data: &[u8],
    orig_len: u32,
    ts_ns: i64,
    frame: u64,
) -> bool {
    let mut subframe = 0;
    loop {
        let decoded = decode_frame(link_type, data, orig_len, ts_ns, subframe);
        if let Ok(d) = &decoded.outcome {
            if selection.holds(&d.segment.src, &d.segment.dst, frame) {
                return true;
            }
        }
        match decoded.next_subframe {
            Some(next) if next > subframe && next <= MAX_SUBFRAMES => subframe = next,
            _ => return false,
        }
    }
}
