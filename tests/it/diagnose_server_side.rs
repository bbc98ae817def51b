//! `closewait diagnose` on server-side captures made by `bench/make-server-side`: many client
//! hosts, many services, every connection a replay of a real-kernel capture. The expected
//! numbers come from the generator's truth file (what it generated, counted from the
//! template packets), never from closewait's own output.
//!
//! The fixture tests/data/server-side/50x15.pcap was made with:
//!
//! ```text
//! bench/make-server-side tests/data/server-side/50x15.pcap --clients 50 --services 15 \
//!     --connections 3000 --seed 16 --truth tests/data/server-side/50x15.truth.json
//! ```

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::paths;

/// The findings part of the text output stays within this many lines (a screenful, see
/// docs/diagnose.md), whatever the capture's shape.
const SCREENFUL: usize = 60;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/server-side")
        .join(name)
}

fn closewait(args: &[&str], capture: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_closewait"))
        .args(args)
        .arg(capture)
        .output()
        .expect("closewait runs");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("file reads")).expect("JSON")
}

/// Lines after the one-line header: the findings.
fn findings_lines(text: &str) -> usize {
    text.lines().skip(1).count()
}

fn findings<'a>(diagnosis: &'a Value, id: &str) -> Vec<&'a Value> {
    diagnosis["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["id"] == id)
        .collect()
}

/// The services of the truth file that have `pattern`, with its connection and host counts.
fn services_with<'a>(truth: &'a Value, pattern: &str) -> Vec<(&'a str, &'a Value, &'a Value)> {
    truth["services"]
        .as_object()
        .expect("services")
        .iter()
        .filter_map(|(name, s)| s["patterns"].get(pattern).map(|p| (name.as_str(), s, p)))
        .collect()
}

fn one_for<'a>(found: &[&'a Value], service: &str) -> &'a Value {
    let mine: Vec<&Value> = found
        .iter()
        .copied()
        .filter(|f| f["service"] == service)
        .collect();
    assert_eq!(mine.len(), 1, "one finding for {service}");
    mine[0]
}

/// A `{hosts, top, others}` table against the truth's per-host counts: the right number
/// of hosts, the five biggest counts in order, each host's own count, and the rest summed.
fn assert_host_table(table: &Value, hosts: &Value) {
    let hosts = hosts.as_object().expect("hosts");
    let mut counts: Vec<u64> = hosts.values().map(|c| c.as_u64().unwrap()).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(table["hosts"].as_u64().unwrap(), hosts.len() as u64);
    let top = table["top"].as_array().expect("top");
    assert_eq!(top.len(), hosts.len().min(5));
    for (row, want) in top.iter().zip(&counts) {
        let host = row["host"].as_str().unwrap();
        assert_eq!(row["connections"].as_u64().unwrap(), *want, "{host}");
        assert_eq!(hosts[host].as_u64().unwrap(), *want, "{host}");
    }
    let rest: u64 = counts.iter().skip(5).sum();
    assert_eq!(table["others"].as_u64().unwrap(), rest);
}

#[test]
fn fixture_leaks_are_one_finding_per_service_with_the_generated_counts() {
    let truth = json_file(&data("50x15.truth.json"));
    let d: Value =
        serde_json::from_str(&closewait(&["diagnose", "--json"], &data("50x15.pcap"))).unwrap();
    assert_eq!(d["connections"], truth["options"]["connections"]);
    let leaks = findings(&d, "close_wait_leak");
    let expected = services_with(&truth, "client_close_wait");
    assert_eq!(
        leaks.len(),
        expected.len(),
        "one close_wait_leak per service"
    );
    assert!(expected.len() >= 10, "the fixture leaks on most services");
    for (service, s, p) in expected {
        let f = one_for(&leaks, service);
        let n = &p["connections"];
        assert_eq!(&f["count"], n, "{service}");
        assert_eq!(f["connections_to_service"], s["connections"], "{service}");
        assert_eq!(f["leaking_side"], "client");
        assert!(f["leaking_host"].is_null());
        let head = format!(
            "{n} of the {} connections to {service} (from {} client hosts) were closed",
            s["connections"], p["client_hosts"]
        );
        assert!(f["summary"].as_str().unwrap().starts_with(&head), "{f}");
        assert_host_table(&f["leaking_hosts"], &p["hosts"]);
    }
}

#[test]
fn fixture_client_resets_are_one_finding_per_service_with_the_generated_counts() {
    let truth = json_file(&data("50x15.truth.json"));
    let d: Value =
        serde_json::from_str(&closewait(&["diagnose", "--json"], &data("50x15.pcap"))).unwrap();
    let resets: Vec<&Value> = findings(&d, "resets")
        .into_iter()
        .filter(|f| f["reset_by"] == "client")
        .collect();
    let expected = services_with(&truth, "client_rst");
    assert_eq!(
        resets.len(),
        expected.len(),
        "one client resets finding per service"
    );
    for (service, _, p) in expected {
        let f = one_for(&resets, service);
        assert_eq!(f["count"], p["connections"], "{service}");
        let head = format!(
            "Clients ({} hosts) aborted {} connections to {service} with RST",
            p["client_hosts"], p["connections"]
        );
        assert!(f["summary"].as_str().unwrap().starts_with(&head), "{f}");
        assert_host_table(&f["hosts"], &p["hosts"]);
    }
}

#[test]
fn fixture_text_fits_a_screenful_with_the_biggest_leaks_host_table() {
    let truth = json_file(&data("50x15.truth.json"));
    let text = closewait(&["diagnose"], &data("50x15.pcap"));
    assert!(findings_lines(&text) <= SCREENFUL, "{text}");
    // The biggest leak comes first, in full, with its top-5 table and the rest counted.
    let (service, _, p) = services_with(&truth, "client_close_wait")
        .into_iter()
        .max_by_key(|(_, _, p)| p["connections"].as_u64())
        .unwrap();
    let first = text.lines().nth(2).unwrap();
    assert!(first.starts_with(&format!(
        "ERROR close_wait_leak: {} of the",
        p["connections"]
    )));
    assert!(
        text.contains(&format!("connections to {service}")),
        "{text}"
    );
    let hosts = p["client_hosts"].as_u64().unwrap();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("leaking client hosts: "), "{text}");
    assert!(
        flat.contains(&format!("and {} more hosts (", hosts - 5)),
        "{text}"
    );
    // Every kind that repeats per service says how many more there are.
    let leaks = services_with(&truth, "client_close_wait").len();
    assert!(flat.contains("more close_wait_leak findings"), "{text}");
    let shown = text.matches("ERROR close_wait_leak:").count();
    assert!(
        flat.contains(&format!("… and {} more close_wait_leak", leaks - shown)),
        "{text}"
    );
    assert!(
        text.contains("  why "),
        "the first error keeps its explanation: {text}"
    );
}

#[test]
fn twenty_thousand_client_hosts_still_fit_a_screenful() {
    let dir = paths::out_dir("diagnose_server_side");
    let pcap = dir.join("20000-clients.pcap");
    let truth_path = dir.join("20000-clients.truth.json");
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/make-server-side"))
        .arg(&pcap)
        .args([
            "--clients",
            "20000",
            "--services",
            "40",
            "--connections",
            "20000",
        ])
        .args(["--seed", "7", "--rate", "4000", "--skew", "0"])
        .arg("--truth")
        .arg(&truth_path)
        .status()
        .expect("python3 runs the generator");
    assert!(status.success());
    let truth = json_file(&truth_path);
    assert_eq!(truth["client_hosts"], 20_000);
    let text = closewait(&["diagnose"], &pcap);
    assert!(findings_lines(&text) <= SCREENFUL, "{text}");
    let d: Value = serde_json::from_str(&closewait(&["diagnose", "--json"], &pcap)).unwrap();
    let leaks = findings(&d, "close_wait_leak");
    assert_eq!(
        leaks.len(),
        services_with(&truth, "client_close_wait").len()
    );
}
