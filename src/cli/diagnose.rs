//! `closewait diagnose CAPTURE…`: arguments and runner.
//!
//! Wiring only: read the captures ([`read_diagnosis`]), hand the reports to the
//! diagnosis, render, and turn `--fail-on` into an exit status. The findings
//! need per-segment records for a few facts (keep-alive timings, the flags of a RST) and
//! the Markdown diagrams need them for the example connections; to keep memory bounded the
//! runner records segments for every connection but keeps them, once a connection is
//! finished, only where a finding may need them (see [`crate::cli::read::SegmentKeeper`]).

use crate::cli::output::{AtomicFile, OutputFormats};
use crate::cli::read::{
    copy_stdin, example_ids, read_diagnosis, read_examples, read_selection, write_pcap,
};
use crate::cli::{CaptureArgs, FailOn};
use anyhow::Context;
use closewait_core::capture::CaptureStats;
use closewait_render::diagnose::{Diagnosis, FindingId};
use closewait_render::render::diagnosis::{render, Format, RenderOptions};
use std::collections::BTreeSet;
use std::io::Write;
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

    /// Also write every packet of the findings' connections (those of --finding only, when
    /// given) to FILE, a capture to open in Wireshark: pcap when the inputs are pcap of one
    /// link type, else pcapng; replaced atomically. A finding lists at most 1000
    /// connections (the lowest ids); only those are written. The inputs are read twice more.
    #[arg(long = "write-pcap", value_name = "FILE")]
    pub write_pcap: Option<PathBuf>,

    /// With --write-pcap: only the connections of findings of this kind (close_wait_leak,
    /// resets, …; repeat it or give a comma list).
    #[arg(long, value_name = "ID", value_delimiter = ',', value_parser = parse_finding, requires = "write_pcap")]
    pub finding: Vec<FindingId>,

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
            write_pcap: None,
            finding: Vec::new(),
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

/// Runs the command, writing to standard output or the `-o` file. Returns the exit
/// status: 1 when `--fail-on` matched a finding, else 0. Unreadable input is an error.
pub fn run(args: &DiagnoseArgs) -> anyhow::Result<i32> {
    args.capture.refuse_overwriting(args.output.as_deref())?;
    let format = args.output_format()?;
    let (status, stats) = match args.output.as_deref().filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            args.capture.refuse_overwriting(Some(path))?;
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
    args.capture
        .refuse_overwriting(args.write_pcap.as_deref())?;
    let mut inputs = args.capture.input.specs()?;
    // Markdown's diagrams and --write-pcap need a second pass over the capture: standard
    // input is copied to a temporary file first, as `report` does.
    let stdin_copy = if format == Format::Markdown || args.write_pcap.is_some() {
        copy_stdin(&mut inputs)?
    } else {
        None
    };
    let opts = args.capture.options()?;
    let names = args.capture.names();
    let (diagnosis, mut stats) = read_diagnosis(&inputs, &opts, &args.capture.filter(), &names)?;
    if let Some(copy) = &stdin_copy {
        copy.restore_name(&mut stats);
    }
    if let Some(path) = &args.write_pcap {
        let ids = chosen_connections(&diagnosis, &args.finding);
        let selection = read_selection(&inputs, &opts, &ids)?;
        write_pcap(path, &inputs, &selection)?;
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

/// `--finding`: a finding id as JSON spells it.
fn parse_finding(s: &str) -> Result<FindingId, String> {
    FindingId::ALL
        .into_iter()
        .find(|id| id.as_str() == s.trim().replace('-', "_"))
        .ok_or_else(|| {
            let all: Vec<&str> = FindingId::ALL.iter().map(|id| id.as_str()).collect();
            format!("unknown finding '{s}' (one of: {})", all.join(", "))
        })
}

/// The connections `--write-pcap` writes: the evidence of the findings of the `wanted`
/// kinds (of all findings when none is given). A finding listing fewer connections than it
/// counts is said on stderr.
fn chosen_connections(d: &Diagnosis, wanted: &[FindingId]) -> BTreeSet<u64> {
    let chosen = d
        .findings
        .iter()
        .filter(|f| wanted.is_empty() || wanted.contains(&f.id));
    let mut ids = BTreeSet::new();
    for f in chosen {
        ids.extend(f.evidence.iter().copied());
        // `all_clear` counts every connection and lists none: nothing is wrong with them.
        if f.id != FindingId::AllClear && (f.evidence.len() as u64) < f.count {
            eprintln!(
                "closewait: warning: {} lists {} of its {} connections (the lowest ids); \
                 --write-pcap writes those",
                f.id,
                f.evidence.len(),
                f.count
            );
        }
    }
    ids
}

/// 1 when a finding is at least as severe as `fail_on`, else 0.
pub fn exit_status(d: &Diagnosis, fail_on: Option<FailOn>) -> i32 {
    match (fail_on, d.worst()) {
        (Some(level), Some(worst)) if worst >= level.severity() => 1,
        _ => 0,
    }
}
