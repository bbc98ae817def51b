//! How the commands read captures, shared so that each reads them the same way: streaming
//! every connection once ([`read_each`], [`read_diagnosis`]), again for the few example
//! connections a diagram needs ([`read_examples`]), standard input copied when it must be
//! read twice ([`StdinCopy`]), the chosen connections' packets copied to a new capture
//! ([`write_pcap`]), and which segment records a diagnosis keeps ([`SegmentKeeper`]).

use super::output::{input_as_output, AtomicFile};
use super::{CaptureArgs, CliError};
use anyhow::{anyhow, Context};
use closewait_core::analyze::{
    analyze, analyze_pipelined, diagnosis_reads_segments, AnalyzeOptions, RecordSegments,
};
use closewait_core::capture::{CaptureStats, InputSpec};
use closewait_core::export::{write_connections, ExportError, Selection};
use closewait_core::filter::Filter;
use closewait_core::model::{CloseKind, ConnectionReport, Initiator, PerSide, Side};
use closewait_render::diagnose::{plural, Diagnosis, DiagnosisBuilder};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The capture names for titles: file names without directories, `stdin` for `-`.
pub fn capture_names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            if p.as_os_str() == "-" {
                "stdin".to_string()
            } else {
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.display().to_string())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The shared first step of `chart` and `graph`: checks the options, refuses an output
/// that names an input, reads the captures and hands each connection the filters match to
/// `on_connection` as it finishes (in finish order, not by id), keeping none of them.
/// Returns what was read and the captures' names for titles.
pub fn read_each(
    capture: &CaptureArgs,
    output: Option<&std::path::Path>,
    on_connection: &mut dyn FnMut(ConnectionReport),
) -> anyhow::Result<(CaptureStats, String)> {
    capture.refuse_overwriting(output)?;
    let inputs = capture.input.specs().map_err(|e| anyhow!("{e}"))?;
    let names = capture_names(&capture.input.captures);
    let opts = capture.options()?;
    let filter = capture.filter();
    let stats = analyze(&inputs, &opts, &mut |r| {
        if filter.matches(&r) {
            on_connection(r)
        }
    })
    .with_context(|| format!("reading {names}"))?;
    Ok((stats, names))
}

/// Standard input copied to a temporary file (the capture is read twice), removed on drop.
pub struct StdinCopy(pub PathBuf);

impl StdinCopy {
    pub fn new() -> anyhow::Result<StdinCopy> {
        let path = std::env::temp_dir().join(format!(
            "closewait-stdin-{}-{}.cap",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let copy = StdinCopy(path);
        let mut data = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("reading the capture from standard input")?;
        std::fs::write(&copy.0, &data)
            .with_context(|| format!("writing a copy of standard input to {}", copy.0.display()))?;
        Ok(copy)
    }

    /// Names the copy `-` again in what was read, as the person gave it.
    pub fn restore_name(&self, stats: &mut CaptureStats) {
        let tmp = self.0.display().to_string();
        for f in &mut stats.files {
            if f.path == tmp {
                f.path = "-".to_string();
            }
        }
    }
}

impl Drop for StdinCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

/// `--write-pcap FILE`: reads `inputs` again and writes the packets of the `selection`'s
/// connections to FILE atomically (nothing is left behind on failure), then
/// says on stderr what it wrote. FILE may not be standard output (that carries the
/// command's own output) nor an input.
pub fn write_pcap(
    path: &Path,
    inputs: &[InputSpec],
    selection: &Selection,
) -> Result<(), CliError> {
    if path.as_os_str() == "-" {
        return Err(CliError::Usage(
            "--write-pcap needs a file name: standard output carries the command's own output"
                .to_string(),
        ));
    }
    if let Some(why) = input_as_output(path, inputs) {
        return Err(CliError::Usage(why));
    }
    let mut file = AtomicFile::create(path)?;
    let written = match write_connections(inputs, selection, &mut file.writer) {
        Ok(w) => w,
        Err(ExportError::Capture(e)) => return Err(CliError::Input(e)),
        Err(ExportError::Write(source)) => {
            return Err(CliError::Output {
                path: path.display().to_string(),
                source,
            })
        }
    };
    file.commit()?;
    eprintln!(
        "closewait: wrote {} of {} to {} ({})",
        plural(written.packets, "packet", "packets"),
        plural(selection.connections(), "connection", "connections"),
        path.display(),
        written.format
    );
    Ok(())
}

/// Reads the inputs again for where the connections `ids` are (their 4-tuples and first
/// and last frames: a diagnosis keeps only ids), for [`write_pcap`]. Memory: the chosen
/// connections, not the capture's.
pub fn read_selection(
    inputs: &[InputSpec],
    opts: &AnalyzeOptions,
    ids: &BTreeSet<u64>,
) -> anyhow::Result<Selection> {
    let mut selection = Selection::default();
    if ids.is_empty() {
        return Ok(selection);
    }
    analyze(inputs, opts, &mut |r| {
        if ids.contains(&r.id) {
            selection.add(&r);
        }
    })
    .context("reading the capture again for the connections to write")?;
    Ok(selection)
}

/// Standard input among `inputs` replaced by a copy of it in a temporary file, for a
/// command that reads its inputs twice (`None` when it has no standard input).
pub fn copy_stdin(inputs: &mut [InputSpec]) -> anyhow::Result<Option<StdinCopy>> {
    let mut copy = None;
    for input in inputs.iter_mut().filter(|i| **i == InputSpec::Stdin) {
        if copy.is_some() {
            anyhow::bail!("standard input (-) can be read only once");
        }
        let c = StdinCopy::new()?;
        *input = InputSpec::Path(c.0.clone());
        copy = Some(c);
    }
    Ok(copy)
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
