//! `closewait netstat` on real output: the kernel's own `ss -tanoi` recorded in both
//! namespaces of every capture in `captures/` (the `ss` arrays of the truth files), and the
//! netstat/ss samples of `tests/data/netstat/` (recorded by its `record` script).

use assert_cmd::Command;
use closewait::diagnose::{FindingId, Severity};
use closewait::netstat::{self, Group, NetstatReport, Port, Role, RoleReason};
use closewait::state::TcpState;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sample(name: &str) -> PathBuf {
    root().join("tests/data/netstat").join(name)
}

fn report(text: &str) -> NetstatReport {
    netstat::analyze(&netstat::parse(text))
}

/// Every `ss` output recorded with the captures: (scenario, moment, namespace, output).
fn recorded_ss() -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
        .collect();
    files.sort();
    for f in files {
        let truth: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("read")).expect("JSON");
        for ss in truth["ss"].as_array().expect("ss array") {
            out.push((
                truth["scenario"].as_str().expect("scenario").to_string(),
                ss["moment"].as_str().expect("moment").to_string(),
                ss["namespace"].as_str().expect("namespace").to_string(),
                ss["output"].as_str().expect("output").to_string(),
            ));
        }
    }
    out
}

fn end_of_capture(scenario: &str, namespace: &str) -> String {
    recorded_ss()
        .into_iter()
        .find(|(s, m, n, _)| s == scenario && m == "end of capture" && n == namespace)
        .map(|(_, _, _, out)| out)
        .expect("recorded ss output")
}

fn only_group(r: &NetstatReport) -> &Group {
    assert_eq!(r.groups.len(), 1, "{:#?}", r.groups);
    &r.groups[0]
}

#[test]
fn pool_leak_client_namespace_45_close_wait_towards_the_server() {
    let r = report(&end_of_capture("12-pool-leak-many", "client"));
    let g = only_group(&r);
    assert_eq!(g.service.to_string(), "10.77.0.2:8788");
    assert_eq!(
        (g.role, g.role_reason),
        (Role::Client, RoleReason::EphemeralLocalPort)
    );
    assert_eq!(g.states.get(TcpState::CloseWait), 45);
    assert_eq!(g.sockets, 45);
    assert_eq!(g.severity, Some(Severity::Error));
    let f = &g.findings[0];
    assert_eq!(f.finding, Some(FindingId::CloseWaitLeak));
    assert_eq!(
        f.summary,
        "45 sockets in CLOSE_WAIT towards 10.77.0.2:8788 (this host is the client: ephemeral \
         local ports): the server closed them and your application never did."
    );
    assert_eq!(
        g.capture.as_ref().map(|c| c.tcpdump.as_str()),
        Some("tcpdump -i any -w closewait.pcap host 10.77.0.2 and port 8788")
    );
}

#[test]
fn pool_leak_server_namespace_45_fin_wait_2_and_5_time_wait() {
    let r = report(&end_of_capture("12-pool-leak-many", "server"));
    assert_eq!(r.listening.len(), 1);
    let g = only_group(&r);
    assert_eq!(
        (g.role, g.role_reason),
        (Role::Server, RoleReason::Listening)
    );
    assert_eq!(g.states.get(TcpState::FinWait2), 45);
    assert_eq!(g.states.get(TcpState::TimeWait), 5);
    assert_eq!(g.clients.len(), 1);
    assert_eq!(
        (g.clients[0].host.as_str(), g.clients[0].sockets),
        ("10.77.0.1", 50)
    );
    assert_eq!(g.findings[0].state, TcpState::FinWait2);
    assert_eq!(g.findings[1].finding, Some(FindingId::ServerTimeWait));
}

/// Every ss output of every scenario reads without a skipped line, and every socket on the
/// service port is put on the side its namespace is (except on loopback, where both ends
/// live in the server namespace).
#[test]
fn every_recorded_ss_output_reads_and_sides_follow_the_namespace() {
    let all = recorded_ss();
    assert!(all.len() > 100, "{} outputs", all.len());
    for (scenario, moment, ns, out) in all {
        let parsed = netstat::parse(&out);
        let what = format!("{scenario} / {moment} / {ns}");
        assert!(parsed.skipped.is_empty(), "{what}: {:?}", parsed.skipped);
        let socket_lines = out
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with('\t') && !l.trim().is_empty())
            .count();
        assert_eq!(parsed.sockets.len(), socket_lines, "{what}");
        let r = netstat::analyze(&parsed);
        for g in &r.groups {
            if g.service.port != Port::Num(8788) || g.service.to_string().starts_with("127.") {
                continue;
            }
            let expected = if ns == "client" {
                Role::Client
            } else {
                Role::Server
            };
            assert_eq!(g.role, expected, "{what}: {}", g.service);
        }
    }
}

/// The recorded netstat and ss samples describe the same sockets: each gives the same
/// groups and counts.
#[test]
fn netstat_and_ss_samples_of_the_same_sockets_agree() {
    type Shape = Vec<(String, Role, Vec<(TcpState, u64)>)>;
    let shape = |file: &str| -> Shape {
        let text = std::fs::read_to_string(sample(file)).expect("sample");
        let mut v: Vec<_> = report(&text)
            .groups
            .iter()
            .map(|g| (g.service.to_string(), g.role, g.states.iter().collect()))
            .collect();
        v.sort();
        v
    };
    let reference = shape("netstat-tan.txt");
    assert_eq!(reference.len(), 7, "{reference:#?}");
    for f in [
        "netstat-tanp.txt",
        "netstat-np.txt",
        "ss-tan.txt",
        "ss-tanp.txt",
        "ss-tanoi.txt",
    ] {
        assert_eq!(shape(f), reference, "{f}");
    }
    let client = reference
        .iter()
        .find(|(s, r, _)| s == "127.0.0.1:8788" && *r == Role::Client)
        .expect("client group");
    assert_eq!(
        client.2,
        vec![
            (TcpState::Established, 1),
            (TcpState::CloseWait, 4),
            (TcpState::TimeWait, 1)
        ]
    );
}

#[test]
fn program_column_names_the_process_holding_close_wait() {
    for f in ["netstat-tanp.txt", "ss-tanp.txt"] {
        let text = std::fs::read_to_string(sample(f)).expect("sample");
        let r = report(&text);
        let g = &r.groups[0];
        assert_eq!(g.findings[0].state, TcpState::CloseWait, "{f}");
        assert!(
            g.findings[0].meaning.contains("python3 (pid "),
            "{f}: {}",
            g.findings[0].meaning
        );
    }
}

fn closewait() -> Command {
    Command::cargo_bin("closewait").expect("binary")
}

#[test]
fn cli_json_from_a_file() {
    let out = closewait()
        .args(["netstat", "--json"])
        .arg(sample("ss-tanp.txt"))
        .output()
        .expect("runs");
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["tool"], "ss");
    assert_eq!(doc["sockets"], 20);
    assert_eq!(doc["totals"]["CLOSE_WAIT"], 4);
    let g = &doc["groups"][0];
    assert_eq!(g["service"], "127.0.0.1:8788");
    assert_eq!(g["role"], "client");
    assert_eq!(g["role_reason"], "ephemeral_local_port");
    assert_eq!(g["states"]["CLOSE_WAIT"], 4);
    assert_eq!(g["findings"][0]["kind"], "unanswered_fin");
    assert_eq!(g["findings"][0]["finding"], "close_wait_leak");
    assert_eq!(g["processes"][0]["name"], "python3");
}

#[test]
fn cli_text_from_stdin_with_fail_on() {
    let text = std::fs::read_to_string(sample("netstat-tan.txt")).expect("sample");
    let out = closewait()
        .args(["netstat", "-", "--fail-on", "error"])
        .write_stdin(text)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "a CLOSE_WAIT is an error");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(stdout.starts_with(
        "closewait netstat: netstat output, 20 TCP sockets (2 listening), 7 services.\n"
    ));
    assert!(
        stdout.contains("capture: tcpdump -i any -w closewait.pcap host 127.0.0.1 and port 8788")
    );
}

#[test]
fn cli_refuses_a_capture_passed_by_mistake() {
    let out = closewait()
        .arg("netstat")
        .arg(root().join("captures/01-client-closes-first.pcap"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not netstat or ss output"), "{err}");
    assert!(err.contains("it is a packet capture"), "{err}");
}

#[test]
fn cli_refuses_binary_data() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("netstat-binary");
    std::fs::create_dir_all(&dir).expect("creates");
    let file = dir.join("random.bin");
    std::fs::write(&file, b"Proto Recv-Q\0\x01\x02 binary").expect("writes");
    let out = closewait()
        .arg("netstat")
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("binary data"), "{err}");
}

#[test]
fn ss_state_close_wait_without_state_column_needs_state() {
    let file = sample("ss-tan-state-close-wait.txt");
    let out = closewait()
        .arg("netstat")
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no State column"), "{err}");
    assert!(err.contains("pass --state"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn ss_state_close_wait_with_state_is_the_client_leak() {
    for spelling in ["close-wait", "CLOSE_WAIT", "CLOSE-WAIT"] {
        let out = closewait()
            .args(["netstat", "--json", "--state", spelling])
            .arg(sample("ss-tanp-state-close-wait.txt"))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{spelling}");
        let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(json["tool"], "ss", "{json}");
    }
    let text = std::fs::read_to_string(sample("ss-tan-state-close-wait.txt")).expect("reads");
    let r = closewait::netstat_cmd::analyze_text(&text, Some(TcpState::CloseWait)).expect("ss");
    let g = only_group(&r);
    assert_eq!(g.service.to_string(), "127.0.0.1:8788");
    assert_eq!(g.role, Role::Client);
    assert_eq!(g.states.get(TcpState::CloseWait), 4);
    assert_eq!(g.findings[0].finding, Some(FindingId::CloseWaitLeak));
}

#[test]
fn ss_state_fin_wait_2_with_state_is_the_server_side() {
    let text = std::fs::read_to_string(sample("ss-tan-state-fin-wait-2.txt")).expect("reads");
    let r = closewait::netstat_cmd::analyze_text(&text, Some(TcpState::FinWait2)).expect("ss");
    let g = only_group(&r);
    assert_eq!(g.role, Role::Server);
    assert_eq!(g.states.get(TcpState::FinWait2), 4);
    let text = std::fs::read_to_string(sample("ss-tan-state-established.txt")).expect("reads");
    let r = closewait::netstat_cmd::analyze_text(&text, Some(TcpState::Established)).expect("ss");
    assert_eq!(
        r.groups.iter().map(|g| g.sockets).sum::<u64>(),
        8,
        "{:#?}",
        r.groups
    );
}

#[test]
fn cli_refuses_text_that_is_no_netstat_output() {
    let out = closewait()
        .args(["netstat", "-"])
        .write_stdin("hello\nthis is a log file\n")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not netstat or ss output"), "{err}");
}
