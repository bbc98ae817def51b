//! `closewait chart`: one chart over all connections of a capture, as SVG or PNG.
//!
//! It analyses the capture once (no per-segment records: charts read timelines and close
//! verdicts only), keeps the connections the filters select, and writes the chart to a
//! file (atomically: a temporary file renamed into place) or to standard output (PNG only
//! when it is redirected).

use crate::cli::output::{refuse_binary_on_terminal, write_output, OutputFormats};
use crate::cli::read::read_each;
use crate::cli::CaptureArgs;
use closewait_render::diagnose::DiagnosisBuilder;
use closewait_render::render::chart::{render_gathered, ChartData, ChartFormat, ChartKind};
use std::path::PathBuf;

/// Chart types (`--type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartType {
    /// One row per connection, coloured by each side's state over time.
    Timeline,
    /// Client-side and server-side sockets per state over time.
    States,
    /// Idle time before the close per server endpoint (with the inferred keep-alive
    /// timeout) and time spent in CLOSE_WAIT.
    Idle,
}

impl From<ChartType> for ChartKind {
    fn from(t: ChartType) -> ChartKind {
        match t {
            ChartType::Timeline => ChartKind::Timeline,
            ChartType::States => ChartKind::States,
            ChartType::Idle => ChartKind::Idle,
        }
    }
}

/// Output formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartFormatArg {
    Svg,
    Png,
}

/// What `chart -o FILE` writes, by FILE's extension.
pub const CHART_FORMATS: OutputFormats<ChartFormatArg> = OutputFormats {
    command: "chart",
    by_extension: &[("svg", ChartFormatArg::Svg), ("png", ChartFormatArg::Png)],
    default: ChartFormatArg::Svg,
    option: "--format",
};

/// Draw a chart over all connections of a capture: a timeline per connection, sockets per
/// state over time, or idle-time and CLOSE_WAIT histograms.
#[derive(clap::Args, Debug)]
pub struct ChartArgs {
    /// What to draw. The default, states, is the one chart that covers every connection
    /// of a capture of any size (the timeline has a row for at most a few hundred) and
    /// answers the first question: do sockets pile up in CLOSE_WAIT?
    #[arg(
        long = "type",
        short = 't',
        value_enum,
        value_name = "TYPE",
        default_value = "states"
    )]
    pub chart_type: ChartType,

    /// Output format, whatever the -o file is called; by default taken from its extension
    /// (.svg, .png; others are refused), else svg.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ChartFormatArg>,

    /// Write to this file (atomically) instead of standard output (png only to a
    /// redirected standard output, never to a terminal).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The name in the chart's title (default: the capture file names).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// Runs `closewait chart`. Exit status 0 when drawn (also for a capture without TCP).
pub fn run(args: &ChartArgs) -> anyhow::Result<i32> {
    args.capture.refuse_overwriting(args.output.as_deref())?;
    let format = match CHART_FORMATS.choose(args.format, args.output.as_deref())? {
        ChartFormatArg::Svg => ChartFormat::Svg,
        ChartFormatArg::Png => ChartFormat::Png,
    };
    if format == ChartFormat::Png {
        refuse_binary_on_terminal(args.output.as_deref())?;
    }
    // Each connection is added to the chart's bounded state as it finishes, and, for the
    // idle chart's inferred timeouts, to the diagnosis `closewait diagnose` would make.
    let kind: ChartKind = args.chart_type.into();
    let mut data = ChartData::new(&[kind]);
    let mut diagnosis = (kind == ChartKind::Idle).then(DiagnosisBuilder::new);
    let (stats, names) = read_each(&args.capture, args.output.as_deref(), &mut |r| {
        data.add(&r);
        if let Some(d) = &mut diagnosis {
            d.add(&r);
        }
    })?;
    let diagnosis = diagnosis.map(|d| d.finish(&stats));
    let title = args.title.clone().unwrap_or(names);
    let bytes = render_gathered(&mut data, kind, format, &stats, diagnosis.as_ref(), &title)?;
    write_output(args.output.as_deref(), &bytes)?;
    args.capture.conclude(&stats, false)?;
    Ok(0)
}
