//! `closewait graph`: the TCP state machine a capture's sockets walked, as Graphviz DOT or
//! as an SVG/PNG drawn on RFC 9293 Figure 5's layout (no Graphviz needed).

use crate::cli::output::OutputFormats;
use crate::cli::output::{refuse_binary_on_terminal, write_output};
use crate::cli::read::read_each;
use crate::cli::CaptureArgs;
use anyhow::anyhow;
use closewait_render::render::graph::{render_dot, render_png, render_svg, ObservedGraph, Sides};
use std::path::PathBuf;

/// Output formats (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`), both sides in one graph, coloured per side.
    Dot,
    /// SVG on RFC 9293 Figure 5's layout, one panel per side; needs no Graphviz.
    Svg,
    /// That SVG as PNG.
    Png,
}

/// What `graph -o FILE` writes, by FILE's extension.
pub const GRAPH_FORMATS: OutputFormats<GraphFormat> = OutputFormats {
    command: "graph",
    by_extension: &[
        ("dot", GraphFormat::Dot),
        ("gv", GraphFormat::Dot),
        ("svg", GraphFormat::Svg),
        ("png", GraphFormat::Png),
    ],
    default: GraphFormat::Dot,
    option: "--format",
};

/// Sides to draw (`--side`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SideArg {
    Both,
    Client,
    Server,
}

/// Draw the TCP state machine the capture's sockets walked: states as nodes, transitions
/// with how many sockets took them, per side.
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// Output format, whatever the -o file is called; by default taken from its extension
    /// (.dot .gv .svg .png; others are refused), else dot.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<GraphFormat>,

    /// Write to this file (atomically) instead of standard output (png only to a
    /// redirected standard output, never to a terminal).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Which sides' sockets to draw.
    #[arg(long, value_enum, default_value = "both")]
    pub side: SideArg,

    /// The name in the title (default: the capture file names).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    #[command(flatten)]
    pub capture: CaptureArgs,
}

/// Runs `closewait graph`. Exit status 0 when drawn.
pub fn run(args: &GraphArgs) -> anyhow::Result<i32> {
    args.capture.refuse_overwriting(args.output.as_deref())?;
    let format = GRAPH_FORMATS.choose(args.format, args.output.as_deref())?;
    if format == GraphFormat::Png {
        refuse_binary_on_terminal(args.output.as_deref())?;
    }
    // Transitions are counted as each connection finishes: memory holds the live
    // connections and one small table, however long the capture.
    let mut g = ObservedGraph::default();
    let (stats, names) = read_each(&args.capture, args.output.as_deref(), &mut |r| g.add(&r))?;
    let sides = match args.side {
        SideArg::Both => Sides::Both,
        SideArg::Client => Sides::Client,
        SideArg::Server => Sides::Server,
    };
    let title = args.title.clone().unwrap_or(names);
    let bytes = match format {
        GraphFormat::Dot => render_dot(&g, sides, &title).into_bytes(),
        GraphFormat::Svg => render_svg(&g, sides, &title).into_bytes(),
        GraphFormat::Png => render_png(&g, sides, &title).map_err(|e| anyhow!(e))?,
    };
    write_output(args.output.as_deref(), &bytes)?;
    args.capture.conclude(&stats, false)?;
    Ok(0)
}
