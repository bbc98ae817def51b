//! The binary on hostile and damaged input: each error message and warning of issue 7,
//! with its exit status, as a person (or a script) sees them.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One connection, 9 packets: records start at 24, 114, 204, 286, 404, 486, 632, 714, 796.
const LEAK: &str = "captures/02-server-idle-close-client-leak.pcap";
const SIXTH_RECORD: usize = 486;

fn closewait() -> Command {
    Command::cargo_bin("closewait").expect("binary built")
}

fn leak_bytes() -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(LEAK)).expect("capture")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("closewait-hostile-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

// ---- not a capture: say what it looks like, name the file, exit 2 ---------------------

#[test]
fn not_a_capture_says_what_it_looks_like_and_exits_2() {
    let dir = scratch("notcap");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("empty.pcap", Vec::new(), "not a capture file: an empty file"),
        (
            "notes.pcap",
            b"tcpdump: listening on eth0, link-type EN10MB\n".to_vec(),
            "not a capture file: text (starts with \"tcpdump: listening on eth0, link-type EN\"), \
             tcpdump's printed output rather than a capture: record with `tcpdump -w FILE`",
        ),
        (
            "download.pcap",
            b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n".to_vec(),
            "not a capture file: an HTML page (a web page saved in place of the capture? \
             download the file itself)",
        ),
        (
            "log.pcap.gz",
            gzip(b"Nov 25 04:00:00 host kernel: eth0 up\n"),
            "not a capture file: gzip-compressed data that is not a capture; decompressed, it is text",
        ),
        (
            "cut.pcap",
            leak_bytes()[..10].to_vec(),
            "not a capture file: a pcap file cut short in its header (10 of 24 bytes)",
        ),
    ];
    for (name, bytes, what) in cases {
        let f = dir.join(name);
        fs::write(&f, bytes).expect("write");
        closewait()
            .arg("analyze")
            .arg(&f)
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                predicate::str::starts_with(format!("closewait: {}: {what}", f.display()))
                    .and(no_panic()),
            );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn empty_standard_input_is_not_a_capture() {
    closewait()
        .args(["analyze", "-"])
        .write_stdin(Vec::<u8>::new())
        .assert()
        .code(2)
        .stdout("")
        .stderr("closewait: standard input: not a capture file: an empty file\n");
}

// ---- truncated or corrupt in the middle: results up to the damage, a warning, exit 0 ---

fn cut_leak(dir: &Path) -> PathBuf {
    let f = dir.join("cut.pcap");
    fs::write(&f, &leak_bytes()[..SIXTH_RECORD + 30]).expect("write");
    f
}

fn cut_warning(name: &str) -> String {
    format!(
        "{name}: capture cut short at byte offset {SIXTH_RECORD} (record data cut short (14 of \
         130 bytes)); stopped reading this file and kept the 5 packet(s) before it"
    )
}

#[test]
fn truncated_capture_is_analysed_up_to_the_cut_with_a_warning_in_text_and_json() {
    let dir = scratch("truncated");
    let f = cut_leak(&dir);
    let name = f.display().to_string();

    let text = closewait()
        .arg("analyze")
        .arg(&f)
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(
        stdout.contains("10.77.0.1:"),
        "the connection is listed:\n{stdout}"
    );
    assert!(
        stdout.ends_with(&format!("\nwarnings\n  {}\n", cut_warning(&name))),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8(text.stderr).unwrap(),
        "",
        "text on stdout already says it"
    );

    let json = closewait()
        .arg("analyze")
        .arg(&f)
        .arg("--json")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let doc: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["capture"]["warnings"][0], cut_warning(&name));
    assert_eq!(doc["capture"]["files"][0]["truncated"], true);
    assert_eq!(doc["capture"]["files"][0]["packets"], 5);
    // With JSON on stdout the person still sees the warning, on stderr.
    assert_eq!(
        String::from_utf8(json.stderr).unwrap(),
        format!("closewait: warning: {}\n", cut_warning(&name))
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn strict_makes_damage_exit_2_after_writing_the_results() {
    let dir = scratch("strict");
    let f = cut_leak(&dir);
    let name = f.display().to_string();
    let out = closewait()
        .arg("analyze")
        .arg(&f)
        .args(["--json", "--strict"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("results still written");
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.ends_with(&format!(
            "closewait: {name}: capture damaged (see the warnings); --strict makes that an \
             error, the results up to the damage were written\n"
        )),
        "{stderr}"
    );
    // Into a file: the file is whole, the status still 2.
    let target = dir.join("out.json");
    closewait()
        .arg("analyze")
        .arg(&f)
        .arg("--strict")
        .arg("-o")
        .arg(&target)
        .assert()
        .code(2);
    let doc: Value = serde_json::from_slice(&fs::read(&target).unwrap()).expect("whole JSON");
    assert_eq!(doc["capture"]["files"][0]["truncated"], true);
    // An undamaged capture passes --strict.
    closewait()
        .arg("analyze")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(LEAK))
        .arg("--strict")
        .assert()
        .code(0);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn standard_input_closed_early_is_a_truncation_warning() {
    let out = closewait()
        .args(["analyze", "-", "--json"])
        .write_stdin(leak_bytes()[..SIXTH_RECORD + 30].to_vec())
        .assert()
        .code(0)
        .get_output()
        .clone();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(1));
    assert_eq!(doc["capture"]["warnings"][0], cut_warning("standard input"));
    closewait()
        .args(["analyze", "-", "--strict"])
        .write_stdin(leak_bytes()[..SIXTH_RECORD + 30].to_vec())
        .assert()
        .code(2)
        .stderr(predicate::str::ends_with(
            "closewait: standard input: capture damaged (see the warnings); --strict makes \
             that an error, the results up to the damage were written\n",
        ));
}

#[test]
fn absurd_record_length_is_corruption_with_offset_not_an_allocation() {
    let dir = scratch("absurd");
    let mut bytes = leak_bytes();
    // The sixth record claims 2 GB.
    bytes[SIXTH_RECORD + 8..SIXTH_RECORD + 12].copy_from_slice(&2_000_000_000u32.to_le_bytes());
    let f = dir.join("absurd.pcap");
    fs::write(&f, &bytes).expect("write");
    let doc: Value = serde_json::from_slice(
        &closewait()
            .arg("analyze")
            .arg(&f)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    )
    .expect("JSON");
    assert_eq!(
        doc["capture"]["warnings"][0],
        format!(
            "{}: corrupt data at byte offset {SIXTH_RECORD} (record claims 2000000000 captured \
             bytes (snaplen 262144, at most 262144 believable)); stopped reading this file and \
             kept the 5 packet(s) before it",
            f.display()
        )
    );
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(1));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn unknown_link_type_and_bad_headers_are_skipped_with_counted_reasons() {
    let dir = scratch("skipped");
    let mut bytes = leak_bytes();
    // Link type 147 (USER0): nothing closewait can decode.
    bytes[20..24].copy_from_slice(&147u32.to_le_bytes());
    let f = dir.join("user0.pcap");
    fs::write(&f, &bytes).expect("write");
    let doc: Value = serde_json::from_slice(
        &closewait()
            .arg("analyze")
            .arg(&f)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    )
    .expect("JSON");
    assert_eq!(
        doc["capture"]["packets"]["skipped"]["unsupported_link_type"],
        9
    );
    assert_eq!(doc["connections"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        doc["capture"]["warnings"][0],
        format!(
            "{}: link type 147 (unknown) is not supported; its packets are counted as skipped \
             (unsupported_link_type)",
            f.display()
        )
    );

    // A TCP data offset below 5 words and an IPv4 header length below 5 words.
    let mut bytes = leak_bytes();
    let eth = 14;
    bytes[24 + 16 + eth + 20 + 12] = 0x30; // first record: TCP data offset 3
    bytes[114 + 16 + eth] = 0x43; // second record: IHL 3
    let f = dir.join("bad-headers.pcap");
    fs::write(&f, &bytes).expect("write");
    let doc: Value = serde_json::from_slice(
        &closewait()
            .arg("analyze")
            .arg(&f)
            .arg("--json")
            .assert()
            .code(0)
            .get_output()
            .stdout,
    )
    .expect("JSON");
    let skipped = &doc["capture"]["packets"]["skipped"];
    assert_eq!(skipped["bad_tcp_header"], 1, "{skipped}");
    assert_eq!(skipped["bad_ip_header"], 1, "{skipped}");
    assert_eq!(doc["capture"]["packets"]["tcp"], 7);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn output_that_cannot_be_written_exits_2_and_leaves_nothing() {
    let dir = scratch("unwritable");
    let target = dir.join("no-such-dir").join("out.json");
    closewait()
        .arg("analyze")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(LEAK))
        .arg("-o")
        .arg(&target)
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::starts_with(format!("closewait: {}: ", target.display()))
                .and(no_panic()),
        );
    assert!(!target.exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn help_documents_the_exit_statuses_strict_and_the_cap() {
    closewait()
        .args(["analyze", "--help"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("--strict")
                .and(predicate::str::contains("--max-connections <N>"))
                .and(predicate::str::contains("[default: 1000000]"))
                .and(
                    predicate::str::contains("1 findings with\n--fail-on")
                        .or(predicate::str::contains("1 findings with --fail-on")),
                ),
        );
}
