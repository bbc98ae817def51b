//! Renderers of a [`Diagnosis`]: one module per format, one entry point each.
//!
//! They read the diagnosis and, for diagrams, the connection reports it points at; they
//! never diagnose anything themselves. Output is deterministic: findings arrive sorted,
//! numbers are formatted with fixed precision.

pub mod json;
pub mod markdown;
pub mod text;

use crate::diagnose::{Diagnosis, Finding};
use closewait_core::capture::CaptureStats;
use closewait_core::model::ConnectionReport;

/// The output formats of `closewait diagnose` (a `--format` value with feature `clap`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// Plain text for a terminal.
    #[default]
    Text,
    /// `{ "findings": [...] }`, see docs/json.md.
    Json,
    /// A block ready to paste into a bug report, with Mermaid ladder diagrams.
    Markdown,
}

/// Knobs shared by the renderers.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Connection ids listed per finding in text and Markdown (JSON lists all).
    pub max_ids: usize,
    /// What was read: JSON gets it as its `capture` block, text and Markdown print its
    /// warnings and skipped packets.
    pub capture: Option<CaptureStats>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            max_ids: 12,
            capture: None,
        }
    }
}

/// Renders in `format`. `reports` supply the segments of the example connections for
/// Markdown diagrams (any order; may be empty).
pub fn render(
    format: Format,
    diagnosis: &Diagnosis,
    reports: &[ConnectionReport],
    opts: &RenderOptions,
) -> String {
    match format {
        Format::Text => text::render(diagnosis, opts),
        Format::Json => json::render(diagnosis, opts.capture.as_ref()),
        Format::Markdown => markdown::render(diagnosis, reports, opts),
    }
}

/// Findings of one kind shown (text: the first in full when room allows, the others by
/// headline; Markdown: in the table, with a section for the first) before the rest are
/// counted on one line. A kind with more is folded; with none, output is unfolded.
pub const SHOWN_PER_KIND: usize = 3;

/// The findings grouped by kind, in the order of their first appearance (most severe
/// first, as the diagnosis sorts them).
pub(crate) fn kinds(findings: &[Finding]) -> Vec<Vec<&Finding>> {
    let mut out: Vec<Vec<&Finding>> = Vec::new();
    for f in findings {
        match out.iter_mut().find(|k| k[0].id == f.id) {
            Some(k) => k.push(f),
            None => out.push(vec![f]),
        }
    }
    out
}

/// `1 2 3 … (45 in all)`, the first `max` ids of a finding about `total` connections (its
/// evidence may list fewer, see `acc::MAX_EVIDENCE`).
pub(crate) fn id_list(ids: &[u64], total: u64, max: usize, sep: &str) -> String {
    let shown: Vec<String> = ids.iter().take(max.max(1)).map(|i| i.to_string()).collect();
    let total = total.max(ids.len() as u64);
    if total > shown.len() as u64 {
        format!("{}{sep}… ({total} in all)", shown.join(sep))
    } else {
        shown.join(sep)
    }
}

/// Elements (ids or ranges of ids) of a finding's Wireshark filter in text and Markdown;
/// JSON's `display_filter` has every connection of the evidence.
pub const FILTER_TERMS: usize = 50;

/// A finding's Wireshark display filter as text and Markdown show it (at most
/// [`FILTER_TERMS`] elements), and, when that or the evidence's own limit leaves
/// connections out, `covers N of the M connections`. `None` without evidence.
pub(crate) fn shown_filter(f: &Finding) -> Option<(String, Option<String>)> {
    let (filter, covered) =
        crate::diagnose::display_filter::stream_filter(&f.evidence, FILTER_TERMS)?;
    let covered = covered as u64;
    let note =
        (covered < f.count).then(|| format!("covers {covered} of the {} connections", f.count));
    Some((filter, note))
}

/// Lines about the input a reader must know before trusting the findings: the capture's
/// warnings (truncation, unsupported link types…) and the packets that were not TCP or
/// could not be read, so that a capture of frames closewait cannot open does not read as
/// "no TCP connections".
pub(crate) fn capture_notes(c: &CaptureStats) -> Vec<String> {
    let mut out: Vec<String> = c.warnings.clone();
    let skipped: u64 = c.packets.skipped.values().sum();
    if skipped > 0 {
        let reasons: Vec<String> = c
            .packets
            .skipped
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        out.push(format!(
            "{skipped} of {} packets read were not analysed ({})",
            c.packets.total,
            reasons.join(", ")
        ));
    }
    out
}

/// `1 error, 2 warnings, 3 info`.
pub(crate) fn tally(d: &Diagnosis) -> String {
    use crate::diagnose::Severity;
    let count = |s: Severity| d.findings.iter().filter(|f| f.severity == s).count();
    let (e, w, i) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    format!(
        "{e} {}, {w} {}, {i} info",
        if e == 1 { "error" } else { "errors" },
        if w == 1 { "warning" } else { "warnings" }
    )
}

/// `50 connections over 2.4 s of capture`.
pub(crate) fn scope(d: &Diagnosis) -> String {
    let span = match (d.capture_start, d.capture_end) {
        (Some(a), Some(b)) => format!(
            " over {} of capture",
            crate::diagnose::stats::secs((b - a).max(0.0))
        ),
        _ => String::new(),
    };
    format!(
        "{}{span}",
        crate::diagnose::plural(d.connections, "TCP connection", "TCP connections")
    )
}
