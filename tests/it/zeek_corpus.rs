//! Agreement with Zeek on Zeek's own test traces: closewait's `zeek.conn_state` and
//! `zeek.history` compared with the conn.log rows Zeek's test suite records
//! (`tests/data/zeek/expected.jsonl`). The per-row comparison is written to
//! `target/tmp/zeek_corpus.tsv`; `cargo run --example zeek_compat` prints the full report
//! (docs/zeek-compat.md).

use crate::support::zeek_corpus;

use zeek_corpus::{compare_all, corpus_dir, tsv, Comparison, Summary};

/// The project's goal: conn_state agrees with Zeek on at least 95 % of the rows.
const CONN_STATE_GOAL: f64 = 0.95;

/// conn_state rows agreeing with Zeek, of 148, as achieved (docs/zeek-compat.md).
const CONN_STATE_ROWS_AGREEING: usize = 147;

/// history rows agreeing with Zeek one to one (strict), of 148, as achieved.
const HISTORY_ROWS_AGREEING_STRICT: usize = 141;

/// Runs the corpus, writes the per-row comparison and prints the summary.
fn run_corpus() -> (Vec<Comparison>, Summary) {
    let cmps =
        compare_all(&corpus_dir()).unwrap_or_else(|e| panic!("running the Zeek corpus: {e}"));
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zeek_corpus.tsv");
    if let Err(e) = std::fs::write(&out, tsv(&cmps)) {
        eprintln!("could not write {}: {e}", out.display());
    }
    let s = Summary::of(&cmps);
    eprintln!(
        "Zeek corpus: {} rows, conn_state {} ({:.1} %), history {} ({:.1} %); \
         {} rows closewait has no connection for, {} rows share a connection \
         (strict: conn_state {}, history {}); per row: {}",
        s.rows,
        s.state_agree,
        100.0 * s.state_ratio(),
        s.history_agree,
        100.0 * s.history_ratio(),
        s.unpaired,
        s.shared,
        s.strict_state_agree,
        s.strict_history_agree,
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
    (cmps, s)
}

/// On the connections closewait decodes, its Zeek view must agree with Zeek's conn_state
/// on at least 95 % of the rows.
#[test]
fn zeek_corpus_conn_state_agrees_on_decoded_connections() {
    let (_, s) = run_corpus();
    assert!(
        s.decoded_state_ratio() >= CONN_STATE_GOAL,
        "conn_state agreement on the {} rows closewait decodes is {:.1} %, below {:.1} %",
        s.decoded_rows(),
        100.0 * s.decoded_state_ratio(),
        100.0 * CONN_STATE_GOAL
    );
}

/// The goal over every row, tunnels and link layers included: 147 of the 148 rows agree
/// (99.3 %) since closewait's conn.log rows follow Zeek's timers; the other is explained in
/// docs/zeek-compat.md (Zeek's GridFTP script). The floor is the achieved count, so a
/// regression on any single row fails.
#[test]
fn zeek_corpus_conn_state_agreement_meets_goal_on_all_rows() {
    let (_, s) = run_corpus();
    assert!(
        s.state_ratio() >= CONN_STATE_GOAL,
        "conn_state agreement {:.1} % is below the goal {:.1} %",
        100.0 * s.state_ratio(),
        100.0 * CONN_STATE_GOAL
    );
    assert!(
        s.state_agree >= CONN_STATE_ROWS_AGREEING,
        "conn_state agrees on {} rows, fewer than the {} achieved",
        s.state_agree,
        CONN_STATE_ROWS_AGREEING
    );
}

/// Rows are paired one to one (no Zeek row left to share a closewait row), and the
/// histories agree on the rows docs/zeek-compat.md does not list.
#[test]
fn zeek_corpus_rows_pair_one_to_one_and_histories_agree() {
    let (_, s) = run_corpus();
    assert_eq!(s.shared, 0, "Zeek rows sharing a closewait row");
    assert!(
        s.strict_history_agree >= HISTORY_ROWS_AGREEING_STRICT,
        "history agrees on {} rows one to one, fewer than the {} achieved",
        s.strict_history_agree,
        HISTORY_ROWS_AGREEING_STRICT
    );
}
