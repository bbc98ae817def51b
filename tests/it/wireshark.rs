//! Wireshark interop on the shipped captures: `--write-pcap` writes exactly the chosen
//! connections' packets (read back by pcap-parser byte for byte, and by tshark stream by
//! stream), and each finding's `display_filter` selects exactly its connections in
//! Wireshark.
//!
//! The tshark checks need Debian's `tshark` (`.ci/run` installs it). Without it they check
//! nothing, so they say so on stderr with a `SKIPPED` line, and fail instead when
//! `CLOSEWAIT_REQUIRE_TSHARK` or `CI` is set.

use crate::support::cli::{closewait, stdout_of};
use crate::support::paths::{capture, out_dir};
use pcap_parser::{create_reader, Block, PcapBlockOwned, PcapError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One connection as closewait reports it: its two endpoints (sorted) and packet count.
type Conn = (Vec<SocketAddr>, u64);

/// `closewait analyze --json ARGS`: the connections, by id.
fn analysed(args: &[&str]) -> BTreeMap<u64, Conn> {
    let mut all = vec!["analyze", "--json"];
    all.extend_from_slice(args);
    let doc: serde_json::Value = serde_json::from_str(&stdout_of(&all)).expect("JSON");
    doc["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            let mut ends: Vec<SocketAddr> = ["client", "server"]
                .iter()
                .map(|k| c[k].as_str().unwrap().parse().unwrap())
                .collect();
            ends.sort();
            let packets =
                c["packets"]["client"].as_u64().unwrap() + c["packets"]["server"].as_u64().unwrap();
            (c["id"].as_u64().unwrap(), (ends, packets))
        })
        .collect()
}

fn tshark() -> Option<PathBuf> {
    let path = std::env::var_os("CLOSEWAIT_TSHARK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/tshark"));
    if path.exists() {
        return Some(path);
    }
    let required = ["CLOSEWAIT_REQUIRE_TSHARK", "CI"]
        .into_iter()
        .find(|var| std::env::var(var).is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false")));
    if let Some(var) = required {
        panic!(
            "{} is not installed and {var} is set: the Wireshark checks may not be skipped",
            path.display()
        );
    }
    // `eprintln!` of a passing test is captured and never shown: write to fd 2 itself.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED wireshark (tshark not installed: the file was not opened in Wireshark)"
    );
    None
}

/// tshark's TCP streams of `file` (only the packets `filter` shows, if given): per
/// `tcp.stream`, its two endpoints (sorted) and packet count.
fn streams(tshark: &Path, file: &Path, filter: Option<&str>) -> BTreeMap<u64, Conn> {
    let mut cmd = Command::new(tshark);
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for field in [
        "tcp.stream",
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "ip.dst",
        "ipv6.dst",
        "tcp.dstport",
    ] {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark -r {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut streams: BTreeMap<u64, Conn> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let Ok(stream) = f[0].parse::<u64>() else {
            continue;
        };
        let ip = |v4: &str, v6: &str| -> IpAddr {
            // Tunnelled packets list every layer's address; the innermost is TCP's.
            let s = if v4.is_empty() { v6 } else { v4 };
            s.rsplit(',').next().unwrap().parse().unwrap()
        };
        let mut ends = vec![
            SocketAddr::new(ip(f[1], f[2]), f[3].parse().unwrap()),
            SocketAddr::new(ip(f[4], f[5]), f[6].parse().unwrap()),
        ];
        ends.sort();
        let entry = streams.entry(stream).or_insert((ends.clone(), 0));
        assert_eq!(entry.0, ends, "stream {stream} of {}", file.display());
        entry.1 += 1;
    }
    streams
}

/// A capture's packet records as pcap-parser reads them: link type (per interface for
/// pcapng), timestamp in nanoseconds, length on the wire, bytes.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Record {
    link_type: i32,
    ts_ns: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// Every record of a pcap or pcapng file, and whether it is pcapng.
fn records(path: &Path) -> (Vec<Record>, bool) {
    let file = std::fs::File::open(path).expect("open");
    let mut reader = create_reader(1 << 20, file).expect("a capture pcap-parser reads");
    let (mut out, mut ng) = (Vec::new(), false);
    let (mut link_type, mut nanosecond) = (0, false);
    let mut interfaces: Vec<(i32, u64)> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        link_type = h.network.0;
                        nanosecond = h.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(b) => out.push(Record {
                        link_type,
                        ts_ns: u64::from(b.ts_sec) * 1_000_000_000
                            + u64::from(b.ts_usec) * if nanosecond { 1 } else { 1000 },
                        orig_len: b.origlen,
                        data: b.data.to_vec(),
                    }),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                        ng = true;
                        interfaces.clear();
                    }
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let units = idb.ts_resolution().expect("tsresol");
                        interfaces.push((idb.linktype.0, 1_000_000_000 / units));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (lt, ns_per_unit) = interfaces[epb.if_id as usize];
                        let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        out.push(Record {
                            link_type: lt,
                            ts_ns: units * ns_per_unit,
                            orig_len: epb.origlen,
                            data: epb.data[..epb.caplen as usize].to_vec(),
                        });
                    }
                    _ => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
            Err(e) => panic!("{}: {e:?}", path.display()),
        }
    }
    (out, ng)
}

/// The records of the inputs merged by time as closewait merges them (ties to the input
/// named first; within an input, file order).
fn merged(inputs: &[PathBuf]) -> Vec<Record> {
    let mut all: Vec<(u64, usize, usize, Record)> = Vec::new();
    for (i, path) in inputs.iter().enumerate() {
        for (n, r) in records(path).0.into_iter().enumerate() {
            all.push((r.ts_ns, i, n, r));
        }
    }
    all.sort_by_key(|(ts, i, n, _)| (*ts, *i, *n));
    all.into_iter().map(|(.., r)| r).collect()
}

/// Whether `part` is `whole` with some records left out, order kept.
fn is_subsequence(part: &[Record], whole: &[Record]) -> bool {
    let mut it = whole.iter();
    part.iter().all(|p| it.any(|w| w == p))
}

/// The multiset of connections (endpoints, packets), ignoring ids.
fn shapes<'a>(conns: impl IntoIterator<Item = &'a Conn>) -> Vec<Conn> {
    let mut v: Vec<Conn> = conns.into_iter().cloned().collect();
    v.sort();
    v
}

/// Runs `closewait ARGS --write-pcap OUT`, returning OUT.
fn write_pcap(name: &str, args: &[&str]) -> PathBuf {
    let out = out_dir("wireshark").join(name);
    let _ = std::fs::remove_file(&out);
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("--write-pcap".into());
    all.push(out.display().to_string());
    stdout_of(&all);
    out
}

#[test]
fn write_pcap_of_a_filter_holds_exactly_its_connections_packets() {
    let input = capture("12-pool-leak-many.pcap");
    let path = input.to_str().unwrap();
    let chosen = analysed(&[path, "--state", "CLOSE_WAIT"]);
    assert_eq!(chosen.len(), 45);
    let packets: u64 = chosen.values().map(|c| c.1).sum();
    assert_eq!(packets, 405);
    let out = write_pcap(
        "close-wait.pcap",
        &["analyze", path, "--state", "CLOSE_WAIT"],
    );

    // pcap in, pcap out: the same link type and resolution, the packets byte for byte.
    let (written, ng) = records(&out);
    assert!(!ng, "a pcap input gives a pcap file");
    assert_eq!(written.len() as u64, packets);
    let (original, _) = records(&input);
    assert!(is_subsequence(&written, &original));
    assert_eq!(
        std::fs::read(&out).unwrap()[..4],
        std::fs::read(&input).unwrap()[..4]
    );

    // Wireshark sees the same connections, stream by stream.
    if let Some(tshark) = tshark() {
        let seen = streams(&tshark, &out, None);
        assert_eq!(shapes(seen.values()), shapes(chosen.values()));
    }
}

#[test]
fn write_pcap_of_merged_inputs_of_two_link_types_is_pcapng() {
    let inputs = [
        capture("15c-any-sll2.pcap"),
        capture("12-pool-leak-many.pcap"),
        capture("15d-pcap-nanosecond.pcap"),
    ];
    let mut args: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(["--kind", "graceful"]);
    let chosen = analysed(&args);
    assert_eq!(chosen.len(), 7, "{chosen:?}");
    let out = write_pcap("merged.pcapng", &[&["analyze"][..], &args].concat());

    let (written, ng) = records(&out);
    assert!(ng, "inputs of two link types give pcapng");
    let link_types: BTreeSet<i32> = written.iter().map(|r| r.link_type).collect();
    assert_eq!(
        link_types,
        BTreeSet::from([1, 276]),
        "Ethernet and LINUX_SLL2"
    );
    let packets: u64 = chosen.values().map(|c| c.1).sum();
    assert_eq!(written.len() as u64, packets);
    assert!(is_subsequence(&written, &merged(&inputs)));
    if let Some(tshark) = tshark() {
        let seen = streams(&tshark, &out, None);
        assert_eq!(shapes(seen.values()), shapes(chosen.values()));
    }
}

#[test]
fn write_pcap_of_a_pcapng_input_is_pcapng_with_its_timestamps() {
    let input = capture("15a-pcapng-nanosecond.pcapng");
    let path = input.to_str().unwrap();
    let chosen = analysed(&[path]);
    let out = write_pcap("ng.pcapng", &["analyze", path]);
    let (written, ng) = records(&out);
    assert!(ng);
    let (original, _) = records(&input);
    assert_eq!(
        written.len() as u64,
        chosen.values().map(|c| c.1).sum::<u64>()
    );
    assert_eq!(
        written, original,
        "every packet, nanosecond timestamps kept"
    );
}

#[test]
fn write_pcap_reads_standard_input_twice_through_a_copy() {
    let input = capture("12-pool-leak-many.pcap");
    let out = out_dir("wireshark").join("stdin.pcap");
    let _ = std::fs::remove_file(&out);
    let run = closewait()
        .args(["analyze", "-", "--kind", "graceful", "--write-pcap"])
        .arg(&out)
        .pipe_stdin(&input)
        .unwrap()
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("wrote 50 packets of 5 connections"));
    assert_eq!(records(&out).0.len(), 50);
}

#[test]
fn write_pcap_never_overwrites_an_input_nor_goes_to_standard_output() {
    let input = capture("12-pool-leak-many.pcap");
    let before = std::fs::read(&input).unwrap();
    for target in [input.to_str().unwrap(), "-"] {
        let run = closewait()
            .args(["analyze", input.to_str().unwrap(), "--write-pcap", target])
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "--write-pcap {target}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn diagnose_writes_one_findings_connections() {
    let input = capture("12-pool-leak-many.pcap");
    let path = input.to_str().unwrap();
    let out = write_pcap(
        "leak.pcap",
        &["diagnose", path, "--finding", "close_wait_leak"],
    );
    let all = analysed(&[path]);
    let doc: serde_json::Value =
        serde_json::from_str(&stdout_of(["diagnose", "--json", path])).unwrap();
    let leak = &doc["findings"][0];
    assert_eq!(leak["id"], "close_wait_leak");
    let ids: Vec<u64> = leak["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 45);
    let chosen: Vec<&Conn> = ids.iter().map(|id| &all[id]).collect();
    let (written, _) = records(&out);
    assert_eq!(written.len(), 405);
    if let Some(tshark) = tshark() {
        let seen = streams(&tshark, &out, None);
        assert_eq!(shapes(seen.values()), shapes(chosen));
    }
}

/// Every finding's `display_filter`, applied by tshark to the shipped capture it was made
/// from, shows exactly the finding's connections: the same streams (closewait's ids are
/// Wireshark's `tcp.stream` for one whole file) with the same packets.
#[test]
fn every_findings_display_filter_selects_exactly_its_connections() {
    let Some(tshark) = tshark() else { return };
    let dir = capture("");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let path = file.to_str().unwrap();
        let all = analysed(&[path]);
        let doc: serde_json::Value =
            serde_json::from_str(&stdout_of(["diagnose", "--json", path])).unwrap();
        for f in doc["findings"].as_array().unwrap() {
            let Some(filter) = f["display_filter"].as_str() else {
                assert!(f["evidence"].as_array().unwrap().is_empty());
                continue;
            };
            let want: BTreeMap<u64, Conn> = f["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let id = v.as_u64().unwrap();
                    (id, all[&id].clone())
                })
                .collect();
            let seen = streams(&tshark, &file, Some(filter));
            assert_eq!(seen, want, "{path}: {} {filter}", f["id"]);
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} findings checked");
}
