//! The argument groups every command that reads captures flattens ([`CaptureArgs`]: the
//! inputs, the filters and time window, the analysis knobs), and `--fail-on`, so that each
//! option is declared once, validated once and means the same in every command.
use super::CliError;
use clap::Args;
use closewait_core::analyze::AnalyzeOptions;
use closewait_core::capture::{CaptureStats, InputSpec, TimeWindow};
use closewait_core::filter::{parse_host, Filter, HostNet};
use closewait_core::model::CloseKind;
use closewait_core::state::TcpState;
use closewait_render::diagnose::Severity;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where packets come from.
#[derive(Clone, Debug, Args)]
pub struct InputArgs {
    /// Capture files (pcap or pcapng, optionally gzip-compressed); `-` reads standard
    /// input, as does giving none when standard input is not a terminal
    /// (`closewait analyze < x.pcap`). Several files are merged in timestamp order.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
}

impl InputArgs {
    pub fn specs(&self) -> Result<Vec<InputSpec>, CliError> {
        let stdin_count = self
            .captures
            .iter()
            .filter(|p| p.as_os_str() == "-")
            .count();
        if stdin_count > 1 {
            return Err(CliError::Usage(
                "standard input (-) can be read only once".to_string(),
            ));
        }
        Ok(self
            .captures
            .iter()
            .map(|p| {
                if p.as_os_str() == "-" {
                    InputSpec::Stdin
                } else {
                    InputSpec::Path(p.clone())
                }
            })
            .collect())
    }
}

/// Which connections to show. Values of one option are alternatives (repeat the option
/// or give a comma list); different options must all match.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Only connections with an address in this network at either end: an IP address
    /// (10.0.0.1, 2001:db8::1) or a CIDR network (10.0.0.0/8, 2001:db8::/32).
    #[arg(long, value_name = "IP[/LEN]", value_delimiter = ',', value_parser = parse_host)]
    pub host: Vec<HostNet>,
    /// Only connections with this port at either end.
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub port: Vec<u16>,
    /// Only connections that ended this way: graceful, simultaneous, half_close, abort,
    /// fin_then_rst, unanswered_fin, refused, syn_timeout, handshake_incomplete, open.
    #[arg(long, value_name = "K", value_delimiter = ',', value_parser = parse_kind)]
    pub kind: Vec<CloseKind>,
    /// Only connections that left either side in this state (CLOSE_WAIT, close-wait,
    /// FIN_WAIT_2, TIME_WAIT, …; netstat, RFC and ss spellings).
    #[arg(long, value_name = "S", value_delimiter = ',', value_parser = parse_state)]
    pub state: Vec<TcpState>,
    /// Only connections whose reassembled bytes (either direction, any protocol) contain
    /// TEXT: a request target, a header value, a marker you put in a request. Every
    /// connection is then reassembled and searched as its bytes arrive (found across
    /// segment boundaries, not across bytes missing from the capture); TLS stays opaque.
    #[arg(long, value_name = "TEXT", value_parser = parse_find)]
    pub find: Option<String>,
    /// Analyse only the packets from this time on (as `editcap -A`): epoch seconds or
    /// RFC 3339 with an offset. Connections already open then are seen from mid-stream.
    #[arg(long, value_name = "TIME", value_parser = parse_capture_end)]
    pub from: Option<i64>,
    /// Analyse only the packets before this time (as `editcap -B`): epoch seconds or RFC
    /// 3339 with an offset. Connections still open then are measured to it, as at the end
    /// of a capture.
    #[arg(long, value_name = "TIME", value_parser = parse_capture_end)]
    pub until: Option<i64>,
}

impl FilterArgs {
    pub fn filter(&self) -> Filter {
        Filter {
            host: self.host.clone(),
            port: self.port.clone(),
            kind: self.kind.clone(),
            state: self.state.clone(),
            find: self.find.clone(),
        }
    }

    /// `--from`/`--until`; an empty window (`--from` not before `--until`) is a usage error.
    pub fn window(&self) -> Result<TimeWindow, CliError> {
        TimeWindow::new(self.from, self.until).map_err(CliError::Usage)
    }
}

/// Knobs of the analysis itself.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Analysis")]
pub struct AnalysisArgs {
    /// Seconds an endpoint stays in TIME_WAIT before it counts as CLOSED (Linux: 60;
    /// RFC 9293's 2×MSL: 240).
    #[arg(long = "time-wait", value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    pub time_wait: f64,
    /// At most N connections tracked at once; past it (a SYN flood, a port scan) the least
    /// recently active is reported as it stands and dropped, and a warning counts them.
    /// About 1.6 KB of memory per connection.
    #[arg(
        long = "max-connections",
        value_name = "N",
        default_value_t = closewait_core::flow::DEFAULT_MAX_LIVE,
        value_parser = parse_max_connections
    )]
    pub max_connections: usize,
    /// A capture cut short or corrupt in the middle is an error (exit status 2) rather than
    /// a warning; the results up to the damage are still written.
    #[arg(long)]
    pub strict: bool,
    /// When the capture really ended, if you know (tcpdump stopped after the last packet):
    /// epoch seconds or RFC 3339 with an offset (2026-12-05T11:40:00Z). Connections still
    /// open are measured to it. Without it: a pcapng's interface statistics, else the last
    /// packet.
    #[arg(long = "capture-end", value_name = "TIME", value_parser = parse_capture_end)]
    pub capture_end: Option<i64>,
}

impl Default for AnalysisArgs {
    /// The values clap gives when no option is set.
    fn default() -> Self {
        AnalysisArgs {
            time_wait: 60.0,
            max_connections: closewait_core::flow::DEFAULT_MAX_LIVE,
            strict: false,
            capture_end: None,
        }
    }
}

impl AnalysisArgs {
    /// `--strict`: an error naming the damaged inputs (cut short or corrupt in the middle),
    /// if any. Called once the results are written.
    pub fn check_strict(&self, stats: &CaptureStats) -> Result<(), CliError> {
        let damaged = damaged_inputs(stats);
        if self.strict && !damaged.is_empty() {
            return Err(CliError::Damaged(damaged));
        }
        Ok(())
    }
}

/// The inputs cut short or corrupt in the middle, as named in messages.
fn damaged_inputs(stats: &CaptureStats) -> Vec<String> {
    stats
        .files
        .iter()
        .filter(|f| f.truncated)
        .map(|f| match f.path.as_str() {
            "-" => "standard input".to_string(),
            path => path.to_string(),
        })
        .collect()
}

/// What every command that reads captures takes, so that each one reads them the same
/// way: the inputs, the filters and time window, and the analysis knobs.
#[derive(Clone, Debug, Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

impl CaptureArgs {
    /// Every option at its default, reading `files`.
    pub fn for_files(files: &[PathBuf]) -> CaptureArgs {
        CaptureArgs {
            input: InputArgs {
                captures: files.to_vec(),
            },
            filter: FilterArgs::default(),
            analysis: AnalysisArgs::default(),
        }
    }

    /// The analysis options these arguments ask for (the time window checked).
    pub fn options(&self) -> Result<AnalyzeOptions, CliError> {
        let a = &self.analysis;
        Ok(AnalyzeOptions {
            time_wait_secs: a.time_wait,
            max_connections: a.max_connections,
            capture_end_ns: a.capture_end,
            window: self.filter.window()?,
            find: self
                .filter
                .find
                .as_ref()
                .map(|text| text.clone().into_bytes()),
            ..AnalyzeOptions::default()
        })
    }

    /// The per-connection filter (`--host`, `--port`, `--kind`, `--state`, `--find`).
    pub fn filter(&self) -> Filter {
        self.filter.filter()
    }

    /// The inputs, as given, for messages: `a.pcap, b.pcap`.
    pub fn names(&self) -> String {
        let names: Vec<String> = self
            .input
            .captures
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        names.join(", ")
    }

    /// Refuses an output file (`-` is standard output) that is one of the inputs: writing
    /// it would destroy the capture being read.
    pub fn refuse_overwriting(&self, output: Option<&Path>) -> Result<(), CliError> {
        if let Some(out) = output.filter(|o| o.as_os_str() != "-") {
            if let Some(why) = crate::cli::output::input_as_output(out, &self.input.specs()?) {
                return Err(CliError::Usage(why));
            }
        }
        Ok(())
    }

    /// What every command says about its input once it has read it: the warnings, then
    /// with `--strict` an error for a damaged capture. `shown` is true when the output is
    /// a text report on standard output that already ends with the warnings.
    pub fn conclude(&self, stats: &CaptureStats, shown: bool) -> Result<(), CliError> {
        if !shown {
            print_capture_warnings(stats);
        }
        self.analysis.check_strict(stats)
    }
}

/// The capture's warnings (truncation with its byte offset, unsupported link types, every
/// packet unreadable, evicted connections, …) on stderr as `closewait: warning: …`: every
/// command says them, so a damaged capture or one closewait cannot read never passes for a
/// capture without TCP.
pub fn print_capture_warnings(stats: &CaptureStats) {
    let mut err = io::stderr().lock();
    for warning in &stats.warnings {
        let _ = writeln!(err, "closewait: warning: {warning}");
    }
}

/// `--capture-end`: epoch nanoseconds.
fn parse_capture_end(s: &str) -> Result<i64, String> {
    closewait_core::capture::parse_moment(s)
}

fn parse_kind(s: &str) -> Result<CloseKind, String> {
    s.parse()
}

fn parse_state(s: &str) -> Result<TcpState, String> {
    s.parse::<TcpState>().map_err(|e| {
        let all: Vec<&str> = TcpState::ALL.iter().map(|s| s.as_str()).collect();
        format!("{e} (one of: {})", all.join(", "))
    })
}

/// `--find`: at least one byte, at most [`MAX_FIND_BYTES`] (each direction of each
/// connection carries the text's length less one byte over from one segment to the next).
fn parse_find(s: &str) -> Result<String, String> {
    match s.len() {
        0 => Err("the text to find is empty".to_string()),
        n if n > MAX_FIND_BYTES => Err(format!(
            "the text to find is {n} bytes long; at most {MAX_FIND_BYTES}"
        )),
        _ => Ok(s.to_string()),
    }
}

/// The longest `--find` text.
const MAX_FIND_BYTES: usize = 1024;

fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a number of connections (1 or more)")),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds (0 or more)")),
    }
}

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
