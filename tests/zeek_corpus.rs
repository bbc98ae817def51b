//! Agreement with Zeek on Zeek's own test traces: closewait's `zeek.conn_state` and
//! `zeek.history` compared with the conn.log rows Zeek's test suite records
//! (`tests/data/zeek/expected.jsonl`). The per-row comparison is written to
//! `target/tmp/zeek_corpus.tsv`; `cargo run --example zeek_compat` prints the full report
//! (docs/zeek-compat.md).

#[path = "common/zeek_corpus.rs"]
mod zeek_corpus;

use zeek_corpus::{compare_all, corpus_dir, tsv, Summary};

/// The share of rows whose conn_state must agree. The project's goal is 95 %.
const CONN_STATE_FLOOR: f64 = 0.95;

#[test]
#[ignore = "needs the capture reader (SegmentStream), not merged yet"]
fn zeek_corpus_conn_state_agreement_meets_floor() {
    let cmps = match compare_all(&corpus_dir()) {
        Ok(c) => c,
        Err(e) => panic!("running the Zeek corpus: {e}"),
    };
    let table = tsv(&cmps);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zeek_corpus.tsv");
    if let Err(e) = std::fs::write(&out, &table) {
        eprintln!("could not write {}: {e}", out.display());
    }
    let s = Summary::of(&cmps);
    eprintln!(
        "Zeek corpus: {} rows, conn_state {}/{} ({:.1} %), history {}/{} ({:.1} %); \
         {} rows share a connection (strict: conn_state {}, history {}), {} unpaired; per row: {}",
        s.rows,
        s.state_agree,
        s.rows,
        100.0 * s.state_ratio(),
        s.history_agree,
        s.rows,
        100.0 * s.history_ratio(),
        s.shared,
        s.strict_state_agree,
        s.strict_history_agree,
        s.unpaired,
        out.display()
    );
    for c in cmps.iter().filter(|c| !c.state_agrees) {
        eprintln!(
            "  conn_state differs: {} {} -> {}: zeek {} {}, ours {}",
            c.row.trace,
            c.row.orig,
            c.row.resp,
            c.row.conn_state,
            c.row.history,
            c.ours
                .as_ref()
                .map(|o| format!("{} {}", o.conn_state, o.history))
                .unwrap_or_else(|| "(no connection)".into())
        );
    }
    assert_eq!(s.rows, 148, "expected.jsonl has 148 TCP rows");
    assert!(
        s.state_ratio() >= CONN_STATE_FLOOR,
        "conn_state agreement {:.1} % is below the floor {:.1} %",
        100.0 * s.state_ratio(),
        100.0 * CONN_STATE_FLOOR
    );
}
