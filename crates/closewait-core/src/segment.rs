//! The decoded TCP segment: the one boundary between "reading bytes" and "understanding TCP".
//!
//! Everything before this point (capture formats, link layers, IP) produces [`Segment`]s;
//! everything after it (connections, states, classification) consumes them and never looks
//! at raw bytes again. A `Segment` is small, owned and `Copy`, so readers can hand them over
//! without borrowing capture buffers.

use std::net::SocketAddr;

/// TCP header flags, as the bits of the TCP header's flags byte (RFC 9293 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    pub fn urg(self) -> bool {
        self.0 & Self::URG != 0
    }
}

impl std::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]", self.wireshark_label())
    }
}

impl TcpFlags {
    /// Wireshark's Info-column spelling: `SYN`, `SYN, ACK`, `FIN, ACK`, `RST`, `PSH, ACK`…
    pub fn wireshark_label(self) -> String {
        let names = [
            (Self::FIN, "FIN"),
            (Self::SYN, "SYN"),
            (Self::RST, "RST"),
            (Self::PSH, "PSH"),
            (Self::ACK, "ACK"),
            (Self::URG, "URG"),
            (Self::ECE, "ECE"),
            (Self::CWR, "CWR"),
        ];
        // Wireshark orders them SYN, FIN, RST, PSH, ACK, URG, ECE, CWR.
        let order = [1usize, 0, 2, 3, 4, 5, 6, 7];
        let parts: Vec<&str> = order
            .iter()
            .filter(|&&i| self.0 & names[i].0 != 0)
            .map(|&i| names[i].1)
            .collect();
        if parts.is_empty() {
            "<None>".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// One TCP segment as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// 1-based frame number in the order the segments were read (after merging several
    /// files), counting every packet of the capture, TCP or not, like Wireshark's
    /// `frame.number`.
    pub frame: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    /// Window scale option (RFC 7323 §2.2), only present on SYN segments that carry it.
    pub window_scale: Option<u8>,
    /// MSS option, if present.
    pub mss: Option<u16>,
    /// TCP timestamps option (TSval, TSecr), if present.
    pub timestamps: Option<(u32, u32)>,
    /// Whether a SACK-permitted option was present (SYN segments).
    pub sack_permitted: bool,
    /// Bytes of TCP payload according to the IP header lengths (not the captured bytes:
    /// a snaplen-truncated packet still has its real payload length here).
    pub payload_len: u32,
    /// Bytes of payload actually present in the capture (≤ `payload_len`).
    pub captured_payload_len: u32,
}

impl Segment {
    /// Sequence space this segment occupies: payload bytes plus one for SYN and one for FIN
    /// (RFC 9293 §3.4: "SEG.LEN = the number of octets occupied by the data in the segment
    /// (counting SYN and FIN)").
    pub fn seg_len(&self) -> u32 {
        self.payload_len
            .wrapping_add(self.flags.syn() as u32)
            .wrapping_add(self.flags.fin() as u32)
    }
}
