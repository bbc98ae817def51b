//! `closewait netstat FILE`: arguments and runner.
//!
//! Wiring only: read the saved output (a file or standard input), [`netstat::parse`],
//! [`netstat::analyze`], render as text or JSON, and turn `--fail-on` into an exit status.

use crate::cli::FailOn;
use anyhow::{bail, Context};
use closewait_core::state::TcpState;
use closewait_render::netstat::{self, render, NetstatReport};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Read saved `netstat -tan`/`-tanp`/`-np` or `ss -tan`/`-tanp`/`-tanoi` output and say,
/// per remote service, which side this host is, how many sockets sit in each state, what
/// that means and what to capture.
#[derive(clap::Args, Debug, Clone)]
pub struct NetstatArgs {
    /// The saved output (`netstat -tanp > FILE`, `ss -tanp > FILE`); `-` reads standard
    /// input (`ss -tanp | closewait netstat -`), as does giving none when standard input is
    /// not a terminal (`ss -tanp | closewait netstat`).
    #[arg(value_name = "FILE")]
    pub input: PathBuf,

    /// Write JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// The state the listing was filtered on, for `ss … state X` output, which prints no
    /// State column (`ss -tan state close-wait > FILE; closewait netstat --state close-wait
    /// FILE`). netstat, RFC and ss spellings: `close-wait`, `CLOSE_WAIT`, `CLOSE-WAIT`.
    /// Lines with a State column keep their own.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<TcpState>,

    /// Exit with status 1 when a finding of this severity or worse exists (CLOSE_WAIT is
    /// an error; FIN_WAIT_2, SYN_SENT, SYN_RECV… warnings).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
}

/// Runs the command on standard output. Exit status: 0, or 1 when `--fail-on` matched.
pub fn run(args: &NetstatArgs) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(args, &mut out)
}

/// [`run`], writing to `out`.
pub fn run_to(args: &NetstatArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let text = read(&args.input)?;
    let report =
        analyze_text(&text, args.state).with_context(|| format!("{}", args.input.display()))?;
    let rendered = if args.json {
        render::json(&report)
    } else {
        render::text(&report)
    };
    out.write_all(rendered.as_bytes())
        .context("writing the output")?;
    out.flush().context("writing the output")?;
    Ok(match (args.fail_on, report.worst()) {
        (Some(level), Some(worst)) if worst >= level.severity() => 1,
        _ => 0,
    })
}

/// Parses and analyses saved output, `state` given to the lines of `ss … state X` output
/// (which print no State column). Refused: an input with no socket line and no column
/// header of either tool (a capture file passed by mistake, say); a stateless `ss` listing
/// without `state` (its sockets would be counted in no state, or not at all). A header
/// alone is a host with no TCP socket, which is fine.
pub fn analyze_text(text: &str, state: Option<TcpState>) -> anyhow::Result<NetstatReport> {
    let mut parsed = netstat::parse_in_state(text, state);
    let stateless_header = text.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("Recv-Q") || l.starts_with("Netid Recv-Q")) && l.contains("Peer Address")
    });
    if state.is_none() && (parsed.stateless > 0 || stateless_header) {
        bail!(
            "`ss … state X` output: it has no State column ({} socket lines without a \
             state); pass --state with the state it was filtered on, e.g. `closewait netstat \
             --state close-wait FILE` for `ss -tan state close-wait`",
            parsed.stateless
        );
    }
    if parsed.sockets.is_empty()
        && parsed.skipped.is_empty()
        && !(text.contains("Recv-Q") || text.contains("Local Address"))
    {
        bail!("not netstat or ss output: no TCP socket line and no netstat/ss column header in it");
    }
    if parsed.tool.is_none() && stateless_header {
        // `ss -tan state close-wait` with no socket in that state: ss's header alone.
        parsed.tool = Some(netstat::Tool::Ss);
    }
    Ok(netstat::analyze(&parsed))
}

/// A `--state` value in netstat, RFC or ss spelling.
fn parse_state(s: &str) -> Result<TcpState, String> {
    s.parse::<TcpState>().map_err(|e| {
        let all: Vec<&str> = TcpState::ALL.iter().map(|s| s.as_str()).collect();
        format!("{e} (one of: {})", all.join(", "))
    })
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    let shown = path.display();
    let mut input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("reading {shown}"))?)
    };
    let mut bytes = Vec::new();
    // The start first: a capture passed by mistake is refused before the rest is read (a
    // multi-gigabyte pcap would otherwise be read whole, then searched for socket lines).
    (&mut input)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {shown}"))?;
    if let Some(what) = not_text(&bytes) {
        bail!("{shown}: not netstat or ss output: {what}");
    }
    input
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {shown}"))?;
    // Saved output is ASCII; a stray byte (a process name, a paste) must not stop it.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// How much of the input is looked at before reading the rest.
const SNIFF_LEN: usize = 64 * 1024;

/// Why the start of an input cannot be saved netstat/ss output, if it cannot: a packet
/// capture (anything the capture reader opens, gzip-compressed or not), or binary data.
fn not_text(head: &[u8]) -> Option<String> {
    let reader: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.to_vec()));
    if closewait_core::capture::SegmentStream::open_readers(vec![(String::new(), reader)]).is_ok() {
        return Some(
            "it is a packet capture (pcap or pcapng); `closewait analyze` and `closewait \
             diagnose` read captures"
                .to_string(),
        );
    }
    head.contains(&0)
        .then(|| "it is binary data (NUL bytes), not text".to_string())
}
