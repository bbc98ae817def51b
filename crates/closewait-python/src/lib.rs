//! `closewait._closewait`, the compiled half of the `closewait` Python package: the
//! analysis and the diagnosis for Python, with the Python-facing API (keyword options,
//! `json.loads`, `pyarrow.table`) in `python/closewait/__init__.py`.
//!
//! Nothing here decides anything about TCP or formats: options are the command line's
//! (parsed by the same clap definition, so `time_wait=240` means what `--time-wait 240`
//! means), the table is the one `analyze --format parquet` writes (its record batches,
//! handed to pyarrow through the Arrow C stream interface, no copy), and the records and
//! the diagnosis are the JSON model, so they equal `--jsonl` and `diagnose --json`.

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use clap::Parser as _;
use closewait::cli::analyze::AnalyzeArgs;
use closewait::cli::diagnose::DiagnoseArgs;
use closewait::cli::{Cli, Command};
use closewait_core::model::ConnectionReport;
use closewait_render::render::columnar::{self, Batches, ROWS_PER_BATCH};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::sync::Mutex;

/// The command line `closewait COMMAND PATHS… FLAGS…`, parsed; a usage error becomes
/// `ValueError` with clap's message.
fn parse(command: &str, paths: &[String], flags: &[String]) -> PyResult<Command> {
    if paths.is_empty() {
        return Err(PyValueError::new_err("no capture given"));
    }
    let argv = ["closewait", command]
        .into_iter()
        .map(String::from)
        .chain(paths.iter().cloned())
        .chain(flags.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|cli| cli.command)
        .map_err(|e| PyValueError::new_err(e.render().to_string()))
}

fn analyze_args(paths: &[String], flags: &[String]) -> PyResult<AnalyzeArgs> {
    match parse("analyze", paths, flags)? {
        Command::Analyze(args) => Ok(args),
        _ => unreachable!("parsed as analyze"),
    }
}

/// Runs the analysis of `paths` with the command line's `flags`, calling `each` for every
/// connection that matches the filter, in finish order (the order of `--jsonl`).
fn analyze_each(
    paths: &[String],
    flags: &[String],
    each: &mut dyn FnMut(&ConnectionReport),
) -> PyResult<()> {
    let args = analyze_args(paths, flags)?;
    let usage = |e: closewait::cli::CliError| PyValueError::new_err(e.to_string());
    let inputs = args.capture.input.specs().map_err(usage)?;
    let opts = args.capture.options().map_err(usage)?;
    let filter = args.capture.filter();
    let mut on_connection = |report: ConnectionReport| {
        if filter.matches(&report) {
            each(&report);
        }
    };
    let stats = closewait_core::analyze::analyze(&inputs, &opts, &mut on_connection)
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
    // The capture's warnings on stderr, as every command says them; `strict=True` makes a
    // damaged capture an error.
    args.capture
        .conclude(&stats, false)
        .map_err(|e| PyOSError::new_err(e.to_string()))
}

/// The connections as the table's record batches.
fn record_batches(paths: &[String], flags: &[String]) -> PyResult<Vec<RecordBatch>> {
    let mut batches = Batches::new(&columnar::capture_label(paths), ROWS_PER_BATCH);
    let mut done = Vec::new();
    let mut failed = None;
    analyze_each(paths, flags, &mut |report| match batches.push(report) {
        Ok(Some(batch)) => done.push(batch),
        Ok(None) => {}
        Err(e) => failed = Some(e),
    })?;
    if let Some(e) = failed {
        return Err(PyRuntimeError::new_err(e.to_string()));
    }
    if let Some(rest) = batches
        .rest()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
    {
        done.push(rest);
    }
    Ok(done)
}

/// A stream of record batches that pyarrow takes through the Arrow PyCapsule interface
/// (`pyarrow.table(stream)`), once.
#[pyclass(module = "closewait._closewait")]
struct ArrowStream {
    stream: Mutex<Option<FFI_ArrowArrayStream>>,
}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule interface: a capsule named `arrow_array_stream` holding an
    /// `ArrowArrayStream` the consumer moves out of (and releases).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        // The table has one schema; a consumer asking for another casts on its side.
        let _ = requested_schema;
        let stream = self
            .stream
            .lock()
            .map_err(|_| PyRuntimeError::new_err("stream lock poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the stream was already consumed"))?;
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// The connections of `paths` as a stream of the table's record batches.
#[pyfunction]
fn analyze_stream(py: Python<'_>, paths: Vec<String>, flags: Vec<String>) -> PyResult<ArrowStream> {
    let batches = py.detach(|| record_batches(&paths, &flags))?;
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), columnar::schema());
    Ok(ArrowStream {
        stream: Mutex::new(Some(FFI_ArrowArrayStream::new(Box::new(reader)))),
    })
}

/// The connections of `paths` as a JSON array of `--jsonl`'s connection objects.
#[pyfunction]
fn analyze_json(py: Python<'_>, paths: Vec<String>, flags: Vec<String>) -> PyResult<String> {
    py.detach(|| {
        let mut json = Vec::from(*b"[");
        let mut failed = None;
        analyze_each(&paths, &flags, &mut |report| {
            if json.len() > 1 {
                json.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut json, report) {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(PyRuntimeError::new_err(e.to_string()));
        }
        json.push(b']');
        String::from_utf8(json).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    })
}

/// `closewait diagnose PATHS… --format json FLAGS…`: the diagnosis document.
#[pyfunction]
fn diagnose_json(py: Python<'_>, paths: Vec<String>, flags: Vec<String>) -> PyResult<String> {
    py.detach(|| {
        let mut flags = flags;
        flags.extend(["--format".to_string(), "json".to_string()]);
        let args: DiagnoseArgs = match parse("diagnose", &paths, &flags)? {
            Command::Diagnose(args) => args,
            _ => unreachable!("parsed as diagnose"),
        };
        let mut out = Vec::new();
        closewait::cli::diagnose::run_to(&args, &mut out)
            .map_err(|e| PyOSError::new_err(format!("{e:#}")))?;
        String::from_utf8(out).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    })
}

#[pymodule]
fn _closewait(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ArrowStream>()?;
    m.add_function(wrap_pyfunction!(analyze_stream, m)?)?;
    m.add_function(wrap_pyfunction!(analyze_json, m)?)?;
    m.add_function(wrap_pyfunction!(diagnose_json, m)?)?;
    m.add("SCHEMA_VERSION", columnar::SCHEMA_VERSION)?;
    Ok(())
}
