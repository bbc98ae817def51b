//! `closewait diagram` on the shipped captures: the command's own argument parsing and
//! runner, snapshot tests of the text, Mermaid, PlantUML and SVG ladders, the SVG parsed as
//! XML (by usvg, the same parser that rasterizes it) with the expected labels, and the PNG
//! decoded with the expected size.

use clap::Parser;
use closewait::diagram_cmd::{run, DiagramArgs};
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    diagram: DiagramArgs,
}

use crate::support::paths;
use paths::capture;

fn out_dir() -> PathBuf {
    paths::out_dir("diagram-tests")
}

/// Runs `closewait diagram <args>` writing to `out` and returns the file's bytes.
fn diagram(args: &[&str], out: &Path) -> Vec<u8> {
    let mut argv = vec!["diagram".to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    argv.push("-o".into());
    argv.push(out.display().to_string());
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let status = run(&cli.diagram).unwrap_or_else(|e| panic!("{argv:?}: {e:#}"));
    assert_eq!(status, 0, "{argv:?}");
    std::fs::read(out).unwrap()
}

fn text_of(cap: &str, extra: &[&str], ext: &str) -> String {
    let path = capture(cap);
    let stem = cap.split('.').next().unwrap();
    let out = out_dir().join(format!("{stem}{}.{ext}", extra.join("")));
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(extra);
    String::from_utf8(diagram(&args, &out)).unwrap()
}

/// Snapshots of every text format for one capture's worst connection.
fn snapshots(cap: &str) {
    let stem = cap.split('.').next().unwrap().to_string();
    insta::assert_snapshot!(format!("{stem}.txt"), text_of(cap, &["--worst"], "txt"));
    insta::assert_snapshot!(format!("{stem}.mmd"), text_of(cap, &["--worst"], "mmd"));
    insta::assert_snapshot!(format!("{stem}.puml"), text_of(cap, &["--worst"], "puml"));
    insta::assert_snapshot!(format!("{stem}.svg"), text_of(cap, &["--worst"], "svg"));
}

fn parse_svg(svg: &str) -> resvg::usvg::Tree {
    resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default())
        .unwrap_or_else(|e| panic!("SVG does not parse: {e}\n{svg}"))
}

#[test]
fn scenario_1_client_closes_first_is_the_seeds_first_figure() {
    let text = text_of("01-client-closes-first.pcap", &["--conn", "0"], "txt");
    // The active closer walks FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT; the passive side
    // CLOSE_WAIT → LAST_ACK → CLOSED, in that order down the page.
    let mut at = 0;
    for s in [
        "FIN_WAIT_1",
        "CLOSE_WAIT",
        "FIN_WAIT_2",
        "LAST_ACK",
        "TIME_WAIT",
        "CLOSED",
    ] {
        at += text[at..]
            .find(s)
            .unwrap_or_else(|| panic!("{s} missing after byte {at}:\n{text}"));
    }
    assert!(text.contains("graceful; first FIN by the client"), "{text}");
    snapshots("01-client-closes-first.pcap");
}

#[test]
fn scenario_2_server_idle_close_client_leak_is_the_seeds_second_figure() {
    let text = text_of("02-server-idle-close-client-leak.pcap", &["--worst"], "txt");
    assert!(text.contains("idle …"), "{text}");
    // The capture ends right after the client's ACK of the server's FIN; CLOSE_WAIT
    // began when the FIN arrived, 41.6 ms before.
    assert!(
        text.contains("client never sent its FIN: CLOSE_WAIT for 41.6 ms until capture end"),
        "{text}"
    );
    let svg = text_of("02-server-idle-close-client-leak.pcap", &["--worst"], "svg");
    let tree = parse_svg(&svg);
    assert!(tree.size().width() > 600.0);
    for label in [
        "FIN, ACK",
        "CLOSE_WAIT",
        "FIN_WAIT_2",
        "s idle …",
        "end of capture",
        "<title id=\"cw-title\">",
        "unanswered_fin",
    ] {
        assert!(svg.contains(label), "SVG lacks {label:?}");
    }
    snapshots("02-server-idle-close-client-leak.pcap");
}

#[test]
fn scenario_21_bulk_download_is_folded_into_one_row() {
    let cap = "21-bulk-download-then-close.pcap";
    let text = text_of(cap, &["--worst"], "txt");
    // 1037 data segments in the capture: the 63-byte response header and the last three
    // are drawn, the 1033 between them folded with the client's 397 ACKs (frames 7-1436).
    assert!(
        text.contains(
            " #7-1436                        ┆ … 1033 data segments, 1.5 MB from the server, \
             397 ACKs, 23.8 ms … ┆"
        ),
        "{text}"
    );
    assert!(
        text.contains("CLOSE_WAIT") && text.contains("TIME_WAIT"),
        "{text}"
    );
    let all = text_of(cap, &["--worst", "--all"], "txt");
    assert_eq!(all.matches(['▶', '◀']).count(), 1443, "{all}");
    snapshots(cap);
}

#[test]
fn png_decodes_at_twice_the_svg_size() {
    let cap = capture("02-server-idle-close-client-leak.pcap");
    let dir = out_dir();
    let svg_path = dir.join("02.svg");
    let png_path = dir.join("02.png");
    let svg = String::from_utf8(diagram(&[cap.to_str().unwrap()], &svg_path)).unwrap();
    let png = diagram(&[cap.to_str().unwrap()], &png_path);
    let tree = parse_svg(&svg);
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).expect("PNG decodes");
    assert_eq!(pixmap.width(), (tree.size().width() * 2.0).ceil() as u32);
    assert_eq!(pixmap.height(), (tree.size().height() * 2.0).ceil() as u32);
    // Text was drawn: the ink is not just the background and the boxes.
    let dark = pixmap
        .pixels()
        .iter()
        .filter(|p| p.red() < 80 && p.green() < 80 && p.blue() < 80)
        .count();
    assert!(dark > 2000, "only {dark} dark pixels: was the text drawn?");
}

#[test]
fn every_capture_draws_in_every_text_format() {
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
    assert!(caps.len() >= 15, "{caps:?}");
    for cap in caps {
        let name = cap.file_name().unwrap().to_string_lossy().to_string();
        for ext in ["txt", "mmd", "puml", "svg"] {
            let out = out_dir().join(format!("{name}.{ext}"));
            let bytes = diagram(&[cap.to_str().unwrap(), "--worst"], &out);
            let s = String::from_utf8(bytes).unwrap();
            assert!(s.contains("end of capture"), "{name}.{ext}:\n{s}");
            if ext == "svg" {
                parse_svg(&s);
            }
        }
    }
}

#[test]
fn unknown_connection_exits_1() {
    let cap = capture("01-client-closes-first.pcap");
    let cli = Cli::try_parse_from(["diagram", cap.to_str().unwrap(), "--conn", "99"]).unwrap();
    assert_eq!(run(&cli.diagram).unwrap(), 1);
}

#[test]
fn conn_and_worst_conflict() {
    assert!(Cli::try_parse_from(["diagram", "x.pcap", "--conn", "1", "--worst"]).is_err());
    assert!(Cli::try_parse_from(["diagram", "x.pcap", "--kind", "bogus"]).is_err());
}

/// The pictures in docs/diagrams.md: (capture, arguments, file under docs/diagrams/). Each
/// is `closewait diagram captures/<capture> <arguments> -o docs/diagrams/<file>`.
const DOCS: &[(&str, &[&str], &str)] = &[
    (
        "24-tomcat-httpclient-keepalive-ignored.pcap",
        &["--kind", "fin_then_rst"],
        "24-tomcat-httpclient-keepalive-ignored.svg",
    ),
    (
        "24-tomcat-httpclient-keepalive-ignored.pcap",
        &["--kind", "fin_then_rst"],
        "24-tomcat-httpclient-keepalive-ignored.txt",
    ),
    (
        "01-client-closes-first.pcap",
        &["--conn", "0"],
        "01-client-closes-first.svg",
    ),
    (
        "01-client-closes-first.pcap",
        &["--conn", "0"],
        "01-client-closes-first.png",
    ),
    (
        "01-client-closes-first.pcap",
        &["--conn", "0"],
        "01-client-closes-first.txt",
    ),
    (
        "02-server-idle-close-client-leak.pcap",
        &["--worst"],
        "02-server-idle-close-client-leak.svg",
    ),
    (
        "02-server-idle-close-client-leak.pcap",
        &["--worst"],
        "02-server-idle-close-client-leak.png",
    ),
    (
        "02-server-idle-close-client-leak.pcap",
        &["--worst"],
        "02-server-idle-close-client-leak.txt",
    ),
    (
        "02-server-idle-close-client-leak.pcap",
        &["--worst"],
        "02-server-idle-close-client-leak.mmd",
    ),
    (
        "02-server-idle-close-client-leak.pcap",
        &["--worst"],
        "02-server-idle-close-client-leak.puml",
    ),
    (
        "03-fin-timeout-then-rst.pcap",
        &["--kind", "fin_then_rst"],
        "03-fin-timeout-then-rst.svg",
    ),
    (
        "05-simultaneous-close.pcap",
        &["--conn", "0"],
        "05-simultaneous-close.svg",
    ),
    ("11-half-close.pcap", &["--conn", "0"], "11-half-close.svg"),
    (
        "11-half-close.pcap",
        &["--conn", "0", "--all", "--absolute"],
        "11-half-close-all-absolute.txt",
    ),
    (
        "13-http-keepalive-reuse.pcap",
        &["--worst", "--time", "linear"],
        "13-http-keepalive-reuse-linear.svg",
    ),
    (
        "21-bulk-download-then-close.pcap",
        &["--worst"],
        "21-bulk-download-then-close.svg",
    ),
    (
        "21-bulk-download-then-close.pcap",
        &["--worst"],
        "21-bulk-download-then-close.txt",
    ),
    (
        "09-syn-timeout.pcap",
        &["--worst", "--ascii"],
        "09-syn-timeout-ascii.txt",
    ),
];

/// docs/diagrams/ holds exactly what the commands make today; `CLOSEWAIT_UPDATE_DOCS=1
/// cargo test --test it diagram::docs` rewrites it.
#[test]
fn docs_diagrams_are_made_from_the_shipped_captures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = root.join("docs").join("diagrams");
    let update = std::env::var_os("CLOSEWAIT_UPDATE_DOCS").is_some();
    let page = std::fs::read_to_string(root.join("docs").join("diagrams.md")).unwrap_or_default();
    let mut stale = Vec::new();
    for (cap, args, file) in DOCS {
        let fresh_path = out_dir().join(format!("docs-{file}"));
        let mut argv = vec![capture(cap).to_str().unwrap().to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(|s| s.as_str()).collect();
        let fresh = diagram(&argv, &fresh_path);
        let committed = docs.join(file);
        if update {
            if file.ends_with(".svg") {
                // A raster copy to look at, as a person would.
                let svg = String::from_utf8(fresh.clone()).unwrap();
                let png = closewait::render::diagram::png::rasterize(&svg, 1.0).unwrap();
                std::fs::write(out_dir().join(format!("look-{file}.png")), png).unwrap();
            }
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(&committed, &fresh).unwrap();
            continue;
        }
        if file.ends_with(".png") {
            let png = std::fs::read(&committed).unwrap_or_default();
            if resvg::tiny_skia::Pixmap::decode_png(&png).is_err() {
                stale.push(file.to_string());
            }
        } else if std::fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
            stale.push(file.to_string());
        }
        let cmd = format!(
            "closewait diagram captures/{cap} {}-o docs/diagrams/{file}",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        );
        assert!(
            page.contains(&cmd),
            "docs/diagrams.md does not show `{cmd}`"
        );
        if file.ends_with(".mmd") || file.ends_with(".txt") {
            let body = String::from_utf8(fresh).unwrap();
            assert!(
                page.contains(&body),
                "docs/diagrams.md lacks the output of `{cmd}`"
            );
        }
    }
    assert!(
        stale.is_empty(),
        "stale docs/diagrams files {stale:?}: run CLOSEWAIT_UPDATE_DOCS=1 cargo test --test it diagram::docs"
    );
}

/// The dark scheme, forced on (as a browser preferring dark would apply it): the background
/// turns dark and the text light, so the figure reads on a dark page too.
#[test]
fn dark_scheme_turns_background_dark_and_text_light() {
    let svg = text_of("02-server-idle-close-client-leak.pcap", &["--worst"], "svg");
    let open = "@media (prefers-color-scheme: dark){";
    let start = svg.find(open).expect("a dark-scheme rule");
    let end = svg[start..].find("}}").unwrap() + start;
    let forced = format!(
        "{}{}{}",
        &svg[..start],
        &svg[start + open.len()..=end],
        &svg[end + 2..]
    );
    let png = closewait::render::diagram::png::rasterize(&forced, 1.0).unwrap();
    std::fs::write(out_dir().join("look-dark.png"), &png).unwrap();
    let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
    let at = |x: u32, y: u32| pixmap.pixel(x, y).unwrap();
    let bg = at(10, pixmap.height() / 2);
    assert!(bg.red() < 40 && bg.green() < 40 && bg.blue() < 40, "{bg:?}");
    let light = pixmap
        .pixels()
        .iter()
        .filter(|p| p.red() > 200 && p.green() > 200 && p.blue() > 200)
        .count();
    assert!(
        light > 2000,
        "only {light} light pixels: is the text still dark?"
    );
}
