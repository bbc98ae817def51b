//! `closewait analyze --format zeek` / `zeek-json` write Zeek's conn.log: checked against
//! the conn.log Zeek itself wrote for the same trace (`tests/data/zeek/expected.jsonl`).
//!
//! The traces are those where Zeek's timers split connections: the client side of SSH
//! sessions whose SYN is never answered in the capture (Zeek's 5 s attempt timer ends the
//! first row, the rest of the session is a second, mid-stream row), and refused connects
//! retried with the same sequence number (each SYN after the RST is a new REJ row).

use crate::support::cli::stdout_of;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/zeek")
}

/// (orig_h, orig_p, resp_h, resp_p, conn_state, history) of one conn.log row.
type RowKey = (String, String, String, String, String, String);

/// Zeek's own rows for `trace`, each with how many times it occurs.
fn zeek_rows(trace: &str) -> BTreeMap<RowKey, usize> {
    let text = std::fs::read_to_string(corpus().join("expected.jsonl")).expect("expected.jsonl");
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if v["trace"] != trace {
            continue;
        }
        let s = |k: &str| match &v[k] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let key = (
            s("orig_h"),
            s("orig_p"),
            s("resp_h"),
            s("resp_p"),
            s("conn_state"),
            s("history"),
        );
        *rows.entry(key).or_insert(0) += 1;
    }
    assert!(!rows.is_empty(), "no Zeek rows for {trace}");
    rows
}

fn analyze(trace: &str, format: &str) -> String {
    let trace = corpus().join("traces").join(trace);
    stdout_of([
        OsStr::new("analyze"),
        OsStr::new("--format"),
        OsStr::new(format),
        trace.as_os_str(),
    ])
}

const FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\t\
    duration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\t\
    history\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents";

/// Parses a conn.log as Zeek's ASCII writer lays it out; returns the rows by field name.
fn parse_tsv(log: &str) -> Vec<BTreeMap<String, String>> {
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "#separator \\x09");
    assert_eq!(lines[1], "#set_separator\t,");
    assert_eq!(lines[2], "#empty_field\t(empty)");
    assert_eq!(lines[3], "#unset_field\t-");
    assert_eq!(lines[4], "#path\tconn");
    assert!(lines[5].starts_with("#open\t"), "{}", lines[5]);
    let fields = lines[6].strip_prefix("#fields\t").expect("#fields");
    assert_eq!(fields, FIELDS);
    assert!(lines[7].starts_with("#types\ttime\tstring\taddr\tport\t"));
    assert!(lines.last().expect("lines").starts_with("#close\t"));
    let names: Vec<&str> = fields.split('\t').collect();
    lines[8..lines.len() - 1]
        .iter()
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            assert_eq!(cells.len(), names.len(), "{line}");
            names
                .iter()
                .zip(cells)
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

fn keyed(rows: &[BTreeMap<String, String>]) -> BTreeMap<RowKey, usize> {
    let mut out = BTreeMap::new();
    for r in rows {
        let key = (
            r["id.orig_h"].clone(),
            r["id.orig_p"].clone(),
            r["id.resp_h"].clone(),
            r["id.resp_p"].clone(),
            r["conn_state"].clone(),
            r["history"].clone(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

#[test]
fn conn_log_of_half_duplex_ssh_client_matches_zeeks_rows_and_attempt_splits() {
    let trace = "ssh__ssh.client-side-half-duplex.pcap";
    let rows = parse_tsv(&analyze(trace, "zeek"));
    assert_eq!(rows.len(), 25);
    assert_eq!(keyed(&rows), zeek_rows(trace));
    // Zeek's attempt timer split 192.168.2.1:57189 → :22 into an unanswered attempt and
    // the rest of the session, which starts mid-stream.
    let split: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["id.orig_p"] == "57189")
        .map(|r| (r["conn_state"].as_str(), r["history"].as_str()))
        .collect();
    assert_eq!(split, [("S0", "SAD"), ("SH", "DAF")]);
    let uids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["uid"].as_str()).collect();
    assert_eq!(uids.len(), rows.len(), "uids are distinct");
    assert!(rows
        .iter()
        .all(|r| r["proto"] == "tcp" && r["service"] == "-"));
}

#[test]
fn conn_log_of_pop3_has_one_rej_row_per_retried_syn_with_zeeks_durations() {
    let trace = "pop3__pop3.pcap";
    let rows = parse_tsv(&analyze(trace, "zeek"));
    assert_eq!(keyed(&rows), zeek_rows(trace));
    let rej: Vec<(&str, &str, &str)> = rows
        .iter()
        .filter(|r| r["id.orig_p"] == "26242")
        .map(|r| {
            (
                r["conn_state"].as_str(),
                r["history"].as_str(),
                r["duration"].as_str(),
            )
        })
        .collect();
    // Zeek's conn.log: three REJ rows of 0.050692, 0.060847 and 0.050967 s.
    assert_eq!(
        rej,
        [
            ("REJ", "Sr", "0.050692"),
            ("REJ", "Sr", "0.060847"),
            ("REJ", "Sr", "0.050967")
        ]
    );
    let last = rows.last().expect("rows");
    assert_eq!(
        (last["orig_pkts"].as_str(), last["resp_pkts"].as_str()),
        ("22", "30")
    );
}

#[test]
fn zeek_json_has_the_same_rows_in_zeeks_json_style() {
    let trace = "ssh__ssh.client-side-half-duplex.pcap";
    let tsv = parse_tsv(&analyze(trace, "zeek"));
    let json = analyze(trace, "zeek-json");
    let rows: Vec<BTreeMap<String, String>> = json
        .lines()
        .map(|line| {
            let v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).expect("one JSON object per line");
            assert!(v["ts"].is_f64() && v["id.orig_p"].is_u64());
            assert!(!v.contains_key("service"), "unset fields are left out");
            v.into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect()
        })
        .collect();
    assert_eq!(keyed(&rows), keyed(&tsv));
    let uids = |rows: &[BTreeMap<String, String>]| -> Vec<String> {
        rows.iter().map(|r| r["uid"].clone()).collect()
    };
    assert_eq!(uids(&rows), uids(&tsv), "the same deterministic uids");
}

/// A scanner's SYN, the server's SYN-ACK, the scanner's RST; 15.7 s later the scanner's data
/// probe on the same 4-tuple and the server's RST (198.74.56.135:60293 → :502). closewait
/// keeps one connection and counts the two late segments as its post-close traffic; Zeek,
/// whose reset timer removed the connection 5 s after the RST, logs them as a second row,
/// and so does `--format zeek`.
#[test]
fn probe_after_reset_is_post_close_traffic_and_a_second_zeek_row() {
    let trace = "modbus__modbus-and-non-modbus-p502.pcap";
    let json = analyze(trace, "json");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let conns = v["connections"].as_array().expect("connections");
    let on_tuple: Vec<&serde_json::Value> = conns
        .iter()
        .filter(|c| c["client"] == "198.74.56.135:60293")
        .collect();
    assert_eq!(on_tuple.len(), 1, "no second, guessed connection");
    assert_eq!(on_tuple[0]["close"]["kind"], "handshake_incomplete");
    assert_eq!(on_tuple[0]["zeek"]["history"], "ShR");
    assert_eq!(conns.len(), 7);
    let post = &v["capture"]["post_close"];
    assert_eq!(
        (post["segments"].as_u64(), post["connections"].as_u64()),
        (Some(2), Some(1))
    );
    let p = &post["by_connection"][0];
    assert_eq!(p["id"], on_tuple[0]["id"]);
    assert_eq!(
        (p["client_segments"].as_u64(), p["server_segments"].as_u64()),
        (Some(1), Some(1))
    );

    let rows = parse_tsv(&analyze(trace, "zeek"));
    assert_eq!(keyed(&rows), zeek_rows(trace));
    let split: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["id.orig_p"] == "60293")
        .map(|r| (r["conn_state"].as_str(), r["history"].as_str()))
        .collect();
    assert_eq!(split, [("RSTO", "ShR"), ("RSTRH", "Dr")]);
}
