//! `closewait analyze CAPTURE…`: every connection with how it ended, then a summary, as
//! text, JSON, JSON Lines, a Zeek conn.log, or a Parquet / Arrow table.
use super::{CaptureArgs, CliError};
use crate::cli::output::{refuse_format_on_terminal, AtomicFile, OutputFormats};
use crate::cli::read::{copy_stdin, write_pcap};
use clap::Args;
use closewait_core::analyze::{analyze_pipelined, AnalyzeOptions};
use closewait_core::capture::{CaptureError, CaptureStats, InputSpec};
use closewait_core::export::Selection;
use closewait_core::model::ConnectionReport;
use closewait_core::summary::SummaryBuilder;
use closewait_render::render::{AnalyzeOutput, Format};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `closewait analyze --help`'s closing notes.
pub const ANALYZE_HELP: &str = "Filters: the values of one filter are alternatives (repeat it or \
give a comma list); different filters must all match. The summary counts only the connections \
that match.

JSON formats are described in docs/json.md, the Parquet and Arrow table in docs/parquet.md.

Damaged input: a capture cut short or corrupt in the middle is analysed up to the damage and a \
warning names the byte offset and the packets kept (exit 0; exit 2 with --strict, after writing \
the results). More than --max-connections open at once (a SYN flood, a scan): the least \
recently active are reported as they stand and dropped, with a warning.

Exit status: 0 success (also for a capture cut short or corrupt in the middle), 1 findings with \
--fail-on, 2 bad usage, an unreadable input, output that could not be written, or (--strict) a \
damaged capture.";

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub capture: CaptureArgs,
    /// Write one JSON document: capture, filter, connections (sorted by id), summary.
    #[arg(long, conflicts_with = "jsonl", help_heading = "Output")]
    pub json: bool,
    /// Write JSON Lines: one "connection" line as each connection finishes, then one
    /// "summary" line.
    #[arg(long, help_heading = "Output")]
    pub jsonl: bool,
    /// Output format: text, json, jsonl, zeek (Zeek's conn.log, TSV), zeek-json
    /// (conn.log in Zeek's JSON style; see docs/zeek-compat.md), parquet or arrow (one flat
    /// table of connections, Apache Parquet or the Arrow IPC file; see docs/parquet.md).
    #[arg(long, value_name = "FORMAT", value_parser = parse_format, conflicts_with_all = ["json", "jsonl"], help_heading = "Output")]
    pub format: Option<Format>,
    /// Write the output to FILE (replaced atomically) instead of standard output. Without
    /// --json/--jsonl/--format, a .json, .jsonl or .ndjson name picks that format, .txt
    /// text, .parquet Parquet, .arrow or .feather Arrow; other extensions are refused.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Output"
    )]
    pub output: Option<PathBuf>,
    /// Also write every packet of the connections the filters keep to FILE, a capture to
    /// open in Wireshark: pcap when the inputs are pcap of one link type, else pcapng;
    /// replaced atomically. The inputs are read a second time.
    #[arg(long = "write-pcap", value_name = "FILE", help_heading = "Output")]
    pub write_pcap: Option<PathBuf>,
}

/// What `analyze -o FILE` writes, by FILE's extension.
const ANALYZE_FORMATS: OutputFormats<Format> = OutputFormats {
    command: "analyze",
    by_extension: &[
        ("txt", Format::Text),
        ("text", Format::Text),
        ("json", Format::Json),
        ("jsonl", Format::Jsonl),
        ("ndjson", Format::Jsonl),
        ("log", Format::Zeek),
        ("parquet", Format::Parquet),
        ("arrow", Format::Arrow),
        ("feather", Format::Arrow),
    ],
    default: Format::Text,
    option: "--format, --json or --jsonl",
};

impl AnalyzeArgs {
    /// `--format`, `--json` or `--jsonl` win; otherwise the `-o` file's extension (refused
    /// when it names no format analyze writes); otherwise text.
    pub fn format(&self) -> Result<Format, CliError> {
        let explicit = if let Some(format) = self.format {
            Some(format)
        } else if self.json {
            Some(Format::Json)
        } else if self.jsonl {
            Some(Format::Jsonl)
        } else {
            None
        };
        ANALYZE_FORMATS
            .choose(explicit, self.output.as_deref())
            .map_err(|e| CliError::Usage(e.to_string()))
    }
}

/// `--format` of analyze.
fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        "jsonl" => Ok(Format::Jsonl),
        "zeek" => Ok(Format::Zeek),
        "zeek-json" => Ok(Format::ZeekJson),
        "parquet" => Ok(Format::Parquet),
        "arrow" => Ok(Format::Arrow),
        _ => Err(format!(
            "'{s}' is not a format (one of: text, json, jsonl, zeek, zeek-json, parquet, arrow)"
        )),
    }
}

/// An input as the `capture` column names it: the path as given, `-` for standard input.
fn input_name(input: &InputSpec) -> String {
    match input {
        InputSpec::Path(path) => path.display().to_string(),
        InputSpec::Stdin => "-".to_string(),
    }
}

/// What a command ended with: done, or stopped because the reader of stdout went away.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    Ok,
    BrokenPipe,
}

/// Runs `closewait analyze`.
pub fn run(args: &AnalyzeArgs) -> Result<Done, CliError> {
    let mut inputs = args.capture.input.specs()?;
    args.capture.refuse_overwriting(args.output.as_deref())?;
    args.capture
        .refuse_overwriting(args.write_pcap.as_deref())?;
    // --write-pcap reads the inputs twice: standard input is copied first.
    let stdin_copy = match &args.write_pcap {
        Some(_) => copy_stdin(&mut inputs).map_err(|e| CliError::Usage(format!("{e:#}")))?,
        None => None,
    };
    let output = args.output.as_deref().filter(|p| p.as_os_str() != "-");
    let format = args.format()?;
    if format.is_binary() {
        // A pipe or a file takes the bytes; a terminal would only show noise.
        let extension = if format == Format::Parquet {
            "parquet"
        } else {
            "arrow"
        };
        refuse_format_on_terminal(output, extension).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    args.capture.options()?;
    let sink = match output {
        None => Sink::stdout(),
        Some(p) => Sink::file(p)?,
    };
    // The analysis runs on a second thread, the output on this one; a progress bar goes
    // to stderr for long runs when it is a terminal.
    let mut progress = crate::cli::progress::StderrProgress::new();
    analyze_into(args, &inputs, sink, |inputs, opts, on_connection| {
        let mut on_progress = |p| progress.update(p);
        let mut stats = analyze_pipelined(inputs, opts, on_connection, &mut on_progress);
        progress.finish();
        if let (Some(copy), Ok(stats)) = (&stdin_copy, &mut stats) {
            copy.restore_name(stats);
        }
        stats
    })
}

/// The `analyze` wiring, with the analysis passed in (`analyze()` in the binary, a fake in
/// unit tests): filter each finished connection, stream it to the renderer, feed the
/// summary, then sort and finish the rendering.
fn analyze_into<F>(
    args: &AnalyzeArgs,
    inputs: &[InputSpec],
    mut sink: Sink,
    run: F,
) -> Result<Done, CliError>
where
    F: FnOnce(
        &[InputSpec],
        &AnalyzeOptions,
        &mut dyn FnMut(ConnectionReport),
    ) -> Result<CaptureStats, CaptureError>,
{
    let format = args.format()?;
    let filter = args.capture.filter();
    let opts = args.capture.options()?;

    // Live input (a pipe from tcpdump) may pause for minutes: show each line at once.
    let mut renderer = if format == Format::Jsonl && inputs.contains(&InputSpec::Stdin) {
        Box::new(closewait_render::render::json::JsonlRenderer::line_buffered())
    } else {
        let paths: Vec<String> = inputs.iter().map(input_name).collect();
        let capture = closewait_render::render::columnar::capture_label(&paths);
        format
            .renderer(&capture)
            .map_err(|source| CliError::Output {
                path: sink.name(),
                source,
            })?
    };
    let keep = !format.streams();
    let mut shown: Vec<ConnectionReport> = Vec::new();
    let mut summary = SummaryBuilder::default();
    let mut total = 0u64;
    let mut write_error: Option<io::Error> = None;
    let mut selection = Selection::default();

    let capture = {
        let w = sink.writer();
        let mut on_connection = |report: ConnectionReport| {
            total += 1;
            if !filter.matches(&report) {
                return;
            }
            summary.add(&report);
            if args.write_pcap.is_some() {
                selection.add(&report);
            }
            // After a failed write (say, a closed pipe) the analysis runs to its end but
            // nothing more is written.
            if write_error.is_none() {
                if let Err(e) = renderer.connection(&mut *w, &report) {
                    write_error = Some(e);
                }
            }
            if keep {
                shown.push(report);
            }
        };
        run(inputs, &opts, &mut on_connection).map_err(CliError::Input)?
    };
    // Warnings go to stderr too, unless the text report on stdout already ends with them:
    // JSON output or a file would otherwise hide a damaged capture from the person.
    let text_on_stdout = matches!(format, Format::Text) && matches!(sink, Sink::Stream(_));
    let strict = |done: Done| {
        args.capture
            .conclude(&capture, text_on_stdout)
            .map(|()| done)
    };
    if let Some(e) = write_error {
        return sink.fail(e).and_then(strict);
    }

    if let Some(path) = &args.write_pcap {
        write_pcap(path, inputs, &selection)?;
    }

    closewait_render::render::sort_by_id(&mut shown, |r| r.id);
    let summary = summary.finish();
    let out = AnalyzeOutput {
        capture: &capture,
        filter: &filter,
        connections_total: total,
        connections: &shown,
        summary: &summary,
    };
    if let Err(e) = renderer.finish(sink.writer(), &out) {
        return sink.fail(e).and_then(strict);
    }
    sink.commit().and_then(strict)
}

/// Where output goes: stdout, or a temporary file renamed over the target at the end so
/// readers of the target never see half an output and a failed run leaves it untouched.
enum Sink {
    /// Standard output (or, in tests, any stream): a closed pipe is not an error.
    Stream(Box<dyn Write>),
    File(AtomicFile),
}

impl Sink {
    fn stdout() -> Sink {
        Sink::Stream(Box::new(BufWriter::new(io::stdout())))
    }

    fn file(path: &Path) -> Result<Sink, CliError> {
        AtomicFile::create(path)
            .map(Sink::File)
            .map_err(CliError::from)
    }

    /// The output, as error messages name it.
    fn name(&self) -> String {
        match self {
            Sink::Stream(_) => "standard output".to_string(),
            Sink::File(f) => f.target().display().to_string(),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stream(w) => w,
            Sink::File(f) => &mut f.writer,
        }
    }

    /// A write failed: a closed stdout pipe ends the command quietly, anything else is an
    /// output error (and a temporary file is removed when the sink drops).
    fn fail(self, e: io::Error) -> Result<Done, CliError> {
        match self {
            Sink::Stream(_) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Done::BrokenPipe),
            sink => Err(CliError::Output {
                path: sink.name(),
                source: e,
            }),
        }
    }

    fn commit(self) -> Result<Done, CliError> {
        match self {
            Sink::Stream(mut w) => match w.flush() {
                Ok(()) => Ok(Done::Ok),
                Err(e) => Sink::Stream(w).fail(e),
            },
            Sink::File(f) => f.commit().map(|()| Done::Ok).map_err(CliError::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use closewait_core::model::CloseKind;
    use closewait_core::state::TcpState;
    use std::fs;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("closewait").chain(args.iter().copied()))
    }

    fn analyze_args(args: &[&str]) -> AnalyzeArgs {
        match parse(args).expect("valid command line").command {
            Command::Analyze(a) => a,
            other => panic!("not analyze: {other:?}"),
        }
    }

    #[test]
    fn kind_is_repeatable_and_takes_comma_lists() {
        let a = analyze_args(&[
            "analyze",
            "x.pcap",
            "--kind",
            "abort,unanswered-fin",
            "--kind",
            "refused",
        ]);
        assert_eq!(
            a.capture.filter.kind,
            vec![
                CloseKind::Abort,
                CloseKind::UnansweredFin,
                CloseKind::Refused
            ]
        );
    }

    #[test]
    fn state_accepts_netstat_rfc_and_lowercase_spellings() {
        for spelling in ["CLOSE_WAIT", "close-wait", "CLOSE-WAIT"] {
            let a = analyze_args(&["analyze", "x.pcap", "--state", spelling]);
            assert_eq!(
                a.capture.filter.state,
                vec![TcpState::CloseWait],
                "{spelling}"
            );
        }
    }

    #[test]
    fn bad_filter_values_are_usage_errors() {
        for args in [
            &["analyze", "x.pcap", "--kind", "polite"][..],
            &["analyze", "x.pcap", "--state", "HALF_OPEN"],
            &["analyze", "x.pcap", "--host", "example.com"],
            &["analyze", "x.pcap", "--port", "70000"],
            &["analyze", "x.pcap", "--time-wait", "-1"],
            &["analyze", "x.pcap", "--json", "--jsonl"],
            &["analyze"],
        ] {
            let e = parse(args).expect_err("usage error");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn time_wait_defaults_to_linux_60_seconds() {
        let a = analyze_args(&["analyze", "x.pcap"]);
        assert_eq!(a.capture.options().expect("valid").time_wait_secs, 60.0);
        let a = analyze_args(&["analyze", "x.pcap", "--time-wait", "240"]);
        assert_eq!(a.capture.options().expect("valid").time_wait_secs, 240.0);
    }

    #[test]
    fn format_from_flags_then_output_extension() {
        let format = |args: &[&str]| analyze_args(args).format().map_err(|e| e.exit_code());
        assert_eq!(format(&["analyze", "x.pcap"]), Ok(Format::Text));
        assert_eq!(format(&["analyze", "x.pcap", "--json"]), Ok(Format::Json));
        assert_eq!(
            format(&["analyze", "x.pcap", "-o", "r.jsonl"]),
            Ok(Format::Jsonl)
        );
        assert_eq!(
            format(&["analyze", "x.pcap", "--json", "-o", "r.jsonl"]),
            Ok(Format::Json)
        );
        assert_eq!(
            format(&["analyze", "x.pcap", "-o", "r.txt"]),
            Ok(Format::Text)
        );
        assert_eq!(format(&["analyze", "x.pcap", "-o", "r.out"]), Err(2));
        assert_eq!(
            format(&["analyze", "x.pcap", "-o", "r.parquet"]),
            Ok(Format::Parquet)
        );
        assert_eq!(
            format(&["analyze", "x.pcap", "-o", "r.feather"]),
            Ok(Format::Arrow)
        );
        assert_eq!(
            format(&["analyze", "x.pcap", "--format", "arrow"]),
            Ok(Format::Arrow)
        );
        assert_eq!(
            format(&["analyze", "x.pcap", "--jsonl", "-o", "r.out"]),
            Ok(Format::Jsonl)
        );
    }

    #[test]
    fn stdin_dash_maps_to_stdin_and_only_once() {
        let a = analyze_args(&["analyze", "-", "b.pcap"]);
        assert_eq!(
            a.capture.input.specs().expect("valid"),
            vec![InputSpec::Stdin, InputSpec::Path("b.pcap".into())]
        );
        let twice = analyze_args(&["analyze", "-", "-"]);
        assert_eq!(
            twice.capture.input.specs().map_err(|e| e.exit_code()),
            Err(2)
        );
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("closewait-cli-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    // ---- the analyze wiring, with a fake analysis ------------------------------------

    use closewait_core::model::Initiator;
    use closewait_core::testutil::ReportBuilder;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer whose bytes the test can still read after handing it to the sink.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).expect("utf-8")
        }
    }

    /// Connections in finish order, not id order, as analyze() reports them.
    fn finished() -> Vec<ConnectionReport> {
        vec![
            ReportBuilder::new(2).unanswered_fin_by_server(30.0).build(),
            ReportBuilder::new(0).build(),
            ReportBuilder::new(1)
                .kind(CloseKind::Abort, Initiator::Client)
                .build(),
        ]
    }

    /// A stand-in for analyze(): reports `reports` in order. With `probe`, records after
    /// each connection how many lines the output holds, to show what was streamed when.
    fn fake(
        reports: Vec<ConnectionReport>,
        probe: Option<(Shared, Rc<RefCell<Vec<usize>>>)>,
    ) -> impl FnOnce(
        &[InputSpec],
        &AnalyzeOptions,
        &mut dyn FnMut(ConnectionReport),
    ) -> Result<CaptureStats, CaptureError> {
        move |_inputs, _opts, on_connection| {
            for r in reports {
                on_connection(r);
                if let Some((out, seen)) = &probe {
                    seen.borrow_mut().push(out.text().lines().count());
                }
            }
            Ok(CaptureStats::default())
        }
    }

    /// Runs `args` against the fake; returns the result, the output, and the line counts
    /// seen after each connection.
    fn run_fake(
        args: &[&str],
        reports: Vec<ConnectionReport>,
    ) -> (Result<Done, CliError>, String, Vec<usize>) {
        let a = analyze_args(args);
        let buf = Shared::default();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let inputs = a.capture.input.specs().expect("inputs");
        let sink = Sink::Stream(Box::new(buf.clone()));
        let probe = Some((buf.clone(), seen.clone()));
        let result = analyze_into(&a, &inputs, sink, fake(reports, probe));
        let seen = seen.borrow().clone();
        (result, buf.text(), seen)
    }

    #[test]
    fn json_connections_are_sorted_by_id_whatever_the_finish_order() {
        let (result, text, seen) = run_fake(&["analyze", "x.pcap", "--json"], finished());
        assert_eq!(seen, [0, 0, 0], "a JSON document is written at the end");
        assert_eq!(result.expect("ok"), Done::Ok);
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let ids: Vec<u64> = doc["connections"]
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["id"].as_u64().expect("id"))
            .collect();
        assert_eq!(ids, vec![0, 1, 2]);
    }

    #[test]
    fn kind_filter_selects_connections_and_summary_counts_only_those() {
        let (result, text, _) = run_fake(
            &[
                "analyze",
                "x.pcap",
                "--json",
                "--kind",
                "abort,unanswered_fin",
            ],
            finished(),
        );
        assert_eq!(result.expect("ok"), Done::Ok);
        let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["connections"].as_array().map(Vec::len), Some(2));
        assert_eq!(doc["summary"]["connections"], 2);
        assert_eq!(doc["summary"]["by_kind"]["graceful"], 0);
        assert_eq!(doc["filter"]["matched"], 2);
        assert_eq!(doc["filter"]["total"], 3);
    }

    #[test]
    fn jsonl_writes_each_connection_as_it_finishes_then_the_summary() {
        let (result, text, seen) = run_fake(&["analyze", "x.pcap", "--jsonl"], finished());
        // The first line goes out at once; the next ones gather until a flush is due
        // (every FLUSH_INTERVAL, checked as each line comes) or the end.
        assert_eq!(seen[0], 1, "the first line out at once");
        assert!(
            seen.windows(2).all(|w| w[0] <= w[1]) && seen[2] <= 3,
            "{seen:?}"
        );
        assert_eq!(result.expect("ok"), Done::Ok);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        // Finish order, as they came.
        let ids: Vec<&serde_json::Value> = lines[..3].iter().map(|l| &l["id"]).collect();
        assert_eq!(ids, [2, 0, 1]);
        assert_eq!(lines[3]["type"], "summary");
        assert_eq!(lines[3]["summary"]["connections"], 3);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn closed_pipe_ends_quietly() {
        struct ClosedPipe;
        impl Write for ClosedPipe {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
        }
        for format in ["--json", "--jsonl"] {
            let a = analyze_args(&["analyze", "x.pcap", format]);
            let inputs = a.capture.input.specs().expect("inputs");
            let sink = Sink::Stream(Box::new(ClosedPipe));
            let result = analyze_into(&a, &inputs, sink, fake(finished(), None));
            assert_eq!(result.expect("not an error"), Done::BrokenPipe, "{format}");
        }
    }

    #[test]
    fn unreadable_input_exits_2_and_leaves_no_output_file() {
        let dir = scratch_dir("input-error");
        let target = dir.join("out.json");
        let a = analyze_args(&[
            "analyze",
            "gone.pcap",
            "-o",
            target.to_str().expect("utf-8"),
        ]);
        let inputs = a.capture.input.specs().expect("inputs");
        let sink = Sink::file(&target).expect("temp file");
        let failing = |_: &[InputSpec], _: &AnalyzeOptions, _: &mut dyn FnMut(ConnectionReport)| {
            Err(CaptureError::Io {
                path: "gone.pcap".to_string(),
                source: io::Error::from(io::ErrorKind::NotFound),
            })
        };
        let e = analyze_into(&a, &inputs, sink, failing).expect_err("input error");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("gone.pcap: "), "{e}");
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 0, "temp removed");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn output_file_gets_the_whole_rendering() {
        let dir = scratch_dir("whole");
        let target = dir.join("out.jsonl");
        let a = analyze_args(&["analyze", "x.pcap", "-o", target.to_str().expect("utf-8")]);
        let inputs = a.capture.input.specs().expect("inputs");
        let sink = Sink::file(&target).expect("temp file");
        let done = analyze_into(&a, &inputs, sink, fake(finished(), None)).expect("ok");
        assert_eq!(done, Done::Ok);
        let text = fs::read_to_string(&target).expect("read");
        assert_eq!(text.lines().count(), 4, "JSON Lines picked by extension");
        let _ = fs::remove_dir_all(&dir);
    }
}
