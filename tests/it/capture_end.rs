//! The end of the capture is not always the last packet: a pcapng's interface statistics
//! (`isb_endtime`) or the user (`--capture-end`) may know better, and connections still
//! open are measured to it. On `captures/22-pcapng-dumpcap-end-after-last-packet.pcapng`,
//! recorded with dumpcap left running 3.26 s after the last packet.

use assert_cmd::Command;
use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::model::Side;
use closewait::render::chart::states::{counts_at, sweep};
use closewait::render::chart::Span;
use closewait::state::TcpState;
use serde_json::Value;
use std::path::Path;

use crate::support::paths;

const CAPTURE: &str = "captures/22-pcapng-dumpcap-end-after-last-packet.pcapng";

fn analyze_json(extra: &[&str]) -> (Option<i32>, Value, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::cargo_bin("closewait")
        .expect("binary")
        .args(["analyze", "--json"])
        .args(extra)
        .arg(root.join(CAPTURE))
        .output()
        .expect("runs");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dumpcap_interface_statistics_end_measures_the_close_wait_to_it() {
    let (code, doc, _) = analyze_json(&[]);
    assert_eq!(code, Some(0));
    let cap = &doc["capture"];
    assert_eq!(cap["end_source"], "interface_statistics");
    assert_eq!(cap["last_ts"], 1796475227.8292222);
    assert_eq!(cap["end"], 1796475231.089964);
    let close = &doc["connections"][0]["close"];
    assert_eq!(close["who_failed_to_respond"], "client");
    assert_eq!(close["waiting_for"], 3.304689215);
    assert_eq!(doc["connections"][0]["client_state"], "CLOSE_WAIT");
}

#[test]
fn capture_end_given_by_the_user_wins() {
    let (code, doc, _) = analyze_json(&["--capture-end", "2026-12-05T13:00:00Z"]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["capture"]["end_source"], "user");
    assert_eq!(doc["capture"]["end"], 1796475600.0);
    assert_eq!(doc["connections"][0]["close"]["waiting_for"], 372.214725215);
}

#[test]
fn capture_end_before_the_last_packet_is_refused() {
    let (code, _, err) = analyze_json(&["--capture-end", "1796475227.5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("before the last packet"), "{err}");
}

#[test]
fn capture_end_that_is_no_time_is_refused() {
    let (code, _, err) = analyze_json(&["--capture-end", "2026-12-05T11:40:00"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("RFC 3339 with an offset"), "{err}");
}

/// Runs `closewait <args> CAPTURE` and returns its exit code and standard output.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::cargo_bin("closewait")
        .expect("binary")
        .args(args)
        .arg(root.join(CAPTURE))
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The ladder's last row: the end of the capture, with each side's state then.
fn diagram_end_row(extra: &[&str]) -> String {
    let mut args = vec!["diagram", "-f", "text"];
    args.extend_from_slice(extra);
    let (code, text) = run(&args);
    assert_eq!(code, Some(0), "{text}");
    text.lines()
        .find(|l| l.contains("end of capture"))
        .unwrap_or_else(|| panic!("no end row in\n{text}"))
        .to_string()
}

#[test]
fn diagram_runs_the_close_wait_to_the_interface_statistics_end() {
    // Last packet (the client's ACK of the FIN) at 1.045 s; dumpcap stopped 3.26 s later.
    let row = diagram_end_row(&[]);
    assert!(row.trim_start().starts_with("4.306112    end"), "{row}");
    assert!(row.contains("CLOSE_WAIT ║"), "{row}");
    assert!(row.ends_with("│ FIN_WAIT_2"), "{row}");
}

#[test]
fn diagram_runs_to_the_capture_end_the_user_gives() {
    // 1796475600.0 is 13:00:00Z; the capture starts at 1796475226.784.
    let row = diagram_end_row(&["--capture-end", "2026-12-05T13:00:00Z"]);
    assert!(row.trim_start().starts_with("373.21"), "{row}");
    assert!(row.contains("CLOSE_WAIT ║"), "{row}");
}

/// The x axis's tick labels of a chart's first panel (seconds since the start).
fn x_ticks(svg: &str) -> Vec<f64> {
    let texts: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>'))
        .filter_map(|(_, rest)| rest.split_once("</text>"))
        .map(|(inner, _)| inner.trim())
        .collect();
    // After the axis title: the y ticks (0, 1, 2), then the x ticks, then the legend.
    let from = texts
        .iter()
        .position(|t| t.starts_with("time since the start"))
        .expect("x axis title");
    let numbers: Vec<f64> = texts[from + 1..]
        .iter()
        .map_while(|t| t.parse().ok())
        .collect();
    numbers[3..].to_vec()
}

#[test]
fn states_chart_runs_to_the_interface_statistics_end() {
    let out = paths::out_dir("capture-end-tests").join("states.svg");
    let (code, _) = run(&["chart", "-t", "states", "-o", out.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    let svg = std::fs::read_to_string(&out).unwrap();
    // The axis spans 4.306 s (to dumpcap's end), not 1.045 s (to the last packet).
    assert_eq!(x_ticks(&svg), [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
    assert!(svg.contains("CLOSE_WAIT (max 1, 1 at end)"), "{svg}");
}

#[test]
fn chart_span_ends_at_the_interface_statistics_end() {
    let mut reports = Vec::new();
    let stats = analyze(
        &[InputSpec::Path(paths::capture(
            "22-pcapng-dumpcap-end-after-last-packet.pcapng",
        ))],
        &AnalyzeOptions::default(),
        &mut |r| reports.push(r),
    )
    .unwrap();
    let span = Span::of(&reports, &stats);
    assert_eq!(span.end, 1796475231.089964);
    // The client's CLOSE_WAIT, from the ACK of the FIN, is still counted at that end.
    let steps = sweep(&reports, Side::Client);
    let close_wait = TcpState::ALL
        .iter()
        .position(|s| *s == TcpState::CloseWait)
        .unwrap();
    assert_eq!(counts_at(&steps, span.end)[close_wait], 1);
}
