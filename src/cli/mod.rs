//! Command line: clap parsing and wiring, nothing else.
//!
//! Each subcommand is one file here with an `Args` struct and a `run` function that glues
//! library calls together (`analyze` → `filter` → `summary` → `render`); no TCP knowledge
//! lives here. Options shared by several subcommands (inputs, filters, analysis knobs) are
//! flattened groups in [`args`], so every subcommand reads them the same way; what two
//! commands share otherwise lives in [`read`] (reading captures) and [`output`] (writing
//! files), never in another command.
//!
//! Exit statuses: 0 success (also when stdout is closed early, as by `| head`, and when a
//! capture was cut short or corrupt in the middle: the results up to the damage are
//! written, with a warning); 1 is reserved for findings with `--fail-on`; 2 the command
//! could not do its job: bad usage, an unreadable input (missing, not a capture, broken
//! header), the output could not be written, or, with `--strict`, a damaged capture.
//! Errors go to stderr as `closewait: <file>: <what>`; nothing here panics on user input.

pub mod analyze;
pub mod args;
pub mod chart;
pub mod completions;
pub mod diagnose;
pub mod diagram;
pub mod graph;
pub mod man;
pub mod netstat;
pub mod output;
pub mod progress;
pub mod read;
pub mod report;

pub use args::{print_capture_warnings, AnalysisArgs, CaptureArgs, FailOn, FilterArgs, InputArgs};

use crate::cli::output::OutputError;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use closewait_core::capture::CaptureError;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal, Write};

const EXIT_STATUS_HELP: &str = "Exit status: 0 success (also for a capture cut short or \
corrupt in the middle: results up to the damage, with a warning), 1 findings with --fail-on, \
2 bad usage, an unreadable input, output that could not be written, or (--strict) a damaged \
capture.";

#[derive(Debug, Parser)]
#[command(
    name = "closewait",
    version,
    about = "Reads tcpdump captures and tells how every TCP connection ended: who closed \
             first, who never answered, which state each side was left in.",
    after_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand, each with its own `Args` struct.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every TCP connection with how it ended, then a summary.
    #[command(after_help = analyze::ANALYZE_HELP)]
    Analyze(analyze::AnalyzeArgs),
    /// Draw one connection as a sequence (ladder) diagram: SVG, PNG, text, Mermaid or
    /// PlantUML, with each side's TCP state beside its lifeline.
    Diagram(crate::cli::diagram::DiagramArgs),
    /// From all connections to a few findings: CLOSE_WAIT leaks, inferred idle timeouts,
    /// timeout mismatches, TIME_WAIT on the busy side, late writes, keep-alive, resets —
    /// each with evidence and advice.
    Diagnose(crate::cli::diagnose::DiagnoseArgs),
    /// Chart all connections: a timeline per connection, sockets per state over time
    /// (netstat's CLOSE_WAIT count as a curve), idle-time and CLOSE_WAIT histograms.
    Chart(crate::cli::chart::ChartArgs),
    /// The TCP state machine the sockets walked, with transition counts per side: DOT, or
    /// SVG/PNG on RFC 9293 Figure 5's layout (no Graphviz needed).
    Graph(crate::cli::graph::GraphArgs),
    /// Read saved netstat/ss output: per remote service, which side this host is, the
    /// sockets in each state, what they mean and what to capture.
    Netstat(crate::cli::netstat::NetstatArgs),
    /// Write one self-contained HTML page for a ticket: findings, end states, charts and
    /// the ladder diagram of each finding's representative connection.
    Report(crate::cli::report::ReportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::cli::completions::CompletionsArgs),
    /// Print the manual page in roff (`closewait man | man -l -`), or write one page per
    /// command with --out DIR.
    Man(crate::cli::man::ManArgs),
}

/// Why a command failed, and with which exit status.
#[derive(Debug)]
pub enum CliError {
    /// Bad combination of arguments clap cannot see.
    Usage(String),
    /// An input could not be read (the error names the file).
    Input(CaptureError),
    /// The output could not be written.
    Output { path: String, source: io::Error },
    /// `--strict`: these inputs were cut short or corrupt in the middle (the results up
    /// to the damage were written all the same).
    Damaged(Vec<String>),
}

impl CliError {
    /// 1 is reserved for `--fail-on` findings: no error maps to it.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_)
            | CliError::Input(_)
            | CliError::Output { .. }
            | CliError::Damaged(_) => 2,
        }
    }
}

impl std::error::Error for CliError {}

impl From<OutputError> for CliError {
    fn from(e: OutputError) -> CliError {
        CliError::Output {
            path: e.path,
            source: e.error,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(what) => f.write_str(what),
            CliError::Input(e) => write!(f, "{e}"),
            CliError::Output { path, source } => write!(f, "{path}: {source}"),
            CliError::Damaged(files) => write!(
                f,
                "{}: capture damaged (see the warnings); --strict makes that an error, \
                 the results up to the damage were written",
                files.join(", ")
            ),
        }
    }
}

/// The binary's entry point: parses `std::env::args_os()` and returns the exit status.
pub fn main() -> i32 {
    run(std::env::args_os())
}

/// Parses `args` (program name first) and runs the command; returns the exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = command_for_this_stdin()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 2, --help and --version exit 0 (clap's own statuses).
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match &cli.command {
        Command::Analyze(a) => analyze::run(a),
        Command::Diagram(a) => return exit_status_of(crate::cli::diagram::run(a)),
        Command::Diagnose(a) => return exit_status_of(crate::cli::diagnose::run(a)),
        Command::Chart(a) => return exit_status_of(crate::cli::chart::run(a)),
        Command::Graph(a) => return exit_status_of(crate::cli::graph::run(a)),
        Command::Netstat(a) => return exit_status_of(crate::cli::netstat::run(a)),
        Command::Report(a) => return exit_status_of(crate::cli::report::run(a)),
        Command::Completions(a) => return exit_status_of(completions::run(a)),
        Command::Man(a) => return exit_status_of(man::run(a)),
    };
    match result {
        Ok(analyze::Done::Ok) | Ok(analyze::Done::BrokenPipe) => 0,
        Err(e) => {
            let _ = writeln!(io::stderr(), "closewait: {e}");
            e.exit_code()
        }
    }
}

/// The positional arguments that name a command's input: the captures of every command
/// that reads them ([`InputArgs`]), the listing of `netstat`.
const INPUT_ARGUMENTS: [&str; 2] = ["captures", "input"];

/// The command line as this process parses it. With standard input not a terminal
/// (`closewait analyze < x.pcap`, `tcpdump -w - | closewait diagnose`), a command given no
/// input reads standard input, as if given `-`; on a terminal the input stays required, so
/// a forgotten argument is clap's usage error rather than a command silently waiting for
/// typed bytes. The static definition (`--help` on a terminal, the man page, the
/// completions) keeps the input required.
fn command_for_this_stdin() -> clap::Command {
    let cmd = Cli::command();
    if io::stdin().is_terminal() {
        return cmd;
    }
    // (subcommand, its input argument) for every subcommand that takes one.
    let inputs: Vec<(String, clap::Id)> = cmd
        .get_subcommands()
        .flat_map(|sub| {
            sub.get_positionals()
                .filter(|a| INPUT_ARGUMENTS.contains(&a.get_id().as_str()))
                .map(|a| (sub.get_name().to_string(), a.get_id().clone()))
        })
        .collect();
    inputs.into_iter().fold(cmd, |cmd, (name, id)| {
        cmd.mut_subcommand(name, |sub| {
            sub.mut_arg(id, |a| a.required(false).default_value("-"))
        })
    })
}

/// Exit status of a subcommand that reports errors with `anyhow`: its own status on
/// success, 0 when stdout was closed early (`| head`), else the error on stderr and 2.
fn exit_status_of(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(status) => status,
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                let io = c
                    .downcast_ref::<io::Error>()
                    .or_else(|| c.downcast_ref::<OutputError>().map(|o| &o.error));
                io.is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return 0;
            }
            let _ = writeln!(io::stderr(), "closewait: {e:#}");
            2
        }
    }
}
