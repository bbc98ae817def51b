//! `closewait analyze --format parquet` / `--format arrow`: the files read back with the
//! parquet and arrow crates' own readers hold, row for row and column for column, what the
//! analysis reported for every shipped capture (the Python tests in tests/python/ check the
//! same files against `--jsonl` with pyarrow and DuckDB).

use crate::support::cli::{closewait, on_a_terminal};
use crate::support::paths::{out_dir, root};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, MapArray, RecordBatch};
use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::http::{GiveUp, HttpConversation, KeepAliveAdvertised, RequestLine};
use closewait::model::{ConnectionReport, DirectionStats, Side, StateChange};
use closewait::render::columnar::{ColumnarRenderer, FileKind, SCHEMA_VERSION};
use closewait::render::{AnalyzeOutput, Renderer};
use closewait::state::TcpState;
use closewait::summary::SummaryBuilder;
use closewait_core::http_close::HttpClose;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::PathBuf;

fn shipped_captures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .map(|n| format!("captures/{n}"))
        .collect();
    names.sort();
    assert!(names.len() > 20, "{names:?}");
    names
}

/// The connections as `analyze` reports them, in finish order (the order of the rows).
fn reports(capture: &str) -> Vec<ConnectionReport> {
    let mut out = Vec::new();
    let input = InputSpec::Path(root().join(capture));
    analyze(&[input], &AnalyzeOptions::default(), &mut |r| out.push(r)).expect("analyze");
    out
}

fn read_parquet(bytes: Vec<u8>) -> (Vec<RecordBatch>, usize, Option<String>) {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("parquet");
    let meta = builder.metadata().clone();
    let version = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "schema_version"))
        .and_then(|k| k.value.clone());
    let batches = builder
        .build()
        .expect("reader")
        .collect::<Result<_, _>>()
        .expect("batches");
    (batches, meta.num_row_groups(), version)
}

fn read_arrow(bytes: Vec<u8>) -> Vec<RecordBatch> {
    let reader =
        arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).expect("ipc");
    reader.collect::<Result<_, _>>().expect("batches")
}

fn analyze_to_file(capture: &str, name: &str) -> PathBuf {
    let target = out_dir("columnar").join(name);
    let out = closewait()
        .args(["analyze", capture, "-o"])
        .arg(&target)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{capture}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

/// One row of the table, read by column name.
struct Row<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

impl Row<'_> {
    fn column(&self, name: &str) -> &dyn Array {
        self.batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .as_ref()
    }
    fn int(&self, name: &str) -> Option<i64> {
        let a = self.column(name).as_primitive::<Int64Type>();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    fn count(&self, name: &str) -> u64 {
        u64::try_from(self.int(name).expect(name)).expect("not negative")
    }
    fn port(&self, name: &str) -> u16 {
        let a = self.column(name).as_primitive::<Int32Type>();
        u16::try_from(a.value(self.index)).expect("a port")
    }
    fn float(&self, name: &str) -> Option<f64> {
        let a = self.column(name).as_primitive::<Float64Type>();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    fn micros(&self, name: &str) -> i64 {
        let a = self.column(name).as_primitive::<TimestampMicrosecondType>();
        a.value(self.index)
    }
    fn text(&self, name: &str) -> Option<&str> {
        let a = self.column(name).as_string::<i32>();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    fn bool(&self, name: &str) -> bool {
        self.maybe_bool(name).expect(name)
    }
    fn maybe_bool(&self, name: &str) -> Option<bool> {
        let a = self.column(name).as_boolean();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    fn int32(&self, name: &str) -> Option<i32> {
        let a = self.column(name).as_primitive::<Int32Type>();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    fn maybe_micros(&self, name: &str) -> Option<i64> {
        let a = self.column(name).as_primitive::<TimestampMicrosecondType>();
        a.is_valid(self.index).then(|| a.value(self.index))
    }
    /// A `map<int32, int64>` cell as its (key, value) pairs in stored order.
    fn counts_by_code(&self, name: &str) -> Option<Vec<(i32, i64)>> {
        let a: &MapArray = self.column(name).as_map();
        if !a.is_valid(self.index) {
            return None;
        }
        let entries = a.value(self.index);
        let keys = entries.column(0).as_primitive::<Int32Type>();
        let values = entries.column(1).as_primitive::<Int64Type>();
        Some(
            keys.values()
                .iter()
                .copied()
                .zip(values.values().iter().copied())
                .collect(),
        )
    }
}

/// Seconds spent in `state` until the next change; none while still in it at the end.
fn expected_seconds_in(timeline: &[StateChange], state: TcpState) -> Option<f64> {
    if timeline.last().map(|c| c.state) == Some(state) {
        return None;
    }
    let spans: Vec<f64> = timeline
        .windows(2)
        .filter(|w| w[0].state == state)
        .map(|w| w[1].at - w[0].at)
        .collect();
    (!spans.is_empty()).then(|| spans.iter().sum())
}

fn assert_row_is_report(row: &Row<'_>, r: &ConnectionReport, capture: &str) {
    let at = format!("{capture} connection {}", r.id);
    assert_eq!(row.count("id"), r.id, "{at}");
    assert_eq!(
        row.text("client_ip"),
        Some(r.client.ip().to_string().as_str()),
        "{at}"
    );
    assert_eq!(row.port("client_port"), r.client.port(), "{at}");
    assert_eq!(
        row.text("server_ip"),
        Some(r.server.ip().to_string().as_str()),
        "{at}"
    );
    assert_eq!(row.port("server_port"), r.server.port(), "{at}");
    assert_eq!(row.bool("role_inferred"), r.role_inferred, "{at}");
    assert_eq!(row.float("start"), Some(r.start), "{at}");
    assert_eq!(row.float("end"), Some(r.end), "{at}");
    assert_eq!(
        row.micros("start_time"),
        (r.start * 1e6).round() as i64,
        "{at}"
    );
    assert_eq!(row.micros("end_time"), (r.end * 1e6).round() as i64, "{at}");
    assert_eq!(row.float("duration"), Some(r.duration), "{at}");
    assert_eq!(row.count("first_frame"), r.first_frame, "{at}");
    assert_eq!(row.count("last_frame"), r.last_frame, "{at}");
    assert_eq!(row.count("packets_client"), r.packets.client, "{at}");
    assert_eq!(row.count("packets_server"), r.packets.server, "{at}");
    assert_eq!(row.count("bytes_client"), r.bytes.client, "{at}");
    assert_eq!(row.count("bytes_server"), r.bytes.server, "{at}");

    let c = &r.close;
    let side = |s: Option<Side>| s.map(Side::as_str);
    assert_eq!(row.text("close_kind"), Some(c.kind.as_str()), "{at}");
    assert_eq!(
        row.text("close_initiator"),
        Some(c.initiator.as_str()),
        "{at}"
    );
    assert_eq!(row.text("close_first"), c.first.map(|s| s.as_str()), "{at}");
    assert_eq!(row.text("close_first_by"), side(c.first_by), "{at}");
    assert_eq!(row.float("close_first_at"), c.first_at, "{at}");
    assert_eq!(
        row.int("close_first_frame"),
        c.first_frame.map(|f| f as i64),
        "{at}"
    );
    assert_eq!(
        row.float("close_idle_before_close"),
        c.idle_before_close,
        "{at}"
    );
    assert_eq!(row.text("close_rst_by"), side(c.rst_by), "{at}");
    assert_eq!(
        row.text("close_who_failed_to_respond"),
        side(c.who_failed_to_respond),
        "{at}"
    );
    assert_eq!(row.float("close_waiting_since"), c.waiting_since, "{at}");
    assert_eq!(row.float("close_waiting_for"), c.waiting_for, "{at}");
    assert_eq!(
        row.text("close_explanation"),
        Some(c.explained().to_string().as_str()),
        "{at}"
    );
    assert_eq!(
        row.text("client_state"),
        Some(r.client_state.as_str()),
        "{at}"
    );
    assert_eq!(
        row.text("server_state"),
        Some(r.server_state.as_str()),
        "{at}"
    );

    for (side, timeline) in [
        ("client", &r.timeline.client),
        ("server", &r.timeline.server),
    ] {
        for (state, name) in [
            (TcpState::FinWait2, "fin_wait_2"),
            (TcpState::CloseWait, "close_wait"),
            (TcpState::LastAck, "last_ack"),
            (TcpState::TimeWait, "time_wait"),
        ] {
            let column = format!("{side}_{name}_secs");
            let expected = expected_seconds_in(timeline, state);
            assert_eq!(row.float(&column), expected, "{at} {column}");
        }
    }

    for (side, stats) in [("client", &r.tcp.client), ("server", &r.tcp.server)] {
        let DirectionStats {
            retransmissions,
            out_of_order,
            keepalives,
            keepalive_acks,
            zero_windows,
            missing_bytes,
            ignored_rsts,
            fins,
            rsts,
        } = stats;
        for (name, value) in [
            ("retransmissions", retransmissions),
            ("out_of_order", out_of_order),
            ("keepalives", keepalives),
            ("keepalive_acks", keepalive_acks),
            ("zero_windows", zero_windows),
            ("missing_bytes", missing_bytes),
            ("ignored_rsts", ignored_rsts),
            ("fins", fins),
            ("rsts", rsts),
        ] {
            let column = format!("tcp_{side}_{name}");
            assert_eq!(row.count(&column), *value, "{at} {column}");
        }
    }
    assert_eq!(
        row.text("zeek_conn_state"),
        Some(r.zeek.conn_state.as_str()),
        "{at}"
    );
    assert_eq!(
        row.text("zeek_history"),
        Some(r.zeek.history.as_str()),
        "{at}"
    );
    assert_eq!(row.text("capture"), Some(capture), "{at}");
    assert_http_columns_are_report(row, r, &at);
    assert_close_http_columns_are_report(row, r, &at);
}

fn micros(secs: Option<f64>) -> Option<i64> {
    secs.map(|s| (s * 1e6).round() as i64)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).expect("a count below 2^63")
}

/// The `{prefix}_method`, `_target` and `_version` columns are `line`'s.
fn assert_request_line(row: &Row<'_>, prefix: &str, line: Option<&RequestLine>, at: &str) {
    for (part, value) in [
        ("method", line.map(|l| l.method.as_str())),
        ("target", line.map(|l| l.target.as_str())),
        ("version", line.map(|l| l.version.as_str())),
    ] {
        let column = format!("{prefix}_{part}");
        assert_eq!(row.text(&column), value, "{at} {column}");
    }
}

/// Every `http_*` column equals its field of `http`, all null without it.
fn assert_http_columns_are_report(row: &Row<'_>, r: &ConnectionReport, at: &str) {
    let present = r.http.is_some();
    let none = HttpConversation::default();
    // Every field is named: a field added to the model fails here until it has a column.
    let HttpConversation {
        requests,
        responses,
        version,
        first_request,
        last_request,
        status_codes,
        last_request_says_close,
        last_response_says_close,
        last_response_persistent,
        keep_alive,
        unanswered_requests,
        last_unanswered_request,
        switched_protocols,
        gave_up,
        first_request_at,
        last_request_at,
        last_response_at,
        last_status,
        marks: _,
    } = r.http.as_deref().unwrap_or(&none);
    let when_http = |v: u64| present.then(|| signed(v));
    let flag = |v: bool| present.then_some(v);
    assert_eq!(row.int("http_requests"), when_http(*requests), "{at}");
    assert_eq!(row.int("http_responses"), when_http(*responses), "{at}");
    assert_eq!(
        row.text("http_version"),
        version.map(|v| v.as_str()),
        "{at}"
    );
    assert_request_line(row, "http_first_request", first_request.as_ref(), at);
    assert_request_line(row, "http_last_request", last_request.as_ref(), at);
    let codes: Vec<(i32, i64)> = status_codes
        .iter()
        .map(|(&code, &n)| (i32::from(code), signed(n)))
        .collect();
    assert_eq!(
        row.counts_by_code("http_status_codes"),
        present.then_some(codes),
        "{at}"
    );
    for (column, value) in [
        (
            "http_last_request_says_close",
            flag(*last_request_says_close),
        ),
        (
            "http_last_response_says_close",
            flag(*last_response_says_close),
        ),
        ("http_last_response_persistent", *last_response_persistent),
        (
            "http_last_unanswered_request_idempotent",
            last_unanswered_request.as_ref().map(|u| u.idempotent),
        ),
        ("http_switched_protocols", flag(*switched_protocols)),
    ] {
        assert_eq!(row.maybe_bool(column), value, "{at} {column}");
    }
    let KeepAliveAdvertised { timeout_s, max } = keep_alive.unwrap_or_default();
    for (column, value) in [
        ("http_keep_alive_timeout_s", timeout_s.map(signed)),
        ("http_keep_alive_max", max.map(signed)),
        ("http_unanswered_requests", unanswered_requests.map(signed)),
    ] {
        assert_eq!(row.int(column), value, "{at} {column}");
    }
    // Which side gave up is not in these columns (`close_http_unread_*` has it): each
    // counts the directions that gave up for its reason.
    for reason in GiveUp::ALL {
        let column = format!("http_gave_up_{}", reason.as_str());
        let value = when_http(gave_up.count(reason).into());
        assert_eq!(row.int(&column), value, "{at} {column}");
    }
    assert_request_line(
        row,
        "http_last_unanswered_request_request",
        last_unanswered_request.as_ref().map(|u| &u.request),
        at,
    );
    for (name, value) in [
        ("first_request", first_request_at),
        ("last_request", last_request_at),
        ("last_response", last_response_at),
    ] {
        let (secs, time) = (format!("http_{name}_at"), format!("http_{name}_time"));
        assert_eq!(row.float(&secs), *value, "{at} {secs}");
        assert_eq!(row.maybe_micros(&time), micros(*value), "{at} {time}");
    }
    assert_eq!(
        row.int32("http_last_status"),
        last_status.map(i32::from),
        "{at}"
    );
}

/// Every `close_http_*` column equals its field of `close.http`, all null without it.
fn assert_close_http_columns_are_report(row: &Row<'_>, r: &ConnectionReport, at: &str) {
    let Some(close) = r.close.http.as_deref() else {
        let schema = row.batch.schema();
        let columns = schema.fields().iter().map(|f| f.name());
        for column in columns.filter(|n| n.starts_with("close_http_")) {
            assert!(row.column(column).is_null(row.index), "{at} {column}");
        }
        return;
    };
    // Every field is named: a field added to the model fails here until it has a column.
    let HttpClose {
        reason,
        closed_by,
        announcement,
        idle_after_response,
        advertised_timeout,
        versus_advertised,
        request,
        written_after_close,
        unread,
    } = close;
    assert_eq!(row.text("close_http_reason"), Some(reason.as_str()), "{at}");
    assert_eq!(
        row.text("close_http_closed_by"),
        Some(closed_by.as_str()),
        "{at}"
    );
    assert_eq!(
        row.text("close_http_announcement"),
        announcement.map(|a| a.as_str()),
        "{at}"
    );
    assert_eq!(
        row.float("close_http_idle_after_response"),
        *idle_after_response,
        "{at}"
    );
    assert_eq!(
        row.int("close_http_advertised_timeout"),
        advertised_timeout.map(signed),
        "{at}"
    );
    assert_eq!(
        row.text("close_http_versus_advertised"),
        versus_advertised.map(|v| v.as_str()),
        "{at}"
    );
    assert_request_line(
        row,
        "close_http_request_request",
        request.as_ref().map(|u| &u.request),
        at,
    );
    assert_eq!(
        row.maybe_bool("close_http_request_idempotent"),
        request.as_ref().map(|u| u.idempotent),
        "{at}"
    );
    assert_eq!(
        row.float("close_http_written_after_close"),
        *written_after_close,
        "{at}"
    );
    for side in [Side::Client, Side::Server] {
        let column = format!("close_http_unread_{}", side.as_str());
        let why = unread.as_ref().and_then(|u| *u.get(side));
        assert_eq!(row.text(&column), why.map(|w| w.as_str()), "{at} {column}");
    }
}

fn assert_batches_are_reports(
    batches: &[RecordBatch],
    reports: &[ConnectionReport],
    capture: &str,
) {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, reports.len(), "{capture}: one row per connection");
    let mut reports = reports.iter();
    for batch in batches {
        for index in 0..batch.num_rows() {
            let report = reports.next().expect("a report per row");
            assert_row_is_report(&Row { batch, index }, report, capture);
        }
    }
}

#[test]
fn parquet_rows_are_the_connections_of_every_shipped_capture() {
    for capture in shipped_captures() {
        let expected = reports(&capture);
        let file = analyze_to_file(&capture, "shipped.parquet");
        let (batches, row_groups, version) = read_parquet(std::fs::read(&file).expect("read"));
        assert_eq!(version, Some(SCHEMA_VERSION.to_string()), "{capture}");
        assert_eq!(row_groups, usize::from(!expected.is_empty()), "{capture}");
        assert_batches_are_reports(&batches, &expected, &capture);
    }
}

#[test]
fn arrow_file_holds_the_same_table_as_parquet() {
    for capture in [
        "captures/12-pool-leak-many.pcap",
        "captures/14-port-reuse.pcap",
        "captures/20-many-idle-timeouts.pcap",
        "captures/27-tomcat-httpclient-post-into-closed.pcap",
    ] {
        let parquet = analyze_to_file(capture, "same.parquet");
        let arrow = analyze_to_file(capture, "same.arrow");
        let (from_parquet, _, _) = read_parquet(std::fs::read(parquet).expect("read"));
        let from_arrow = read_arrow(std::fs::read(arrow).expect("read"));
        assert_eq!(from_arrow.len(), from_parquet.len(), "{capture}");
        for (a, p) in from_arrow.iter().zip(&from_parquet) {
            assert_eq!(a.schema().fields(), p.schema().fields(), "{capture}");
            assert_eq!(a.columns(), p.columns(), "{capture}");
        }
        assert_batches_are_reports(&from_arrow, &reports(capture), capture);
    }
}

/// Renders `reports` in memory the way `analyze` does, with batches of `rows_per_batch`.
fn render_in_batches(
    kind: FileKind,
    reports: &[ConnectionReport],
    rows_per_batch: usize,
) -> Vec<u8> {
    let capture = closewait::capture::CaptureStats::default();
    let filter = closewait::filter::Filter::default();
    let mut summary = SummaryBuilder::default();
    let mut renderer =
        ColumnarRenderer::with_rows_per_batch(kind, "pool.pcap", rows_per_batch).expect("new");
    let mut bytes = Vec::new();
    let mut written_while_streaming = Vec::new();
    for r in reports {
        summary.add(r);
        renderer.connection(&mut bytes, r).expect("row");
        written_while_streaming.push(bytes.len());
    }
    let summary = summary.finish();
    let out = AnalyzeOutput::unfiltered(&capture, &filter, &[], &summary);
    renderer.finish(&mut bytes, &out).expect("finish");
    // Each full batch leaves for the output as soon as it is complete.
    assert!(
        written_while_streaming[rows_per_batch - 1] > 0,
        "{kind:?}: the first batch was written when it was full"
    );
    bytes
}

#[test]
fn every_batch_of_rows_is_written_as_it_fills_as_one_row_group() {
    let reports = reports("captures/12-pool-leak-many.pcap");
    assert_eq!(reports.len(), 50);
    let bytes = render_in_batches(FileKind::Parquet, &reports, 7);
    let (batches, row_groups, _) = read_parquet(bytes);
    assert_eq!(row_groups, 8, "50 rows in groups of 7");
    assert_batches_are_reports(&batches, &reports, "pool.pcap");

    let arrow = read_arrow(render_in_batches(FileKind::ArrowIpc, &reports, 7));
    assert_eq!(arrow.len(), 8);
    assert_batches_are_reports(&arrow, &reports, "pool.pcap");
}

#[test]
fn parquet_to_a_pipe_is_the_same_file() {
    let capture = "captures/02-server-idle-close-client-leak.pcap";
    let file = analyze_to_file(capture, "piped.parquet");
    let piped = closewait()
        .args(["analyze", capture, "--format", "parquet"])
        .output()
        .expect("runs");
    assert!(piped.status.success());
    assert_eq!(piped.stdout, std::fs::read(file).expect("read"));
    assert!(piped.stdout.starts_with(b"PAR1") && piped.stdout.ends_with(b"PAR1"));
}

#[test]
fn columnar_formats_to_a_terminal_are_refused() {
    for format in ["parquet", "arrow"] {
        let cap = "captures/02-server-idle-close-client-leak.pcap";
        let Some(out) = on_a_terminal(&["analyze", cap, "--format", format]) else {
            return;
        };
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{format}: {shown}");
        let message = format!(
            "{format} output is binary and standard output is a terminal: \
             redirect it (> out.{format}) or add -o FILE.{format}"
        );
        assert!(shown.contains(&message), "{format}: {shown}");
    }
}

#[test]
fn docs_parquet_md_describes_every_column() {
    let page = std::fs::read_to_string(root().join("docs/parquet.md")).expect("docs/parquet.md");
    let file = analyze_to_file("captures/01-client-closes-first.pcap", "docs.parquet");
    let (batches, _, _) = read_parquet(std::fs::read(file).expect("read"));
    let schema = batches[0].schema();
    for field in schema.fields() {
        let row = format!("| `{}` |", field.name());
        assert!(page.contains(&row), "docs/parquet.md has no row {row}");
    }
    let (_, columns_section) = page
        .split_once("\n## Columns\n")
        .expect("a Columns section");
    let documented = columns_section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .count();
    assert_eq!(
        documented,
        schema.fields().len(),
        "a row per column, no more"
    );
}

/// Capture 27 (truth file): Tomcat idle-closed two pooled connections after its advertised
/// `Keep-Alive: timeout=2`; HttpClient then wrote a POST into one and a GET into the other,
/// and each drew a RST. The table says which request was lost, and that the POST cannot be
/// retried.
#[test]
fn http_columns_name_the_post_written_into_a_closed_connection() {
    let capture = "captures/27-tomcat-httpclient-post-into-closed.pcap";
    let file = analyze_to_file(capture, "post-into-closed.parquet");
    let (batches, _, _) = read_parquet(std::fs::read(file).expect("read"));
    let mut hits = Vec::new();
    for batch in &batches {
        for index in 0..batch.num_rows() {
            let row = Row { batch, index };
            assert_eq!(row.int("http_keep_alive_timeout_s"), Some(2));
            assert_eq!(
                row.counts_by_code("http_status_codes"),
                Some(vec![(200, 1)])
            );
            if row.text("close_http_reason") == Some("request_hit_closed_connection") {
                assert_eq!(row.text("close_http_versus_advertised"), Some("agrees"));
                assert_eq!(row.int("http_unanswered_requests"), Some(1));
                let written = row.float("close_http_written_after_close").expect("a time");
                assert!(written > 2.0, "{written}: written after Tomcat's FIN");
                hits.push((
                    row.text("close_http_request_request_method")
                        .map(str::to_string),
                    row.maybe_bool("close_http_request_idempotent"),
                ));
            }
        }
    }
    hits.sort();
    assert_eq!(
        hits,
        [
            (Some("GET".to_string()), Some(true)),
            (Some("POST".to_string()), Some(false))
        ]
    );
}

/// Nearly distinct values (times, seconds, ids, frames, byte counts) are written plain, the
/// rest dictionary-encoded: a dictionary of distinct values only costs memory.
#[test]
fn only_columns_with_repeated_values_are_dictionary_encoded() {
    let file = analyze_to_file("captures/12-pool-leak-many.pcap", "encodings.parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
        std::fs::read(file).expect("read"),
    ))
    .expect("parquet");
    let group = builder.metadata().row_group(0);
    let dictionary = |name: &str| {
        let column = group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        column.dictionary_page_offset().is_some()
    };
    for plain in [
        "start",
        "start_time",
        "id",
        "last_frame",
        "bytes_server",
        "http_last_response_at",
        "close_http_idle_after_response",
    ] {
        assert!(!dictionary(plain), "{plain}");
    }
    for repeated in [
        "close_kind",
        "server_ip",
        "tcp_client_fins",
        "http_requests",
    ] {
        assert!(dictionary(repeated), "{repeated}");
    }
}
