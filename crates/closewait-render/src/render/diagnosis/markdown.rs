//! Markdown: a block ready to paste into a bug report. A table of findings, then one
//! section per finding with its numbers, evidence, mechanism, advice and a Mermaid ladder
//! diagram of its most representative connection.

use super::{
    capture_notes, id_list, kinds, scope, shown_filter, tally, RenderOptions, SHOWN_PER_KIND,
};
use crate::diagnose::{Diagnosis, Finding};
use crate::render::diagram::{self, LadderOptions};
use closewait_core::model::ConnectionReport;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn render(d: &Diagnosis, reports: &[ConnectionReport], opts: &RenderOptions) -> String {
    let by_id: BTreeMap<u64, &ConnectionReport> = reports.iter().map(|r| (r.id, r)).collect();
    let mut out = String::new();
    let _ = writeln!(out, "## closewait diagnosis\n");
    let _ = writeln!(out, "{}: {}.\n", scope(d), tally(d));
    for note in opts.capture.as_ref().map(capture_notes).unwrap_or_default() {
        let _ = writeln!(out, "> Capture: {}", cell(&note));
    }
    if opts
        .capture
        .as_ref()
        .is_some_and(|c| !capture_notes(c).is_empty())
    {
        out.push('\n');
    }
    let _ = writeln!(out, "| # | Severity | Finding | Connections | Verdict |");
    let _ = writeln!(out, "|---|---|---|---:|---|");
    let kinds = kinds(&d.findings);
    let folded = kinds.iter().any(|k| k.len() > SHOWN_PER_KIND);
    let groups: Vec<Vec<&Finding>> = if folded {
        kinds
    } else {
        d.findings.iter().map(|f| vec![f]).collect()
    };
    // Folded (a kind repeats per service on a server-side capture): each kind's biggest
    // findings in the table, the rest counted on one row, and a section (with its ladder)
    // only for the first of each kind, so the block stays a bug report's size.
    let mut sections: Vec<(usize, &Finding)> = Vec::new();
    let mut row = 0;
    for kind in &groups {
        let shown = if folded { SHOWN_PER_KIND } else { kind.len() };
        for (i, f) in kind.iter().take(shown).enumerate() {
            row += 1;
            let _ = writeln!(
                out,
                "| {row} | {} | `{}` | {} | {} |",
                f.severity,
                f.id,
                f.count,
                cell(&f.summary)
            );
            if !folded || i == 0 {
                sections.push((row, f));
            }
        }
        let rest = &kind[kind.len().min(shown)..];
        if !rest.is_empty() {
            let connections: u64 = rest.iter().map(|f| f.count).sum();
            let _ = writeln!(
                out,
                "| … | {} | `{}` | {connections} | {} more `{}` findings (`closewait diagnose --json` lists all) |",
                kind[0].severity,
                kind[0].id,
                rest.len(),
                kind[0].id
            );
        }
    }
    for (row, f) in sections {
        out.push('\n');
        section(&mut out, row, f, &by_id, d.capture_end, opts);
    }
    out
}

fn section(
    out: &mut String,
    n: usize,
    f: &Finding,
    by_id: &BTreeMap<u64, &ConnectionReport>,
    capture_end: Option<f64>,
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
            id_list(&f.evidence, f.count, opts.max_ids, ", ")
        );
    }
    if let Some((filter, note)) = shown_filter(f) {
        let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
        let _ = writeln!(out, "- Wireshark display filter: `{filter}`{note}");
    }
    out.push('\n');
    let _ = writeln!(out, "**Why.** {}\n", f.mechanism);
    if !f.advice.is_empty() {
        let _ = writeln!(out, "**Advice.** {}\n", f.advice);
    }
    if let Some(x) = f.example {
        match by_id.get(&x).and_then(|r| ladder(r, capture_end)) {
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

/// The Mermaid ladder of one connection (`closewait diagram --format mermaid`), running to
/// the end of the capture so a side left waiting is seen waiting. `None` without segment
/// records.
fn ladder(r: &ConnectionReport, capture_end: Option<f64>) -> Option<String> {
    r.segments.as_ref()?;
    let opts = diagram::RenderOptions {
        ladder: LadderOptions {
            capture_end,
            ..LadderOptions::default()
        },
        ..diagram::RenderOptions::default()
    };
    let bytes = diagram::render(r, diagram::Format::Mermaid, &opts).ok()?;
    let mut s = String::from_utf8(bytes).ok()?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Some(s)
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
