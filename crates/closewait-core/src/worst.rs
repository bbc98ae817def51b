//! How badly a connection ended, as one sortable key: `closewait diagram --worst` draws the
//! first connection in this order, and the timeline chart of a big capture keeps the rows
//! that come first in it.
//!
//! The order, most telling first: `unanswered_fin` (a CLOSE_WAIT leak or an unacknowledged
//! FIN), `fin_then_rst`, `abort`, `half_close`, `syn_timeout`, `handshake_incomplete`,
//! `refused`, `open`, `simultaneous`, `graceful`; within a kind, the longest `waiting_for`,
//! then the longest duration, then the lowest id.

use crate::model::{CloseKind, ConnectionReport};
use std::cmp::Ordering;

/// Badness rank of a close kind (lower is worse).
fn severity(kind: CloseKind) -> u8 {
    match kind {
        CloseKind::UnansweredFin => 0,
        CloseKind::FinThenRst => 1,
        CloseKind::Abort => 2,
        CloseKind::HalfClose => 3,
        CloseKind::SynTimeout => 4,
        CloseKind::HandshakeIncomplete => 5,
        CloseKind::Refused => 6,
        CloseKind::Open => 7,
        CloseKind::Simultaneous => 8,
        CloseKind::Graceful => 9,
    }
}

/// A connection's place in the order of the module doc: smaller is worse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorstKey {
    severity: u8,
    waiting_for: f64,
    duration: f64,
    pub id: u64,
}

impl WorstKey {
    pub fn of(r: &ConnectionReport) -> WorstKey {
        WorstKey {
            severity: severity(r.close.kind),
            waiting_for: r.close.waiting_for.unwrap_or(-1.0),
            duration: r.duration,
            id: r.id,
        }
    }
}

impl Eq for WorstKey {}

impl Ord for WorstKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.severity
            .cmp(&other.severity)
            .then(other.waiting_for.total_cmp(&self.waiting_for))
            .then(other.duration.total_cmp(&self.duration))
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for WorstKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
