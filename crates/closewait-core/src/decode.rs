//! Packet decoding: one captured frame → one [`Segment`], or the reason it is not one.
//!
//! This is the only place that knows link layers, IP and TCP header layouts. It works on
//! headers only: captures taken with a small snaplen (`tcpdump -s 96`) still decode, and
//! the segment's `payload_len` comes from the IP length fields, never from the number of
//! captured bytes (which would turn every truncated data segment into a zero-length one and
//! put every later FIN at the wrong sequence number).
//!
//! The link layer (Ethernet + VLAN/QinQ, MPLS, PPPoE, PBB, VN-Tag, FabricPath, Linux
//! cooked SLL/SLL2, BSD
//! null/loop, raw IP) is walked by hand — a few fixed layouts; IP (with IPv6 extension
//! headers) and TCP are sliced by etherparse's lax slicer, which tolerates a payload cut
//! short by the snaplen. Nothing here allocates: the result is a `Copy` value.
//!
//! Tunnels (IP in IP, GRE, ERSPAN, Aruba's 802.11 in GRE, VXLAN, Geneve, GTP-U, AYIYA,
//! Teredo, GRE in UDP) are opened in `decode/tunnel.rs`: the segment is the innermost TCP one,
//! with the inner addresses, as Zeek and Wireshark report it. At most
//! [`MAX_TUNNEL_DEPTH`] tunnels are opened around one segment.

use crate::segment::{Segment, TcpFlags};
use etherparse::err::ip::LaxHeaderSliceError;
use etherparse::err::packet::SliceError;
use etherparse::{
    ip_number, IpNumber, LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TcpOptionsIterator,
    TransportSlice,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

mod tunnel;
use tunnel::{Inner, Subframes, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6};
pub use tunnel::{TunnelKind, Tunnels, MAX_TUNNEL_DEPTH};

/// Link-layer header types (the `LINKTYPE_*` values of pcap and pcapng headers) that
/// closewait decodes.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the *writer's* byte order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as some BSDs numbered it in old files.
    pub const RAW_BSD12: u32 = 12;
    /// `DLT_RAW` on OpenBSD.
    pub const RAW_BSD14: u32 = 14;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family, big-endian.
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// The tcpdump/libpcap name of a link type (`EN10MB`, `LINUX_SLL2`, …), for statistics and
/// messages. `None` for numbers closewait has no name for.
pub fn link_type_name(link_type: u32) -> Option<&'static str> {
    Some(match link_type {
        linktype::NULL => "NULL",
        linktype::ETHERNET => "EN10MB",
        linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => "RAW",
        linktype::LOOP => "LOOP",
        linktype::LINUX_SLL => "LINUX_SLL",
        linktype::IPV4 => "IPV4",
        linktype::IPV6 => "IPV6",
        linktype::LINUX_SLL2 => "LINUX_SLL2",
        // Not decoded, but common enough to deserve a readable name in warnings.
        6 => "IEEE802",
        9 => "PPP",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        119 => "IEEE802_11_PRISM",
        127 => "IEEE802_11_RADIOTAP",
        187 => "BLUETOOTH_HCI_H4",
        189 => "USB_LINUX",
        192 => "PPI",
        195 => "IEEE802_15_4_WITHFCS",
        220 => "USB_LINUX_MMAPPED",
        239 => "NFLOG",
        249 => "USBPCAP",
        252 => "WIRESHARK_UPPER_PDU",
        253 => "NETLINK",
        _ => return None,
    })
}

/// Whether [`decode_packet`] understands this link type.
pub fn is_supported_link_type(link_type: u32) -> bool {
    matches!(
        link_type,
        linktype::NULL
            | linktype::ETHERNET
            | linktype::RAW_BSD12
            | linktype::RAW_BSD14
            | linktype::RAW
            | linktype::LOOP
            | linktype::LINUX_SLL
            | linktype::IPV4
            | linktype::IPV6
            | linktype::LINUX_SLL2
    )
}

/// Why a packet produced no segment. The `as_str` spellings are the keys of
/// `capture.packets.skipped` in the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A link type closewait does not decode (802.11, USB, …).
    UnsupportedLinkType,
    /// Not IPv4/IPv6 (ARP, LLDP, STP, an MPLS pseudowire…).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ESP…).
    NotTcp,
    /// A non-first IP fragment: it carries no TCP header.
    IpFragment,
    /// The capture cut the packet before the end of its IP or TCP header.
    TruncatedHeader,
    /// An IP header that makes no sense (bad version, header length…).
    BadIpHeader,
    /// A TCP header that makes no sense (data offset below 5 words).
    BadTcpHeader,
    /// More than [`MAX_TUNNEL_DEPTH`] tunnels nested around the packet.
    TunnelTooDeep,
    /// A pcapng packet on an interface its section never declared (a corrupt interface
    /// id): its link type and time base are unknown, so it cannot be decoded.
    UnknownInterface,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
            SkipReason::NotIp => "not_ip",
            SkipReason::NotTcp => "not_tcp",
            SkipReason::IpFragment => "ip_fragment",
            SkipReason::TruncatedHeader => "truncated_header",
            SkipReason::BadIpHeader => "bad_ip_header",
            SkipReason::BadTcpHeader => "bad_tcp_header",
            SkipReason::TunnelTooDeep => "tunnel_too_deep",
            SkipReason::UnknownInterface => "unknown_interface",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded TCP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The segment, with `frame` left at 0: frame numbers belong to the capture reader,
    /// which knows the merged order.
    pub segment: Segment,
    /// The segment was the first fragment of a fragmented IP datagram: its `payload_len`
    /// only covers that fragment (closewait does not reassemble IP).
    pub first_fragment: bool,
    /// The segment was found in a tunnel whose outer IP datagram was fragmented, in the
    /// frame holding the first fragment: its lengths come from the inner headers, the
    /// bytes in the other fragments are not read (closewait does not reassemble IP).
    pub tunnel_fragment: bool,
    /// The tunnels the segment was found in, outermost first; empty for plain traffic.
    pub tunnels: Tunnels,
    /// Where the TCP payload starts in the frame's bytes: the segment's captured payload
    /// is [`Decoded::payload`] of that frame.
    pub payload_start: u32,
}

impl Decoded {
    /// A placeholder to decode into ([`decode_frame_into`]): an empty segment between
    /// unspecified addresses, at time 0.
    pub fn empty() -> Decoded {
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        Decoded {
            segment: Segment {
                ts_ns: 0,
                frame: 0,
                src: unspecified,
                dst: unspecified,
                seq: 0,
                ack: 0,
                flags: TcpFlags(0),
                window: 0,
                window_scale: None,
                mss: None,
                timestamps: None,
                sack_permitted: false,
                payload_len: 0,
                captured_payload_len: 0,
            },
            first_fragment: false,
            tunnel_fragment: false,
            tunnels: Tunnels::default(),
            payload_start: 0,
        }
    }

    /// The captured payload bytes of the segment, out of the frame it was decoded from
    /// (`frame` must be that frame's bytes). Shorter than `captured_payload_len` only for
    /// a segment whose outer tunnel datagram is fragmented: the rest is in other frames.
    pub fn payload<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        let start = (self.payload_start as usize).min(frame.len());
        let rest = &frame[start..];
        &rest[..rest.len().min(self.segment.captured_payload_len as usize)]
    }
}

/// One frame decoded by [`decode_frame`]: the outcome for the subframe asked for, and
/// the index of the next subframe when the frame holds several packets (an 802.11 A-MSDU
/// in Aruba's GRE can carry several TCP segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub outcome: Result<Decoded, SkipReason>,
    pub next_subframe: Option<u8>,
}

/// Decodes one captured frame.
///
/// `data` is the captured bytes, `orig_len` the length of the frame on the wire (used only
/// when the IP header carries no usable length, as with TSO/GSO captures whose IPv4 total
/// length is 0).
pub fn decode_packet(
    link_type: u32,
    data: &[u8],
    orig_len: u32,
    ts_ns: i64,
) -> Result<Decoded, SkipReason> {
    decode_frame(link_type, data, orig_len, ts_ns, 0).outcome
}

/// Decodes subframe `subframe` of one captured frame (0 is the first, and the only one of
/// almost every frame). [`Frame::next_subframe`] says whether another follows, even when
/// this one is not TCP.
pub fn decode_frame(link_type: u32, data: &[u8], orig_len: u32, ts_ns: i64, subframe: u8) -> Frame {
    let mut subframes = Subframes {
        wanted: subframe,
        next: None,
    };
    let outcome = ip_offset(link_type, data).and_then(|ip| {
        // The datagram cannot extend past the frame on the wire, nor past what its
        // encapsulation announces (a header claiming more is wrong, or tampered with).
        let wire_end = data.len().max(orig_len as usize);
        let end = ip.end.map_or(wire_end, |end| end.min(wire_end));
        decode_ip(data, ip.start, end, ts_ns, &mut subframes)
    });
    Frame {
        outcome,
        next_subframe: subframes.next,
    }
}

/// [`decode_frame`] writing the decoded segment into `out` (left as it was when the frame
/// is not TCP) instead of returning it: the reader's per-packet path, which keeps one
/// `Decoded` and never moves it. Returns the outcome and the next subframe, as
/// [`Frame`] does.
///
/// Plain IPv4/TCP (almost every packet of a big capture) is decoded straight into `out`;
/// everything else goes through [`decode_frame`] and is copied.
pub fn decode_frame_into(
    link_type: u32,
    data: &[u8],
    orig_len: u32,
    ts_ns: i64,
    subframe: u8,
    out: &mut Decoded,
) -> (Result<(), SkipReason>, Option<u8>) {
    if link_type == linktype::ETHERNET {
        if let Some(outcome) = ethernet_ipv4_tcp_into(data, orig_len, ts_ns, out) {
            return (outcome, None);
        }
    }
    if let Ok(ip) = ip_offset(link_type, data) {
        let wire_end = data.len().max(orig_len as usize);
        let end = ip.end.map_or(wire_end, |end| end.min(wire_end));
        // The outermost layer decides: a plain IPv4/TCP datagram holds no tunnel and no
        // subframes, so its outcome is the whole frame's.
        if let Some(outcome) = plain_ipv4_tcp_into(data, ip.start, end, ts_ns, out) {
            return (outcome, None);
        }
    }
    let frame = decode_frame(link_type, data, orig_len, ts_ns, subframe);
    let outcome = frame.outcome.map(|decoded| *out = decoded);
    (outcome, frame.next_subframe)
}

// ---------------------------------------------------------------------------------------
// Link layer

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD1: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// IEEE 802.1ah Provider Backbone Bridging: a 4-byte I-TAG, then a whole inner Ethernet
/// header (customer MACs and EtherType).
const ETHERTYPE_PBB: u16 = 0x88e7;
/// Cisco VN-Tag: 4 bytes of tag, then the next EtherType.
const ETHERTYPE_VNTAG: u16 = 0x8926;
/// Cisco FabricPath: the frame starts with outer MACs, this EtherType and 2 bytes of
/// FTag/TTL, then the original Ethernet frame.
const ETHERTYPE_FABRICPATH: u16 = 0x8903;

/// At most this many stacked VLAN tags or MPLS labels are walked; more is not a real
/// network, and bounding the loop keeps hostile input cheap.
const MAX_STACKED: usize = 8;

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Where the IP datagram sits in a frame.
#[derive(Clone, Copy, Debug)]
struct IpAt {
    start: usize,
    /// Where the encapsulation says the datagram ends, when it says so (PPPoE). The IP
    /// header's own length is not trusted beyond it.
    end: Option<usize>,
}

impl IpAt {
    fn at(start: usize) -> Result<IpAt, SkipReason> {
        Ok(IpAt { start, end: None })
    }
}

/// Where the IP header starts in a frame of this link type.
fn ip_offset(link_type: u32, data: &[u8]) -> Result<IpAt, SkipReason> {
    match link_type {
        linktype::ETHERNET => {
            let ethertype = be16(data, 12).ok_or(SkipReason::TruncatedHeader)?;
            if ethertype <= ETHER_MAX_LENGTH {
                return after_llc_snap(data, 14);
            }
            after_ethertype(data, 14, ethertype)
        }
        // Linux cooked capture v1: packet type, ARPHRD type, address length, 8 address
        // bytes, then the protocol (an EtherType for everything IP).
        linktype::LINUX_SLL => {
            let protocol = be16(data, 14).ok_or(SkipReason::TruncatedHeader)?;
            after_ethertype(data, 16, protocol)
        }
        // Linux cooked capture v2 (`tcpdump -i any`, libpcap ≥ 1.10): the protocol comes
        // first, then reserved, interface index, ARPHRD type, packet type, address length
        // and 8 address bytes: 20 bytes in all.
        linktype::LINUX_SLL2 => {
            let protocol = be16(data, 0).ok_or(SkipReason::TruncatedHeader)?;
            if data.len() < 20 {
                return Err(SkipReason::TruncatedHeader);
            }
            after_ethertype(data, 20, protocol)
        }
        linktype::RAW | linktype::RAW_BSD12 | linktype::RAW_BSD14 => IpAt::at(0),
        linktype::IPV4 | linktype::IPV6 => IpAt::at(0),
        // The address family is written in the byte order of the host that captured, which
        // the file does not record (a pcap's own byte order may have been rewritten since):
        // accept an IP family read either way.
        linktype::NULL => {
            let b = data.get(..4).ok_or(SkipReason::TruncatedHeader)?;
            let b = [b[0], b[1], b[2], b[3]];
            if is_ip_family(u32::from_le_bytes(b)) || is_ip_family(u32::from_be_bytes(b)) {
                IpAt::at(4)
            } else {
                Err(SkipReason::NotIp)
            }
        }
        linktype::LOOP => {
            let b = data.get(..4).ok_or(SkipReason::TruncatedHeader)?;
            if is_ip_family(u32::from_be_bytes([b[0], b[1], b[2], b[3]])) {
                IpAt::at(4)
            } else {
                Err(SkipReason::NotIp)
            }
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

/// IEEE 802.3 frames carry a length (at most 1500) where Ethernet II has its EtherType
/// (0x0600 and up).
const ETHER_MAX_LENGTH: u16 = 1500;

/// An 802.3 frame: IEEE 802.2 LLC, and for IP the SNAP extension (RFC 1042): DSAP 0xAA,
/// SSAP 0xAA, control 0x03 (UI), OUI 00-00-00 (an EtherType follows), the EtherType.
/// Anything else after LLC (STP, NetBIOS, IPX) is not IP.
fn after_llc_snap(data: &[u8], at: usize) -> Result<IpAt, SkipReason> {
    let llc = data.get(at..at + 8).ok_or(SkipReason::TruncatedHeader)?;
    if llc[..6] != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return Err(SkipReason::NotIp);
    }
    after_ethertype(data, at + 8, u16::from_be_bytes([llc[6], llc[7]]))
}

/// BSD address families for IP: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD,
/// OpenBSD), 28 (FreeBSD, DragonFly) or 30 (macOS). Linux's 10 is accepted too.
fn is_ip_family(af: u32) -> bool {
    matches!(af, 2 | 10 | 24 | 28 | 30)
}

/// Walks VLAN tags, MPLS labels, a PPPoE session header and the Ethernet-in-Ethernet
/// encapsulations of data-centre switches after an EtherType. `at` is where the payload of
/// that EtherType starts.
fn after_ethertype(data: &[u8], mut at: usize, mut ethertype: u16) -> Result<IpAt, SkipReason> {
    for _ in 0..MAX_STACKED {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return IpAt::at(at),
            // 802.1Q tag: 2 bytes TCI, then the inner EtherType.
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD1 | ETHERTYPE_QINQ_OLD2 => {
                ethertype = be16(data, at + 2).ok_or(SkipReason::TruncatedHeader)?;
                at += 4;
            }
            ETHERTYPE_VNTAG => {
                ethertype = be16(data, at + 4).ok_or(SkipReason::TruncatedHeader)?;
                at += 6;
            }
            ETHERTYPE_PBB => {
                ethertype = be16(data, at + 4 + 12).ok_or(SkipReason::TruncatedHeader)?;
                at += 4 + 14;
            }
            ETHERTYPE_FABRICPATH => {
                ethertype = be16(data, at + 2 + 12).ok_or(SkipReason::TruncatedHeader)?;
                at += 2 + 14;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => return after_mpls(data, at),
            // PPPoE session (RFC 2516): ver/type, code, session id, length (6 bytes), then
            // the PPP protocol: 0x0021 IPv4, 0x0057 IPv6. The PPPoE length (which counts
            // the PPP protocol field) bounds the datagram, as Wireshark does.
            ETHERTYPE_PPPOE_SESSION => {
                let length = be16(data, at + 4).ok_or(SkipReason::TruncatedHeader)?;
                return match be16(data, at + 6).ok_or(SkipReason::TruncatedHeader)? {
                    0x0021 | 0x0057 => Ok(IpAt {
                        start: at + 8,
                        end: Some(at + 6 + usize::from(length)),
                    }),
                    _ => Err(SkipReason::NotIp),
                };
            }
            _ => return Err(SkipReason::NotIp),
        }
    }
    Err(SkipReason::NotIp)
}

/// MPLS labels are 4 bytes each; the bottom of stack has bit 8 of the label entry set.
/// What follows is not announced: like Wireshark, guess IP from the version nibble.
fn after_mpls(data: &[u8], mut at: usize) -> Result<IpAt, SkipReason> {
    for _ in 0..MAX_STACKED {
        let entry = data.get(at..at + 4).ok_or(SkipReason::TruncatedHeader)?;
        let bottom = entry[2] & 0x01 != 0;
        at += 4;
        if bottom {
            let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
            return match first >> 4 {
                4 | 6 => IpAt::at(at),
                _ => Err(SkipReason::NotIp),
            };
        }
    }
    Err(SkipReason::NotIp)
}

// ---------------------------------------------------------------------------------------
// IP and TCP

/// Decodes the IP datagram at `[start, end)` of `data`, opening tunnels until a TCP
/// segment is found.
fn decode_ip(
    data: &[u8],
    mut start: usize,
    mut end: usize,
    ts_ns: i64,
    subframes: &mut Subframes,
) -> Result<Decoded, SkipReason> {
    let mut tunnels = Tunnels::default();
    let mut outer_fragmented = false;
    loop {
        match ip_layer(data, start, end, ts_ns, subframes)? {
            Layer::Tcp(mut decoded) => {
                decoded.tunnels = tunnels;
                decoded.tunnel_fragment = outer_fragmented;
                if outer_fragmented {
                    // The rest of the segment is in the frames holding the outer
                    // datagram's other fragments: in the capture, but not in this frame.
                    // Zeek and Wireshark reassemble them and see it all.
                    let s = &mut decoded.segment;
                    s.captured_payload_len = s.payload_len;
                }
                return Ok(decoded);
            }
            Layer::Tunnel { inner, fragmented } => {
                if !tunnels.push(inner.kind) {
                    return Err(SkipReason::TunnelTooDeep);
                }
                outer_fragmented |= fragmented;
                start = inner.start;
                end = inner.end;
            }
        }
    }
}

/// What one IP datagram holds.
enum Layer {
    Tcp(Decoded),
    /// `fragmented`: the datagram holding the tunnel was the first fragment of a larger one.
    Tunnel {
        inner: Inner,
        fragmented: bool,
    },
}

/// The largest IP datagram: the bound on an inner datagram whose outer one was
/// fragmented, when nothing better is known.
const MAX_DATAGRAM: usize = 65_535 + 40;

fn ip_layer(
    data: &[u8],
    ip_start: usize,
    end: usize,
    ts_ns: i64,
    subframes: &mut Subframes,
) -> Result<Layer, SkipReason> {
    match plain_ipv4_tcp(data, ip_start, end, ts_ns) {
        Some(outcome) => outcome.map(Layer::Tcp),
        None => any_ip_layer(data, ip_start, end, ts_ns, subframes),
    }
}

/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;

/// The common case decoded by hand: an unfragmented IPv4 datagram carrying TCP, whose
/// header is whole and whose total length covers its header. `None` for anything else,
/// which [`any_ip_layer`] decodes. The outcome is the one `any_ip_layer` gives for the same
/// bytes (etherparse's lax slicer would find this same header and payload); a test
/// checks that on mutated frames. It exists because etherparse's general slicer cost
/// about 15 % of a whole run on big captures.
fn plain_ipv4_tcp(
    data: &[u8],
    ip_start: usize,
    end: usize,
    ts_ns: i64,
) -> Option<Result<Decoded, SkipReason>> {
    let mut decoded = Decoded::empty();
    plain_ipv4_tcp_into(data, ip_start, end, ts_ns, &mut decoded)
        .map(|outcome| outcome.map(|()| decoded))
}

/// [`plain_ipv4_tcp`] writing into `out` (untouched unless the outcome is `Some(Ok(()))`).
fn plain_ipv4_tcp_into(
    data: &[u8],
    ip_start: usize,
    end: usize,
    ts_ns: i64,
    out: &mut Decoded,
) -> Option<Result<(), SkipReason>> {
    let ip = data.get(ip_start..end.min(data.len()))?;
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    let total = usize::from(be16(ip, 2)?);
    // RFC 791: version 4, IHL ≥ 5 words; flags and fragment offset (MF set or a non-zero
    // offset means a fragment); protocol 6 is TCP.
    let fragment = be16(ip, 6)? & 0x3fff != 0;
    if first >> 4 != 4
        || header_len < 20
        || ip.len() < header_len
        || total < header_len
        || fragment
        || ip[9] != IPPROTO_TCP
    {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let (src_ip, dst_ip) = (IpAddr::V4(addr(12)), IpAddr::V4(addr(16)));
    let ip_end = (ip_start + total).min(end);
    // The TCP bytes: the IP payload, cut at the total length or the captured end.
    let tcp = match TcpView::new(&ip[header_len..total.min(ip.len())]) {
        Ok(tcp) => tcp,
        Err(e) => return Some(Err(e)),
    };
    let payload_start = ip_start + header_len + tcp.header_len;
    fill_segment(
        &mut out.segment,
        &tcp,
        (src_ip, dst_ip),
        ts_ns,
        (payload_start, ip_end),
        data.len(),
    );
    out.first_fragment = false;
    out.tunnel_fragment = false;
    out.tunnels = Tunnels::default();
    out.payload_start = u32::try_from(payload_start).unwrap_or(u32::MAX);
    Some(Ok(()))
}

/// The commonest frame of all, decoded with one length check: Ethernet II, an IPv4
/// header without options, unfragmented, carrying a TCP header that lies whole inside
/// the datagram and the captured bytes. `None` for anything else (then the general path
/// decides); for what it accepts, the outcome is the one [`plain_ipv4_tcp_into`] gives
/// (a test checks that on mutated and cut frames).
#[inline]
fn ethernet_ipv4_tcp_into(
    data: &[u8],
    orig_len: u32,
    ts_ns: i64,
    out: &mut Decoded,
) -> Option<Result<(), SkipReason>> {
    // Ethernet header (14 bytes), IPv4 header (20), TCP header without options (20).
    const IP: usize = 14;
    const TCP: usize = IP + 20;
    let head: &[u8; TCP + 20] = data.get(..TCP + 20)?.try_into().ok()?;
    let be16 = |at: usize| u16::from_be_bytes([head[at], head[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    // EtherType IPv4; version 4 with IHL 5; protocol TCP; no MF flag, offset 0 (RFC 791).
    let total = usize::from(be16(IP + 2));
    if be16(12) != ETHERTYPE_IPV4
        || head[IP] != 0x45
        || head[IP + 9] != IPPROTO_TCP
        || be16(IP + 6) & 0x3fff != 0
        || total < 40
    {
        return None;
    }
    let data_offset = usize::from(head[TCP + 12] >> 4);
    if data_offset < 5 {
        return None;
    }
    let tcp_header_len = data_offset * 4;
    // The datagram ends at its total length, cut by the frame on the wire; the TCP bytes
    // at hand end there or at the captured end.
    let wire_end = data.len().max(orig_len as usize);
    let ip_end = (IP + total).min(wire_end);
    let tcp_end = (IP + total).min(data.len());
    let payload_start = TCP + tcp_header_len;
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(be32(IP + 12))), be16(TCP));
    let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(be32(IP + 16))), be16(TCP + 2));
    let segment = &mut out.segment;
    *segment = Segment {
        ts_ns,
        frame: 0,
        src,
        dst,
        seq: be32(TCP + 4),
        ack: be32(TCP + 8),
        flags: TcpFlags(head[TCP + 13]),
        window: be16(TCP + 14),
        window_scale: None,
        mss: None,
        timestamps: None,
        sack_permitted: false,
        payload_len: u32::try_from(ip_end.saturating_sub(payload_start)).unwrap_or(u32::MAX),
        captured_payload_len: u32::try_from(ip_end.min(data.len()).saturating_sub(payload_start))
            .unwrap_or(u32::MAX),
    };
    read_options(&data[TCP + 20..payload_start.min(tcp_end)], segment);
    out.first_fragment = false;
    out.tunnel_fragment = false;
    out.tunnels = Tunnels::default();
    out.payload_start = payload_start as u32;
    Some(Ok(()))
}

/// Everything [`plain_ipv4_tcp`] leaves: IPv6, IPv4 with odd lengths, fragments, tunnels,
/// non-TCP, damaged headers; sliced by etherparse.
fn any_ip_layer(
    data: &[u8],
    ip_start: usize,
    end: usize,
    ts_ns: i64,
    subframes: &mut Subframes,
) -> Result<Layer, SkipReason> {
    let ip = data
        .get(ip_start..end.min(data.len()))
        .ok_or(SkipReason::TruncatedHeader)?;
    let sliced = LaxSlicedPacket::from_ip(ip).map_err(|e| match e {
        LaxHeaderSliceError::Len(_) => SkipReason::TruncatedHeader,
        LaxHeaderSliceError::Content(_) => SkipReason::BadIpHeader,
    })?;
    let net = sliced.net.as_ref().ok_or(SkipReason::NotIp)?;

    // The IP datagram's length as its header declares it, from the start of the IP header.
    // `None` when the header holds no usable length (IPv4 total length 0 from TSO, IPv6
    // jumbograms): the frame's wire length (or the enclosing packet's end) is the best
    // remaining guess then.
    let (src_ip, dst_ip, declared_len, payload, non_first_fragment): (IpAddr, IpAddr, _, _, _) =
        match net {
            LaxNetSlice::Ipv4(v4) => {
                let h = v4.header();
                let total = usize::from(h.total_len());
                let declared = (total >= h.slice().len()).then_some(total);
                let non_first = h.fragments_offset().value() != 0;
                (
                    h.source_addr().into(),
                    h.destination_addr().into(),
                    declared,
                    v4.payload(),
                    non_first,
                )
            }
            LaxNetSlice::Ipv6(v6) => {
                let h = v6.header();
                let pl = usize::from(h.payload_length());
                let declared = (pl != 0).then_some(40 + pl);
                let exts = v6.extensions();
                let non_first = exts
                    .first_header()
                    .is_some_and(|first| v6_non_first_fragment(first, exts.slice()));
                (
                    h.source_addr().into(),
                    h.destination_addr().into(),
                    declared,
                    v6.payload(),
                    non_first,
                )
            }
            LaxNetSlice::Arp(_) => return Err(SkipReason::NotIp),
        };

    if non_first_fragment {
        return Err(SkipReason::IpFragment);
    }

    // Offsets within `data`, computed from the slices etherparse handed back.
    let base = data.as_ptr() as usize;
    let offset_of = |slice: &[u8]| (slice.as_ptr() as usize).saturating_sub(base);
    // The datagram cannot extend past what its encapsulation announces (a header claiming
    // more is wrong, or tampered with). Ethernet padding sits after `ip_end` and is never
    // payload; snaplen truncation sits before it and only shrinks the captured part.
    let ip_end = match declared_len {
        Some(len) => (ip_start + len).min(end),
        None => end,
    };

    let tcp_bytes: &[u8] = match payload.ip_number {
        ip_number::TCP => match &sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => tcp.slice(),
            // Either the TCP header is cut short in its options or bad (etherparse stopped
            // there), or this is the first fragment of a fragmented datagram (etherparse
            // does not slice fragmented payloads, but a first fragment starts with the TCP
            // header): read what is there.
            _ => payload.payload,
        },
        // Tunnels. A first fragment holds the start of the tunnel's payload, whose own
        // length fields tell how long it really is: it is not cut at the fragment's end.
        number @ (ip_number::UDP | ip_number::GRE | ip_number::IPV4 | ip_number::IPV6) => {
            let at = offset_of(payload.payload);
            let inner_end = if payload.fragmented {
                at + MAX_DATAGRAM
            } else {
                ip_end
            };
            let inner = match number.0 {
                IPPROTO_GRE => tunnel::gre(data, at, inner_end, subframes)?,
                IPPROTO_IPIP | IPPROTO_IPV6 => tunnel::ip_in_ip(data, at, inner_end, number.0)?,
                _ => tunnel::udp(data, at, inner_end, payload.fragmented, subframes)?,
            };
            return Ok(Layer::Tunnel {
                inner,
                fragmented: payload.fragmented,
            });
        }
        _ => {
            // An error while walking IPv6/IPv4 extension headers.
            if let Some((err, _layer)) = &sliced.stop_err {
                return Err(match err {
                    SliceError::Len(_) => SkipReason::TruncatedHeader,
                    _ => SkipReason::BadIpHeader,
                });
            }
            return Err(SkipReason::NotTcp);
        }
    };
    let tcp = TcpView::new(tcp_bytes)?;

    let payload_start = offset_of(tcp.bytes) + tcp.header_len;
    Ok(Layer::Tcp(tcp_decoded(
        tcp,
        src_ip,
        dst_ip,
        ts_ns,
        payload_start,
        ip_end,
        data.len(),
        payload.fragmented,
    )))
}

/// The decoded segment of a TCP header whose payload spans `[payload_start, ip_end)` of a
/// frame of which `captured` bytes were captured.
#[allow(clippy::too_many_arguments)]
fn tcp_decoded(
    tcp: TcpView<'_>,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    ts_ns: i64,
    payload_start: usize,
    ip_end: usize,
    captured: usize,
    first_fragment: bool,
) -> Decoded {
    let mut decoded = Decoded::empty();
    fill_segment(
        &mut decoded.segment,
        &tcp,
        (src_ip, dst_ip),
        ts_ns,
        (payload_start, ip_end),
        captured,
    );
    decoded.first_fragment = first_fragment;
    decoded.payload_start = u32::try_from(payload_start).unwrap_or(u32::MAX);
    decoded
}

/// Writes every field of `segment` (but `frame`, set to 0) from a TCP header whose
/// payload spans `payload` = `[start, end)` of a frame of which `captured` bytes were
/// captured.
fn fill_segment(
    segment: &mut Segment,
    tcp: &TcpView<'_>,
    (src_ip, dst_ip): (IpAddr, IpAddr),
    ts_ns: i64,
    (payload_start, ip_end): (usize, usize),
    captured: usize,
) {
    let payload_len = ip_end.saturating_sub(payload_start);
    let captured_payload_len = ip_end.min(captured).saturating_sub(payload_start);
    *segment = Segment {
        ts_ns,
        frame: 0,
        src: SocketAddr::new(src_ip, tcp.be16(0)),
        dst: SocketAddr::new(dst_ip, tcp.be16(2)),
        seq: tcp.be32(4),
        ack: tcp.be32(8),
        // Byte 13 of the TCP header holds CWR ECE URG ACK PSH RST SYN FIN (RFC 9293 §3.1).
        flags: TcpFlags(tcp.bytes[13]),
        window: tcp.be16(14),
        window_scale: None,
        mss: None,
        timestamps: None,
        sack_permitted: false,
        payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
        captured_payload_len: u32::try_from(captured_payload_len).unwrap_or(u32::MAX),
    };
    read_options(tcp.options(), segment);
}

/// Whether the IPv6 extension headers in `exts` (starting with header type `first`) hold
/// a Fragment header with a non-zero offset (RFC 8200 §4.5).
///
/// Walked here with bounds checks rather than with etherparse's extension iterator: that
/// iterator (0.21) trusts the chain to end inside the slice, and on a chain cut short or
/// with a second Hop-by-Hop header it reads past the slice (found by fuzzing).
fn v6_non_first_fragment(first: IpNumber, exts: &[u8]) -> bool {
    let mut next = first;
    let mut rest = exts;
    // Each header is at least 8 bytes, so the walk ends; bound it anyway.
    for _ in 0..MAX_STACKED * 4 {
        let len = match next {
            ip_number::IPV6_HOP_BY_HOP | ip_number::IPV6_ROUTE | ip_number::IPV6_DEST_OPTIONS => {
                // Hdr Ext Len: 8-octet units, not counting the first 8 octets.
                rest.get(1).map(|&l| (usize::from(l) + 1) * 8)
            }
            ip_number::IPV6_FRAG => {
                let Some(&[_, _, hi, lo]) = rest.get(..4) else {
                    return false;
                };
                if u16::from_be_bytes([hi, lo]) >> 3 != 0 {
                    return true;
                }
                Some(8)
            }
            // RFC 4302 §2.2: Payload Len in 4-octet units, minus 2.
            ip_number::AUTH => rest.get(1).map(|&l| (usize::from(l) + 2) * 4),
            _ => return false,
        };
        match (len, rest.first()) {
            (Some(len), Some(&nh)) if len <= rest.len() => {
                next = IpNumber(nh);
                rest = &rest[len..];
            }
            _ => return false,
        }
    }
    false
}

/// A TCP header of which at least the fixed 20 bytes were captured (RFC 9293 §3.1). The
/// options may be cut short by the snaplen: the segment is still worth having (a SYN
/// without its MSS is still a SYN).
struct TcpView<'a> {
    /// From the first byte of the TCP header to the end of the captured data.
    bytes: &'a [u8],
    /// Data offset × 4.
    header_len: usize,
}

impl<'a> TcpView<'a> {
    fn new(bytes: &'a [u8]) -> Result<TcpView<'a>, SkipReason> {
        if bytes.len() < 20 {
            return Err(SkipReason::TruncatedHeader);
        }
        let data_offset = usize::from(bytes[12] >> 4);
        if data_offset < 5 {
            return Err(SkipReason::BadTcpHeader);
        }
        Ok(TcpView {
            bytes,
            header_len: data_offset * 4,
        })
    }

    fn be16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    fn be32(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    /// The captured part of the options.
    fn options(&self) -> &'a [u8] {
        &self.bytes[20..self.header_len.min(self.bytes.len())]
    }
}

/// Copies the options closewait reports (RFC 9293 §3.2 MSS, RFC 7323 window scale and
/// timestamps, RFC 2018 SACK-permitted). A malformed or cut option ends the walk: what
/// was read before it is kept.
#[inline]
fn read_options(options: &[u8], segment: &mut Segment) {
    // The layout of almost every segment after the handshake (Linux, BSD): NOP, NOP,
    // timestamps (RFC 7323 appendix A's recommended alignment). Read directly.
    if let [1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3] = *options {
        segment.timestamps = Some((
            u32::from_be_bytes([v0, v1, v2, v3]),
            u32::from_be_bytes([e0, e1, e2, e3]),
        ));
        return;
    }
    // Linux's SYN and SYN,ACK: MSS, SACK-permitted, timestamps, NOP, window scale.
    if let [2, 4, m0, m1, 4, 2, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3, 1, 3, 3, shift] = *options {
        segment.mss = Some(u16::from_be_bytes([m0, m1]));
        segment.sack_permitted = true;
        segment.timestamps = Some((
            u32::from_be_bytes([v0, v1, v2, v3]),
            u32::from_be_bytes([e0, e1, e2, e3]),
        ));
        segment.window_scale = Some(shift);
        return;
    }
    for option in TcpOptionsIterator::from_slice(options) {
        match option {
            Ok(TcpOptionElement::MaximumSegmentSize(mss)) => segment.mss = Some(mss),
            Ok(TcpOptionElement::WindowScale(shift)) => segment.window_scale = Some(shift),
            Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => {
                segment.sack_permitted = true
            }
            Ok(TcpOptionElement::Timestamp(val, ecr)) => segment.timestamps = Some((val, ecr)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testutil::frames;

    fn decode(link_type: u32, data: &[u8]) -> Result<Decoded, SkipReason> {
        decode_packet(link_type, data, data.len() as u32, 7)
    }

    #[test]
    fn ethernet_ipv4_syn_with_options() {
        let f = frames::eth_v4_syn_with_options();
        let d = decode(linktype::ETHERNET, &f).unwrap();
        let s = d.segment;
        assert_eq!(s.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:80".parse().unwrap());
        assert_eq!(s.seq, 1000);
        assert!(s.flags.syn() && !s.flags.ack());
        assert_eq!(s.window, 64240);
        assert_eq!(s.mss, Some(1460));
        assert_eq!(s.window_scale, Some(7));
        assert!(s.sack_permitted);
        assert_eq!(s.timestamps, Some((111, 0)));
        assert_eq!(s.payload_len, 0);
        assert_eq!(s.ts_ns, 7);
        assert!(!d.first_fragment);
    }

    /// Ordinary Ethernet/IPv4/TCP frames (a SYN with options, data, a bare ACK, one with
    /// Ethernet padding), each also with every byte from `from` on (up to the TCP header's
    /// end) set to a few telling values, and cut at every length from `from` on.
    fn mutated_frames(from: usize, values: &[u8]) -> Vec<Vec<u8>> {
        let mut padded = frames::eth_v4_tcp(b"", |b| b.ack(5));
        padded.extend_from_slice(&[0u8; 6]);
        let bases = [
            frames::eth_v4_syn_with_options(),
            frames::eth_v4_tcp(b"hello", |b| b.ack(5)),
            frames::eth_v4_tcp(b"", |b| b.ack(5)),
            padded,
        ];
        let mut variants = Vec::new();
        for base in &bases {
            variants.push(base.clone());
            for at in from..base.len().min(14 + 60) {
                for &value in values {
                    let mut f = base.clone();
                    f[at] = value;
                    variants.push(f);
                }
            }
            for cut in from..base.len() {
                variants.push(base[..cut].to_vec());
            }
        }
        variants
    }

    /// The hand-written IPv4/TCP path gives what etherparse's general path gives, on
    /// ordinary frames and on every single-byte corruption of their IP and TCP headers.
    #[test]
    fn plain_ipv4_fast_path_agrees_with_the_general_path() {
        let mut checked = 0;
        let values = [0u8, 1, 4, 5, 6, 0x20, 0x45, 0x46, 0x4f, 0x50, 0x3f, 0xff];
        for f in &mutated_frames(14, &values) {
            for end in [f.len(), f.len() + 20, 40] {
                let Some(fast) = plain_ipv4_tcp(f, 14, end, 9) else {
                    continue;
                };
                let mut subframes = Subframes {
                    wanted: 0,
                    next: None,
                };
                let general = match any_ip_layer(f, 14, end, 9, &mut subframes) {
                    Ok(Layer::Tcp(d)) => Ok(d),
                    Ok(Layer::Tunnel { .. }) => panic!("plain TCP seen as a tunnel"),
                    Err(e) => Err(e),
                };
                assert_eq!(fast, general, "frame {f:02x?}, end {end}");
                checked += 1;
            }
        }
        assert!(checked > 1000, "only {checked} frames took the fast path");
    }

    /// The in-place paths (the Ethernet/IPv4 one in particular) give what the general
    /// path gives, on mutated and cut frames, with `orig_len` at, above and below the
    /// captured length.
    #[test]
    fn in_place_decoding_agrees_with_decode_frame() {
        let mut checked = 0;
        let values = [0u8, 1, 4, 5, 6, 8, 0x20, 0x45, 0x46, 0x4f, 0x50, 0x3f, 0xff];
        for f in &mutated_frames(0, &values) {
            for orig_len in [f.len(), f.len() + 20, 40, 0] {
                let orig_len = orig_len as u32;
                let general = decode_frame(linktype::ETHERNET, f, orig_len, 9, 0);
                let mut out = Decoded::empty();
                let (outcome, next) =
                    decode_frame_into(linktype::ETHERNET, f, orig_len, 9, 0, &mut out);
                assert_eq!(next, general.next_subframe, "frame {f:02x?}");
                assert_eq!(outcome.map(|()| out), general.outcome, "frame {f:02x?}");
                checked += 1;
            }
        }
        assert!(checked > 3000, "only {checked} frames checked");
    }

    /// The option layouts read directly give what etherparse's option walk gives.
    #[test]
    fn direct_option_layouts_agree_with_the_option_walk() {
        let layouts: [&[u8]; 2] = [
            &[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9],
            &[
                2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 3, 3, 7,
            ],
        ];
        for layout in layouts {
            let mut variants = vec![layout.to_vec()];
            for at in 0..layout.len() {
                for value in [0u8, 1, 2, 3, 4, 8, 10, 0xff] {
                    let mut v = layout.to_vec();
                    v[at] = value;
                    variants.push(v);
                }
            }
            for options in &variants {
                let mut direct = Decoded::empty().segment;
                read_options(options, &mut direct);
                let mut walked = Decoded::empty().segment;
                for option in TcpOptionsIterator::from_slice(options) {
                    match option {
                        Ok(TcpOptionElement::MaximumSegmentSize(mss)) => walked.mss = Some(mss),
                        Ok(TcpOptionElement::WindowScale(s)) => walked.window_scale = Some(s),
                        Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => {
                            walked.sack_permitted = true
                        }
                        Ok(TcpOptionElement::Timestamp(v, e)) => walked.timestamps = Some((v, e)),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                assert_eq!(direct, walked, "options {options:?}");
            }
        }
    }

    /// An IEEE 802.3 frame (length, not EtherType) with LLC/SNAP carrying IPv4 (RFC 1042),
    /// and one with LLC carrying spanning tree (not IP).
    #[test]
    fn ieee_802_3_llc_snap_carries_ipv4() {
        let ethernet_ii = frames::eth_v4_syn_with_options();
        let f = frames::as_802_3_snap(&ethernet_ii);
        let d = decode(linktype::ETHERNET, &f).expect("802.3 SNAP IPv4");
        assert_eq!(
            d.segment,
            decode(linktype::ETHERNET, &ethernet_ii).unwrap().segment
        );
        let mut stp = f.clone();
        stp[14..17].copy_from_slice(&[0x42, 0x42, 0x03]);
        assert_eq!(decode(linktype::ETHERNET, &stp), Err(SkipReason::NotIp));
        assert_eq!(
            decode(linktype::ETHERNET, &f[..18]),
            Err(SkipReason::TruncatedHeader)
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60.
        let mut f = frames::eth_v4_tcp(b"", |b| b.ack(5));
        assert_eq!(f.len(), 54);
        f.extend_from_slice(&[0u8; 6]);
        let s = decode(linktype::ETHERNET, &f).unwrap().segment;
        assert_eq!(s.payload_len, 0);
        assert_eq!(s.captured_payload_len, 0);
    }

    #[test]
    fn snaplen_truncated_data_segment_keeps_its_real_length() {
        let f = frames::eth_v4_tcp(&[0x55; 1000], |b| b.ack(5).psh());
        let cut = &f[..96];
        let s = decode_packet(linktype::ETHERNET, cut, f.len() as u32, 0)
            .unwrap()
            .segment;
        assert_eq!(s.payload_len, 1000);
        assert_eq!(s.captured_payload_len, 96 - 54);
    }

    #[test]
    fn ip_total_length_beyond_the_wire_is_clamped() {
        let mut f = frames::eth_v4_tcp(b"abcd", |b| b.ack(5));
        // Claim 10 more bytes than the frame holds, on a frame that is not truncated.
        let total = u16::from_be_bytes([f[16], f[17]]) + 10;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let s = decode(linktype::ETHERNET, &f).unwrap().segment;
        assert_eq!(s.payload_len, 4);
    }

    #[test]
    fn tcp_header_cut_short_is_truncated_header() {
        let f = frames::eth_v4_tcp(b"", |b| b.ack(5));
        assert_eq!(
            decode(linktype::ETHERNET, &f[..40]),
            Err(SkipReason::TruncatedHeader)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &f[..20]),
            Err(SkipReason::TruncatedHeader)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &f[..10]),
            Err(SkipReason::TruncatedHeader)
        );
    }

    #[test]
    fn syn_with_options_cut_by_the_snaplen_still_decodes() {
        let f = frames::eth_v4_syn_with_options();
        // Fixed header plus the 4-byte MSS option, the rest cut.
        let s = decode_packet(linktype::ETHERNET, &f[..34 + 26], f.len() as u32, 0)
            .unwrap()
            .segment;
        assert!(s.flags.syn());
        assert_eq!(s.mss, Some(1460));
        assert_eq!(s.window_scale, None);
        assert_eq!(s.payload_len, 0);
    }

    #[test]
    fn data_offset_below_five_is_a_bad_tcp_header() {
        let mut f = frames::eth_v4_tcp(b"", |b| b.ack(5));
        f[34 + 12] = 0x40;
        assert_eq!(
            decode(linktype::ETHERNET, &f),
            Err(SkipReason::BadTcpHeader)
        );
    }

    #[test]
    fn pbb_vntag_and_fabricpath_encapsulations() {
        let inner = frames::eth_v4_tcp(b"abc", |b| b.ack(1));
        // 802.1ah: outer MACs, 0x88e7, I-TAG, inner Ethernet frame.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xe7, 0, 0, 0, 1]);
        f.extend_from_slice(&inner);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 3);
        // VN-Tag between VLAN tags.
        let mut f = inner[..12].to_vec();
        f.extend_from_slice(&[
            0x81, 0x00, 0, 5, 0x89, 0x26, 0, 0, 0, 0x33, 0x81, 0x00, 0, 5,
        ]);
        f.extend_from_slice(&inner[12..]);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 3);
        // FabricPath: outer MACs, 0x8903, FTag/TTL, inner frame.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x89, 0x03, 0, 0]);
        f.extend_from_slice(&inner);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 3);
    }

    #[test]
    fn vlan_and_qinq_tags_are_walked() {
        let f = frames::eth_vlan_v4_tcp(&[0x8100]);
        let s = decode(linktype::ETHERNET, &f).unwrap().segment;
        assert_eq!(s.dst.port(), 80);
        let f = frames::eth_vlan_v4_tcp(&[0x88a8, 0x8100]);
        let s = decode(linktype::ETHERNET, &f).unwrap().segment;
        assert_eq!(s.payload_len, 3);
    }

    #[test]
    fn ipv6_with_extension_headers() {
        let f = frames::eth_v6_ext_tcp(b"hello");
        let s = decode(linktype::ETHERNET, &f).unwrap().segment;
        assert_eq!(s.src, "[2001:db8::1]:5555".parse().unwrap());
        assert_eq!(s.payload_len, 5);
        assert_eq!(s.captured_payload_len, 5);
    }

    /// Found by fuzzing: a Hop-by-Hop header whose next header is Hop-by-Hop again (and
    /// chains cut short) made etherparse's extension iterator read past the slice.
    #[test]
    fn ipv6_extension_chain_that_ends_badly_is_walked_within_bounds() {
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
        ip6.extend_from_slice(&[0; 32]);
        for tail in [
            &[0u8, 0, 0, 0, 0, 0, 0, 0][..], // HBH → HBH (not allowed twice)
            &[60, 0, 0, 0, 0, 0, 0, 0, 44],  // HBH → DST, cut short
            &[44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 8], // HBH → FRAG (offset 1), cut short
            &[],
        ] {
            for payload_len in [0u16, 8, 200] {
                let mut p = ip6.clone();
                p[4..6].copy_from_slice(&payload_len.to_be_bytes());
                p.extend_from_slice(tail);
                let r = decode(linktype::RAW, &p);
                assert!(r.is_err(), "{tail:?} {payload_len}: {r:?}");
            }
        }
        // A whole HBH → FRAG chain with a non-zero offset is a non-first fragment.
        let mut p = ip6.clone();
        p[4..6].copy_from_slice(&36u16.to_be_bytes());
        p.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[6, 0, 0, 8, 0, 0, 0, 1]);
        p.extend_from_slice(&[0; 20]);
        assert_eq!(decode(linktype::RAW, &p), Err(SkipReason::IpFragment));
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let ip = frames::raw_v4_tcp(b"abc");
        let s = decode(linktype::LINUX_SLL, &frames::sll(&ip))
            .unwrap()
            .segment;
        assert_eq!(s.payload_len, 3);
        let s = decode(linktype::LINUX_SLL2, &frames::sll2(&ip))
            .unwrap()
            .segment;
        assert_eq!(s.payload_len, 3);
    }

    #[test]
    fn raw_ip_link_types() {
        let ip = frames::raw_v4_tcp(b"abc");
        for lt in [101, 12, 14, 228] {
            assert_eq!(decode(lt, &ip).unwrap().segment.payload_len, 3, "{lt}");
        }
        let ip6 = frames::raw_v6_tcp(b"abcd");
        assert_eq!(decode(229, &ip6).unwrap().segment.payload_len, 4);
        assert_eq!(decode(101, &ip6).unwrap().segment.payload_len, 4);
    }

    #[test]
    fn bsd_null_in_both_byte_orders_and_loop() {
        let ip = frames::raw_v4_tcp(b"");
        let ip6 = frames::raw_v6_tcp(b"");
        for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let f = [&af[..], &ip].concat();
            assert!(decode(linktype::NULL, &f).is_ok());
        }
        for af in [24u32, 28, 30] {
            for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
                let f = [&bytes[..], &ip6].concat();
                assert!(decode(linktype::NULL, &f).is_ok(), "AF {af}");
            }
        }
        let f = [&7u32.to_le_bytes()[..], &ip].concat();
        assert_eq!(decode(linktype::NULL, &f), Err(SkipReason::NotIp));
        let f = [&2u32.to_be_bytes()[..], &ip].concat();
        assert!(decode(linktype::LOOP, &f).is_ok());
        let f = [&30u32.to_be_bytes()[..], &ip6].concat();
        assert!(decode(linktype::LOOP, &f).is_ok());
    }

    #[test]
    fn non_tcp_and_non_ip_are_skipped_with_reasons() {
        assert_eq!(
            decode(linktype::ETHERNET, &frames::eth_v4_udp()),
            Err(SkipReason::NotTcp)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &frames::eth_arp()),
            Err(SkipReason::NotIp)
        );
        assert_eq!(
            decode(105, &frames::eth_arp()),
            Err(SkipReason::UnsupportedLinkType)
        );
    }

    #[test]
    fn ip_fragments_first_decoded_others_skipped() {
        let (first, second) = frames::eth_v4_tcp_fragments();
        let d = decode(linktype::ETHERNET, &first).unwrap();
        assert!(d.first_fragment);
        assert_eq!(d.segment.dst.port(), 80);
        assert_eq!(
            decode(linktype::ETHERNET, &second),
            Err(SkipReason::IpFragment)
        );
    }

    #[test]
    fn mpls_and_pppoe_carry_ip() {
        let ip = frames::raw_v4_tcp(b"xy");
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
        f.extend_from_slice(&ip);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 2);
        let mut f = vec![0u8; 12];
        let pppoe_len = (ip.len() + 2) as u16;
        f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x01]);
        f.extend_from_slice(&pppoe_len.to_be_bytes());
        f.extend_from_slice(&[0x00, 0x21]);
        f.extend_from_slice(&ip);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 2);
        // A PPPoE length shorter than the IP total length bounds the datagram.
        let short = (pppoe_len - 2).to_be_bytes();
        f[18..20].copy_from_slice(&short);
        assert_eq!(decode(1, &f).unwrap().segment.payload_len, 0);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200usize {
            let mut buf = vec![0u8; len];
            for b in buf.iter_mut() {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (x >> 16) as u8;
            }
            for lt in [0, 1, 101, 108, 113, 228, 229, 276] {
                let _ = decode_packet(lt, &buf, x, 0);
                // Make some look like IP to reach deeper code.
                if len > 0 {
                    let mut b2 = buf.clone();
                    b2[0] = 0x45;
                    let _ = decode_packet(101, &b2, 0, 0);
                    b2[0] = 0x60;
                    let _ = decode_packet(101, &b2, 0, 0);
                }
            }
        }
    }
}
