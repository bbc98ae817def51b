//! Test helpers: hand-made frames and tiny pcap/pcapng writers, so tests build their
//! captures in memory and say exactly what is in them.

/// One packet to write.
#[derive(Clone, Debug)]
pub(crate) struct Pkt {
    pub ts_ns: i64,
    pub data: Vec<u8>,
    /// Wire length; `None` = the data length.
    pub orig_len: Option<u32>,
}

impl Pkt {
    pub(crate) fn new(ts_ns: i64, data: Vec<u8>) -> Pkt {
        Pkt {
            ts_ns,
            data,
            orig_len: None,
        }
    }
}

/// A classic pcap file.
pub(crate) fn pcap_file(link_type: u32, big_endian: bool, nanos: bool, pkts: &[Pkt]) -> Vec<u8> {
    pcap_file_snaplen(link_type, big_endian, nanos, 262144, pkts)
}

pub(crate) fn pcap_file_snaplen(
    link_type: u32,
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    pkts: &[Pkt],
) -> Vec<u8> {
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(link_type));
    for p in pkts {
        let secs = p.ts_ns.div_euclid(1_000_000_000) as u32;
        let ns = p.ts_ns.rem_euclid(1_000_000_000) as u32;
        out.extend_from_slice(&u32b(secs));
        out.extend_from_slice(&u32b(if nanos { ns } else { ns / 1000 }));
        out.extend_from_slice(&u32b(p.data.len() as u32));
        out.extend_from_slice(&u32b(p.orig_len.unwrap_or(p.data.len() as u32)));
        out.extend_from_slice(&p.data);
    }
    out
}

/// A pcapng writer, block by block.
pub(crate) struct Ng {
    pub out: Vec<u8>,
    big_endian: bool,
}

impl Ng {
    /// Starts a file with a first section header.
    pub(crate) fn new(big_endian: bool) -> Ng {
        let mut ng = Ng {
            out: Vec::new(),
            big_endian,
        };
        ng.shb(big_endian);
        ng
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Any block: type, length, body padded to 32 bits, length.
    pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Ng {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let t = self.u32b(block_type);
        let l = self.u32b(len);
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    /// A new section (resets interfaces), possibly changing byte order.
    pub(crate) fn shb(&mut self, big_endian: bool) -> &mut Ng {
        self.big_endian = big_endian;
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        self.block(0x0A0D_0D0A, &body)
    }

    /// An interface; `tsresol`/`tsoffset` options only when given.
    pub(crate) fn idb(
        &mut self,
        link_type: u16,
        snaplen: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(link_type));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b(snaplen));
        // An unrelated option first (if_name "eth0"), to exercise the option walk.
        body.extend_from_slice(&self.u16b(2));
        body.extend_from_slice(&self.u16b(4));
        body.extend_from_slice(b"eth0");
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.u16b(9));
            body.extend_from_slice(&self.u16b(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.u16b(14));
            body.extend_from_slice(&self.u16b(8));
            let v = if self.big_endian {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            body.extend_from_slice(&v);
        }
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(1, &body)
    }

    /// Enhanced Packet Block; `units` in the interface's resolution.
    pub(crate) fn epb(&mut self, if_id: u32, units: u64, data: &[u8], orig_len: u32) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(if_id));
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(orig_len));
        body.extend_from_slice(data);
        body.resize(body.len().div_ceil(4) * 4, 0);
        // An epb_flags option, as dumpcap may write.
        body.extend_from_slice(&self.u16b(2));
        body.extend_from_slice(&self.u16b(4));
        body.extend_from_slice(&self.u32b(1));
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(6, &body)
    }

    /// Interface Statistics Block taken at `units`, with an `isb_endtime` when given (both
    /// in `units`, whatever the reader makes of them), after an `opt_comment` as dumpcap
    /// writes.
    pub(crate) fn isb(&mut self, if_id: u32, units: u64, end: Option<u64>) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(if_id));
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(5));
        body.extend_from_slice(b"stats\0\0\0");
        if let Some(end) = end {
            body.extend_from_slice(&self.u16b(3));
            body.extend_from_slice(&self.u16b(8));
            body.extend_from_slice(&self.u32b((end >> 32) as u32));
            body.extend_from_slice(&self.u32b(end as u32));
        }
        body.extend_from_slice(&[0, 0, 0, 0]);
        self.block(5, &body)
    }

    /// Simple Packet Block (interface 0, no timestamp).
    pub(crate) fn spb(&mut self, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// Obsolete Packet Block.
    pub(crate) fn pb(&mut self, if_id: u16, units: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(if_id));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Hand-made frames.
pub(crate) mod frames {
    /// The same frame as IEEE 802.3 with LLC/SNAP (RFC 1042): the EtherType replaced by
    /// the length, then DSAP/SSAP 0xAA, control 0x03, OUI 00-00-00 and the EtherType.
    pub(crate) fn as_802_3_snap(ethernet_ii: &[u8]) -> Vec<u8> {
        let payload = &ethernet_ii[14..];
        let mut f = ethernet_ii[..12].to_vec();
        f.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
        f.extend_from_slice(&ethernet_ii[12..14]);
        f.extend_from_slice(payload);
        f
    }

    use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader, TcpOptionElement};

    pub(crate) const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub(crate) const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// Ethernet + IPv4 10.0.0.1:40000 → 10.0.0.2:80, seq 1000, window 64240.
    pub(crate) fn eth_v4_tcp(
        payload: &[u8],
        f: impl FnOnce(PacketBuilderStep<TcpHeader>) -> PacketBuilderStep<TcpHeader>,
    ) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 64240);
        let b = f(b);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Like [`eth_v4_tcp`] with explicit ports and sequence numbers.
    pub(crate) fn eth_v4_tcp_ports(
        sport: u16,
        dport: u16,
        seq: u32,
        payload: &[u8],
        f: impl FnOnce(PacketBuilderStep<TcpHeader>) -> PacketBuilderStep<TcpHeader>,
    ) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(sport, dport, seq, 64240);
        let b = f(b);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    pub(crate) fn eth_v4_syn_with_options() -> Vec<u8> {
        eth_v4_tcp(b"", |b| {
            b.syn()
                .options(&[
                    TcpOptionElement::MaximumSegmentSize(1460),
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                    TcpOptionElement::Timestamp(111, 0),
                    TcpOptionElement::Noop,
                    TcpOptionElement::WindowScale(7),
                ])
                .unwrap()
        })
    }

    /// Ethernet with the given stack of tag EtherTypes (outermost first) around an IPv4
    /// TCP segment with 3 payload bytes.
    pub(crate) fn eth_vlan_v4_tcp(tpids: &[u16]) -> Vec<u8> {
        let plain = eth_v4_tcp(b"abc", |b| b.ack(1));
        let mut out = plain[..12].to_vec();
        for (i, tpid) in tpids.iter().enumerate() {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&(100 + i as u16).to_be_bytes());
        }
        out.extend_from_slice(&plain[12..]);
        out
    }

    pub(crate) fn raw_v4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 512)
            .ack(1);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    pub(crate) fn raw_v6_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6(
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(5555, 443, 1, 512)
        .ack(1);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Ethernet + IPv6 with a hop-by-hop options header (PadN) before TCP.
    pub(crate) fn eth_v6_ext_tcp(payload: &[u8]) -> Vec<u8> {
        let ip = raw_v6_tcp(payload);
        let mut out = Vec::new();
        out.extend_from_slice(&MAC_B);
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&[0x86, 0xdd]);
        let mut hdr = ip[..40].to_vec();
        let pl = u16::from_be_bytes([hdr[4], hdr[5]]) + 8;
        hdr[4..6].copy_from_slice(&pl.to_be_bytes());
        hdr[6] = 0; // next header: hop-by-hop
        out.extend_from_slice(&hdr);
        out.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        out.extend_from_slice(&ip[40..]);
        out
    }

    /// Linux cooked v1 header around an IP packet.
    pub(crate) fn sll(ip: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 1, 0, 6];
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&[0, 0]);
        let proto: [u8; 2] = if ip[0] >> 4 == 6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        };
        out.extend_from_slice(&proto);
        out.extend_from_slice(ip);
        out
    }

    /// Linux cooked v2 header around an IP packet.
    pub(crate) fn sll2(ip: &[u8]) -> Vec<u8> {
        let proto: [u8; 2] = if ip[0] >> 4 == 6 {
            [0x86, 0xdd]
        } else {
            [0x08, 0x00]
        };
        let mut out = proto.to_vec();
        out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6]);
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(ip);
        out
    }

    pub(crate) fn eth_v4_udp() -> Vec<u8> {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53);
        let mut out = Vec::new();
        b.write(&mut out, b"dns?").unwrap();
        out
    }

    pub(crate) fn eth_arp() -> Vec<u8> {
        let mut out = vec![0xff; 6];
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&[0x08, 0x06]);
        out.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&[10, 0, 0, 1]);
        out.extend_from_slice(&[0; 6]);
        out.extend_from_slice(&[10, 0, 0, 2]);
        out
    }

    /// A TCP segment with 100 payload bytes split into two IPv4 fragments: the first holds
    /// the TCP header and 20 bytes, the second (offset 40) the remaining 80.
    pub(crate) fn eth_v4_tcp_fragments() -> (Vec<u8>, Vec<u8>) {
        let whole = eth_v4_tcp(&[7u8; 100], |b| b.ack(1).psh());
        let eth = &whole[..14];
        let ip_hdr = &whole[14..34];
        let ip_payload = &whole[34..];
        let frag = |offset_words: u16, more: bool, part: &[u8]| {
            let mut h = ip_hdr.to_vec();
            let total = (20 + part.len()) as u16;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            let flags_off = offset_words | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&flags_off.to_be_bytes());
            let mut out = eth.to_vec();
            out.extend_from_slice(&h);
            out.extend_from_slice(part);
            out
        };
        (
            frag(0, true, &ip_payload[..40]),
            frag(5, false, &ip_payload[40..]),
        )
    }

    /// An Ethernet header (MAC_B → MAC_A) with this EtherType around `payload`.
    pub(crate) fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = MAC_B.to_vec();
        out.extend_from_slice(&MAC_A);
        out.extend_from_slice(&ethertype.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An IPv4 header (192.0.2.1 → 192.0.2.2, no options, checksum not filled in) with IP
    /// protocol `proto` around `payload`: the outer header of a tunnel.
    pub(crate) fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut out = vec![0x45, 0];
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
        out.extend_from_slice(payload);
        out
    }

    /// An IPv6 header (2001:db8:ff::1 → 2001:db8:ff::2) with next header `next`.
    pub(crate) fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x60, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(&[next, 64]);
        for last in [1u8, 2] {
            out.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.push(last);
        }
        out.extend_from_slice(payload);
        out
    }

    /// A UDP header (checksum 0) around `payload`.
    pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = sport.to_be_bytes().to_vec();
        out.extend_from_slice(&dport.to_be_bytes());
        out.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(payload);
        out
    }

    /// An 802.11 QoS data frame from the distribution system (as Aruba's GRE carries them)
    /// whose body is an A-MSDU of these IP packets, each behind LLC/SNAP.
    pub(crate) fn wlan_amsdu(packets: &[&[u8]]) -> Vec<u8> {
        // Frame control: QoS data (type 2, subtype 8), From-DS; duration; 3 addresses;
        // sequence control; QoS control with the A-MSDU bit.
        let mut out = vec![0x88, 0x02, 0, 0];
        for _ in 0..3 {
            out.extend_from_slice(&MAC_A);
        }
        out.extend_from_slice(&[0, 0, 0x80, 0]);
        for (i, ip) in packets.iter().enumerate() {
            let mut sub = MAC_A.to_vec();
            sub.extend_from_slice(&MAC_B);
            sub.extend_from_slice(&((8 + ip.len()) as u16).to_be_bytes());
            sub.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
            sub.extend_from_slice(
                &(if ip[0] >> 4 == 6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes(),
            );
            sub.extend_from_slice(ip);
            if i + 1 < packets.len() {
                while sub.len() % 4 != 0 {
                    sub.push(0);
                }
            }
            out.extend_from_slice(&sub);
        }
        out
    }
}
