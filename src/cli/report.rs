//! `closewait report CAPTURE… -o report.html`: arguments and runner.
//!
//! Wiring only. The capture is read once the way `closewait diagnose` reads it (segments
//! kept where a finding may need them, see [`crate::cli::read::SegmentKeeper`]), so the
//! page shows exactly the findings `diagnose` prints. Each finding's example connection is
//! then drawn: a second pass records the segments of those connections only, reading
//! only their packets ([`closewait_core::second_pass`]), as `closewait diagram --worst` does. Standard input is copied to a
//! temporary file first, since it may be read twice.

use crate::cli::output::OutputFormats;
use crate::cli::read::{capture_names, copy_stdin, StdinCopy};
use crate::cli::CaptureArgs;
use anyhow::Context;
use closewait_core::analyze::{analyze_pipelined, AnalyzeOptions, RecordSegments};
use closewait_core::capture::{CaptureStats, InputSpec};
use closewait_core::model::ConnectionReport;
use closewait_core::second_pass::{self, Locators};
use closewait_core::summary::SummaryBuilder;
use closewait_render::diagnose::DiagnosisBuilder;
use closewait_render::render::chart::{ChartData, ChartKind};
use closewait_render::report::{html, ladder_svg, Chart, Ladder, Report};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Output formats (`--format`): one, named so that `--format html` can write the page
/// under any file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Html,
}

/// What `report -o FILE` writes, by FILE's extension.
pub const REPORT_FORMATS: OutputFormats<ReportFormat> = OutputFormats {
    command: "report",
    by_extension: &[("html", ReportFormat::Html), ("htm", ReportFormat::Html)],
    default: ReportFormat::Html,
    option: "--format html",
};

/// Write one self-contained HTML page for a ticket: the findings, the end-state table, the
/// charts and the ladder diagram of each finding's most representative connection.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Write the page to FILE (replaced atomically) instead of standard output; a name
    /// other than .html or .htm is refused unless --format is given.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format (HTML, the only one), whatever the -o file is called.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,

    /// Connection ids listed per finding.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub max_ids: usize,

    /// The inputs, the filters (the page covers only the connections they keep) and the
    /// analysis knobs every capture-reading command takes.
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// Runs the command. Exit status 0 once the page is written.
pub fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    args.capture.refuse_overwriting(args.output.as_deref())?;
    REPORT_FORMATS.choose(args.format, args.output.as_deref())?;
    args.capture.options()?;
    let mut inputs = args.capture.input.specs()?;
    let stdin_copy = copy_stdin(&mut inputs)?;
    let (page, stats) = build(args, &inputs, stdin_copy.as_ref())?;
    crate::cli::output::write_output(args.output.as_deref(), page.as_bytes())?;
    args.capture.conclude(&stats, false)?;
    Ok(0)
}

/// Reads, diagnoses, draws and renders; `stdin_copy` is the temporary copy of standard
/// input among `inputs`, shown as `-`.
fn build(
    args: &ReportArgs,
    inputs: &[InputSpec],
    stdin_copy: Option<&StdinCopy>,
) -> anyhow::Result<(String, CaptureStats)> {
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::ForDiagnosis,
        ..args.capture.options()?
    };
    let filter = args.capture.filter();
    // One pass: the diagnosis, the summary and the charts stream (each connection's
    // segments are read by the diagnosis and dropped with the connection), so memory holds
    // the live connections and bounded state, however long the capture.
    let mut builder = DiagnosisBuilder::new();
    let mut summary = SummaryBuilder::default();
    let mut chart_data = ChartData::new(&ChartKind::ALL);
    // Where every connection is, for the second pass: the examples are known at the end.
    let mut locators = Locators::default();
    let mut stats = analyze_pipelined(
        inputs,
        &opts,
        &mut |r| {
            locators.add(&r);
            if !filter.matches(&r) {
                return;
            }
            builder.add(&r);
            summary.add(&r);
            chart_data.add(&r);
        },
        &mut |_| {},
    )
    .with_context(|| format!("reading {}", capture_names(&args.capture.input.captures)))?;
    if let Some(copy) = stdin_copy {
        copy.restore_name(&mut stats);
    }
    let diagnosis = builder.finish(&stats);
    let summary = summary.finish();

    // A second pass records the segments of the drawn examples only, reading only their
    // packets (see `second_pass`).
    let (examples, undrawn) = drawn_examples(&diagnosis);
    let mut ladders = draw(&examples, &[], diagnosis.capture_end, |missing| {
        let opts = AnalyzeOptions {
            record_segments: RecordSegments::None,
            ..opts.clone()
        };
        second_pass::record(inputs, &opts, stats.analysis_end_ns, missing, &|id| {
            locators.get(id)
        })
        .context("reading the capture again for the example connections")
    })?;
    for id in undrawn {
        ladders.insert(
            id,
            Ladder::Missing(format!(
                "the page draws the first {MAX_LADDERS} examples only; `closewait diagram \
                 CAPTURE --conn {id}` draws this one"
            )),
        );
    }

    let title = args.capture.names();
    let report = Report {
        title,
        capture: &stats,
        diagnosis: &diagnosis,
        summary: &summary,
        ladders,
        charts: charts(
            &mut chart_data,
            &stats,
            &diagnosis,
            &capture_names(&args.capture.input.captures),
        ),
        max_ids: args.max_ids,
    };
    let page = html::render(&report);
    Ok((page, stats))
}

/// Ladders drawn per page: a server-side capture with thousands of clients still makes a
/// page of a few MB.
pub const MAX_LADDERS: usize = 5;

/// The example connections drawn (the first [`MAX_LADDERS`] distinct ones, in the order of
/// the findings, most severe first) and the others.
fn drawn_examples(d: &closewait_render::diagnose::Diagnosis) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let mut drawn = BTreeSet::new();
    let mut undrawn = BTreeSet::new();
    for x in d.findings.iter().filter_map(|f| f.example) {
        if drawn.contains(&x) {
            continue;
        }
        if drawn.len() < MAX_LADDERS {
            drawn.insert(x);
        } else {
            undrawn.insert(x);
        }
    }
    (drawn, undrawn)
}

/// The ladder of each example connection: from `reports` when its segments were kept,
/// else from `rerun`, which analyses the capture again recording only the ids it is given.
fn draw(
    examples: &BTreeSet<u64>,
    reports: &[ConnectionReport],
    capture_end: Option<f64>,
    rerun: impl FnOnce(&BTreeSet<u64>) -> anyhow::Result<Vec<ConnectionReport>>,
) -> anyhow::Result<BTreeMap<u64, Ladder>> {
    let by_id: BTreeMap<u64, &ConnectionReport> = reports.iter().map(|r| (r.id, r)).collect();
    let mut ladders = BTreeMap::new();
    let mut missing = BTreeSet::new();
    for &id in examples {
        match by_id.get(&id) {
            Some(r) if r.segments.is_some() => {
                ladders.insert(id, ladder_svg(r, capture_end));
            }
            _ => {
                missing.insert(id);
            }
        }
    }
    if !missing.is_empty() {
        for r in rerun(&missing)? {
            ladders.insert(r.id, ladder_svg(&r, capture_end));
        }
    }
    Ok(ladders)
}

/// The charts of `closewait chart` (timeline, states, idle), drawn as SVG for the page. A
/// chart that cannot be drawn is shown as a note saying why.
fn charts(
    data: &mut ChartData,
    stats: &CaptureStats,
    diagnosis: &closewait_render::diagnose::Diagnosis,
    title: &str,
) -> Vec<Chart> {
    ChartKind::ALL
        .into_iter()
        .map(|kind| {
            let (heading, caption) = match kind {
                ChartKind::Timeline => (
                    "Connection timeline",
                    "One row per connection, each side's state over time: CLOSE_WAIT leaks \
                     are the long red bars.",
                ),
                ChartKind::States => (
                    "Sockets per state over time",
                    "How many client-side and server-side sockets were in each state: \
                     netstat's count of CLOSE_WAIT, as a curve.",
                ),
                ChartKind::Idle => (
                    "Idle before the close, and time in CLOSE_WAIT",
                    "Idle time before each close, per server: a keep-alive timeout stands \
                     out as one tall bar; and how long sockets sat in CLOSE_WAIT.",
                ),
            };
            let (svg, caption) = match data.render_svg(kind, stats, Some(diagnosis), title) {
                Ok(svg) => (svg, caption.to_string()),
                Err(e) => (String::new(), format!("Not drawn: {e}.")),
            };
            Chart {
                title: heading.to_string(),
                caption,
                svg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::analyze;

    fn pool_leak() -> Vec<PathBuf> {
        vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures/12-pool-leak-many.pcap")]
    }

    #[test]
    fn examples_without_kept_segments_are_recorded_by_a_second_pass() {
        let paths = pool_leak();
        let (mut reports, _) = crate::cli::read::read(&paths, 60.0).expect("reads");
        // As on a capture past the segment budget: nothing kept.
        for r in &mut reports {
            r.segments = None;
        }
        let examples = BTreeSet::from([20, 25, 34]);
        let mut asked = BTreeSet::new();
        let ladders = draw(&examples, &reports, None, |missing| {
            asked = missing.clone();
            let inputs: Vec<InputSpec> = paths.iter().cloned().map(InputSpec::Path).collect();
            let opts = AnalyzeOptions {
                time_wait_secs: 60.0,
                record_segments: RecordSegments::Ids(missing.clone()),
                ..AnalyzeOptions::default()
            };
            let mut found = Vec::new();
            analyze(&inputs, &opts, &mut |r| {
                if missing.contains(&r.id) {
                    found.push(r);
                }
            })?;
            Ok(found)
        })
        .expect("drawn");
        assert_eq!(asked, examples);
        assert_eq!(ladders.len(), 3);
        for (id, l) in &ladders {
            match l {
                Ladder::Svg(svg) => assert!(svg.contains(&format!("id=\"cw-title-{id}\""))),
                Ladder::Missing(why) => panic!("connection {id} not drawn: {why}"),
            }
        }
    }

    #[test]
    fn examples_with_kept_segments_need_no_second_pass() {
        let (reports, _) = crate::cli::read::read(&pool_leak(), 60.0).expect("reads");
        let ladders = draw(&BTreeSet::from([25]), &reports, None, |_| {
            panic!("no second pass expected")
        })
        .expect("drawn");
        assert!(matches!(ladders.get(&25), Some(Ladder::Svg(_))));
    }
}
