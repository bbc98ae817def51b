//! The one flat table of connections: every column, where its value comes from, and the
//! builders that gather a batch of rows.
//!
//! A column is named after the JSON Lines field it equals, its path joined with `_`
//! (`close.first_by` → `close_first_by`, `tcp.server.retransmissions` →
//! `tcp_server_retransmissions`); the few that are not a JSON field as such (the split
//! endpoints, the times in a state, the capture) say what they are derived from in
//! docs/parquet.md. [`columns`] is that page's source of truth: a test checks the page
//! lists every column. The HTTP/1.x columns, appended after the TCP ones, are in
//! `http_columns`.
//!
//! Types are the ones every reader agrees on: signed integers only (Spark reads no
//! unsigned Parquet column), `Float64` epoch seconds exactly as JSON writes them, and a
//! microsecond UTC timestamp beside each point in time for SQL engines' time functions.
//! One column is not flat: the status-code counts, a `map<int32, int64>` (a Parquet MAP,
//! which pyarrow, DuckDB and Spark all read as their map type) rather than a column per
//! code nobody can list in advance.

use super::http_columns;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, MapBuilder, MapFieldNames,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use closewait_core::http::StatusCodes;
use closewait_core::model::{ConnectionReport, DirectionStats, Side, StateChange};
use closewait_core::state::TcpState;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// How a column's value is read from a report, which also fixes its Arrow type.
#[derive(Clone, Copy)]
pub enum Value {
    Int64(fn(&ConnectionReport) -> Option<i64>),
    Int32(fn(&ConnectionReport) -> Option<i32>),
    Float64(fn(&ConnectionReport) -> Option<f64>),
    /// Epoch seconds stored as microseconds since the epoch, UTC (rounded to the nearest).
    Timestamp(fn(&ConnectionReport) -> Option<f64>),
    Bool(fn(&ConnectionReport) -> Option<bool>),
    /// Writes the text into the buffer it is given; `false` for null.
    Text(fn(&ConnectionReport, &mut String) -> bool),
    /// How many times each status code occurred: a map column (see [`counts_by_code_type`]).
    CountsByCode(fn(&ConnectionReport) -> Option<&StatusCodes>),
    /// The capture the renderer was given, the same for every row.
    Capture,
}

/// One column of the table.
#[derive(Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub nullable: bool,
    pub value: Value,
}

pub(super) const fn column(name: &'static str, nullable: bool, value: Value) -> Column {
    Column {
        name,
        nullable,
        value,
    }
}

pub(super) fn count(n: u64) -> Option<i64> {
    Some(signed(n))
}

/// Counts and frame numbers of one capture stay far below 2^63.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn text(buf: &mut String, s: &str) -> bool {
    buf.push_str(s);
    true
}

pub(super) fn maybe_text(buf: &mut String, s: Option<&str>) -> bool {
    s.is_some_and(|s| text(buf, s))
}

fn port(report: &ConnectionReport, side: Side) -> Option<i32> {
    Some(i32::from(report.addr(side).port()))
}

fn ip(report: &ConnectionReport, side: Side, buf: &mut String) -> bool {
    let _ = write!(buf, "{}", report.addr(side).ip());
    true
}

/// Seconds `side` spent in `state`: from entering it to its next state change, summed
/// over every visit. `None` when it never entered it, or is still in it at the end of the
/// capture (the side's end state; for CLOSE_WAIT `close.waiting_for` says how long).
pub fn seconds_in(timeline: &[StateChange], state: TcpState) -> Option<f64> {
    let mut total: Option<f64> = None;
    for pair in timeline.windows(2) {
        if pair[0].state == state {
            *total.get_or_insert(0.0) += pair[1].at - pair[0].at;
        }
    }
    if timeline.last().is_some_and(|last| last.state == state) {
        return None;
    }
    total
}

/// The per-direction counters, one column each per side.
macro_rules! direction_columns {
    ($($side:ident => $name:literal: $field:ident),* $(,)?) => {
        [$(column($name, false, Value::Int64(|r| {
            let stats: &DirectionStats = &r.tcp.$side;
            count(stats.$field)
        }))),*]
    };
}

/// The seconds in a state, per side.
macro_rules! state_seconds_columns {
    ($($side:ident => $name:literal: $state:expr),* $(,)?) => {
        [$(column($name, true, Value::Float64(|r| seconds_in(&r.timeline.$side, $state)))),*]
    };
}

const IDENTITY: [Column; 17] = [
    column("id", false, Value::Int64(|r| count(r.id))),
    column(
        "client_ip",
        false,
        Value::Text(|r, b| ip(r, Side::Client, b)),
    ),
    column(
        "client_port",
        false,
        Value::Int32(|r| port(r, Side::Client)),
    ),
    column(
        "server_ip",
        false,
        Value::Text(|r, b| ip(r, Side::Server, b)),
    ),
    column(
        "server_port",
        false,
        Value::Int32(|r| port(r, Side::Server)),
    ),
    column(
        "role_inferred",
        false,
        Value::Bool(|r| Some(r.role_inferred)),
    ),
    column("start", false, Value::Float64(|r| Some(r.start))),
    column("end", false, Value::Float64(|r| Some(r.end))),
    column("start_time", false, Value::Timestamp(|r| Some(r.start))),
    column("end_time", false, Value::Timestamp(|r| Some(r.end))),
    column("duration", false, Value::Float64(|r| Some(r.duration))),
    column("first_frame", false, Value::Int64(|r| count(r.first_frame))),
    column("last_frame", false, Value::Int64(|r| count(r.last_frame))),
    column(
        "packets_client",
        false,
        Value::Int64(|r| count(r.packets.client)),
    ),
    column(
        "packets_server",
        false,
        Value::Int64(|r| count(r.packets.server)),
    ),
    column(
        "bytes_client",
        false,
        Value::Int64(|r| count(r.bytes.client)),
    ),
    column(
        "bytes_server",
        false,
        Value::Int64(|r| count(r.bytes.server)),
    ),
];

const CLOSE: [Column; 14] = [
    column(
        "close_kind",
        false,
        Value::Text(|r, b| text(b, r.close.kind.as_str())),
    ),
    column(
        "close_initiator",
        false,
        Value::Text(|r, b| text(b, r.close.initiator.as_str())),
    ),
    column(
        "close_first",
        true,
        Value::Text(|r, b| maybe_text(b, r.close.first.map(|s| s.as_str()))),
    ),
    column(
        "close_first_by",
        true,
        Value::Text(|r, b| maybe_text(b, r.close.first_by.map(Side::as_str))),
    ),
    column("close_first_at", true, Value::Float64(|r| r.close.first_at)),
    column(
        "close_first_frame",
        true,
        Value::Int64(|r| r.close.first_frame.and_then(count)),
    ),
    column(
        "close_idle_before_close",
        true,
        Value::Float64(|r| r.close.idle_before_close),
    ),
    column(
        "close_rst_by",
        true,
        Value::Text(|r, b| maybe_text(b, r.close.rst_by.map(Side::as_str))),
    ),
    column(
        "close_who_failed_to_respond",
        true,
        Value::Text(|r, b| maybe_text(b, r.close.who_failed_to_respond.map(Side::as_str))),
    ),
    column(
        "close_waiting_since",
        true,
        Value::Float64(|r| r.close.waiting_since),
    ),
    column(
        "close_waiting_for",
        true,
        Value::Float64(|r| r.close.waiting_for),
    ),
    column(
        "close_explanation",
        false,
        Value::Text(|r, b| {
            let _ = write!(b, "{}", r.close.explained());
            true
        }),
    ),
    column(
        "client_state",
        false,
        Value::Text(|r, b| text(b, r.client_state.as_str())),
    ),
    column(
        "server_state",
        false,
        Value::Text(|r, b| text(b, r.server_state.as_str())),
    ),
];

const STATE_SECONDS: [Column; 8] = state_seconds_columns![
    client => "client_fin_wait_2_secs": TcpState::FinWait2,
    client => "client_close_wait_secs": TcpState::CloseWait,
    client => "client_last_ack_secs": TcpState::LastAck,
    client => "client_time_wait_secs": TcpState::TimeWait,
    server => "server_fin_wait_2_secs": TcpState::FinWait2,
    server => "server_close_wait_secs": TcpState::CloseWait,
    server => "server_last_ack_secs": TcpState::LastAck,
    server => "server_time_wait_secs": TcpState::TimeWait,
];

const TCP: [Column; 18] = direction_columns![
    client => "tcp_client_retransmissions": retransmissions,
    client => "tcp_client_out_of_order": out_of_order,
    client => "tcp_client_keepalives": keepalives,
    client => "tcp_client_keepalive_acks": keepalive_acks,
    client => "tcp_client_zero_windows": zero_windows,
    client => "tcp_client_missing_bytes": missing_bytes,
    client => "tcp_client_ignored_rsts": ignored_rsts,
    client => "tcp_client_fins": fins,
    client => "tcp_client_rsts": rsts,
    server => "tcp_server_retransmissions": retransmissions,
    server => "tcp_server_out_of_order": out_of_order,
    server => "tcp_server_keepalives": keepalives,
    server => "tcp_server_keepalive_acks": keepalive_acks,
    server => "tcp_server_zero_windows": zero_windows,
    server => "tcp_server_missing_bytes": missing_bytes,
    server => "tcp_server_ignored_rsts": ignored_rsts,
    server => "tcp_server_fins": fins,
    server => "tcp_server_rsts": rsts,
];

const ZEEK_AND_CAPTURE: [Column; 3] = [
    column(
        "zeek_conn_state",
        false,
        Value::Text(|r, b| text(b, &r.zeek.conn_state)),
    ),
    column(
        "zeek_history",
        false,
        Value::Text(|r, b| text(b, &r.zeek.history)),
    ),
    column("capture", false, Value::Capture),
];

/// Integer columns whose values are nearly all distinct (identifiers, frame numbers, byte
/// counts), like every point in time and every number of seconds.
const MOSTLY_DISTINCT_INTEGERS: [&str; 6] = [
    "id",
    "first_frame",
    "last_frame",
    "close_first_frame",
    "bytes_client",
    "bytes_server",
];

impl Column {
    /// Whether a Parquet dictionary can pay for this column. Not for values nearly all
    /// distinct: their dictionary would grow to its page limit (1 MiB, with its hash table)
    /// in every row group only for the writer to fall back to plain encoding, memory and
    /// time spent for nothing (on a 306 k-connection capture, 32 MB of peak RSS).
    pub fn dictionary_helps(&self) -> bool {
        let distinct = matches!(self.value, Value::Float64(_) | Value::Timestamp(_))
            || MOSTLY_DISTINCT_INTEGERS.contains(&self.name);
        !distinct
    }
}

/// Every column, in table order.
pub fn columns() -> impl Iterator<Item = &'static Column> {
    IDENTITY
        .iter()
        .chain(&CLOSE)
        .chain(&STATE_SECONDS)
        .chain(&TCP)
        .chain(&ZEEK_AND_CAPTURE)
        .chain(http_columns::GROUPS.iter().copied().flatten())
}

fn data_type(value: &Value) -> DataType {
    match value {
        Value::Int64(_) => DataType::Int64,
        Value::Int32(_) => DataType::Int32,
        Value::Float64(_) => DataType::Float64,
        Value::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Value::Bool(_) => DataType::Boolean,
        Value::Text(_) | Value::Capture => DataType::Utf8,
        Value::CountsByCode(_) => counts_by_code_type(),
    }
}

/// Names of a map column's parts as the Parquet format's spec writes them (a repeated group
/// `key_value` of `key` and `value`), which every reader of MAP columns accepts.
fn counts_by_code_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

fn counts_by_code_builder(rows: usize) -> CountsByCodeBuilder {
    MapBuilder::with_capacity(
        Some(counts_by_code_names()),
        Int32Builder::with_capacity(rows),
        Int64Builder::with_capacity(rows),
        rows,
    )
    .with_values_field(Field::new("value", DataType::Int64, false))
}

/// `map<int32, int64>`: status code → responses, exactly the type the builder makes.
pub fn counts_by_code_type() -> DataType {
    counts_by_code_builder(0).finish().data_type().clone()
}

type CountsByCodeBuilder = MapBuilder<Int32Builder, Int64Builder>;

/// The table's Arrow schema, with `metadata` (the schema version, the writer) attached.
pub fn schema(metadata: HashMap<String, String>) -> SchemaRef {
    let fields: Vec<Field> = columns()
        .map(|c| Field::new(c.name, data_type(&c.value), c.nullable))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// One column's rows gathered so far.
enum Builder {
    Int64(Int64Builder),
    Int32(Int32Builder),
    Float64(Float64Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    /// Boxed: a map builder is several times the size of the others.
    CountsByCode(Box<CountsByCodeBuilder>),
}

impl Builder {
    fn for_value(value: &Value, rows: usize) -> Builder {
        match value {
            Value::Int64(_) => Builder::Int64(Int64Builder::with_capacity(rows)),
            Value::Int32(_) => Builder::Int32(Int32Builder::with_capacity(rows)),
            Value::Float64(_) => Builder::Float64(Float64Builder::with_capacity(rows)),
            Value::Timestamp(_) => Builder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            Value::Bool(_) => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Value::Text(_) | Value::Capture => {
                Builder::Text(StringBuilder::with_capacity(rows, rows * 8))
            }
            Value::CountsByCode(_) => Builder::CountsByCode(Box::new(counts_by_code_builder(rows))),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::CountsByCode(b) => Arc::new(b.finish()),
        }
    }
}

/// Epoch seconds to microseconds, to the nearest.
pub fn micros(secs: f64) -> i64 {
    (secs * 1e6).round() as i64
}

/// Rows of the table gathered column by column until [`Batch::finish`] hands them over as
/// one `RecordBatch` (and starts the next batch empty).
pub struct Batch {
    schema: SchemaRef,
    capture: String,
    builders: Vec<(Value, Builder)>,
    rows: usize,
    /// Reused for every text value.
    scratch: String,
}

impl Batch {
    /// An empty batch of `schema` (from [`schema`]) expecting about `rows` rows, whose
    /// `capture` column says `capture`.
    pub fn new(schema: SchemaRef, capture: &str, rows: usize) -> Batch {
        let builders = columns()
            .map(|c| (c.value, Builder::for_value(&c.value, rows)))
            .collect();
        Batch {
            schema,
            capture: capture.to_string(),
            builders,
            rows: 0,
            scratch: String::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one connection as a row.
    pub fn push(&mut self, report: &ConnectionReport) {
        for (value, builder) in &mut self.builders {
            match (value, builder) {
                (Value::Int64(get), Builder::Int64(b)) => b.append_option(get(report)),
                (Value::Int32(get), Builder::Int32(b)) => b.append_option(get(report)),
                (Value::Float64(get), Builder::Float64(b)) => b.append_option(get(report)),
                (Value::Timestamp(get), Builder::Timestamp(b)) => {
                    b.append_option(get(report).map(micros))
                }
                (Value::Bool(get), Builder::Bool(b)) => b.append_option(get(report)),
                (Value::Text(get), Builder::Text(b)) => {
                    self.scratch.clear();
                    if get(report, &mut self.scratch) {
                        b.append_value(&self.scratch);
                    } else {
                        b.append_null();
                    }
                }
                (Value::Capture, Builder::Text(b)) => b.append_value(&self.capture),
                (Value::CountsByCode(get), Builder::CountsByCode(b)) => {
                    let counts = get(report);
                    for (&code, &n) in counts.into_iter().flatten() {
                        b.keys().append_value(i32::from(code));
                        b.values().append_value(signed(n));
                    }
                    // Keys and values were appended in pairs just above.
                    b.append(counts.is_some()).expect("as many keys as values");
                }
                _ => unreachable!("each builder is made for its column's value"),
            }
        }
        self.rows += 1;
    }

    /// The rows gathered as one record batch; the builders start again empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(|(_, b)| b.finish()).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::model::StateChange;

    fn change(state: TcpState, at: f64) -> StateChange {
        StateChange {
            state,
            at,
            frame: None,
        }
    }

    #[test]
    fn seconds_in_a_state_run_to_the_next_change_and_are_unknown_while_still_in_it() {
        let timeline = [
            change(TcpState::Established, 1.0),
            change(TcpState::CloseWait, 2.0),
            change(TcpState::LastAck, 7.5),
            change(TcpState::Closed, 7.75),
        ];
        assert_eq!(seconds_in(&timeline, TcpState::CloseWait), Some(5.5));
        assert_eq!(seconds_in(&timeline, TcpState::LastAck), Some(0.25));
        assert_eq!(seconds_in(&timeline, TcpState::TimeWait), None);
        assert_eq!(seconds_in(&timeline[..2], TcpState::CloseWait), None);
    }

    #[test]
    fn column_names_are_unique() {
        let mut names: Vec<&str> = columns().map(|c| c.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }
}
