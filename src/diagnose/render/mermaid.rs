//! A minimal Mermaid ladder (sequence) diagram of one connection, for Markdown reports.
//!
//! Stand-in until the full ladder renderers (`render::diagram`) land: one entry point,
//! [`ladder`], taking a [`ConnectionReport`] and returning the diagram source, so it can be
//! swapped for theirs. It draws each recorded segment as an arrow, each state change as a
//! note over the side that changed (the same per-segment states the verdict was read from),
//! and idle gaps as notes across both sides.

use crate::diagnose::stats::secs;
use crate::model::{ConnectionReport, SegmentNote, SegmentRecord, Side};
use crate::state::TcpState;
use std::fmt::Write;

/// Segments drawn at most; longer connections keep their first and last halves.
pub const MAX_SEGMENTS: usize = 40;

/// A pause between segments at least this long gets its own note.
const GAP_SECS: f64 = 0.1;

/// The diagram, or `None` when the report has no segment records.
pub fn ladder(r: &ConnectionReport) -> Option<String> {
    let segs = r.segments.as_ref()?;
    let mut out = String::new();
    let _ = writeln!(out, "sequenceDiagram");
    let _ = writeln!(out, "    participant C as client {}", r.client);
    let _ = writeln!(out, "    participant S as server {}", r.server);
    let (mut cs, mut ss) = (None, None);
    let mut prev_ts: Option<f64> = None;
    let n = segs.len();
    let half = MAX_SEGMENTS / 2;
    for (i, s) in segs.iter().enumerate() {
        if n > MAX_SEGMENTS && i == half {
            let _ = writeln!(
                out,
                "    Note over C,S: … {} segments not drawn …",
                n - MAX_SEGMENTS
            );
        }
        if n > MAX_SEGMENTS && i >= half && i < n - half {
            cs = Some(s.client_state);
            ss = Some(s.server_state);
            prev_ts = Some(s.ts);
            continue;
        }
        if let Some(p) = prev_ts {
            if s.ts - p >= GAP_SECS {
                let _ = writeln!(out, "    Note over C,S: {} idle", secs(s.ts - p));
            }
        }
        prev_ts = Some(s.ts);
        let arrow = match s.from {
            Side::Client => "C->>S",
            Side::Server => "S->>C",
        };
        let _ = writeln!(out, "    {arrow}: {}", label(s));
        // An endpoint that has not yet done anything is not worth a note.
        if cs.is_none() && s.client_state == TcpState::Closed {
            cs = Some(TcpState::Closed);
        }
        if ss.is_none() && s.server_state == TcpState::Closed {
            ss = Some(TcpState::Closed);
        }
        if cs != Some(s.client_state) {
            let _ = writeln!(out, "    Note left of C: {}", s.client_state);
            cs = Some(s.client_state);
        }
        if ss != Some(s.server_state) {
            let _ = writeln!(out, "    Note right of S: {}", s.server_state);
            ss = Some(s.server_state);
        }
    }
    let _ = writeln!(
        out,
        "    Note over C,S: end of capture: client {}, server {}",
        r.client_state, r.server_state
    );
    Some(out)
}

fn label(s: &SegmentRecord) -> String {
    let mut l = format!("#{} {}", s.frame, s.flags);
    if s.len > 0 {
        let _ = write!(l, " len={}", s.len);
    }
    for note in &s.notes {
        let name = match note {
            SegmentNote::Retransmission => "retransmission",
            SegmentNote::OutOfOrder => "out of order",
            SegmentNote::KeepAlive => "keep-alive",
            SegmentNote::KeepAliveAck => "keep-alive ACK",
            SegmentNote::ZeroWindow => "zero window",
            SegmentNote::PreviousSegmentNotCaptured => "previous segment not captured",
            SegmentNote::IgnoredRst => "ignored RST",
            SegmentNote::ResetAfterClose => "RST after close",
            SegmentNote::ReusedPorts => "ports reused",
        };
        let _ = write!(l, " ({name})");
    }
    // Mermaid reads `#…;` as an entity and `;` as a statement end.
    l.replace(';', ",").replace('#', "frame ")
}
