//! JSON and JSON Lines output: the machine-readable contract documented in `docs/json.md`.
//!
//! Both formats serialise the report model as it is (field names come from
//! `src/model.rs`, `src/capture/mod.rs` and `src/summary.rs`); this module only decides the
//! envelope. `--json` writes one document once everything is known; `--jsonl` writes a
//! line per connection as soon as it finishes (flushed within 0.1 s, every line at once
//! when reading standard input, so `tail -f` and pipes see it) and ends with one
//! `"type":"summary"` line.

use super::pretty::Pretty;
use super::{AnalyzeOutput, Renderer};
use closewait_core::capture::CaptureStats;
use closewait_core::filter::Filter;
use closewait_core::model::ConnectionReport;
use closewait_core::summary::Summary;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// The filter used, with how many connections it kept out of how many.
#[derive(Serialize)]
struct FilterReport<'a> {
    #[serde(flatten)]
    filter: &'a Filter,
    /// Connections that match (the ones listed and summarised).
    matched: u64,
    /// Connections in the capture before filtering.
    total: u64,
}

impl<'a> FilterReport<'a> {
    fn of(out: &AnalyzeOutput<'a>) -> Self {
        FilterReport {
            filter: out.filter,
            matched: out.summary.connections,
            total: out.connections_total,
        }
    }
}

/// The `--json` document: [`JsonRenderer`] writes the bytes serde_json's pretty printer
/// writes for it (checked by the tests).
#[cfg(test)]
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    capture: &'a CaptureStats,
    filter: FilterReport<'a>,
    connections: &'a [ConnectionReport],
    summary: &'a Summary,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    line_type: &'static str,
    capture: &'a CaptureStats,
    filter: FilterReport<'a>,
    summary: &'a Summary,
}

/// `--json`: one pretty-printed document, the serde_json pretty form of [`Document`].
///
/// The connections, nearly all of its bytes, are written as compact JSON by
/// [`super::json_line`] and re-indented by [`Pretty`] (about a fifth of the instructions
/// of serde_json's pretty printer); the rest goes through serde_json into the same
/// re-indenter. A test checks the bytes against `serde_json::to_writer_pretty(Document)`.
pub struct JsonRenderer;

/// How a `--jsonl` connection line starts; a `--json` connection is the same object
/// without its `type` member.
const CONNECTION_LINE_START: &[u8] = b"{\"type\":\"connection\",";

impl Renderer for JsonRenderer {
    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        let mut pretty = Pretty::new(&mut *w);
        write!(
            pretty,
            "{{\"schema_version\":{},\"capture\":",
            super::SCHEMA_VERSION
        )?;
        serde_json::to_writer(&mut pretty, out.capture)?;
        pretty.write_all(b",\"filter\":")?;
        serde_json::to_writer(&mut pretty, &FilterReport::of(out))?;
        pretty.write_all(b",\"connections\":[")?;
        let mut lines = super::json_line::LineWriter::default();
        for (i, report) in out.connections.iter().enumerate() {
            if i > 0 {
                pretty.write_all(b",")?;
            }
            let line = lines.connection_line(report);
            match line
                .strip_prefix(CONNECTION_LINE_START)
                .and_then(|members| members.strip_suffix(b"\n"))
            {
                Some(members) => {
                    pretty.write_all(b"{")?;
                    pretty.write_all(members)?;
                }
                None => serde_json::to_writer(&mut pretty, report)?,
            }
        }
        pretty.write_all(b"],\"summary\":")?;
        serde_json::to_writer(&mut pretty, out.summary)?;
        pretty.write_all(b"}")?;
        let w = pretty.finish()?;
        w.write_all(b"\n")?;
        w.flush()
    }
}

/// `--jsonl`: a `"type":"connection"` line per connection, then a `"type":"summary"` line.
///
/// Each line is written by [`super::json_line`] (the same bytes as serde_json, several
/// times faster) into a reused buffer, and the lines are written [`WRITE_AT`] bytes or
/// more at once (serde_json's many small writes through `dyn Write` cost more than the
/// serialisation itself; a write that large goes past the output's `BufWriter` instead
/// of being copied into it). Lines are flushed at most every [`FLUSH_INTERVAL`], so
/// reading a file does not cost a system call per connection;
/// [`JsonlRenderer::line_buffered`] writes and flushes every line, for live input where
/// the next connection may be minutes away.
pub struct JsonlRenderer {
    line: super::json_line::LineWriter,
    every_line: bool,
    last_flush: Option<Instant>,
}

/// How long a finished line may wait in the output buffer when reading files.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Lines gather up to this many bytes before they are written (when no flush is due):
/// more than std's `BufWriter` holds (8 KiB), so that it passes them on without a copy.
pub const WRITE_AT: usize = 64 * 1024;

impl JsonlRenderer {
    /// Flushes at most every [`FLUSH_INTERVAL`] (the first line at once).
    pub fn new() -> Self {
        JsonlRenderer {
            line: super::json_line::LineWriter::default(),
            every_line: false,
            last_flush: None,
        }
    }

    /// Flushes after every line.
    pub fn line_buffered() -> Self {
        JsonlRenderer {
            every_line: true,
            ..JsonlRenderer::new()
        }
    }

    /// Writes the lines gathered so far (forgotten even when the write fails: nothing
    /// more is written after an error).
    fn write_lines(&mut self, w: &mut dyn Write) -> io::Result<()> {
        let result = w.write_all(self.line.lines());
        self.line.clear();
        result
    }
}

impl Default for JsonlRenderer {
    fn default() -> Self {
        JsonlRenderer::new()
    }
}

impl Renderer for JsonlRenderer {
    fn connection(&mut self, w: &mut dyn Write, report: &ConnectionReport) -> io::Result<()> {
        self.line.push_line(report);
        let due = self.every_line
            || self
                .last_flush
                .is_none_or(|at| at.elapsed() >= FLUSH_INTERVAL);
        if due || self.line.lines().len() >= WRITE_AT {
            self.write_lines(w)?;
        }
        if due {
            self.last_flush = Some(Instant::now());
            w.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        self.write_lines(w)?;
        serde_json::to_writer(&mut *w, &SummaryLine::of(out))?;
        w.write_all(b"\n")?;
        w.flush()
    }
}

impl<'a> SummaryLine<'a> {
    fn of(out: &AnalyzeOutput<'a>) -> Self {
        SummaryLine {
            line_type: "summary",
            capture: out.capture,
            filter: FilterReport::of(out),
            summary: out.summary,
        }
    }
}

/// The `--jsonl` summary line (without its newline), which the columnar formats keep in
/// their file metadata.
pub(crate) fn summary_line(out: &AnalyzeOutput<'_>) -> String {
    serde_json::to_string(&SummaryLine::of(out)).expect("the summary serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{render, Format};
    use closewait_core::model::CloseKind;
    use closewait_core::testutil::ReportBuilder;
    use serde_json::Value;

    fn sample() -> (CaptureStats, Vec<ConnectionReport>) {
        let mut capture = CaptureStats::default();
        capture.packets.total = 20;
        capture.packets.tcp = 18;
        capture.packets.skipped.insert("not_tcp".into(), 2);
        capture.packets.tunnels.insert("gtp_u".into(), 4);
        capture.first_ts = Some(closewait_core::testutil::T0);
        let reports = vec![
            ReportBuilder::new(0).build(),
            ReportBuilder::new(1)
                .server("10.77.0.2:8788")
                .unanswered_fin_by_server(42.5)
                .build(),
        ];
        (capture, reports)
    }

    fn rendered(format: Format, filter: &Filter, total: u64) -> String {
        let (capture, reports) = sample();
        let summary = Summary::from_reports(&reports);
        let out = AnalyzeOutput {
            capture: &capture,
            filter,
            connections_total: total,
            connections: &reports,
            summary: &summary,
        };
        let mut buf = Vec::new();
        render(format, &out, &mut buf).expect("render to memory");
        String::from_utf8(buf).expect("utf-8")
    }

    /// `--json` of every shipped capture, byte for byte serde_json's pretty form of the
    /// document (the re-indented fast path must not drift from the model).
    #[test]
    fn json_document_is_serde_pretty_of_the_document_on_every_shipped_capture() {
        let mut checked = 0;
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../captures"))
            .expect("captures/")
        {
            let path = entry.expect("entry").path();
            let name = path.to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".gz")) {
                continue;
            }
            let mut reports = Vec::new();
            let inputs = [closewait_core::capture::InputSpec::Path(path.clone())];
            let opts = closewait_core::analyze::AnalyzeOptions::default();
            let capture =
                match closewait_core::analyze::analyze(&inputs, &opts, &mut |r| reports.push(r)) {
                    Ok(capture) => capture,
                    Err(_) => continue, // the shipped damaged-capture examples
                };
            crate::render::sort_by_id(&mut reports, |r| r.id);
            let summary = Summary::from_reports(&reports);
            let filter = Filter::default();
            let out = AnalyzeOutput::unfiltered(&capture, &filter, &reports, &summary);
            let mut fast = Vec::new();
            JsonRenderer.finish(&mut fast, &out).expect("render");
            let doc = Document {
                schema_version: crate::render::SCHEMA_VERSION,
                capture: out.capture,
                filter: FilterReport::of(&out),
                connections: out.connections,
                summary: out.summary,
            };
            let mut reference = serde_json::to_vec_pretty(&doc).expect("serialise");
            reference.push(b'\n');
            assert!(
                fast == reference,
                "{name}: --json differs from serde_json's"
            );
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} captures checked");
    }

    #[test]
    fn json_document_has_capture_filter_connections_summary() {
        let text = rendered(Format::Json, &Filter::default(), 2);
        let doc: Value = serde_json::from_str(&text).expect("one valid JSON document");
        let keys: Vec<&str> = doc
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(doc["schema_version"], crate::render::SCHEMA_VERSION);
        for k in ["capture", "filter", "connections", "summary"] {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert_eq!(doc["capture"]["packets"]["skipped"]["not_tcp"], 2);
        assert_eq!(doc["capture"]["packets"]["tunnels"]["gtp_u"], 4);
        assert_eq!(doc["filter"]["matched"], 2);
        assert_eq!(doc["filter"]["total"], 2);
        assert_eq!(doc["filter"]["kind"], Value::Array(vec![]));

        let conns = doc["connections"].as_array().expect("array");
        assert_eq!(conns.len(), 2);
        let leak = &conns[1];
        assert_eq!(leak["id"], 1);
        assert_eq!(leak["server"], "10.77.0.2:8788");
        assert_eq!(leak["client_state"], "CLOSE_WAIT");
        assert_eq!(leak["server_state"], "FIN_WAIT_2");
        assert_eq!(leak["close"]["kind"], "unanswered_fin");
        assert_eq!(leak["close"]["who_failed_to_respond"], "client");
        assert_eq!(leak["close"]["first"], "FIN");
        assert_eq!(leak["close"]["waiting_for"], 42.5);
        assert_eq!(leak["close"]["rst_by"], Value::Null);
        assert_eq!(leak["timeline"]["client"][1]["frame"], Value::Null);
        assert!(
            leak.get("segments").is_none(),
            "segments absent unless recorded"
        );
        assert!(text.ends_with("}\n"));

        assert_eq!(doc["summary"]["connections"], 2);
        assert_eq!(doc["summary"]["by_kind"]["unanswered_fin"], 1);
        assert_eq!(doc["summary"]["by_kind"]["abort"], 0);
        assert_eq!(doc["summary"]["longest_close_wait"]["id"], 1);
    }

    #[test]
    fn jsonl_has_connection_lines_then_one_summary_line() {
        let filter = Filter {
            kind: vec![CloseKind::UnansweredFin, CloseKind::Graceful],
            ..Default::default()
        };
        let text = rendered(Format::Jsonl, &filter, 7);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["type"], "connection");
        assert_eq!(lines[0]["id"], 0);
        assert_eq!(lines[1]["type"], "connection");
        assert_eq!(lines[1]["close"]["kind"], "unanswered_fin");
        let last = &lines[2];
        assert_eq!(last["type"], "summary");
        assert_eq!(last["summary"]["connections"], 2);
        assert_eq!(last["filter"]["total"], 7);
        assert_eq!(last["filter"]["matched"], 2);
        assert_eq!(
            last["filter"]["kind"],
            serde_json::json!(["unanswered_fin", "graceful"])
        );
        assert_eq!(last["capture"]["packets"]["tcp"], 18);
        assert!(last.get("connections").is_none());
    }

    #[test]
    fn jsonl_first_line_is_flushed_at_once_and_live_input_flushes_every_line() {
        struct CountFlushes(Vec<u8>, usize);
        impl Write for CountFlushes {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.1 += 1;
                Ok(())
            }
        }
        let mut sink = CountFlushes(Vec::new(), 0);
        let r = ReportBuilder::new(3).build();
        let mut renderer = JsonlRenderer::new();
        renderer.connection(&mut sink, &r).expect("write to memory");
        assert_eq!(sink.1, 1);
        assert!(sink.0.ends_with(b"\n"));
        assert_eq!(sink.0.iter().filter(|b| **b == b'\n').count(), 1);
        let lines = |sink: &CountFlushes| sink.0.iter().filter(|b| **b == b'\n').count();
        // Read from a file, the next lines within the interval wait in the renderer, and
        // are written unflushed once WRITE_AT bytes have gathered…
        renderer.connection(&mut sink, &r).expect("write to memory");
        assert_eq!((lines(&sink), sink.1), (1, 1));
        let line_len = sink.0.len();
        let mut sent = 2;
        while (sent - 1) * line_len < WRITE_AT {
            assert_eq!(lines(&sink), 1);
            renderer.connection(&mut sink, &r).expect("write to memory");
            sent += 1;
        }
        assert_eq!((lines(&sink), sink.1), (sent, 1));
        renderer.connection(&mut sink, &r).expect("write to memory");
        let out = AnalyzeOutput {
            capture: &CaptureStats::default(),
            filter: &Filter::default(),
            connections_total: 0,
            connections: &[],
            summary: &Summary::from_reports(&[]),
        };
        // …and the last ones with the summary.
        renderer.finish(&mut sink, &out).expect("write to memory");
        assert_eq!((lines(&sink), sink.1), (sent + 2, 2));
        // With live input every line is written and flushed.
        let mut live = JsonlRenderer::line_buffered();
        live.connection(&mut sink, &r).expect("write to memory");
        assert_eq!((lines(&sink), sink.1), (sent + 3, 3));
        live.connection(&mut sink, &r).expect("write to memory");
        assert_eq!((lines(&sink), sink.1), (sent + 4, 4));
    }
}
