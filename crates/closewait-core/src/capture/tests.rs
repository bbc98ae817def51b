//! Capture reader tests: captures built in memory, plus the real traces of the Zeek corpus
//! when they are present.

use super::testutil::{frames, gzip, pcap_file, pcap_file_snaplen, Ng, Pkt};
use super::*;
use crate::decode::linktype;
use std::io;

const SEC: i64 = 1_000_000_000;
/// 2023-11-14T22:13:20Z, an ordinary epoch.
const T0: i64 = 1_700_000_000 * SEC;

fn stream(files: Vec<Vec<u8>>) -> SegmentStream {
    let inputs = files
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            (
                format!("file{i}"),
                Box::new(io::Cursor::new(data)) as Box<dyn Read + Send>,
            )
        })
        .collect();
    SegmentStream::open_readers(inputs).expect("open")
}

fn read_all(files: Vec<Vec<u8>>) -> (Vec<Segment>, CaptureStats) {
    let mut s = stream(files);
    let segs: Vec<Segment> = s.by_ref().collect();
    (segs, s.into_stats())
}

fn open_err(data: Vec<u8>) -> CaptureError {
    match SegmentStream::open_readers(vec![(
        "x.pcap".to_string(),
        Box::new(io::Cursor::new(data)) as Box<dyn Read + Send>,
    )]) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

fn syn(ts_ns: i64) -> Pkt {
    Pkt::new(ts_ns, frames::eth_v4_tcp(b"", |b| b.syn()))
}

fn data_seg(ts_ns: i64, seq: u32, len: usize) -> Pkt {
    Pkt::new(
        ts_ns,
        frames::eth_v4_tcp_ports(40000, 80, seq, &vec![b'x'; len], |b| b.ack(1).psh()),
    )
}

#[test]
fn pcap_little_endian_microseconds() {
    let file = pcap_file(
        1,
        false,
        false,
        &[syn(T0 + 123_456_000), data_seg(T0 + SEC, 1001, 10)],
    );
    let (segs, stats) = read_all(vec![file]);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].ts_ns, T0 + 123_456_000);
    assert_eq!(segs[0].frame, 1);
    assert!(segs[0].flags.syn());
    assert_eq!(segs[1].frame, 2);
    assert_eq!(segs[1].payload_len, 10);
    assert_eq!(segs[1].seq, 1001);
    assert_eq!(stats.files[0].format, "pcap");
    assert!(!stats.files[0].gzip && !stats.files[0].truncated);
    assert_eq!(stats.files[0].packets, 2);
    assert_eq!(stats.packets.total, 2);
    assert_eq!(stats.packets.tcp, 2);
    assert_eq!(stats.link_types.get("EN10MB"), Some(&2));
    assert_eq!(stats.first_ts, Some(1_700_000_000.123456));
    assert_eq!(stats.last_ts, Some(1_700_000_001.0));
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

#[test]
fn pcap_big_endian_nanoseconds() {
    let file = pcap_file(1, true, true, &[syn(T0 + 123_456_789)]);
    let (segs, stats) = read_all(vec![file.clone()]);
    assert_eq!(segs[0].ts_ns, T0 + 123_456_789);
    assert_eq!(stats.files[0].bytes, file.len() as u64);
    // Same packets little-endian give the same segments.
    let (segs_le, _) = read_all(vec![pcap_file(1, false, true, &[syn(T0 + 123_456_789)])]);
    assert_eq!(segs, segs_le);
}

#[test]
fn pcap_raw_null_loop_sll_sll2_link_types() {
    let v4 = frames::raw_v4_tcp(b"abc");
    let v6 = frames::raw_v6_tcp(b"abcd");
    let cases: Vec<(u32, Vec<u8>, &str, u32)> = vec![
        (linktype::RAW, v4.clone(), "RAW", 3),
        (linktype::IPV4, v4.clone(), "IPV4", 3),
        (linktype::IPV6, v6.clone(), "IPV6", 4),
        (
            linktype::NULL,
            [&2u32.to_be_bytes()[..], &v4].concat(),
            "NULL",
            3,
        ),
        (
            linktype::NULL,
            [&30u32.to_le_bytes()[..], &v6].concat(),
            "NULL",
            4,
        ),
        (
            linktype::LOOP,
            [&24u32.to_be_bytes()[..], &v6].concat(),
            "LOOP",
            4,
        ),
        (linktype::LINUX_SLL, frames::sll(&v4), "LINUX_SLL", 3),
        (linktype::LINUX_SLL2, frames::sll2(&v6), "LINUX_SLL2", 4),
    ];
    for (lt, frame, name, len) in cases {
        let (segs, stats) = read_all(vec![pcap_file(lt, false, false, &[Pkt::new(T0, frame)])]);
        assert_eq!(segs.len(), 1, "{name}");
        assert_eq!(segs[0].payload_len, len, "{name}");
        assert_eq!(stats.link_types.get(name), Some(&1), "{name}");
    }
}

#[test]
fn snaplen_96_capture_keeps_real_payload_lengths() {
    let full = frames::eth_v4_tcp(&[1u8; 1400], |b| b.ack(1).psh());
    let pkt = Pkt {
        ts_ns: T0,
        data: full[..96].to_vec(),
        orig_len: Some(full.len() as u32),
    };
    let (segs, stats) = read_all(vec![pcap_file_snaplen(1, false, false, 96, &[pkt])]);
    assert_eq!(segs[0].payload_len, 1400);
    assert_eq!(segs[0].captured_payload_len, 96 - 54);
    assert!(stats.warnings.is_empty());
}

#[test]
fn non_tcp_fragments_and_truncated_headers_are_counted_as_skipped() {
    let (first, second) = frames::eth_v4_tcp_fragments();
    let bare_ack = frames::eth_v4_tcp(b"", |b| b.ack(1));
    let pkts = [
        Pkt::new(T0, frames::eth_v4_udp()),
        Pkt::new(T0 + 1, frames::eth_arp()),
        Pkt::new(T0 + 2, first),
        Pkt::new(T0 + 3, second),
        Pkt::new(T0 + 4, bare_ack[..40].to_vec()),
        Pkt::new(T0 + 5, bare_ack.clone()),
    ];
    let (segs, stats) = read_all(vec![pcap_file(1, false, false, &pkts)]);
    // The first fragment carries the TCP header; the last packet is a whole segment.
    assert_eq!(segs.iter().map(|s| s.frame).collect::<Vec<_>>(), vec![3, 6]);
    assert_eq!(stats.packets.total, 6);
    assert_eq!(stats.packets.tcp, 2);
    let skipped: Vec<(&str, u64)> = stats
        .packets
        .skipped
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("ip_fragment", 1),
            ("not_ip", 1),
            ("not_tcp", 1),
            ("truncated_header", 1)
        ]
    );
    assert_eq!(stats.warnings.len(), 1);
    assert!(stats.warnings[0].contains("IP fragments"));
}

#[test]
fn vlan_qinq_and_ipv6_extension_headers_in_a_file() {
    let pkts = [
        Pkt::new(T0, frames::eth_vlan_v4_tcp(&[0x8100])),
        Pkt::new(T0 + 1, frames::eth_vlan_v4_tcp(&[0x88a8, 0x8100])),
        Pkt::new(T0 + 2, frames::eth_v6_ext_tcp(b"hello")),
    ];
    let (segs, _) = read_all(vec![pcap_file(1, false, false, &pkts)]);
    let lens: Vec<u32> = segs.iter().map(|s| s.payload_len).collect();
    assert_eq!(lens, vec![3, 3, 5]);
    assert!(segs[2].src.is_ipv6());
}

/// Tunnelled segments are counted by kind; the two segments of an 802.11 A-MSDU share
/// their frame's number and timestamp, and the frame counts once in `total`; the frames
/// of a second file merged in keep their places.
#[test]
fn tunnelled_segments_are_counted_and_amsdu_subframes_share_a_frame() {
    use frames::{eth, ipv4, raw_v4_tcp, udp, wlan_amsdu};
    let gre = |payload: &[u8], protocol: u16| {
        let mut g = vec![0, 0];
        g.extend_from_slice(&protocol.to_be_bytes());
        g.extend_from_slice(payload);
        eth(0x0800, &ipv4(47, &g))
    };
    let one = raw_v4_tcp(b"one");
    let two = raw_v4_tcp(b"second");
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vxlan.extend_from_slice(&eth(0x0800, &one));
    let pkts = [
        Pkt::new(T0, gre(&one, 0x0800)),
        Pkt::new(T0 + 2 * SEC, gre(&wlan_amsdu(&[&one, &two]), 0x8240)),
        Pkt::new(
            T0 + 4 * SEC,
            eth(0x0800, &ipv4(17, &udp(40000, 4789, &vxlan))),
        ),
    ];
    let other = [Pkt::new(
        T0 + 3 * SEC,
        frames::eth_v4_tcp(b"", |b| b.ack(1)),
    )];
    let (segs, stats) = read_all(vec![
        pcap_file(1, false, false, &pkts),
        pcap_file(1, false, false, &other),
    ]);
    let seen: Vec<(u64, i64, u32)> = segs
        .iter()
        .map(|s| (s.frame, (s.ts_ns - T0) / SEC, s.payload_len))
        .collect();
    assert_eq!(
        seen,
        vec![(1, 0, 3), (2, 2, 3), (2, 2, 6), (3, 3, 0), (4, 4, 3)]
    );
    assert_eq!(stats.packets.total, 4);
    assert_eq!(stats.packets.tcp, 5);
    let tunnels: Vec<(&str, u64)> = stats
        .packets
        .tunnels
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(tunnels, vec![("aruba", 2), ("gre", 1), ("vxlan", 1)]);
    assert!(stats.packets.skipped.is_empty());
}

#[test]
fn unsupported_link_type_is_skipped_and_warned_once() {
    let pkts = [Pkt::new(T0, vec![0; 40]), Pkt::new(T0 + 1, vec![0; 40])];
    let (segs, stats) = read_all(vec![pcap_file(127, false, false, &pkts)]);
    assert!(segs.is_empty());
    assert_eq!(stats.packets.total, 2);
    assert_eq!(stats.packets.skipped.get("unsupported_link_type"), Some(&2));
    assert_eq!(stats.link_types.get("IEEE802_11_RADIOTAP"), Some(&2));
    assert_eq!(stats.warnings.len(), 2, "{:?}", stats.warnings);
    assert!(stats.warnings[0].contains("link type 127"));
    assert!(stats.warnings[1].contains("none of the 2 packets could be read"));
}

/// 26 ARCNET frames (LINKTYPE_ARCNET_BSD, 7) holding an HTTP exchange: nothing is read,
/// and the warnings say so rather than letting it pass for a capture without TCP.
#[test]
fn only_unsupported_link_types_is_not_a_capture_without_tcp() {
    let inner = frames::eth_v4_tcp(b"GET / HTTP/1.1\r\n\r\n", |b| b.ack(1));
    let pkts: Vec<Pkt> = (0..26)
        .map(|i| {
            // ARCNET: source and destination station ids, then the protocol id (212 IP).
            let mut f = vec![0x01, 0x02, 212];
            f.extend_from_slice(&inner[14..]);
            Pkt::new(T0 + i, f)
        })
        .collect();
    let (segs, stats) = read_all(vec![pcap_file(7, false, false, &pkts)]);
    assert!(segs.is_empty());
    assert_eq!(
        stats.packets.skipped.get("unsupported_link_type"),
        Some(&26)
    );
    assert!(
        stats
            .warnings
            .iter()
            .any(|w| w.contains("none of the 26 packets could be read")),
        "{:?}",
        stats.warnings
    );
    // One readable packet elsewhere: only the per-link-type warning.
    let ok = pcap_file(1, false, false, &[syn(T0)]);
    let (_, stats) = read_all(vec![ok, pcap_file(7, false, false, &pkts)]);
    assert!(
        !stats.warnings.iter().any(|w| w.contains("none of the")),
        "{:?}",
        stats.warnings
    );
}

/// IEEE 802.3 with LLC/SNAP (RFC 1042) carrying IPv4: opened, not skipped as not_ip.
#[test]
fn ieee_802_3_llc_snap_frames_are_read() {
    let ethernet_ii = frames::eth_v4_syn_with_options();
    let f = frames::as_802_3_snap(&ethernet_ii);
    let (segs, stats) = read_all(vec![pcap_file(1, false, false, &[Pkt::new(T0, f)])]);
    assert_eq!(segs.len(), 1);
    assert!(stats.packets.skipped.is_empty(), "{:?}", stats.packets);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

#[test]
fn unnamed_link_types_are_counted_by_number() {
    let (_, stats) = read_all(vec![pcap_file(
        147,
        false,
        false,
        &[Pkt::new(T0, vec![1; 20])],
    )]);
    assert_eq!(stats.link_types.get("LINKTYPE_147"), Some(&1));
    assert!(
        stats.warnings[0].contains("link type 147 (unknown)"),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn pcapng_two_interfaces_with_different_link_types_and_resolutions() {
    let mut ng = Ng::new(false);
    ng.idb(1, 262144, None, None) // Ethernet, microseconds
        .idb(101, 65535, Some(9), Some(100)) // raw IP, nanoseconds, +100 s
        .idb(113, 65535, Some(0x80 | 10), None); // SLL, 2^-10 s
    let t0_us = (T0 / 1000) as u64;
    ng.epb(0, t0_us + 5, &frames::eth_v4_tcp(b"", |b| b.syn()), 54);
    ng.epb(1, T0 as u64 + 7, &frames::raw_v4_tcp(b"ab"), 42);
    ng.epb(
        2,
        1024 * 1_700_000_001 + 512,
        &frames::sll(&frames::raw_v4_tcp(b"c")),
        57,
    );
    let (segs, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[0].ts_ns, T0 + 5_000);
    assert_eq!(segs[1].ts_ns, T0 + 7 + 100 * SEC);
    assert_eq!(segs[1].payload_len, 2);
    assert_eq!(segs[2].ts_ns, T0 + SEC + SEC / 2);
    assert_eq!(segs[2].payload_len, 1);
    assert_eq!(stats.files[0].format, "pcapng");
    assert_eq!(stats.link_types.len(), 3);
    assert_eq!(stats.link_types.get("RAW"), Some(&1));
    assert_eq!(stats.link_types.get("LINUX_SLL"), Some(&1));
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(
        stats.warnings[0].contains(
            "jump back by more than 1 s 1 time(s) (first at frame 3, by up to 98.500000 s)"
        ),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn pcapng_big_endian_with_tsoffset() {
    let mut ng = Ng::new(true);
    ng.idb(1, 0, None, Some(-10));
    ng.epb(
        0,
        (T0 / 1000) as u64,
        &frames::eth_v4_tcp(b"xyz", |b| b.ack(1)),
        57,
    );
    let (segs, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].ts_ns, T0 - 10 * SEC);
    assert_eq!(segs[0].payload_len, 3);
    assert!(!stats.files[0].truncated);
}

#[test]
fn pcapng_new_section_resets_interfaces_and_byte_order() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    ng.epb(0, 1, &frames::eth_v4_tcp(b"", |b| b.syn()), 54);
    // Second section, big-endian, whose interface 0 is raw IP.
    ng.shb(true);
    ng.idb(101, 0, None, None);
    ng.epb(0, 2, &frames::raw_v4_tcp(b"hi"), 42);
    let (segs, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[1].payload_len, 2);
    assert_eq!(stats.link_types.get("EN10MB"), Some(&1));
    assert_eq!(stats.link_types.get("RAW"), Some(&1));
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

#[test]
fn pcapng_simple_packet_blocks_take_the_previous_time_and_warn_once() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    ng.epb(0, 42_000_000, &frames::eth_v4_tcp(b"", |b| b.syn()), 54);
    ng.spb(&frames::eth_v4_tcp(b"a", |b| b.ack(1)));
    ng.spb(&frames::eth_v4_tcp(b"bb", |b| b.ack(1)));
    let (segs, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(segs.len(), 3);
    assert!(segs.iter().all(|s| s.ts_ns == 42 * SEC));
    assert_eq!(segs[2].payload_len, 2);
    assert_eq!(stats.warnings.len(), 1);
    assert!(stats.warnings[0].contains("Simple Packet Blocks"));
}

#[test]
fn pcapng_obsolete_packet_blocks_and_unknown_blocks() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    ng.block(4, &[0, 0, 0, 0]); // name resolution, empty
    ng.block(0x4000_0BAD, &[1, 2, 3, 4, 5, 6, 7, 8]); // custom
    ng.pb(0, 3_000_000, &frames::eth_v4_tcp(b"", |b| b.syn()));
    ng.block(5, &[0; 12]); // interface statistics
    let (segs, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].ts_ns, 3 * SEC);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
}

#[test]
fn gzip_captures_are_read_transparently() {
    let pcap = pcap_file(1, false, false, &[syn(T0), data_seg(T0 + 1000, 1001, 5)]);
    let gz = gzip(&pcap);
    let (segs, stats) = read_all(vec![gz.clone()]);
    assert_eq!(segs.len(), 2);
    assert!(stats.files[0].gzip);
    assert_eq!(stats.files[0].format, "pcap");
    assert_eq!(stats.files[0].bytes, gz.len() as u64);

    // Multi-member gzip (concatenated .gz files) of a pcapng.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    ng.epb(0, 1, &frames::eth_v4_tcp(b"", |b| b.syn()), 54);
    let bytes = ng.bytes();
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let two_members = [gzip(a), gzip(b)].concat();
    let (segs, stats) = read_all(vec![two_members]);
    assert_eq!(segs.len(), 1);
    assert_eq!(stats.files[0].format, "pcapng");
}

#[test]
fn two_files_are_merged_in_timestamp_order_with_global_frame_numbers() {
    let a = pcap_file(
        1,
        false,
        false,
        &[
            data_seg(T0 + 1000, 1, 1),
            Pkt::new(T0 + 3000, frames::eth_v4_udp()),
            data_seg(T0 + 5000, 5, 1),
        ],
    );
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, (T0 + 2000) as u64, &data_seg(0, 2, 1).data, 55);
    ng.epb(0, (T0 + 4000) as u64, &data_seg(0, 4, 1).data, 55);
    let (segs, stats) = read_all(vec![a, ng.bytes()]);
    let got: Vec<(u64, u32)> = segs.iter().map(|s| (s.frame, s.seq)).collect();
    assert_eq!(got, vec![(1, 1), (2, 2), (4, 4), (5, 5)]);
    assert!(segs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    assert_eq!(stats.packets.total, 5);
    assert_eq!(stats.files.len(), 2);
    assert_eq!(stats.files[0].packets, 3);
    assert_eq!(stats.files[1].packets, 2);
    assert_eq!(stats.files[1].format, "pcapng");
}

#[test]
fn pcapng_interface_statistics_end_is_the_end_of_the_capture() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, T0 as u64, &data_seg(0, 1, 1).data, 55);
    ng.epb(0, (T0 + 2000) as u64, &data_seg(0, 2, 1).data, 55);
    ng.isb(
        0,
        (T0 + 3_000_000_000) as u64,
        Some((T0 + 2_500_000_000) as u64),
    );
    let (_, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(stats.last_ts, Some(ns_to_secs(T0 + 2000)));
    assert_eq!(stats.end, Some(ns_to_secs(T0 + 2_500_000_000)));
    assert_eq!(stats.end_source, Some(EndSource::InterfaceStatistics));
    assert_eq!(stats.end_ts(), stats.end);
}

#[test]
fn pcapng_statistics_without_endtime_use_the_block_timestamp() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, T0 as u64, &data_seg(0, 1, 1).data, 55);
    ng.isb(0, (T0 + 1_000_000) as u64, None);
    let (_, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(stats.end, Some(ns_to_secs(T0 + 1_000_000)));
    assert_eq!(stats.end_source, Some(EndSource::InterfaceStatistics));
}

/// dumpcap 4.0.17 (measured) writes ISB times in microseconds on a nanosecond interface.
#[test]
fn pcapng_statistics_in_microseconds_on_a_nanosecond_interface() {
    let mut ng = Ng::new(true);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, T0 as u64, &data_seg(0, 1, 1).data, 55);
    let end_us = (T0 + 3_000_000_000) / 1000;
    ng.isb(0, end_us as u64, Some(end_us as u64));
    let (_, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(stats.end, Some(ns_to_secs(T0 + 3_000_000_000)));
    assert_eq!(stats.end_source, Some(EndSource::InterfaceStatistics));
}

#[test]
fn pcapng_statistics_before_the_last_packet_or_of_no_interface_are_passed_over() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, (T0 + 5000) as u64, &data_seg(0, 1, 1).data, 55);
    ng.isb(0, T0 as u64, Some(T0 as u64));
    ng.isb(7, (T0 + 9000) as u64, Some((T0 + 9000) as u64));
    let (_, stats) = read_all(vec![ng.bytes()]);
    assert_eq!(stats.end, Some(ns_to_secs(T0 + 5000)));
    assert_eq!(stats.end_source, Some(EndSource::LastPacket));
}

#[test]
fn merged_files_end_at_the_latest_stated_end() {
    let a = pcap_file(1, false, false, &[data_seg(T0 + 1000, 1, 1)]);
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None);
    ng.epb(0, T0 as u64, &data_seg(0, 2, 1).data, 55);
    ng.isb(0, (T0 + 7000) as u64, Some((T0 + 7000) as u64));
    let (_, stats) = read_all(vec![a.clone(), ng.bytes()]);
    assert_eq!(stats.end, Some(ns_to_secs(T0 + 7000)));
    let (_, stats) = read_all(vec![a]);
    assert_eq!(
        (stats.end, stats.end_source),
        (Some(ns_to_secs(T0 + 1000)), Some(EndSource::LastPacket))
    );
}

#[test]
fn user_end_before_the_last_packet_is_refused() {
    let a = pcap_file(1, false, false, &[data_seg(T0 + 1000, 1, 1)]);
    let (_, mut stats) = read_all(vec![a]);
    let err = stats.set_user_end(T0).expect_err("before");
    assert!(err.to_string().contains("before the last packet"), "{err}");
    stats.set_user_end(T0 + 1000).expect("at the last packet");
    assert_eq!(stats.end_source, Some(EndSource::User));
}

#[test]
fn backwards_timestamps_pass_through_in_file_order() {
    let file = pcap_file(
        1,
        false,
        false,
        &[data_seg(T0 + 5000, 1, 1), data_seg(T0, 2, 1)],
    );
    let (segs, stats) = read_all(vec![file]);
    assert_eq!(segs.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(stats.first_ts, Some(ns_to_secs(T0)));
    assert_eq!(stats.last_ts, Some(ns_to_secs(T0 + 5000)));
    // A small step back (several CPUs stamping packets) goes unremarked.
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);

    // Jumps of more than a second are counted and named once.
    let file = pcap_file(
        1,
        false,
        false,
        &[
            data_seg(T0 + 10 * SEC, 1, 1),
            data_seg(T0, 2, 1),
            data_seg(T0 + 20 * SEC, 3, 1),
            data_seg(T0 + 17 * SEC, 4, 1),
        ],
    );
    let (segs, stats) = read_all(vec![file]);
    assert_eq!(segs.len(), 4);
    assert_eq!(
        stats.warnings,
        vec![
            "file0: timestamps jump back by more than 1 s 2 time(s) (first at frame 2, by up \
             to 10.000000 s); those packets are analysed in the order they were captured, and \
             durations across a jump are unreliable"
        ]
    );
}

#[test]
fn hostile_timestamps_are_clamped_so_durations_cannot_overflow() {
    // pcapng: a 64-bit timestamp of u64::MAX units at 1 s resolution, and an if_tsoffset
    // far in the past.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(0), None)
        .idb(1, 0, None, Some(-(1i64 << 40)));
    ng.epb(0, u64::MAX, &syn(0).data, 54);
    ng.epb(1, 0, &syn(0).data, 54);
    let (segs, _) = read_all(vec![ng.bytes()]);
    let ts: Vec<i64> = segs.iter().map(|s| s.ts_ns).collect();
    assert_eq!(ts, vec![1 << 62, 0]);
    let _ = segs[0].ts_ns - segs[1].ts_ns; // fits
}

#[test]
fn truncated_pcap_keeps_packets_before_the_cut() {
    let pkts = [
        syn(T0),
        data_seg(T0 + 1, 1001, 100),
        data_seg(T0 + 2, 1101, 100),
    ];
    let file = pcap_file(1, false, false, &pkts);
    let third_start = 24 + (16 + 54) + (16 + 154);
    for cut in [third_start + 10, third_start + 16 + 50] {
        let (segs, stats) = read_all(vec![file[..cut].to_vec()]);
        assert_eq!(segs.len(), 2, "cut at {cut}");
        assert!(stats.files[0].truncated);
        assert_eq!(stats.warnings.len(), 1);
        let w = &stats.warnings[0];
        assert!(w.starts_with("file0: capture cut short"), "{w}");
        assert!(w.contains(&format!("byte offset {third_start}")), "{w}");
        assert!(w.contains("kept the 2 packet(s)"), "{w}");
    }
    // A cut exactly between records is a clean end.
    let (segs, stats) = read_all(vec![file[..third_start].to_vec()]);
    assert_eq!(segs.len(), 2);
    assert!(!stats.files[0].truncated);
    assert!(stats.warnings.is_empty());
}

#[test]
fn truncated_gzip_and_pcapng_keep_packets_before_the_cut() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    for i in 0..5u32 {
        ng.epb(0, u64::from(i), &data_seg(0, i, 10).data, 64);
    }
    let bytes = ng.bytes();
    let (segs, stats) = read_all(vec![bytes[..bytes.len() - 30].to_vec()]);
    assert_eq!(segs.len(), 4);
    assert!(stats.files[0].truncated);
    assert!(stats.warnings[0].contains("kept the 4 packet(s)"));

    let gz = gzip(&pcap_file(
        1,
        false,
        false,
        &[syn(T0), syn(T0 + 1), syn(T0 + 2)],
    ));
    let (segs, stats) = read_all(vec![gz[..gz.len() - 12].to_vec()]);
    assert!(segs.len() <= 3);
    assert!(stats.files[0].truncated, "{:?}", stats);
    assert!(
        stats.warnings[0].contains("decompressed"),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn absurd_record_length_is_corruption_not_an_allocation() {
    let mut file = pcap_file(1, false, false, &[syn(T0), syn(T0 + 1)]);
    // Second record's caplen: 3 GB.
    let at = 24 + 16 + 54 + 8;
    file[at..at + 4].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let (segs, stats) = read_all(vec![file]);
    assert_eq!(segs.len(), 1);
    assert!(stats.files[0].truncated);
    let w = &stats.warnings[0];
    assert!(w.contains("corrupt data at byte offset 94"), "{w}");

    // pcapng: absurd block length, then mismatched trailer, then an unknown interface.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, None, None);
    ng.epb(0, 1, &syn(0).data, 54);
    let good = ng.bytes();
    let mut bad = good.clone();
    bad.extend_from_slice(&6u32.to_le_bytes());
    bad.extend_from_slice(&0x7000_0000u32.to_le_bytes());
    bad.extend_from_slice(&[0; 64]);
    let (segs, stats) = read_all(vec![bad]);
    assert_eq!(segs.len(), 1);
    assert!(stats.warnings[0].contains("claims"), "{:?}", stats.warnings);

    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 4] ^= 0x40;
    let (segs, stats) = read_all(vec![bad]);
    assert_eq!(segs.len(), 0);
    assert!(
        stats.warnings[0].contains("trailing length"),
        "{:?}",
        stats.warnings
    );

    // A packet on an undeclared interface is skipped and counted; reading goes on.
    let mut ng2 = Ng::new(false);
    ng2.idb(1, 0, None, None);
    ng2.epb(3, 1, &syn(0).data, 54);
    ng2.epb(0, 2, &syn(0).data, 54);
    ng2.epb(7, 3, &syn(0).data, 54);
    let (segs, stats) = read_all(vec![ng2.bytes()]);
    assert_eq!(segs.len(), 1);
    assert!(!stats.files[0].truncated);
    assert_eq!(stats.packets.total, 3);
    assert_eq!(stats.packets.skipped.get("unknown_interface"), Some(&2));
    assert_eq!(stats.link_types.get("EN10MB"), Some(&1));
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    assert!(
        stats.warnings[0].contains("on interface 3, but the section declares 1 interface(s)"),
        "{:?}",
        stats.warnings
    );
}

#[test]
fn not_a_capture_is_detected_at_open() {
    let what = |data: Vec<u8>| match open_err(data) {
        CaptureError::NotACapture { path, what } => {
            assert_eq!(path, "x.pcap");
            what
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(what(vec![]), "an empty file");
    assert_eq!(
        what(b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec()),
        "text (starts with \"GET / HTTP/1.1\")"
    );
    assert_eq!(
        what(b"<!DOCTYPE html>\n<html><body>404</body></html>".to_vec()),
        "an HTML page (a web page saved in place of the capture? download the file itself)"
    );
    assert_eq!(
        what(b"12:00:01.000001 IP 10.0.0.1.443 > 10.0.0.2.51000: Flags [F.]\n".to_vec()),
        "text (starts with \"12:00:01.000001 IP 10.0.0.1.443 > 10.0.0\"), tcpdump's printed \
         output rather than a capture: record with `tcpdump -w FILE`"
    );
    assert!(what(gzip(b"just some text\n"))
        .starts_with("gzip-compressed data that is not a capture; decompressed, it is text"));
    assert!(what(vec![0x1f, 0x8b, 8])
        .starts_with("gzip-compressed data that could not be decompressed"));
    assert!(what(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).contains("cut short in its header"));
    assert!(what(vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4]).contains("byte-order"));
    assert!(what(vec![0x00, 0x01, 0x02, 0x03, 0x99, 0x98]).contains("unknown format"));
    // The message names the file.
    let msg = open_err(vec![]).to_string();
    assert_eq!(msg, "x.pcap: not a capture file: an empty file");
    // A pcap with an unknown version is a header error with an offset.
    let mut file = pcap_file(1, false, false, &[]);
    file[4] = 9;
    assert!(matches!(
        open_err(file),
        CaptureError::Corrupt { offset: 4, .. }
    ));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = match SegmentStream::open(&[InputSpec::Path("/nonexistent/x.pcap".into())]) {
        Err(e) => e,
        Ok(_) => panic!("opened"),
    };
    assert!(matches!(err, CaptureError::Io { .. }));
    assert!(err.to_string().starts_with("/nonexistent/x.pcap: "));
}

/// A reader that hands out a few bytes at a time, like a pipe from `tcpdump -U -w -`.
struct Pipe {
    data: Vec<u8>,
    at: usize,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = 13.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_trickling_pipe_reads_like_a_file() {
    let pkts: Vec<Pkt> = (0..50)
        .map(|i| data_seg(T0 + i * 1000, i as u32, 100))
        .collect();
    let file = pcap_file(1, false, false, &pkts);
    let mut s = SegmentStream::open_readers(vec![(
        "-".to_string(),
        Box::new(Pipe {
            data: file.clone(),
            at: 0,
        }) as Box<dyn Read + Send>,
    )])
    .unwrap();
    let segs: Vec<Segment> = s.by_ref().collect();
    assert_eq!(segs.len(), 50);
    assert_eq!(s.bytes_consumed(), file.len() as u64);
    assert_eq!(s.frames_read(), 50);
    assert_eq!(s.last_ts_ns(), Some(T0 + 49_000));
}

#[test]
fn real_files_through_open() {
    let dir = std::env::temp_dir().join(format!("closewait-reader-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = dir.join("a.pcap.gz");
    let b = dir.join("b.anything");
    std::fs::write(&a, gzip(&pcap_file(1, false, false, &[syn(T0 + 2000)]))).unwrap();
    std::fs::write(&b, pcap_file(1, true, true, &[syn(T0 + 1)])).unwrap();
    let mut s = SegmentStream::open(&[
        InputSpec::Path(a.clone()),
        InputSpec::from_arg(b.to_str().unwrap()),
    ])
    .unwrap();
    assert!(s.total_bytes().is_some());
    let segs: Vec<Segment> = s.by_ref().collect();
    assert_eq!(
        segs.iter().map(|s| s.ts_ns).collect::<Vec<_>>(),
        vec![T0 + 1, T0 + 2000]
    );
    let stats = s.into_stats();
    assert_eq!(stats.files[0].path, a.display().to_string());
    assert!(stats.files[0].gzip);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Mutates valid captures at random (deterministically): reading must never panic, and
/// every problem must end up as a warning or an open error.
#[test]
fn hostile_bytes_never_panic() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, Some(9), None).idb(276, 0, None, Some(5));
    for i in 0..6u32 {
        ng.epb(i % 2, u64::from(i), &data_seg(0, i, 20).data, 74);
    }
    ng.spb(&syn(0).data);
    let seeds = [
        ng.bytes(),
        pcap_file(1, false, false, &[syn(T0), data_seg(T0, 1, 30), syn(T0)]),
        pcap_file(
            0,
            true,
            true,
            &[Pkt::new(
                T0,
                [&2u32.to_be_bytes()[..], &frames::raw_v4_tcp(b"x")].concat(),
            )],
        ),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for seed in &seeds {
        for _ in 0..400 {
            let mut data = seed.clone();
            let flips = 1 + rand() % 6;
            for _ in 0..flips {
                let at = (rand() % data.len() as u64) as usize;
                data[at] = rand() as u8;
            }
            if rand() % 4 == 0 {
                let keep = (rand() % data.len() as u64) as usize;
                data.truncate(keep);
            }
            if let Ok(mut s) = SegmentStream::open_readers(vec![(
                "fuzz".to_string(),
                Box::new(io::Cursor::new(data)) as Box<dyn Read + Send>,
            )]) {
                let n = s.by_ref().count() as u64;
                let st = s.into_stats();
                assert!(n <= st.packets.total);
            }
        }
    }
}

/// The traces of the Zeek corpus: every one opens, reads to the end without a warning,
/// and yields the number of TCP segments tshark finds outside tunnels.
#[test]
fn zeek_corpus_traces() {
    let candidates = [
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/zeek/traces"),
        std::path::PathBuf::from("/work/shared/corpus/zeek/traces"),
    ];
    let Some(dir) = candidates.iter().find(|d| d.is_dir()) else {
        eprintln!("zeek traces not found; skipped");
        return;
    };
    let mut checked = 0;
    for (name, expected_tcp) in ZEEK_TCP_COUNTS {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let mut s =
            SegmentStream::open(&[InputSpec::Path(path.clone())]).unwrap_or_else(|e| panic!("{e}"));
        let n = s.by_ref().count() as u64;
        let stats = s.into_stats();
        // The GTP traces with tunnels in fragmented datagrams say so (and count the other
        // fragments); nothing else warns.
        let (tunnel_fragments, others): (Vec<&String>, Vec<&String>) = stats
            .warnings
            .iter()
            .partition(|w| w.contains("inside tunnels whose outer IP datagram"));
        assert!(others.is_empty(), "{name}: {others:?}");
        assert_eq!(
            !tunnel_fragments.is_empty(),
            stats.packets.skipped.contains_key("ip_fragment"),
            "{name}: {stats:?}"
        );
        assert_eq!(n, *expected_tcp, "{name}: {stats:?}");
        assert_eq!(stats.packets.tcp, n);
        checked += 1;
    }
    assert!(checked > 0);
}

/// TCP segments per trace. Checked against tshark 4.x: equal to the count of
/// `tshark -Y tcp` frames, with equal seq/ack/len/window/time on every frame (for the
/// tunnel traces, equal ports/seq/ack/len of the inner TCP segments), except
/// tunnels__gtp__gtp1_gn_normal_incl_fragmentation.pcap, where closewait also decodes the
/// 4 segments whose outer datagram lost its last fragment (tshark shows 68: it cannot
/// reassemble them; closewait reads the inner TCP header from the first fragment),
/// tunnels__gre-aruba-amsdu.pcap, whose one frame holds 2 segments (an 802.11 A-MSDU), and
/// cisco-fabric-path.pcap, whose 16 SYNs carry a 4-byte FCS that tshark strips (it then
/// calls the TCP header malformed and gives no tcp.len; the fields read here agree).
const ZEEK_TCP_COUNTS: &[(&str, u64)] = &[
    ("cisco-fabric-path.pcap", 32),
    ("ftp__fake-long-commands.pcap", 40),
    ("ftp__ftp-auth-tls.pcap", 84),
    ("ftp__ftp-missing-reply-code.pcap", 23),
    ("ftp__ftp-missing-space-after-reply-code.pcap", 23),
    ("ftp__ipv4.pcap", 95),
    ("ftp__ipv6.pcap", 136),
    ("globus-url-copy.pcap", 61),
    ("http__concurrent-range-requests.pcap", 57),
    ("http__connect-with-smtp.pcap", 30),
    ("http__http-single-conn-22.pcap", 28),
    ("http__zeek-image-post-1080-8000-x.pcap", 19),
    ("irc-dcc-send.pcapng", 1184),
    ("mixed-vlan-mpls.pcap", 47),
    ("modbus__modbus-and-non-modbus-p502.pcap", 86),
    ("mpls-in-vlan.pcap", 3),
    ("pbb.pcap", 8),
    ("pop3__pop3.pcap", 125),
    ("pop3__redis-50-pings.pcap", 116),
    ("pppoe-over-qinq.pcap", 86),
    ("ssh__ssh.client-side-half-duplex.pcap", 838),
    ("ssh__ssh.pcap", 1795),
    ("ssh__ssh.server-side-half-duplex.pcap", 832),
    ("tcp__miss_end_data.pcap", 9),
    ("tcp__missing-syn.pcap", 21),
    ("tls__imap-starttls.pcap", 32),
    ("tunnels__ayiya3.pcap", 21),
    ("tunnels__gre-aruba-amsdu.pcap", 2),
    ("tunnels__gre-over-udp-4754.pcap", 10),
    ("tunnels__gtp__gtp1_gn_normal_incl_fragmentation.pcap", 72),
    ("tunnels__gtp__gtp2_different_udp_port.pcap", 78),
    ("tunnels__vxlan-encapsulated-http.pcap", 12),
    ("vntag_vlan_sandwich_clean.pcap", 1),
];

#[test]
fn segment_stream_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<SegmentStream>();
}

/// Reading ahead on a thread gives what reading directly gives, segment for segment and
/// stat for stat (warnings, with their byte offsets, included), on every shipped capture,
/// gzipped and cut short, with chunks small enough that records straddle them and
/// headroom small enough that long records are gathered by copying.
#[test]
fn read_ahead_reads_every_capture_the_same() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("captures"))
        .expect("captures/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() > 20);
    let read = |data: &[u8], ahead: Option<source::ReadAheadSize>| {
        let input = vec![(
            "x".to_string(),
            Box::new(io::Cursor::new(data.to_vec())) as Box<dyn Read + Send>,
        )];
        let mut s = match ahead {
            Some(size) => SegmentStream::open_readers_ahead(input, size),
            None => SegmentStream::open_readers(input),
        }
        .expect("opens");
        let segs: Vec<Segment> = s.by_ref().collect();
        (segs, format!("{:?}", s.into_stats()))
    };
    let sizes = [
        source::ReadAheadSize {
            chunk: 97,
            headroom: 60,
        },
        source::ReadAheadSize {
            chunk: 4096,
            headroom: 2000,
        },
    ];
    for path in &files {
        let data = std::fs::read(path).expect("readable");
        let mut variants = vec![data.clone(), gzip(&data)];
        for cut in [data.len() * 2 / 3, data.len() - 5] {
            variants.push(data[..cut].to_vec());
        }
        for v in &variants {
            let direct = read(v, None);
            for size in sizes {
                assert_eq!(read(v, Some(size)), direct, "{} {size:?}", path.display());
            }
        }
    }
}
