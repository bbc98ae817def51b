//! `closewait diagram`: draws the ladder of one connection of a capture.
//!
//! It picks the connection (`--conn ID`, `--worst`, `--kind K`), analyses the capture a
//! second time recording segments for that connection only (records cost memory per
//! segment, so they are never kept for the whole capture), and writes one format to a file
//! (atomically: a temporary file renamed into place) or to standard output.
//!
//! `--worst` ranks connections by how badly they ended, most telling first:
//! `unanswered_fin` (a CLOSE_WAIT leak or an unacknowledged FIN), `fin_then_rst`, `abort`,
//! `half_close`, `syn_timeout`, `handshake_incomplete`, `refused`, `open`, `simultaneous`,
//! `graceful`; within a kind, the longest `waiting_for`, then the longest duration, then the
//! lowest id. `--kind K` picks the first connection of that kind in the same order.

use crate::analyze::{analyze, AnalyzeOptions, RecordSegments};
use crate::capture::InputSpec;
use crate::model::{CloseKind, ConnectionReport};
use crate::render::diagram::{self, Format, LadderOptions, RenderOptions, TimeAxis};
use crate::worst::WorstKey;
use anyhow::{bail, Context};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// Draw the ladder (sequence) diagram of one connection: FIN/ACK arrows between client and
/// server, each side's TCP state beside its lifeline.
#[derive(clap::Args, Clone, Debug)]
pub struct DiagramArgs {
    /// Capture file(s): pcap or pcapng, optionally gzip-compressed; `-` reads standard input.
    #[arg(required = true, value_name = "CAPTURE")]
    pub inputs: Vec<PathBuf>,

    /// The connection to draw, by id (the `id` of `closewait` reports, Wireshark's
    /// `tcp.stream`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["worst", "kind"])]
    pub conn: Option<u64>,

    /// Draw the connection that ended worst (the default when no connection is chosen).
    #[arg(long, conflicts_with = "kind")]
    pub worst: bool,

    /// Draw the worst connection of this close kind (graceful, unanswered_fin, abort, …).
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<CloseKind>,

    /// Output format; by default taken from the -o file's extension (.svg .png .txt .mmd
    /// .puml), else svg.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<FormatArg>,

    /// Write to this file (atomically) instead of standard output. Required for png.
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

    /// TIME_WAIT duration in seconds before an endpoint counts as CLOSED (Linux: 60).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub time_wait: f64,
}

fn parse_kind(s: &str) -> Result<CloseKind, String> {
    s.parse()
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

/// Standard input copied to a temporary file (the capture is read twice), removed on drop.
pub(crate) struct StdinCopy(pub(crate) PathBuf);

impl StdinCopy {
    pub(crate) fn new() -> anyhow::Result<StdinCopy> {
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
}

impl Drop for StdinCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An absolute, symlink-free form of `p` even when it does not exist yet.
pub fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = parent.and_then(|d| d.canonicalize().ok()).or_else(|| {
        parent
            .is_none()
            .then(|| std::env::current_dir().ok())
            .flatten()
    });
    match (dir, p.file_name()) {
        (Some(d), Some(f)) => d.join(f),
        _ => p.to_path_buf(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees half a diagram.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("could not write '{}'", path.display()));
    }
    Ok(())
}

/// Runs `closewait diagram`. Exit status: 0 drawn; 1 no such connection.
pub fn run(args: &DiagramArgs) -> anyhow::Result<i32> {
    let format: Format = match (args.format, &args.output) {
        (Some(f), _) => f.into(),
        (None, Some(out)) => Format::from_path(out).unwrap_or(Format::Svg),
        (None, None) => Format::Svg,
    };
    if format.is_binary() && args.output.is_none() {
        bail!("png output needs a file: add -o FILE.png");
    }
    if !args.fold_after.is_finite() || args.fold_after <= 0.0 {
        bail!("--fold-after must be a positive number of seconds");
    }

    let mut stdin_copy = None;
    let mut inputs = Vec::new();
    for p in &args.inputs {
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
    if let Some(out) = &args.output {
        let out_r = resolved(out);
        for p in args.inputs.iter().filter(|p| p.as_os_str() != "-") {
            if resolved(p) == out_r {
                bail!(
                    "refusing to overwrite the input '{}' with a diagram",
                    p.display()
                );
            }
        }
    }
    let names = || {
        args.inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };

    let analyze_opts = |record| AnalyzeOptions {
        time_wait_secs: args.time_wait,
        record_segments: record,
        ..AnalyzeOptions::default()
    };
    let id = match args.conn {
        Some(id) => id,
        None => {
            let mut worst = WorstSoFar::new(args.kind);
            analyze(&inputs, &analyze_opts(RecordSegments::None), &mut |r| {
                worst.add(&r)
            })
            .with_context(|| format!("reading {}", names()))?;
            match worst.id() {
                Some(id) => id,
                None => {
                    match args.kind {
                        Some(k) => eprintln!(
                            "closewait: no {k} connection in {} ({} connections)",
                            names(),
                            worst.seen
                        ),
                        None => eprintln!("closewait: no TCP connection in {}", names()),
                    }
                    return Ok(1);
                }
            }
        }
    };

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
        eprintln!(
            "closewait: no connection {id} in {} (ids 0 to {})",
            names(),
            count.saturating_sub(1)
        );
        return Ok(1);
    };

    let opts = RenderOptions {
        ladder: LadderOptions {
            time: match args.time {
                TimeArg::Proportional => TimeAxis::Proportional,
                TimeArg::Linear => TimeAxis::Linear,
            },
            all: args.all,
            absolute: args.absolute,
            fold_after: args.fold_after,
            capture_end: stats.last_ts,
        },
        ascii: args.ascii,
    };
    let bytes = diagram::render(&report, format, &opts)
        .with_context(|| format!("drawing connection {id}"))?;
    match &args.output {
        Some(out) => write_atomically(out, &bytes)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

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

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("closewait-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.svg");
        write_atomically(&f, b"one").unwrap();
        write_atomically(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn png_to_stdout_is_refused() {
        let args = DiagramArgs {
            inputs: vec![PathBuf::from("x.pcap")],
            conn: Some(0),
            worst: false,
            kind: None,
            format: Some(FormatArg::Png),
            output: None,
            time: TimeArg::Proportional,
            fold_after: 1.0,
            all: false,
            absolute: false,
            ascii: false,
            time_wait: 60.0,
        };
        let e = run(&args).unwrap_err();
        assert!(e.to_string().contains("-o FILE.png"), "{e}");
    }

    #[test]
    fn overwriting_the_input_is_refused() {
        let args = DiagramArgs {
            inputs: vec![PathBuf::from("Cargo.toml")],
            conn: Some(0),
            worst: false,
            kind: None,
            format: Some(FormatArg::Svg),
            output: Some(PathBuf::from("./Cargo.toml")),
            time: TimeArg::Proportional,
            fold_after: 1.0,
            all: false,
            absolute: false,
            ascii: false,
            time_wait: 60.0,
        };
        let e = run(&args).unwrap_err();
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");
    }
}
