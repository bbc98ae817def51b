//! The HTTP/1.x conversation of every connection of the shipped HTTP captures, as the
//! analysis reassembles and parses it, against what Wireshark's HTTP dissector says of the
//! same bytes. Each fact below was read with the command in the comment above it
//! (`tshark -r captures/X.pcap -Y http -T fields -e tcp.srcport -e tcp.dstport
//! -e http.request.method -e http.request.uri -e http.response.code -e http.response.line`).

use crate::support::cli::stdout_of;
use crate::support::paths::capture;
use closewait::analyze::{analyze, AnalyzeOptions, RecordSegments};
use closewait::capture::InputSpec;
use closewait::http::{HttpConversation, HttpVersion, RequestLine};
use closewait::model::{ConnectionReport, Side};
use std::collections::BTreeMap;

fn reports_with(name: &str, opts: &AnalyzeOptions) -> Vec<ConnectionReport> {
    let mut reports = Vec::new();
    analyze(&[InputSpec::Path(capture(name))], opts, &mut |r| {
        reports.push(r)
    })
    .expect("analysis");
    reports.sort_by_key(|r| r.id);
    reports
}

fn reports(name: &str) -> Vec<ConnectionReport> {
    reports_with(name, &AnalyzeOptions::default())
}

/// The conversation of each connection, by client port.
fn by_client_port(name: &str) -> BTreeMap<u16, HttpConversation> {
    reports(name)
        .into_iter()
        .map(|r| {
            let http = r
                .http
                .unwrap_or_else(|| panic!("{name}: connection {} has no http", r.id));
            (r.client.port(), *http)
        })
        .collect()
}

fn get(target: &str) -> RequestLine {
    RequestLine {
        method: "GET".into(),
        target: target.into(),
        version: HttpVersion::Http11,
    }
}

/// What every request/response pair of these captures has in common: each request
/// answered by one 200 with `Keep-Alive: timeout=N` (or none), nothing given up.
fn assert_answered(
    http: &HttpConversation,
    requests: u64,
    target: &str,
    keep_alive_timeout: Option<u64>,
) {
    assert_eq!(http.requests, requests, "{http:?}");
    assert_eq!(http.responses, requests, "{http:?}");
    assert_eq!(http.status_codes, BTreeMap::from([(200, requests)]));
    assert_eq!(http.last_status, Some(200));
    assert_eq!(http.last_request, Some(get(target)));
    assert_eq!(http.version, Some(HttpVersion::Http11));
    assert_eq!(
        http.keep_alive.and_then(|k| k.timeout_s),
        keep_alive_timeout
    );
    assert_eq!(http.last_response_persistent, Some(true));
    assert!(!http.last_response_says_close);
    assert_eq!(http.unanswered_requests, Some(0));
    assert_eq!(http.last_unanswered_request, None);
    assert_eq!(http.gave_up, Default::default());
    let (first, last, response) = (
        http.first_request_at.expect("dated"),
        http.last_request_at.expect("dated"),
        http.last_response_at.expect("dated"),
    );
    assert!(first <= last && last < response, "{http:?}");
}

/// 13: one keep-alive connection (client port 34950) reused for three requests.
/// tshark: `GET /1`, `200 … Keep-Alive: timeout=1`, `GET /2`, `200 …`, `GET /3`, `200 …`.
#[test]
fn keepalive_reuse_three_requests_on_one_connection() {
    let http = by_client_port("13-http-keepalive-reuse.pcap");
    assert_eq!(http.keys().copied().collect::<Vec<_>>(), vec![34950]);
    let conversation = &http[&34950];
    assert_answered(conversation, 3, "/3", Some(1));
    assert_eq!(conversation.first_request, Some(get("/1")));
}

/// 23: HttpClient honours Tomcat's `Keep-Alive: timeout=2`. tshark: 16 connections
/// (client ports 50572…50700), each one `GET /?ms=600` answered by
/// `HTTP/1.1 200 … Keep-Alive: timeout=2, Connection: keep-alive`.
#[test]
fn tomcat_keepalive_honoured_one_request_each() {
    let http = by_client_port("23-tomcat-httpclient-keepalive-honoured.pcap");
    assert_eq!(http.len(), 16);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/?ms=600", Some(2));
    }
}

/// 24: the keep-alive strategy off: Tomcat closes after 2 s and the client writes a second
/// GET into one closed connection. tshark: 6 connections with `GET /?ms=300` answered by
/// `200 … Keep-Alive: timeout=2`; on client port 35432 a second `GET /?ms=300` (frame 55)
/// with no response after it.
#[test]
fn tomcat_keepalive_ignored_late_get_unanswered() {
    let http = by_client_port("24-tomcat-httpclient-keepalive-ignored.pcap");
    assert_eq!(http.len(), 6);
    for (port, conversation) in &http {
        if *port == 35432 {
            continue;
        }
        assert_answered(conversation, 1, "/?ms=300", Some(2));
    }
    let late = &http[&35432];
    assert_eq!(late.requests, 2);
    assert_eq!(late.responses, 1);
    assert_eq!(late.status_codes, BTreeMap::from([(200, 1)]));
    assert_eq!(late.keep_alive.and_then(|k| k.timeout_s), Some(2));
    assert_eq!(late.unanswered_requests, Some(1));
    let unanswered = late.last_unanswered_request.as_ref().expect("unanswered");
    assert_eq!(unanswered.request, get("/?ms=300"));
    assert!(unanswered.idempotent);
    // The unanswered request came after the response it follows.
    assert!(late.last_request_at > late.last_response_at);
}

/// 25: an idle evictor closes HttpClient's connections; Tomcat advertises 15 s. tshark:
/// 20 connections, each `GET /?ms=2500` answered by `200 … Keep-Alive: timeout=15`.
#[test]
fn tomcat_idle_evictor_one_request_each() {
    let http = by_client_port("25-tomcat-httpclient-idle-evictor.pcap");
    assert_eq!(http.len(), 20);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/?ms=2500", Some(15));
    }
}

/// 26: nginx and python-requests. tshark: 2 connections, each `GET /` answered by
/// `HTTP/1.1 200 OK` with `Connection: keep-alive` and no `Keep-Alive` header.
#[test]
fn nginx_requests_no_keepalive_advertised() {
    let http = by_client_port("26-nginx-python-requests-late-close.pcap");
    assert_eq!(http.len(), 2);
    for conversation in http.values() {
        assert_answered(conversation, 1, "/", None);
        assert_eq!(conversation.keep_alive, None);
    }
}

/// Connections that carry no HTTP/1.x have no `http` at all (tshark `-Y http` shows no
/// packet of these captures).
#[test]
fn captures_without_http_have_no_http() {
    for name in [
        "05-simultaneous-close.pcap",
        "08-connection-refused.pcap",
        "09-syn-timeout.pcap",
        "11-half-close.pcap",
        "19-simultaneous-server-vantage.pcap",
    ] {
        for r in reports(name) {
            assert_eq!(r.http, None, "{name} connection {}", r.id);
        }
    }
}

/// 21 was captured with `-s 96`: both heads are cut after 30 payload bytes (tshark:
/// `GET /big HTTP/1.1 [Packet size limited during capture]`). The parser does not guess
/// the rest: both directions give up at the gap, and the report says so.
#[test]
fn snaplen_cut_heads_are_given_up_not_guessed() {
    let [report] = &reports("21-bulk-download-then-close.pcap")[..] else {
        panic!("one connection");
    };
    let http = report.http.as_ref().expect("started like HTTP/1.x");
    assert_eq!((http.requests, http.responses), (0, 0));
    assert_eq!(http.gave_up.gap, 2);
}

/// With segment records (diagrams), each head is marked at the frame that began it.
/// tshark (24, client port 35432): `GET /?ms=300` in frames 29 and 55, `HTTP/1.1 200` in
/// frame 41.
#[test]
fn marks_name_each_head_and_its_frame_when_segments_are_recorded() {
    let opts = AnalyzeOptions {
        record_segments: RecordSegments::All,
        ..AnalyzeOptions::default()
    };
    let recorded = reports_with("24-tomcat-httpclient-keepalive-ignored.pcap", &opts);
    let late = recorded
        .iter()
        .find(|r| r.client.port() == 35432)
        .expect("connection");
    let marks: Vec<(u64, Side, &str)> = late
        .http
        .as_ref()
        .expect("http")
        .marks
        .iter()
        .map(|m| (m.frame, m.sender, m.label.as_str()))
        .collect();
    assert_eq!(
        marks,
        vec![
            (29, Side::Client, "GET /?ms=300 HTTP/1.1"),
            (41, Side::Server, "HTTP/1.1 200"),
            (55, Side::Client, "GET /?ms=300 HTTP/1.1"),
        ]
    );
    // Without records, no marks.
    for r in reports("24-tomcat-httpclient-keepalive-ignored.pcap") {
        assert!(r.http.expect("http").marks.is_empty());
    }
}

/// `analyze --jsonl` carries the object, and it is serde_json's rendering of the report's.
#[test]
fn jsonl_carries_the_http_object() {
    let name = "24-tomcat-httpclient-keepalive-ignored.pcap";
    let lines = stdout_of(["analyze", "--jsonl", capture(name).to_str().unwrap()]);
    let mut seen = 0;
    for (line, report) in lines.lines().zip(reports(name)) {
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        // Through text both ways: serde_json's float parsing is not exact.
        let http = serde_json::to_string(report.http.as_ref().expect("http")).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&http).unwrap();
        assert_eq!(value["http"], expected);
        seen += 1;
    }
    assert_eq!(seen, 6);
}

/// `--find TEXT` keeps the connections whose reassembled bytes contain the text. tshark:
/// every request of capture 24 is `GET /?ms=300`, of capture 23 `GET /?ms=600`.
#[test]
fn find_selects_connections_by_a_request_target() {
    let count = |name: &str, text: &str| {
        let out = stdout_of([
            "analyze",
            "--jsonl",
            "--find",
            text,
            capture(name).to_str().unwrap(),
        ]);
        out.lines()
            .filter(|l| l.starts_with("{\"type\":\"connection\""))
            .count()
    };
    assert_eq!(
        count("24-tomcat-httpclient-keepalive-ignored.pcap", "/?ms=300"),
        6
    );
    assert_eq!(
        count("23-tomcat-httpclient-keepalive-honoured.pcap", "/?ms=300"),
        0
    );
    // Any protocol, either direction: the server's header.
    assert_eq!(
        count("26-nginx-python-requests-late-close.pcap", "Server: nginx"),
        2
    );
    assert_eq!(count("13-http-keepalive-reuse.pcap", "no such text"), 0);
    // Not HTTP at all (tshark `-qz follow,tcp,ascii,0`: the client of 11 sends
    // `SEND ME EVERYTHING`, both sides of 05 `hello`): searched just the same.
    assert_eq!(count("11-half-close.pcap", "ME EVERYTHING"), 1);
    assert_eq!(count("05-simultaneous-close.pcap", "hello"), 1);
}

/// Text split over two segments is found: in capture 13 the client's first request ends
/// with `Host: 10.77.0.2\r\n\r\n` in one segment and the next starts `GET /2` in the
/// next (tshark `-qz follow,tcp,ascii,0`).
#[test]
fn find_sees_text_across_segment_boundaries() {
    let found = |text: &str| {
        let opts = AnalyzeOptions {
            find: Some(text.as_bytes().to_vec()),
            ..AnalyzeOptions::default()
        };
        let reports = reports_with("13-http-keepalive-reuse.pcap", &opts);
        reports.iter().map(|r| r.found).collect::<Vec<_>>()
    };
    assert_eq!(found("10.77.0.2\r\n\r\nGET /2 HTTP"), vec![true]);
    assert_eq!(found("ok\nHTTP/1.1 200"), vec![true]);
    assert_eq!(found("GET /4"), vec![false]);
    // Without --find nothing is searched, and the HTTP summary is the same either way.
    let plain = reports("13-http-keepalive-reuse.pcap");
    assert!(!plain[0].found);
    let opts = AnalyzeOptions {
        find: Some(b"GET".to_vec()),
        ..AnalyzeOptions::default()
    };
    assert_eq!(
        reports_with("13-http-keepalive-reuse.pcap", &opts)[0].http,
        plain[0].http
    );
}
