//! An independent check of the close classifier on real traffic: Zeek's own `conn_state`
//! (from Zeek's test suite, `tests/data/zeek/expected.jsonl`) constrains which close kind
//! closewait may give the same connection. Zeek and closewait look at different things
//! (Zeek: which flags each side sent; closewait: states and acknowledgements), so the
//! mapping allows every kind consistent with Zeek's definition.

use crate::support::zeek_corpus;

use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::model::{CloseKind, ConnectionReport};
use std::collections::BTreeMap;
use zeek_corpus::{corpus_dir, load_rows, Row};

/// The kinds compatible with a Zeek conn_state, or `None` when Zeek's state says too little
/// (OTH: mid-stream; SH/SHR: half a handshake then FIN, rare and odd).
fn allowed(conn_state: &str) -> Option<&'static [CloseKind]> {
    use CloseKind::*;
    Some(match conn_state {
        // "Connection attempt seen, no reply."
        "S0" => &[SynTimeout],
        // "Connection attempt rejected."
        "REJ" => &[Refused],
        // "Normal establishment and termination."
        "SF" => &[Graceful, Simultaneous, HalfClose],
        // "Connection established, not terminated."
        "S1" => &[Open],
        // "Established, originator attempted close, no reply from responder" and the
        // mirror image.
        "S2" | "S3" => &[UnansweredFin],
        // "Established, originator aborted (sent a RST)" / "Responder sent a RST."
        "RSTO" | "RSTR" => &[Abort, FinThenRst],
        // "Originator sent a SYN followed by a RST, we never saw a SYN-ACK."
        "RSTOS0" => &[Abort, Refused, SynTimeout, HandshakeIncomplete],
        // "Responder sent a SYN ACK followed by a RST, we never saw a SYN."
        "RSTRH" => &[Abort, HandshakeIncomplete, Refused],
        _ => return None,
    })
}

/// Rows where Zeek's conn.log is known not to describe the whole connection.
fn known_difference(trace: &str, row: &Row) -> Option<&'static str> {
    // Zeek's GridFTP script stops analysing a data channel once it recognises it, so Zeek
    // logs S1 for a connection whose close closewait sees (docs/zeek-compat.md).
    if trace == "globus-url-copy.pcap" && row.conn_state == "S1" {
        return Some("Zeek stops analysing GridFTP data channels");
    }
    None
}

#[test]
fn close_kinds_agree_with_zeek_conn_state() {
    let dir = corpus_dir();
    let rows = load_rows(&dir).expect("corpus");
    let mut by_trace: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_trace.entry(r.trace.as_str()).or_default().push(r);
    }
    let (mut checked, mut problems) = (0, Vec::new());
    for (trace, rows) in by_trace {
        let mut reports: Vec<ConnectionReport> = Vec::new();
        analyze(
            &[InputSpec::Path(dir.join("traces").join(trace))],
            &AnalyzeOptions::default(),
            &mut |r| reports.push(r),
        )
        .expect("trace reads");
        for row in &rows {
            let Some(allowed) = allowed(&row.conn_state) else {
                continue;
            };
            let same = |r: &&ConnectionReport| {
                (r.client == row.orig && r.server == row.resp)
                    || (r.client == row.resp && r.server == row.orig)
            };
            let ours: Vec<&ConnectionReport> = reports.iter().filter(same).collect();
            let zeek_rows = rows
                .iter()
                .filter(|o| {
                    (o.orig == row.orig && o.resp == row.resp)
                        || (o.orig == row.resp && o.resp == row.orig)
                })
                .count();
            // Only one-to-one pairings say something clear: where Zeek split a
            // connection (or closewait did), the rows describe different spans.
            if ours.len() != 1 || zeek_rows != 1 {
                continue;
            }
            if let Some(reason) = known_difference(trace, row) {
                eprintln!("skipped {trace} {} → {}: {reason}", row.orig, row.resp);
                continue;
            }
            checked += 1;
            let kind = ours[0].close.kind;
            // Zeek keeps SF when a RST follows both FINs (its endpoints were already
            // closed); closewait says the RST ended it: data reached a socket the peer had
            // already closed.
            let late_rst = row.conn_state == "SF"
                && row.history.to_ascii_lowercase().ends_with('r')
                && kind == CloseKind::FinThenRst;
            if !allowed.contains(&kind) && !late_rst {
                problems.push(format!(
                    "{trace}: {} → {}: Zeek {} ({}), closewait {kind}: {}",
                    row.orig, row.resp, row.conn_state, row.history, ours[0].close.explanation
                ));
            }
        }
    }
    assert!(checked >= 80, "only {checked} rows checked");
    assert!(
        problems.is_empty(),
        "{} of {checked} disagree:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
