//! The end of the capture is not always the last packet: a pcapng's interface statistics
//! (`isb_endtime`) or the user (`--capture-end`) may know better, and connections still
//! open are measured to it. On `captures/22-pcapng-dumpcap-end-after-last-packet.pcapng`,
//! recorded with dumpcap left running 3.26 s after the last packet.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

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
