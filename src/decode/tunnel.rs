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
//! always, and the UDP-based tunnels by their well-known port on either side of the
//! datagram (Zeek dispatches on the responder's port after flipping a sender on a
//! well-known port to responder, which comes to the same):
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
pub fn udp_tunnel_port(port: u16) -> Option<TunnelKind> {
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
        return Err(SkipReason::NotTcp);
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
    (0x8200..=0x82f0).contains(&protocol) && protocol & 0x0f == 0
        || (0x8300..=0x8370).contains(&protocol) && protocol & 0x0f == 0
        || protocol == 0x9000
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
