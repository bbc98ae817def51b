//! `closewait diagram`: draws the ladder of one connection of a capture.
//!
//! It picks the connection (`--conn ID`, `--worst`, `--kind K`), analyses the capture a
//! second time recording segments for that connection only (records cost memory per
//! segment, so they are never kept for the whole capture; with `--worst`, the second pass
//! reads only that connection's packets, see [`crate::second_pass`]), and writes one format to a file
//! (atomically: a temporary file renamed into place) or to standard output.
//!
//! `--worst` ranks connections by how badly they ended, most telling first:
//! `unanswered_fin` (a CLOSE_WAIT leak or an unacknowledged FIN), `fin_then_rst`, `abort`,
//! `half_close`, `syn_timeout`, `handshake_incomplete`, `refused`, `open`, `simultaneous`,
//! `graceful`; within a kind, the longest `waiting_for`, then the longest duration, then the
//! lowest id. `--kind K` picks the first connection of that kind in the same order.

use crate::cli::output::{refuse_binary_on_terminal, OutputFormats};
use crate::cli::read::StdinCopy;
use crate::cli::{print_capture_warnings, CaptureArgs};
use anyhow::{bail, Context};
use closewait_core::analyze::{analyze, analyze_pipelined, AnalyzeOptions, RecordSegments};
use closewait_core::capture::InputSpec;
use closewait_core::model::{CloseKind, ConnectionReport};
use closewait_core::second_pass::{self, Locator};
use closewait_core::worst::WorstKey;
use closewait_render::render::diagram::{self, Format, LadderOptions, RenderOptions, TimeAxis};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// How time maps to height (`--time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeArg {
    /// Proportional, long idle gaps folded into a marked break.
    Proportional,
    /// Proportional throughout, nothing folded.
    Linear,
}

/// Output formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Svg,
    Png,
    Text,
    Mermaid,
    Plantuml,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Svg => Format::Svg,
            FormatArg::Png => Format::Png,
            FormatArg::Text => Format::Text,
            FormatArg::Mermaid => Format::Mermaid,
            FormatArg::Plantuml => Format::Plantuml,
        }
    }
}

/// What `diagram -o FILE` writes, by FILE's extension.
pub const DIAGRAM_FORMATS: OutputFormats<FormatArg> = OutputFormats {
    command: "diagram",
    by_extension: &[
        ("svg", FormatArg::Svg),
        ("png", FormatArg::Png),
        ("txt", FormatArg::Text),
        ("text", FormatArg::Text),
        ("mmd", FormatArg::Mermaid),
        ("mermaid", FormatArg::Mermaid),
        ("puml", FormatArg::Plantuml),
        ("plantuml", FormatArg::Plantuml),
        ("pu", FormatArg::Plantuml),
    ],
    default: FormatArg::Svg,
    option: "--format",
};

/// Draw the ladder (sequence) diagram of one connection: FIN/ACK arrows between client and
/// server, each side's TCP state beside its lifeline.
#[derive(clap::Args, Clone, Debug)]
pub struct DiagramArgs {
    /// The connection to draw, by id (the `id` of `closewait` reports, Wireshark's
    /// `tcp.stream`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["worst", "kind", "host", "port", "state"])]
    pub conn: Option<u64>,

    /// Draw the connection that ended worst among those the filters keep (the default
    /// when no connection is chosen).
    #[arg(long)]
    pub worst: bool,

    /// Output format, whatever the -o file is called; by default taken from its extension
    /// (.svg .png .txt .mmd .puml; others are refused), else svg.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FormatArg>,

    /// Write to this file (atomically) instead of standard output (png only to a
    /// redirected standard output, never to a terminal).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Time axis: proportional with long idle gaps folded, or linear (nothing folded).
    #[arg(long, value_enum, default_value = "proportional")]
    pub time: TimeArg,

    /// Fold idle gaps at least this long (seconds), on a proportional axis.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub fold_after: f64,

    /// Show every segment: do not fold long stretches of data segments.
    #[arg(long)]
    pub all: bool,

    /// Absolute sequence and acknowledgement numbers instead of relative ones.
    #[arg(long)]
    pub absolute: bool,

    /// Text format: plain ASCII instead of Unicode box drawing.
    #[arg(long)]
    pub ascii: bool,

    /// The inputs, the filters (`--kind K` draws the worst connection of that kind) and
    /// the analysis knobs every capture-reading command takes.
    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// The id of the worst connection (of `kind`, if given); see the module doc for the order.
pub fn pick_worst(reports: &[ConnectionReport], kind: Option<CloseKind>) -> Option<u64> {
    let mut worst = WorstSoFar::new(kind);
    reports.iter().for_each(|r| worst.add(r));
    worst.id()
}

/// The worst connection seen so far ([`WorstKey`]'s order): `--worst` keeps only this one
/// candidate while the capture streams by, then draws it from a second pass that records
/// that connection's segments only.
#[derive(Clone, Debug)]
pub struct WorstSoFar {
    kind: Option<CloseKind>,
    best: Option<WorstKey>,
    /// Connections seen (of any kind).
    pub seen: u64,
}

impl WorstSoFar {
    pub fn new(kind: Option<CloseKind>) -> WorstSoFar {
        WorstSoFar {
            kind,
            best: None,
            seen: 0,
        }
    }

    pub fn add(&mut self, r: &ConnectionReport) {
        self.seen += 1;
        if self.kind.is_some_and(|k| r.close.kind != k) {
            return;
        }
        let key = WorstKey::of(r);
        if self.best.is_none_or(|b| key < b) {
            self.best = Some(key);
        }
    }

    /// The worst connection's id.
    pub fn id(&self) -> Option<u64> {
        self.best.map(|b| b.id)
    }
}

/// Runs `closewait diagram`. Exit status: 0 drawn; 1 no such connection.
pub fn run(args: &DiagramArgs) -> anyhow::Result<i32> {
    args.capture.refuse_overwriting(args.output.as_deref())?;
    let format: Format = DIAGRAM_FORMATS
        .choose(args.format, args.output.as_deref())?
        .into();
    if format.is_binary() {
        refuse_binary_on_terminal(args.output.as_deref())?;
    }
    if !args.fold_after.is_finite() || args.fold_after <= 0.0 {
        bail!("--fold-after must be a positive number of seconds");
    }

    let mut stdin_copy = None;
    let mut inputs = Vec::new();
    let base_opts = args.capture.options()?;
    for p in &args.capture.input.captures {
        if p.as_os_str() == "-" {
            if stdin_copy.is_none() {
                stdin_copy = Some(StdinCopy::new()?);
            }
            if let Some(c) = &stdin_copy {
                inputs.push(InputSpec::Path(c.0.clone()));
            }
        } else {
            inputs.push(InputSpec::Path(p.clone()));
        }
    }
    let names = || args.capture.names();

    let analyze_opts = |record| AnalyzeOptions {
        record_segments: record,
        ..base_opts.clone()
    };
    let filter = args.capture.filter();
    let (report, stats) = match args.conn {
        Some(id) => {
            let mut found = None;
            let mut count = 0u64;
            let stats = analyze(
                &inputs,
                &analyze_opts(RecordSegments::Ids(BTreeSet::from([id]))),
                &mut |r| {
                    count += 1;
                    if r.id == id {
                        found = Some(r);
                    }
                },
            )
            .with_context(|| format!("reading {}", names()))?;
            let Some(report) = found else {
                print_capture_warnings(&stats);
                eprintln!(
                    "closewait: no connection {id} in {} (ids 0 to {})",
                    names(),
                    count.saturating_sub(1)
                );
                return Ok(1);
            };
            (report, stats)
        }
        None => {
            // Only the worst candidate so far is kept while the capture streams by, with
            // where it is in the capture for the second pass.
            let mut worst = WorstSoFar::new(None);
            let mut located = None;
            let stats = analyze_pipelined(
                &inputs,
                &analyze_opts(RecordSegments::None),
                &mut |r| {
                    if filter.matches(&r) {
                        worst.add(&r);
                        if worst.id() == Some(r.id) {
                            located = Some(Locator::of(&r));
                        }
                    } else {
                        worst.seen += 1;
                    }
                },
                &mut |_| {},
            )
            .with_context(|| format!("reading {}", names()))?;
            let total = worst.seen;
            let Some(id) = worst.id() else {
                print_capture_warnings(&stats);
                if filter.is_empty() {
                    eprintln!("closewait: no TCP connection in {}", names());
                } else {
                    eprintln!(
                        "closewait: no connection matching {filter} in {} ({total} connections)",
                        names()
                    );
                }
                args.capture.analysis.check_strict(&stats)?;
                return Ok(1);
            };
            // Only its packets are read again (see `second_pass`).
            let report = second_pass::record(
                &inputs,
                &analyze_opts(RecordSegments::None),
                stats.analysis_end_ns,
                &BTreeSet::from([id]),
                &|_| located,
            )
            .with_context(|| format!("reading {} again", names()))?
            .pop()
            .with_context(|| format!("connection {id} not found again in {}", names()))?;
            (report, stats)
        }
    };
    let id = report.id;

    let opts = RenderOptions {
        ladder: LadderOptions {
            time: match args.time {
                TimeArg::Proportional => TimeAxis::Proportional,
                TimeArg::Linear => TimeAxis::Linear,
            },
            all: args.all,
            absolute: args.absolute,
            fold_after: args.fold_after,
            capture_end: stats.end_ts(),
        },
        ascii: args.ascii,
    };
    let bytes = diagram::render(&report, format, &opts)
        .with_context(|| format!("drawing connection {id}"))?;
    crate::cli::output::write_output(args.output.as_deref(), &bytes)?;
    args.capture.conclude(&stats, false)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use closewait_core::testkit::*;

    #[test]
    fn worst_prefers_the_longest_close_wait() {
        let mut graceful = Wire::new();
        graceful
            .exchange()
            .send(C, FIN | ACK, 1101, 5201, 0)
            .send(S, FIN | ACK, 5201, 1102, 0)
            .send(C, ACK, 1102, 5202, 0);
        let mut leak = Wire::new();
        leak.exchange()
            .wait(15.0)
            .send(S, FIN | ACK, 5201, 1101, 0)
            .send(C, ACK, 1101, 5202, 0);
        let mut a = graceful.only();
        a.id = 0;
        let mut b = leak.analyze_with_tail(100.0).remove(0);
        b.id = 1;
        let mut c = leak.analyze_with_tail(10.0).remove(0);
        c.id = 2;
        let all = vec![a, b, c];
        assert_eq!(pick_worst(&all, None), Some(1));
        assert_eq!(pick_worst(&all, Some(CloseKind::Graceful)), Some(0));
        assert_eq!(pick_worst(&all, Some(CloseKind::Abort)), None);
    }

    fn diagram_args(args: &[&str]) -> DiagramArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct DiagramCli {
            #[command(flatten)]
            args: DiagramArgs,
        }
        DiagramCli::try_parse_from(std::iter::once("diagram").chain(args.iter().copied()))
            .expect("valid command line")
            .args
    }

    #[test]
    fn overwriting_the_input_is_refused() {
        let e = run(&diagram_args(&[
            "Cargo.toml",
            "--conn",
            "0",
            "-f",
            "svg",
            "-o",
            "./Cargo.toml",
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("refusing to write"), "{e}");
    }
}
