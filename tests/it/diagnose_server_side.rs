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

/// Keep-alive probes and dead peers from many client hosts: one finding per service, its
/// connections counted, its client hosts tabulated. The fixture replays captures 10a (4
/// answered probes), 10b (3 unanswered probes, then the client's RST) and 16 (6 answered
/// probes, then CLOSE_WAIT) from 8 client hosts to 2 services:
///
/// ```text
/// bench/make-server-side tests/data/server-side/keepalive-8x2.pcap --clients 8 --services 2 \
///     --connections 24 --mix '{"10a": 1, "10b": 1, "16": 1}' --skew 0 --rate 20 --seed 10 \
///     --truth tests/data/server-side/keepalive-8x2.truth.json
/// ```
#[test]
fn keepalive_from_many_client_hosts_is_one_finding_per_service() {
    let truth = json_file(&data("keepalive-8x2.truth.json"));
    let capture = data("keepalive-8x2.pcap");
    let d: Value = serde_json::from_str(&closewait(&["diagnose", "--json"], &capture)).unwrap();
    let services = truth["services"].as_object().expect("services");
    let keepalives = findings(&d, "keepalive");
    assert_eq!(
        keepalives.len(),
        services.len(),
        "one keepalive per service"
    );
    for (service, s) in services {
        let f = one_for(&keepalives, service);
        let t = &s["templates"];
        let of = |name: &str| t[name].as_u64().unwrap_or(0);
        // Every template's client probes: 10a sends 4, 10b 3, 16 six; 10b's go unanswered.
        let sent = 4 * of("10a") + 3 * of("10b") + 6 * of("16");
        let answered = 4 * of("10a") + 6 * of("16");
        assert_eq!(f["count"], s["connections"], "{service}");
        assert_eq!(f["prober"], "client");
        assert!(f["host"].is_null());
        assert_eq!(f["probes_sent"].as_u64(), Some(sent), "{service}");
        assert_eq!(f["probes_answered"].as_u64(), Some(answered), "{service}");
        assert_eq!(f["settings"]["tcp_keepalive_probes"], 3);
        let head = format!(
            "The clients ({} hosts) of {service} send TCP keep-alive probes after 1.0 s idle, \
             every 1.0 s while unanswered, giving up after 3 unanswered: {sent} probes on {} \
             of its {} connections, {answered} answered.",
            s["client_hosts"], s["connections"], s["connections"]
        );
        assert_eq!(f["summary"].as_str().unwrap(), head);
        // Every connection probes: the probing hosts are all of the service's clients.
        let mut hosts = serde_json::Map::new();
        for p in s["patterns"].as_object().unwrap().values() {
            for (h, n) in p["hosts"].as_object().unwrap() {
                let sum = hosts.get(h).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap();
                hosts.insert(h.clone(), sum.into());
            }
        }
        assert_host_table(&f["client_hosts"], &Value::Object(hosts));
    }
    let dead = findings(&d, "dead_peer");
    let expected = services_with(&truth, "client_rst");
    assert_eq!(dead.len(), expected.len(), "one dead_peer per service");
    for (service, s, p) in expected {
        let f: Vec<&Value> = dead
            .iter()
            .copied()
            .filter(|f| f["peer"] == service)
            .collect();
        let [f] = f[..] else {
            panic!("one dead_peer for {service}: {f:?}")
        };
        // Capture 10b is the only one whose probes go unanswered.
        assert_eq!(p["connections"], s["templates"]["10b"], "{service}");
        assert_eq!(f["count"], p["connections"], "{service}");
        assert_eq!(f["reset"], p["connections"], "{service}");
        assert!(f["host"].is_null());
        let n = p["connections"].as_u64().unwrap();
        let head = format!(
            "{service} stopped answering: the clients ({}) gave up on {n} {} after 3 \
             unanswered keep-alive probes and reset {}",
            if p["client_hosts"] == 1 {
                "1 host".to_string()
            } else {
                format!("{} hosts", p["client_hosts"])
            },
            if n == 1 { "connection" } else { "connections" },
            if n == 1 { "it" } else { "them" },
        );
        assert!(f["summary"].as_str().unwrap().starts_with(&head), "{f}");
        assert_host_table(&f["client_hosts"], &p["hosts"]);
    }
    // In text, the table and the "N more" line of the service with most client hosts.
    let text = closewait(&["diagnose"], &capture);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let table = &one_for(&keepalives, "10.1.0.1:443")["client_hosts"];
    let more = table["hosts"].as_u64().unwrap() - 5;
    assert!(
        more > 0,
        "the fixture has more than five hosts on 10.1.0.1:443"
    );
    assert!(flat.contains("probing client hosts: 10.2.0."), "{text}");
    assert!(
        flat.contains(&format!(
            " and {more} more hosts ({} connections)",
            table["others"]
        )),
        "{text}"
    );
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
