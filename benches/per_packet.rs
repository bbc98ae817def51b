//! The per-packet path, one stage at a time: decode a frame, find its connection, update
//! the state machines. Run with `cargo bench`; inputs are the frames of
//! `captures/12-pool-leak-many.pcap` (a real Linux capture), replayed from memory.

use closewait::analyze::{AnalyzeOptions, Analyzer};
use closewait::capture::{InputSpec, SegmentStream};
use closewait::decode::{decode_frame_into, decode_packet, Decoded};
use closewait::flow::{FlowIndex, FlowKey};
use closewait::segment::Segment;
use closewait::tcp::{Conversation, End};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::path::PathBuf;

fn capture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/12-pool-leak-many.pcap")
}

/// (link type, frame bytes) of every record, read by hand from the classic pcap file.
fn raw_frames() -> (u32, Vec<Vec<u8>>) {
    let bytes = std::fs::read(capture_path()).expect("capture 12 is in the repository");
    let le = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || bytes[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let link_type = u32_at(20) & 0xffff;
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        frames.push(bytes[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    (link_type, frames)
}

fn segments() -> Vec<Segment> {
    SegmentStream::open(&[InputSpec::Path(capture_path())])
        .expect("capture 12 opens")
        .collect()
}

fn decode(c: &mut Criterion) {
    let (link_type, frames) = raw_frames();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("ethernet_ipv4_tcp", |b| {
        b.iter(|| {
            for f in &frames {
                let _ = black_box(decode_packet(link_type, f, f.len() as u32, 0));
            }
        })
    });
    // The reader's path: decoded in place into one reused `Decoded`.
    g.bench_function("ethernet_ipv4_tcp_in_place", |b| {
        let mut out = Decoded::empty();
        b.iter(|| {
            for f in &frames {
                let _ = black_box(decode_frame_into(
                    link_type,
                    f,
                    f.len() as u32,
                    0,
                    0,
                    &mut out,
                ));
            }
        })
    });
    g.finish();
}

/// Looking a packet's 4-tuple up among many live connections, with the table's hasher
/// (foldhash) and with std's default SipHash for comparison.
fn flow_lookup(c: &mut Criterion) {
    let live = 100_000u32;
    let keys: Vec<FlowKey> = (0..live)
        .map(|i| {
            let seg = Segment {
                src: format!(
                    "10.{}.{}.1:{}",
                    i >> 16,
                    (i >> 8) & 255,
                    1024 + (i & 0x3fff)
                )
                .parse()
                .expect("address"),
                dst: "10.78.0.2:80".parse().expect("address"),
                ..Decoded::empty().segment
            };
            FlowKey::of(&seg)
        })
        .collect();
    let mut g = c.benchmark_group("flow_lookup");
    g.throughput(Throughput::Elements(keys.len() as u64));
    let fold: HashMap<FlowKey, u32, foldhash::fast::RandomState> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u32))
        .collect();
    let sip: HashMap<FlowKey, u32> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u32))
        .collect();
    g.bench_with_input(BenchmarkId::new("foldhash", live), &keys, |b, keys| {
        b.iter(|| keys.iter().map(|k| fold[k]).fold(0u32, u32::wrapping_add))
    });
    g.bench_with_input(BenchmarkId::new("siphash", live), &keys, |b, keys| {
        b.iter(|| keys.iter().map(|k| sip[k]).fold(0u32, u32::wrapping_add))
    });
    // The table's own index: 8-byte entries (hash tag, slot), the key checked against the
    // slot's key as the table checks it against the connection's header.
    let hasher = foldhash::fast::RandomState::default();
    let hashes: Vec<u64> = keys.iter().map(|k| hasher.hash_one(k)).collect();
    let mut index = FlowIndex::new();
    for (slot, h) in hashes.iter().enumerate() {
        index.insert(*h, slot as u32);
    }
    g.bench_with_input(BenchmarkId::new("flow_index", live), &keys, |b, keys| {
        b.iter(|| {
            keys.iter()
                .map(|k| {
                    let h = hasher.hash_one(k);
                    index
                        .find(h, |slot| keys[slot as usize] == *k)
                        .expect("present")
                })
                .fold(0u32, u32::wrapping_add)
        })
    });
    g.finish();
}

/// The RFC 9293 state machine alone, on the segments of the capture's first connection,
/// and the whole table (lookup, both state machines, release queue, reports).
fn state_update(c: &mut Criterion) {
    let segs = segments();
    let first = FlowKey::of(&segs[0]);
    let conn: Vec<Segment> = segs
        .iter()
        .filter(|s| FlowKey::of(s) == first)
        .copied()
        .collect();
    let mut g = c.benchmark_group("state_update");
    g.throughput(Throughput::Elements(conn.len() as u64));
    g.bench_function("conversation_process", |b| {
        b.iter(|| {
            let mut conv = Conversation::new(&conn[0], false);
            for s in &conn {
                let from = if s.src != conn[0].src { End::B } else { End::A };
                conv.process(s, from);
            }
            black_box(conv.is_finished())
        })
    });
    g.throughput(Throughput::Elements(segs.len() as u64));
    g.bench_function("analyzer_push_all", |b| {
        b.iter(|| {
            let mut analyzer = Analyzer::new(&AnalyzeOptions::default());
            let mut n = 0u64;
            for s in &segs {
                analyzer.push(s, &mut |_| n += 1);
            }
            analyzer.finish(segs.last().map_or(0, |s| s.ts_ns), &mut |_| n += 1);
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, decode, flow_lookup, state_update);
criterion_main!(benches);
