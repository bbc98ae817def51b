//! Markdown: a block ready to paste into a bug report. A table of findings, then one
//! section per finding with its numbers, evidence, mechanism, advice and a Mermaid ladder
//! diagram of its most representative connection.

use super::{id_list, mermaid, scope, tally, RenderOptions};
use crate::diagnose::{Diagnosis, Finding};
use crate::model::ConnectionReport;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn render(d: &Diagnosis, reports: &[ConnectionReport], opts: &RenderOptions) -> String {
    let by_id: BTreeMap<u64, &ConnectionReport> = reports.iter().map(|r| (r.id, r)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "## closewait diagnosis\n");
    let _ = writeln!(out, "{}: {}.\n", scope(d), tally(d));
    let _ = writeln!(out, "| # | Severity | Finding | Connections | Verdict |");
    let _ = writeln!(out, "|---|---|---|---:|---|");
    for (i, f) in d.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {} |",
            i + 1,
            f.severity,
            f.id,
            f.count,
            cell(&f.summary)
        );
    }
    for (i, f) in d.findings.iter().enumerate() {
        out.push('\n');
        section(&mut out, i + 1, f, &by_id, opts);
    }
    out
}

fn section(
    out: &mut String,
    n: usize,
    f: &Finding,
    by_id: &BTreeMap<u64, &ConnectionReport>,
    opts: &RenderOptions,
) {
    let _ = writeln!(
        out,
        "### {n}. {} ({}, `{}`)\n",
        f.id.title(),
        f.severity,
        f.id
    );
    let _ = writeln!(out, "**{}**\n", f.summary);
    for fact in &f.facts {
        let _ = writeln!(out, "- {fact}");
    }
    if !f.evidence.is_empty() {
        let _ = writeln!(
            out,
            "- Evidence (connection ids = Wireshark `tcp.stream`): {}",
            id_list(&f.evidence, opts.max_ids, ", ")
        );
    }
    out.push('\n');
    let _ = writeln!(out, "**Why.** {}\n", f.mechanism);
    if !f.advice.is_empty() {
        let _ = writeln!(out, "**Advice.** {}\n", f.advice);
    }
    if let Some(x) = f.example {
        match by_id.get(&x).and_then(|r| mermaid::ladder(r)) {
            Some(diagram) => {
                let _ = writeln!(
                    out,
                    "Connection {x} (`tcp.stream eq {x}`), the most representative:\n"
                );
                let _ = writeln!(out, "```mermaid\n{diagram}```\n");
            }
            None => {
                let _ = writeln!(
                    out,
                    "Most representative connection: `tcp.stream eq {x}`.\n"
                );
            }
        }
    }
    // One trailing blank line between sections is enough.
    while out.ends_with("\n\n") {
        out.pop();
    }
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
