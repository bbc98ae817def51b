//! The pipeline glue: inputs → segments → connections → reports. (stub)

use crate::capture::{CaptureError, CaptureStats, InputSpec};
use crate::model::ConnectionReport;
use std::collections::BTreeSet;

/// Knobs of the analysis.
#[derive(Clone, Debug)]
pub struct AnalyzeOptions {
    /// How long TIME_WAIT lasts before the endpoint is CLOSED (Linux: 60 s, fixed
    /// `TCP_TIMEWAIT_LEN`; RFC 9293: 2×MSL = 240 s).
    pub time_wait_secs: f64,
    /// Which connections get per-segment records (for diagrams).
    pub record_segments: RecordSegments,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            time_wait_secs: 60.0,
            record_segments: RecordSegments::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordSegments {
    None,
    All,
    Ids(BTreeSet<u64>),
}

/// Reads all inputs and calls `on_connection` for each connection as it finishes (in
/// finish order; sort by `id` for a stable listing). Returns what was read.
pub fn analyze(
    _inputs: &[InputSpec],
    _opts: &AnalyzeOptions,
    _on_connection: &mut dyn FnMut(ConnectionReport),
) -> Result<CaptureStats, CaptureError> {
    todo!()
}
