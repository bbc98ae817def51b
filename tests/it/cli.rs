//! End-to-end tests of the `closewait` binary.
//!
//! The first group needs no analysis (usage errors, refusing to overwrite an input); the
//! second runs the whole pipeline on the shipped captures.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const LEAK: &str = "captures/02-server-idle-close-client-leak.pcap";

fn closewait() -> Command {
    Command::cargo_bin("closewait").expect("binary built")
}

fn capture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A fresh directory under the system temp dir, unique to this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("closewait-e2e-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

// ---- usage: no analysis needed ----------------------------------------------------

#[test]
fn no_subcommand_is_a_usage_error() {
    closewait()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage:").and(no_panic()));
}

/// With standard input a terminal (a pseudo-terminal from `script`, where installed), a
/// command given no capture is clap's usage error rather than waiting for typed bytes.
#[test]
fn analyze_without_capture_on_a_terminal_is_a_usage_error() {
    let Some(out) = crate::support::cli::on_a_terminal(&["analyze"]) else {
        return;
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("the following required arguments were not provided"));
    assert!(shown.contains("<CAPTURE>"), "{shown}");
}

#[test]
fn analyze_without_capture_and_empty_stdin_names_standard_input() {
    closewait()
        .arg("analyze")
        .write_stdin(Vec::new())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "standard input: not a capture file: an empty file",
        ));
}

#[test]
fn unknown_kind_lists_the_kinds() {
    closewait()
        .args(["analyze", "x.pcap", "--kind", "polite"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown close kind 'polite'")
                .and(predicate::str::contains("unanswered_fin")),
        );
}

#[test]
fn unknown_state_lists_the_states() {
    closewait()
        .args(["analyze", "x.pcap", "--state", "HALF_OPEN"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown TCP state 'HALF_OPEN'")
                .and(predicate::str::contains("CLOSE_WAIT")),
        );
}

#[test]
fn json_and_jsonl_together_are_a_usage_error() {
    closewait()
        .args(["analyze", "x.pcap", "--json", "--jsonl"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn stdin_twice_is_a_usage_error() {
    closewait()
        .args(["analyze", "-", "-"])
        .assert()
        .code(2)
        .stderr(predicate::eq(
            "closewait: standard input (-) can be read only once\n",
        ));
}

#[test]
fn help_documents_options_and_exit_statuses() {
    closewait()
        .args(["analyze", "--help"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("--jsonl")
                .and(predicate::str::contains("--time-wait <SECS>"))
                .and(predicate::str::contains("--state <S>"))
                .and(predicate::str::contains("Exit status: 0 success")),
        );
}

#[test]
fn output_over_input_capture_is_refused_and_input_untouched() {
    let dir = scratch("refuse");
    let cap = dir.join("in.pcap");
    fs::write(&cap, b"precious").expect("write");
    closewait()
        .arg("analyze")
        .arg(&cap)
        .arg("-o")
        .arg(&cap)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::eq(format!(
            "closewait: {}: refusing to write the output over an input capture\n",
            cap.display()
        )));
    assert_eq!(fs::read(&cap).expect("read"), b"precious");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn output_into_missing_directory_exits_2() {
    let dir = scratch("missing");
    let out = dir.join("no-such-dir").join("out.json");
    closewait()
        .args(["analyze", "x.pcap", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with(format!("closewait: {}: ", out.display())).and(no_panic()),
        );
    let _ = fs::remove_dir_all(&dir);
}

// ---- shell completions and the manual page --------------------------------------

/// Every subcommand's name, from the same clap definition the binary parses.
fn subcommand_names() -> Vec<String> {
    use clap::CommandFactory;
    let names: Vec<String> = closewait::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(
        names.len() >= 9,
        "analyze … report, completions, man: {names:?}"
    );
    names
}

fn stdout_of(args: &[&str]) -> String {
    crate::support::cli::stdout_of(args)
}

#[test]
fn bash_completion_names_every_subcommand() {
    let script = stdout_of(&["completions", "bash"]);
    assert!(script.contains("complete -F _closewait"), "{script}");
    // The top-level word list offers every subcommand.
    let top = script
        .lines()
        .find(|l| l.contains("opts=\"") && l.contains("analyze"))
        .expect("the subcommand word list");
    for name in subcommand_names() {
        assert!(
            top.split(|c: char| c.is_whitespace() || c == '"')
                .any(|w| w == name),
            "{name} missing from {top}"
        );
    }
    // And each one's own options (`analyze --json`, `chart --type`).
    assert!(
        script.contains("closewait__subcmd__analyze)"),
        "analyze has its own case"
    );
    assert!(script.contains("--json"));
    assert!(script.contains("--type"));
}

#[test]
fn every_shell_gets_a_completion_script() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains("diagnose"), "{shell}: {script}");
    }
}

#[test]
fn unknown_shell_is_a_usage_error_listing_the_shells() {
    closewait()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bash").and(predicate::str::contains("zsh")));
}

/// The roff requests a clap page uses: a line starting with `.` must be one of these,
/// else `man` would print it as text or drop it.
fn assert_roff(page: &str) {
    const REQUESTS: &[&str] = &[
        ".TH", ".SH", ".SS", ".TP", ".PP", ".P", ".IP", ".RS", ".RE", ".br", ".sp", ".nf", ".fi",
        ".ie", ".el", ".ds", ".B", ".I", ".EX", ".EE",
    ];
    assert!(
        page.lines().any(|l| l.starts_with(".TH ")),
        "no title: {page}"
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS"] {
        assert!(page.lines().any(|l| l == section), "{section} missing");
    }
    for line in page.lines().filter(|l| l.starts_with('.')) {
        let request = line.split_whitespace().next().unwrap_or(line);
        assert!(REQUESTS.contains(&request), "unknown roff request {line:?}");
    }
}

/// `man -l` renders the page without a warning, where `man` is installed.
fn assert_man_renders(page_file: &Path, expect: &str) {
    let Ok(out) = std::process::Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(page_file)
        .env("MANWIDTH", "80")
        .output()
    else {
        eprintln!("man not installed: rendering not checked");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(expect));
}

#[test]
fn man_page_is_roff_naming_every_subcommand() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH closewait 1"), "{page}");
    assert_roff(&page);
    for name in subcommand_names() {
        assert!(
            page.contains(&format!("closewait\\-{name}(1)")),
            "{name} missing"
        );
    }
    let dir = scratch("man");
    let file = dir.join("closewait.1");
    fs::write(&file, &page).unwrap();
    assert_man_renders(&file, "closewait-diagnose(1)");
}

#[test]
fn man_out_writes_one_page_per_subcommand() {
    let dir = scratch("man-out").join("man1");
    closewait()
        .args(["man", "--out"])
        .arg(&dir)
        .assert()
        .code(0)
        .stdout("");
    let mut names = vec!["closewait".to_string()];
    names.extend(subcommand_names().iter().map(|n| format!("closewait-{n}")));
    for name in &names {
        let file = dir.join(format!("{name}.1"));
        let page = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{name}.1: {e}"));
        assert_roff(&page);
    }
    // A subcommand's page documents its own options.
    let analyze = fs::read_to_string(dir.join("closewait-analyze.1")).unwrap();
    assert!(analyze.contains("\\-\\-jsonl"), "{analyze}");
    assert_man_renders(&dir.join("closewait-analyze.1"), "--jsonl");
}

// ---- the pipeline on real captures (needs the reader and analyze() on main) ---------

fn json_of(args: &[&str]) -> Value {
    let out = closewait().args(args).assert().code(0).get_output().clone();
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

#[test]
fn server_idle_close_client_leak_text_shows_close_wait_table() {
    closewait()
        .args(["analyze", LEAK])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .assert()
        .code(0)
        .stderr("")
        .stdout(
            predicate::str::starts_with("id  client")
                .and(predicate::str::contains("unanswered_fin"))
                .and(
                    predicate::str::is_match(r"\n  client side  CLOSE_WAIT +\d+  → ")
                        .expect("regex"),
                )
                .and(
                    predicate::str::is_match(r"\n  server side  FIN_WAIT_2 +\d+  → ")
                        .expect("regex"),
                )
                .and(predicate::str::contains("\ncapture\n")),
        );
}

#[test]
fn server_idle_close_client_leak_json_names_client_as_non_responder() {
    let doc = json_of(&[
        "analyze",
        capture(LEAK).to_str().expect("utf-8 path"),
        "--json",
    ]);
    let conns = doc["connections"].as_array().expect("connections array");
    assert!(!conns.is_empty());
    let ids: Vec<u64> = conns
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "connections sorted by id");
    assert_eq!(
        doc["summary"]["connections"].as_u64(),
        Some(conns.len() as u64)
    );
    assert_eq!(doc["filter"]["total"].as_u64(), Some(conns.len() as u64));

    let leaks: Vec<&Value> = conns
        .iter()
        .filter(|c| c["close"]["kind"] == "unanswered_fin")
        .collect();
    assert!(!leaks.is_empty(), "the leak is found");
    for c in &leaks {
        assert_eq!(c["close"]["initiator"], "server");
        assert_eq!(c["close"]["who_failed_to_respond"], "client");
        assert_eq!(c["client_state"], "CLOSE_WAIT");
        assert_eq!(c["server_state"], "FIN_WAIT_2");
        assert!(c["close"]["waiting_for"].as_f64().expect("waiting_for") >= 0.0);
    }
    assert_eq!(
        doc["summary"]["by_kind"]["unanswered_fin"].as_u64(),
        Some(leaks.len() as u64)
    );
    assert!(doc["summary"]["longest_close_wait"]["id"].is_u64());
}

#[test]
fn jsonl_lines_match_json_document() {
    let path = capture(LEAK);
    let path = path.to_str().expect("utf-8 path");
    let doc = json_of(&["analyze", path, "--json"]);
    let out = closewait()
        .args(["analyze", path, "--jsonl"])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let (last, conns) = lines.split_last().expect("at least the summary line");
    assert_eq!(last["type"], "summary");
    assert!(conns.iter().all(|c| c["type"] == "connection"));
    assert_eq!(last["summary"], doc["summary"]);
    assert_eq!(last["capture"], doc["capture"]);

    let mut ids: Vec<u64> = conns
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    ids.sort_unstable();
    let doc_ids: Vec<u64> = doc["connections"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, doc_ids);
}

#[test]
fn state_filter_keeps_only_close_wait_and_summary_follows() {
    let path = capture(LEAK);
    let doc = json_of(&[
        "analyze",
        path.to_str().expect("utf-8 path"),
        "--json",
        "--state",
        "close-wait",
    ]);
    let conns = doc["connections"].as_array().expect("array");
    assert!(!conns.is_empty());
    for c in conns {
        assert!(c["client_state"] == "CLOSE_WAIT" || c["server_state"] == "CLOSE_WAIT");
    }
    assert_eq!(doc["filter"]["state"], serde_json::json!(["CLOSE_WAIT"]));
    assert_eq!(doc["filter"]["matched"].as_u64(), Some(conns.len() as u64));
    assert_eq!(
        doc["summary"]["connections"].as_u64(),
        Some(conns.len() as u64)
    );
    assert!(doc["filter"]["total"].as_u64() >= Some(conns.len() as u64));

    closewait()
        .args([
            "analyze",
            path.to_str().expect("utf-8 path"),
            "--state",
            "CLOSE_WAIT",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "match the filter (state=CLOSE_WAIT); all counts below cover only those",
        ));
}

#[test]
fn stdin_gives_the_same_connections_as_the_file() {
    let path = capture(LEAK);
    let from_file = json_of(&["analyze", path.to_str().expect("utf-8 path"), "--json"]);
    let out = closewait()
        .args(["analyze", "-", "--json"])
        .pipe_stdin(&path)
        .expect("open capture")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let from_stdin: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(from_stdin["connections"], from_file["connections"]);
    assert_eq!(from_stdin["summary"], from_file["summary"]);
}

/// Runs `args` with `input` piped to standard input; stdout as JSON.
fn json_with_stdin(args: &[&str], input: &Path) -> Value {
    let out = closewait()
        .args(args)
        .pipe_stdin(input)
        .expect("open input")
        .assert()
        .code(0)
        .get_output()
        .clone();
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// `closewait COMMAND < capture`: no capture argument and standard input not a terminal
/// reads standard input, with the same results as naming the file.
#[test]
fn redirected_stdin_is_read_without_a_capture_argument() {
    let path = capture(LEAK);
    let file = path.to_str().expect("utf-8 path");

    let analyzed = json_with_stdin(&["analyze", "--json"], &path);
    assert_eq!(analyzed["capture"]["files"][0]["path"], "-");
    assert_eq!(analyzed["capture"]["files"][0]["packets"], 9);
    let connections = analyzed["connections"].as_array().expect("connections");
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["close"]["kind"], "unanswered_fin");
    assert_eq!(connections[0]["close"]["who_failed_to_respond"], "client");
    let from_file = json_of(&["analyze", file, "--json"]);
    assert_eq!(analyzed["connections"], from_file["connections"]);

    let diagnosed = json_with_stdin(&["diagnose", "--json"], &path);
    let ids: Vec<&str> = diagnosed["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "close_wait_leak",
            "timeout_mismatch",
            "advertised_timeout",
            "idle_timeout",
            "connection_reuse"
        ]
    );
    assert_eq!(
        diagnosed["findings"],
        json_of(&["diagnose", file, "--json"])["findings"]
    );
}

/// `ss -tanp | closewait netstat`: the listing from standard input as from the file.
#[test]
fn netstat_reads_redirected_stdin_without_a_file_argument() {
    let path = capture("tests/data/netstat/ss-tanp.txt");
    let piped = json_with_stdin(&["netstat", "--json"], &path);
    assert_eq!(piped["sockets"], 20);
    assert_eq!(piped["totals"]["CLOSE_WAIT"], 4);
    assert_eq!(
        piped,
        json_of(&["netstat", "--json", path.to_str().expect("utf-8 path")])
    );
}

#[test]
fn output_file_equals_stdout_and_leaves_no_temp_file() {
    let dir = scratch("out");
    let path = capture(LEAK);
    let path = path.to_str().expect("utf-8 path");
    let target = dir.join("report.json");
    fs::write(&target, b"old").expect("write");
    closewait()
        .args(["analyze", path, "-o"])
        .arg(&target)
        .assert()
        .code(0)
        .stdout("");
    let stdout = closewait()
        .args(["analyze", path, "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    // The .json extension picked the JSON format.
    assert_eq!(fs::read(&target).expect("read"), stdout);
    let names: Vec<_> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn text_output_is_byte_for_byte_deterministic() {
    let path = capture(LEAK);
    let run = || {
        closewait()
            .args(["analyze", path.to_str().expect("utf-8 path")])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn missing_capture_exits_2_naming_the_file() {
    closewait()
        .args(["analyze", "no-such-capture.pcap"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("closewait: no-such-capture.pcap: ").and(no_panic()));
}

#[test]
fn text_file_is_not_a_capture_exits_2() {
    let dir = scratch("notcap");
    let f = dir.join("notes.txt");
    fs::write(&f, b"this is not a capture file at all\n").expect("write");
    closewait().arg("analyze").arg(&f).assert().code(2).stderr(
        predicate::str::starts_with(format!("closewait: {}: ", f.display())).and(no_panic()),
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn closed_stdout_pipe_exits_quietly() {
    for format in [None, Some("--json"), Some("--jsonl")] {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("closewait"));
        cmd.args(["analyze", capture(LEAK).to_str().expect("utf-8 path")]);
        cmd.args(format);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the read end before the child writes: its writes fail with EPIPE.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "{format:?}: {stderr}");
        assert_eq!(stderr, "", "{format:?}");
    }
}

#[test]
fn diagram_subcommand_reads_stdin_and_draws_the_leak() {
    let capture = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures/02-server-idle-close-client-leak.pcap"),
    )
    .unwrap();
    let out = Command::cargo_bin("closewait")
        .unwrap()
        .args(["diagram", "-", "--format", "text", "--worst"])
        .write_stdin(capture)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CLOSE_WAIT"));
    assert!(text.contains("FIN_WAIT_2"));
    assert!(text.contains("… 1.000 s idle …"));
}

/// Every JSON document starts with `schema_version` (docs/json.md); the JSON Lines do not
/// carry it.
#[test]
fn every_json_document_starts_with_schema_version_and_jsonl_lines_do_not() {
    let leak = capture(LEAK);
    let leak = leak.to_str().expect("utf-8 path");
    let ss = capture("tests/data/netstat/ss-tanp.txt");
    let ss = ss.to_str().expect("utf-8 path");
    for args in [
        vec!["analyze", leak, "--json"],
        vec!["diagnose", leak, "--json"],
        vec!["netstat", ss, "--json"],
    ] {
        let text = stdout_of(&args);
        assert!(
            text.starts_with("{\n  \"schema_version\": 1,\n"),
            "{args:?}: {}",
            &text[..80.min(text.len())]
        );
    }
    for line in stdout_of(&["analyze", leak, "--jsonl"]).lines() {
        let line: Value = serde_json::from_str(line).expect("a JSON line");
        assert!(line.get("schema_version").is_none(), "{line}");
    }
}
