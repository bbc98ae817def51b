//! Tunnel decapsulation: where the inner packet of a tunnel starts and ends.
//!
//! Overlay networks, mobile cores and mirroring setups hand closewait TCP connections
//! wrapped in GRE, VXLAN, GTP-U and the like; the connection that matters is the inner
//! one, which is what Zeek and Wireshark report. This module knows the tunnel header
//! layouts and nothing else: given the offset of a tunnel header in the frame, it says
//! where the inner IP datagram sits, and [`super`] decodes that datagram like any other
//! (which may itself be a tunnel: the caller bounds the nesting).
//!
//! Recognition follows Zeek's defaults: IP protocols 4 and 41 (IP in IP) and 47 (GRE)
//! always, and the UDP-based tunnels by their well-known port, the destination port first,
//! else the source port (Zeek chooses by the responder's port, after making a sender on a
//! well-known port the responder):
//!
//! | port | tunnel |
//! |---:|---|
//! | 2152 | GTP-U (3GPP TS 29.281), GTPv1 G-PDU |
//! | 3544 | Teredo (RFC 4380) |
//! | 4754 | GRE in UDP (RFC 8086) |
//! | 4789 | VXLAN (RFC 7348) |
//! | 5072 | AYIYA (draft-massar-v6ops-ayiya) |
//! | 6081 | Geneve (RFC 8926) |
//!
//! A datagram on one of these ports whose header does not parse as that tunnel is just UDP
//! (`not_tcp`). Every read is bounds-checked against the captured bytes, every length from
//! a header is checked against the end of the enclosing packet, and every loop over
//! variable parts (GTP extension headers, A-MSDU subframes) has a fixed bound: hostile
//! input costs a few comparisons and never allocates.

use super::{after_ethertype, after_mpls, be16, SkipReason};

/// At most this many tunnels are opened around one segment; a deeper stack is not real
/// traffic (Zeek's `Tunnel::max_depth` defaults to 2; Wireshark has no limit).
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// GTP extension headers and A-MSDU subframes walked at most per packet.
const MAX_CHAIN: usize = 16;

/// A kind of tunnel, as counted in `capture.packets.tunnels`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    /// IPv4 or IPv6 directly inside IPv4 or IPv6 (IP protocols 4 and 41: IPIP, 6in4,
    /// 4in6, IPv6-in-IPv6).
    IpInIp,
    /// GRE (IP protocol 47, RFC 2784/2890), including PPTP's enhanced GRE (RFC 2637).
    Gre,
    /// GRE in UDP (RFC 8086, port 4754).
    GreInUdp,
    /// Cisco ERSPAN types I, II and III (GRE protocol types 0x88be and 0x22eb).
    Erspan,
    /// Aruba access points' 802.11 frames in GRE (protocol types 0x8200–0x82f0,
    /// 0x8300–0x8370, 0x9000).
    Aruba,
    /// VXLAN (RFC 7348, port 4789).
    Vxlan,
    /// Geneve (RFC 8926, port 6081).
    Geneve,
    /// GTP-U, GTPv1 user plane (3GPP TS 29.281, port 2152).
    GtpU,
    /// AYIYA, "anything in anything" (port 5072).
    Ayiya,
    /// Teredo (RFC 4380, port 3544).
    Teredo,
}

impl TunnelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::IpInIp => "ip_in_ip",
            TunnelKind::Gre => "gre",
            TunnelKind::GreInUdp => "gre_in_udp",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Aruba => "aruba",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::GtpU => "gtp_u",
            TunnelKind::Ayiya => "ayiya",
            TunnelKind::Teredo => "teredo",
        }
    }
}

impl std::fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tunnels a segment was found in, outermost first. Fixed size, `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tunnels {
    kinds: [Option<TunnelKind>; MAX_TUNNEL_DEPTH],
}

impl Tunnels {
    pub fn is_empty(&self) -> bool {
        self.kinds[0].is_none()
    }

    pub fn len(&self) -> usize {
        self.kinds.iter().take_while(|k| k.is_some()).count()
    }

    /// Outermost first.
    pub fn iter(&self) -> impl Iterator<Item = TunnelKind> + '_ {
        self.kinds.iter().map_while(|k| *k)
    }

    /// Adds the next inner tunnel; `false` when [`MAX_TUNNEL_DEPTH`] are already open.
    pub(super) fn push(&mut self, kind: TunnelKind) -> bool {
        match self.kinds.iter_mut().find(|k| k.is_none()) {
            Some(slot) => {
                *slot = Some(kind);
                true
            }
            None => false,
        }
    }
}

/// Where an encapsulated IP datagram sits in the frame: `[start, end)`, where `end` is
/// where the enclosing packet says the datagram ends. `end` may lie beyond the captured
/// bytes (snaplen), and beyond the frame when the outer datagram was fragmented and this
/// frame holds its first fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Inner {
    pub start: usize,
    pub end: usize,
    pub kind: TunnelKind,
}

/// Per-frame walk state: which 802.11 A-MSDU subframe to decode, and whether another
/// one follows it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Subframes {
    pub wanted: u8,
    pub next: Option<u8>,
}

const UDP_GTP_U: u16 = 2152;
const UDP_TEREDO: u16 = 3544;
const UDP_GRE: u16 = 4754;
const UDP_VXLAN: u16 = 4789;
const UDP_AYIYA: u16 = 5072;
const UDP_GENEVE: u16 = 6081;

/// The tunnel a UDP port is registered for, as Zeek's default configuration has it.
fn udp_tunnel_port(port: u16) -> Option<TunnelKind> {
    Some(match port {
        UDP_GTP_U => TunnelKind::GtpU,
        UDP_TEREDO => TunnelKind::Teredo,
        UDP_GRE => TunnelKind::GreInUdp,
        UDP_VXLAN => TunnelKind::Vxlan,
        UDP_AYIYA => TunnelKind::Ayiya,
        UDP_GENEVE => TunnelKind::Geneve,
        _ => return None,
    })
}

/// IP protocol numbers that carry a tunnel.
pub(super) const IPPROTO_IPIP: u8 = 4;
pub(super) const IPPROTO_IPV6: u8 = 41;
pub(super) const IPPROTO_GRE: u8 = 47;

/// IP directly in IP (protocol 4 carries IPv4, 41 IPv6). The inner version must match the
/// protocol number.
pub(super) fn ip_in_ip(data: &[u8], at: usize, end: usize, proto: u8) -> Result<Inner, SkipReason> {
    let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
    let want = if proto == IPPROTO_IPIP { 4 } else { 6 };
    if first >> 4 != want {
        return Err(SkipReason::BadIpHeader);
    }
    Ok(Inner {
        start: at,
        end,
        kind: TunnelKind::IpInIp,
    })
}

/// A UDP datagram whose header starts at `at`. `end` is the end of the enclosing IP
/// datagram; `outer_fragmented` says this frame holds only the first fragment of it, so
/// the UDP length (which counts the whole datagram) is the better bound.
pub(super) fn udp(
    data: &[u8],
    at: usize,
    end: usize,
    outer_fragmented: bool,
    subframes: &mut Subframes,
) -> Result<Inner, SkipReason> {
    // RFC 768: source port, destination port, length (header included), checksum.
    let (Some(sport), Some(dport), Some(ulen)) =
        (be16(data, at), be16(data, at + 2), be16(data, at + 4))
    else {
        return Err(SkipReason::NotTcp);
    };
    let Some(kind) = udp_tunnel_port(dport).or_else(|| udp_tunnel_port(sport)) else {
        return teredo_by_content(data, at + 8, end);
    };
    let ulen = usize::from(ulen);
    let end = if ulen < 8 {
        // 0 in IPv6 jumbograms; anything below the header size is a lie: the IP length
        // is all there is.
        end
    } else if outer_fragmented {
        at + ulen
    } else {
        (at + ulen).min(end)
    };
    let payload = at + 8;
    let inner = match kind {
        TunnelKind::Vxlan => vxlan(data, payload, end),
        TunnelKind::Geneve => geneve(data, payload, end),
        TunnelKind::GreInUdp => gre(data, payload, end, subframes).map(|mut inner| {
            if inner.kind == TunnelKind::Gre {
                inner.kind = TunnelKind::GreInUdp;
            }
            inner
        }),
        TunnelKind::GtpU => gtp_u(data, payload, end),
        TunnelKind::Ayiya => ayiya(data, payload, end),
        TunnelKind::Teredo => teredo(data, payload, end),
        _ => return Err(SkipReason::NotTcp),
    };
    // A datagram on a tunnel port that does not hold that tunnel is plain UDP.
    inner.map_err(|e| match e {
        SkipReason::TruncatedHeader => SkipReason::TruncatedHeader,
        _ => SkipReason::NotTcp,
    })
}

/// An Ethernet frame inside a tunnel, from its destination MAC: VLAN tags and the rest are
/// walked as on the outer link.
fn ethernet(data: &[u8], at: usize, end: usize, kind: TunnelKind) -> Result<Inner, SkipReason> {
    let ethertype = be16(data, at + 12).ok_or(SkipReason::TruncatedHeader)?;
    let ip = after_ethertype(data, at + 14, ethertype)?;
    Ok(Inner {
        start: ip.start,
        end: ip.end.map_or(end, |e| e.min(end)),
        kind,
    })
}

/// What a 16-bit protocol type (an EtherType: GRE, Geneve) announces, for the types that
/// lead to IP.
fn by_ethertype(
    data: &[u8],
    at: usize,
    end: usize,
    ethertype: u16,
    kind: TunnelKind,
) -> Result<Inner, SkipReason> {
    match ethertype {
        0x0800 | 0x86dd => {
            let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
            if first >> 4 != if ethertype == 0x0800 { 4 } else { 6 } {
                return Err(SkipReason::BadIpHeader);
            }
            Ok(Inner {
                start: at,
                end,
                kind,
            })
        }
        // Transparent Ethernet bridging.
        0x6558 => ethernet(data, at, end, kind),
        0x8847 | 0x8848 => {
            let ip = after_mpls(data, at)?;
            Ok(Inner {
                start: ip.start,
                end,
                kind,
            })
        }
        _ => Err(SkipReason::NotIp),
    }
}

/// VXLAN (RFC 7348 §5): flags (the I bit, 0x08, says the VNI is valid), 3 reserved bytes,
/// the 24-bit VNI and a reserved byte; then an Ethernet frame. Like Zeek, the flags are
/// not checked: the port says VXLAN.
fn vxlan(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    if data.get(at..at + 8).is_none() {
        return Err(SkipReason::TruncatedHeader);
    }
    ethernet(data, at + 8, end, TunnelKind::Vxlan)
}

/// Geneve (RFC 8926 §3.4): version (2 bits, 0) and options length (6 bits, in 4-byte
/// words), O and C flags, the protocol type (an EtherType), VNI and reserved; then the
/// options, then the payload the protocol type announces.
fn geneve(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
    if first >> 6 != 0 {
        return Err(SkipReason::NotTcp);
    }
    let protocol = be16(data, at + 2).ok_or(SkipReason::TruncatedHeader)?;
    let payload = at + 8 + usize::from(first & 0x3f) * 4;
    if payload > end {
        return Err(SkipReason::TruncatedHeader);
    }
    by_ethertype(data, payload, end, protocol, TunnelKind::Geneve)
}

// GRE flag bits (RFC 2784 §2, RFC 2890 §2, RFC 2637 §4.1).
const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_ACK: u16 = 0x0080;
/// Bits no version defines (RFC 1701's strict source route and recursion control, and
/// reserved flags).
const GRE_UNDEFINED: u16 = 0x0878;

/// GRE (RFC 2784 with RFC 2890's key and sequence number; version 1 is PPTP's enhanced
/// GRE, RFC 2637): flags and version, protocol type, then checksum+reserved (C), key (K),
/// sequence number (S) and, in version 1, acknowledgement number (A), 4 bytes each.
///
/// The payload by protocol type: IPv4, IPv6, MPLS, Ethernet (0x6558), ERSPAN (0x88be:
/// type I without a sequence number, type II with one and an 8-byte ERSPAN header;
/// 0x22eb: type III, 12 bytes plus an 8-byte platform subheader when its O bit is set),
/// Aruba's 802.11 frames, and PPP in version 1. RFC 1701's routing (deprecated by RFC
/// 2784) is not walked, as Zeek does not.
pub(super) fn gre(
    data: &[u8],
    at: usize,
    end: usize,
    subframes: &mut Subframes,
) -> Result<Inner, SkipReason> {
    let flags = be16(data, at).ok_or(SkipReason::TruncatedHeader)?;
    let protocol = be16(data, at + 2).ok_or(SkipReason::TruncatedHeader)?;
    let version = flags & 0x0007;
    if version > 1 || flags & (GRE_ROUTING | GRE_UNDEFINED) != 0 {
        return Err(SkipReason::NotTcp);
    }
    let mut len = 4;
    for bit in [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE, GRE_ACK] {
        if flags & bit != 0 {
            len += 4;
        }
    }
    let payload = at + len;
    if payload > end || data.len() < payload {
        return Err(SkipReason::TruncatedHeader);
    }
    if version == 1 {
        // Enhanced GRE carries PPP only (protocol 0x880b).
        if protocol != 0x880b {
            return Err(SkipReason::NotTcp);
        }
        return ppp(data, payload, end);
    }
    match protocol {
        0x88be => {
            // ERSPAN type II: 4 bits version, VLAN, COS/En/T, session id, then reserved,
            // index: 8 bytes. Type I has no header (and no GRE sequence number).
            let erspan = if flags & GRE_SEQUENCE != 0 { 8 } else { 0 };
            ethernet(data, payload + erspan, end, TunnelKind::Erspan)
        }
        0x22eb => {
            // ERSPAN type III: 12 bytes; bit 0 of the last one (O) announces an 8-byte
            // platform-specific subheader.
            let last = *data.get(payload + 11).ok_or(SkipReason::TruncatedHeader)?;
            let erspan = if last & 0x01 != 0 { 20 } else { 12 };
            ethernet(data, payload + erspan, end, TunnelKind::Erspan)
        }
        p if is_aruba(p) => ieee802_11(data, payload, end, subframes),
        p => by_ethertype(data, payload, end, p, TunnelKind::Gre),
    }
}

/// Aruba's GRE protocol types for 802.11 frames, as Zeek registers them.
fn is_aruba(protocol: u16) -> bool {
    let in_table = (0x8200..=0x82f0).contains(&protocol) || (0x8300..=0x8370).contains(&protocol);
    in_table && protocol & 0x0f == 0 || protocol == 0x9000
}

/// PPP in enhanced GRE: address 0xff and control 0x03 unless compressed away (RFC 1662
/// §3.2, ACFC), then the protocol, one byte when compressed (RFC 1661 §6.5, PFC: an odd
/// first byte). 0x0021 is IPv4, 0x0057 IPv6.
fn ppp(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let mut at = at;
    if be16(data, at) == Some(0xff03) {
        at += 2;
    }
    let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
    let (protocol, len) = if first & 0x01 != 0 {
        (u16::from(first), 1)
    } else {
        (be16(data, at).ok_or(SkipReason::TruncatedHeader)?, 2)
    };
    let ethertype = match protocol {
        0x0021 => 0x0800,
        0x0057 => 0x86dd,
        _ => return Err(SkipReason::NotIp),
    };
    by_ethertype(data, at + len, end, ethertype, TunnelKind::Gre)
}

/// An IEEE 802.11 data frame (Aruba's GRE). Frame control (type, subtype, DS and
/// protected flags), duration and three addresses: 24 bytes; a fourth address when both
/// To-DS and From-DS are set; 2 bytes of QoS control in QoS subtypes, plus 4 of HT control
/// when the Order bit is set in one. The body is LLC/SNAP and an EtherType, or an A-MSDU
/// (QoS control bit 7): subframes of destination, source, length, then LLC/SNAP and
/// payload, each padded to a multiple of 4 bytes (IEEE 802.11-2020 §9.3.2.2).
fn ieee802_11(
    data: &[u8],
    at: usize,
    end: usize,
    subframes: &mut Subframes,
) -> Result<Inner, SkipReason> {
    let fc = data.get(at..at + 2).ok_or(SkipReason::TruncatedHeader)?;
    let (fc0, fc1) = (fc[0], fc[1]);
    let frame_type = (fc0 >> 2) & 0x03;
    let subtype = fc0 >> 4;
    // Type 2 is data; subtypes with bit 2 set (null, QoS null…) carry no body.
    if frame_type != 2 || subtype & 0x04 != 0 {
        return Err(SkipReason::NotIp);
    }
    // Protected: the body is encrypted.
    if fc1 & 0x40 != 0 {
        return Err(SkipReason::NotIp);
    }
    let mut len = 24;
    if fc1 & 0x03 == 0x03 {
        len += 6;
    }
    let mut amsdu = false;
    if subtype & 0x08 != 0 {
        let qos = *data.get(at + len).ok_or(SkipReason::TruncatedHeader)?;
        amsdu = qos & 0x80 != 0;
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4;
        }
    }
    let body = at + len;
    if body > end {
        return Err(SkipReason::TruncatedHeader);
    }
    if !amsdu {
        return llc_snap(data, body, end);
    }
    let mut sub = body;
    for index in 0..MAX_CHAIN {
        let length = usize::from(be16(data, sub + 12).ok_or(SkipReason::TruncatedHeader)?);
        let msdu = sub + 14;
        let msdu_end = msdu + length;
        if msdu_end > end {
            return Err(SkipReason::TruncatedHeader);
        }
        let next = msdu_end + (4 - (14 + length) % 4) % 4;
        if index == usize::from(subframes.wanted) {
            if next + 14 <= end && index + 1 < MAX_CHAIN {
                subframes.next = u8::try_from(index + 1).ok();
            }
            return llc_snap(data, msdu, msdu_end);
        }
        sub = next;
    }
    Err(SkipReason::NotIp)
}

/// LLC/SNAP (RFC 1042): DSAP and SSAP 0xaa, control 0x03, organisation code 0, then an
/// EtherType.
fn llc_snap(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let llc = data.get(at..at + 8).ok_or(SkipReason::TruncatedHeader)?;
    if llc[..6] != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return Err(SkipReason::NotIp);
    }
    let ethertype = u16::from_be_bytes([llc[6], llc[7]]);
    let ip = after_ethertype(data, at + 8, ethertype)?;
    Ok(Inner {
        start: ip.start,
        end: ip.end.map_or(end, |e| e.min(end)),
        kind: TunnelKind::Aruba,
    })
}

/// GTP-U (3GPP TS 29.281 §5.1): flags (version 1 in the top 3 bits, protocol type 1 =
/// GTP, then E, S and PN), message type (255 = G-PDU, a user packet), length (bytes after
/// the first 8), TEID. When any of E, S, PN is set, 4 more bytes: sequence number, N-PDU
/// number, next extension header type. Each extension header (§5.2) gives its length in
/// 4-byte units in its first byte and the next type in its last; type 0 ends the chain.
/// The user packet is IPv4 or IPv6.
fn gtp_u(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let h = data.get(at..at + 8).ok_or(SkipReason::TruncatedHeader)?;
    let flags = h[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
        return Err(SkipReason::NotTcp);
    }
    let end = (at + 8 + usize::from(u16::from_be_bytes([h[2], h[3]]))).min(end);
    let mut payload = at + 8;
    if flags & 0x07 != 0 {
        let mut next_type = *data.get(at + 11).ok_or(SkipReason::TruncatedHeader)?;
        payload += 4;
        if flags & 0x04 != 0 {
            let mut walked = 0;
            while next_type != 0 {
                walked += 1;
                let units = *data.get(payload).ok_or(SkipReason::TruncatedHeader)?;
                if units == 0 || walked > MAX_CHAIN {
                    return Err(SkipReason::NotTcp);
                }
                payload += usize::from(units) * 4;
                next_type = *data.get(payload - 1).ok_or(SkipReason::TruncatedHeader)?;
            }
        }
    }
    if payload > end {
        return Err(SkipReason::TruncatedHeader);
    }
    ip_by_version(data, payload, end, TunnelKind::GtpU)
}

/// A payload known to be IP of either version: the version nibble decides.
fn ip_by_version(
    data: &[u8],
    at: usize,
    end: usize,
    kind: TunnelKind,
) -> Result<Inner, SkipReason> {
    match *data.get(at).ok_or(SkipReason::TruncatedHeader)? >> 4 {
        4 | 6 => Ok(Inner {
            start: at,
            end,
            kind,
        }),
        _ => Err(SkipReason::NotIp),
    }
}

/// AYIYA (draft-massar-v6ops-ayiya §5): identity length (2^n bytes) and type, signature
/// length (n × 4 bytes) and hash method, authentication method and opcode, next header
/// (an IP protocol number), 4 bytes of epoch time; then identity and signature. Only
/// opcode 1 (forward) carries a packet.
fn ayiya(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let h = data.get(at..at + 8).ok_or(SkipReason::TruncatedHeader)?;
    let identity = 1usize << (h[0] >> 4);
    let signature = usize::from(h[1] >> 4) * 4;
    if h[2] & 0x0f != 1 {
        return Err(SkipReason::NotTcp);
    }
    let payload = at + 8 + identity + signature;
    if payload > end {
        return Err(SkipReason::TruncatedHeader);
    }
    match h[3] {
        IPPROTO_IPIP | IPPROTO_IPV6 => {
            let mut inner = ip_in_ip(data, payload, end, h[3])?;
            inner.kind = TunnelKind::Ayiya;
            Ok(inner)
        }
        _ => Err(SkipReason::NotTcp),
    }
}

/// Teredo (RFC 4380 §5.1.1): an IPv6 packet, optionally preceded by an authentication
/// indicator (0x0001, client identifier length, authentication value length, both
/// values, an 8-byte nonce and a confirmation byte) and then an origin indication
/// (0x0000, obfuscated port and address: 8 bytes).
fn teredo(data: &[u8], at: usize, end: usize) -> Result<Inner, SkipReason> {
    let mut at = at;
    if be16(data, at) == Some(0x0001) {
        let lens = data
            .get(at + 2..at + 4)
            .ok_or(SkipReason::TruncatedHeader)?;
        at += 4 + usize::from(lens[0]) + usize::from(lens[1]) + 8 + 1;
    }
    if be16(data, at) == Some(0x0000) {
        at += 8;
    }
    if at > end {
        return Err(SkipReason::TruncatedHeader);
    }
    let first = *data.get(at).ok_or(SkipReason::TruncatedHeader)?;
    if first >> 4 != 6 {
        return Err(SkipReason::NotTcp);
    }
    Ok(Inner {
        start: at,
        end,
        kind: TunnelKind::Teredo,
    })
}

/// Teredo's address prefix, 2001:0000::/32 (RFC 4380 §2.6).
const TEREDO_PREFIX: [u8; 4] = [0x20, 0x01, 0x00, 0x00];

/// Teredo on ports other than 3544, recognised by what it carries, as Zeek's `dpd_teredo`
/// signature does: a UDP payload that is (after Teredo's optional authentication and
/// origin indicators) an IPv6 packet from or to a Teredo address (2001:0::/32). To keep
/// plain UDP from passing for it, closewait also asks that the IPv6 packet fill the
/// datagram exactly (its payload length plus its 40-byte header) and carry TCP directly.
/// Only datagrams on no tunnel port get here.
fn teredo_by_content(data: &[u8], payload: usize, end: usize) -> Result<Inner, SkipReason> {
    let inner = teredo(data, payload, end).map_err(|_| SkipReason::NotTcp)?;
    let ip = data.get(inner.start..end).ok_or(SkipReason::NotTcp)?;
    let from_or_to_teredo =
        ip.get(8..12) == Some(&TEREDO_PREFIX[..]) || ip.get(24..28) == Some(&TEREDO_PREFIX[..]);
    let fills_datagram = be16(ip, 4).map(|n| usize::from(n) + 40) == Some(ip.len());
    if from_or_to_teredo && fills_datagram && ip.get(6) == Some(&6) {
        Ok(inner)
    } else {
        Err(SkipReason::NotTcp)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_frame, decode_packet, linktype, Decoded};
    use super::*;
    use crate::capture::testutil::frames::{
        eth, eth_v4_tcp, ipv4, ipv6, raw_v4_tcp, raw_v6_tcp, udp, wlan_amsdu,
    };

    fn decode(frame: &[u8]) -> Result<Decoded, SkipReason> {
        decode_packet(linktype::ETHERNET, frame, frame.len() as u32, 0)
    }

    fn eth_v4(proto: u8, payload: &[u8]) -> Vec<u8> {
        eth(0x0800, &ipv4(proto, payload))
    }

    fn eth_v4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        eth_v4(17, &udp(sport, dport, payload))
    }

    /// The inner segment of every test: 10.0.0.1:40000 → 10.0.0.2:80, seq 1000, 5 bytes.
    fn inner() -> Vec<u8> {
        raw_v4_tcp(b"hello")
    }

    #[track_caller]
    fn assert_inner(d: Decoded, kinds: &[TunnelKind]) {
        let s = d.segment;
        assert_eq!(s.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:80".parse().unwrap());
        assert_eq!(s.seq, 1000);
        assert_eq!(s.payload_len, 5);
        assert_eq!(s.captured_payload_len, 5);
        assert!(!d.first_fragment);
        assert_eq!(d.tunnels.iter().collect::<Vec<_>>(), kinds);
        assert_eq!(d.tunnels.len(), kinds.len());
    }

    fn gre(flags: u16, protocol: u16, optional: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = flags.to_be_bytes().to_vec();
        out.extend_from_slice(&protocol.to_be_bytes());
        out.extend_from_slice(optional);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn plain_traffic_has_no_tunnels() {
        let d = decode(&eth_v4_tcp(b"", |b| b.syn())).unwrap();
        assert!(d.tunnels.is_empty());
    }

    #[test]
    fn ipv4_in_ipv4() {
        let d = decode(&eth_v4(4, &inner())).unwrap();
        assert_inner(d, &[TunnelKind::IpInIp]);
    }

    #[test]
    fn ipv6_in_ipv4_6in4() {
        let d = decode(&eth_v4(41, &raw_v6_tcp(b"abc"))).unwrap();
        assert_eq!(d.segment.src, "[2001:db8::1]:5555".parse().unwrap());
        assert_eq!(d.segment.payload_len, 3);
        assert_eq!(d.tunnels.iter().collect::<Vec<_>>(), [TunnelKind::IpInIp]);
    }

    #[test]
    fn ipv4_in_ipv6() {
        let d = decode(&eth(0x86dd, &ipv6(4, &inner()))).unwrap();
        assert_inner(d, &[TunnelKind::IpInIp]);
    }

    #[test]
    fn ip_in_ip_with_the_wrong_inner_version_is_a_bad_header() {
        assert_eq!(
            decode(&eth_v4(4, &raw_v6_tcp(b""))),
            Err(SkipReason::BadIpHeader)
        );
    }

    #[test]
    fn gre_ipv4_without_options() {
        let d = decode(&eth_v4(47, &gre(0, 0x0800, &[], &inner()))).unwrap();
        assert_inner(d, &[TunnelKind::Gre]);
    }

    #[test]
    fn gre_with_checksum_key_and_sequence_number() {
        let options = [0u8; 12];
        let frame = eth_v4(47, &gre(0xb000, 0x0800, &options, &inner()));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Gre]);
    }

    #[test]
    fn gre_over_ipv6_carrying_ipv6() {
        let frame = eth(
            0x86dd,
            &ipv6(47, &gre(0x2000, 0x86dd, &[0; 4], &raw_v6_tcp(b"xy"))),
        );
        let d = decode(&frame).unwrap();
        assert_eq!(d.segment.dst, "[2001:db8::2]:443".parse().unwrap());
        assert_eq!(d.segment.payload_len, 2);
    }

    #[test]
    fn gre_transparent_ethernet_bridging_with_a_vlan_tag() {
        let mut tagged = vec![0x00, 0x64, 0x08, 0x00];
        tagged.extend_from_slice(&inner());
        let frame = eth_v4(47, &gre(0, 0x6558, &[], &eth(0x8100, &tagged)));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Gre]);
    }

    #[test]
    fn gre_mpls() {
        let mut mpls = vec![0x00, 0x01, 0x01, 0x40]; // label 16, bottom of stack
        mpls.extend_from_slice(&inner());
        let frame = eth_v4(47, &gre(0, 0x8847, &[], &mpls));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Gre]);
    }

    #[test]
    fn gre_routing_and_unknown_versions_are_not_opened() {
        for flags in [0x4000, 0x0002, 0x0008] {
            let frame = eth_v4(47, &gre(flags, 0x0800, &[0; 4], &inner()));
            assert_eq!(decode(&frame), Err(SkipReason::NotTcp), "{flags:#x}");
        }
    }

    #[test]
    fn erspan_type_i_has_no_header() {
        let frame = eth_v4(47, &gre(0, 0x88be, &[], &eth(0x0800, &inner())));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Erspan]);
    }

    #[test]
    fn erspan_type_ii_after_the_gre_sequence_number() {
        let mut payload = vec![0x10, 0, 0, 1, 0, 0, 0, 0];
        payload.extend_from_slice(&eth(0x0800, &inner()));
        let frame = eth_v4(47, &gre(0x1000, 0x88be, &[0, 0, 0, 7], &payload));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Erspan]);
    }

    #[test]
    fn erspan_type_iii_with_and_without_platform_subheader() {
        for subheader in [false, true] {
            let mut payload = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, subheader as u8];
            if subheader {
                payload.extend_from_slice(&[0; 8]);
            }
            payload.extend_from_slice(&eth(0x0800, &inner()));
            let frame = eth_v4(47, &gre(0x1000, 0x22eb, &[0; 4], &payload));
            assert_inner(decode(&frame).unwrap(), &[TunnelKind::Erspan]);
        }
    }

    #[test]
    fn pptp_enhanced_gre_with_and_without_ppp_compression() {
        // Version 1, key (payload length + call id) and sequence number present.
        for ppp in [
            &[0xff, 0x03, 0x00, 0x21][..],
            &[0x21][..],
            &[0x00, 0x21][..],
        ] {
            let mut payload = ppp.to_vec();
            payload.extend_from_slice(&inner());
            let frame = eth_v4(47, &gre(0x3001, 0x880b, &[0; 8], &payload));
            assert_inner(decode(&frame).unwrap(), &[TunnelKind::Gre]);
        }
        // PPP control protocols (LCP 0xc021) are not IP.
        let frame = eth_v4(
            47,
            &gre(0x3001, 0x880b, &[0; 8], &[0xff, 0x03, 0xc0, 0x21, 1]),
        );
        assert_eq!(decode(&frame), Err(SkipReason::NotIp));
    }

    #[test]
    fn aruba_amsdu_yields_every_subframe() {
        let second = raw_v4_tcp(b"second segment");
        let frame = eth_v4(47, &gre(0, 0x8240, &[], &wlan_amsdu(&[&inner(), &second])));
        let len = frame.len() as u32;
        let first = decode_frame(linktype::ETHERNET, &frame, len, 0, 0);
        assert_inner(first.outcome.unwrap(), &[TunnelKind::Aruba]);
        assert_eq!(first.next_subframe, Some(1));
        let next = decode_frame(linktype::ETHERNET, &frame, len, 0, 1);
        assert_eq!(next.outcome.unwrap().segment.payload_len, 14);
        assert_eq!(next.next_subframe, None);
        let beyond = decode_frame(linktype::ETHERNET, &frame, len, 0, 2);
        assert!(beyond.outcome.is_err());
    }

    #[test]
    fn aruba_plain_80211_data_frame() {
        // QoS data without the A-MSDU bit: LLC/SNAP straight after the header.
        let amsdu = wlan_amsdu(&[&inner()]);
        let mut wlan = amsdu[..26].to_vec();
        wlan[24] = 0;
        wlan.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        wlan.extend_from_slice(&inner());
        let frame = eth_v4(47, &gre(0, 0x8200, &[], &wlan));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::Aruba]);
        // The same frame marked protected (encrypted) is not read.
        let mut protected = wlan.clone();
        protected[1] |= 0x40;
        let frame = eth_v4(47, &gre(0, 0x8200, &[], &protected));
        assert_eq!(decode(&frame), Err(SkipReason::NotIp));
    }

    #[test]
    fn vxlan_by_destination_or_source_port() {
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vxlan.extend_from_slice(&eth(0x0800, &inner()));
        for (sport, dport) in [(50000, 4789), (4789, 50000)] {
            let d = decode(&eth_v4_udp(sport, dport, &vxlan)).unwrap();
            assert_inner(d, &[TunnelKind::Vxlan]);
        }
    }

    #[test]
    fn geneve_with_options_carrying_ethernet_or_ip() {
        // Version 0, 2 words of options.
        let mut ethernet = vec![0x02, 0, 0x65, 0x58, 0, 0, 1, 0];
        ethernet.extend_from_slice(&[0; 8]);
        ethernet.extend_from_slice(&eth(0x0800, &inner()));
        let mut ip = vec![0x00, 0, 0x08, 0x00, 0, 0, 1, 0];
        ip.extend_from_slice(&inner());
        for payload in [ethernet, ip] {
            let d = decode(&eth_v4_udp(50000, 6081, &payload)).unwrap();
            assert_inner(d, &[TunnelKind::Geneve]);
        }
    }

    #[test]
    fn gre_in_udp() {
        let frame = eth_v4_udp(50000, 4754, &gre(0, 0x0800, &[], &inner()));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::GreInUdp]);
    }

    fn gtp(flags: u8, message: u8, optional: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flags, message];
        out.extend_from_slice(&((optional.len() + payload.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(optional);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn gtp_u_g_pdu_on_either_port() {
        for (sport, dport) in [(2152, 2152), (40000, 2152), (2152, 40000)] {
            let frame = eth_v4_udp(sport, dport, &gtp(0x30, 0xff, &[], &inner()));
            assert_inner(decode(&frame).unwrap(), &[TunnelKind::GtpU]);
        }
    }

    #[test]
    fn gtp_u_with_sequence_number_and_extension_headers() {
        // S and E set: sequence, N-PDU, next type 0x85 (PDU session container, 1 word,
        // next 0x40), then a 2-word UDP port extension (next 0).
        let optional = [
            0, 1, 0, 0x85, //
            1, 0x09, 0x01, 0x40, //
            2, 0, 0, 0, 0, 0, 0, 0,
        ];
        let frame = eth_v4_udp(2152, 2152, &gtp(0x36, 0xff, &optional, &inner()));
        assert_inner(decode(&frame).unwrap(), &[TunnelKind::GtpU]);
    }

    #[test]
    fn gtp_messages_that_are_not_user_packets_are_udp() {
        // Echo request (1), GTPv2 (version 2), zero-length extension header.
        let echo = gtp(0x32, 0x01, &[0, 1, 0, 0], &[]);
        let v2 = gtp(0x48, 0xff, &[0; 8], &inner());
        let zero_ext = gtp(0x34, 0xff, &[0, 0, 0, 0x85, 0, 0, 0, 0], &inner());
        for payload in [echo, v2, zero_ext] {
            let frame = eth_v4_udp(2152, 2152, &payload);
            assert_eq!(decode(&frame), Err(SkipReason::NotTcp));
        }
    }

    #[test]
    fn gtp_in_a_first_fragment_keeps_the_inner_length() {
        // The outer datagram is cut after the inner TCP header plus 2 bytes (fragment
        // offset 0, more fragments): the inner header still says 5 bytes.
        let whole = eth_v4_udp(2152, 2152, &gtp(0x30, 0xff, &[], &inner()));
        let cut = whole.len() - 3;
        let mut frame = whole[..cut].to_vec();
        let total = (cut - 14) as u16;
        frame[16..18].copy_from_slice(&total.to_be_bytes());
        frame[20] = 0x20; // MF
        let d = decode(&frame).unwrap();
        assert_eq!(d.segment.payload_len, 5);
        assert_eq!(d.segment.captured_payload_len, 5);
        assert!(!d.first_fragment);
        assert!(d.tunnel_fragment);
    }

    #[test]
    fn ayiya_forward_carrying_ipv6_and_ipv4() {
        // Identity 2^4 = 16 bytes, signature 5 × 4 = 20 bytes, opcode 1 (forward).
        for (next, ip) in [(41u8, raw_v6_tcp(b"abc")), (4u8, inner())] {
            let mut payload = vec![0x41, 0x52, 0x11, next, 0, 0, 0, 0];
            payload.extend_from_slice(&[0; 36]);
            payload.extend_from_slice(&ip);
            let d = decode(&eth_v4_udp(53859, 5072, &payload)).unwrap();
            assert_eq!(d.tunnels.iter().collect::<Vec<_>>(), [TunnelKind::Ayiya]);
        }
        // Opcode 0 (heartbeat) carries nothing.
        let heartbeat = [0x41, 0x52, 0x10, 59, 0, 0, 0, 0];
        let frame = eth_v4_udp(53859, 5072, &[&heartbeat[..], &[0; 36]].concat());
        assert_eq!(decode(&frame), Err(SkipReason::NotTcp));
    }

    #[test]
    fn teredo_bare_with_origin_and_with_authentication() {
        let v6 = raw_v6_tcp(b"abc");
        let origin = [0u8, 0, 0xbe, 0xef, 1, 2, 3, 4];
        // Authentication: client id 2 bytes, value 3 bytes, nonce, confirmation.
        let mut auth = vec![0, 1, 2, 3, 9, 9, 7, 7, 7];
        auth.extend_from_slice(&[0; 9]);
        for prefix in [vec![], origin.to_vec(), [auth, origin.to_vec()].concat()] {
            let d = decode(&eth_v4_udp(3544, 40000, &[prefix, v6.clone()].concat())).unwrap();
            assert_eq!(d.segment.dst, "[2001:db8::2]:443".parse().unwrap());
            assert_eq!(d.tunnels.iter().collect::<Vec<_>>(), [TunnelKind::Teredo]);
        }
        // Not IPv6 behind the indicators: plain UDP.
        let frame = eth_v4_udp(3544, 40000, &inner());
        assert_eq!(decode(&frame), Err(SkipReason::NotTcp));
    }

    #[test]
    fn teredo_between_other_ports_is_recognised_by_its_teredo_address() {
        let mut v6 = raw_v6_tcp(b"abc");
        // Not a Teredo address (2001:db8::/32): off port 3544 it is plain UDP.
        assert_eq!(
            decode(&eth_v4_udp(40001, 50000, &v6)),
            Err(SkipReason::NotTcp)
        );
        // From a Teredo client (2001:0::/32), between a relay's and a client's own ports.
        v6[8..12].copy_from_slice(&TEREDO_PREFIX);
        let origin = [0u8, 0, 0xbe, 0xef, 1, 2, 3, 4];
        for prefix in [vec![], origin.to_vec()] {
            let d = decode(&eth_v4_udp(40001, 50000, &[prefix, v6.clone()].concat())).unwrap();
            assert_eq!(d.segment.dst, "[2001:db8::2]:443".parse().unwrap());
            assert_eq!(d.tunnels.iter().collect::<Vec<_>>(), [TunnelKind::Teredo]);
        }
        // A datagram longer than the IPv6 packet it seems to hold is not taken for one.
        let padded = [v6.clone(), vec![0; 4]].concat();
        assert_eq!(
            decode(&eth_v4_udp(40001, 50000, &padded)),
            Err(SkipReason::NotTcp)
        );
    }

    #[test]
    fn plain_udp_and_garbage_on_tunnel_ports_stay_udp() {
        assert_eq!(
            decode(&eth_v4_udp(53, 53, b"dns?")),
            Err(SkipReason::NotTcp)
        );
        let mut x: u32 = 99;
        for port in [2152u16, 3544, 4754, 4789, 5072, 6081] {
            for len in 0..80usize {
                let junk: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (x >> 16) as u8
                    })
                    .collect();
                // Whatever the answer, it is no panic and no segment from nowhere.
                let _ = decode(&eth_v4_udp(40000, port, &junk));
            }
        }
    }

    #[test]
    fn inner_lengths_are_bounded_by_the_outer_packet() {
        // The inner IPv4 header claims 100 bytes more than the tunnel carries.
        let mut ip = inner();
        let claimed = u16::from_be_bytes([ip[2], ip[3]]) + 100;
        ip[2..4].copy_from_slice(&claimed.to_be_bytes());
        let mut frame = eth_v4(47, &gre(0, 0x0800, &[], &ip));
        frame.extend_from_slice(&[0; 200]); // trailing bytes beyond the outer datagram
        assert_eq!(decode(&frame).unwrap().segment.payload_len, 5);
    }

    #[test]
    fn nesting_up_to_the_depth_limit() {
        // GRE in IP-in-IP in VXLAN in GTP-U: 4 tunnels.
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend_from_slice(&eth(
            0x0800,
            &ipv4(4, &ipv4(47, &gre(0, 0x0800, &[], &inner()))),
        ));
        let gtp_payload = ipv4(17, &udp(1, 4789, &vxlan));
        let frame = eth_v4_udp(2152, 2152, &gtp(0x30, 0xff, &[], &gtp_payload));
        let d = decode(&frame).unwrap();
        assert_inner(
            d,
            &[
                TunnelKind::GtpU,
                TunnelKind::Vxlan,
                TunnelKind::IpInIp,
                TunnelKind::Gre,
            ],
        );
        // One more IP-in-IP around it all is too deep.
        let deeper = eth_v4(4, &frame[14..]);
        assert_eq!(decode(&deeper), Err(SkipReason::TunnelTooDeep));
    }

    #[test]
    fn self_nesting_gre_stops_at_the_limit() {
        let mut payload = inner();
        for _ in 0..(MAX_TUNNEL_DEPTH + 3) {
            payload = ipv4(47, &gre(0, 0x0800, &[], &payload));
        }
        assert_eq!(
            decode(&eth(0x0800, &payload)),
            Err(SkipReason::TunnelTooDeep)
        );
    }

    #[test]
    fn truncated_tunnel_headers_never_panic() {
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend_from_slice(&eth(0x0800, &inner()));
        let frames = [
            eth_v4(47, &gre(0xb000, 0x0800, &[0; 12], &inner())),
            eth_v4(47, &gre(0, 0x8240, &[], &wlan_amsdu(&[&inner(), &inner()]))),
            eth_v4(47, &gre(0x1000, 0x22eb, &[0; 4], &[0x20; 40])),
            eth_v4_udp(1, 4789, &vxlan),
            eth_v4_udp(
                2152,
                2152,
                &gtp(0x34, 0xff, &[0, 0, 0, 0x85, 3, 0, 0, 0], &inner()),
            ),
            eth_v4_udp(1, 5072, &[0xf1, 0xf2, 0x11, 41, 0, 0, 0, 0]),
            eth_v4_udp(3544, 1, &[0, 1, 255, 255]),
        ];
        for frame in frames {
            for cut in 0..frame.len() {
                let data = &frame[..cut];
                for orig in [cut as u32, frame.len() as u32] {
                    for sub in 0..3 {
                        let _ = decode_frame(linktype::ETHERNET, data, orig, 0, sub);
                    }
                }
            }
        }
    }
}
