//! Every capture in `captures/` was recorded from a real Linux kernel, with the kernel's own
//! account of what happened in `<scenario>.truth.json`. This test runs the analysis on each
//! capture and compares closewait's verdict with the truth, field by field.

use closewait::analyze::{analyze, AnalyzeOptions};
use closewait::capture::InputSpec;
use closewait::model::ConnectionReport;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn truth_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(captures_dir())
        .expect("captures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    files.sort();
    files
}

/// The value of `field` in a report, in the JSON vocabulary: `close.*` fields or the
/// top-level end states.
fn field(report: &Value, name: &str) -> Value {
    match name {
        "client_state" | "server_state" | "client" | "server" | "role_inferred" => {
            report[name].clone()
        }
        _ => report["close"][name].clone(),
    }
}

fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            (e - a).abs() <= (0.05 * e.abs()).max(0.1)
        }
        _ => expected == actual,
    }
}

fn check_capture(truth_path: &Path) -> Vec<String> {
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(truth_path).unwrap()).unwrap();
    let file = truth["capture"]["file"].as_str().expect("capture.file");
    let capture = captures_dir().join(file);
    let mut reports: Vec<ConnectionReport> = Vec::new();
    let stats = analyze(
        &[InputSpec::Path(capture.clone())],
        &AnalyzeOptions::default(),
        &mut |r| reports.push(r),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
    reports.sort_by_key(|r| r.id);
    let mut problems = Vec::new();
    let name = file.to_string();
    if !stats.warnings.is_empty() {
        problems.push(format!("{name}: unexpected warnings {:?}", stats.warnings));
    }
    let mut actual: Vec<Value> = reports
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    let expected = truth["connections"].as_array().expect("connections");
    if expected.len() != actual.len() {
        problems.push(format!(
            "{name}: {} connections expected, {} found",
            expected.len(),
            actual.len()
        ));
    }
    for exp in expected {
        let client = exp["client"].as_str().unwrap();
        let server = exp["server"].as_str().unwrap();
        // Port reuse puts the same 4-tuple in several connections: take them in order.
        let pos = actual
            .iter()
            .position(|r| r["client"] == client && r["server"] == server);
        let Some(pos) = pos else {
            problems.push(format!("{name}: no connection {client} → {server}"));
            continue;
        };
        let report = actual.remove(pos);
        let unknowable: Vec<&str> = exp["unknowable"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        // The timeline, not only the end: each side's sequence of states, as the kernel's
        // rules for the scenario give it (captures/README.md, "truth.json").
        for side in ["client", "server"] {
            let want = &exp["states"][side];
            assert!(want.is_array(), "{name}: states.{side} missing");
            let got: Vec<Value> = report["timeline"][side]
                .as_array()
                .map(|a| a.iter().map(|c| c["state"].clone()).collect())
                .unwrap_or_default();
            if want.as_array() != Some(&got) {
                problems.push(format!(
                    "{name}: connection {} {client} → {server}: {side} states: expected {want}, got {got:?}",
                    report["id"]
                ));
            }
        }
        for (key, want) in exp["expected"].as_object().expect("expected") {
            if unknowable.contains(&key.as_str()) {
                continue;
            }
            let got = field(&report, key);
            if !matches(want, &got) {
                problems.push(format!(
                    "{name}: connection {} {client} → {server}: {key}: expected {want}, got {got}",
                    report["id"]
                ));
            }
        }
    }
    problems
}

#[test]
fn every_capture_matches_its_kernel_truth() {
    let files = truth_files();
    assert!(
        files.len() >= 15,
        "expected the recorded scenarios in captures/, found {}",
        files.len()
    );
    let mut problems = Vec::new();
    for f in &files {
        problems.extend(check_capture(f));
    }
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every transition the state machine takes on the shipped captures and Zeek's traces is an
/// edge of RFC 9293 Figure 5 (`state::RFC_EDGES`), or a RST's "enter the CLOSED state"
/// (§3.10.7.4), which the figure leaves out, or the start of an endpoint the capture joined
/// late (its first state has no predecessor and is not checked).
#[test]
fn every_transition_taken_is_an_edge_of_the_rfc_table() {
    use closewait::state::{TcpState, RFC_EDGES};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.join("captures"), root.join("tests/data/zeek/traces")] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let n = p.to_string_lossy().to_string();
            if n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".pcap.gz") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut odd = Vec::new();
    let mut checked = 0;
    for f in &files {
        let mut reports: Vec<ConnectionReport> = Vec::new();
        if analyze(
            &[InputSpec::Path(f.clone())],
            &AnalyzeOptions::default(),
            &mut |r| reports.push(r),
        )
        .is_err()
        {
            continue;
        }
        for r in &reports {
            let v = serde_json::to_value(r).unwrap();
            for side in ["client", "server"] {
                let states: Vec<TcpState> = v["timeline"][side]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| c["state"].as_str().unwrap().parse().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                for w in states.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    checked += 1;
                    let in_table = RFC_EDGES.iter().any(|e| e.0 == a && e.1 == b);
                    if !in_table && b != TcpState::Closed {
                        odd.push(format!("{}: {side} {a} → {b}", f.display()));
                    }
                }
            }
        }
    }
    odd.dedup();
    assert!(checked > 1000, "only {checked} transitions checked");
    assert!(
        odd.is_empty(),
        "transitions outside RFC 9293 Figure 5:\n{}",
        odd.join("\n")
    );
}

/// From 27 on, a truth file also carries each connection's HTTP facts and names the
/// applications' own log saved next to the capture (captures/README.md, "truth.json"). The
/// HTTP analysis is tested against these facts, so they must be whole and agree with the TCP
/// verdict beside them: a request that met a reset belongs to a connection the server reset
/// after its FIN, an open connection has no close, a closed one was closed first by the side
/// the verdict names.
#[test]
fn http_facts_agree_with_the_tcp_verdict_and_the_app_logs_exist() {
    let mut with_http = 0;
    for path in truth_files() {
        let truth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = truth["scenario"].as_str().unwrap().to_string();
        let Some(log) = truth["app_log"].as_str() else {
            continue;
        };
        with_http += 1;
        let text = std::fs::read_to_string(captures_dir().join(log))
            .unwrap_or_else(|e| panic!("{name}: app log {log}: {e}"));
        assert!(
            text.contains("## client: ") && text.contains("## server: "),
            "{name}: {log} lacks the client's or the server's section"
        );
        for conn in truth["connections"].as_array().unwrap() {
            let (http, expected) = (&conn["http"], &conn["expected"]);
            let who = format!("{name} {}", conn["client"]);
            let exchanges = http["exchanges"].as_array().expect("exchanges");
            assert_eq!(http["requests"], exchanges.len(), "{who}");
            let answered: Vec<&Value> = exchanges
                .iter()
                .filter(|e| !e["status"].is_null())
                .map(|e| &e["status"])
                .collect();
            assert_eq!(http["responses"], answered.len(), "{who}");
            assert_eq!(
                http["statuses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .collect::<Vec<_>>(),
                answered,
                "{who}"
            );
            let late = &http["late_write"];
            assert_eq!(
                !late.is_null(),
                expected["kind"] == "fin_then_rst" && expected["rst_by"] == "server",
                "{who}: late write {late} against verdict {expected}"
            );
            if !late.is_null() {
                let method = late["method"].as_str().unwrap();
                assert!(
                    late["request"].as_str().unwrap().starts_with(method),
                    "{who}"
                );
                let idempotent = matches!(
                    method,
                    "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
                );
                assert_eq!(late["idempotent"], idempotent, "{who}");
            }
            let close = &http["close"];
            assert_eq!(close.is_null(), expected["kind"] == "open", "{who}");
            if !close.is_null() {
                assert_eq!(close["by"], expected["first_by"], "{who}");
                let announced = exchanges
                    .iter()
                    .rev()
                    .find(|e| !e["status"].is_null())
                    .is_some_and(|e| {
                        e["response_connection"]
                            .as_str()
                            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                    });
                assert_eq!(close["announced"], announced, "{who}");
                assert_eq!(close["reason"] == "announced", announced, "{who}");
            }
        }
    }
    assert!(
        with_http >= 6,
        "only {with_http} truth files with HTTP facts"
    );
}
