//! `closewait diagnose CAPTURE…`: arguments and runner.
//!
//! Wiring only: read the captures with [`analyze`], hand the reports to
//! [`diagnose::diagnose`], render, and turn `--fail-on` into an exit status. The findings
//! need per-segment records for a few facts (keep-alive timings, the flags of a RST) and
//! the Markdown diagrams need them for the example connections; to keep memory bounded the
//! runner records segments for every connection but keeps them, once a connection is
//! finished, only where a finding may need them (see [`SegmentKeeper`]).

use crate::analyze::{
    analyze, analyze_pipelined, diagnosis_reads_segments, AnalyzeOptions, RecordSegments,
};
use crate::capture::{CaptureStats, InputSpec};
use crate::cli::CaptureArgs;
use crate::diagnose::render::{render, Format, RenderOptions};
use crate::diagnose::{Diagnosis, DiagnosisBuilder, Severity};
use crate::diagram_cmd::StdinCopy;
use crate::filter::Filter;
use crate::model::{CloseKind, ConnectionReport, Initiator, PerSide, Side};
use crate::output::{AtomicFile, OutputFormats};
use anyhow::Context;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Diagnose a capture: group connections by what went wrong, explain it, advise.
#[derive(clap::Args, Debug, Clone)]
pub struct DiagnoseArgs {
    /// JSON output (same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Output format, whatever the -o file is called; by default taken from its extension
    /// (.txt, .json, .md; others are refused), else text.
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write to this file (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit with status 1 when a finding of this severity or worse exists.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    /// Connection ids listed per finding in text and Markdown (JSON lists all).
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub max_ids: usize,

    /// The inputs, the filters (only the connections they keep are diagnosed) and the
    /// analysis knobs every capture-reading command takes.
    #[command(flatten)]
    pub capture: CaptureArgs,
}

impl DiagnoseArgs {
    /// Arguments for `closewait diagnose FILE` with every option at its default.
    pub fn for_files(files: &[PathBuf]) -> DiagnoseArgs {
        DiagnoseArgs {
            capture: CaptureArgs::for_files(files),
            json: false,
            format: None,
            output: None,
            fail_on: None,
            max_ids: 12,
        }
    }

    /// `--json`/`--format` whatever the -o file is called, else its extension, else text.
    fn output_format(&self) -> anyhow::Result<Format> {
        let explicit = if self.json {
            Some(Format::Json)
        } else {
            self.format
        };
        Ok(DIAGNOSE_FORMATS.choose(explicit, self.output.as_deref())?)
    }
}

/// What `diagnose -o FILE` writes, by FILE's extension.
pub const DIAGNOSE_FORMATS: OutputFormats<Format> = OutputFormats {
    command: "diagnose",
    by_extension: &[
        ("txt", Format::Text),
        ("text", Format::Text),
        ("json", Format::Json),
        ("md", Format::Markdown),
        ("markdown", Format::Markdown),
    ],
    default: Format::Text,
    option: "--format",
};

/// `--fail-on` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warning,
    Error,
}

impl FailOn {
    pub fn severity(self) -> Severity {
        match self {
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

/// Runs the command, writing to standard output or the `-o` file. Returns the exit
/// status: 1 when `--fail-on` matched a finding, else 0. Unreadable input is an error.
pub fn run(args: &DiagnoseArgs) -> anyhow::Result<i32> {
    crate::chart_cmd::refuse_overwriting_inputs(&args.capture, args.output.as_deref())?;
    let format = args.output_format()?;
    let (status, stats) = match args.output.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            crate::chart_cmd::refuse_overwriting_inputs(&args.capture, Some(path))?;
            let mut file = AtomicFile::create(path)?;
            let done = diagnose_into(args, &mut file.writer)?;
            file.commit()?;
            done
        }
        None => diagnose_into(args, &mut std::io::stdout().lock())?,
    };
    let shown = args.output.is_none() && format != Format::Json;
    args.capture.conclude(&stats, shown)?;
    Ok(status)
}

/// [`run`], writing to `out` (as to standard output: text and Markdown end with the
/// capture's warnings, so they are not repeated on stderr).
pub fn run_to(args: &DiagnoseArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let (status, stats) = diagnose_into(args, out)?;
    args.capture
        .conclude(&stats, args.output_format()? != Format::Json)?;
    Ok(status)
}

/// Reads, diagnoses and renders into `out`; returns the exit status and what was read.
fn diagnose_into(args: &DiagnoseArgs, out: &mut dyn Write) -> anyhow::Result<(i32, CaptureStats)> {
    let format = args.output_format()?;
    let mut inputs = args.capture.input.specs()?;
    // Markdown's diagrams need a second pass over the capture: standard input is copied
    // to a temporary file first, as `report` does.
    let mut stdin_copy = None;
    if format == Format::Markdown {
        for input in &mut inputs {
            if *input == InputSpec::Stdin {
                if stdin_copy.is_some() {
                    anyhow::bail!("standard input (-) can be read only once");
                }
                let copy = StdinCopy::new()?;
                *input = InputSpec::Path(copy.0.clone());
                stdin_copy = Some(copy);
            }
        }
    }
    let opts = args.capture.options()?;
    let names = args.capture.names();
    let (diagnosis, mut stats) = read_diagnosis(&inputs, &opts, &args.capture.filter(), &names)?;
    if let Some(copy) = &stdin_copy {
        let tmp = copy.0.display().to_string();
        for f in &mut stats.files {
            if f.path == tmp {
                f.path = "-".to_string();
            }
        }
    }
    let examples = if format == Format::Markdown {
        read_examples(&inputs, &opts, &example_ids(&diagnosis))?
    } else {
        Vec::new()
    };
    let text = render(
        format,
        &diagnosis,
        &examples,
        &RenderOptions {
            max_ids: args.max_ids,
            capture: Some(stats.clone()),
        },
    );
    out.write_all(text.as_bytes())
        .context("writing the diagnosis")?;
    out.flush().context("writing the diagnosis")?;
    Ok((exit_status(&diagnosis, args.fail_on), stats))
}

/// 1 when a finding is at least as severe as `fail_on`, else 0.
pub fn exit_status(d: &Diagnosis, fail_on: Option<FailOn>) -> i32 {
    match (fail_on, d.worst()) {
        (Some(level), Some(worst)) if worst >= level.severity() => 1,
        _ => 0,
    }
}

/// The inputs named on the command line (`-` is standard input).
pub fn inputs(captures: &[PathBuf]) -> Vec<InputSpec> {
    captures
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                InputSpec::Stdin
            } else {
                InputSpec::Path(p.clone())
            }
        })
        .collect()
}

/// Reads the inputs once and diagnoses the connections `filter` keeps as they stream by
/// ([`DiagnosisBuilder`]): each connection's segment records are read while it is added
/// and dropped with it, so memory holds what the live connections need plus bounded state
/// per finding, however long the capture. `opts.record_segments` is set to `ForDiagnosis`
/// (the keep-alive timings and the RST flags come from the segments; only the connections
/// whose records are read get them in their report). `names` names the inputs in the
/// error.
pub fn read_diagnosis(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    filter: &Filter,
    names: &str,
) -> anyhow::Result<(Diagnosis, CaptureStats)> {
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::ForDiagnosis,
        ..opts.clone()
    };
    let mut builder = DiagnosisBuilder::new();
    // The reports are built and diagnosed on this thread while the next packets are
    // analysed on another.
    let stats = analyze_pipelined(
        inputs,
        &opts,
        &mut |r| {
            if filter.matches(&r) {
                builder.add(&r);
            }
        },
        &mut |_| {},
    )
    .with_context(|| format!("reading {names}"))?;
    Ok((builder.finish(&stats), stats))
}

/// The example connection of every finding.
pub fn example_ids(d: &Diagnosis) -> BTreeSet<u64> {
    d.findings.iter().filter_map(|f| f.example).collect()
}

/// Reads the inputs again and returns the connections `ids`, with their segment records
/// (for diagrams of the findings' examples).
pub fn read_examples(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    ids: &BTreeSet<u64>,
) -> anyhow::Result<Vec<ConnectionReport>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::Ids(ids.clone()),
        ..opts.clone()
    };
    let mut found = Vec::new();
    analyze(inputs, &opts, &mut |r| {
        if ids.contains(&r.id) {
            found.push(r);
        }
    })
    .context("reading the capture again for the example connections")?;
    Ok(found)
}

/// Reads captures into reports (sorted by id), keeping segment records only where the
/// diagnosis may use them. Holds every connection: for tests and small captures; the
/// commands use [`read_diagnosis`].
pub fn read(
    captures: &[PathBuf],
    time_wait_secs: f64,
) -> anyhow::Result<(Vec<ConnectionReport>, CaptureStats)> {
    let inputs = inputs(captures);
    let opts = AnalyzeOptions {
        time_wait_secs,
        record_segments: RecordSegments::All,
        ..AnalyzeOptions::default()
    };
    let mut keeper = SegmentKeeper::default();
    let mut reports = Vec::new();
    let names: Vec<String> = captures.iter().map(|p| p.display().to_string()).collect();
    let stats = analyze(&inputs, &opts, &mut |mut r| {
        keeper.trim(&mut r);
        reports.push(r);
    })
    .with_context(|| format!("reading {}", names.join(", ")))?;
    reports.sort_by_key(|r| r.id);
    Ok((reports, stats))
}

/// Decides, per finished connection, whether its segment records are kept.
///
/// Everything is kept up to a budget of [`BUDGET_SEGMENTS`] records (so small captures get
/// the truly median example connection). Past it, only what a finding reads is kept:
/// connections with keep-alive probes (their timings give the settings), aborted ones (the
/// RST's flags tell half-open from abort), and the first few of every kind of ending per
/// service (examples for diagrams). Memory then grows with the odd connections, not with
/// all of them.
#[derive(Default)]
pub struct SegmentKeeper {
    samples: HashMap<(CloseKind, Initiator, Option<Side>, SocketAddr), usize>,
    /// Segment records kept so far.
    kept: usize,
}

/// Segment records kept unconditionally.
pub const BUDGET_SEGMENTS: usize = 200_000;
/// Examples kept per (kind, initiator, silent side, service).
const SAMPLES_PER_GROUP: usize = 5;
/// Longer segment lists are never kept.
const MAX_KEPT_SEGMENTS: usize = 100_000;

impl SegmentKeeper {
    pub fn trim(&mut self, r: &mut ConnectionReport) {
        let Some(segs) = &r.segments else { return };
        if segs.len() > MAX_KEPT_SEGMENTS {
            r.segments = None;
            return;
        }
        let keepalives = PerSide {
            client: r.tcp.client.keepalives,
            server: r.tcp.server.keepalives,
        };
        let needed = diagnosis_reads_segments(r.close.kind, keepalives);
        let key = (
            r.close.kind,
            r.close.initiator,
            r.close.who_failed_to_respond,
            r.server,
        );
        let seen = self.samples.entry(key).or_insert(0);
        *seen += 1;
        let within_budget = self.kept + segs.len() <= BUDGET_SEGMENTS;
        if needed || within_budget || *seen <= SAMPLES_PER_GROUP {
            self.kept += segs.len();
        } else {
            r.segments = None;
        }
    }
}
