//! The whole analysis on arbitrary bytes: reader → decoder (on the calling thread or on
//! the decoding thread, as the input's length is even or odd) → flow table (with a tiny
//! cap, so eviction runs too) with the payload bytes, so every HTTP-looking connection is
//! reassembled and parsed (and, for one input in three, searched for `--find` text) →
//! state machine → classifier → summary → text and JSON output.
#![no_main]

use closewait::analyze::{AnalyzeOptions, Analyzer, RecordSegments};
use closewait::capture::{SegmentFeed, SegmentStream};
use closewait::filter::Filter;
use closewait::model::ConnectionReport;
use closewait::render::{render, AnalyzeOutput, Format};
use closewait::summary::SummaryBuilder;
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};

fuzz_target!(|data: &[u8]| {
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(stream) = SegmentStream::open_readers(vec![("fuzz".to_string(), input)]) else {
        return;
    };
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::All,
        max_connections: 4,
        find: (data.len() % 3 == 0).then(|| b"GET /".to_vec()),
        ..AnalyzeOptions::default()
    };
    let mut analyzer = Analyzer::new(&opts);
    let mut reports: Vec<ConnectionReport> = Vec::new();
    let mut on_connection = |r: ConnectionReport| reports.push(r);
    let mut feed = SegmentFeed::new(stream, data.len() % 2 == 1);
    while let Some((seg, payload)) = feed.next_segment() {
        analyzer.push_with_payload(&seg, payload, &mut on_connection);
    }
    let stream = feed.into_stream();
    let end = stream.last_ts_ns().unwrap_or(0);
    let mut stats = stream.into_stats();
    stats.warnings.extend(analyzer.eviction_warning());
    analyzer.finish(end, &mut on_connection);

    let mut ids: Vec<u64> = reports.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), reports.len(), "each connection reported once");

    reports.sort_by_key(|r| r.id);
    let mut summary = SummaryBuilder::default();
    for r in &reports {
        assert!(r.duration.is_finite());
        summary.add(r);
    }
    let summary = summary.finish();
    let filter = Filter::default();
    let out = AnalyzeOutput::unfiltered(&stats, &filter, &reports, &summary);
    for format in [Format::Text, Format::Json, Format::Jsonl] {
        render(format, &out, &mut std::io::sink()).expect("rendering to a sink");
    }
});
