//! `all_clear`: nothing wrong, said plainly, with the counts that show it.
//!
//! Emitted only when no other finding is a warning or an error; informational findings
//! (idle timeouts, keep-alive settings, server TIME_WAIT) may accompany it.

use super::leak::leaking_side;
use super::{plural, Details, Finding, FindingId, Severity};
use closewait_core::model::{CloseKind, ConnectionReport};
use serde::Serialize;
use std::collections::BTreeMap;

/// The numbers of an `all_clear` finding.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AllClearDetails {
    /// Connections per close kind (`graceful`, `open`, …).
    pub kinds: BTreeMap<CloseKind, u64>,
    /// Sockets left in CLOSE_WAIT (always 0 here).
    pub close_wait: u64,
}

/// Connections per close kind, and sockets left in CLOSE_WAIT.
#[derive(Default)]
pub(super) struct Acc {
    kinds: BTreeMap<CloseKind, u64>,
    close_wait: u64,
}

impl Acc {
    pub fn add(&mut self, r: &ConnectionReport) {
        *self.kinds.entry(r.close.kind).or_default() += 1;
        if leaking_side(r).is_some() {
            self.close_wait += 1;
        }
    }

    pub fn finish(self, n: u64) -> Finding {
        find(n, self.kinds, self.close_wait)
    }
}

fn find(n: u64, kinds: BTreeMap<CloseKind, u64>, close_wait: u64) -> Finding {
    let breakdown: Vec<String> = kinds.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let summary = if n == 0 {
        "Nothing to diagnose: the capture has no TCP connections.".to_string()
    } else {
        format!(
            "Nothing wrong: {} ({}); no socket left in CLOSE_WAIT, no resets, no refused or \
             unanswered connection attempts.",
            plural(n, "connection", "connections"),
            breakdown.join(", ")
        )
    };
    Finding {
        id: FindingId::AllClear,
        severity: Severity::Info,
        summary,
        count: n,
        evidence: Vec::new(),
        example: None,
        mechanism: "Every connection either closed with a FIN from each side, or was still \
                    open when the capture ended without anything pending."
            .to_string(),
        advice: String::new(),
        details: Details::AllClear(AllClearDetails { kinds, close_wait }),
        facts: vec![format!(
            "connections by close kind: {}",
            breakdown.join(", ")
        )],
        group: String::new(),
    }
}
