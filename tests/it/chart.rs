//! `closewait chart` and `closewait graph` on the shipped captures: snapshot tests of the
//! SVG and DOT, the SVG parsed as XML (by usvg, the parser that rasterizes it) with the
//! expected labels, the PNG decoded with the expected size, the states curve agreeing with
//! the end-state table of `closewait analyze`, and the pictures in docs/diagrams.md still
//! being what their commands make.

use clap::Parser;
use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::chart_cmd::{self, ChartArgs};
use closewait::graph_cmd::{self, GraphArgs};
use closewait::model::Side;
use closewait::render::chart::states::{counts_at, sweep, END_SLACK};
use closewait::render::chart::{render_chart_svg, ChartKind};
use closewait::state::TcpState;
use closewait::summary::Summary;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct ChartCli {
    #[command(flatten)]
    args: ChartArgs,
}

#[derive(Parser)]
struct GraphCli {
    #[command(flatten)]
    args: GraphArgs,
}

use crate::support::paths;
use paths::capture;

fn out_dir() -> PathBuf {
    paths::out_dir("chart-tests")
}

/// Runs `closewait <cmd> <args> -o out` and returns the file's bytes.
fn run(cmd: &str, args: &[&str], out: &Path) -> Vec<u8> {
    let mut argv = vec![cmd.to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.push("-o".into());
    argv.push(out.display().to_string());
    let status = match cmd {
        "chart" => {
            let cli = ChartCli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            chart_cmd::run(&cli.args)
        }
        "graph" => {
            let cli = GraphCli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            graph_cmd::run(&cli.args)
        }
        _ => unreachable!(),
    }
    .unwrap_or_else(|e| panic!("{argv:?}: {e:#}"));
    assert_eq!(status, 0, "{argv:?}");
    std::fs::read(out).unwrap()
}

fn chart_svg(cap: &str, kind: &str) -> String {
    let out = out_dir().join(format!("{cap}-{kind}.svg"));
    let path = capture(cap);
    String::from_utf8(run(
        "chart",
        &[path.to_str().unwrap(), "--type", kind],
        &out,
    ))
    .unwrap()
}

fn parse_svg(svg: &str) -> resvg::usvg::Tree {
    resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default())
        .unwrap_or_else(|e| panic!("SVG does not parse: {e}\n{svg}"))
}

fn assert_labels(svg: &str, labels: &[&str]) {
    for l in labels {
        assert!(svg.contains(l), "SVG lacks {l:?}");
    }
}

#[test]
fn timeline_of_the_pool_leak_marks_45_leaks() {
    let svg = chart_svg("12-pool-leak-many.pcap", "timeline");
    parse_svg(&svg);
    assert_labels(
        &svg,
        &[
            "Connection timeline — 12-pool-leak-many.pcap (50 connections)",
            "time since the start of the capture (s)",
            "CLOSE_WAIT",
            "FIN_WAIT_2",
            "TIME_WAIT",
            "in CLOSE_WAIT at the end (45)",
            "\n#0\n",
            "\n#48\n",
        ],
    );
    // One red bar per leaking client plus the 45 markers: CLOSE_WAIT's colour is everywhere.
    assert!(svg.matches("#CF222E").count() + svg.matches("#cf222e").count() >= 90);
}

#[test]
fn states_curve_of_the_pool_leak_ends_at_45_close_wait() {
    let svg = chart_svg("12-pool-leak-many.pcap", "states");
    parse_svg(&svg);
    assert_labels(
        &svg,
        &[
            "Sockets per TCP state over time — 12-pool-leak-many.pcap",
            "client-side sockets (50 connections)",
            "server-side sockets (50 connections)",
            "CLOSE_WAIT (max 45, 45 at end)",
            "FIN_WAIT_2 (max 45, 45 at end)",
            "TIME_WAIT (max 5, 5 at end)",
            "sockets",
        ],
    );
}

#[test]
fn idle_histogram_marks_both_inferred_timeouts() {
    let svg = chart_svg("20-many-idle-timeouts.pcap", "idle");
    parse_svg(&svg);
    assert_labels(
        &svg,
        &[
            "server 10.77.0.2:8788 (30 connections)",
            "server keep-alive timeout ≈ 1.008 s (median of 10)",
            "client idle timeout ≈ 502.3 ms (median of 20)",
            "server closed, client never did",
            "idle before the close (s)",
            "time in CLOSE_WAIT (s)",
            "still in CLOSE_WAIT at the end",
        ],
    );
}

#[test]
fn idle_histogram_of_a_capture_without_idle_closes_says_so() {
    let svg = chart_svg("08-connection-refused.pcap", "idle");
    parse_svg(&svg);
    assert_labels(
        &svg,
        &[
            "no connection was closed after an idle period",
            "no socket entered CLOSE_WAIT",
        ],
    );
}

#[test]
fn png_decodes_at_twice_the_svg_size() {
    for kind in ["timeline", "states", "idle"] {
        let cap = capture("16-close-wait-keepalive.pcap");
        let png_path = out_dir().join(format!("16-{kind}.png"));
        let png = run("chart", &[cap.to_str().unwrap(), "-t", kind], &png_path);
        let svg = chart_svg("16-close-wait-keepalive.pcap", kind);
        let tree = parse_svg(&svg);
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("PNG decodes");
        assert_eq!(pixmap.width(), (tree.size().width() * 2.0).ceil() as u32);
        assert_eq!(pixmap.height(), (tree.size().height() * 2.0).ceil() as u32);
        let dark = pixmap
            .pixels()
            .iter()
            .filter(|p| p.red() < 80 && p.green() < 80 && p.blue() < 80)
            .count();
        assert!(
            dark > 2000,
            "{kind}: only {dark} dark pixels: was the text drawn?"
        );
    }
    let cap = capture("12-pool-leak-many.pcap");
    let png = run(
        "graph",
        &[cap.to_str().unwrap()],
        &out_dir().join("12-graph.png"),
    );
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("PNG decodes");
    assert_eq!((pixmap.width(), pixmap.height()), (3280, 1904));
}

/// The sweep behind the states chart, at the end of the capture, is the end-state table of
/// `closewait analyze` for every capture shipped.
#[test]
fn states_at_the_end_agree_with_the_end_state_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut caps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .collect();
    caps.sort();
    assert!(caps.len() >= 15);
    for cap in caps {
        let mut reports = Vec::new();
        let stats = analyze(
            &[InputSpec::Path(cap.clone())],
            &AnalyzeOptions::default(),
            &mut |r| reports.push(r),
        )
        .unwrap();
        let summary = Summary::from_reports(&reports);
        let end = stats.last_ts.unwrap();
        for side in [Side::Client, Side::Server] {
            let at_end = counts_at(&sweep(&reports, side), end + END_SLACK);
            for (i, state) in TcpState::ALL.iter().enumerate() {
                let expected = summary.end_state_total(side, *state);
                if *state == TcpState::Closed {
                    // A side never seen (a SYN nobody answered) is CLOSED without a step.
                    let unseen = reports
                        .iter()
                        .filter(|r| r.timeline.get(side).is_empty())
                        .count() as u64;
                    assert_eq!(at_end[i] + unseen, expected, "{cap:?} {side} CLOSED");
                } else {
                    assert_eq!(at_end[i], expected, "{cap:?} {side} {state}");
                }
            }
        }
        // And every chart draws, and parses.
        for kind in ChartKind::ALL {
            let svg = render_chart_svg(kind, &reports, &stats, "t").unwrap();
            parse_svg(&svg);
        }
    }
}

#[test]
fn chart_snapshots() {
    for kind in ["timeline", "states", "idle"] {
        let svg = chart_svg("16-close-wait-keepalive.pcap", kind);
        insta::assert_snapshot!(format!("16-close-wait-keepalive-{kind}.svg"), svg);
    }
}

#[test]
fn graph_of_the_pool_leak_dot_and_svg() {
    let cap = capture("12-pool-leak-many.pcap");
    let dot = String::from_utf8(run(
        "graph",
        &[cap.to_str().unwrap()],
        &out_dir().join("12.dot"),
    ))
    .unwrap();
    // All 50 clients got the FIN; only 5 ever closed (CLOSE_WAIT → LAST_ACK): 45 leaks.
    assert!(
        dot.contains("label = \"client ×50\\nrcv FIN / snd ACK\""),
        "{dot}"
    );
    assert!(
        dot.contains("label = \"client ×5\\nCLOSE / snd FIN\""),
        "{dot}"
    );
    assert!(
        dot.contains("label = \"server ×5\\nrcv FIN / snd ACK\""),
        "{dot}"
    );
    assert!(
        dot.contains("tooltip = \"rcv FIN / snd ACK\" color = \"#d0d7de\" style = dotted"),
        "{dot}"
    );
    assert!(dot.starts_with("// closewait graph"));
    insta::assert_snapshot!("12-pool-leak-many.dot", dot);
    let svg = String::from_utf8(run(
        "graph",
        &[cap.to_str().unwrap()],
        &out_dir().join("12-graph.svg"),
    ))
    .unwrap();
    parse_svg(&svg);
    assert_labels(
        &svg,
        &[
            "TCP states seen — 12-pool-leak-many.pcap",
            "client side: 50 sockets",
            "server side: 50 sockets",
            "ESTABLISHED → CLOSE_WAIT: rcv FIN / snd ACK; taken 50 times",
            ">×50<",
            ">×5<",
            "CLOSE_WAIT → LAST_ACK: CLOSE / snd FIN; taken 5 times",
            "FIN_WAIT_2",
        ],
    );
    insta::assert_snapshot!("12-pool-leak-many-graph.svg", svg);
}

#[test]
fn inputs_are_never_overwritten_and_the_type_defaults_to_states() {
    let cli = GraphCli::try_parse_from(["graph", "Cargo.toml", "-o", "./Cargo.toml"]).unwrap();
    let e = graph_cmd::run(&cli.args).unwrap_err();
    assert!(e.to_string().contains("refusing to write"), "{e}");
    assert!(ChartCli::try_parse_from(["chart", "x.pcap", "-t", "pie"]).is_err());
    let cli = ChartCli::try_parse_from(["chart", "x.pcap"]).unwrap();
    assert_eq!(cli.args.chart_type, chart_cmd::ChartType::States);
}

/// The pictures in docs/diagrams.md: (command, capture, arguments, file under
/// docs/diagrams/). Each is `closewait <command> captures/<capture> <arguments> -o
/// docs/diagrams/<file>`.
const DOCS: &[(&str, &str, &[&str], &str)] = &[
    (
        "chart",
        "12-pool-leak-many.pcap",
        &["--type", "timeline"],
        "12-pool-leak-many-timeline.svg",
    ),
    (
        "chart",
        "12-pool-leak-many.pcap",
        &["--type", "timeline"],
        "12-pool-leak-many-timeline.png",
    ),
    (
        "chart",
        "12-pool-leak-many.pcap",
        &["--type", "states"],
        "12-pool-leak-many-states.svg",
    ),
    (
        "chart",
        "20-many-idle-timeouts.pcap",
        &["--type", "timeline"],
        "20-many-idle-timeouts-timeline.svg",
    ),
    (
        "chart",
        "20-many-idle-timeouts.pcap",
        &["--type", "idle"],
        "20-many-idle-timeouts-idle.svg",
    ),
    (
        "chart",
        "16-close-wait-keepalive.pcap",
        &["--type", "idle"],
        "16-close-wait-keepalive-idle.png",
    ),
    (
        "graph",
        "20-many-idle-timeouts.pcap",
        &[],
        "20-many-idle-timeouts-graph.svg",
    ),
    (
        "graph",
        "20-many-idle-timeouts.pcap",
        &[],
        "20-many-idle-timeouts-graph.dot",
    ),
    (
        "graph",
        "03-fin-timeout-then-rst.pcap",
        &[],
        "03-fin-timeout-then-rst-graph.png",
    ),
];

/// docs/diagrams/ holds exactly what the commands make today; `CLOSEWAIT_UPDATE_DOCS=1
/// cargo test --test it chart::docs` rewrites them.
#[test]
fn docs_pictures_are_what_the_commands_make() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = root.join("docs").join("diagrams");
    let page = std::fs::read_to_string(root.join("docs").join("diagrams.md")).unwrap();
    let update = std::env::var_os("CLOSEWAIT_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (cmd, cap, args, file) in DOCS {
        let fresh_path = out_dir().join(format!("docs-{file}"));
        // Run from the repository root so titles name the capture as the page does.
        let mut full: Vec<String> = vec![root.join("captures").join(cap).display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        let full: Vec<&str> = full.iter().map(|s| s.as_str()).collect();
        let fresh = run(cmd, &full, &fresh_path);
        let committed = docs.join(file);
        if update {
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(&committed, &fresh).unwrap();
        } else if file.ends_with(".png") {
            // PNG bytes depend on the zlib build; the picture must decode at the same size.
            let png = std::fs::read(&committed).unwrap_or_default();
            let old = resvg::tiny_skia::Pixmap::decode_png(&png);
            let new = resvg::tiny_skia::Pixmap::decode_png(&fresh).unwrap();
            match old {
                Ok(old) if (old.width(), old.height()) == (new.width(), new.height()) => {}
                _ => stale.push(file.to_string()),
            }
        } else if std::fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
            stale.push(file.to_string());
        }
        let shown = format!(
            "closewait {cmd} captures/{cap} {}-o docs/diagrams/{file}",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        );
        assert!(
            page.contains(&shown),
            "docs/diagrams.md does not show `{shown}`"
        );
        if !file.ends_with(".dot") {
            assert!(
                page.contains(&format!("(diagrams/{file})")),
                "docs/diagrams.md does not show the picture {file}"
            );
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs/diagrams files {stale:?}: run CLOSEWAIT_UPDATE_DOCS=1 cargo test --test it chart::docs"
    );
}

/// Without `--type` the chart is `states`: the one that covers every connection however
/// big the capture (the timeline shows at most a few hundred rows).
#[test]
fn chart_without_type_draws_the_states_curve() {
    use crate::support::cli::stdout_of;
    let cap = "captures/12-pool-leak-many.pcap";
    let svg = stdout_of(["chart", cap]);
    assert_labels(
        &svg,
        &[
            "Sockets per TCP state over time — 12-pool-leak-many.pcap",
            "CLOSE_WAIT (max 45, 45 at end)",
        ],
    );
    assert_eq!(svg, stdout_of(["chart", cap, "--type", "states"]));
}

/// `chart -f png > file`: the PNG goes to a redirected standard output, the same bytes as
/// `-o file.png`.
#[test]
fn png_to_a_redirected_stdout_equals_the_file() {
    let cap = capture("12-pool-leak-many.pcap");
    let cap = cap.to_str().unwrap();
    let file = run(
        "chart",
        &[cap, "-t", "states", "-f", "png"],
        &out_dir().join("12-states-stdout.png"),
    );
    for to_stdout in [vec!["-f", "png"], vec!["-o", "-", "-f", "png"]] {
        let mut args = vec!["chart", cap, "-t", "states"];
        args.extend(to_stdout);
        let out = crate::support::cli::closewait()
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.starts_with(b"\x89PNG\r\n\x1a\n"), "{args:?}");
        assert!(out.stdout == file, "{args:?}: not the bytes of -o file.png");
    }
}

/// On a terminal (a pseudo-terminal from `script`, where installed) PNG is refused with a
/// message saying what to do, for every command that draws PNG.
#[test]
fn png_to_a_terminal_is_refused() {
    for command in ["chart", "graph", "diagram"] {
        let cap = "captures/02-server-idle-close-client-leak.pcap";
        let Some(out) = crate::support::cli::on_a_terminal(&[command, cap, "-f", "png"]) else {
            return;
        };
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{command}: {shown}");
        assert!(
            shown.contains("png output is binary and standard output is a terminal: redirect it (> out.png) or add -o FILE.png"),
            "{command}: {shown}"
        );
        assert!(
            !shown.contains("PNG"),
            "{command}: bytes written to the terminal"
        );
    }
}
