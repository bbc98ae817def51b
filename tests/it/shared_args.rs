//! Every command that reads captures takes the same argument group (inputs, filters, time
//! window, analysis knobs) and says the same things about its input and its output: run
//! through the binary, command by command, on shipped captures.

use crate::support::paths;

use assert_cmd::Command;
use paths::{capture, out_dir};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// Each capture-reading command, with the arguments it needs besides the capture.
const COMMANDS: &[(&str, &[&str])] = &[
    ("analyze", &[]),
    ("diagnose", &[]),
    ("chart", &["-t", "states"]),
    ("graph", &[]),
    ("diagram", &[]),
    ("report", &[]),
];

fn closewait() -> Command {
    Command::cargo_bin("closewait").expect("binary built")
}

/// `closewait CMD EXTRA… CAPTURE ARGS…`, with its status, stdout and stderr.
fn run(cmd: &str, extra: &[&str], input: &Path, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
    let out = closewait()
        .arg(cmd)
        .args(extra)
        .arg(input)
        .args(args)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{cmd}: {stderr}");
    (out.status.code(), out.stdout, stderr)
}

fn analyze_json(inputs: &[PathBuf], args: &[&str]) -> Value {
    let out = closewait()
        .arg("analyze")
        .args(inputs)
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{args:?}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn every_command_accepts_every_shared_flag() {
    let cap = capture("01-client-closes-first.pcap");
    // The capture runs from 1795579312.937 to 1795579313.159.
    let flags: &[&[&str]] = &[
        &["--time-wait", "240"],
        &["--strict"],
        &["--max-connections", "10"],
        &["--capture-end", "1795579320"],
        &["--host", "10.77.0.0/16"],
        &["--host", "10.77.0.2"],
        &["--port", "8788"],
        &["--kind", "graceful"],
        &["--state", "TIME_WAIT"],
        &["--from", "1795579312"],
        &["--until", "2027-01-01T00:00:00Z"],
    ];
    for (cmd, extra) in COMMANDS {
        for flag in flags {
            let (code, stdout, stderr) = run(cmd, extra, &cap, flag);
            assert_eq!(code, Some(0), "{cmd} {flag:?}: {stderr}");
            assert!(!stdout.is_empty(), "{cmd} {flag:?} wrote nothing");
        }
    }
}

#[test]
fn time_wait_and_the_window_are_validated_the_same_everywhere() {
    let cap = capture("01-client-closes-first.pcap");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--time-wait=-1"],
            "'-1' is not a number of seconds (0 or more)",
        ),
        (
            &["--time-wait", "soon"],
            "'soon' is not a number of seconds (0 or more)",
        ),
        (
            &["--max-connections", "0"],
            "'0' is not a number of connections",
        ),
        (&["--host", "10.1.2.3/8"], "did you mean 10.0.0.0/8?"),
        (&["--from", "yesterday"], "'yesterday' is not a time"),
        (
            &["--from", "1795579313", "--until", "1795579313"],
            "closewait: --from (1795579313) must be before --until (1795579313): the window \
             would hold no packet",
        ),
    ];
    for (cmd, extra) in COMMANDS {
        for (args, message) in cases {
            let (code, stdout, stderr) = run(cmd, extra, &cap, args);
            assert_eq!(code, Some(2), "{cmd} {args:?}");
            assert!(stdout.is_empty(), "{cmd} {args:?}");
            assert!(stderr.contains(message), "{cmd} {args:?}: {stderr}");
        }
    }
}

/// Ids, clients and servers of the connections in an analyze JSON document.
fn connections(doc: &Value) -> Vec<(u64, String, String)> {
    doc["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().expect("id"),
                c["client"].as_str().expect("client").to_string(),
                c["server"].as_str().expect("server").to_string(),
            )
        })
        .collect()
}

#[test]
fn host_cidr_selects_the_connections_of_that_network() {
    // Merged: a connection between 10.77.0.1 and 10.77.0.2 (id 0), then one on loopback.
    let inputs = [
        capture("01-client-closes-first.pcap"),
        capture("15b-loopback.pcap"),
    ];
    let both = connections(&analyze_json(&inputs, &[]));
    assert_eq!(both.len(), 2);
    let lan = connections(&analyze_json(&inputs, &["--host", "10.0.0.0/8"]));
    assert_eq!(
        lan,
        [(0, "10.77.0.1:37334".into(), "10.77.0.2:8788".into())]
    );
    let lo = connections(&analyze_json(&inputs, &["--host", "127.0.0.0/8"]));
    assert_eq!(lo, [(1, "127.0.0.1:53404".into(), "127.0.0.1:8788".into())]);
    let doc = analyze_json(&inputs, &["--host", "10.77.0.2,127.0.0.0/8"]);
    assert_eq!(connections(&doc).len(), 2, "values are alternatives");
    assert_eq!(
        doc["filter"]["host"],
        serde_json::json!(["10.77.0.2", "127.0.0.0/8"])
    );
    assert!(connections(&analyze_json(&inputs, &["--host", "2001:db8::/32"])).is_empty());
}

#[test]
fn until_cuts_the_capture_and_leaves_its_connections_open() {
    // 50 pooled connections; the server closes them from about 1.03 s into the capture.
    let cap = [capture("12-pool-leak-many.pcap")];
    let whole = analyze_json(&cap, &[]);
    assert_eq!(whole["summary"]["by_kind"]["unanswered_fin"], 45);
    assert_eq!(whole["capture"]["packets"]["tcp"], 455);

    let doc = analyze_json(&cap, &["--until", "1795579352.8"]);
    let c = &doc["capture"];
    assert_eq!(c["packets"]["total"], 455);
    assert_eq!(c["packets"]["tcp"], 352);
    assert_eq!(c["packets"]["skipped"]["outside_window"], 103);
    assert_eq!(c["end"], 1795579352.8);
    assert_eq!(c["end_source"], "until");
    assert_eq!(c["window"]["until"], 1795579352.8);
    assert_eq!(c["window"]["from"], Value::Null);
    let kinds = &doc["summary"]["by_kind"];
    assert_eq!(kinds["open"], 48);
    // The two whose FIN the server had sent have no answer by --until.
    assert_eq!(kinds["unanswered_fin"], 2);
    assert_eq!(connections(&doc).len(), 50);
    // The two the server had begun to close are caught in FIN_WAIT_1 at --until.
    let fin_wait_1 = doc["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["server_state"] == "FIN_WAIT_1")
        .count();
    assert_eq!(fin_wait_1, 2);
}

#[test]
fn from_skips_the_packets_before_it() {
    let cap = [capture("12-pool-leak-many.pcap")];
    let doc = analyze_json(&cap, &["--from", "1795579352.8"]);
    let c = &doc["capture"];
    assert_eq!(c["packets"]["tcp"], 103);
    assert_eq!(c["packets"]["skipped"]["outside_window"], 352);
    assert_eq!(c["end_source"], "last_packet");
    assert_eq!(doc["summary"]["by_kind"]["unanswered_fin"], 45);
    // The window is the same through diagnose: its JSON capture block says so.
    let out = closewait()
        .arg("diagnose")
        .arg(&cap[0])
        .args(["--json", "--until", "1795579352.8"])
        .output()
        .expect("runs");
    let diag: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(diag["capture"]["packets"]["skipped"]["outside_window"], 103);
    assert_eq!(diag["capture"]["end_source"], "until");
}

#[test]
fn an_output_extension_no_format_of_the_command_has_is_refused() {
    let dir = out_dir("shared-args-extension");
    let cap = capture("01-client-closes-first.pcap");
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "analyze",
            &[],
            "x.xml",
            ".txt, .text, .json, .jsonl, .ndjson",
        ),
        (
            "diagnose",
            &[],
            "x.pdf",
            ".txt, .text, .json, .md, .markdown",
        ),
        ("chart", &["-t", "states"], "x.jpg", ".svg, .png"),
        ("graph", &[], "g.pdf", ".dot, .gv, .svg, .png"),
        ("diagram", &[], "d.gif", ".svg, .png, .txt"),
        ("report", &[], "r.pdf", ".html, .htm"),
    ];
    for (cmd, extra, name, accepted) in cases {
        let target = dir.join(name);
        let (code, _, stderr) = run(cmd, extra, &cap, &["-o", target.to_str().expect("utf-8")]);
        assert_eq!(code, Some(2), "{cmd} -o {name}");
        assert!(
            stderr.contains(&format!("{cmd} does not write")) && stderr.contains(accepted),
            "{cmd}: {stderr}"
        );
        assert!(!target.exists(), "{cmd} wrote {name}");
    }
}

#[test]
fn an_explicit_format_is_written_whatever_the_extension() {
    let dir = out_dir("shared-args-format");
    let cap = capture("01-client-closes-first.pcap");
    let cases: &[(&str, &[&str], &str, &str)] = &[
        ("analyze", &["--json"], "x.out", "{"),
        ("diagnose", &["--format", "json"], "x.pdf", "{"),
        (
            "chart",
            &["-t", "states", "--format", "svg"],
            "x.jpg",
            "<svg",
        ),
        ("graph", &["--format", "dot"], "g.pdf", "// closewait graph"),
        (
            "diagram",
            &["--format", "mermaid"],
            "d.gif",
            "sequenceDiagram",
        ),
        ("report", &["--format", "html"], "r.pdf", "<!DOCTYPE html>"),
    ];
    for (cmd, extra, name, starts) in cases {
        let target = dir.join(name);
        let (code, _, stderr) = run(cmd, extra, &cap, &["-o", target.to_str().expect("utf-8")]);
        assert_eq!(code, Some(0), "{cmd}: {stderr}");
        let written = fs::read_to_string(&target).expect("written");
        assert!(
            written.trim_start().starts_with(starts),
            "{cmd}: {written:.80}"
        );
    }
}

#[test]
fn output_over_an_input_capture_is_refused_by_every_command() {
    let dir = out_dir("shared-args-overwrite");
    let original = fs::read(capture("01-client-closes-first.pcap")).expect("capture");
    for (cmd, extra) in COMMANDS {
        let cap = dir.join(format!("{cmd}.pcap"));
        fs::write(&cap, &original).expect("copy");
        // Named another way, and with --format so the extension is no excuse.
        let via = dir.join(".").join(format!("{cmd}.pcap"));
        let args = to_file(cmd, &via);
        let (code, stdout, stderr) = run(cmd, extra, &cap, &args);
        assert_eq!(code, Some(2), "{cmd}: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("refusing to write the output over an input capture"),
            "{cmd}: {stderr}"
        );
        assert_eq!(fs::read(&cap).expect("still there"), original, "{cmd}");
    }
}

/// `-o target` with the command's format chosen explicitly (so the name is no excuse).
fn to_file<'a>(cmd: &str, target: &'a Path) -> Vec<&'a str> {
    let format: &[&str] = match cmd {
        "analyze" => &["--json"],
        "diagnose" => &["--format", "json"],
        "report" => &["--format", "html"],
        _ => &["--format", "svg"],
    };
    let mut args = vec!["-o", target.to_str().expect("utf-8")];
    args.extend_from_slice(format);
    args
}

/// captures/02 cut inside its sixth record (at byte 486): five packets kept.
fn cut_capture(dir: &Path) -> PathBuf {
    let bytes = fs::read(capture("02-server-idle-close-client-leak.pcap")).expect("capture");
    let cut = dir.join("cut.pcap");
    fs::write(&cut, &bytes[..516]).expect("write");
    cut
}

#[test]
fn every_command_warns_about_a_truncated_capture_and_strict_makes_it_exit_2() {
    let dir = out_dir("shared-args-truncated");
    let cut = cut_capture(&dir);
    let warning = format!(
        "closewait: warning: {}: capture cut short at byte offset 486 (record data cut short \
         (14 of 130 bytes)); stopped reading this file and kept the 5 packet(s) before it",
        cut.display()
    );
    let damaged = format!(
        "closewait: {}: capture damaged (see the warnings); --strict makes that an error, the \
         results up to the damage were written",
        cut.display()
    );
    for (cmd, extra) in COMMANDS {
        let target = dir.join(format!("{cmd}.out"));
        let mut args = to_file(cmd, &target);
        let (code, _, stderr) = run(cmd, extra, &cut, &args);
        assert_eq!(code, Some(0), "{cmd}: {stderr}");
        assert_eq!(stderr.matches(&warning).count(), 1, "{cmd}: {stderr}");
        assert!(target.exists(), "{cmd}: results up to the damage");

        fs::remove_file(&target).expect("remove");
        args.push("--strict");
        let (code, _, stderr) = run(cmd, extra, &cut, &args);
        assert_eq!(code, Some(2), "{cmd} --strict: {stderr}");
        assert!(
            stderr.contains(&warning) && stderr.contains(&damaged),
            "{cmd}: {stderr}"
        );
        assert!(target.exists(), "{cmd} --strict still writes the results");
    }
}

#[test]
fn every_command_says_when_no_packet_could_be_read() {
    // captures/01 with its link type changed to ARCNET (7): TCP inside, none of it read.
    let dir = out_dir("shared-args-arcnet");
    let mut bytes = fs::read(capture("01-client-closes-first.pcap")).expect("capture");
    bytes[20..24].copy_from_slice(&7u32.to_le_bytes());
    let arcnet = dir.join("arcnet.pcap");
    fs::write(&arcnet, &bytes).expect("write");
    for (cmd, extra) in COMMANDS {
        let target = dir.join(format!("{cmd}.out"));
        let args = to_file(cmd, &target);
        let (_, _, stderr) = run(cmd, extra, &arcnet, &args);
        assert!(
            stderr.contains("closewait: warning: none of the")
                && stderr.contains("packets could be read: every one is of a link type"),
            "{cmd}: {stderr}"
        );
    }
}
