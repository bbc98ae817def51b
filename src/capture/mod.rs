//! Capture reading: pcap/pcapng/gzip/stdin, several files merged in timestamp order.
//! (stub: being written)

use crate::segment::Segment;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Path(PathBuf),
    /// `-`: standard input.
    Stdin,
}

/// What was read, for the JSON `capture` object.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureStats {
    pub files: Vec<FileStats>,
    pub packets: PacketCounts,
    /// Link types seen, by name (`EN10MB`, `LINUX_SLL2`, …) with packet counts.
    pub link_types: BTreeMap<String, u64>,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FileStats {
    pub path: String,
    /// `pcap` or `pcapng`.
    pub format: String,
    pub gzip: bool,
    pub packets: u64,
    pub bytes: u64,
    pub truncated: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PacketCounts {
    pub total: u64,
    pub tcp: u64,
    /// Packets not analysed, by reason (`not_tcp`, `ip_fragment`, `unsupported_link_type`…).
    pub skipped: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a capture file: {what}")]
    NotACapture { path: String, what: String },
}

/// A stream of TCP segments from one or more inputs.
pub struct SegmentStream {}

impl SegmentStream {
    pub fn open(_inputs: &[InputSpec]) -> Result<SegmentStream, CaptureError> {
        todo!()
    }
    pub fn next_segment(&mut self) -> Option<Segment> {
        todo!()
    }
    pub fn stats(&self) -> &CaptureStats {
        todo!()
    }
    pub fn into_stats(self) -> CaptureStats {
        todo!()
    }
}
