//! `closewait graph`: the TCP state machine a capture's sockets walked, as Graphviz DOT or
//! as an SVG/PNG drawn on RFC 9293 Figure 5's layout (no Graphviz needed).

use crate::chart_cmd::{read_each, write_output};
use crate::cli::{FilterArgs, InputArgs};
use crate::render::graph::{render_dot, render_png, render_svg, ObservedGraph, Sides};
use anyhow::{anyhow, bail};
use std::path::{Path, PathBuf};

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

impl GraphFormat {
    /// The format a file name asks for: `.dot`/`.gv`, `.svg`, `.png`.
    pub fn from_path(path: &Path) -> Option<GraphFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "dot" | "gv" => Some(GraphFormat::Dot),
            "svg" => Some(GraphFormat::Svg),
            "png" => Some(GraphFormat::Png),
            _ => None,
        }
    }
}

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
    #[command(flatten)]
    pub input: InputArgs,

    /// Output format; by default taken from the -o file's extension (.dot .gv .svg .png),
    /// else dot.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<GraphFormat>,

    /// Write to this file (atomically) instead of standard output. Required for png.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Which sides' sockets to draw.
    #[arg(long, value_enum, default_value = "both")]
    pub side: SideArg,

    /// The name in the title (default: the capture file names).
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// TIME_WAIT duration in seconds before an endpoint counts as CLOSED (Linux: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub time_wait: f64,
}

/// Runs `closewait graph`. Exit status 0 when drawn.
pub fn run(args: &GraphArgs) -> anyhow::Result<i32> {
    let format = match (args.format, &args.output) {
        (Some(f), _) => f,
        (None, Some(out)) => GraphFormat::from_path(out).unwrap_or(GraphFormat::Dot),
        (None, None) => GraphFormat::Dot,
    };
    if format == GraphFormat::Png && args.output.is_none() {
        bail!("png output needs a file: add -o FILE.png");
    }
    // Transitions are counted as each connection finishes: memory holds the live
    // connections and one small table, however long the capture.
    let mut g = ObservedGraph::default();
    let (_, names) = read_each(
        &args.input,
        &args.filter,
        args.time_wait,
        args.output.as_deref(),
        &mut |r| g.add(&r),
    )?;
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
    Ok(0)
}
