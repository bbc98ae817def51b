//! `analyze --format parquet` and `--format arrow`: the connections as one flat table
//! (docs/parquet.md) in the files SQL engines, Spark and dataframes read directly.
//!
//! Streaming with bounded memory: each connection is appended to column builders as it
//! finishes ([`columns::Batch`]); every [`ROWS_PER_BATCH`] rows the builders become one
//! Arrow record batch, written as one Parquet row group or one Arrow IPC record batch, and
//! the encoded bytes go straight to the output. Memory is bounded by one batch, not by
//! the capture.
//!
//! Neither format needs a seekable output: both writers only append and put their index
//! (Parquet's footer, the IPC file's footer) at the end, so the bytes go to a pipe as
//! well as to a file. The writers write into a buffer this module empties into the
//! output after each batch; they count the offsets in their footer themselves.
//!
//! The file metadata carries `schema_version` (of the table, raised when a column is
//! removed, renamed or changes meaning), the closewait version, and the `--jsonl` summary
//! line (capture, filter, summary) as `closewait_summary`.

pub mod columns;
mod http_columns;

use super::{AnalyzeOutput, Renderer};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use closewait_core::model::ConnectionReport;
use columns::Batch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::io::{self, Write};

/// The version of the table's columns, in every file's metadata as `schema_version`.
pub const SCHEMA_VERSION: u32 = 2;

/// Rows per Parquet row group and per Arrow record batch: large enough for good
/// compression and fast scans, small enough that a batch's builders stay a few tens of MB.
/// 32 Ki since the HTTP columns: 64 Ki rows of the 105 columns cost 33 MB more peak RSS
/// for a file 1 % smaller (docs/performance.md).
pub const ROWS_PER_BATCH: usize = 32 * 1024;

/// Which columnar file to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Apache Parquet, Snappy-compressed, one row group per batch.
    Parquet,
    /// The Arrow IPC file format (Feather v2), uncompressed.
    ArrowIpc,
}

/// The table's schema with its file metadata.
pub fn schema() -> SchemaRef {
    let metadata = HashMap::from([
        ("schema_version".to_string(), SCHEMA_VERSION.to_string()),
        (
            "closewait_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]);
    columns::schema(metadata)
}

/// Turns connections into record batches of at most `rows_per_batch` rows: the part of
/// the columnar output that other front ends (the Python module) share.
pub struct Batches {
    batch: Batch,
    rows_per_batch: usize,
}

impl Batches {
    /// Batches whose `capture` column says `capture` (the input as given).
    pub fn new(capture: &str, rows_per_batch: usize) -> Batches {
        let rows_per_batch = rows_per_batch.max(1);
        Batches {
            batch: Batch::new(schema(), capture, rows_per_batch.min(ROWS_PER_BATCH)),
            rows_per_batch,
        }
    }

    /// Adds a connection; returns a full batch when this one completed it.
    pub fn push(&mut self, report: &ConnectionReport) -> io::Result<Option<RecordBatch>> {
        self.batch.push(report);
        if self.batch.len() < self.rows_per_batch {
            return Ok(None);
        }
        self.batch.finish().map(Some).map_err(io::Error::other)
    }

    /// The rows not yet handed out, if any.
    pub fn rest(&mut self) -> io::Result<Option<RecordBatch>> {
        if self.batch.is_empty() {
            return Ok(None);
        }
        self.batch.finish().map(Some).map_err(io::Error::other)
    }
}

/// The file writer, writing into a buffer emptied into the output after each batch.
enum FileWriter {
    Parquet(Box<ArrowWriter<Vec<u8>>>),
    ArrowIpc(Box<arrow_ipc::writer::FileWriter<Vec<u8>>>),
}

impl FileWriter {
    fn new(kind: FileKind, schema: &SchemaRef, rows_per_batch: usize) -> io::Result<FileWriter> {
        Ok(match kind {
            FileKind::Parquet => {
                let mut props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(rows_per_batch));
                for column in columns::columns().filter(|c| !c.dictionary_helps()) {
                    props = props.set_column_dictionary_enabled(column.name.into(), false);
                }
                let props = props.build();
                let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                    .map_err(io::Error::other)?;
                // Also as the file's own key-value metadata, where readers that ignore the
                // embedded Arrow schema (DuckDB's parquet_kv_metadata, Spark) see it.
                // Sorted, as Arrow's own encoding sorts them: the same run writes the same bytes.
                let mut metadata: Vec<_> = schema.metadata().iter().collect();
                metadata.sort_unstable();
                for (key, value) in metadata {
                    writer.append_key_value_metadata(KeyValue::new(key.clone(), value.clone()));
                }
                FileWriter::Parquet(Box::new(writer))
            }
            FileKind::ArrowIpc => {
                let writer = arrow_ipc::writer::FileWriter::try_new(Vec::new(), schema)
                    .map_err(io::Error::other)?;
                FileWriter::ArrowIpc(Box::new(writer))
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> io::Result<()> {
        match self {
            // A whole row group, then out of the writer's own buffer into ours.
            FileWriter::Parquet(w) => {
                w.write(batch)
                    .and_then(|()| w.flush())
                    .map_err(io::Error::other)?;
                w.sync()
            }
            FileWriter::ArrowIpc(w) => w.write(batch).map_err(io::Error::other),
        }
    }

    fn add_metadata(&mut self, key: &str, value: String) {
        match self {
            FileWriter::Parquet(w) => {
                w.append_key_value_metadata(KeyValue::new(key.to_string(), value))
            }
            FileWriter::ArrowIpc(w) => w.write_metadata(key, value),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        match self {
            FileWriter::Parquet(w) => w.finish().map(drop).map_err(io::Error::other),
            FileWriter::ArrowIpc(w) => w.finish().map_err(io::Error::other),
        }
    }

    /// Moves the bytes encoded so far to `out`. The writers keep their own count of the
    /// bytes written for the offsets in their footer; taking them out of the buffer does
    /// not change it.
    fn drain_into(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let buffer = match self {
            FileWriter::Parquet(w) => w.inner_mut(),
            FileWriter::ArrowIpc(w) => w.get_mut(),
        };
        out.write_all(buffer)?;
        buffer.clear();
        Ok(())
    }
}

/// The [`Renderer`] of both columnar formats.
pub struct ColumnarRenderer {
    batches: Batches,
    writer: FileWriter,
}

impl ColumnarRenderer {
    /// A renderer of `kind` whose `capture` column says `capture`.
    pub fn new(kind: FileKind, capture: &str) -> io::Result<ColumnarRenderer> {
        ColumnarRenderer::with_rows_per_batch(kind, capture, ROWS_PER_BATCH)
    }

    /// As [`ColumnarRenderer::new`], with smaller batches (tests of several row groups).
    pub fn with_rows_per_batch(
        kind: FileKind,
        capture: &str,
        rows_per_batch: usize,
    ) -> io::Result<ColumnarRenderer> {
        let batches = Batches::new(capture, rows_per_batch);
        let writer = FileWriter::new(kind, &schema(), batches.rows_per_batch)?;
        Ok(ColumnarRenderer { batches, writer })
    }
}

impl Renderer for ColumnarRenderer {
    fn connection(&mut self, w: &mut dyn Write, report: &ConnectionReport) -> io::Result<()> {
        if let Some(batch) = self.batches.push(report)? {
            self.writer.write(&batch)?;
            self.writer.drain_into(w)?;
        }
        Ok(())
    }

    fn finish(&mut self, w: &mut dyn Write, out: &AnalyzeOutput<'_>) -> io::Result<()> {
        if let Some(batch) = self.batches.rest()? {
            self.writer.write(&batch)?;
        }
        self.writer
            .add_metadata("closewait_summary", super::json::summary_line(out));
        self.writer.finish()?;
        self.writer.drain_into(w)?;
        w.flush()
    }
}

/// The `capture` column's value for these inputs: each path as given (`-` for standard
/// input), joined with `,` when several were merged.
pub fn capture_label(paths: &[String]) -> String {
    paths.join(",")
}
