//! Floods: a SYN flood or a port scan opens connections that never finish. The table of
//! live connections is capped; past the cap the least recently active connection is
//! reported as it stands and dropped, and a warning counts the evictions.

use assert_cmd::Command;
use closewait::analyze::{AnalyzeOptions, Analyzer};
use closewait::model::{CloseKind, ConnectionReport};
use closewait::segment::{Segment, TcpFlags};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const T0: i64 = 1_700_000_000_000_000_000;

/// The one segment builder (`closewait_core::testkit`, the unit tests' too), at `ts_ns`.
fn seg(
    ts_ns: i64,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) -> Segment {
    Segment {
        ts_ns,
        ..closewait_core::testkit::segment(src, dst, flags, seq, ack, len)
    }
}
const MS: i64 = 1_000_000;

/// The i-th spoofed source of a flood: a different address and port each time.
fn spoofed(i: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0a00_0000 | (i >> 8));
    SocketAddr::new(IpAddr::V4(ip), 1024 + (i & 0xff) as u16)
}

#[test]
fn syn_flood_is_capped_evicts_the_stalest_and_spares_an_active_connection() {
    const FLOOD: u32 = 60_000;
    const CAP: usize = 2_000;
    let opts = AnalyzeOptions {
        max_connections: CAP,
        ..AnalyzeOptions::default()
    };
    let mut analyzer = Analyzer::new(&opts);
    let mut reports: Vec<ConnectionReport> = Vec::new();
    let mut frame = 0;
    let mut push = |analyzer: &mut Analyzer, mut s: Segment, out: &mut Vec<ConnectionReport>| {
        frame += 1;
        s.frame = frame;
        analyzer.push(&s, &mut |r| out.push(r));
    };

    // A real client talks to the server all along, one request every 100 flood SYNs.
    let client: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let server: SocketAddr = "198.51.100.1:443".parse().unwrap();
    let (mut c_seq, mut s_seq) = (1000u32, 5000u32);
    let mut ts = T0;
    push(
        &mut analyzer,
        seg(ts, client, server, TcpFlags::SYN, c_seq, 0, 0),
        &mut reports,
    );
    push(
        &mut analyzer,
        seg(
            ts,
            server,
            client,
            TcpFlags::SYN | TcpFlags::ACK,
            s_seq,
            c_seq + 1,
            0,
        ),
        &mut reports,
    );
    c_seq += 1;
    s_seq += 1;
    push(
        &mut analyzer,
        seg(ts, client, server, TcpFlags::ACK, c_seq, s_seq, 0),
        &mut reports,
    );

    for i in 0..FLOOD {
        ts += MS / 10;
        push(
            &mut analyzer,
            seg(
                ts,
                spoofed(i),
                server,
                TcpFlags::SYN,
                i.wrapping_mul(7919),
                0,
                0,
            ),
            &mut reports,
        );
        if i % 100 == 99 {
            push(
                &mut analyzer,
                seg(
                    ts,
                    client,
                    server,
                    TcpFlags::PSH | TcpFlags::ACK,
                    c_seq,
                    s_seq,
                    10,
                ),
                &mut reports,
            );
            c_seq += 10;
            push(
                &mut analyzer,
                seg(ts, server, client, TcpFlags::ACK, s_seq, c_seq, 0),
                &mut reports,
            );
        }
        assert!(analyzer.live_connections() <= CAP);
    }
    // The real connection closes properly at the end.
    ts += MS;
    push(
        &mut analyzer,
        seg(
            ts,
            client,
            server,
            TcpFlags::FIN | TcpFlags::ACK,
            c_seq,
            s_seq,
            0,
        ),
        &mut reports,
    );
    push(
        &mut analyzer,
        seg(
            ts,
            server,
            client,
            TcpFlags::FIN | TcpFlags::ACK,
            s_seq,
            c_seq + 1,
            0,
        ),
        &mut reports,
    );
    push(
        &mut analyzer,
        seg(ts, client, server, TcpFlags::ACK, c_seq + 1, s_seq + 1, 0),
        &mut reports,
    );

    let ev = analyzer.evictions().clone();
    let warning = analyzer.eviction_warning().expect("a warning");
    analyzer.finish(ts, &mut |r| reports.push(r));

    // Every connection is reported once: the evicted ones when evicted, the rest at the end.
    assert_eq!(reports.len(), FLOOD as usize + 1);
    let mut ids: Vec<u64> = reports.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), reports.len());
    // The cap leaves room for CAP connections: all but CAP - 1 flood SYNs and the real
    // connection were evicted, oldest SYNs first.
    assert_eq!(ev.count, u64::from(FLOOD) + 1 - CAP as u64);
    assert_eq!(ev.first_ids, vec![1, 2, 3, 4, 5]);
    assert!(
        warning.contains(&format!("more than {CAP} connections open at once")),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("evicted the {} least recently active", ev.count)),
        "{warning}"
    );
    assert!(warning.contains("ids 1, 2, 3, 4, 5, …"), "{warning}");
    // Evicted flood connections keep their verdict: SYNs never answered.
    assert!(reports
        .iter()
        .filter(|r| r.id != 0)
        .all(|r| r.close.kind == CloseKind::SynTimeout));
    // The active connection was never evicted: one report, with its whole life.
    let real: Vec<&ConnectionReport> = reports.iter().filter(|r| r.client == client).collect();
    assert_eq!(real.len(), 1);
    assert_eq!(real[0].id, 0);
    assert_eq!(real[0].close.kind, CloseKind::Graceful);
    assert_eq!(real[0].bytes.client, u64::from(FLOOD / 100) * 10);
}

#[test]
fn under_the_cap_nothing_is_evicted() {
    let opts = AnalyzeOptions {
        max_connections: 100,
        ..AnalyzeOptions::default()
    };
    let mut analyzer = Analyzer::new(&opts);
    let server: SocketAddr = "198.51.100.1:443".parse().unwrap();
    let mut n = 0;
    for i in 0..100 {
        analyzer.push(
            &seg(
                T0 + i64::from(i),
                spoofed(i),
                server,
                TcpFlags::SYN,
                1,
                0,
                0,
            ),
            &mut |_| n += 1,
        );
    }
    assert_eq!(n, 0);
    assert_eq!(analyzer.evictions().count, 0);
    assert_eq!(analyzer.eviction_warning(), None);
}

// ---- a port scan, as a capture file through the command line -------------------------

/// A classic pcap (raw IPv4 link type) of SYNs from one scanner to `ports` ports of one
/// host, 1 ms apart, none answered (a filtered host).
fn port_scan_pcap(ports: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes()); // LINKTYPE_RAW
    for port in 1..=ports {
        let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&[203, 0, 113, 9]); // scanner
        ip.extend_from_slice(&[198, 51, 100, 1]); // target
        ip.extend_from_slice(&61_000u16.to_be_bytes());
        ip.extend_from_slice(&port.to_be_bytes());
        ip.extend_from_slice(&0x1000_0000u32.to_be_bytes()); // seq
        ip.extend_from_slice(&0u32.to_be_bytes());
        ip.extend_from_slice(&[0x50, TcpFlags::SYN, 0x04, 0x00, 0, 0, 0, 0]);
        let ms = u32::from(port);
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        out.extend_from_slice(&(ms * 100).to_le_bytes()); // µs
        out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        out.extend_from_slice(&(ip.len() as u32).to_le_bytes());
        out.extend_from_slice(&ip);
    }
    out
}

#[test]
fn port_scan_capture_is_analysed_within_the_cap_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("closewait-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("scan.pcap");
    std::fs::write(&pcap, port_scan_pcap(5_000)).unwrap();

    let out = Command::cargo_bin("closewait")
        .unwrap()
        .arg("analyze")
        .arg(&pcap)
        .args(["--json", "--max-connections", "1000"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(5_000));
    assert_eq!(doc["summary"]["by_kind"]["syn_timeout"], 5_000);
    let warnings = doc["capture"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = warnings[0].as_str().unwrap();
    assert!(w.contains("more than 1000 connections open at once"), "{w}");
    assert!(
        w.contains("evicted the 4000 least recently active, first at frame 1001"),
        "{w}"
    );
    // JSON on stdout: the warning is on stderr too, for the person at the terminal.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("closewait: warning: more than 1000 connections"),
        "{stderr}"
    );

    // Text output ends with the same warning; a bad --max-connections is a usage error.
    let text = Command::cargo_bin("closewait")
        .unwrap()
        .arg("analyze")
        .arg(&pcap)
        .args(["--max-connections", "1000"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("\nwarnings\n  more than 1000 connections open at once"),
        "{}",
        &text[text.len().saturating_sub(600)..]
    );
    Command::cargo_bin("closewait")
        .unwrap()
        .arg("analyze")
        .arg(&pcap)
        .args(["--max-connections", "0"])
        .assert()
        .code(2);
    std::fs::remove_dir_all(&dir).unwrap();
}
