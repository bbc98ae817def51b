//! Damaged captures, deterministically: every shipped capture cut at many offsets and
//! mutated with seeded random byte flips. Thousands of cases in a few seconds.
//!
//! What must hold for each: no panic; a cut inside the capture header is an open error
//! naming what the file looks like; a cut anywhere after it keeps every packet before the
//! cut, says so in a warning (byte offset, packets kept), and still reports every
//! connection that started before the cut, with the same id and endpoints as in the whole
//! capture. Flipped bytes may change anything, but never panic, hang, or report one
//! connection twice.

use closewait::analyze::{AnalyzeOptions, Analyzer, RecordSegments};
use closewait::capture::{CaptureError, CaptureStats, SegmentStream};
use closewait::filter::Filter;
use closewait::model::ConnectionReport;
use closewait::render::{render, AnalyzeOutput, Format};
use closewait::summary::SummaryBuilder;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

/// The captures shipped with the project: the real Linux recordings in `captures/`, and
/// the Zeek traces under 64 KiB (the larger ones are cut at fewer offsets).
fn shipped_captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["captures", "tests/data/zeek/traces"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.to_string_lossy();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "shipped captures not found");
    files
}

/// One analysis over in-memory bytes, rendered to every format (into nothing) so the
/// renderers see the damaged reports too.
fn run(bytes: &[u8]) -> Result<(Vec<ConnectionReport>, CaptureStats), CaptureError> {
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(bytes.to_vec()));
    let mut stream = SegmentStream::open_readers(vec![("cut.pcap".to_string(), input)])?;
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::None,
        ..AnalyzeOptions::default()
    };
    let mut analyzer = Analyzer::new(&opts);
    let mut reports = Vec::new();
    while let Some(seg) = stream.next_segment() {
        analyzer.push(seg, &mut |r| reports.push(r));
    }
    let end = stream.last_ts_ns().unwrap_or(0);
    let stats = stream.into_stats();
    analyzer.finish(end, &mut |r| reports.push(r));
    reports.sort_by_key(|r| r.id);
    let mut summary = SummaryBuilder::default();
    for r in &reports {
        summary.add(r);
    }
    let summary = summary.finish();
    let filter = Filter::default();
    let out = AnalyzeOutput::unfiltered(&stats, &filter, &reports, &summary);
    for format in [Format::Text, Format::Json] {
        render(format, &out, &mut std::io::sink()).expect("render into a sink");
    }
    Ok((reports, stats))
}

/// Where each block (pcap record, or pcapng block) of a capture ends, and how many
/// packets the capture holds up to that point. The first entry is the end of the file
/// header (pcap) or of the Section Header Block (pcapng).
fn block_ends(data: &[u8]) -> Vec<(usize, u64)> {
    let u32_at = |at: usize, be: bool| {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut ends = Vec::new();
    let mut packets = 0;
    if data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let be = data[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
        let mut at = 0;
        while at + 8 <= data.len() {
            let kind = u32_at(at, be);
            let len = u32_at(at + 4, be) as usize;
            if [2, 3, 6].contains(&kind) {
                packets += 1;
            }
            at += len;
            ends.push((at, packets));
        }
    } else {
        let be = data[..4] == [0xa1, 0xb2, 0xc3, 0xd4] || data[..4] == [0xa1, 0xb2, 0x3c, 0x4d];
        let mut at = 24;
        ends.push((at, 0));
        while at + 16 <= data.len() {
            at += 16 + u32_at(at + 8, be) as usize;
            packets += 1;
            ends.push((at, packets));
        }
    }
    assert_eq!(ends.last().map(|e| e.0), Some(data.len()), "whole blocks");
    ends
}

/// Larger captures are cut and mutated only in their first blocks up to this size (and
/// cut once more in their last block), so the whole test stays within seconds.
const PREFIX: usize = 48 * 1024;

/// Every block (the file header, each record) within the first this many bytes is cut at
/// several offsets; past it, a few dozen blocks spread over the rest of [`PREFIX`].
const DENSE: usize = 4 * 1024;

/// Cut points: inside the file header, several inside and at the end of every block of the
/// first [`DENSE`] bytes, a few in blocks spread up to [`PREFIX`], and in the last block.
fn cuts(ends: &[(usize, u64)]) -> Vec<usize> {
    let mut cuts = vec![0, 1, 3, 4, 5, 12, 23];
    let spread = (ends.iter().filter(|e| e.0 <= PREFIX).count() / 40).max(1);
    let mut start = 0;
    for (i, &(end, _)) in ends.iter().enumerate() {
        let offsets: &[usize] = if end <= DENSE {
            &[1, 7, 15, 17]
        } else if (end <= PREFIX && i % spread == 0) || i + 1 == ends.len() {
            &[5, 17]
        } else {
            &[]
        };
        if !offsets.is_empty() {
            cuts.extend(offsets.iter().map(|o| start + o).filter(|&c| c < end));
            cuts.extend([end - 1, end]);
        }
        start = end;
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The capture's first whole blocks up to [`PREFIX`] bytes (all of it when smaller).
fn prefix(data: &[u8], ends: &[(usize, u64)]) -> usize {
    ends.iter()
        .map(|&(end, _)| end)
        .take_while(|&end| end <= PREFIX)
        .last()
        .unwrap_or(data.len())
}

/// The identity of a connection that a cut cannot change: id, endpoints, first frame.
fn identity(r: &ConnectionReport) -> (u64, String, String, u64) {
    (
        r.id,
        r.client.to_string(),
        r.server.to_string(),
        r.first_frame,
    )
}

#[test]
fn every_capture_cut_anywhere_keeps_what_came_before_the_cut() {
    let mut cases = 0;
    for path in shipped_captures() {
        let name = path.display().to_string();
        let data = std::fs::read(&path).expect("read capture");
        let (full, full_stats) = run(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!full_stats.files[0].truncated, "{name}");
        let ends = block_ends(&data);
        let header_end = ends[0].0;
        for cut in cuts(&ends) {
            cases += 1;
            let what = format!("{name} cut at {cut}");
            let result = run(&data[..cut]);
            if cut < header_end {
                // Inside the file header: nothing to analyse, an error that says why.
                let e = result.err().unwrap_or_else(|| panic!("{what}: opened"));
                let msg = e.to_string();
                assert!(msg.starts_with("cut.pcap: "), "{what}: {msg}");
                if cut == 0 {
                    assert_eq!(msg, "cut.pcap: not a capture file: an empty file");
                }
                continue;
            }
            let (reports, stats) = result.unwrap_or_else(|e| panic!("{what}: {e}"));
            // Packets kept: every block that ends at or before the cut.
            let (block_start, kept) = ends
                .iter()
                .rev()
                .find(|(end, _)| *end <= cut)
                .copied()
                .unwrap_or((0, 0));
            assert_eq!(stats.packets.total, kept, "{what}");
            let at_boundary = block_start == cut;
            assert_eq!(stats.files[0].truncated, !at_boundary, "{what}");
            if !at_boundary {
                let w = stats
                    .warnings
                    .iter()
                    .find(|w| w.contains("cut short"))
                    .unwrap_or_else(|| panic!("{what}: no warning in {:?}", stats.warnings));
                assert!(
                    w.starts_with(&format!(
                        "cut.pcap: capture cut short at byte offset {block_start} ("
                    )),
                    "{what}: {w}"
                );
                assert!(
                    w.ends_with(&format!("kept the {kept} packet(s) before it")),
                    "{what}: {w}"
                );
            }
            // Every connection that started before the cut is still there, same identity.
            let expected: Vec<_> = full
                .iter()
                .filter(|r| r.first_frame <= kept)
                .map(identity)
                .collect();
            let got: Vec<_> = reports.iter().map(identity).collect();
            assert_eq!(got, expected, "{what}");
        }
    }
    eprintln!("{cases} cuts");
    assert!(cases > 2000, "only {cases} cuts");
}

#[test]
fn gzip_captures_cut_anywhere_report_a_consistent_prefix() {
    let mut cases = 0;
    for path in shipped_captures().into_iter().take(12) {
        let name = path.display().to_string();
        let data = std::fs::read(&path).expect("read capture");
        let (full, _) = run(&data).expect("whole capture");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let step = (gz.len() / 40).max(1);
        for cut in (0..gz.len()).step_by(step).chain([gz.len() - 1]) {
            cases += 1;
            let what = format!("{name}.gz cut at {cut}");
            let Ok((reports, stats)) = run(&gz[..cut]) else {
                continue; // cut in the gzip or capture header: an open error
            };
            assert!(stats.files[0].gzip, "{what}");
            assert!(stats.files[0].truncated, "{what}");
            assert!(
                stats.warnings.iter().any(|w| w.contains("cut short")),
                "{what}: {:?}",
                stats.warnings
            );
            // Each connection reported is the whole capture's connection of that id.
            let full_ids: Vec<_> = full.iter().map(identity).collect();
            for r in &reports {
                assert!(full_ids.contains(&identity(r)), "{what}: {r:?}");
            }
        }
    }
    eprintln!("{cases} gzip cuts");
    assert!(cases > 400, "only {cases} cuts");
}

/// xorshift64: a tiny seeded generator, so every run flips the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = Rng(0x5eed_c105_e3a1_7000);
    let mut cases = 0;
    let mut opened = 0;
    let mut damaged = 0;
    for path in shipped_captures() {
        let data = std::fs::read(&path).expect("read capture");
        let ends = block_ends(&data);
        let data = data[..prefix(&data, &ends)].to_vec();
        let ends: Vec<_> = ends.into_iter().filter(|e| e.0 <= data.len()).collect();
        for round in 0..60 {
            let mut bytes = data.clone();
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                // Half of the flips land on block headers, where lengths and types live.
                let at = if rng.next() % 2 == 0 {
                    let (end, _) = ends[rng.below(ends.len())];
                    (end + rng.below(16)).min(bytes.len() - 1)
                } else {
                    rng.below(bytes.len())
                };
                bytes[at] = rng.next() as u8;
            }
            cases += 1;
            let what = format!("{} round {round}", path.display());
            match run(&bytes) {
                Ok((reports, stats)) => {
                    opened += 1;
                    if stats.files[0].truncated {
                        damaged += 1;
                    }
                    // (A frame may hold several TCP segments, an 802.11 A-MSDU in GRE: the
                    // segments can outnumber the packets, the skipped ones cannot.)
                    let skipped: u64 = stats.packets.skipped.values().sum();
                    assert!(skipped <= stats.packets.total, "{what}");
                    let mut ids: Vec<u64> = reports.iter().map(|r| r.id).collect();
                    ids.dedup();
                    assert_eq!(ids.len(), reports.len(), "{what}: a connection twice");
                    for r in &reports {
                        assert!(r.duration.is_finite(), "{what}");
                    }
                }
                Err(e) => {
                    // Only a damaged header may refuse the file, and the message names it.
                    assert!(e.to_string().starts_with("cut.pcap: "), "{what}: {e}");
                }
            }
        }
    }
    eprintln!("{cases} mutants, {opened} opened, {damaged} stopped at damage");
    assert!(cases >= 2000, "only {cases} cases");
    assert!(
        opened > cases / 2,
        "most mutants still open ({opened}/{cases})"
    );
    assert!(damaged > 0, "some mutants hit a record length ({damaged})");
}
