//! Prints how closewait's Zeek-compatible `conn_state`/`history` compare with Zeek's own
//! conn.log on Zeek's test traces, as the Markdown page docs/zeek-compat.md:
//!
//! ```text
//! cargo run --example zeek_compat > docs/zeek-compat.md
//! cargo run --example zeek_compat -- --tsv      # one tab-separated line per row
//! ```

#[path = "../tests/it/support/zeek_corpus.rs"]
mod zeek_corpus;

use std::collections::BTreeMap;
use std::fmt::Write;
use zeek_corpus::{compare_all, corpus_dir, tsv, Comparison, Summary};

fn main() {
    let tsv_only = std::env::args().any(|a| a == "--tsv");
    let cmps = match compare_all(&corpus_dir()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zeek_compat: {e}");
            std::process::exit(1);
        }
    };
    if tsv_only {
        print!("{}", tsv(&cmps));
    } else {
        print!("{}", markdown(&cmps));
    }
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

fn markdown(cmps: &[Comparison]) -> String {
    let s = Summary::of(cmps);
    let mut m = String::new();
    let _ = writeln!(m, "# Zeek compatibility\n");
    let _ = writeln!(
        m,
        "Every connection closewait reports carries `zeek.conn_state` and `zeek.history`, \
         computed by `crates/closewait-core/src/zeek.rs`, an observer that follows Zeek's \
         TCP analyzer (its endpoint states, history rules and the timers that end a connection), \
         independently of closewait's RFC 9293 state machine. `closewait analyze --format \
         zeek` writes them as Zeek's own conn.log (`--format zeek-json`: Zeek's JSON log \
         style), one row per Zeek connection. This page measures those rows against Zeek \
         itself: the TCP rows of the conn.log files Zeek's own test suite records for {} \
         traces of that suite (`tests/data/zeek/`).\n",
        cmps.iter()
            .map(|c| c.row.trace.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let _ = writeln!(m, "Reproduce:\n");
    let _ = writeln!(m, "```text");
    let _ = writeln!(m, "cargo run --example zeek_compat > docs/zeek-compat.md");
    let _ = writeln!(
        m,
        "cargo test --test it zeek_corpus:: # asserts the conn_state floor"
    );
    let _ = writeln!(m, "```\n");
    let _ = writeln!(m, "## conn.log\n");
    let _ = writeln!(
        m,
        "`closewait analyze CAPTURE --format zeek` writes Zeek's tab-separated conn.log, \
         header and footer included (`#separator`, `#set_separator`, `#empty_field`, \
         `#unset_field`, `#path conn`, `#open`, `#fields`, `#types`, `#close`), with the \
         standard fields from `ts` to `tunnel_parents`; `--format zeek-json` writes the same \
         rows in Zeek's JSON log style (one object per line, unset fields left out). Rows \
         come in connection order, each connection's rows together: the one its first packet \
         opened, those Zeek's timers split off, and those of its post-close traffic \
         (docs/json.md, `capture.post_close`). uids are `C` and 11 base-62 digits of a hash \
         of the connection's id and the row's index in it: the same capture gives the same \
         uids.\n"
    );
    let _ = writeln!(m, "```text");
    let _ = writeln!(
        m,
        "closewait analyze tests/data/zeek/traces/pop3__pop3.pcap --format zeek \\\n    \
         | zeek-cut id.orig_p conn_state history duration"
    );
    let _ = writeln!(m, "```\n");
    let _ = writeln!(m, "## Agreement\n");
    let _ = writeln!(m, "| column | rows | agree | share |");
    let _ = writeln!(m, "|---|---:|---:|---:|");
    let _ = writeln!(
        m,
        "| conn_state | {} | {} | {} |",
        s.rows,
        s.state_agree,
        pct(s.state_agree, s.rows)
    );
    let _ = writeln!(
        m,
        "| history | {} | {} | {} |",
        s.rows,
        s.history_agree,
        pct(s.history_agree, s.rows)
    );
    let _ = writeln!(
        m,
        "| both | {} | {} | {} |",
        s.rows,
        s.both_agree,
        pct(s.both_agree, s.rows)
    );
    let _ = writeln!(
        m,
        "| conn_state, rows closewait decodes | {} | {} | {} |",
        s.decoded_rows(),
        s.state_agree,
        pct(s.state_agree, s.decoded_rows())
    );
    let _ = writeln!(
        m,
        "| history, rows closewait decodes | {} | {} | {} |",
        s.decoded_rows(),
        s.history_agree,
        pct(s.history_agree, s.decoded_rows())
    );
    let _ = writeln!(
        m,
        "| conn_state, strict | {} | {} | {} |",
        s.rows,
        s.strict_state_agree,
        pct(s.strict_state_agree, s.rows)
    );
    let _ = writeln!(
        m,
        "| history, strict | {} | {} | {} |",
        s.rows,
        s.strict_history_agree,
        pct(s.strict_history_agree, s.rows)
    );
    let _ = writeln!(
        m,
        "\nZeek's rows are paired with closewait's conn.log rows (`--format zeek`) by their \
         two endpoints (either orientation). Where a 4-tuple carries several rows (port \
         reuse, or Zeek's timers splitting one closewait connection: a refused SYN retried \
         with the same sequence number, a 5 s attempt timeout), rows are paired one to one, \
         best agreement first. Where Zeek logged more rows than closewait, each extra row is \
         compared with the best of closewait's; {} rows are such shared rows, and the \
         *strict* lines count them as disagreements. Rows whose 4-tuple closewait never \
         saw: {}.\n",
        s.shared, s.unpaired
    );

    let _ = writeln!(m, "## By Zeek test\n");
    let _ = writeln!(m, "| Zeek test | trace | rows | conn_state | history |");
    let _ = writeln!(m, "|---|---|---:|---:|---:|");
    let mut by_test: BTreeMap<(&str, &str), Vec<&Comparison>> = BTreeMap::new();
    for c in cmps {
        by_test
            .entry((c.row.test.as_str(), c.row.trace.as_str()))
            .or_default()
            .push(c);
    }
    for ((test, trace), cs) in &by_test {
        let n = cs.len();
        let st = cs.iter().filter(|c| c.state_agrees).count();
        let hi = cs.iter().filter(|c| c.history_agrees).count();
        let _ = writeln!(m, "| {test} | {trace} | {n} | {st}/{n} | {hi}/{n} |");
    }

    let _ = writeln!(m, "\n## Disagreements\n");
    let bad: Vec<&Comparison> = cmps
        .iter()
        .filter(|c| !(c.state_agrees && c.history_agrees) || c.shared)
        .collect();
    if bad.is_empty() {
        let _ = writeln!(m, "None.");
    } else {
        let _ = writeln!(
            m,
            "Every row where closewait and Zeek differ, or that shares its closewait \
             connection with another row, in expected.jsonl order (`line`), with the reason.\n"
        );
        let _ = writeln!(
            m,
            "| line | trace | orig → resp | Zeek | closewait | reason |"
        );
        let _ = writeln!(m, "|---:|---|---|---|---|---|");
        for c in bad {
            let ours = c
                .ours
                .as_ref()
                .map(|o| {
                    let shared = if c.shared { " (shared)" } else { "" };
                    format!("{} `{}`{shared}", o.conn_state, o.history)
                })
                .unwrap_or_else(|| "no connection".into());
            let _ = writeln!(
                m,
                "| {} | {} | {} → {} | {} `{}` | {} | {} |",
                c.row.line + 1,
                c.row.trace,
                c.row.orig,
                c.row.resp,
                c.row.conn_state,
                c.row.history,
                ours,
                c.reason.unwrap_or("not yet explained")
            );
        }
    }
    let _ = writeln!(m, "\n## What closewait does not mirror\n");
    for line in LIMITS {
        let _ = writeln!(m, "- {line}");
    }
    m
}

const LIMITS: &[&str] = &[
    "`c` (bad checksum): closewait's segments carry no checksum verdict, so `c` never appears.",
    "`x` (analysis partial): set by Zeek's application-layer analyzers; never appears.",
    "`g` (content gap) is approximated: each direction tracks its contiguous data plus one \
     block above a hole, and assumes Zeek reassembles every stream (Zeek does so only when \
     an analyzer wants the content).",
    "Who the originator is: Zeek flips roles for mid-stream traffic from a port in its \
     `likely_server_ports`, a set that depends on the scripts a test loads; closewait flips \
     on a SYN-ACK first, or on mid-stream traffic from a port below 1024 to one above.",
    "Timers: like Zeek, closewait ends a conn.log row when `tcp_attempt_delay` (5 s with \
     no answer to a SYN), `tcp_reset_delay` (5 s after a RST), `tcp_close_delay` (5 s after \
     both FINs), `tcp_partial_close_delay` (3 s after a FIN to a silent peer) or \
     `tcp_inactivity_timeout` (5 min) has passed, or when a SYN arrives after either side \
     closed; the next packet starts a new row. The JSON report's `zeek` shows the first row \
     of each connection, `--format zeek` all of them. Zeek's `duration` stops at the last \
     packet that changed its endpoint state; closewait's runs to the row's last packet.",
    "conn.log columns closewait cannot know are written unset (`-`): `service` (no \
     application-layer analysis), `local_orig`/`local_resp` (no `Site::local_nets`), \
     `orig_ip_bytes`/`resp_ip_bytes` (IP lengths are not kept), `tunnel_parents`. uids are \
     deterministic (a hash of the connection id and row index), not Zeek's random ones; \
     `#open`/`#close` carry the capture's first and last packet times, not the wall clock.",
    "Sequence numbers are tracked modulo 2^32, Zeek counts wraps: only connections moving \
     4 GiB or more in one direction can differ.",
    "Tunnels: closewait opens those of Zeek's default configuration, on the same UDP ports \
     (docs/capture-formats.md), and Teredo between other ports by content (an IPv6 packet \
     from or to 2001:0::/32, as Zeek's `dpd_teredo` signature; closewait also asks that it \
     fill the datagram and carry TCP), and reports the inner connections as Zeek does. Zeek \
     reassembles fragmented outer datagrams; closewait reads the inner TCP header from the \
     first fragment, so it also sees segments whose later fragments were lost.",
];
